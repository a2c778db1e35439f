// Your own audit events, newest first (metadata never holds secrets), page by page.
import { call, type Schemas } from "../api/client";
import { usePages } from "../api/usePages";
import { Alert } from "../ui/Alert";
import { PageTitle } from "../ui/PageTitle";
import { Time } from "../ui/Time";

type Event = Schemas["AuditEvent"];

function metadataText(m: Event["metadata"]): string {
  const entries = Object.entries(m ?? {});
  return entries.map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(" · ");
}

/** `deployment:dep_…` links to the deployment (a deleted one's page says it is gone). */
function Resource({ name }: { name: string | null }) {
  if (!name) return <>–</>;
  const dep = /^deployment:(dep_[0-9a-f]+)$/.exec(name);
  return dep ? (
    <a href={`/deployments/${dep[1]}`}>
      <code>{name}</code>
    </a>
  ) : (
    <code>{name}</code>
  );
}

export function Audit() {
  const { items, cursor, error, busy, load } = usePages<Event>((after) =>
    call("get", "/api/audit", { query: after ? { cursor: after } : {} }),
  );
  return (
    <div class="stack">
      <PageTitle title="Audit log">Audit log</PageTitle>
      <p class="muted">What happened to your account and your deployments.</p>
      <Alert error={error} />
      {items === null && !error && <p class="muted">Loading…</p>}
      {items?.length === 0 && <p>No events yet.</p>}
      {items && items.length > 0 && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Audit events">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Resource</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id}>
                  <td>
                    <Time at={e.created_at} />
                  </td>
                  <td>
                    <code>{e.action}</code>
                  </td>
                  <td>
                    <Resource name={e.resource} />
                  </td>
                  <td class="small">{metadataText(e.metadata)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <div>
          <button type="button" class="btn btn-secondary" onClick={() => void load(cursor)} disabled={busy}>
            {busy ? "Loading…" : "More events"}
          </button>
        </div>
      )}
    </div>
  );
}
