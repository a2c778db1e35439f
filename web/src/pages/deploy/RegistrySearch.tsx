// The official MCP registry: a search, its results page by page (`next_cursor`), each
// entry with whether it can run here and, when not, why in words. Picking one reads the
// entry's form (`GET /api/registry/servers/{name}`).
import { useState } from "preact/hooks";
import { call, type Schemas } from "../../api/client";
import { Alert } from "../../ui/Alert";
import { TextField } from "../../ui/Fields";
import type { Found } from "./model";

type Entry = Schemas["RegistryEntry"];

export function RegistrySearch({ onFound }: { onFound: (f: Found) => void }) {
  const [search, setSearch] = useState("");
  const [inactive, setInactive] = useState(false);
  const [items, setItems] = useState<Entry[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [asked, setAsked] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = async (query: string, after: string | null, withInactive = inactive) => {
    setBusy(after ? "more" : "search");
    setError(null);
    try {
      const page = await call("get", "/api/registry/servers", {
        query: {
          search: query || undefined,
          cursor: after ?? undefined,
          limit: 20,
          include_inactive: withInactive || undefined,
        },
      });
      setItems(after ? [...(items ?? []), ...page.items] : page.items);
      setCursor(page.next_cursor);
      setAsked(query);
    } catch (err) {
      setError(err);
    }
    setBusy(null);
  };

  const pick = async (name: string) => {
    setBusy(name);
    setError(null);
    try {
      const server = await call("get", "/api/registry/servers/{name}", { params: { name } });
      onFound({ kind: "registry", name, server });
    } catch (err) {
      setError(err);
      setBusy(null);
    }
  };

  return (
    <section class="card stack" aria-labelledby="registry-title">
      <h2 id="registry-title">From the MCP registry</h2>
      <form
        class="row row-end"
        role="search"
        aria-label="MCP registry"
        onSubmit={(e) => {
          e.preventDefault();
          void load(search.trim(), null);
        }}
      >
        <TextField id="registry-search" label="Search by name" type="search" value={search} onInput={setSearch} />
        <button type="submit" class="btn btn-secondary" disabled={busy !== null}>
          {busy === "search" ? "Searching…" : "Search"}
        </button>
      </form>
      <div class="check">
        <input
          id="registry-inactive"
          type="checkbox"
          checked={inactive}
          onChange={(e) => {
            setInactive(e.currentTarget.checked);
            if (items) void load(asked, null, e.currentTarget.checked);
          }}
        />
        <label for="registry-inactive">Include deprecated and deleted entries</label>
      </div>
      <Alert error={error} />
      {items && (
        <p role="status" class="muted">
          {items.length === 0
            ? `No servers found${asked ? ` for “${asked}”` : ""}.`
            : `${items.length}${cursor ? "+" : ""} servers${asked ? ` for “${asked}”` : ""}.`}
        </p>
      )}
      {items && items.length > 0 && (
        <ul class="entries">
          {items.map((e) => (
            <li key={e.name} class="entry">
              <div class="entry-head">
                <strong>{e.title ?? e.name}</strong> <span class="muted">{e.version}</span>
                {e.status !== "active" && <span class="tag">{e.status}</span>}
              </div>
              {e.title && <div class="muted small">{e.name}</div>}
              {e.description && <p>{e.description}</p>}
              {e.deployable ? (
                <button
                  type="button"
                  class="btn btn-small"
                  disabled={busy !== null}
                  onClick={() => void pick(e.name)}
                >
                  {busy === e.name ? "Reading…" : "Use this server"}
                  <span class="visually-hidden">: {e.title ?? e.name}</span>
                </button>
              ) : (
                <p class="small">
                  <span class="tag">Cannot run here</span>{" "}
                  {e.packages.find((p) => p.reason)?.reason ??
                    (e.remotes.length > 0
                      ? "Its publisher hosts it: connect to it directly."
                      : "It has no npm or PyPI package to run.")}
                </p>
              )}
            </li>
          ))}
        </ul>
      )}
      {cursor && (
        <div>
          <button type="button" class="btn btn-secondary" disabled={busy !== null} onClick={() => void load(asked, cursor)}>
            {busy === "more" ? "Loading…" : "More servers"}
          </button>
        </div>
      )}
    </section>
  );
}
