// What the deploy flow carries from step to step: the server found (an analysis of a
// link or package, or a registry entry) and, once created, the answer holding the token.
import type { Schemas } from "../../api/client";
import { argumentFields, credentialFields, type Field } from "../../form/fields";

export type Found =
  | { kind: "source"; source: string; plan: Schemas["Plan"] }
  | { kind: "registry"; name: string; server: Schemas["RegistryServer"] };

export type Created = Schemas["Created"];

export function fieldsOf(found: Found): Field[] {
  return found.kind === "source"
    ? credentialFields(found.plan.env_vars)
    : [...argumentFields(found.server.inputs), ...credentialFields(found.server.env_vars)];
}

/** `https://…` is a repository link; anything else is a package (`npm:` / `pypi:`). */
export function sourceBody(source: string): { repo_url: string } | { package: string } {
  return /^https?:\/\//i.test(source) ? { repo_url: source } : { package: source };
}
