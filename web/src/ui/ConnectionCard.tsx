// How to connect a client: the URL (all an OAuth-capable client needs), the access token
// (shown once: it lives only in the state of the page that received it), the ready
// configurations for Claude Desktop, Claude Code, Cursor and VS Code, and "Test
// connection" from this page.
import { useState } from "preact/hooks";
import type { Schemas } from "../api/client";
import { probe, type ProbeResult } from "../mcp/probe";
import { CopyButton } from "./CopyButton";

type Config = Schemas["ClientConfig"];

const CLIENTS: { key: keyof Config; name: string; where: string }[] = [
  { key: "claude_desktop", name: "Claude Desktop", where: "Merge into claude_desktop_config.json (Settings → Developer → Edit Config)." },
  { key: "claude_code", name: "Claude Code", where: "Run in a terminal." },
  { key: "cursor", name: "Cursor", where: "Merge into ~/.cursor/mcp.json, or .cursor/mcp.json in a project." },
  { key: "vscode", name: "VS Code", where: "Merge into .vscode/mcp.json in a workspace." },
];

export function ConnectionCard({
  url,
  token,
  config,
  title = "Connect a client",
}: {
  url: string;
  token: string;
  config: Config;
  title?: string;
}) {
  return (
    <section class="card stack connection" aria-labelledby="connection-title">
      <h2 id="connection-title">{title}</h2>
      <div class="field">
        <label for="connection-url">Connection URL</label>
        <p class="hint" id="connection-url-hint">
          Clients that support MCP authorization (Claude, ChatGPT) need only this URL, no token: they ask you to allow
          them here.
        </p>
        <div class="row">
          <input
            id="connection-url"
            class="grow"
            readOnly
            value={url}
            spellcheck={false}
            aria-describedby="connection-url-hint"
          />
          <CopyButton value={url} label="Copy URL" />
        </div>
      </div>
      <div class="field">
        <label for="access-token">Access token</label>
        <p class="hint" id="access-token-hint">
          Shown only now: copy it somewhere safe. It cannot be shown again; rotate it to get a new one.
        </p>
        <div class="row">
          <input
            id="access-token"
            class="grow"
            readOnly
            value={token}
            spellcheck={false}
            autocomplete="off"
            aria-describedby="access-token-hint"
          />
          <CopyButton value={token} label="Copy token" />
        </div>
      </div>
      <h3>Ready-made configurations</h3>
      {CLIENTS.map((c) => {
        const v = config[c.key];
        const text = typeof v === "string" ? v : JSON.stringify(v, null, 2);
        return (
          <details key={c.key} class="config">
            <summary>{c.name}</summary>
            <p class="hint">{c.where}</p>
            <pre class={typeof v === "string" ? "code wrap" : "code"} id={`config-${c.key}`} tabIndex={0} aria-label={`${c.name} configuration`}>
              {text}
            </pre>
            <CopyButton value={text} label={`Copy ${c.name} configuration`} />
          </details>
        );
      })}
      <TestConnection url={url} token={token} />
    </section>
  );
}

function TestConnection({ url, token }: { url: string; token: string }) {
  const [state, setState] = useState<
    { kind: "idle" } | { kind: "busy" } | { kind: "ok"; result: ProbeResult } | { kind: "error"; message: string }
  >({ kind: "idle" });
  const run = async () => {
    setState({ kind: "busy" });
    try {
      setState({ kind: "ok", result: await probe(url, token) });
    } catch (e) {
      setState({ kind: "error", message: e instanceof Error ? e.message : String(e) });
    }
  };
  return (
    <div class="stack">
      <div>
        <button id="test-connection" type="button" class="btn btn-secondary" onClick={run} disabled={state.kind === "busy"}>
          {state.kind === "busy" ? "Testing…" : "Test connection"}
        </button>
      </div>
      <div id="test-result" role="status" aria-live="polite">
        {state.kind === "ok" && (
          <div class="alert alert-ok">
            <p>
              Connected to {state.result.server} (MCP {state.result.protocolVersion}).{" "}
              {state.result.tools.length === 1 ? "1 tool" : `${state.result.tools.length} tools`}:
            </p>
            <ul class="tools tool-names">
              {state.result.tools.map((t) => (
                <li key={t}>
                  <code>{t}</code>
                </li>
              ))}
            </ul>
          </div>
        )}
        {state.kind === "error" && <p class="alert alert-error">Test failed: {state.message}</p>}
      </div>
    </div>
  );
}
