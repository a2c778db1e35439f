// The MCP clients a person let in through OAuth (the consent page), each with a Revoke
// button: its tokens stop working at once and the list is read again. A client's name is
// its own, untrusted: shown as plain text beside its id.
import { useCallback, useEffect, useState } from "preact/hooks";
import { oauthGrants, revokeOAuthGrant, type OAuthGrant } from "../../api/oauth";
import { cleanName, isoFromUnix } from "../../oauth/consent";
import { Alert } from "../../ui/Alert";
import { Time } from "../../ui/Time";

export function OAuthClients({ id }: { id: string }) {
  const [grants, setGrants] = useState<OAuthGrant[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [said, setSaid] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setGrants(await oauthGrants(id));
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [id]);
  useEffect(() => {
    void load();
  }, [load]);

  const revoke = async (g: OAuthGrant, name: string) => {
    setBusy(g.id);
    setError(null);
    setSaid(null);
    try {
      await revokeOAuthGrant(id, g.id);
      setSaid(`Revoked ${name}: its tokens no longer work.`);
    } catch (e) {
      setError(e);
    }
    await load();
    setBusy(null);
  };

  return (
    <section class="card stack" aria-labelledby="oauth-clients-title" id="oauth-clients">
      <h2 id="oauth-clients-title">Connected clients</h2>
      <Alert error={error} />
      {said && (
        <p class="alert alert-ok" role="status">
          {said}
        </p>
      )}
      {grants === null && !error && <p class="muted">Loading…</p>}
      {grants?.length === 0 && (
        <p class="muted" id="oauth-clients-empty">
          No OAuth clients connected. Clients that support MCP authorization can connect with just the URL.
        </p>
      )}
      {grants && grants.length > 0 && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Connected clients table">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Client</th>
                <th scope="col">Redirects to</th>
                <th scope="col">Connected</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span class="visually-hidden">Revoke</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {grants.map((g) => {
                const name = cleanName(g.client_name) ?? g.client_id;
                return (
                  <tr key={g.id} data-grant={g.id}>
                    <td>
                      <span class="strong">{name}</span>
                      <br />
                      <code class="small">{g.client_id}</code>
                    </td>
                    <td class="nowrap">
                      <code>{g.redirect_host}</code>
                    </td>
                    <td>
                      <Time at={isoFromUnix(g.created_at)} />
                    </td>
                    <td>{g.last_used_at === null ? "never" : <Time at={isoFromUnix(g.last_used_at)} />}</td>
                    <td class="nowrap">
                      <button
                        type="button"
                        class="btn btn-secondary btn-small"
                        aria-label={`Revoke ${name}`}
                        disabled={busy !== null}
                        onClick={() => void revoke(g, name)}
                      >
                        {busy === g.id ? "Revoking…" : "Revoke"}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
