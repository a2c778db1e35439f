// "Test connection": from the browser, the MCP handshake a client makes through the
// deployment's URL — `initialize`, `notifications/initialized`, `tools/list` (every page) —
// then the session is ended. MCP Streamable HTTP (docs/mcp-transport.md): every POST
// accepts JSON or an SSE stream, and after `initialize` carries `Mcp-Session-Id` and
// `MCP-Protocol-Version`. The token is sent as a bearer header, never in the URL.
import { SseParser } from "./sse";

/** The newest protocol version we ask for; the server answers the one it speaks. */
const PROTOCOL_VERSION = "2025-11-25";
/** A server that has not answered within this long is reported as not answering. */
const TIMEOUT_MS = 20_000;
/** Enough pages of tools for any real server; a server that pages forever is cut off. */
const MAX_PAGES = 20;

export interface ProbeResult {
  server: string;
  protocolVersion: string;
  tools: string[];
}

interface RpcMessage {
  id?: number | string;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

export class ProbeError extends Error {
  override name = "ProbeError";
}

export async function probe(url: string, token: string): Promise<ProbeResult> {
  // The page's CSP lets it connect to its own origin only (docs/dashboard.md).
  if (new URL(url, location.href).origin !== location.origin) {
    throw new ProbeError(
      `This page can only test URLs on ${location.origin}; test ${new URL(url).origin} from an MCP client.`,
    );
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  const headers: Record<string, string> = {
    Authorization: `Bearer ${token}`,
    Accept: "application/json, text/event-stream",
    "Content-Type": "application/json",
  };
  let session: string | null = null;
  try {
    const init = await post(url, headers, abort.signal, {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: "catwalk-dashboard", version: "0.1.0" },
      },
    });
    const result = resultOf(init.message, "initialize");
    const version = String(result["protocolVersion"] ?? PROTOCOL_VERSION);
    const info = (result["serverInfo"] ?? {}) as { name?: string; version?: string };
    session = init.session;
    if (session) headers["Mcp-Session-Id"] = session;
    headers["MCP-Protocol-Version"] = version;

    await post(url, headers, abort.signal, { jsonrpc: "2.0", method: "notifications/initialized" });

    const tools: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const listed = await post(url, headers, abort.signal, {
        jsonrpc: "2.0",
        id: 2 + page,
        method: "tools/list",
        params: cursor ? { cursor } : {},
      });
      const r = resultOf(listed.message, "tools/list");
      for (const t of (r["tools"] ?? []) as { name?: unknown }[]) {
        if (typeof t.name === "string") tools.push(t.name);
      }
      cursor = typeof r["nextCursor"] === "string" ? r["nextCursor"] : undefined;
      if (!cursor) break;
    }
    return {
      server: [info.name, info.version].filter(Boolean).join(" ") || "(unnamed server)",
      protocolVersion: version,
      tools,
    };
  } catch (e) {
    if (abort.signal.aborted) {
      throw new ProbeError(`The server did not answer within ${TIMEOUT_MS / 1000} seconds.`);
    }
    throw e;
  } finally {
    clearTimeout(timer);
    if (session) {
      // End the session; its outcome changes nothing for the person.
      fetch(url, { method: "DELETE", headers, credentials: "omit" }).catch(() => undefined);
    }
  }
}

function resultOf(message: RpcMessage | null, method: string): Record<string, unknown> {
  if (!message) throw new ProbeError(`The server sent no answer to ${method}.`);
  if (message.error) {
    throw new ProbeError(`${method} failed: ${message.error.message} (${message.error.code})`);
  }
  return message.result ?? {};
}

/** One POST; for a request (with `id`), its response from a JSON body or an SSE stream. */
async function post(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  body: { id?: number; method: string } & Record<string, unknown>,
): Promise<{ message: RpcMessage | null; session: string | null }> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new ProbeError("The connection URL could not be reached from this page.");
  }
  const session = response.headers.get("Mcp-Session-Id");
  if (!response.ok) throw new ProbeError(await failureOf(response, body.method));
  if (body.id === undefined) {
    await response.body?.cancel();
    return { message: null, session };
  }
  const type = response.headers.get("Content-Type") ?? "";
  if (type.includes("text/event-stream")) {
    return { message: await fromStream(response, body.id), session };
  }
  const json = (await response.json()) as RpcMessage | RpcMessage[];
  const list = Array.isArray(json) ? json : [json];
  return { message: list.find((m) => m.id === body.id) ?? null, session };
}

/** Reads SSE events until the response to `id` arrives (notifications before it are
 * skipped), then stops reading. */
async function fromStream(response: Response, id: number): Promise<RpcMessage | null> {
  const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
  if (!reader) return null;
  let found: RpcMessage | null = null;
  const parser = new SseParser((e) => {
    if (found || e.event !== "message") return;
    try {
      const m = JSON.parse(e.data) as RpcMessage;
      if (m.id === id && ("result" in m || "error" in m)) found = m;
    } catch {
      // Not JSON: not ours to read.
    }
  });
  while (!found) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(value);
  }
  await reader.cancel().catch(() => undefined);
  return found;
}

/** A refusal in words: the gateway's JSON error or JSON-RPC error, else the status. */
async function failureOf(response: Response, method: string): Promise<string> {
  const text = await response.text().catch(() => "");
  try {
    const j = JSON.parse(text) as { error?: { message?: string } };
    if (j.error?.message) return `${method}: ${j.error.message} (HTTP ${response.status})`;
  } catch {
    // Not JSON.
  }
  return `${method}: the server answered HTTP ${response.status}.`;
}
