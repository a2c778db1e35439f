#!/usr/bin/env node
// The dashboard, end to end in a real browser: Debian's Chromium driven by playwright-core
// against a running stack (wrangler dev + the machines service), the way a person uses it.
//
// Usage:
//   node tests/browser/flow.mjs --base-url http://127.0.0.1:8787 --artifacts DIR [options]
//
// Required:
//   --base-url URL         the stack's origin (the dashboard and the API; its PUBLIC_BASE_URL
//                          must be the same origin, or "Test connection" is refused by the CSP)
//   --artifacts DIR        where one screenshot per step goes (created; NN-step.png)
// Options:
//   --email ADDR           the development sign-in's email (default: a fresh random one)
//   --source SRC           what is analyzed and deployed, twice: by mouse, then keyboard only
//                          (default npm:@modelcontextprotocol/server-everything)
//   --expect-tool NAME     a tool "Test connection" must list (default echo; "" for none)
//   --secret-source SRC    a source whose form has a required secret, which must refuse to
//                          submit empty (default npm:@modelcontextprotocol/server-github;
//                          "" skips the check)
//   --fail-source SRC      a source whose deployment fails; its reason must be shown
//                          (default npm:left-pad, which has no executable; "" skips)
//   --fail-words TEXT      words the shown reason must contain (default: any reason)
//   --registry-search TEXT search the MCP registry for TEXT, pick the first entry that can
//                          run here and see its form (default "": skipped, the public
//                          registry is out of reach of a closed network)
//   --session-token JWT   after signing out, come back the way the identity provider sends
//                          people (/#session=JWT): signed in as that token's person, the
//                          fragment gone from the address and history (default "": skipped)
//   --timeout SECONDS      how long a deployment may take to settle (default 240)
//   --chromium PATH        the browser (default /usr/bin/chromium)
//   --checkpoint           at "running" and at "rotated" print a JSON line
//                          ({"checkpoint": …, connection_url, access_token[, old_token,
//                          new_token]}) and wait for one line on stdin before going on, so a
//                          caller can use the URL and tokens while they are live
//
// Output: one JSON line on stdout (after any checkpoint lines):
//   {"ok", "base_url", "email", "deployment_id", "connection_url", "access_token",
//    "old_token", "new_token", "old_token_refused", "tools", "keyboard", "failure_message",
//    "llm_key" (the LLM key the settings step saved and removed, for the caller's searches),
//    "axe": {page: [serious/critical violations]}, "axe_minor": {page: ["id (impact)"]},
//    "steps": [{"name", "ok", "ms",
//    "error"?, "screenshot"?}], "errors": [...]}
// Exit status 0 when every step passed, 1 otherwise, 2 for bad arguments.
//
// Checks: sign-in (development) leaves nothing readable in storage or document.cookie;
// analyze → form → deploy → running → the connection card's URL and token (Test
// connection lists the tools through the gateway from the page); the deployments list,
// the deployment page (usage, logs); rotate (new token shown once; the old one is refused
// by the gateway); audit and settings pages (an LLM key saved shows only its last four,
// survives a reload, is removed); delete behind a confirmation; a required
// secret left empty is refused before any request, and a deployment's credentials are
// replaced; a registry entry is found and its form shown (--registry-search); a failed
// deployment shows its reason; the whole deploy flow again with Tab/Enter/Space (and typing) only, focus always
// visible; every page at 375 px without sideways scrolling; axe-core on each page (no
// serious or critical violations); no CSP violation and no script error on any page.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { FLAGS } from "./chromium.mjs";

// ---------------------------------------------------------------------------- arguments

function parseArgs(argv) {
  const o = {
    email: `browser-${rand()}@example.com`,
    source: "npm:@modelcontextprotocol/server-everything",
    expectTool: "echo",
    secretSource: "npm:@modelcontextprotocol/server-github",
    failSource: "npm:left-pad",
    failWords: "",
    registrySearch: "",
    sessionToken: "",
    timeout: 240,
    chromium: "/usr/bin/chromium",
    checkpoint: false,
  };
  const names = {
    "--base-url": "baseUrl",
    "--artifacts": "artifacts",
    "--email": "email",
    "--source": "source",
    "--expect-tool": "expectTool",
    "--secret-source": "secretSource",
    "--fail-source": "failSource",
    "--fail-words": "failWords",
    "--registry-search": "registrySearch",
    "--session-token": "sessionToken",
    "--timeout": "timeout",
    "--chromium": "chromium",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--checkpoint") o.checkpoint = true;
    else if (names[a] && i + 1 < argv.length) o[names[a]] = argv[++i];
    else usage(`unknown or incomplete argument: ${a}`);
  }
  if (!o.baseUrl || !o.artifacts) usage("--base-url and --artifacts are required");
  o.baseUrl = o.baseUrl.replace(/\/+$/, "");
  o.timeout = Number(o.timeout);
  if (!(o.timeout > 0)) usage("--timeout takes seconds");
  return o;
}

function usage(why) {
  process.stderr.write(`flow.mjs: ${why}\nUsage: node tests/browser/flow.mjs --base-url URL --artifacts DIR [options] (see the file's header)\n`);
  process.exit(2);
}

function rand() {
  return Math.random().toString(16).slice(2, 10);
}

// ---------------------------------------------------------------------------- harness

const opts = parseArgs(process.argv.slice(2));
mkdirSync(opts.artifacts, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const result = {
  ok: false,
  base_url: opts.baseUrl,
  email: opts.email,
  deployment_id: null,
  connection_url: null,
  access_token: null,
  old_token: null,
  new_token: null,
  old_token_refused: null,
  tools: [],
  keyboard: null,
  failure_message: null,
  llm_key: null,
  axe: {},
  axe_minor: {},
  steps: [],
  errors: [],
};
let shot = 0;
const stdin = opts.checkpoint ? createInterface({ input: process.stdin }) : null;
const stdinLines = stdin ? stdin[Symbol.asyncIterator]() : null;

function fail(message) {
  throw new Error(message);
}

async function step(name, page, fn) {
  const started = Date.now();
  const entry = { name, ok: false, ms: 0 };
  result.steps.push(entry);
  try {
    await fn();
    entry.ok = true;
  } catch (e) {
    entry.error = String(e?.message ?? e).split("\n").slice(0, 6).join("\n");
  }
  entry.ms = Date.now() - started;
  if (page) {
    const file = join(opts.artifacts, `${String(++shot).padStart(2, "0")}-${name}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true });
      entry.screenshot = file;
    } catch {
      // A page that is gone has nothing to show.
    }
  }
  return entry.ok;
}

async function checkpoint(name, data) {
  if (!opts.checkpoint) return;
  process.stdout.write(JSON.stringify({ checkpoint: name, ...data }) + "\n");
  await stdinLines.next();
}

/** axe-core on what the page shows now; serious and critical violations fail the step. */
async function axe(page, label) {
  const has = await page.evaluate(() => typeof window.axe === "object");
  // Evaluated by the driver, not by a <script> element: the page's CSP stays intact.
  if (!has) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.length,
      target: v.nodes[0]?.target?.join(" ") ?? "",
    }));
  });
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  result.axe[label] = bad;
  const other = violations.filter((v) => !bad.includes(v)).map((v) => `${v.id} (${v.impact})`);
  if (other.length > 0) result.axe_minor[label] = other;
  if (bad.length > 0) fail(`axe (${label}): ${bad.map((v) => `${v.id} at ${v.target}`).join("; ")}`);
}

const h1 = (page) => page.locator("main h1");
async function title(page, text, timeout = 30_000) {
  await page.locator("main h1", { hasText: text }).waitFor({ timeout });
}

/** Waits until the deploy page (or a deployment page) shows a settled status. */
async function settled(page) {
  const badge = page.locator("main .badge-running, main .badge-failed, main .badge-stopped").first();
  await badge.waitFor({ timeout: opts.timeout * 1000 });
  return (await badge.textContent()).trim();
}

async function analyze(page, source) {
  await page.goto(`${opts.baseUrl}/`);
  await title(page, "Deploy an MCP server");
  await page.getByLabel("GitHub link or package").fill(source);
  await page.getByRole("button", { name: "Analyze" }).click();
  await title(page, "Review and deploy", 60_000);
}

/** The gateway's answer to an `initialize` with this token (from Node, not the page). */
async function initializeStatus(url, token) {
  const r = await fetch(url, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      Accept: "application/json, text/event-stream",
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "flow.mjs", version: "1" } },
    }),
  });
  await r.body?.cancel();
  return r.status;
}

/** Presses Tab until the focused element matches `selector` (the page's focus order);
 * checks the focus is visible there. Returns how many presses it took. */
async function tabTo(page, selector, max = 60) {
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate((sel) => {
      const el = document.activeElement;
      if (!el || !el.matches(sel)) return null;
      const s = getComputedStyle(el);
      return { outline: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2 };
    }, selector);
    if (at) {
      if (!at.outline) fail(`focus on ${selector} is not visible (no outline)`);
      return i;
    }
  }
  fail(`Tab never reached ${selector} in ${max} presses`);
}

// ---------------------------------------------------------------------------- the run

const profile = mkdtempSync(join(tmpdir(), "catwalk-browser-"));
let context;
try {
  // Exactly our flags, none of Playwright's defaults; it needs only its pipe and a page.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${profile}`, "--remote-debugging-pipe", "about:blank"],
    viewport: { width: 1280, height: 900 },
    colorScheme: "dark",
    reducedMotion: "reduce",
  });
} catch (e) {
  result.errors.push(`chromium did not start: ${e.message}`);
  finish(1);
}

const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(20_000);
page.on("pageerror", (e) => result.errors.push(`script error: ${e.message}`));
page.on("console", (m) => {
  if (/Content Security Policy|Refused to/i.test(m.text())) result.errors.push(`CSP: ${m.text()}`);
});
const deploymentPosts = [];
page.on("request", (r) => {
  if (r.method() === "POST" && new URL(r.url()).pathname === "/api/deployments") deploymentPosts.push(r.url());
});

let name = `browser-${rand()}`;
let deployed = false;

await step("sign-in", page, async () => {
  await page.goto(`${opts.baseUrl}/`);
  await title(page, "Sign in");
  await axe(page, "sign-in");
  await page.getByLabel("Email").fill(opts.email);
  await page.getByRole("button", { name: "Sign in" }).click();
  await title(page, "Deploy an MCP server");
  const kept = await page.evaluate(() => ({
    cookie: document.cookie,
    local: Object.keys(localStorage),
    session: Object.keys(sessionStorage),
  }));
  if (kept.cookie.includes("cw_session")) fail("the session cookie is readable by scripts");
  if (kept.local.length || kept.session.length) fail(`the page stored something: ${JSON.stringify(kept)}`);
  await axe(page, "deploy-find");
});

await step("analyze", page, async () => {
  await analyze(page, opts.source);
  await axe(page, "deploy-review");
});

await step("deploy", page, async () => {
  const nameBox = page.getByLabel("Name", { exact: false }).first();
  await nameBox.fill(name);
  await page.getByRole("button", { name: "Deploy", exact: true }).click();
  await title(page, "Your new server");
  deployed = true;
  await page.locator("main progress").waitFor({ timeout: 10_000 }).catch(() => undefined);
  await page.screenshot({ path: join(opts.artifacts, `${String(shot + 1).padStart(2, "0")}-deploy-progress.png`) });
  const status = await settled(page);
  if (status !== "Running") {
    const why = await page.locator("#failure").textContent().catch(() => "");
    fail(`the deployment ended ${status}: ${why}`);
  }
  await axe(page, "deploy-running");
});

await step("connection", page, async () => {
  result.connection_url = await page.locator("#connection-url").inputValue();
  result.access_token = await page.locator("#access-token").inputValue();
  if (!/^cwk_[0-9a-f]{64}$/.test(result.access_token)) fail(`no access token on the page: ${result.access_token}`);
  result.deployment_id = result.connection_url.split("/").pop();
  await page.locator("details.config summary", { hasText: "Claude Code" }).click();
  const snippet = await page.locator("#config-claude_code").textContent();
  if (!snippet.includes(result.connection_url)) fail("the Claude Code configuration lacks the URL");
  await page.getByRole("button", { name: "Test connection" }).click();
  const ok = page.locator("#test-result .alert-ok");
  const bad = page.locator("#test-result .alert-error");
  await Promise.race([ok.waitFor({ timeout: 60_000 }), bad.waitFor({ timeout: 60_000 })]);
  if (await bad.isVisible()) fail(await bad.textContent());
  result.tools = await page.locator("#test-result .tool-names code").allTextContents();
  if (opts.expectTool && !result.tools.includes(opts.expectTool)) {
    fail(`Test connection listed ${result.tools.join(", ")}, not ${opts.expectTool}`);
  }
  await axe(page, "connection-card");
});

if (result.access_token) {
  await checkpoint("running", {
    deployment_id: result.deployment_id,
    connection_url: result.connection_url,
    access_token: result.access_token,
  });
}

await step("deployments", page, async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Deployments" }).click();
  await title(page, "Deployments");
  // Leaving the page dropped the token: it is nowhere in the document any more.
  const html = await page.content();
  if (result.access_token && html.includes(result.access_token)) fail("the token outlived its page");
  const item = page.locator(".deployment-item", { hasText: name });
  await item.waitFor();
  if (!(await item.locator(".badge-running").isVisible())) fail("the list does not show it running");
  await axe(page, "deployments");
  await item.getByRole("link", { name }).click();
  await title(page, name);
  await page.locator("#usage-requests").waitFor();
  await page.locator("#logs-title").waitFor();
  await axe(page, "deployment");
});

await step("rotate", page, async () => {
  if (!deployed) fail("nothing deployed");
  await page.getByRole("button", { name: "Rotate token" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await axe(page, "rotate-dialog");
  await dialog.getByRole("button", { name: "Rotate token" }).click();
  await page.locator("#connection-title", { hasText: "New access token" }).waitFor();
  result.old_token = result.access_token;
  result.new_token = await page.locator("#access-token").inputValue();
  if (!/^cwk_[0-9a-f]{64}$/.test(result.new_token) || result.new_token === result.old_token) {
    fail(`no new token shown: ${result.new_token}`);
  }
  const oldStatus = await initializeStatus(result.connection_url, result.old_token);
  result.old_token_refused = oldStatus === 401;
  if (!result.old_token_refused) fail(`the old token got ${oldStatus}, not 401`);
  const newStatus = await initializeStatus(result.connection_url, result.new_token);
  if (newStatus !== 200) fail(`the new token got ${newStatus}`);
});

if (result.new_token) {
  await checkpoint("rotated", {
    deployment_id: result.deployment_id,
    connection_url: result.connection_url,
    old_token: result.old_token,
    new_token: result.new_token,
  });
}

await step("audit", page, async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).click();
  await title(page, "Audit log");
  await page.locator("main table").waitFor();
  await axe(page, "audit");
});

await step("settings", page, async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
  await title(page, "Settings");
  await page.locator("#setting-llm_api_key-state").waitFor();
  // A secret saved here comes back only as "Set", its last four characters and when.
  const key = `sk-browser-${rand()}${rand()}`;
  await page.locator("#setting-llm_api_key").fill(key);
  await page.getByRole("button", { name: "Save LLM API key" }).click();
  const state = page.locator("#setting-llm_api_key-state");
  await state.getByText(`ending in ${key.slice(-4)}`).waitFor();
  if ((await page.locator("#setting-llm_api_key").inputValue()) !== "") fail("the saved key stayed in its field");
  await page.reload();
  await state.getByText(`ending in ${key.slice(-4)}`).waitFor();
  if ((await page.content()).includes(key)) fail("the saved key is in the page");
  result.llm_key = key;
  await axe(page, "settings");
  await page.screenshot({ path: join(opts.artifacts, `${String(shot + 1).padStart(2, "0")}-settings-key-set.png`), fullPage: true });
  await page.getByRole("button", { name: "Remove LLM API key" }).click();
  await state.getByText("Not set").waitFor();
});

await step("delete", page, async () => {
  if (!result.deployment_id) fail("nothing deployed");
  await page.goto(`${opts.baseUrl}/deployments/${result.deployment_id}`);
  await title(page, name);
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await axe(page, "delete-dialog");
  await dialog.getByRole("button", { name: "Delete", exact: true }).click();
  await title(page, "Deployments", 60_000);
  await page.locator("main .alert-ok", { hasText: `Deleted ${name}` }).waitFor();
  await page.waitForTimeout(300);
  if (await page.locator(".deployment-item", { hasText: name }).count()) fail("still listed after delete");
  const gone = await page.request.get(`${opts.baseUrl}/api/deployments/${result.deployment_id}`);
  if (gone.status() !== 404) fail(`GET after delete answered ${gone.status()}`);
});

if (opts.secretSource) {
  await step("required-secret", page, async () => {
    await analyze(page, opts.secretSource);
    const field = page.locator(".field", { has: page.locator(".tag-required") }).filter({
      has: page.locator('input[type="password"]'),
    });
    if ((await field.count()) === 0) fail(`${opts.secretSource} shows no required secret field`);
    const input = field.first().locator("input");
    await input.fill("");
    const before = deploymentPosts.length;
    await page.getByRole("button", { name: "Deploy", exact: true }).click();
    await field.first().locator(".error-text").waitFor();
    const said = await field.first().locator(".error-text").textContent();
    if (!/required/.test(said)) fail(`the field says “${said}”`);
    if ((await input.getAttribute("aria-invalid")) !== "true") fail("the field is not marked invalid");
    const focused = await input.evaluate((el) => el === document.activeElement);
    if (!focused) fail("focus did not move to the empty field");
    await page.waitForTimeout(300);
    if (deploymentPosts.length !== before) fail("the form was sent anyway");
    await axe(page, "form-errors");
  });
}

if (opts.secretSource) {
  await step("update-credentials", page, async () => {
    await analyze(page, opts.secretSource);
    for (const input of await page.locator('main form input[type="password"]').all()) await input.fill(`first-${rand()}`);
    const credName = `creds-${rand()}`;
    await page.getByLabel("Name", { exact: false }).first().fill(credName);
    await page.getByRole("button", { name: "Deploy", exact: true }).click();
    await title(page, "Your new server");
    const id = (await page.locator("#connection-url").inputValue()).split("/").pop();
    try {
      await settled(page);
      await page.goto(`${opts.baseUrl}/deployments/${id}`);
      await title(page, credName);
      const form = page.locator("form", { has: page.locator("#credentials-title") });
      await form.waitFor();
      for (const input of await form.locator('input[type="password"]').all()) await input.fill(`second-${rand()}`);
      await form.getByRole("button", { name: "Replace credentials" }).click();
      const ok = form.locator(".alert-ok");
      const bad = form.locator(".alert-error");
      await Promise.race([ok.waitFor({ timeout: 60_000 }), bad.waitFor({ timeout: 60_000 })]);
      if (await bad.isVisible()) fail(`replacing credentials: ${await bad.textContent()}`);
      await axe(page, "credentials");
    } finally {
      await page.request.delete(`${opts.baseUrl}/api/deployments/${id}`, { headers: { Origin: opts.baseUrl } });
    }
  });
}

if (opts.registrySearch !== "") {
  await step("registry", page, async () => {
    await page.goto(`${opts.baseUrl}/`);
    await title(page, "Deploy an MCP server");
    await page.getByLabel("Search by name").fill(opts.registrySearch);
    await page.getByRole("button", { name: "Search", exact: true }).click();
    const use = page.locator("li.entry button", { hasText: "Use this server" }).first();
    const bad = page.locator("section[aria-labelledby=registry-title] .alert-error");
    await Promise.race([use.waitFor({ timeout: 30_000 }), bad.waitFor({ timeout: 30_000 })]);
    if (await bad.isVisible()) fail(`registry search: ${await bad.textContent()}`);
    await axe(page, "registry-results");
    await use.click();
    await title(page, "Review and deploy", 30_000);
    await page.locator("#form-title").waitFor();
    await axe(page, "registry-review");
  });
}

if (opts.failSource) {
  await step("failed-deployment", page, async () => {
    await analyze(page, opts.failSource);
    for (const input of await page.locator('main form [aria-required="true"]').all()) {
      if ((await input.getAttribute("id")) === "deploy-name") continue;
      if ((await input.inputValue()) === "") await input.fill("placeholder-value");
    }
    await page.getByLabel("Name", { exact: false }).first().fill(`failing-${rand()}`);
    await page.getByRole("button", { name: "Deploy", exact: true }).click();
    await title(page, "Your new server");
    const id = (await page.locator("#connection-url").inputValue()).split("/").pop();
    const status = await settled(page);
    try {
      if (status !== "Failed") fail(`it ended ${status}, not Failed`);
      result.failure_message = (await page.locator("#failure pre").textContent()).trim();
      if (!result.failure_message || result.failure_message === "No reason was given.") fail("no reason shown");
      if (opts.failWords && !result.failure_message.includes(opts.failWords)) {
        fail(`the reason lacks “${opts.failWords}”: ${result.failure_message}`);
      }
      await page.getByRole("heading", { name: "Recent logs" }).waitFor();
      await axe(page, "deploy-failed");
      await page.screenshot({ path: join(opts.artifacts, `${String(shot + 1).padStart(2, "0")}-failed-deployment-reason.png`), fullPage: true });
    } finally {
      await page.request.delete(`${opts.baseUrl}/api/deployments/${id}`, { headers: { Origin: opts.baseUrl } });
    }
  });
}

await step("keyboard-only", page, async () => {
  const tabs = { total: 0 };
  const tab = async (sel) => {
    tabs.total += await tabTo(page, sel);
  };
  const kbName = `keys-${rand()}`;
  await page.goto(`${opts.baseUrl}/`);
  await title(page, "Deploy an MCP server");
  await tab("#source");
  await page.keyboard.type(opts.source);
  await page.keyboard.press("Enter");
  await title(page, "Review and deploy", 60_000);
  await tab("#deploy-name"); // Tabbing into a text box selects its text: typing replaces it.
  await page.keyboard.type(kbName);
  await tab('main form button[type="submit"]');
  await page.keyboard.press("Space");
  await title(page, "Your new server");
  const status = await settled(page);
  if (status !== "Running") fail(`the keyboard deployment ended ${status}`);
  const kbId = (await page.locator("#connection-url").inputValue()).split("/").pop();
  await tab("#test-connection");
  await page.keyboard.press("Enter");
  await page.locator("#test-result .alert-ok").waitFor({ timeout: 60_000 });
  // Away by the main navigation, then delete it: open it, Delete, confirm.
  await tab('nav a[href="/deployments"]');
  await page.keyboard.press("Enter");
  await title(page, "Deployments");
  await tab(`a[href="/deployments/${kbId}"]`);
  await page.keyboard.press("Enter");
  await title(page, kbName);
  await tab("main .btn-danger");
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor();
  await tab("dialog .btn-danger");
  await page.keyboard.press("Space");
  await page.locator("main .alert-ok", { hasText: `Deleted ${kbName}` }).waitFor({ timeout: 60_000 });
  result.keyboard = { tabs: tabs.total };
});

await step("phone-width", page, async () => {
  await page.setViewportSize({ width: 375, height: 812 });
  for (const path of ["/", "/deployments", "/audit", "/settings"]) {
    await page.goto(`${opts.baseUrl}${path}`);
    await h1(page).waitFor();
    await page.waitForLoadState("networkidle");
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 375) fail(`${path} is ${wide}px wide at 375px`);
  }
  await page.goto(`${opts.baseUrl}/`);
  await h1(page).waitFor();
  await axe(page, "phone");
});

await step("light-scheme", page, async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: "light" });
  for (const [path, label] of [["/", "light-deploy"], ["/deployments", "light-deployments"], ["/settings", "light-settings"]]) {
    await page.goto(`${opts.baseUrl}${path}`);
    await h1(page).waitFor();
    await page.waitForLoadState("networkidle");
    await axe(page, label);
  }
  await page.emulateMedia({ colorScheme: "dark" });
});

await step("sign-out", page, async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await title(page, "Sign in");
  const me = await page.request.get(`${opts.baseUrl}/api/auth/me`);
  if (me.status() !== 401) fail(`/api/auth/me answered ${me.status()} after signing out`);
});

if (opts.sessionToken) {
  await step("provider-return", page, async () => {
    // Arriving from the provider's site: a fresh load, not a fragment change in place.
    await page.goto("about:blank");
    await page.goto(`${opts.baseUrl}/#session=${encodeURIComponent(opts.sessionToken)}`);
    await title(page, "Deploy an MCP server");
    const where = await page.evaluate(() => ({ hash: location.hash, cookie: document.cookie }));
    if (where.hash !== "") fail(`the token stayed in the address: ${where.hash.slice(0, 20)}…`);
    if (where.cookie.includes("cw_session")) fail("the session cookie is readable by scripts");
    if ((await page.content()).includes(opts.sessionToken)) fail("the token is in the page");
    const me = await page.request.get(`${opts.baseUrl}/api/auth/me`);
    if (me.status() !== 200) fail(`/api/auth/me answered ${me.status()} with the provider's cookie`);
    result.provider_user = (await me.json()).user;
    // A token the Worker refuses is said on the sign-in page, in the API's words.
    await page.getByRole("button", { name: "Sign out" }).click();
    await title(page, "Sign in");
    await page.goto("about:blank");
    await page.goto(`${opts.baseUrl}/#session=not-a-token`);
    await title(page, "Sign in");
    await page.locator("main .alert-error").waitFor();
    await axe(page, "provider-refused");
  });
}

finish(result.steps.every((s) => s.ok) && result.errors.length === 0 ? 0 : 1);

async function finish(code) {
  result.ok = code === 0;
  try {
    await context?.close();
  } catch {
    // Closing a browser that is already gone.
  }
  rmSync(profile, { recursive: true, force: true });
  stdin?.close();
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(code);
}
