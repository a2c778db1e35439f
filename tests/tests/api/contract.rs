//! The API contract on the real stack: schemathesis (PyPI, pinned in
//! `tests/contract/requirements.txt`, installed into `.venv` by `scripts/bootstrap.sh`)
//! reads `docs/openapi.json` as the Worker serves it (`GET /api/openapi.json`) and drives
//! every operation with generated requests — valid and invalid, within a fixed seed and a
//! bounded number of examples — running all of its checks on every answer: no 5xx, only
//! documented statuses, content types and headers, bodies that match their schemas,
//! invalid input refused, auth enforced, 405 + `Allow` for other methods.
//!
//! The stack is its own: the local machines service with three seeded deployments, so the
//! deployment routes and the MCP gateway answer for real, not only 404 — a running one for
//! the reads and the gateway (with its access token), a running one for stop / start /
//! restart / rotate / credentials, one to delete; loopback fakes for npm, PyPI, GitHub and
//! the official MCP registry (its v0.1 wire format, the fixtures of
//! `tests/fixtures/registry/`); the development sign-in on; no LLM key.
//!
//! OAuth (issue 15) is seeded the way an MCP client and the dashboard drive it, so its
//! operations answer for real too: a client registered by DCR; pending authorization
//! requests (`/oauth/authorize` with that client, for the served deployment); grants the
//! owner approved, with their codes exchanged for tokens. What the run cannot reach: a
//! code inside its 60 s (codes are minted before the run starts, and every one is single
//! use), a Client ID Metadata Document client (the Worker fetches those over https from a
//! public host; loopback only under `OAUTH_LOOPBACK_CLIENTS`, which the OAuth stack tests
//! exercise with a test CA), and a consent by someone who does not own the deployment
//! (one session here; `not_owner` is in the OAuth stack tests).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use edge_tests::fake::FakeServer;
use edge_tests::runner::{publish_everything, Machines, EVERYTHING_PACKAGE, EVERYTHING_VERSION};
use edge_tests::stack::{Stack, StackOptions};
use reqwest::{Method, Url};
use serde_json::{json, Value};

/// Fixed so a failure reproduces: `schemathesis run … --seed SEED` finds the same cases.
const SEED: u64 = 20261203;
/// Generated cases per operation and phase: about 2,000 requests, under a minute here.
const MAX_EXAMPLES: u32 = 30;

/// Operations left out of the run, by `operationId` (none: every operation is driven).
const EXCLUDED: &[&str] = &[];

/// The seeded deployment's credential value (the README of the fake package requires it).
const CANARY: &str = "contract-canary-value";

/// A server of the official MCP registry (v0.1 wire format) whose package is the fake
/// npm registry's server-everything: an entry that can be deployed here.
fn everything_entry() -> Value {
    json!({
        "server": {
            "name": EVERYTHING_ENTRY,
            "description": "Every MCP feature, for testing clients.",
            "title": "Everything",
            "version": "1.0.0",
            "repository": {"url": "https://github.com/modelcontextprotocol/servers", "source": "github"},
            "packages": [{
                "registryType": "npm",
                "registryBaseUrl": "https://registry.npmjs.org",
                "identifier": EVERYTHING_PACKAGE,
                "version": EVERYTHING_VERSION,
                "transport": {"type": "stdio"},
                "environmentVariables": [{
                    "name": "CANARY_TOKEN", "description": "A token the server reads.",
                    "isRequired": true, "isSecret": true, "format": "string"
                }]
            }],
            "remotes": [{"type": "streamable-http", "url": "https://everything.example.com/mcp"}]
        },
        "_meta": {"io.modelcontextprotocol.registry/official": {
            "status": "active", "publishedAt": "2026-10-01T12:00:00Z",
            "updatedAt": "2026-11-01T12:00:00Z", "isLatest": true
        }}
    })
}

const EVERYTHING_ENTRY: &str = "io.github.modelcontextprotocol/everything";

struct Fixture {
    /// npm, PyPI, GitHub and the MCP registry, each under its own prefix.
    _upstreams: FakeServer,
    /// The server names the fake registry knows.
    registry_names: Vec<String>,
    _machines: Machines,
    stack: Stack,
    _dir: tempfile::TempDir,
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let machines = Machines::start(&dir.path().join("machines"), 600);
    let fake = FakeServer::start();
    publish_everything(&fake);
    let registry_names = edge_tests::registry::publish(&fake, vec![everything_entry()]);
    let base = fake.url();
    let stack = Stack::start(StackOptions {
        vars: [
            machines.fly_vars(),
            vec![
                ("NPM_REGISTRY_BASE".into(), format!("{base}/npm")),
                ("PYPI_BASE".into(), format!("{base}/pypi")),
                ("GITHUB_API_BASE".into(), format!("{base}/github-api")),
                ("GITHUB_RAW_BASE".into(), format!("{base}/github-raw")),
                ("MCP_REGISTRY_BASE".into(), format!("{base}/registry")),
                ("FLY_START_TIMEOUT_SECS".into(), "60".into()),
                // The three seeded deployments and at most two that generated requests create.
                ("MAX_DEPLOYMENTS_PER_USER".into(), "5".into()),
                // So that the development sign-in answers for real, not only its 404.
                ("DEV_SIGN_IN".into(), "true".into()),
            ],
        ]
        .concat(),
        // Registration is limited to 20 a minute per address, and locally every request
        // shares one address: the run registers far more than that, and is here to reach
        // what registration checks, not the limiter (429 is documented and allowed).
        patch: Some(|doc| {
            edge_tests::stack::set_rate_limit(doc, "OAUTH_RATE_LIMITER", 100_000);
        }),
        ..Default::default()
    });
    Fixture {
        _upstreams: fake,
        registry_names,
        _machines: machines,
        stack,
        _dir: dir,
    }
}

/// Creates a deployment of the fake registry's server-everything named `name`: (id,
/// access token).
async fn create(stack: &Stack, session: &str, name: &str) -> (String, String) {
    let body = json!({"name": name, "package": format!("npm:{EVERYTHING_PACKAGE}"),
        "credentials": {"CANARY_TOKEN": CANARY}});
    let (status, created, text) = stack
        .call(Method::POST, "/api/deployments", session, Some(body))
        .await;
    assert_eq!(status, 201, "{text}");
    let id = created["id"].as_str().expect("id").to_string();
    let token = created["access_token"].as_str().expect("token").to_string();
    (id, token)
}

/// [`create`], then waits for `running`.
async fn seed(stack: &Stack, session: &str, name: &str) -> (String, String) {
    let (id, token) = create(stack, session, name).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = stack
            .get_json(&format!("/api/deployments/{id}"), session)
            .await;
        if d["status"] == "running" {
            return (id, token);
        }
        assert!(
            d["status"] == "deploying" && Instant::now() < deadline,
            "the seeded deployment did not reach running: {d}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Where the seeded OAuth client receives its codes: a loopback port nothing listens on
/// (nothing follows a redirect there; schemathesis does not follow redirects).
const REDIRECT_URI: &str = "http://127.0.0.1:9/contract/callback";
/// RFC 7636 appendix B's PKCE pair.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// What the run gets of OAuth: the client, two pending requests, and two grants: one to
/// delete, one whose refresh token the token endpoint gets. (`oauthRevoke` answers 200 for
/// any token, known or not, so it needs no seed.)
struct OAuthSeed {
    client_id: String,
    /// The served deployment's MCP URL: the `resource` of every request.
    resource: String,
    /// For `getOAuthRequest` (never answered, so it stays readable for the whole run).
    shown: String,
    /// For `decideOAuthRequest`: the first valid answer consumes it, later ones are 404.
    decided: String,
    /// For `revokeOAuthGrant`.
    grant: String,
    /// For `oauthToken`: fresh until its first use (passed in the environment, like every
    /// credential here, not written into the config file).
    refresh_token: String,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// `POST /oauth/register` as the TypeScript SDK sends it: the client id.
async fn register_client(stack: &Stack) -> String {
    let body = json!({"redirect_uris": [REDIRECT_URI], "client_name": "Contract client",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none", "scope": "mcp"});
    let resp = no_redirects()
        .post(stack.url("/oauth/register"))
        .json(&body)
        .send()
        .await
        .expect("register");
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{v}");
    v["client_id"].as_str().expect("client_id").to_string()
}

/// A valid authorization request: the pending request's key, from the consent page's URL.
async fn pending_request(stack: &Stack, client_id: &str, resource: &str) -> String {
    let url = Url::parse_with_params(
        &stack.url("/oauth/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "contract"),
            ("resource", resource),
            ("scope", "mcp"),
        ],
    )
    .expect("authorize url");
    let resp = no_redirects().get(url).send().await.expect("authorize");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(status, 302, "authorize: {location}");
    location
        .strip_prefix("/oauth/consent?request=")
        .unwrap_or_else(|| panic!("not the consent page: {location}"))
        .to_string()
}

/// A grant the owner approved, its code exchanged: the token response.
async fn grant(stack: &Stack, session: &str, client_id: &str, resource: &str) -> Value {
    let rid = pending_request(stack, client_id, resource).await;
    let (status, answer, text) = stack
        .call(
            Method::POST,
            &format!("/api/oauth/requests/{rid}"),
            session,
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let to = Url::parse(answer["redirect_to"].as_str().expect("redirect_to")).expect("url");
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {to}"));
    let resp = no_redirects()
        .post(stack.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
            ("resource", resource),
        ])
        .send()
        .await
        .expect("token");
    let status = resp.status().as_u16();
    let tokens: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn seed_oauth(stack: &Stack, session: &str, served: &str) -> OAuthSeed {
    let client_id = register_client(stack).await;
    let resource = stack.url(&format!("/api/mcp/{served}"));
    let shown = pending_request(stack, &client_id, &resource).await;
    let decided = pending_request(stack, &client_id, &resource).await;
    grant(stack, session, &client_id, &resource).await;
    let grants = stack
        .get_json(&format!("/api/deployments/{served}/oauth-grants"), session)
        .await;
    let grant_id = grants["grants"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no grant listed: {grants}"))
        .to_string();
    let refreshed = grant(stack, session, &client_id, &resource).await;
    OAuthSeed {
        refresh_token: refreshed["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string(),
        client_id,
        resource,
        shown,
        decided,
        grant: grant_id,
    }
}

/// The operations that change a deployment's state (and so would stop or reboot the one
/// the gateway is tested through): they get a deployment of their own.
const LIFECYCLE: &[&str] = &[
    "rotateToken",
    "stopDeployment",
    "startDeployment",
    "restartDeployment",
    "putCredentials",
];

/// schemathesis' configuration: the credentials of each security scheme (read from the
/// environment, so no secret is written to disk), the seeded deployments' ids, and where
/// an answer depends on state a schema cannot express, the statuses that state allows.
fn config(
    dir: &Path,
    served: &str,
    lifecycle: &str,
    doomed: &str,
    registry_names: &[String],
    oauth: &OAuthSeed,
) -> std::path::PathBuf {
    let quoted = |ops: &[&str]| {
        ops.iter()
            .map(|o| format!("\"{o}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        r#"[auth.openapi.session]
bearer = "${{CONTRACT_SESSION}}"
[auth.openapi.syncSecret]
api_key = "${{CONTRACT_SYNC_SECRET}}"
[auth.openapi.accessToken]
bearer = "${{CONTRACT_ACCESS_TOKEN}}"
[auth.openapi.accessTokenHeader]
api_key = "${{CONTRACT_ACCESS_TOKEN}}"
[auth.openapi.accessTokenQuery]
api_key = "${{CONTRACT_ACCESS_TOKEN}}"

# A body over 65,536 bytes is refused as such (413), whatever else is wrong with it.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

# Reads and the MCP gateway: the running deployment.
[parameters]
"path.id" = "{served}"

# Stop, start, restart, rotate and credentials: the other one. Rotating the token or
# replacing the credentials reboots the machine before the answer (documented), which
# may take a Fly stop grace period: more than the 10 s response-time check allows.
[[operations]]
include-operation-id = [{lifecycle_ops}]
parameters = {{ "path.id" = "{lifecycle}" }}
request-timeout = 30
checks.max_response_time = 30

# Delete: a third one, so that the others answer for the whole run.
[[operations]]
include-operation-id = "deleteDeployment"
parameters = {{ "path.id" = "{doomed}" }}
request-timeout = 30
checks.max_response_time = 30

# One registry entry: half the time a name the fake registry knows (so its entries are
# read, not only its 404).
[dictionaries.registry]
values = [{registry_values}]
[[operations]]
include-operation-id = "getRegistryServer"
parameters = {{ "path.name" = {{ dictionary = "registry", probability = 0.5 }} }}

# A message other than `initialize` needs the session `initialize` opened: state no schema
# can express, so the runner's 400 is an answer a valid message may get.
[[operations]]
include-operation-id = "mcpPost"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429", "5xx"]

# Credentials are checked against the deployment's analysis (required variables present,
# none it does not read) and a name against your other deployments (unique slug, the
# per-person cap): a schema-valid body may be a 422.
[[operations]]
include-operation-id = ["createDeployment", "putCredentials"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]

# A session's stream never ends by itself: schemathesis reads it until the request
# timeout and checks the events it got, so keep that short.
[[operations]]
include-operation-id = "mcpStream"
request-timeout = 3

# OAuth. An authorization request for the seeded client, its redirect URI and the served
# deployment's MCP URL, so that the request is judged past the client (a generated
# client_id is an unknown client: a 400 page every time). Once the client and its redirect
# URI are trusted, RFC 6749 §4.1.2.1 sends every other error back to the client as a 302
# redirect carrying `error=…`, never a 4xx: so for this operation alone a 302 is how
# invalid input is refused. (The 400 page is still reached: a parameter over 2,048
# characters is refused before the client is looked up.)
[[operations]]
include-operation-id = "oauthAuthorize"
parameters = {{ "query.client_id" = "{client_id}", "query.redirect_uri" = "{redirect_uri}", "query.resource" = "{resource}" }}
checks.negative_data_rejection.expected-statuses = ["302", "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

# A client's metadata is read as URLs (a parser's idea of a host, a port, a scheme), which
# no JSON Schema pattern can say exactly; the document's patterns are the loose outline. So
# a schema-valid registration may still be refused 400 `invalid_redirect_uri` /
# `invalid_client_metadata` (the RFC 7591 answer).
[[operations]]
include-operation-id = "oauthRegister"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "429", "5xx"]

# The token endpoint: the seeded client and a refresh token of one of its grants. A refresh
# token is single use (rotated, and presenting it again revokes the grant) and a code can
# not be made ahead (single use, 60 s), so after the refresh token's first use every
# well-formed request is rightly 400 `invalid_grant`: the state no schema can express.
[[operations]]
include-operation-id = "oauthToken"
parameters = {{ "body.client_id" = "{client_id}", "body.refresh_token" = "${{CONTRACT_REFRESH_TOKEN}}" }}
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "429", "5xx"]

# The consent page's API: a pending request that is only read, and one that is answered
# (once; a 404 from then on, documented). Both are the served deployment's, whose owner the
# session is.
[[operations]]
include-operation-id = "getOAuthRequest"
parameters = {{ "path.key" = "{shown}" }}
[[operations]]
include-operation-id = "decideOAuthRequest"
parameters = {{ "path.key" = "{decided}" }}

# A connected client of the served deployment: the first DELETE revokes it, later ones 404.
[[operations]]
include-operation-id = "revokeOAuthGrant"
parameters = {{ "path.key" = "{grant}" }}
"#,
        client_id = oauth.client_id,
        redirect_uri = REDIRECT_URI,
        resource = oauth.resource,
        shown = oauth.shown,
        decided = oauth.decided,
        grant = oauth.grant,
        lifecycle_ops = quoted(LIFECYCLE),
        registry_values = quoted(
            &registry_names
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        ),
    );
    let path = dir.join("schemathesis.toml");
    std::fs::write(&path, text).expect("write schemathesis.toml");
    path
}

/// Longest a schemathesis run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Runs schemathesis against the stack's own document; (exit success, its report).
fn schemathesis(stack: &Stack, cfg: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let bin = edge_tests::repo_root().join(".venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/bootstrap.sh (make test does)",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.arg("--config-file")
        .arg(cfg)
        .arg("run")
        .arg(stack.url("/api/openapi.json"))
        .args(["--checks", "all"])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", &SEED.to_string()])
        // No example database: every run generates the same cases from the seed.
        .args(["--generation-database", "none"])
        .args(["--no-color"]);
    for op in EXCLUDED {
        cmd.args(["--exclude-operation-id", op]);
    }
    // Its reports and caches go to the config's temporary directory, not the repository.
    cmd.current_dir(cfg.parent().expect("config dir"))
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start schemathesis");
    let (mut stdout, mut stderr) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    match status {
        Some(s) => (s.success(), report),
        None => (false, format!("{report}\n(killed after {RUN_LIMIT:?})")),
    }
}

/// Every operation, as schemathesis drives it with all its checks, keeps the contract.
#[tokio::test]
async fn every_operation_keeps_the_documented_contract() {
    let f = start();
    let session = f.stack.token("contract", Some("contract@example.com"));
    let (served, access) = seed(&f.stack, &session, "Contract").await;
    let (lifecycle, _) = seed(&f.stack, &session, "Lifecycle").await;
    let (doomed, _) = create(&f.stack, &session, "Doomed").await;
    // Last, so that the pending requests (10 minutes) are young when the run starts.
    let oauth = seed_oauth(&f.stack, &session, &served).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &served,
        &lifecycle,
        &doomed,
        &f.registry_names,
        &oauth,
    );
    let sync = f.stack.var("AUTH_SYNC_SECRET").to_string();
    let env = [
        ("CONTRACT_SESSION", session.as_str()),
        ("CONTRACT_SYNC_SECRET", sync.as_str()),
        ("CONTRACT_ACCESS_TOKEN", access.as_str()),
        ("CONTRACT_REFRESH_TOKEN", oauth.refresh_token.as_str()),
    ];
    let started = Instant::now();
    // Blocking is fine here: the stack, the fakes and the machines run outside this runtime.
    let (ok, report) = schemathesis(&f.stack, &cfg, &env);
    // Its summary (operations, cases, failures) in the test's output either way.
    let summary = report
        .rfind("SUMMARY")
        .map_or(report.as_str(), |i| &report[i..]);
    eprintln!("schemathesis ran {:?}:\n{summary}", started.elapsed());
    assert!(
        ok,
        "schemathesis found contract violations (seed {SEED}, {MAX_EXAMPLES} examples):\n{report}"
    );
    // The seeded OAuth state was reached, not only the 404s around it: the answered
    // request is gone, the read one is still there, the seeded grant was revoked.
    let path = |key: &str| format!("/api/oauth/requests/{key}");
    let (status, _, _) = f
        .stack
        .call(Method::GET, &path(&oauth.decided), &session, None)
        .await;
    assert_eq!(
        status, 404,
        "decideOAuthRequest never answered the seeded request"
    );
    let (status, _, text) = f
        .stack
        .call(Method::GET, &path(&oauth.shown), &session, None)
        .await;
    assert_eq!(status, 200, "the pending request read all run: {text}");
    let grants = f
        .stack
        .get_json(&format!("/api/deployments/{served}/oauth-grants"), &session)
        .await;
    assert!(
        !grants.to_string().contains(&oauth.grant),
        "revokeOAuthGrant never revoked the seeded grant: {grants}"
    );
}
