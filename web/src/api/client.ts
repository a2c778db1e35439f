// The one way the dashboard talks to the API: same-origin `fetch` with the session cookie
// (never a token), typed end to end by the contract (`schema.gen.ts`, generated from
// docs/openapi.json), and every failure turned into an `ApiError` worded as the API
// worded it (docs/api.md "Errors").
import type { components, paths } from "./schema.gen";

export type Schemas = components["schemas"];
export type FieldError = Schemas["FieldError"];

type Method = "get" | "post" | "put" | "delete";
type Path = keyof paths;
/** The methods the contract documents for a path. */
type MethodOf<P extends Path> = {
  [M in Method]: paths[P][M] extends undefined ? never : M;
}[Method];
type Op<P extends Path, M extends Method> = NonNullable<paths[P][M]>;

type Json<R> = R extends { content: { "application/json": infer B } } ? B : undefined;
/** What a success answers: the 200 or 201 JSON body, `undefined` for a 204. */
export type Answer<P extends Path, M extends Method> =
  Op<P, M> extends { responses: infer R }
    ? 200 extends keyof R
      ? Json<R[200]>
      : 201 extends keyof R
        ? Json<R[201]>
        : undefined
    : never;
/** The JSON request body the contract takes. */
export type Body<P extends Path, M extends Method> =
  Op<P, M> extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
type PathParams<O> = O extends { parameters: { path: infer T } } ? T : never;
type Query<O> = O extends { parameters: { query?: infer T } } ? NonNullable<T> : never;

/** A call's options: `params` required when the path has parameters, `body` when the
 * operation requires one. */
export type Options<P extends Path, M extends Method> = ([PathParams<Op<P, M>>] extends [never]
  ? { params?: undefined }
  : { params: PathParams<Op<P, M>> }) &
  (Op<P, M> extends { requestBody: { content: object } } ? { body: Body<P, M> } : { body?: undefined }) & {
    query?: Query<Op<P, M>>;
    signal?: AbortSignal;
  };
type Rest<P extends Path, M extends Method> = [PathParams<Op<P, M>>] extends [never]
  ? Op<P, M> extends { requestBody: { content: object } }
    ? [options: Options<P, M>]
    : [options?: Options<P, M>]
  : [options: Options<P, M>];

/** An API failure: `status` 0 when the API could not be reached at all. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: FieldError[] = [],
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let onUnauthorized: (() => void) | null = null;
/** Called whenever a signed-in request answers 401 (the session expired or was cleared). */
export function whenUnauthorized(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

/** Calls a documented operation. Path parameters are encoded as one segment each (a
 * registry name's `/` becomes `%2F`). */
export function call<P extends Path, M extends MethodOf<P>>(
  method: M,
  path: P,
  ...[options]: Rest<P, M>
): Promise<Answer<P, M>> {
  const o = (options ?? {}) as { params?: object; query?: object; body?: unknown; signal?: AbortSignal };
  const params = (o.params ?? {}) as Record<string, string>;
  const url = (path as string).replace(/\{(\w+)\}/g, (_, k: string) =>
    encodeURIComponent(String(params[k] ?? "")),
  );
  return send(method, url + queryString(o.query), o.body, o.signal) as Promise<
    Answer<P, M>
  >;
}

function queryString(query: unknown): string {
  if (!query || typeof query !== "object") return "";
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** The untyped transport under `call`. */
export async function send(
  method: string,
  url: string,
  body?: unknown,
  signal?: AbortSignal,
  extraHeaders?: Record<string, string>,
): Promise<unknown> {
  const headers: Record<string, string> = { Accept: "application/json", ...extraHeaders };
  const init: RequestInit = {
    method: method.toUpperCase(),
    credentials: "same-origin",
    cache: "no-store",
    headers,
  };
  if (signal) init.signal = signal;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "network", "Catwalk Edge could not be reached. Check your connection and try again.");
  }
  if (response.status === 204) return undefined;
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: handled below.
  }
  if (response.ok) return json;
  if (response.status === 401 && onUnauthorized) onUnauthorized();
  throw toError(response, json);
}

function toError(response: Response, json: unknown): ApiError {
  const retry = Number(response.headers.get("Retry-After"));
  const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : null;
  const e = (json as { error?: Partial<Schemas["Error"]["error"]> } | undefined)?.error;
  if (e && typeof e.message === "string") {
    return new ApiError(response.status, e.code ?? "error", e.message, e.fields ?? [], retryAfter);
  }
  return new ApiError(
    response.status,
    "http_error",
    `The server answered ${response.status} ${response.statusText}`.trim() + ".",
    [],
    retryAfter,
  );
}

/** The message to show for anything thrown by `call`. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
