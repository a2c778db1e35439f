// OAuth for MCP clients (issue 15, docs/api.md): the consent page's pending request and
// decision, and a deployment's connected clients.
//
// LOCAL TYPES, for now: docs/openapi.json does not document these four operations yet,
// so `call` (typed by the contract) cannot name them. The answers below are declared by
// hand from issue 15's wire contract and sent through `send`, the
// same transport as `call` (same-origin, cookie, the API's errors as ApiError). Once the
// contract has them, this file becomes `call("get", "/api/oauth/requests/{request}", …)`
// and `Answer<…>` / `Schemas[…]`, and the types below go.
import { send } from "./client";

export interface OAuthClient {
  client_id: string;
  client_name: string | null;
  client_uri: string | null;
  logo_uri: string | null;
  kind: "metadata_document" | "registered";
}

/** `GET /api/oauth/requests/{rid}` */
export interface OAuthRequest {
  request: string;
  client: OAuthClient;
  /** `host[:port]` of the redirect URI: where the grant goes. */
  redirect_host: string;
  deployment: { id: string; name: string };
  scope: string;
  /** Unix seconds. */
  expires_at: number;
}

/** `POST /api/oauth/requests/{rid}` */
export interface OAuthDecision {
  redirect_to: string;
}

/** One of `GET /api/deployments/{id}/oauth-grants`'s `grants`. */
export interface OAuthGrant {
  id: string;
  client_id: string;
  client_name: string | null;
  redirect_host: string;
  /** Unix seconds. */
  created_at: number;
  last_used_at: number | null;
}

const seg = encodeURIComponent;

export function oauthRequest(rid: string): Promise<OAuthRequest> {
  return send("get", `/api/oauth/requests/${seg(rid)}`) as Promise<OAuthRequest>;
}

export function decideOAuthRequest(rid: string, approve: boolean): Promise<OAuthDecision> {
  return send("post", `/api/oauth/requests/${seg(rid)}`, { approve }) as Promise<OAuthDecision>;
}

export async function oauthGrants(id: string): Promise<OAuthGrant[]> {
  const answer = (await send("get", `/api/deployments/${seg(id)}/oauth-grants`)) as { grants: OAuthGrant[] };
  return answer.grants;
}

export async function revokeOAuthGrant(id: string, grant: string): Promise<void> {
  await send("delete", `/api/deployments/${seg(id)}/oauth-grants/${seg(grant)}`);
}
