// The official TypeScript MCP SDK's auth provider against the real stack (issue 15).
//
// usage: node ts_oauth.mjs CONFIG_JSON
// CONFIG_JSON: {"url": the deployment's MCP URL, "base": the stack's origin,
//               "redirect_uri": "http://127.0.0.1:PORT/callback" (this script listens there),
//               "client_metadata_url": "https://localhost:PORT/…" or null (Dynamic Client
//               Registration), "session_cookie": a signed-in person's cw_session value,
//               "consent": "browser" | "cookie", "chromium": "/usr/bin/chromium",
//               "screenshot": a PNG path for the consent page, or null}
//
// The SDK does every OAuth step itself (StreamableHTTPClientTransport with an
// OAuthClientProvider): connect → 401 → discovery (RFC 9728, RFC 8414) → registration →
// redirectToAuthorization(url). Consent: "browser" opens that URL in headless Chromium
// (playwright-core) signed in with the cookie, where the Worker's 302 leads to the dashboard's
// consent page; the page must name the client, its redirect host and the deployment, and
// "Allow" sends the browser to this script's loopback callback server with code, state and
// iss. "cookie" does the same through GET/POST /api/oauth/requests/{rid}. Then finishAuth
// (token) → tools/call echo → the SDK's auth() with tokens in hand refreshes them (the path a
// client takes when its token expires) → echo again with the new access token →
// POST /oauth/revoke with the refresh token → echo once more: the gateway's 401 sends the SDK
// to refresh (refused: the grant is revoked) and then back to authorization, which this
// script does not complete.
// Prints one JSON object (what each step saw, the HTTP exchanges, every secret for the
// caller's log search). Exits non-zero only when the script itself breaks.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { FLAGS } from "../browser/chromium.mjs";

const cfg = JSON.parse(process.argv[2]);
const base = cfg.base.replace(/\/+$/, "");
const out = { http: [], authorize: [], consent: [], token_requests: [], secrets: [], tokens: [], browser_errors: [] };
const started = performance.now();

// ----------------------------------------------------------------- the loopback callback

function callbackServer(redirectUri) {
  const target = new URL(redirectUri);
  const waiting = [];
  const arrived = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, redirectUri);
    if (u.pathname !== target.pathname) {
      // A browser asks the landing host for /favicon.ico too.
      res.writeHead(u.pathname === "/favicon.ico" ? 204 : 404).end();
      return;
    }
    const params = Object.fromEntries(u.searchParams);
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>Done</title><p>You can close this window.</p>");
    const w = waiting.shift();
    if (w) w(params);
    else arrived.push(params);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(target.port), target.hostname, () =>
      resolve({
        next: (ms = 30000) =>
          new Promise((res, rej) => {
            if (arrived.length) return res(arrived.shift());
            const t = setTimeout(() => rej(new Error("no callback within " + ms + " ms")), ms);
            waiting.push((p) => {
              clearTimeout(t);
              res(p);
            });
          }),
        close: () => server.close(),
      }),
    );
  });
}

// ---------------------------------------------------------------- recording fetch

async function recordingFetch(input, init) {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const path = new URL(url).pathname;
  if (path.endsWith("/oauth/token") && init?.body) {
    const form = new URLSearchParams(String(init.body));
    const seen = {};
    for (const k of ["grant_type", "client_id", "resource", "redirect_uri", "scope"]) if (form.has(k)) seen[k] = form.get(k);
    out.token_requests.push(seen);
    for (const k of ["code", "code_verifier", "refresh_token"]) if (form.has(k)) out.secrets.push(form.get(k));
  }
  if (path.endsWith("/oauth/register") && init?.body) out.registration_request = JSON.parse(String(init.body));
  const res = await fetch(input, init);
  const entry = { method: init?.method ?? "GET", url, status: res.status, t: Math.round(performance.now() - started) / 1000 };
  const www = res.headers.get("www-authenticate");
  if (www) entry.www_authenticate = www;
  if (path.endsWith("/oauth/token") || path.endsWith("/oauth/register")) {
    entry.cache_control = res.headers.get("cache-control");
    const text = await res.clone().text();
    if (res.status >= 400) entry.body = text.slice(0, 300);
    if (path.endsWith("/oauth/register")) out.registration_response = res.status < 300 ? JSON.parse(text) : text.slice(0, 300);
  }
  out.http.push(entry);
  return res;
}

// ---------------------------------------------------------------------- the provider

class Provider {
  constructor() {
    this._tokens = undefined;
    this._client = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.discovery = undefined;
    this.authUrls = [];
    if (cfg.client_metadata_url) this.clientMetadataUrl = cfg.client_metadata_url;
  }
  get redirectUrl() {
    return cfg.redirect_uri;
  }
  get clientMetadata() {
    return {
      client_name: "Catwalk TypeScript SDK test",
      redirect_uris: [cfg.redirect_uri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    this._state = randomBytes(16).toString("hex");
    return this._state;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
    out.tokens.push({ access_token: tokens.access_token, refresh_token: tokens.refresh_token, token_type: tokens.token_type, expires_in: tokens.expires_in, scope: tokens.scope });
  }
  redirectToAuthorization(url) {
    this.authUrls.push(url.toString());
    out.authorize.push(Object.fromEntries(url.searchParams));
  }
  saveCodeVerifier(v) {
    this._verifier = v;
    out.secrets.push(v);
  }
  codeVerifier() {
    return this._verifier;
  }
  saveDiscoveryState(state) {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery;
  }
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "tokens") this._tokens = undefined;
    if (scope === "all" || scope === "client") this._client = undefined;
    if (scope === "all" || scope === "verifier") this._verifier = undefined;
  }
}

// -------------------------------------------------------------------------- consent

async function consentByCookie(authorizationUrl) {
  const step = {};
  out.consent.push(step);
  const r = await fetch(authorizationUrl, { redirect: "manual" });
  step.authorize_status = r.status;
  step.location = r.headers.get("location") ?? "";
  if (r.status !== 302) throw new Error(`authorize answered ${r.status}: ${(await r.text()).slice(0, 300)}`);
  const rid = new URL(step.location, base).searchParams.get("request");
  const headers = { cookie: `cw_session=${cfg.session_cookie}` };
  const shown = await fetch(`${base}/api/oauth/requests/${rid}`, { headers });
  step.request = shown.status === 200 ? await shown.json() : { status: shown.status, body: await shown.text() };
  const decided = await fetch(`${base}/api/oauth/requests/${rid}`, {
    method: "POST",
    headers: { ...headers, origin: base, "content-type": "application/json" },
    body: JSON.stringify({ approve: true }),
  });
  step.decision_status = decided.status;
  if (decided.status !== 200) throw new Error(`consent answered ${decided.status}: ${await decided.text()}`);
  const { redirect_to } = await decided.json();
  step.redirect_to_host = new URL(redirect_to).host;
  // Deliver it the way a browser would: to the callback server.
  await fetch(redirect_to);
}

async function consentInBrowser(authorizationUrl) {
  const { chromium } = await import("playwright-core");
  const step = {};
  out.consent.push(step);
  const browser = await chromium.launch({ executablePath: cfg.chromium ?? "/usr/bin/chromium", args: FLAGS, headless: true });
  try {
    const context = await browser.newContext();
    await context.addCookies([{ name: "cw_session", value: cfg.session_cookie, url: base, httpOnly: true, sameSite: "Strict" }]);
    const page = await context.newPage();
    page.on("pageerror", (e) => out.browser_errors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") out.browser_errors.push(`${m.text()} (${m.location()?.url ?? "?"})`);
    });
    await page.goto(authorizationUrl);
    await page.waitForURL((u) => u.pathname === "/oauth/consent", { timeout: 20000 });
    step.consent_url = page.url().replace(/request=[^&]+/, "request=…");
    const allow = page.getByRole("button", { name: "Allow", exact: true });
    await allow.waitFor({ timeout: 20000 });
    const text = async (sel) => ((await page.locator(sel).count()) ? (await page.locator(sel).first().textContent())?.trim() : null);
    step.page = {
      heading: await text("h1"),
      client: await text("#consent-client"),
      client_id: await text("#consent-client-id"),
      client_kind: await text("#consent-client-kind"),
      redirect_host: await text("#consent-redirect-host"),
      body: (await page.locator("main").first().innerText().catch(() => page.locator("body").innerText())).slice(0, 2000),
    };
    if (cfg.screenshot) await page.screenshot({ path: cfg.screenshot, fullPage: true });
    await allow.click();
    await page.waitForURL((u) => u.origin === new URL(cfg.redirect_uri).origin, { timeout: 20000 });
    step.landed_host = new URL(page.url()).host;
  } finally {
    await browser.close();
  }
}

// ----------------------------------------------------------------------------- main

const text = (r) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("");

async function main() {
  const provider = new Provider();
  const callback = await callbackServer(cfg.redirect_uri);
  try {
    const serverUrl = new URL(cfg.url);
    let transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
    let client = new Client({ name: "catwalk-ts-oauth-test", version: "1.0.0" });
    try {
      await client.connect(transport);
      throw new Error("connected without authorizing: the gateway took no token");
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
    }
    out.client_id = provider.clientInformation()?.client_id ?? null;
    const authorizationUrl = provider.authUrls.at(-1);
    if (!authorizationUrl) throw new Error("the SDK never asked to authorize");
    if (cfg.consent === "browser") await consentInBrowser(authorizationUrl);
    else await consentByCookie(authorizationUrl);
    const params = await callback.next();
    out.secrets.push(params.code);
    out.callback = { state_matches: params.state === provider._state, iss: params.iss ?? null, has_code: !!params.code, error: params.error ?? null };
    if (!params.code) throw new Error("no code in the callback: " + JSON.stringify(params));
    await transport.finishAuth(params.code);

    transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
    client = new Client({ name: "catwalk-ts-oauth-test", version: "1.0.0" });
    await client.connect(transport);
    out.echo1 = text(await client.callTool({ name: "echo", arguments: { message: "typescript oauth one" } }));

    const before = out.tokens.length;
    out.refresh_result = await auth(provider, { serverUrl, fetchFn: recordingFetch });
    out.refreshed = out.tokens.length > before;
    out.echo2 = text(await client.callTool({ name: "echo", arguments: { message: "typescript oauth two" } }));

    const meta = provider.discovery?.authorizationServerMetadata;
    const revocation = meta?.revocation_endpoint ?? `${base}/oauth/revoke`;
    const r = await fetch(revocation, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: provider.tokens().refresh_token, token_type_hint: "refresh_token", client_id: out.client_id }),
    });
    out.revoke = { url: revocation, status: r.status };
    const mark = out.http.length;
    const authBefore = provider.authUrls.length;
    try {
      const res = await client.callTool({ name: "echo", arguments: { message: "after revocation" } });
      out.after_revoke = { failed: false, text: text(res), is_error: !!res.isError };
    } catch (e) {
      out.after_revoke = { failed: true, error: String(e?.stack ?? e).slice(0, 800), unauthorized: e instanceof UnauthorizedError };
    }
    out.after_revoke.http = out.http.slice(mark);
    out.after_revoke.reauthorization_requested = provider.authUrls.length > authBefore;
    await client.close().catch(() => {});
  } finally {
    callback.close();
  }
}

const timer = setTimeout(() => {
  console.log(JSON.stringify({ error: "timed out after 120 s", partial: out }));
  process.exit(3);
}, 120000);
try {
  await main();
  clearTimeout(timer);
  out.seconds = Math.round(performance.now() - started) / 1000;
  console.log(JSON.stringify(out));
  process.exit(0);
} catch (e) {
  clearTimeout(timer);
  console.log(JSON.stringify({ error: String(e?.stack ?? e).slice(0, 2000), partial: out }));
  process.exit(1);
}
