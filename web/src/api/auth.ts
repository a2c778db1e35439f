// Signing in and out: the Worker sets and clears the HttpOnly session cookie; this page
// never sees a token. Every answer is typed by the contract (docs/openapi.json).
import { call, type Answer, type Schemas } from "./client";

export type User = Schemas["User"];
export type Providers = Answer<"/api/auth/providers", "get">;

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
