// The MCP server's recent stderr, re-read on request.
import { useEffect, useState } from "preact/hooks";
import { call, type Schemas } from "../../api/client";
import { Alert } from "../../ui/Alert";
import { LogView } from "../../ui/LogView";

export function Logs({ id, status }: { id: string; status: string }) {
  const [logs, setLogs] = useState<Schemas["Logs"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () =>
    call("get", "/api/deployments/{id}/logs", { params: { id }, query: { lines: 100 } }).then(
      (l) => {
        setLogs(l);
        setError(null);
      },
      setError,
    );
  useEffect(() => {
    void load();
  }, [id, status]);
  return (
    <section class="card stack" aria-labelledby="logs-title">
      <div class="row row-between">
        <h2 id="logs-title">Recent logs</h2>
        <button type="button" class="btn btn-secondary btn-small" onClick={() => void load()}>
          Refresh logs
        </button>
      </div>
      <Alert error={error} />
      {logs && <LogView logs={logs} />}
    </section>
  );
}
