//! Issue 15: OAuth 2.1 for MCP clients, on the real stack with real clients. The wire
//! contract is `docs/oauth.md`'s; its table maps each requirement to the test here.
//!
//! One stack for the module ([`oworld`]): wrangler dev with `OAUTH_LOOPBACK_CLIENTS=true` and
//! a test CA in `NODE_EXTRA_CA_CERTS`, the local machines service behind a recording
//! forwarder (the machines' ingress, so a test can see every request a machine got; it
//! answers the standalone GET stream itself with 405, as it buffers), and a
//! loopback HTTPS host for Client ID Metadata Documents ([`edge_tests::oauth::CimdHost`]).
//! - The official SDKs end to end: the Python SDK's `OAuthClientProvider` (metadata
//!   document, consent by the signed-in person's cookie) and the TypeScript SDK's auth
//!   provider (Dynamic Client Registration, consent clicked in headless Chromium), each
//!   through discovery → registration → authorize → token → `tools/call echo` → refresh →
//!   echo → revocation → 401 naming `resource_metadata`; no secret in the Worker's log, no
//!   client token at the machine.
//! - Refusals on the wire: resource, PKCE, redirect URIs, reused codes and refresh tokens,
//!   audience, metadata documents, consent by a non-owner, rotation and deletion.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use edge_tests::clients;
use edge_tests::fake::{FakeServer, Reply};
use edge_tests::oauth::{self as o, AuthRequest, CimdHost, Granted};
use edge_tests::runner::{publish_everything, Machines, EVERYTHING_PACKAGE};
use edge_tests::stack::{set_rate_limit, Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};

struct OAuthWorld {
    stack: Stack,
    cimd: CimdHost,
    /// The machines' ingress: forwards to the machines service and records what it got.
    ingress: FakeServer,
    _registry: FakeServer,
    _machines: Machines,
    _dir: tempfile::TempDir,
}

fn oworld() -> &'static OAuthWorld {
    static W: OnceLock<OAuthWorld> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let machines = Machines::start(&dir.path().join("machines"), 600);
        let ingress = FakeServer::start();
        ingress.on("*", "/*", Reply::forward(machines.base_url.clone()));
        // The forwarder buffers whole answers, so a standalone GET stream (open until the
        // session ends) would hang behind it: the machine offers none here (405, which the
        // MCP transport allows and both SDKs accept). The GET is still recorded.
        ingress.on("GET", "/mcp", Reply::status(405));
        let registry = FakeServer::start();
        publish_everything(&registry);
        let cimd = CimdHost::start();
        let mut vars = machines.fly_vars();
        vars.retain(|(k, _)| k != "FLY_INGRESS_BASE");
        vars.extend(
            [
                ("FLY_INGRESS_BASE", ingress.url()),
                ("NPM_REGISTRY_BASE", format!("{}/npm", registry.url())),
                ("FLY_START_TIMEOUT_SECS", "30".to_string()),
                ("OAUTH_LOOPBACK_CLIENTS", "true".to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        let stack = Stack::start(StackOptions {
            vars,
            env: vec![(
                "NODE_EXTRA_CA_CERTS".into(),
                cimd.ca_file().display().to_string(),
            )],
            // Many tests register a client from one address within a minute.
            patch: Some(|doc| set_rate_limit(doc, "OAUTH_RATE_LIMITER", 1000)),
            ..Default::default()
        });
        OAuthWorld {
            stack,
            cimd,
            ingress,
            _registry: registry,
            _machines: machines,
            _dir: dir,
        }
    })
}

fn base(w: &OAuthWorld) -> String {
    w.stack.base_url.clone()
}

/// A fresh person: their session JWT, which is also their `cw_session` cookie's value.
fn person(w: &OAuthWorld) -> String {
    let sub = format!("oauth-{}", edge_tests::random_hex(6));
    w.stack.token(&sub, Some(&format!("{sub}@example.com")))
}

/// Where the SDK runs' records and the consent page's screenshot go (kept after the run).
fn artifacts() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| edge_tests::repo_root().join("target"))
        .join("test-artifacts/oauth");
    std::fs::create_dir_all(&dir).ok();
    dir
}

fn unique() -> String {
    edge_tests::random_hex(5)
}

/// A deployment of server-everything, running.
#[derive(Clone, Debug)]
struct Dep {
    id: String,
    /// `BASE/api/mcp/{id}`: the MCP URL, which is also the OAuth `resource`.
    url: String,
    static_token: String,
    owner: String,
}

async fn deploy(w: &OAuthWorld, owner: &str, name: &str) -> Dep {
    let body = json!({"name": name, "package": format!("npm:{EVERYTHING_PACKAGE}"),
        "credentials": {"CANARY_TOKEN": "oauth-canary"}});
    let (s, created, text) = w
        .stack
        .call(Method::POST, "/api/deployments", owner, Some(body))
        .await;
    assert_eq!(s, 201, "{text}");
    let id = created["id"].as_str().unwrap().to_string();
    let d = w.stack.settled(owner, &id, Duration::from_secs(120)).await;
    assert_eq!(d["status"], "running", "{d}");
    Dep {
        url: w.stack.url(&format!("/api/mcp/{id}")),
        static_token: created["access_token"].as_str().unwrap().to_string(),
        owner: owner.to_string(),
        id,
    }
}

/// One running deployment shared by the tests that revoke only their own grants.
async fn shared_dep() -> &'static Dep {
    static D: tokio::sync::OnceCell<Dep> = tokio::sync::OnceCell::const_new();
    D.get_or_init(|| async {
        let w = oworld();
        deploy(w, &person(w), "oauth-shared").await
    })
    .await
}

/// A registered (DCR) client with one loopback redirect URI: (client_id, redirect_uri).
async fn dcr_client(w: &OAuthWorld) -> (String, String) {
    let redirect = format!("http://127.0.0.1:{}/cb", edge_tests::free_port());
    let id = o::register_client(&base(w), "wire test client", &[&redirect]).await;
    (id, redirect)
}

/// The `resource_metadata` pointer a 401 from `dep_url` must carry.
fn metadata_pointer(w: &OAuthWorld, dep_id: &str) -> String {
    format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/api/mcp/{dep_id}\"",
        base(w)
    )
}

/// The gateway refuses `bearer` at `dep`: 401, `WWW-Authenticate: Bearer` naming the
/// deployment's metadata and `error="invalid_token"`.
async fn assert_refused(w: &OAuthWorld, dep: &Dep, bearer: &str, why: &str) {
    let a = o::mcp_initialize(&dep.url, bearer).await;
    assert_eq!(a.status, 401, "{why}: {}", a.text);
    let www = a.header("www-authenticate").unwrap_or_default();
    assert!(www.starts_with("Bearer "), "{why}: {www}");
    assert!(www.contains(&metadata_pointer(w, &dep.id)), "{why}: {www}");
    assert!(www.contains("error=\"invalid_token\""), "{why}: {www}");
}

async fn assert_accepted(dep: &Dep, bearer: &str, why: &str) {
    let a = o::mcp_initialize(&dep.url, bearer).await;
    assert_eq!(a.status, 200, "{why}: {}", a.text);
}

/// None of `secrets` is in the Worker's log (console output is written asynchronously, so
/// a marker request is logged first and waited for).
async fn assert_not_logged(w: &OAuthWorld, secrets: &[String]) {
    let marker = format!("/api/oauth-log-marker-{}", unique());
    let _ = o::http().get(w.stack.url(&marker)).send().await;
    let logs = w.stack.wait_for_log(&marker);
    for s in secrets.iter().filter(|s| s.len() >= 16) {
        assert!(
            !logs.contains(s.as_str()),
            "a secret ({}…) is in the Worker's log",
            &s[..8]
        );
    }
}

/// No request the machines got carries any of `secrets` (headers, query or body).
fn assert_not_at_machine(w: &OAuthWorld, secrets: &[String]) {
    let seen = w.ingress.requests();
    assert!(!seen.is_empty(), "the machines' ingress saw no request");
    for r in &seen {
        let all = format!("{r:?}");
        for s in secrets.iter().filter(|s| s.len() >= 16) {
            assert!(
                !all.contains(s.as_str()),
                "a client's secret reached the machine: {} {}",
                r.method,
                r.path
            );
        }
    }
}

/// Whether the owner's audit log has `action` (and, if given, `reason` in its details).
async fn audited(w: &OAuthWorld, owner: &str, action: &str, reason: Option<&str>) -> bool {
    let (s, audit, text) = w
        .stack
        .call(Method::GET, "/api/audit?limit=100", owner, None)
        .await;
    assert_eq!(s, 200, "{text}");
    audit["items"].as_array().unwrap().iter().any(|e| {
        e["action"] == action && reason.is_none_or(|r| e.to_string().contains(&format!("\"{r}\"")))
    })
}

async fn assert_audited(w: &OAuthWorld, owner: &str, action: &str, reason: Option<&str>) {
    let (_, audit, _) = w
        .stack
        .call(Method::GET, "/api/audit?limit=100", owner, None)
        .await;
    assert!(
        audited(w, owner, action, reason).await,
        "no {action} ({reason:?}) in the audit log: {audit}"
    );
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Codes and tokens are stored only as SHA-256 digests: each digest is there, no value is.
fn assert_stored_hashed(w: &OAuthWorld, tokens: &[&str], codes: &[&str]) {
    let stored: String = [
        "oauth_tokens",
        "oauth_codes",
        "oauth_grants",
        "oauth_clients",
    ]
    .iter()
    .flat_map(|t| w.stack.query(&format!("SELECT * FROM {t}")))
    .map(|r| r.to_string())
    .collect();
    for v in tokens.iter().chain(codes) {
        assert!(
            !stored.contains(&v[4.min(v.len())..]),
            "a token or code is stored in plaintext"
        );
    }
    let digests: Vec<String> = w
        .stack
        .query("SELECT digest FROM oauth_tokens")
        .iter()
        .map(|r| r["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    for t in tokens {
        assert!(
            digests.contains(&sha256_hex(t)),
            "the token's SHA-256 digest is stored"
        );
    }
    let code_digests: Vec<String> = w
        .stack
        .query("SELECT digest FROM oauth_codes")
        .iter()
        .map(|r| r["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    for c in codes {
        assert!(
            code_digests.contains(&sha256_hex(c)),
            "the code's SHA-256 digest is stored"
        );
    }
}

// ------------------------------------------------------------------- the SDKs end to end

enum Registration<'a> {
    MetadataDocument(&'a str),
    Dynamic,
}

/// What both SDK runs must show, from their own record of the exchange.
async fn check_sdk_run(
    w: &OAuthWorld,
    sdk: &str,
    dep: &Dep,
    r: &Value,
    reg: Registration<'_>,
    redirect: &str,
) {
    let b = base(w);
    let http = r["http"].as_array().expect("http log");
    let find = |method: &str, url: &str| {
        http.iter()
            .find(|e| e["method"] == method && e["url"].as_str() == Some(url))
            .unwrap_or_else(|| panic!("{sdk}: no {method} {url} in {http:#?}"))
    };
    // The first call was refused with the metadata pointer (RFC 9728 §5.1).
    let first = &http[0];
    assert_eq!(first["status"], 401, "{sdk}: {first}");
    let www = first["www_authenticate"].as_str().unwrap_or_default();
    assert!(www.contains(&metadata_pointer(w, &dep.id)), "{sdk}: {www}");
    // Discovery: protected resource metadata, then authorization server metadata.
    let prm = format!(
        "{b}/.well-known/oauth-protected-resource/api/mcp/{}",
        dep.id
    );
    assert_eq!(find("GET", &prm)["status"], 200, "{sdk}");
    let asm = format!("{b}/.well-known/oauth-authorization-server");
    assert_eq!(find("GET", &asm)["status"], 200, "{sdk}");
    let client_id = r["client_id"].as_str().unwrap_or_default();
    match reg {
        Registration::MetadataDocument(url) => {
            assert_eq!(
                client_id, url,
                "{sdk}: the metadata document URL is the client id"
            );
            assert!(
                !http.iter().any(|e| e["url"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("/oauth/register")),
                "{sdk}: no DCR when the metadata document is used"
            );
        }
        Registration::Dynamic => {
            assert_eq!(
                find("POST", &format!("{b}/oauth/register"))["status"],
                201,
                "{sdk}"
            );
            assert!(client_id.starts_with("cwc_"), "{sdk}: {client_id}");
            let reg = &r["registration_response"];
            assert_eq!(reg["token_endpoint_auth_method"], "none", "{sdk}: {reg}");
            assert_eq!(reg["redirect_uris"], json!([redirect]), "{sdk}: {reg}");
        }
    }
    // The authorization request, as the SDK built it.
    let a = &r["authorize"][0];
    assert_eq!(a["response_type"], "code", "{sdk}: {a}");
    assert_eq!(a["client_id"], client_id, "{sdk}: {a}");
    assert_eq!(a["redirect_uri"], redirect, "{sdk}: {a}");
    assert_eq!(a["code_challenge_method"], "S256", "{sdk}: {a}");
    assert_eq!(a["resource"], dep.url.as_str(), "{sdk}: {a}");
    assert_eq!(a["scope"], "mcp", "{sdk}: {a}");
    assert!(
        a["state"].as_str().is_some_and(|s| !s.is_empty()),
        "{sdk}: {a}"
    );
    // Token requests: the code exchange and the refresh, each bound to the resource.
    let grants: Vec<&str> = r["token_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["resource"], dep.url.as_str(), "{sdk}: {t}");
            assert_eq!(t["client_id"], client_id, "{sdk}: {t}");
            t["grant_type"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(
        grants[..2],
        ["authorization_code", "refresh_token"],
        "{sdk}: {grants:?}"
    );
    for e in http.iter().filter(|e| {
        e["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/oauth/token")
            && e["status"] == 200
    }) {
        let cc = e["cache_control"].as_str().unwrap_or_default();
        assert!(
            cc.contains("no-store"),
            "{sdk}: token answer Cache-Control {cc}"
        );
    }
    // Tokens: opaque, prefixed, 256 bits; rotated on refresh.
    let tokens = r["tokens"].as_array().unwrap();
    assert!(tokens.len() >= 2, "{sdk}: {tokens:?}");
    for t in &tokens[..2] {
        let (acc, rt) = (
            t["access_token"].as_str().unwrap_or_default(),
            t["refresh_token"].as_str().unwrap_or_default(),
        );
        assert!(
            acc.starts_with("cwa_") && acc.len() == 47,
            "{sdk}: access token shape"
        );
        assert!(
            rt.starts_with("cwr_") && rt.len() == 47,
            "{sdk}: refresh token shape"
        );
        assert!(t["token_type"]
            .as_str()
            .unwrap_or_default()
            .eq_ignore_ascii_case("bearer"));
        assert_eq!(t["expires_in"], 3600, "{sdk}");
    }
    assert_ne!(
        tokens[0]["access_token"], tokens[1]["access_token"],
        "{sdk}"
    );
    assert_ne!(
        tokens[0]["refresh_token"], tokens[1]["refresh_token"],
        "{sdk}: rotated"
    );
    // The calls, before and after the refresh.
    assert_eq!(r["refreshed"], true, "{sdk}");
    assert!(
        r["echo1"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Echo: "),
        "{sdk}: {}",
        r["echo1"]
    );
    assert!(
        r["echo2"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Echo: "),
        "{sdk}: {}",
        r["echo2"]
    );
    // Revocation (RFC 7009), then the SDK's next call is a 401 naming the metadata.
    assert_eq!(r["revoke"]["status"], 200, "{sdk}: {}", r["revoke"]);
    assert_eq!(r["revoke"]["url"], format!("{b}/oauth/revoke"), "{sdk}");
    let after = &r["after_revoke"];
    assert_eq!(
        after["failed"], true,
        "{sdk}: a revoked grant still called: {after}"
    );
    let refused = after["http"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == dep.url.as_str() && e["status"] == 401)
        .unwrap_or_else(|| panic!("{sdk}: no 401 after revocation: {after:#}"));
    let www = refused["www_authenticate"].as_str().unwrap_or_default();
    assert!(www.contains(&metadata_pointer(w, &dep.id)), "{sdk}: {www}");
    assert!(www.contains("error=\"invalid_token\""), "{sdk}: {www}");
    // And on the wire: the last tokens are dead.
    let last = tokens.last().unwrap();
    let (acc, rt) = (
        last["access_token"].as_str().unwrap(),
        last["refresh_token"].as_str().unwrap(),
    );
    assert_refused(w, dep, acc, "revoked access token").await;
    let again = o::token(
        &b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", client_id),
        ],
    )
    .await;
    assert_eq!(
        (again.status, again.error()),
        (400, "invalid_grant"),
        "{}",
        again.text
    );
    // Secrets: not in the Worker's log, never at the machine.
    let secrets: Vec<String> = r["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect();
    assert!(
        secrets.len() >= 6,
        "{sdk}: secrets recorded: {}",
        secrets.len()
    );
    assert_not_logged(w, &secrets).await;
    assert_not_at_machine(w, &secrets);
    let all_tokens: Vec<&str> = tokens
        .iter()
        .flat_map(|t| {
            [
                t["access_token"].as_str().unwrap(),
                t["refresh_token"].as_str().unwrap(),
            ]
        })
        .collect();
    assert_stored_hashed(w, &all_tokens, &[]);
    // The grant and the client's revocation are in the owner's audit log.
    assert_audited(w, &dep.owner, "oauth.granted", None).await;
    assert_audited(w, &dep.owner, "oauth.revoked", Some("client")).await;
}

#[tokio::test]
async fn python_sdk_metadata_document_cookie_consent_refresh_and_revocation() {
    let t0 = Instant::now();
    let w = oworld();
    let owner = person(w);
    let dep = deploy(w, &owner, "oauth-python").await;
    let redirect = format!("http://127.0.0.1:{}/callback", edge_tests::free_port());
    let cimd_url = w
        .cimd
        .publish("python", "Catwalk Python SDK test", &[&redirect]);
    let cfg = json!({"url": dep.url, "base": base(w), "redirect_uri": redirect,
        "client_metadata_url": cimd_url, "session_cookie": owner});
    let (ok, r, stderr) =
        tokio::task::spawn_blocking(move || clients::oauth_script("py_oauth.py", &cfg))
            .await
            .unwrap();
    std::fs::write(artifacts().join("python.json"), format!("{r:#}")).ok();
    assert!(ok, "py_oauth.py failed: {r:#}\n{stderr}");
    let c = &r["consent"][0];
    assert_eq!(c["authorize_status"], 302, "{c}");
    let req = &c["request"];
    assert_eq!(req["client"]["client_id"], cimd_url.as_str(), "{req}");
    assert_eq!(req["client"]["kind"], "metadata_document", "{req}");
    assert_eq!(
        req["client"]["client_name"], "Catwalk Python SDK test",
        "{req}"
    );
    assert_eq!(
        req["redirect_host"],
        redirect[7..].trim_end_matches("/callback"),
        "{req}"
    );
    assert_eq!(req["deployment"]["id"], dep.id.as_str(), "{req}");
    assert_eq!(req["scope"], "mcp", "{req}");
    assert_eq!(c["callback"]["iss"], base(w), "{c}");
    assert!(
        w.cimd.fetched(&cimd_url) >= 1,
        "the Worker fetched the metadata document"
    );
    check_sdk_run(
        w,
        "python",
        &dep,
        &r,
        Registration::MetadataDocument(&cimd_url),
        &redirect,
    )
    .await;
    eprintln!(
        "python SDK end to end: {:.1} s (script {}s)",
        t0.elapsed().as_secs_f64(),
        r["seconds"]
    );
}

#[tokio::test]
async fn typescript_sdk_dynamic_registration_browser_consent_refresh_and_revocation() {
    let t0 = Instant::now();
    let w = oworld();
    let owner = person(w);
    let dep = deploy(w, &owner, "oauth-typescript").await;
    let port = edge_tests::free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let shots = artifacts();
    let cfg = json!({"url": dep.url, "base": base(w), "redirect_uri": redirect,
        "client_metadata_url": null, "session_cookie": owner, "consent": "browser",
        "chromium": "/usr/bin/chromium",
        "screenshot": shots.join("consent.png").display().to_string()});
    let (ok, r, stderr) =
        tokio::task::spawn_blocking(move || clients::oauth_script("ts_oauth.mjs", &cfg))
            .await
            .unwrap();
    std::fs::write(artifacts().join("typescript.json"), format!("{r:#}")).ok();
    assert!(ok, "ts_oauth.mjs failed: {r:#}\n{stderr}");
    // The consent page named the client, where the browser goes next and the deployment.
    let page = &r["consent"][0]["page"];
    assert_eq!(page["client"], "Catwalk TypeScript SDK test", "{page}");
    assert_eq!(page["client_id"], r["client_id"], "{page}");
    assert_eq!(page["redirect_host"], format!("127.0.0.1:{port}"), "{page}");
    assert!(
        page["body"]
            .as_str()
            .unwrap_or_default()
            .contains("oauth-typescript"),
        "the deployment's name is on the page: {page}"
    );
    assert_eq!(r["consent"][0]["landed_host"], format!("127.0.0.1:{port}"));
    assert_eq!(
        r["browser_errors"],
        json!([]),
        "no script error on the consent page"
    );
    // RFC 9207 and state (this SDK leaves both to the application).
    assert_eq!(r["callback"]["iss"], base(w), "{}", r["callback"]);
    assert_eq!(r["callback"]["state_matches"], true, "{}", r["callback"]);
    assert_eq!(r["refresh_result"], "AUTHORIZED");
    // After revocation the SDK tried its refresh token (refused), then asked to authorize.
    let after = &r["after_revoke"];
    assert_eq!(after["reauthorization_requested"], true, "{after:#}");
    let refresh = after["http"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["url"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/oauth/token")
        })
        .unwrap_or_else(|| panic!("no refresh after revocation: {after:#}"));
    assert_eq!(refresh["status"], 400, "{refresh}");
    assert!(
        refresh["body"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid_grant"),
        "{refresh}"
    );
    check_sdk_run(w, "typescript", &dep, &r, Registration::Dynamic, &redirect).await;
    eprintln!(
        "typescript SDK end to end: {:.1} s (script {}s)",
        t0.elapsed().as_secs_f64(),
        r["seconds"]
    );
}

/// The other way round: the Python SDK registers with DCR, the TypeScript SDK uses a metadata
/// document (consent by cookie for both), on one deployment at the same time.
#[tokio::test]
async fn the_sdks_the_other_way_round_python_by_dcr_typescript_by_metadata_document() {
    let t0 = Instant::now();
    let w = oworld();
    let owner = person(w);
    let dep = deploy(w, &owner, "oauth-swapped").await;
    let py_redirect = format!("http://127.0.0.1:{}/callback", edge_tests::free_port());
    let ts_redirect = format!("http://127.0.0.1:{}/callback", edge_tests::free_port());
    let cimd_url = w
        .cimd
        .publish("typescript", "Catwalk TypeScript SDK test", &[&ts_redirect]);
    let py_cfg = json!({"url": dep.url, "base": base(w), "redirect_uri": py_redirect,
        "client_metadata_url": null, "session_cookie": owner});
    let ts_cfg = json!({"url": dep.url, "base": base(w), "redirect_uri": ts_redirect,
        "client_metadata_url": cimd_url, "session_cookie": owner, "consent": "cookie"});
    let py = tokio::task::spawn_blocking(move || clients::oauth_script("py_oauth.py", &py_cfg));
    let ts = tokio::task::spawn_blocking(move || clients::oauth_script("ts_oauth.mjs", &ts_cfg));
    let ((py_ok, py, py_err), (ts_ok, ts, ts_err)) = (py.await.unwrap(), ts.await.unwrap());
    std::fs::write(artifacts().join("python-dcr.json"), format!("{py:#}")).ok();
    std::fs::write(artifacts().join("typescript-cimd.json"), format!("{ts:#}")).ok();
    assert!(py_ok, "py_oauth.py failed: {py:#}\n{py_err}");
    assert!(ts_ok, "ts_oauth.mjs failed: {ts:#}\n{ts_err}");
    assert_eq!(py["consent"][0]["request"]["client"]["kind"], "registered");
    assert_eq!(
        ts["consent"][0]["request"]["client"]["kind"],
        "metadata_document"
    );
    assert_eq!(ts["callback"]["iss"], base(w));
    assert!(w.cimd.fetched(&cimd_url) >= 1);
    check_sdk_run(
        w,
        "python (DCR)",
        &dep,
        &py,
        Registration::Dynamic,
        &py_redirect,
    )
    .await;
    check_sdk_run(
        w,
        "typescript (metadata document)",
        &dep,
        &ts,
        Registration::MetadataDocument(&cimd_url),
        &ts_redirect,
    )
    .await;
    eprintln!(
        "both SDKs the other way round: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------------------------- discovery

#[tokio::test]
async fn discovery_documents_and_the_401_pointer() {
    let w = oworld();
    let b = base(w);
    let id = format!("dep_{}", "0a".repeat(15));
    let resource = format!("{b}/api/mcp/{id}");
    let get = |path: String| async move {
        let resp = o::http()
            .get(format!("{}{path}", base(oworld())))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string());
        (
            status,
            ct.unwrap_or_default(),
            resp.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    // RFC 9728, for any well-formed id, and the root variant.
    let (s, ct, prm) = get(format!(
        "/.well-known/oauth-protected-resource/api/mcp/{id}"
    ))
    .await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(prm["resource"], resource.as_str(), "{prm}");
    assert_eq!(prm["authorization_servers"], json!([b]), "{prm}");
    assert_eq!(prm["bearer_methods_supported"], json!(["header"]), "{prm}");
    assert_eq!(prm["scopes_supported"], json!(["mcp"]), "{prm}");
    let (s, _, root) = get("/.well-known/oauth-protected-resource".into()).await;
    assert_eq!(s, 200);
    assert_eq!(root["resource"], b.as_str(), "{root}");
    // RFC 8414 and the aliases clients are known to ask for: one document.
    let want = json!({
        "issuer": b,
        "authorization_endpoint": format!("{b}/oauth/authorize"),
        "token_endpoint": format!("{b}/oauth/token"),
        "registration_endpoint": format!("{b}/oauth/register"),
        "revocation_endpoint": format!("{b}/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["mcp"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    });
    for path in [
        "/.well-known/oauth-authorization-server".to_string(),
        format!("/.well-known/oauth-authorization-server/api/mcp/{id}"),
        "/.well-known/openid-configuration".to_string(),
        format!("/.well-known/openid-configuration/api/mcp/{id}"),
        format!("/api/mcp/{id}/.well-known/openid-configuration"),
    ] {
        let (s, _, asm) = get(path.clone()).await;
        assert_eq!(s, 200, "{path}");
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&asm[k], v, "{path}: {k} in {asm}");
        }
    }
    // Every 401 from the gateway points at the metadata: no token, and a token refused.
    let dep = shared_dep().await;
    let resp = o::http()
        .post(&dep.url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        www.starts_with("Bearer ") && www.contains(&metadata_pointer(w, &dep.id)),
        "{www}"
    );
    let fake = format!("cwa_{}", "A".repeat(43));
    assert_refused(w, dep, &fake, "an unknown OAuth token").await;
    // Static tokens keep working beside OAuth.
    assert_accepted(dep, &dep.static_token, "the static token").await;
}

// ---------------------------------------------------------------------- registration

#[tokio::test]
async fn dynamic_client_registration_follows_rfc_7591() {
    let w = oworld();
    let b = base(w);
    let ok = o::register(
        &b,
        &json!({"client_name": "Reg test", "redirect_uris": ["http://127.0.0.1:9/cb", "com.example.app:/cb", "https://client.example/cb"],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let id = ok.json["client_id"].as_str().unwrap_or_default();
    assert!(id.starts_with("cwc_") && id.len() == 36, "{id}");
    assert!(ok.json["client_id_issued_at"].is_u64(), "{}", ok.text);
    assert_eq!(ok.json["token_endpoint_auth_method"], "none");
    assert_eq!(
        ok.json["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(ok.json["response_types"], json!(["code"]));
    assert!(
        ok.json.get("client_secret").is_none(),
        "public clients get no secret"
    );
    for (body, err) in [
        (
            json!({"redirect_uris": ["http://client.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://client.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://client.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
    ] {
        let a = o::register(&b, &body).await;
        assert_eq!((a.status, a.error()), (400, err), "{body}: {}", a.text);
        assert!(a.json["error_description"].is_string(), "{}", a.text);
    }
}

// ---------------------------------------------------------------------- authorization

/// Errors after the client and redirect URI are known go back to the client (with state
/// and iss); before that, a 400 page and never a redirect.
#[tokio::test]
async fn authorize_refuses_wrong_resource_missing_or_plain_pkce_and_bad_scope() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let (client, redirect) = dcr_client(w).await;
    let p = o::pkce();
    let good = AuthRequest::new(&client, &redirect, &p.challenge, &dep.url);
    let cases = [
        (good.clone().without("resource"), "invalid_target"),
        (
            good.clone()
                .set("resource", &format!("{b}/api/mcp/dep_{}", "f".repeat(30))),
            "invalid_target",
        ),
        // (A trailing slash, `…/api/mcp/{id}/`, is accepted as the same resource: the
        // SDKs compare resources that way too.)
        (
            good.clone().set(
                "resource",
                &format!("https://elsewhere.example/api/mcp/{}", dep.id),
            ),
            "invalid_target",
        ),
        (good.clone().without("code_challenge"), "invalid_request"),
        (
            good.clone()
                .set("code_challenge_method", "plain")
                .set("code_challenge", &p.verifier),
            "invalid_request",
        ),
        (
            good.clone().without("code_challenge_method"),
            "invalid_request",
        ),
        (good.clone().set("scope", "admin"), "invalid_scope"),
        (
            good.clone().set("response_type", "token"),
            "unsupported_response_type",
        ),
    ];
    for (req, want) in cases {
        let a = req.send(&b).await;
        assert_eq!(a.status, 302, "{:?}: {}", req.params, a.text);
        let loc = a.location().unwrap_or_default();
        assert!(loc.starts_with(&redirect), "{:?} went to {loc}", req.params);
        assert_eq!(
            o::query_param(loc, "error").as_deref(),
            Some(want),
            "{:?}: {loc}",
            req.params
        );
        assert_eq!(
            o::query_param(loc, "state").as_deref(),
            req.get("state"),
            "{loc}"
        );
        assert_eq!(
            o::query_param(loc, "iss").as_deref(),
            Some(b.as_str()),
            "{loc}"
        );
    }
    // The good one goes to the consent page.
    good.pending(&b).await;
}

#[tokio::test]
async fn redirect_uris_match_exactly_and_unknown_clients_get_no_redirect() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let (client, redirect) = dcr_client(w).await;
    let p = o::pkce();
    let good = AuthRequest::new(&client, &redirect, &p.challenge, &dep.url);
    let port = redirect
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/cb");
    for bad in [
        format!("{redirect}/more"),
        format!("{redirect}?x=1"),
        redirect.replace("/cb", "/CB"),
        format!("http://127.0.0.2:{port}/cb"),
        format!("https://127.0.0.1:{port}/cb"),
        "https://evil.example/cb".to_string(),
    ] {
        let req = good.clone().set("redirect_uri", &bad);
        let a = req.send(&b).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.text);
        assert!(a.location().is_none(), "{bad}: no redirect, ever");
        let j = req.send_json(&b).await;
        assert_eq!(j.status, 400, "{bad}");
        assert_eq!(j.error(), "invalid_request", "{bad}: {}", j.text);
    }
    // An unknown client: the same 400, no redirect.
    let unknown = good
        .clone()
        .set("client_id", &format!("cwc_{}", "0".repeat(32)));
    let a = unknown.send(&b).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.location().is_none());
    assert_eq!(unknown.send_json(&b).await.error(), "invalid_client");
    // RFC 8252 §7.3: a loopback redirect URI may come back on another port.
    let other_port = format!("http://127.0.0.1:{}/cb", edge_tests::free_port());
    good.clone()
        .set("redirect_uri", &other_port)
        .pending(&b)
        .await;
    // The code exchange must name the redirect URI the authorization used.
    let owner = &dep.owner;
    let rid = good.pending(&b).await;
    let to = o::consent_post(&b, owner, &rid, true).await;
    assert_eq!(to.status, 200, "{}", to.text);
    let code = o::query_param(to.json["redirect_to"].as_str().unwrap(), "code").unwrap();
    let t = o::token(
        &b,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &format!("{redirect}x")),
            ("client_id", &client),
            ("code_verifier", &p.verifier),
            ("resource", &dep.url),
        ],
    )
    .await;
    assert_eq!((t.status, t.error()), (400, "invalid_grant"), "{}", t.text);
}

#[tokio::test]
async fn the_token_endpoint_checks_pkce_resource_and_answers_in_rfc_6749_form() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let (client, redirect) = dcr_client(w).await;
    let approve = |p: &o::Pkce| {
        let req = AuthRequest::new(&client, &redirect, &p.challenge, &dep.url);
        let (b, owner) = (b.clone(), dep.owner.clone());
        async move {
            let rid = req.pending(&b).await;
            let to = o::consent_post(&b, &owner, &rid, true).await;
            assert_eq!(to.status, 200, "{}", to.text);
            o::query_param(to.json["redirect_to"].as_str().unwrap(), "code").unwrap()
        }
    };
    let exchange = |code: String, verifier: Option<String>, resource: String| {
        let (b, client, redirect) = (b.clone(), client.clone(), redirect.clone());
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
                ("redirect_uri", redirect),
                ("client_id", client),
                ("resource", resource),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            o::token(&b, &form).await
        }
    };
    // A wrong verifier, and none at all.
    let p = o::pkce();
    let code = approve(&p).await;
    let t = exchange(code, Some(o::pkce().verifier), dep.url.clone()).await;
    assert_eq!((t.status, t.error()), (400, "invalid_grant"), "{}", t.text);
    let code = approve(&p).await;
    let t = exchange(code, None, dep.url.clone()).await;
    assert_eq!(t.status, 400, "{}", t.text);
    assert!(
        ["invalid_request", "invalid_grant"].contains(&t.error()),
        "{}",
        t.text
    );
    // A resource other than the one authorized (RFC 8707 §2.2).
    let code = approve(&p).await;
    let other = format!("{b}/api/mcp/dep_{}", "e".repeat(30));
    let t = exchange(code, Some(p.verifier.clone()), other).await;
    assert_eq!(t.status, 400, "{}", t.text);
    assert!(
        ["invalid_target", "invalid_grant"].contains(&t.error()),
        "{}",
        t.text
    );
    // RFC 6749 §5.2 form: JSON with `error`, no-store.
    let t = o::token(
        &b,
        &[
            ("grant_type", "password"),
            ("username", "x"),
            ("password", "y"),
        ],
    )
    .await;
    assert_eq!(
        (t.status, t.error()),
        (400, "unsupported_grant_type"),
        "{}",
        t.text
    );
    assert!(t
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    assert!(t
        .header("cache-control")
        .unwrap_or_default()
        .contains("no-store"));
    let t = o::token(&b, &[("grant_type", "authorization_code")]).await;
    assert_eq!(
        (t.status, t.error()),
        (400, "invalid_request"),
        "{}",
        t.text
    );
    // The right one works, and answers no-store.
    let code = approve(&p).await;
    let t = exchange(code, Some(p.verifier.clone()), dep.url.clone()).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert!(t
        .header("cache-control")
        .unwrap_or_default()
        .contains("no-store"));
    assert_eq!(t.json["token_type"], "Bearer");
    assert_eq!(t.json["scope"], "mcp");
    // RFC 7009: revoking an unknown token is still 200.
    assert_eq!(o::revoke(&b, "cwa_not-a-token", None).await.status, 200);
}

// ------------------------------------------------------------------- reuse detection

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_what_it_issued() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let (client, redirect) = dcr_client(w).await;
    let g: Granted = o::grant(&b, &dep.owner, &client, &redirect, &dep.url).await;
    assert_accepted(dep, &g.access, "fresh access token").await;
    let again = o::token(
        &b,
        &[
            ("grant_type", "authorization_code"),
            ("code", &g.code),
            ("redirect_uri", &redirect),
            ("client_id", &client),
            ("code_verifier", &g.verifier),
            ("resource", &dep.url),
        ],
    )
    .await;
    assert_eq!(
        (again.status, again.error()),
        (400, "invalid_grant"),
        "{}",
        again.text
    );
    assert_refused(w, dep, &g.access, "an access token from a reused code").await;
    let r = o::refresh(&b, &g, &g.refresh).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{}", r.text);
    assert_stored_hashed(w, &[&g.access, &g.refresh], &[&g.code]);
    assert_audited(w, &dep.owner, "oauth.revoked", Some("code_reuse")).await;
    assert_not_logged(w, &[g.code, g.verifier, g.access, g.refresh]).await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_family() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let (client, redirect) = dcr_client(w).await;
    let g = o::grant(&b, &dep.owner, &client, &redirect, &dep.url).await;
    let first = o::refresh(&b, &g, &g.refresh).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let (a2, r2) = (
        first.json["access_token"].as_str().unwrap().to_string(),
        first.json["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_ne!(r2, g.refresh, "rotated");
    assert_accepted(dep, &a2, "the refreshed access token").await;
    // The old refresh token again: refused, and the family is gone.
    let replay = o::refresh(&b, &g, &g.refresh).await;
    assert_eq!(
        (replay.status, replay.error()),
        (400, "invalid_grant"),
        "{}",
        replay.text
    );
    assert_refused(w, dep, &a2, "the newest access token after a replay").await;
    let r = o::refresh(&b, &g, &r2).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{}", r.text);
    // A refresh for another resource is refused too (audience stays bound).
    let g2 = o::grant(&b, &dep.owner, &client, &redirect, &dep.url).await;
    let other = Granted {
        resource: format!("{b}/api/mcp/dep_{}", "d".repeat(30)),
        ..g2.clone()
    };
    let r = o::refresh(&b, &other, &g2.refresh).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        ["invalid_target", "invalid_grant"].contains(&r.error()),
        "{}",
        r.text
    );
    assert_audited(w, &dep.owner, "oauth.revoked", Some("refresh_reuse")).await;
    assert_not_logged(w, &[g.access, g.refresh, a2, r2]).await;
}

// ------------------------------------------------------------------------- audience

#[tokio::test]
async fn a_token_for_one_deployment_is_refused_by_another() {
    let w = oworld();
    let b = base(w);
    let owner = person(w);
    let (a, bb) = tokio::join!(
        deploy(w, &owner, "oauth-aud-a"),
        deploy(w, &owner, "oauth-aud-b")
    );
    let (client, redirect) = dcr_client(w).await;
    let g = o::grant(&b, &owner, &client, &redirect, &a.url).await;
    assert_accepted(&a, &g.access, "A's token at A").await;
    assert_refused(w, &bb, &g.access, "A's token at B").await;
    // B still works with its own static token, and A's token after all that.
    assert_accepted(&bb, &bb.static_token, "B's static token").await;
    assert_accepted(&a, &g.access, "A's token at A, again").await;
    // The token is accepted only as a bearer header (the metadata says
    // `bearer_methods_supported: ["header"]`), never from the query string, where URLs
    // carry it into other people's logs.
    // Anywhere else (`?token=`, `X-Access-Token`, both static-token places) it is refused.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "oauth-wire-test", "version": "1"}}});
    let mut seen = Vec::new();
    for place in ["query", "x-access-token"] {
        let mut r = o::http()
            .post(if place == "query" {
                format!("{}?token={}", a.url, g.access)
            } else {
                a.url.clone()
            })
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        if place == "x-access-token" {
            r = r.header("x-access-token", &g.access);
        }
        let resp = r.json(&init).send().await.unwrap();
        seen.push((place, resp.status().as_u16()));
    }
    assert_eq!(
        seen,
        [("query", 401), ("x-access-token", 401)],
        "an OAuth token outside the Authorization header is refused"
    );
}

// -------------------------------------------------------------- metadata documents

#[tokio::test]
async fn metadata_documents_too_large_slow_redirecting_or_mismatched_are_refused() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let run = unique();
    let redirect = format!("http://127.0.0.1:{}/cb", edge_tests::free_port());
    let p = o::pkce();
    let url_of = |name: &str| w.cimd.url(&format!("/clients/{run}-{name}.json"));
    let path_of = |name: &str| format!("/clients/{run}-{name}.json");
    // A good one first: the fake is reachable and trusted, so each refusal is the rule's.
    w.cimd.serve(
        &path_of("good"),
        &o::metadata_document(&url_of("good"), "Good", &[&redirect]),
    );
    AuthRequest::new(&url_of("good"), &redirect, &p.challenge, &dep.url)
        .pending(&b)
        .await;
    assert_eq!(w.cimd.fetched(&path_of("good")), 1);
    // A redirect URI the document does not list: 400, no redirect.
    // (Another port alone would be the same loopback redirect URI, RFC 8252 §7.3.)
    let elsewhere = redirect.replace("/cb", "/elsewhere");
    let a = AuthRequest::new(&url_of("good"), &elsewhere, &p.challenge, &dep.url)
        .send(&b)
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.location().is_none());
    // Too large: 6 KB of otherwise valid JSON.
    let mut big = o::metadata_document(&url_of("big"), "Big", &[&redirect]);
    big["padding"] = json!("x".repeat(6 * 1024));
    w.cimd.serve(&path_of("big"), &big);
    // Slow: longer than the 5 s cap.
    w.cimd.reply(
        &path_of("slow"),
        Reply::json(
            200,
            &o::metadata_document(&url_of("slow"), "Slow", &[&redirect]),
        )
        .delayed(Duration::from_secs(8)),
    );
    // Redirecting to 127.0.0.1 (where a valid document waits: it must never be fetched).
    let target = format!("https://127.0.0.1:{}{}", w.cimd.port, path_of("target"));
    w.cimd.serve(
        &path_of("target"),
        &o::metadata_document(&url_of("redirect"), "Redirected", &[&redirect]),
    );
    w.cimd.reply(
        &path_of("redirect"),
        Reply::status(302).with_header("location", &target),
    );
    // Another client's id inside.
    w.cimd.serve(
        &path_of("mismatch"),
        &o::metadata_document(&url_of("good"), "Mismatch", &[&redirect]),
    );
    // Not JSON.
    w.cimd
        .reply(&path_of("html"), Reply::text(200, "<html>hello</html>"));
    // Not there.
    w.cimd.reply(&path_of("missing"), Reply::status(404));
    for name in ["big", "slow", "redirect", "mismatch", "html", "missing"] {
        let req = AuthRequest::new(&url_of(name), &redirect, &p.challenge, &dep.url);
        let t = Instant::now();
        let a = req.send(&b).await;
        assert_eq!(a.status, 400, "{name}: {}", a.text);
        assert!(
            a.location().is_none(),
            "{name}: never a redirect to the client"
        );
        assert!(
            t.elapsed() < Duration::from_secs(7),
            "{name}: answered after {:?}",
            t.elapsed()
        );
        let j = req.send_json(&b).await;
        assert_eq!(j.status, 400, "{name}");
        assert!(
            ["invalid_client", "invalid_request"].contains(&j.error()),
            "{name}: {}",
            j.text
        );
        assert!(
            j.text.len() < 2000 && !j.text.contains("xxxxxxxx"),
            "{name}: the document is not echoed"
        );
        eprintln!("metadata document {name}: refused in {:?}", t.elapsed());
    }
    assert_eq!(
        w.cimd.fetched(&path_of("target")),
        0,
        "the redirect was not followed"
    );
}

/// A metadata document is cached as its `Cache-Control` says (at least 60 s, at most a day)
/// and fetched every time when it says `no-store`.
#[tokio::test]
async fn metadata_documents_are_cached_by_their_cache_headers() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let run = unique();
    let redirect = format!("http://127.0.0.1:{}/cb", edge_tests::free_port());
    let p = o::pkce();
    let (cached, fresh) = (
        format!("/clients/{run}-cached.json"),
        format!("/clients/{run}-fresh.json"),
    );
    let (cached_url, fresh_url) = (w.cimd.url(&cached), w.cimd.url(&fresh));
    w.cimd.reply(
        &cached,
        Reply::json(
            200,
            &o::metadata_document(&cached_url, "Cached", &[&redirect]),
        )
        .with_header("cache-control", "public, max-age=300"),
    );
    w.cimd.serve(
        &fresh,
        &o::metadata_document(&fresh_url, "Fresh", &[&redirect]),
    );
    for _ in 0..3 {
        AuthRequest::new(&cached_url, &redirect, &p.challenge, &dep.url)
            .pending(&b)
            .await;
        AuthRequest::new(&fresh_url, &redirect, &p.challenge, &dep.url)
            .pending(&b)
            .await;
    }
    assert_eq!(w.cimd.fetched(&cached), 1, "max-age=300: fetched once");
    assert_eq!(w.cimd.fetched(&fresh), 3, "no-store: fetched each time");
}

/// Without the development flag a loopback metadata document URL is refused before any
/// fetch (the module's own stack has the flag; the shared plain stack has not).
#[tokio::test]
async fn a_loopback_metadata_document_needs_the_development_flag() {
    let w = oworld();
    let plain = super::support::stack();
    let redirect = "http://127.0.0.1:9/cb";
    let url = w.cimd.publish("noflag", "No flag", &[redirect]);
    let resource = plain.url(&format!("/api/mcp/dep_{}", "1".repeat(30)));
    let req = AuthRequest::new(&url, redirect, &o::pkce().challenge, &resource);
    let a = req.send(&plain.base_url).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.location().is_none());
    assert_eq!(
        w.cimd.fetched(&url),
        0,
        "nothing fetched from loopback without the flag"
    );
}

/// The flag is for development only: in production it is reported invalid and a loopback
/// metadata document is still refused, unfetched.
#[tokio::test]
async fn the_loopback_flag_is_refused_in_production() {
    let w = oworld();
    let prod = Stack::start(StackOptions {
        vars: vec![
            ("ENVIRONMENT".into(), "production".into()),
            ("OAUTH_LOOPBACK_CLIENTS".into(), "true".into()),
            ("AUTH_JWT_ISSUER".into(), "https://idp.example".into()),
            ("AUTH_JWT_AUDIENCE".into(), "catwalk-edge".into()),
        ],
        env: vec![(
            "NODE_EXTRA_CA_CERTS".into(),
            w.cimd.ca_file().display().to_string(),
        )],
        ..Default::default()
    });
    let health: Value = o::http()
        .get(prod.url("/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        health["invalid"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("OAUTH_LOOPBACK_CLIENTS"))),
        "{health}"
    );
    let redirect = "http://127.0.0.1:9/cb";
    let url = w.cimd.publish("prod", "Production", &[redirect]);
    let resource = prod.url(&format!("/api/mcp/dep_{}", "2".repeat(30)));
    let a = AuthRequest::new(&url, redirect, &o::pkce().challenge, &resource)
        .send(&prod.base_url)
        .await;
    assert!(a.location().is_none(), "{a:?}");
    assert!(a.status >= 400, "{}: {}", a.status, a.text);
    assert_eq!(
        w.cimd.fetched(&url),
        0,
        "nothing fetched from loopback in production"
    );
}

// ------------------------------------------------------------------------- consent

#[tokio::test]
async fn only_the_owner_can_consent_and_a_decision_is_single_use() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let (client, redirect) = dcr_client(w).await;
    let p = o::pkce();
    let req = AuthRequest::new(&client, &redirect, &p.challenge, &dep.url);
    let rid = req.pending(&b).await;
    // Not signed in.
    let anon = o::http()
        .get(format!("{b}/api/oauth/requests/{rid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    // Someone else, signed in: 403 not_owner for both look and decision; nothing granted.
    let mallory = person(w);
    let seen = o::consent_get(&b, &mallory, &rid).await;
    assert_eq!(seen.status, 403, "{}", seen.text);
    assert_eq!(seen.json["error"]["code"], "not_owner", "{}", seen.text);
    let tried = o::consent_post(&b, &mallory, &rid, true).await;
    assert_eq!(tried.status, 403, "{}", tried.text);
    assert_eq!(tried.json["error"]["code"], "not_owner", "{}", tried.text);
    assert!(!tried.text.contains("code="), "no code for a non-owner");
    // A cookie-carried decision needs our Origin.
    let no_origin = o::http()
        .post(format!("{b}/api/oauth/requests/{rid}"))
        .header("cookie", format!("cw_session={}", dep.owner))
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);
    let (s, grants, text) = w
        .stack
        .call(
            Method::GET,
            &format!("/api/deployments/{}/oauth-grants", dep.id),
            &dep.owner,
            None,
        )
        .await;
    assert_eq!(s, 200, "{text}");
    assert!(
        !grants["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["client_id"] == client.as_str()),
        "nothing granted: {grants}"
    );
    // The owner sees the request and denies it: access_denied, with state and iss.
    let shown = o::consent_get(&b, &dep.owner, &rid).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.json["client"]["kind"], "registered");
    assert_eq!(shown.json["deployment"]["id"], dep.id.as_str());
    let denied = o::consent_post(&b, &dep.owner, &rid, false).await;
    assert_eq!(denied.status, 200, "{}", denied.text);
    let to = denied.json["redirect_to"].as_str().unwrap();
    assert!(to.starts_with(&redirect), "{to}");
    assert_eq!(
        o::query_param(to, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(o::query_param(to, "state").as_deref(), req.get("state"));
    assert_eq!(o::query_param(to, "iss").as_deref(), Some(b.as_str()));
    assert!(o::query_param(to, "code").is_none());
    assert_audited(w, &dep.owner, "oauth.denied", None).await;
    // Used up.
    let again = o::consent_post(&b, &dep.owner, &rid, true).await;
    assert_eq!(again.status, 404, "{}", again.text);
    assert_eq!(again.json["error"]["code"], "not_found", "{}", again.text);
}

// ------------------------------------------------------------- revocation by the owner

#[tokio::test]
async fn rotating_the_static_token_revokes_oauth_grants() {
    let w = oworld();
    let b = base(w);
    let owner = person(w);
    let dep = deploy(w, &owner, "oauth-rotate").await;
    let (client, redirect) = dcr_client(w).await;
    let g = o::grant(&b, &owner, &client, &redirect, &dep.url).await;
    assert_accepted(&dep, &g.access, "before rotation").await;
    let (s, _, text) = w
        .stack
        .call(
            Method::POST,
            &format!("/api/deployments/{}/rotate-token", dep.id),
            &owner,
            None,
        )
        .await;
    assert_eq!(s, 200, "{text}");
    assert_refused(w, &dep, &g.access, "after rotation").await;
    let r = o::refresh(&b, &g, &g.refresh).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{}", r.text);
    let (_, grants, _) = w
        .stack
        .call(
            Method::GET,
            &format!("/api/deployments/{}/oauth-grants", dep.id),
            &owner,
            None,
        )
        .await;
    assert_eq!(grants["grants"], json!([]), "{grants}");
    assert_audited(w, &owner, "oauth.revoked", Some("token_rotated")).await;
}

#[tokio::test]
async fn deleting_a_deployment_revokes_its_grants() {
    let w = oworld();
    let b = base(w);
    let owner = person(w);
    let dep = deploy(w, &owner, "oauth-delete").await;
    let (client, redirect) = dcr_client(w).await;
    let g = o::grant(&b, &owner, &client, &redirect, &dep.url).await;
    assert_accepted(&dep, &g.access, "before deletion").await;
    let (s, _, text) = w
        .stack
        .call(
            Method::DELETE,
            &format!("/api/deployments/{}", dep.id),
            &owner,
            None,
        )
        .await;
    assert_eq!(s, 204, "{text}");
    let a = o::mcp_initialize(&dep.url, &g.access).await;
    assert!(
        [401, 404].contains(&a.status),
        "a deleted deployment's token: {} {}",
        a.status,
        a.text
    );
    let r = o::refresh(&b, &g, &g.refresh).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{}", r.text);
    assert_audited(w, &owner, "oauth.revoked", Some("deleted")).await;
}

/// The dashboard's connected clients: listed for the owner only, and revoking one there
/// stops its tokens.
#[tokio::test]
async fn the_owner_lists_and_revokes_connected_clients() {
    let w = oworld();
    let b = base(w);
    let dep = shared_dep().await;
    let (client, redirect) = dcr_client(w).await;
    let g = o::grant(&b, &dep.owner, &client, &redirect, &dep.url).await;
    let path = format!("/api/deployments/{}/oauth-grants", dep.id);
    let (s, list, text) = w.stack.call(Method::GET, &path, &dep.owner, None).await;
    assert_eq!(s, 200, "{text}");
    let mine = list["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["client_id"] == client.as_str())
        .unwrap_or_else(|| panic!("the grant is listed: {list}"))
        .clone();
    assert!(
        mine["id"].as_str().unwrap_or_default().starts_with("grt_"),
        "{mine}"
    );
    assert_eq!(
        mine["redirect_host"],
        redirect[7..].trim_end_matches("/cb"),
        "{mine}"
    );
    let (s, _, _) = w.stack.call(Method::GET, &path, &person(w), None).await;
    assert!([403, 404].contains(&s), "someone else sees no grants: {s}");
    let del = format!("{path}/{}", mine["id"].as_str().unwrap());
    let (s, _, text) = w.stack.call(Method::DELETE, &del, &dep.owner, None).await;
    assert_eq!(s, 204, "{text}");
    assert_refused(w, dep, &g.access, "after the owner revoked the client").await;
    assert_audited(w, &dep.owner, "oauth.revoked", Some("owner")).await;
    let (s, body, _) = w.stack.call(Method::DELETE, &del, &dep.owner, None).await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}
