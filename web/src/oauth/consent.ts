// The consent page's and the connected clients' pure rules (unit-tested): whether the
// Worker's `redirect_to` goes where the page said it would, how an untrusted client name
// is shown, what kind of client it is, and the API's unix times as dates.

/** What the page needs of an API failure to word it. */
export interface Failure {
  status: number;
  code: string;
}

export const NOT_OWNER = "Only the owner of this deployment can grant access.";
export const GONE = "This request expired or was already used; start again from your MCP client.";

/** The consent page's own words for the failures it knows; `null`: the API's words. */
export function consentProblem(e: Failure): string | null {
  if (e.status === 403 && e.code === "not_owner") return NOT_OWNER;
  if (e.status === 404) return GONE;
  return null;
}

/** Schemes a browser runs or reads locally instead of leaving for another app or site. */
const NEVER = new Set(["javascript:", "data:", "vbscript:", "blob:", "file:", "about:", "filesystem:"]);
const DEFAULT_PORT: Record<string, string> = { "http:": "80", "https:": "443" };

/** `host[:port]` of a URL as the page compares it: lowercase, the scheme's default port
 * dropped (`https://a.example:443/` → `a.example`), IPv6 in brackets. A URL without a host
 * (a private-use scheme, `com.example.app:/cb`) is named by its scheme and a colon,
 * `com.example.app:`, as the Worker names it. `null`: not a URL, or a scheme the page
 * never opens. */
export function redirectTarget(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (NEVER.has(u.protocol)) return null;
  if (u.host) return u.host.toLowerCase();
  if (u.protocol === "http:" || u.protocol === "https:") return null;
  return u.protocol.toLowerCase();
}

/** `redirect_host` as the Worker wrote it, compared the same way (`HOST:443` for https
 * equals `host`). A private-use scheme matches only with its colon: `claude.ai` shown
 * never lets `claude.ai:/cb` through. */
function normalHost(host: string, protocol: string): string {
  const h = host.trim().toLowerCase();
  const port = DEFAULT_PORT[protocol];
  return port && h.endsWith(`:${port}`) ? h.slice(0, -(port.length + 1)) : h;
}

/** Whether the page may send the browser to `redirectTo`: only when it is a URL whose
 * host and port are exactly the `redirectHost` the person was shown (defence in depth:
 * the Worker already matched the client's registered redirect URI). */
export function redirectAllowed(redirectTo: string, redirectHost: string): boolean {
  const target = redirectTarget(redirectTo);
  if (!target || !redirectHost.trim()) return false;
  return target === normalHost(redirectHost, new URL(redirectTo).protocol);
}

/** Characters that can disguise text: controls, bidirectional overrides and isolates,
 * zero-width characters, the byte-order mark. */
const DISGUISE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;
export const NAME_MAX = 80;

/** A client's self-chosen name, shown as plain text: disguising characters removed,
 * whitespace collapsed, at most `NAME_MAX` characters (an ellipsis says it was cut);
 * `null` when nothing is left. */
export function cleanName(name: string | null | undefined): string | null {
  if (typeof name !== "string") return null;
  const s = name.replace(/\s+/g, " ").replace(DISGUISE, "").replace(/ {2,}/g, " ").trim();
  if (!s) return null;
  const chars = Array.from(s);
  return chars.length > NAME_MAX ? `${chars.slice(0, NAME_MAX - 1).join("").trimEnd()}…` : s;
}

export type ClientKind = "metadata_document" | "registered";

/** Where a client's identity comes from, in words: a metadata document is vouched for by
 * the host that serves it; a registered client only by its own registration. */
export function clientOrigin(kind: ClientKind, clientId: string): string {
  if (kind === "metadata_document") {
    const host = redirectTarget(clientId);
    return host ? `Identified by a metadata document published at ${host}` : "Identified by a metadata document";
  }
  return "Registered itself with this server (its name is not verified)";
}

/** The API's unix seconds as the ISO string `<Time>` takes; `null` stays `null`. */
export function isoFromUnix(seconds: number | null | undefined): string | null {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return null;
  return new Date(seconds * 1000).toISOString();
}


/** Where a sign-in through the identity provider came from, kept for the trip (the
 * provider returns to `/#session=…`): only a consent page's own address is ever kept or
 * followed, so nothing else can be planted here. */
const RETURN_KEY = "cw_consent_return";
const CONSENT_PATH = /^\/oauth\/consent\?request=[A-Za-z0-9_-]{1,64}$/;

export function isConsentPath(path: string): boolean {
  return CONSENT_PATH.test(path);
}

export function rememberConsent(store: Pick<Storage, "setItem">, path: string): void {
  if (isConsentPath(path)) store.setItem(RETURN_KEY, path);
}

/** The consent page to go back to after a provider sign-in, once. */
export function takeConsent(store: Pick<Storage, "getItem" | "removeItem">): string | null {
  const path = store.getItem(RETURN_KEY);
  store.removeItem(RETURN_KEY);
  return path && isConsentPath(path) ? path : null;
}
