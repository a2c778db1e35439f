// One deployment: what it runs and where, its status (kept fresh while it changes), the
// actions, its usage, its recent logs, its credentials and the OAuth clients connected to it.
import { useState } from "preact/hooks";
import { Alert } from "../ui/Alert";
import { CopyButton } from "../ui/CopyButton";
import { PageTitle } from "../ui/PageTitle";
import { StatusBadge, isSettling } from "../ui/StatusBadge";
import { Time } from "../ui/Time";
import { Actions } from "./deployment/Actions";
import { Credentials } from "./deployment/Credentials";
import { Logs } from "./deployment/Logs";
import { OAuthClients } from "./deployment/OAuthClients";
import { Usage } from "./deployment/Usage";
import { useDeployment } from "./useDeployment";

export function DeploymentPage({ id }: { id: string }) {
  const { deployment: d, error, adopt } = useDeployment(id);
  // A token rotation ends every OAuth grant on the Worker: the list is read again.
  const [rotations, setRotations] = useState(0);
  if (!d) {
    return (
      <div class="stack">
        <PageTitle title="Deployment">Deployment</PageTitle>
        {error ? <Alert error={error} /> : <p class="muted">Loading…</p>}
        <p>
          <a href="/deployments">All deployments</a>
        </p>
      </div>
    );
  }
  return (
    <div class="stack">
      <p class="small">
        <a href="/deployments">← All deployments</a>
      </p>
      <PageTitle title={d.name}>
        {d.name} <StatusBadge status={d.status} />
      </PageTitle>
      <p class="visually-hidden" role="status">
        Status: {d.status}
      </p>
      {isSettling(d.status) && <progress class="progress" aria-label={`${d.status}…`} />}
      <Alert error={error} />
      {d.status === "failed" && d.error_message && (
        <div class="alert alert-error" id="failure">
          <p>Why it failed:</p>
          <pre class="code wrap">{d.error_message}</pre>
        </div>
      )}
      <section class="card stack" aria-labelledby="overview-title">
        <h2 id="overview-title">Overview</h2>
        <dl class="facts">
          <dt>Source</dt>
          <dd>
            <code>{d.source}</code>
          </dd>
          <dt>Package</dt>
          <dd>
            <code>{d.package}</code> ({d.runtime}) {d.version ?? "latest"}
          </dd>
          <dt>Short name</dt>
          <dd>
            <code>{d.slug}</code>
          </dd>
          <dt>Region</dt>
          <dd>{d.region ?? "–"}</dd>
          <dt>Machine</dt>
          <dd>{d.machine ? `${d.machine.state} (${d.machine.id})` : "none"}</dd>
          <dt>Created</dt>
          <dd>
            <Time at={d.created_at} />
          </dd>
          <dt>Updated</dt>
          <dd>
            <Time at={d.updated_at} />
          </dd>
        </dl>
        <div class="field">
          <label for="detail-url">Connection URL</label>
          <p class="hint" id="detail-url-hint">
            Clients that support MCP authorization (Claude, ChatGPT) need only this URL, no token: they ask you to
            allow them here.
          </p>
          <div class="row">
            <input
              id="detail-url"
              class="grow"
              readOnly
              value={d.connection_url}
              spellcheck={false}
              aria-describedby="detail-url-hint"
            />
            <CopyButton value={d.connection_url} label="Copy URL" />
          </div>
        </div>
      </section>
      <Actions deployment={d} onChanged={adopt} onRotated={() => setRotations((n) => n + 1)} />
      <Usage id={d.id} />
      <Logs id={d.id} status={d.status} />
      <Credentials deployment={d} onChanged={adopt} />
      <OAuthClients key={rotations} id={d.id} />
    </div>
  );
}
