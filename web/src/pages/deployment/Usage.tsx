// Calls, errors, latency percentiles (a small chart) and calls per tool, as the gateway
// counted them.
import { useEffect, useState } from "preact/hooks";
import { call, type Schemas } from "../../api/client";
import { Alert } from "../../ui/Alert";
import { UsageChart } from "../../ui/UsageChart";

export function Usage({ id }: { id: string }) {
  const [usage, setUsage] = useState<Schemas["Usage"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () =>
    call("get", "/api/deployments/{id}/usage", { params: { id } }).then(
      (u) => {
        setUsage(u);
        setError(null);
      },
      setError,
    );
  useEffect(() => {
    void load();
  }, [id]);
  const tools = Object.entries(usage?.tool_calls ?? {}).sort((a, b) => b[1] - a[1]);
  return (
    <section class="card stack" aria-labelledby="usage-title">
      <div class="row row-between">
        <h2 id="usage-title">Usage</h2>
        <button type="button" class="btn btn-secondary btn-small" onClick={() => void load()}>
          Refresh usage
        </button>
      </div>
      <Alert error={error} />
      {usage && (
        <>
          <dl class="facts">
            <dt>Requests</dt>
            <dd id="usage-requests">{usage.requests}</dd>
            <dt>Errors</dt>
            <dd>{usage.errors}</dd>
          </dl>
          <UsageChart latency={usage.latency_ms} />
          {tools.length > 0 && (
            <table class="table">
              <caption>Tool calls</caption>
              <thead>
                <tr>
                  <th scope="col">Tool</th>
                  <th scope="col">Calls</th>
                </tr>
              </thead>
              <tbody>
                {tools.map(([name, n]) => (
                  <tr key={name}>
                    <td>
                      <code>{name}</code>
                    </td>
                    <td>{n}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {usage.note && <p class="hint">{usage.note}</p>}
        </>
      )}
    </section>
  );
}
