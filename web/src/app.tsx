// The shell: who is signed in (asked once; any 401 later drops back to sign-in), the
// header with its navigation, and which page the path shows. Each page is keyed by its
// path, so leaving a page drops its state — a token shown once included.
import { useEffect, useState } from "preact/hooks";
import { adoptReturnedSession, currentUser, signOut, type User } from "./api/auth";
import { whenUnauthorized } from "./api/client";
import { Audit } from "./pages/Audit";
import { takeConsent } from "./oauth/consent";
import { Consent } from "./pages/Consent";
import { Deploy } from "./pages/Deploy";
import { DeploymentPage } from "./pages/Deployment";
import { Deployments } from "./pages/Deployments";
import { SettingsPage } from "./pages/Settings";
import { SignIn } from "./pages/SignIn";
import { followLink, navigate, usePath } from "./router";
import { Alert } from "./ui/Alert";
import { PageTitle } from "./ui/PageTitle";

const NAV = [
  { href: "/", label: "Deploy" },
  { href: "/deployments", label: "Deployments" },
  { href: "/audit", label: "Audit log" },
  { href: "/settings", label: "Settings" },
];

function page(path: string) {
  if (path === "/") return <Deploy />;
  if (path === "/deployments") {
    const deleted = new URLSearchParams(location.search).get("deleted");
    return <Deployments notice={deleted ? `Deleted ${deleted}.` : undefined} />;
  }
  const m = /^\/deployments\/(dep_[0-9a-f]+)$/.exec(path);
  if (m) return <DeploymentPage id={m[1] as string} />;
  if (path === "/audit") return <Audit />;
  if (path === "/settings") return <SettingsPage />;
  if (path === "/oauth/consent") return <Consent rid={new URLSearchParams(location.search).get("request") ?? ""} />;
  return (
    <div class="stack">
      <PageTitle title="Not found">Page not found</PageTitle>
      <p>
        There is no page at <code>{path}</code>. <a href="/">Deploy a server</a> or see your{" "}
        <a href="/deployments">deployments</a>.
      </p>
    </div>
  );
}

function current(href: string, path: string): boolean {
  return href === "/" ? path === "/" : path === href || path.startsWith(`${href}/`);
}

export function App() {
  // undefined: still asking; null: signed out.
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [expired, setExpired] = useState(false);
  const [bootError, setBootError] = useState<unknown>(null);
  // The identity provider's token, refused (expired, wrong issuer, …): said on the sign-in page.
  const [refused, setRefused] = useState<unknown>(null);
  const path = usePath();

  useEffect(() => {
    whenUnauthorized(() => {
      setUser((u) => {
        if (u) setExpired(true);
        return null;
      });
    });
    adoptReturnedSession()
      .then((u) => {
        // Back from the identity provider: to the consent request that sent the person there.
        const back = u ? takeConsent(sessionStorage) : null;
        if (back) navigate(back);
        return u;
      })
      .catch((e: unknown) => {
        setRefused(e);
        return null;
      })
      .then((u) => u ?? currentUser())
      .then(setUser, setBootError);
    return () => whenUnauthorized(null);
  }, []);

  const leave = async () => {
    try {
      await signOut();
    } finally {
      setExpired(false);
      setUser(null);
      navigate("/");
    }
  };

  let content;
  if (bootError) content = <Alert error={bootError} />;
  else if (user === undefined) content = <p class="muted">Loading…</p>;
  else if (user === null) {
    content = (
      <SignIn
        expired={expired}
        refused={refused}
        consent={path === "/oauth/consent"}
        onSignedIn={(u) => {
          setExpired(false);
          setUser(u);
        }}
      />
    );
  } else content = <div key={path + location.search}>{page(path)}</div>;

  return (
    <div class="shell" onClick={(e) => followLink(e as unknown as MouseEvent)}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a href="/" class="brand">
          Catwalk Edge
        </a>
        {user && (
          <nav aria-label="Main">
            <ul>
              {NAV.map((n) => (
                <li key={n.href}>
                  <a href={n.href} aria-current={current(n.href, path) ? "page" : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        {user && (
          <div class="who">
            <span class="muted small">{user.email ?? user.name ?? user.id}</span>
            <button type="button" class="btn btn-secondary btn-small" onClick={() => void leave()}>
              Sign out
            </button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {content}
      </main>
    </div>
  );
}
