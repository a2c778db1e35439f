// Replacing a deployment's credentials: the whole new set (stored values are never shown
// or sent back), checked as at creation; a running machine restarts with them.
import { useMemo, useState } from "preact/hooks";
import { ApiError, call } from "../../api/client";
import { check, credentialFields, toRequest, type Problems, type Values } from "../../form/fields";
import { Alert } from "../../ui/Alert";
import { SpecField } from "../../ui/Fields";
import type { Deployment } from "../useDeployment";

export function Credentials({ deployment, onChanged }: { deployment: Deployment; onChanged: (d: Deployment) => void }) {
  const fields = useMemo(() => credentialFields(deployment.env_vars ?? []), [deployment.env_vars]);
  const [values, setValues] = useState<Values>({});
  const [problems, setProblems] = useState<Problems>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  if (fields.length === 0) return null;

  const submit = async (e: Event) => {
    e.preventDefault();
    setDone(false);
    setError(null);
    const p = check(fields, values);
    setProblems(p);
    if (Object.keys(p).length > 0) {
      const first = fields.find((f) => p[f.id]);
      if (first) document.getElementById(`f-${first.id}`)?.focus();
      return;
    }
    setBusy(true);
    try {
      const { credentials } = toRequest(fields, values);
      onChanged(await call("put", "/api/deployments/{id}/credentials", { params: { id: deployment.id }, body: { credentials } }));
      setValues({});
      setDone(true);
    } catch (err) {
      setError(err);
      if (err instanceof ApiError) {
        const fromApi: Problems = {};
        for (const f of err.fields) fromApi[f.field] = f.message;
        setProblems(fromApi);
      }
    }
    setBusy(false);
  };

  return (
    <form class="card stack" onSubmit={submit} noValidate aria-labelledby="credentials-title">
      <h2 id="credentials-title">Credentials</h2>
      <p class="hint">
        Stored values are sealed and never shown. Saving replaces the whole set: give every value again; a running
        server restarts with them.
      </p>
      {fields.map((f) => (
        <SpecField
          key={f.id}
          field={f}
          value={values[f.id] ?? ""}
          error={problems[f.id]}
          onInput={(v) => setValues((old) => ({ ...old, [f.id]: v }))}
        />
      ))}
      <Alert error={error} shown={fields.map((f) => f.id)} />
      {done && (
        <p class="alert alert-ok" role="status">
          Credentials replaced.
        </p>
      )}
      <div>
        <button type="submit" class="btn" disabled={busy || deployment.status === "deploying" || deployment.status === "deleting"}>
          {busy ? "Saving…" : "Replace credentials"}
        </button>
      </div>
    </form>
  );
}
