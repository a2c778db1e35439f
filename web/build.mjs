// Bundles the dashboard into build/web: web/src/main.tsx → assets/main-<hash>.js (+ its CSS),
// index.html that loads exactly those two files, a favicon, and `_headers` (the security
// headers Workers static assets attach to every asset, index.html included).
// Run by scripts/build-web.sh after the API types are generated and typechecked.
import * as esbuild from "esbuild";
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const web = dirname(fileURLToPath(import.meta.url));
const out = join(web, "..", "build", "web");

/** The Content-Security-Policy of every page: only our own files, no inline script or
 * style, no framing, no plugins. `connect-src 'self'`: the API and the MCP gateway's
 * "Test connection" are same-origin (PUBLIC_BASE_URL on another origin cannot be tested
 * from the page). */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const HEADERS = `/*
  Content-Security-Policy: ${CSP}
  X-Content-Type-Options: nosniff
  Referrer-Policy: no-referrer
  X-Frame-Options: DENY
  Cross-Origin-Opener-Policy: same-origin
  Permissions-Policy: camera=(), microphone=(), geolocation=()
/
  Cache-Control: no-cache
/index.html
  Cache-Control: no-cache
/assets/*
  Cache-Control: public, max-age=31536000, immutable
`;

// The directory itself stays (a running `wrangler dev` watches it); stale files go at the end.
await mkdir(out, { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(web, "src", "main.tsx")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  sourcemap: false,
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
});

// The entry's JS and the CSS esbuild split off it: the only two files index.html loads.
let js;
let css;
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (meta.entryPoint) {
    js = file;
    css = meta.cssBundle;
  }
}
if (!js) throw new Error("build.mjs: esbuild produced no entry chunk");
const href = (file) => "/" + relative(out, join(process.cwd(), file)).split("\\").join("/");

const template = await readFile(join(web, "index.html"), "utf8");
const html = template
  .replace("<!-- styles -->", css ? `<link rel="stylesheet" href="${href(css)}">` : "")
  .replace("<!-- script -->", `<script type="module" src="${href(js)}"></script>`);
if (html.includes("<!-- script -->") || !html.includes(basename(js))) {
  throw new Error("build.mjs: web/index.html lacks the <!-- script --> marker");
}
await writeFile(join(out, "index.html"), html);
await writeFile(join(out, "_headers"), HEADERS);
await copyFile(join(web, "favicon.svg"), join(out, "favicon.svg"));

// Whatever an earlier build left behind (older hashes) goes, now that index.html no
// longer names it.
const keep = new Set(["index.html", "_headers", "favicon.svg", "assets"]);
const fresh = new Set(Object.keys(result.metafile.outputs).map((f) => basename(f)));
for (const f of await readdir(out)) if (!keep.has(f)) await rm(join(out, f), { recursive: true, force: true });
for (const f of await readdir(join(out, "assets"))) if (!fresh.has(f)) await rm(join(out, "assets", f), { force: true });
