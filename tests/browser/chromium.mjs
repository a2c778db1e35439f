// How the browser tests launch Debian's Chromium on this closed network (see the env
// notes): headless, no sandbox (containers), and nothing that phones home.
export const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
