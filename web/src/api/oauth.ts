// OAuth for MCP clients (issue 15, docs/api.md "OAuth"): the consent page's pending
// request and decision, and a deployment's connected clients. Typed by the contract like
// every call.
import { call, type Schemas } from "./client";

export type OAuthRequest = Schemas["OAuthRequest"];
export type OAuthRedirect = Schemas["OAuthRedirect"];
export type OAuthGrant = Schemas["OAuthGrant"];

export function oauthRequest(key: string): Promise<OAuthRequest> {
  return call("get", "/api/oauth/requests/{key}", { params: { key } });
}

export function decideOAuthRequest(key: string, approve: boolean): Promise<OAuthRedirect> {
  return call("post", "/api/oauth/requests/{key}", { params: { key }, body: { approve } });
}

export async function oauthGrants(id: string): Promise<OAuthGrant[]> {
  return (await call("get", "/api/deployments/{id}/oauth-grants", { params: { id } })).grants;
}

export async function revokeOAuthGrant(id: string, key: string): Promise<void> {
  await call("delete", "/api/deployments/{id}/oauth-grants/{key}", { params: { id, key } });
}
