// Labelled form controls: a label tied to its control, help text and the problem (ours or
// the API's) tied to it by `aria-describedby`, `aria-invalid` while there is a problem.
// `SpecField` draws one `Field` of the deploy form: a password box for a secret, a select
// for choices (and true/false), a text area for a repeated argument.
import { useState } from "preact/hooks";
import type { Field } from "../form/fields";

interface Common {
  id: string;
  label: string;
  hint?: string | null;
  error?: string | null | undefined;
  required?: boolean;
}

function describedBy(id: string, hint?: string | null, error?: string | null): string | undefined {
  const ids = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean);
  return ids.length ? ids.join(" ") : undefined;
}

function Label({ id, label, required, extra }: { id: string; label: string; required?: boolean; extra?: string }) {
  return (
    <label for={id}>
      {label}
      {required && <span class="tag tag-required">required</span>}
      {extra && <span class="tag">{extra}</span>}
    </label>
  );
}

function Notes({ id, hint, error }: { id: string; hint?: string | null; error?: string | null | undefined }) {
  return (
    <>
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="error-text" id={`${id}-error`}>
          {error}
        </p>
      )}
    </>
  );
}

export function TextField(
  props: Common & {
    value: string;
    onInput: (v: string) => void;
    type?: "text" | "email" | "password" | "search" | "url";
    autoComplete?: string;
    placeholder?: string;
    spellcheck?: boolean;
  },
) {
  const { id, label, hint, error, required, value, onInput } = props;
  return (
    <div class="field">
      <Label id={id} label={label} required={!!required} />
      <input
        id={id}
        name={id}
        // Preact types each input type apart; the attribute itself takes any of them.
        type={(props.type ?? "text") as "text"}
        value={value}
        onInput={(e) => onInput(e.currentTarget.value)}
        autocomplete={props.autoComplete ?? "off"}
        placeholder={props.placeholder}
        spellcheck={props.spellcheck ?? false}
        aria-required={required ? "true" : undefined}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={describedBy(id, hint, error)}
      />
      <Notes id={id} hint={hint} error={error} />
    </div>
  );
}

/** A sentence ends with a full stop before the next one starts. */
const sentence = (s: string) => (/[.!?:)]$/.test(s.trim()) ? s.trim() : `${s.trim()}.`);

function formatHint(f: Field): string {
  const parts = [f.description ? sentence(f.description) : ""];
  if (f.repeated) parts.push("One value per line.");
  if (f.format === "number") parts.push("A number.");
  if (f.format === "filepath") parts.push("A path on the server's machine.");
  if (f.secret && f.default !== null) parts.push("Left empty, the server's default is used.");
  return parts.filter(Boolean).join(" ");
}

export function SpecField({
  field,
  value,
  error,
  onInput,
}: {
  field: Field;
  value: string;
  error?: string | undefined;
  onInput: (v: string) => void;
}) {
  const id = `f-${field.id}`;
  const hint = formatHint(field);
  const [shown, setShown] = useState(false);
  const aria = {
    id,
    name: field.id,
    "aria-required": field.required ? ("true" as const) : undefined,
    "aria-invalid": error ? ("true" as const) : undefined,
    "aria-describedby": describedBy(id, hint, error),
  };
  const choices = field.format === "boolean" && field.choices.length === 0 ? ["true", "false"] : field.choices;
  let control;
  if (choices.length > 0) {
    control = (
      <select {...aria} value={value} onChange={(e) => onInput(e.currentTarget.value)}>
        {(!field.required || field.default === null || value === "") && (
          <option value="">{field.default !== null ? `Default (${field.default})` : "Not set"}</option>
        )}
        {choices.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    );
  } else if (field.repeated) {
    control = (
      <textarea
        {...aria}
        rows={3}
        value={value}
        placeholder={field.placeholder ?? undefined}
        spellcheck={false}
        onInput={(e) => onInput(e.currentTarget.value)}
      />
    );
  } else {
    control = (
      <span class={field.secret ? "secret-input" : undefined}>
        <input
          {...aria}
          type={(field.secret && !shown ? "password" : "text") as "text"}
          value={value}
          placeholder={field.placeholder ?? undefined}
          autocomplete={field.secret ? "new-password" : "off"}
          spellcheck={false}
          inputMode={field.format === "number" ? "decimal" : undefined}
          onInput={(e) => onInput(e.currentTarget.value)}
        />
        {field.secret && (
          <button
            type="button"
            class="btn btn-secondary btn-small"
            aria-pressed={shown ? "true" : "false"}
            aria-label={`Show ${field.key}`}
            onClick={() => setShown(!shown)}
          >
            Show
          </button>
        )}
      </span>
    );
  }
  return (
    <div class="field">
      <Label id={id} label={field.key} required={field.required} extra={field.secret ? "secret" : undefined} />
      {control}
      <Notes id={id} hint={hint} error={error} />
    </div>
  );
}
