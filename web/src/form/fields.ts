// The deploy form as data: one `Field` per credential (an analysis's or a registry entry's
// `env_vars`, a deployment's stored variables) and per registry argument (`inputs`), the
// same checks the server makes (docs/api.md `POST /api/deployments`, the Worker's
// `registry::form::check_value` and `deploy::request`), and the request parts they become.
// Pure: no DOM, no fetch.
import type { Schemas } from "../api/client";

export type Format = "string" | "number" | "boolean" | "filepath";

export interface Field {
  /** The API's name for it in 422 `fields`: `credentials.NAME` or `arguments.key`. */
  id: string;
  kind: "credentials" | "arguments";
  key: string;
  description: string | null;
  required: boolean;
  secret: boolean;
  default: string | null;
  choices: string[];
  format: Format;
  placeholder: string | null;
  /** A repeated argument takes several values (one per line). */
  repeated: boolean;
}

/** What the person typed, by field id (a repeated field: one value per line). */
export type Values = Record<string, string>;
/** Problems by field id (or `name`), each worded like the server words it. */
export type Problems = Record<string, string>;

type PlanVar = Schemas["EnvVar"];
type RichVar = Schemas["RegistryServer"]["env_vars"][number];
type StoredVar = NonNullable<Schemas["Deployment"]["env_vars"]>[number];
type Input = Schemas["Input"];

/** Longest argument value, and longest credential value (bytes). */
export const MAX_ARGUMENT = 1024;
export const MAX_CREDENTIAL = 8 * 1024;
export const MAX_VALUES = 32;

export function credentialFields(vars: ReadonlyArray<PlanVar | RichVar | StoredVar>): Field[] {
  return vars.map((v) => {
    const rich = v as Partial<RichVar>;
    return {
      id: `credentials.${v.name}`,
      kind: "credentials",
      key: v.name,
      description: rich.description ?? null,
      required: v.required,
      secret: v.secret,
      default: rich.default ?? null,
      choices: rich.choices ?? [],
      format: rich.format ?? "string",
      placeholder: rich.placeholder ?? null,
      repeated: false,
    };
  });
}

export function argumentFields(inputs: ReadonlyArray<Input>): Field[] {
  return inputs.map((i) => ({
    id: `arguments.${i.key}`,
    kind: "arguments",
    key: i.key,
    description: i.description,
    required: i.required,
    secret: i.secret,
    default: i.default,
    choices: i.choices,
    format: i.format,
    placeholder: i.placeholder,
    repeated: i.repeated,
  }));
}

/** Starting values: each non-secret default, so the person sees what will be used. */
export function initialValues(fields: ReadonlyArray<Field>): Values {
  const v: Values = {};
  for (const f of fields) v[f.id] = !f.secret && f.default !== null ? f.default : "";
  return v;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const NUMBER = /^-?[0-9]+(\.[0-9]+)?$/;
const bytes = (s: string) => new TextEncoder().encode(s).length;

/** The server's `check_value`: length, control characters, choices, format. */
export function checkValue(value: string, choices: ReadonlyArray<string>, format: Format): string | null {
  if (bytes(value) > MAX_ARGUMENT) return `must be at most ${MAX_ARGUMENT} bytes`;
  if (CONTROL.test(value)) return "must not contain control characters";
  if (choices.length > 0 && !choices.includes(value)) return `must be one of: ${choices.join(", ")}`;
  if (format === "number" && !NUMBER.test(value)) return "must be a number";
  if (format === "boolean" && value !== "true" && value !== "false") return "must be true or false";
  if ((format === "string" || format === "filepath") && value === "") return "must not be empty";
  return null;
}

/** The values a field's text stands for: one per non-empty line when repeated. */
export function valuesOf(field: Field, text: string): string[] {
  if (field.repeated) return text.split(/\r?\n/).filter((line) => line.trim() !== "");
  return text === "" ? [] : [text];
}

function problemOf(field: Field, text: string): string | null {
  if (field.kind === "credentials") {
    if (text.trim() === "") return field.required ? "is required by this server" : null;
    if (bytes(text) > MAX_CREDENTIAL) return `must be at most ${MAX_CREDENTIAL} bytes`;
    if (text.includes("\0")) return "must not contain NUL characters";
    // Free text may hold newlines (a PEM key): only its choices bind it.
    if (field.format === "string") {
      return field.choices.length > 0 && !field.choices.includes(text)
        ? `must be one of: ${field.choices.join(", ")}`
        : null;
    }
    return checkValue(text, field.choices, field.format);
  }
  const values = valuesOf(field, text);
  if (values.length === 0) {
    return field.required && field.default === null ? "is required by this server" : null;
  }
  if (values.length > MAX_VALUES) return `takes at most ${MAX_VALUES} values`;
  for (const v of values) {
    const why = checkValue(v, field.choices, field.format);
    if (why) return why;
  }
  return null;
}

/** Every problem at once, by field id; empty when the form may be sent. */
export function check(fields: ReadonlyArray<Field>, values: Values): Problems {
  const problems: Problems = {};
  for (const f of fields) {
    const why = problemOf(f, values[f.id] ?? "");
    if (why) problems[f.id] = why;
  }
  return problems;
}

/** The request parts: fields left empty are left out (the server applies defaults). */
export function toRequest(
  fields: ReadonlyArray<Field>,
  values: Values,
): { credentials: Record<string, string>; arguments: Record<string, string | string[]> } {
  const credentials: Record<string, string> = {};
  const args: Record<string, string | string[]> = {};
  for (const f of fields) {
    const text = values[f.id] ?? "";
    if (f.kind === "credentials") {
      if (text.trim() !== "") credentials[f.key] = text;
      continue;
    }
    const vs = valuesOf(f, text);
    if (vs.length > 0) args[f.key] = f.repeated ? vs : (vs[0] as string);
  }
  return { credentials, arguments: args };
}

/** A deployment name's problem, as the server words it; `null` when it is fine. */
export function checkName(typed: string): string | null {
  const name = typed.trim();
  const count = [...name].length;
  if (count === 0 || count > 80 || CONTROL.test(name)) return "must be 1-80 printable characters";
  if (slugOf(name) === "") return "must contain at least one letter or digit (a-z, 0-9)";
  return null;
}

/** The slug the server derives from a name (`My Weather` → `my-weather`). */
export function slugOf(typed: string): string {
  let slug = "";
  for (const c of typed.trim()) {
    if (/^[A-Za-z0-9]$/.test(c)) slug += c.toLowerCase();
    else if (slug !== "" && !slug.endsWith("-")) slug += "-";
  }
  slug = slug.replace(/-+$/, "");
  if (slug === "") return "";
  if (!/^[a-z]/.test(slug)) slug = `mcp-${slug}`;
  return slug.slice(0, 40).replace(/-+$/, "");
}

/** A first name to offer: the package's last part (`@acme/weather-mcp` → `weather-mcp`). */
export function suggestName(source: string): string {
  const base = source.replace(/^(npm|pypi):/, "").replace(/@[^@/]*$/, "");
  const last = base.split("/").filter(Boolean).pop() ?? base;
  return last.replace(/\.git$/, "").slice(0, 80);
}
