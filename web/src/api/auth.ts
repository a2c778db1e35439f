// Signing in and out: the Worker sets and clears the HttpOnly session cookie; this page
// never sees a token. Every answer is typed by the contract (docs/openapi.json).
import { call, send, type Answer, type Schemas } from "./client";

export type User = Schemas["User"];
export type Providers = Answer<"/api/auth/providers", "get">;
type SignedIn = Answer<"/api/auth/session", "post">;

/** The identity provider's way back (`AUTH_LOGIN_URL`): it sends the browser to the
 * dashboard with its session JWT in the fragment, `#session=<jwt>` (a fragment is never
 * sent to a server, so no log sees it). The fragment leaves the address bar and history at
 * once and the token is traded for the HttpOnly cookie; `null` when there is none. */
export async function adoptReturnedSession(): Promise<User | null> {
  const m = /(?:^#|&)session=([^&]*)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(history.state, "", location.pathname + location.search);
  const jwt = decodeURIComponent(m[1] ?? "");
  const answer = (await send("post", "/api/auth/session", undefined, undefined, {
    Authorization: `Bearer ${jwt}`,
  })) as SignedIn;
  return answer.user;
}

/** Who is signed in, or `null` (401: no session, or it expired). */
export async function currentUser(): Promise<User | null> {
  try {
    return (await call("get", "/api/auth/me")).user;
  } catch (e) {
    if ((e as { status?: number }).status === 401) return null;
    throw e;
  }
}

export function providers(): Promise<Providers> {
  return call("get", "/api/auth/providers");
}

/** The local development sign-in (exists only under `make dev`): any email, no password. */
export async function devSignIn(email: string): Promise<User> {
  return (await call("post", "/api/auth/dev-sign-in", { body: { email } })).user;
}

export async function signOut(): Promise<void> {
  await call("post", "/api/auth/sign-out");
}
