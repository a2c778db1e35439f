// Step 1: find a server — a GitHub link or an npm/PyPI name analyzed by the Worker, or an
// entry of the official MCP registry (searched in pages, one picked).
import { useState } from "preact/hooks";
import { call } from "../../api/client";
import { Alert } from "../../ui/Alert";
import { TextField } from "../../ui/Fields";
import type { Found } from "./model";
import { sourceBody } from "./model";
import { RegistrySearch } from "./RegistrySearch";

export function Find({ onFound }: { onFound: (f: Found) => void }) {
  const [source, setSource] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const analyze = async (e: Event) => {
    e.preventDefault();
    const s = source.trim();
    if (!s) {
      setProblem("Paste a GitHub link, or a package as npm:name or pypi:name.");
      return;
    }
    setProblem(null);
    setError(null);
    setBusy(true);
    try {
      const plan = await call("post", "/api/analyze", { body: sourceBody(s) });
      onFound({ kind: "source", source: s, plan });
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <div class="stack">
      <form class="card stack" onSubmit={analyze} noValidate aria-labelledby="source-title" aria-busy={busy}>
        <h2 id="source-title">From a link or a package</h2>
        <TextField
          id="source"
          label="GitHub link or package"
          hint="For example https://github.com/owner/repo, npm:@scope/name or pypi:name."
          value={source}
          onInput={setSource}
          error={problem}
          required
        />
        <Alert error={error} />
        <div class="row">
          <button type="submit" class="btn" disabled={busy}>
            {busy ? "Analyzing…" : "Analyze"}
          </button>
          {busy && (
            <span role="status" class="muted">
              Reading the package and its README…
            </span>
          )}
        </div>
      </form>
      <RegistrySearch onFound={onFound} />
    </div>
  );
}
