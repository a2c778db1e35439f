// Your deployments, newest first, each with its status; more pages on request. Re-read
// every 5 s while one of them is changing by itself.
import { useEffect } from "preact/hooks";
import { call, type Schemas } from "../api/client";
import { usePages } from "../api/usePages";
import { Alert } from "../ui/Alert";
import { PageTitle } from "../ui/PageTitle";
import { StatusBadge, isSettling } from "../ui/StatusBadge";
import { Time } from "../ui/Time";

type Deployment = Schemas["Deployment"];

export function Deployments({ notice }: { notice?: string | undefined }) {
  const { items, cursor, error, busy, load } = usePages<Deployment>((after) =>
    call("get", "/api/deployments", { query: after ? { cursor: after } : {} }),
  );
  const changing = items?.some((d) => isSettling(d.status)) ?? false;
  useEffect(() => {
    if (!changing || cursor) return;
    const t = setTimeout(() => void load(null), 5000);
    return () => clearTimeout(t);
  }, [items, changing, cursor]);

  return (
    <div class="stack">
      <PageTitle title="Deployments">Deployments</PageTitle>
      {notice && <p class="alert alert-ok" role="status">{notice}</p>}
      <Alert error={error} />
      {items === null && !error && <p class="muted">Loading…</p>}
      {items?.length === 0 && (
        <p>
          No deployments yet. <a href="/">Deploy a server</a>.
        </p>
      )}
      {items && items.length > 0 && (
        <ul class="cards">
          {items.map((d) => (
            <li key={d.id} class="card deployment-item">
              <div class="row row-between">
                <a href={`/deployments/${d.id}`} class="strong">
                  {d.name}
                </a>
                <StatusBadge status={d.status} />
              </div>
              <div class="muted small">
                <code>{d.source}</code>
                {d.version ? ` ${d.version}` : ""} · created <Time at={d.created_at} />
              </div>
            </li>
          ))}
        </ul>
      )}
      {cursor && (
        <div>
          <button type="button" class="btn btn-secondary" onClick={() => void load(cursor)} disabled={busy}>
            {busy ? "Loading…" : "More deployments"}
          </button>
        </div>
      )}
    </div>
  );
}
