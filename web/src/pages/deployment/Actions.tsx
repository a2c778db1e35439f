// What can be done to a deployment in its status: stop, start, restart; rotate its token
// (the new one shown once, in this component's state); delete, after a confirmation.
import { useState } from "preact/hooks";
import { call, type Schemas } from "../../api/client";
import { navigate } from "../../router";
import { Alert } from "../../ui/Alert";
import { ConfirmDialog } from "../../ui/ConfirmDialog";
import { ConnectionCard } from "../../ui/ConnectionCard";
import type { Deployment } from "../useDeployment";

type Act = "stop" | "start" | "restart";
const ACTS: { act: Act; label: string; when: Deployment["status"][] }[] = [
  { act: "stop", label: "Stop", when: ["running"] },
  { act: "start", label: "Start", when: ["stopped"] },
  { act: "restart", label: "Restart", when: ["running", "stopped", "failed"] },
];
const PATHS = {
  stop: "/api/deployments/{id}/stop",
  start: "/api/deployments/{id}/start",
  restart: "/api/deployments/{id}/restart",
} as const;

export function Actions({
  deployment,
  onChanged,
  onRotated,
}: {
  deployment: Deployment;
  onChanged: (d: Deployment) => void;
  /** The token was rotated (which also ends the deployment's OAuth grants). */
  onRotated?: () => void;
}) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [asking, setAsking] = useState<"rotate" | "delete" | null>(null);
  const [rotated, setRotated] = useState<Schemas["Rotated"] | null>(null);
  const id = deployment.id;

  const act = async (a: Act) => {
    setBusy(a);
    setError(null);
    try {
      onChanged(await call("post", PATHS[a], { params: { id } }));
    } catch (e) {
      setError(e);
    }
    setBusy(null);
  };

  const rotate = async () => {
    setBusy("rotate");
    setError(null);
    try {
      setRotated(await call("post", "/api/deployments/{id}/rotate-token", { params: { id } }));
      onRotated?.();
    } catch (e) {
      setError(e);
    }
    setBusy(null);
    setAsking(null);
  };

  const remove = async () => {
    setBusy("delete");
    setError(null);
    try {
      await call("delete", "/api/deployments/{id}", { params: { id } });
      navigate(`/deployments?deleted=${encodeURIComponent(deployment.name)}`);
    } catch (e) {
      setError(e);
      setBusy(null);
      setAsking(null);
    }
  };

  const deleting = deployment.status === "deleting";
  return (
    <section class="card stack" aria-labelledby="actions-title">
      <h2 id="actions-title">Actions</h2>
      <div class="row">
        {ACTS.filter((a) => a.when.includes(deployment.status)).map((a) => (
          <button key={a.act} type="button" class="btn btn-secondary" disabled={busy !== null} onClick={() => void act(a.act)}>
            {busy === a.act ? `${a.label}…` : a.label}
          </button>
        ))}
        <button type="button" class="btn btn-secondary" disabled={busy !== null || deleting} onClick={() => setAsking("rotate")}>
          Rotate token
        </button>
        <button type="button" class="btn btn-danger" disabled={busy !== null} onClick={() => setAsking("delete")}>
          {deleting ? "Delete again" : "Delete"}
        </button>
      </div>
      <Alert error={error} />
      {rotated && (
        <>
          <p class="alert alert-ok" role="status">
            The token was rotated: the old one no longer works.
            {!rotated.upstream_secret_rotated && " (The machine's own secret will rotate once it is reachable.)"}
          </p>
          <ConnectionCard
            title="New access token"
            url={deployment.connection_url}
            token={rotated.access_token}
            config={rotated.client_config}
          />
        </>
      )}
      {asking === "rotate" && (
        <ConfirmDialog
          title={`Rotate the token of ${deployment.name}?`}
          confirm="Rotate token"
          busy={busy === "rotate"}
          onConfirm={() => void rotate()}
          onCancel={() => setAsking(null)}
        >
          <p>Every client using the current token stops working until it gets the new one.</p>
        </ConfirmDialog>
      )}
      {asking === "delete" && (
        <ConfirmDialog
          title={`Delete ${deployment.name}?`}
          confirm="Delete"
          danger
          busy={busy === "delete"}
          onConfirm={() => void remove()}
          onCancel={() => setAsking(null)}
        >
          <p>Its machine and its stored credentials are destroyed, and its URL stops working. This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
