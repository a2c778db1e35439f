// Your own LLM key, Fly token and Fly app. Write-only for the secrets: the API tells only
// whether each is set, when, and a long one's last four characters; a new value replaces
// it, "Remove" clears it.
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, type Body, type Schemas } from "../api/client";
import { Alert } from "../ui/Alert";
import { TextField } from "../ui/Fields";
import { PageTitle } from "../ui/PageTitle";
import { Time } from "../ui/Time";

type Settings = Schemas["Settings"]["settings"];
type Key = keyof Settings;

const ITEMS: { key: Key; label: string; secret: boolean; hint: string }[] = [
  {
    key: "llm_api_key",
    label: "LLM API key",
    secret: true,
    hint: "Used by your own analyses instead of the operator's (an OpenAI-compatible key).",
  },
  {
    key: "fly_api_token",
    label: "Fly API token",
    secret: true,
    hint: "With a Fly app below, your deployments' machines run in your own Fly account.",
  },
  { key: "fly_app", label: "Fly app", secret: false, hint: "The Fly app that holds your machines." },
];

export function SettingsPage() {
  const [settings, setSettings] = useState<Settings | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    call("get", "/api/settings").then((s) => setSettings(s.settings), setError);
  }, []);
  return (
    <div class="stack">
      <PageTitle title="Settings">Settings</PageTitle>
      <Alert error={error} />
      {!settings && !error && <p class="muted">Loading…</p>}
      {settings &&
        ITEMS.map((item) => (
          <SettingForm key={item.key} item={item} state={settings[item.key]} onSaved={setSettings} />
        ))}
    </div>
  );
}

function SettingForm({
  item,
  state,
  onSaved,
}: {
  item: (typeof ITEMS)[number];
  state: Settings[Key];
  onSaved: (s: Settings) => void;
}) {
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [said, setSaid] = useState("");

  const save = async (next: string | null) => {
    setBusy(true);
    setError(null);
    setSaid("");
    try {
      const body: Body<"/api/settings", "put"> = { [item.key]: next };
      const s = await call("put", "/api/settings", { body });
      onSaved(s.settings);
      setValue("");
      setSaid(next === null ? "Removed." : "Saved.");
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  };
  const fieldError =
    error instanceof ApiError ? error.fields.find((f) => f.field === item.key)?.message : undefined;
  const id = `setting-${item.key}`;
  const shownValue = "value" in state ? state.value : null;
  const lastFour = "last_four" in state ? state.last_four : null;

  return (
    <form
      class="card stack"
      noValidate
      aria-labelledby={`${id}-title`}
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) void save(value.trim());
      }}
    >
      <h2 id={`${id}-title`}>{item.label}</h2>
      <p class="small" id={`${id}-state`}>
        {state.set ? (
          <>
            <span class="badge badge-running">Set</span>
            {shownValue ? (
              <>
                {" "}
                <code>{shownValue}</code>
              </>
            ) : null}
            {lastFour ? (
              <>
                {" "}
                ending in <code>{lastFour}</code>
              </>
            ) : null}{" "}
            · updated <Time at={state.updated_at} />
          </>
        ) : (
          <span class="badge badge-stopped">Not set</span>
        )}
      </p>
      <TextField
        id={id}
        label={state.set ? `New ${item.label}` : item.label}
        type={item.secret ? "password" : "text"}
        autoComplete={item.secret ? "new-password" : "off"}
        hint={item.hint}
        value={value}
        onInput={setValue}
        error={fieldError}
      />
      <Alert error={error} shown={[item.key]} />
      <div class="row">
        <button type="submit" class="btn" disabled={busy || !value.trim()}>
          Save {item.label}
        </button>
        {state.set && (
          <button type="button" class="btn btn-secondary" disabled={busy} onClick={() => void save(null)}>
            Remove {item.label}
          </button>
        )}
        <span role="status" class="muted">
          {said}
        </span>
      </div>
    </form>
  );
}
