// An API failure in the API's own words: its message, and every field it named that no
// form field on the page shows by itself.
import type { ComponentChildren } from "preact";
import { ApiError, messageOf } from "../api/client";

export function Alert({ error, shown = [] }: { error: unknown; shown?: string[] }) {
  if (!error) return null;
  const unshown = error instanceof ApiError ? error.fields.filter((f) => !shown.includes(f.field)) : [];
  // The message usually names every field already ("registry: …"): no second copy then.
  const fields = unshown.filter((f) => !messageOf(error).includes(`${f.field}: ${f.message}`));
  const retry = error instanceof ApiError && error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
  return (
    <div class="alert alert-error" role="alert">
      <p>
        {messageOf(error)}
        {retry}
      </p>
      {fields.length > 0 && (
        <ul>
          {fields.map((f) => (
            <li key={f.field}>
              <code>{f.field}</code> {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Info({ children }: { children: ComponentChildren }) {
  return (
    <div class="alert alert-info" role="status">
      {children}
    </div>
  );
}
