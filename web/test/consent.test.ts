// The consent page's pure rules: the redirect it follows goes only to the host it showed,
// an untrusted client name cannot disguise itself, the known failures in its own words.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  cleanName,
  clientOrigin,
  consentProblem,
  GONE,
  isoFromUnix,
  NAME_MAX,
  NOT_OWNER,
  redirectAllowed,
  redirectTarget,
  rememberConsent,
  takeConsent,
} from "../src/oauth/consent";

test("a redirect to the host shown is followed", () => {
  assert.ok(redirectAllowed("https://claude.ai/api/mcp/auth_callback?code=x&state=y&iss=z", "claude.ai"));
  assert.ok(redirectAllowed("http://127.0.0.1:33418/callback?code=x", "127.0.0.1:33418"));
  assert.ok(redirectAllowed("http://localhost:8080/cb?error=access_denied", "localhost:8080"));
  assert.ok(redirectAllowed("http://[::1]:9000/cb?code=x", "[::1]:9000"));
  // Case and the scheme's default port written out or not.
  assert.ok(redirectAllowed("https://Chatgpt.COM/connector/oauth/cb?code=x", "chatgpt.com"));
  assert.ok(redirectAllowed("https://chatgpt.com:443/cb?code=x", "chatgpt.com"));
  assert.ok(redirectAllowed("https://chatgpt.com/cb?code=x", "chatgpt.com:443"));
  // A private-use scheme has no host: it is named by its scheme (the Worker adds a colon).
  assert.ok(redirectAllowed("com.example.app:/oauth/cb?code=x", "com.example.app:"));
  assert.ok(redirectAllowed("Com.Example.App:/oauth/cb?code=x", "com.example.app:"));
});

test("a redirect anywhere else is not", () => {
  assert.equal(redirectAllowed("https://evil.example/cb?code=x", "claude.ai"), false);
  assert.equal(redirectAllowed("https://claude.ai.evil.example/cb", "claude.ai"), false);
  assert.equal(redirectAllowed("https://claude.ai@evil.example/cb", "claude.ai"), false);
  assert.equal(redirectAllowed("https://evil.example/cb#@claude.ai", "claude.ai"), false);
  // Another port on the same host is another place.
  assert.equal(redirectAllowed("http://127.0.0.1:1234/cb", "127.0.0.1:33418"), false);
  assert.equal(redirectAllowed("http://127.0.0.1/cb", "127.0.0.1:33418"), false);
  assert.equal(redirectAllowed("https://claude.ai:8443/cb", "claude.ai"), false);
  assert.equal(redirectAllowed("http://claude.ai:443/cb", "claude.ai"), false);
  // Not a URL, relative, or a scheme the page never opens.
  assert.equal(redirectAllowed("/oauth/cb?code=x", "claude.ai"), false);
  assert.equal(redirectAllowed("", "claude.ai"), false);
  assert.equal(redirectAllowed("javascript:alert(1)", "javascript"), false);
  assert.equal(redirectAllowed("data:text/html,hi", "data"), false);
  assert.equal(redirectAllowed("file:///etc/passwd", ""), false);
  assert.equal(redirectAllowed("javascript:alert(1)", "javascript:"), false);
  // A private-use scheme is not a web host, nor another scheme.
  assert.equal(redirectAllowed("com.example.app:/cb", "com.example.app.evil:"), false);
  assert.equal(redirectAllowed("com.evil.app:/cb", "com.example.app:"), false);
  assert.equal(redirectAllowed("https://com.example.app/cb", "com.example.app:"), false);
  // A host shown never lets a private-use scheme of the same name through.
  assert.equal(redirectAllowed("claude.ai:/cb?code=x", "claude.ai"), false);
  // Nothing shown, nothing followed.
  assert.equal(redirectAllowed("https://claude.ai/cb", ""), false);
  assert.equal(redirectAllowed("https://claude.ai/cb", "  "), false);
});

test("redirectTarget names what the browser would reach", () => {
  assert.equal(redirectTarget("https://EXAMPLE.com:443/x"), "example.com");
  assert.equal(redirectTarget("http://127.0.0.1:80/x"), "127.0.0.1");
  assert.equal(redirectTarget("com.example.app:/cb"), "com.example.app:");
  assert.equal(redirectTarget("http://[::1]:9000/cb"), "[::1]:9000");
  assert.equal(redirectTarget("not a url"), null);
  assert.equal(redirectTarget("javascript:void(0)"), null);
});

test("a client's name is plain, short and undisguised", () => {
  assert.equal(cleanName("Claude"), "Claude");
  assert.equal(cleanName("  My\n\tClient  "), "My Client");
  // A right-to-left override would show "Claude" reversed around other text.
  assert.equal(cleanName("Claude\u202e\u200bevil"), "Claudeevil");
  assert.equal(cleanName("\u0000\u0007"), null);
  assert.equal(cleanName(""), null);
  assert.equal(cleanName(null), null);
  assert.equal(cleanName(undefined), null);
  const long = cleanName("x".repeat(500)) ?? "";
  assert.equal(Array.from(long).length, NAME_MAX);
  assert.ok(long.endsWith("…"));
  // Markup is text: nothing to strip, Preact escapes it.
  assert.equal(cleanName("<img src=x onerror=alert(1)>"), "<img src=x onerror=alert(1)>");
  // Cut by characters, not UTF-16 units: no half emoji.
  const emoji = cleanName("🐱".repeat(100)) ?? "";
  assert.equal(Array.from(emoji).length, NAME_MAX);
  assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])/.test(emoji));
});

test("how a client is identified", () => {
  assert.equal(
    clientOrigin("metadata_document", "https://claude.ai/oauth/mcp-client.json"),
    "Identified by a metadata document published at claude.ai",
  );
  assert.match(clientOrigin("registered", "cwc_0123456789abcdef0123456789abcdef"), /^Registered itself/);
});

test("the failures the page words itself", () => {
  assert.equal(consentProblem({ status: 403, code: "not_owner" }), NOT_OWNER);
  assert.equal(consentProblem({ status: 404, code: "oauth_request_not_found" }), GONE);
  assert.equal(consentProblem({ status: 404, code: "not_found" }), GONE);
  assert.equal(consentProblem({ status: 403, code: "origin_required" }), null);
  assert.equal(consentProblem({ status: 500, code: "internal" }), null);
  assert.equal(consentProblem({ status: 0, code: "network" }), null);
});

test("unix seconds become the ISO time <Time> shows", () => {
  assert.equal(isoFromUnix(0), "1970-01-01T00:00:00.000Z");
  assert.equal(isoFromUnix(1767225600), "2026-01-01T00:00:00.000Z");
  assert.equal(isoFromUnix(null), null);
  assert.equal(isoFromUnix(undefined), null);
  assert.equal(isoFromUnix(Number.NaN), null);
});

test("only a consent page's address survives the trip through the identity provider, once", () => {
  const m = new Map<string, string>();
  const store = {
    setItem: (k: string, v: string) => void m.set(k, v),
    getItem: (k: string) => m.get(k) ?? null,
    removeItem: (k: string) => void m.delete(k),
  };
  rememberConsent(store, "/oauth/consent?request=0123abcd");
  assert.equal(takeConsent(store), "/oauth/consent?request=0123abcd");
  assert.equal(takeConsent(store), null);
  for (const bad of ["/settings", "//evil.example/x", "/oauth/consent?request=a&x=1", "https://evil.example/"]) {
    rememberConsent(store, bad);
    assert.equal(takeConsent(store), null, bad);
  }
  m.set("cw_consent_return", "//evil.example/oauth/consent?request=a");
  assert.equal(takeConsent(store), null);
});
