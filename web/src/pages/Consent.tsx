// The OAuth consent page, /oauth/consent?request={rid}: where the Worker's /oauth/authorize
// sends a person whose MCP client asked for access to one deployment. It names the client
// (its own name is untrusted text, so its id and how it is identified are shown too), the
// host the browser goes to next (where the grant goes), the deployment, and what is
// granted; "Allow" or "Deny" answers the Worker, and the browser follows its redirect only
// when that goes to the host shown. Signed in like every page: the sign-in shows on this
// same address and the page comes back after it.
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../api/client";
import { decideOAuthRequest, oauthRequest, type OAuthRequest } from "../api/oauth";
import { cleanName, clientOrigin, consentProblem, isoFromUnix, redirectAllowed, redirectTarget } from "../oauth/consent";
import { Alert } from "../ui/Alert";
import { PageTitle } from "../ui/PageTitle";
import { Time } from "../ui/Time";

/** A failure in this page's words when it has some (not the owner, gone), else the API's. */
function Problem({ error }: { error: unknown }) {
  const mine = error instanceof ApiError ? consentProblem(error) : null;
  if (!mine) return <Alert error={error} />;
  return (
    <div class="alert alert-error" role="alert" id="consent-error">
      <p>{mine}</p>
    </div>
  );
}

export function Consent({ rid }: { rid: string }) {
  const [req, setReq] = useState<OAuthRequest | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<"allow" | "deny" | null>(null);
  // Set once the Worker has answered a decision: the request is used up either way.
  const [leaving, setLeaving] = useState<string | null>(null);
  const [refused, setRefused] = useState<string | null>(null);

  useEffect(() => {
    if (rid) oauthRequest(rid).then(setReq, setError);
  }, [rid]);

  const decide = async (approve: boolean) => {
    if (!req) return;
    setBusy(approve ? "allow" : "deny");
    setError(null);
    try {
      const { redirect_to } = await decideOAuthRequest(rid, approve);
      if (!redirectAllowed(redirect_to, req.redirect_host)) {
        const went = redirectTarget(redirect_to) ?? "an address that is not a web page";
        setRefused(
          `The server answered with a redirect to ${went}, not to ${req.redirect_host} as shown, so this page did not follow it.` +
            (approve ? " Revoke the client under the deployment's connected clients if you do not trust it." : ""),
        );
        setBusy(null);
        return;
      }
      setLeaving(req.redirect_host);
      window.location.assign(redirect_to);
    } catch (e) {
      setError(e);
      setBusy(null);
    }
  };

  const heading = <PageTitle title="Allow access">Allow access?</PageTitle>;
  if (!rid) {
    return (
      <section class="narrow stack">
        {heading}
        <div class="alert alert-error" role="alert">
          <p>This address names no request. Start again from your MCP client.</p>
        </div>
      </section>
    );
  }
  if (!req) {
    return (
      <section class="narrow stack">
        {heading}
        {error ? <Problem error={error} /> : <p class="muted">Loading…</p>}
      </section>
    );
  }

  const name = cleanName(req.client.client_name);
  const decided = leaving !== null || refused !== null;
  return (
    <section class="narrow stack consent">
      <PageTitle title="Allow access">
        Allow access to <span class="name">{req.deployment.name}</span>?
      </PageTitle>
      <p>
        <strong class="name" id="consent-client">
          {name ?? "A client with no name"}
        </strong>{" "}
        wants to call the tools of your MCP server <strong class="name">{req.deployment.name}</strong> as you.
      </p>
      <div class="alert alert-warning redirect-host">
        <p>After you choose, your browser goes to</p>
        <p class="host" id="consent-redirect-host">
          {req.redirect_host}
        </p>
        <p class="small">Allow only if you recognise this host as the MCP client you are connecting.</p>
      </div>
      <section class="card stack" aria-labelledby="consent-details">
        <h2 id="consent-details">Details</h2>
        <dl class="facts">
          <dt>Client</dt>
          <dd>{name ?? <span class="muted">no name given</span>}</dd>
          <dt>Client ID</dt>
          <dd>
            <code id="consent-client-id">{req.client.client_id}</code>
          </dd>
          <dt>Identity</dt>
          <dd id="consent-client-kind">{clientOrigin(req.client.kind, req.client.client_id)}</dd>
          <dt>Deployment</dt>
          <dd>
            {req.deployment.name} (<code>{req.deployment.id}</code>)
          </dd>
          <dt>Access</dt>
          <dd>
            Call this one MCP server's tools as you, until you revoke it on the deployment's page. Nothing else: not
            your other deployments, not this dashboard.
          </dd>
          <dt>Request expires</dt>
          <dd>
            <Time at={isoFromUnix(req.expires_at)} />
          </dd>
        </dl>
      </section>
      {error !== null && <Problem error={error} />}
      {refused && (
        <div class="alert alert-error" role="alert" id="consent-error">
          <p>{refused}</p>
        </div>
      )}
      <p role="status" class={busy ? "alert alert-info" : "visually-hidden"}>
        {busy && !leaving && (busy === "allow" ? "Allowing…" : "Denying…")}
        {leaving && `${busy === "deny" ? "Denied" : "Allowed"}. Going to ${leaving}…`}
      </p>
      {/* The names stay "Allow" and "Deny" whatever happens (the browser test finds them by name). */}
      <div class="row">
        <button type="button" class="btn" disabled={busy !== null || decided} onClick={() => void decide(true)}>
          Allow
        </button>
        <button type="button" class="btn btn-secondary" disabled={busy !== null || decided} onClick={() => void decide(false)}>
          Deny
        </button>
      </div>
    </section>
  );
}
