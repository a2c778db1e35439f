// Signing in and out: the Worker sets and clears the HttpOnly session cookie; this page
// never sees a token. Answers are typed by the contract once it lists these routes; until
// then by the shapes docs/api.md gives (`FromContract` switches over by itself).
import { call, send, type Schemas } from "./client";
import type { paths } from "./schema.gen";

type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type FromContract<P extends string, M extends string, Fallback> = P extends keyof paths
  ? M extends keyof paths[P]
    ? NonNullable<paths[P][M]> extends { responses: { 200: infer R } }
      ? Json<R>
      : Fallback
    : Fallback
  : Fallback;

export type User = Schemas["User"];
export type Providers = FromContract<
  "/api/auth/providers",
  "get",
  { dev_sign_in: boolean; login_url: string | null }
>;
type SignedIn = FromContract<"/api/auth/dev-sign-in", "post", { user: User }>;

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
  return send("get", "/api/auth/providers") as Promise<Providers>;
}

/** The local development sign-in (exists only under `make dev`): any email, no password. */
export async function devSignIn(email: string): Promise<User> {
  return ((await send("post", "/api/auth/dev-sign-in", { email })) as SignedIn).user;
}

export async function signOut(): Promise<void> {
  await send("post", "/api/auth/sign-out");
}
