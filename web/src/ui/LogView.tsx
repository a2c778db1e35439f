// The MCP server's recent stderr (already masked by the machine and the Worker).
import type { Schemas } from "../api/client";

export function LogView({ logs }: { logs: Schemas["Logs"] }) {
  if (logs.lines.length === 0) {
    return <p class="muted">{logs.note ?? "No log lines yet."}</p>;
  }
  return (
    <>
      {logs.dropped > 0 && <p class="muted">{logs.dropped} older lines were dropped.</p>}
      <pre class="code logs" tabIndex={0} aria-label="Log lines">
        {logs.lines.map((l) => `${l.ts ?? ""} ${l.line}`.trim()).join("\n")}
      </pre>
    </>
  );
}
