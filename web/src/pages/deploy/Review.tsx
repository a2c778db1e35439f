// Step 2: what was found (package, runtime, version, tools, warnings) and the form to
// deploy it — a name, then one control per argument and credential — checked here as the
// server checks it, and the API's 422 `fields` shown next to their fields.
import { useMemo, useRef, useState } from "preact/hooks";
import { ApiError, call, type Body } from "../../api/client";
import { check, checkName, initialValues, slugOf, suggestName, toRequest, type Problems, type Values } from "../../form/fields";
import { Alert } from "../../ui/Alert";
import { SpecField, TextField } from "../../ui/Fields";
import { fieldsOf, sourceBody, type Created, type Found } from "./model";

export function Review({
  found,
  onCreated,
  onBack,
}: {
  found: Found;
  onCreated: (c: Created) => void;
  onBack: () => void;
}) {
  const fields = useMemo(() => fieldsOf(found), [found]);
  const [name, setName] = useState(() =>
    found.kind === "source" ? suggestName(found.source) : found.server.server.title ?? suggestName(found.name),
  );
  const [values, setValues] = useState<Values>(() => initialValues(fields));
  const [problems, setProblems] = useState<Problems>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  const set = (id: string) => (v: string) => {
    setValues((old) => ({ ...old, [id]: v }));
    if (problems[id]) setProblems(({ [id]: _, ...rest }) => rest);
  };

  const focusFirstProblem = (p: Problems) => {
    const first = ["name", ...fields.map((f) => f.id)].find((id) => p[id]);
    if (!first) return;
    const el = formRef.current?.querySelector<HTMLElement>(`[name="${CSS.escape(first)}"]`);
    el?.focus();
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const p = check(fields, values);
    const nameProblem = checkName(name);
    if (nameProblem) p["name"] = nameProblem;
    setProblems(p);
    setError(null);
    if (Object.keys(p).length > 0) {
      focusFirstProblem(p);
      return;
    }
    const { credentials, arguments: args } = toRequest(fields, values);
    const body: Body<"/api/deployments", "post"> =
      found.kind === "source"
        ? { name: name.trim(), credentials, ...sourceBody(found.source) }
        : {
            name: name.trim(),
            credentials,
            registry: found.name,
            version: found.server.server.version,
            arguments: args,
          };
    setBusy(true);
    try {
      onCreated(await call("post", "/api/deployments", { body }));
    } catch (err) {
      setBusy(false);
      setError(err);
      if (err instanceof ApiError && err.fields.length > 0) {
        const fromApi: Problems = {};
        for (const f of err.fields) fromApi[f.field] = f.message;
        setProblems(fromApi);
        focusFirstProblem(fromApi);
      }
    }
  };

  const shown = ["name", ...fields.map((f) => f.id)];
  const plan = found.kind === "source" ? found.plan : found.server;
  const runnable = found.kind === "source" || found.server.deployable;
  const slug = slugOf(name);

  return (
    <div class="stack">
      <section class="card stack" aria-labelledby="found-title">
        <h2 id="found-title">{plan.package ?? (found.kind === "registry" ? found.name : "")}</h2>
        <dl class="facts">
          <dt>Package</dt>
          <dd>
            {plan.registry ?? "–"}: <code>{plan.package ?? "–"}</code>
          </dd>
          <dt>Runtime</dt>
          <dd>{plan.runtime ?? "–"}</dd>
          <dt>Version</dt>
          <dd>{plan.version ?? "latest"}</dd>
          <dt>Found by</dt>
          <dd>
            {plan.analyzer.join(", ")}
            {plan.cached ? " (from the cache)" : ""}
          </dd>
        </dl>
        {found.kind === "registry" && found.server.server.description && <p>{found.server.server.description}</p>}
        {plan.warnings.length > 0 && (
          <div class="alert alert-warning">
            <h3>Warnings</h3>
            <ul>
              {plan.warnings.map((w, i) => (
                <li key={i}>{w}</li>
              ))}
            </ul>
          </div>
        )}
        <h3>Tools</h3>
        {plan.tools.length > 0 ? (
          <ul class="tools">
            {plan.tools.map((t) => (
              <li key={t.name}>
                <code>{t.name}</code>
                {t.description ? ` — ${t.description}` : ""}
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">Not listed by the package; “Test connection” lists them once it runs.</p>
        )}
      </section>

      {!runnable ? (
        <div class="alert alert-error" role="alert">
          <p>{found.kind === "registry" ? found.server.reason : null}</p>
        </div>
      ) : (
        <form ref={formRef} class="card stack" onSubmit={submit} noValidate aria-labelledby="form-title">
          <h2 id="form-title">Settings for this server</h2>
          <TextField
            id="deploy-name"
            label="Name"
            required
            value={name}
            onInput={(v) => {
              setName(v);
              if (problems["name"]) setProblems(({ name: _, ...rest }) => rest);
            }}
            hint={slug ? `Its short name in client configurations: ${slug}` : "Letters and digits name it."}
            error={problems["name"]}
          />
          {fields.length === 0 && <p class="muted">This server asks for no credentials or arguments.</p>}
          {fields.map((f) => (
            <SpecField key={f.id} field={f} value={values[f.id] ?? ""} error={problems[f.id]} onInput={set(f.id)} />
          ))}
          {Object.keys(problems).length > 0 && !error && (
            <p class="alert alert-error" role="alert">
              Some fields need attention: {Object.keys(problems).length === 1 ? "one problem" : `${Object.keys(problems).length} problems`} above.
            </p>
          )}
          <Alert error={error} shown={shown} />
          <div class="row">
            <button type="submit" class="btn" disabled={busy}>
              {busy ? "Deploying…" : "Deploy"}
            </button>
            <button type="button" class="btn btn-secondary" onClick={onBack} disabled={busy}>
              Choose another server
            </button>
          </div>
        </form>
      )}
    </div>
  );
}
