// Step 3: the new deployment starting — a progress indicator while its machine installs and
// starts the server, then the connection card (running), or the server's own reason and
// its recent logs (failed) with a way to try again.
import { useEffect, useState } from "preact/hooks";
import { call, type Schemas } from "../../api/client";
import { Alert } from "../../ui/Alert";
import { ConnectionCard } from "../../ui/ConnectionCard";
import { LogView } from "../../ui/LogView";
import { StatusBadge, isSettling } from "../../ui/StatusBadge";
import { useDeployment } from "../useDeployment";
import type { Created } from "./model";

export function Watch({ created }: { created: Created }) {
  const { deployment, error, adopt } = useDeployment(created.id, created.deployment);
  const status = deployment?.status ?? created.status;
  const started = useState(() => Date.now())[0];
  const [now, setNow] = useState(Date.now());
  const [logs, setLogs] = useState<Schemas["Logs"] | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [retrying, setRetrying] = useState(false);

  useEffect(() => {
    if (!isSettling(status)) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [status]);

  useEffect(() => {
    if (status !== "failed") return;
    call("get", "/api/deployments/{id}/logs", { params: { id: created.id }, query: { lines: 50 } }).then(
      setLogs,
      () => setLogs(null),
    );
  }, [status, created.id]);

  const retry = async () => {
    setRetrying(true);
    setActionError(null);
    setLogs(null);
    try {
      adopt(await call("post", "/api/deployments/{id}/restart", { params: { id: created.id } }));
    } catch (e) {
      setActionError(e);
    }
    setRetrying(false);
  };

  const seconds = Math.max(0, Math.round((now - started) / 1000));
  return (
    <div class="stack">
      <section class="card stack" aria-labelledby="watch-title">
        <h2 id="watch-title">
          {created.name} <StatusBadge status={status} />
        </h2>
        <p class="visually-hidden" role="status">
          {status === "running" ? "Running" : status === "failed" ? "Failed" : ""}
        </p>
        {isSettling(status) && (
          <div class="stack">
            <progress class="progress" aria-label="Deploying" />
            <p class="muted">
              Starting its machine, installing the package and waiting for the server to answer… {seconds} s
            </p>
          </div>
        )}
        {status === "running" && <p>The server is running and answered the MCP handshake.</p>}
        {status === "failed" && (
          <div class="stack">
            <div class="alert alert-error" id="failure">
              <p>The deployment failed:</p>
              <pre class="code wrap">{deployment?.error_message ?? "No reason was given."}</pre>
            </div>
            <h3>Recent logs</h3>
            {logs ? <LogView logs={logs} /> : <p class="muted">No logs to show.</p>}
            <div class="row">
              <button type="button" class="btn" onClick={retry} disabled={retrying}>
                {retrying ? "Trying again…" : "Try again"}
              </button>
              <a class="btn btn-secondary" href={`/deployments/${created.id}`}>
                Open the deployment
              </a>
            </div>
          </div>
        )}
        <Alert error={actionError ?? error} />
      </section>
      <ConnectionCard url={created.connection_url} token={created.access_token} config={created.client_config} />
    </div>
  );
}
