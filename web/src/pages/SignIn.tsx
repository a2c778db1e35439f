// Signing in. The Worker says which ways exist: the operator's identity provider (a link to
// its sign-in page) and, only on a development stack, a sign-in by email alone. Either way
// the Worker sets an HttpOnly cookie; this page keeps no token.
import { useEffect, useState } from "preact/hooks";
import { devSignIn, providers, type Providers, type User } from "../api/auth";
import { ApiError } from "../api/client";
import { Alert } from "../ui/Alert";
import { rememberConsent } from "../oauth/consent";
import { TextField } from "../ui/Fields";
import { PageTitle } from "../ui/PageTitle";

export function SignIn({
  onSignedIn,
  expired,
  refused,
  consent = false,
}: {
  onSignedIn: (u: User) => void;
  expired: boolean;
  refused?: unknown;
  /** On the OAuth consent page's address: signing in here shows the request next. */
  consent?: boolean;
}) {
  const [ways, setWays] = useState<Providers | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [email, setEmail] = useState("");
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    providers().then(setWays, setError);
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await devSignIn(email.trim()));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const emailError =
    error instanceof ApiError ? error.fields.find((f) => f.field === "email")?.message : undefined;

  return (
    <section class="narrow stack">
      <PageTitle title="Sign in">Sign in</PageTitle>
      {consent ? (
        <p>An MCP client asks for access to one of your deployments. Sign in to see the request and answer it.</p>
      ) : (
        <p>Deploy an MCP server from a GitHub link or a package, and get one URL for Claude or any MCP client.</p>
      )}
      {expired && <p class="alert alert-info">Your session ended. Sign in again.</p>}
      <Alert error={refused ?? null} />
      <Alert error={error} shown={["email"]} />
      {!ways && !error && <p class="muted">Loading…</p>}
      {ways?.login_url && (
        <p>
          <a
            class="btn"
            href={ways.login_url}
            onClick={() => consent && rememberConsent(sessionStorage, location.pathname + location.search)}
          >
            Sign in
          </a>
        </p>
      )}
      {consent && ways?.login_url && (
        <p class="hint">
          Signing in brings you back to this request in this tab. If it does not, start again from your MCP client (a
          request lasts 10 minutes).
        </p>
      )}
      {ways?.dev_sign_in && (
        <form class="card stack" onSubmit={submit} noValidate aria-labelledby="dev-title">
          <h2 id="dev-title">Development sign-in</h2>
          <p class="hint">This stack runs in development: any email signs in, without a password.</p>
          <TextField
            id="email"
            label="Email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onInput={setEmail}
            error={emailError}
          />
          <div>
            <button type="submit" class="btn" disabled={busy}>
              {busy ? "Signing in…" : "Sign in"}
            </button>
          </div>
        </form>
      )}
      {ways && !ways.login_url && !ways.dev_sign_in && (
        <p class="alert alert-info">Sign-in is not set up on this server yet. Ask its operator (AUTH_LOGIN_URL).</p>
      )}
    </section>
  );
}
