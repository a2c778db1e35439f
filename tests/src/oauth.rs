//! OAuth 2.1 for MCP clients (issue 15), the test kit:
//! - [`TestCa`]: a throwaway certificate authority made at test time with the `openssl` CLI,
//!   and a leaf for `localhost` / `127.0.0.1` signed by it. `wrangler dev` trusts it when
//!   started with `NODE_EXTRA_CA_CERTS` (miniflare hands it to workerd as a trusted
//!   certificate), so the Worker can fetch from a loopback HTTPS fake;
//! - [`CimdHost`]: that HTTPS fake: a [`FakeServer`] (scripted replies, delays, recorded
//!   requests) behind a small TLS front (Python's `ssl`, from the project's `.venv`), serving
//!   Client ID Metadata Documents at `https://localhost:PORT/…`. Both official SDKs insist
//!   that a metadata document URL is `https://`;
//! - the wire-level flow for tests that need to see every request and answer: PKCE,
//!   Dynamic Client Registration, `GET /oauth/authorize` (never following redirects), the
//!   consent API with a session cookie, the token and revocation endpoints.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::Url;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fake::{FakeServer, Reply};
use crate::guard::Guarded;
use crate::{free_port, random_hex, repo_root};

// ------------------------------------------------------------------------------ test CA

/// A certificate authority made for one test process, and a server certificate it signed
/// for `localhost`, `127.0.0.1` and `::1`. Files live in a temporary directory.
pub struct TestCa {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const CA_DIR_PREFIX: &str = "catwalk-test-ca-";

/// Removes CA directories left by test processes that have exited (a CA held by a static
/// is never dropped, so its directory outlives the run; each records its owner's pid).
fn sweep_stale_ca_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(CA_DIR_PREFIX));
        let owner = std::fs::read_to_string(path.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        // SAFETY: signal 0 only checks whether the pid exists.
        let alive = owner.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if ours && !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl TestCa {
    pub fn generate() -> TestCa {
        sweep_stale_ca_dirs();
        let dir = tempfile::Builder::new()
            .prefix(CA_DIR_PREFIX)
            .tempdir()
            .expect("temp dir");
        let p = dir.path();
        std::fs::write(p.join("owner.pid"), std::process::id().to_string())
            .expect("write owner pid");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Catwalk Edge test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(p, &ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ]);
        openssl(p, &csr);
        std::fs::write(
            p.join("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write leaf.ext");
        openssl(
            p,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "leaf.pem",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        );
        TestCa { dir }
    }

    /// The CA certificate (PEM): what `NODE_EXTRA_CA_CERTS` names.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn leaf_cert(&self) -> PathBuf {
        self.dir.path().join("leaf.pem")
    }

    pub fn leaf_key(&self) -> PathBuf {
        self.dir.path().join("leaf.key")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

// ------------------------------------------------------------------------ HTTPS fake

/// The TLS front: accepts TLS on loopback with the leaf certificate and pipes each
/// connection's bytes to the plain HTTP fake behind it.
const TLS_FRONT: &str = r#"
import asyncio, socket, ssl, sys

cert, key, port, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass

async def handle(reader, writer):
    try:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream)
    except Exception:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    servers = [await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx)]
    if socket.has_ipv6:
        try:
            servers.append(await asyncio.start_server(handle, "::1", port, ssl=ctx))
        except OSError:
            pass
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))

asyncio.run(main())
"#;

/// A loopback HTTPS host for Client ID Metadata Documents: `https://localhost:PORT/…`,
/// answered by [`CimdHost::fake`] (so replies are scripted and requests recorded there).
pub struct CimdHost {
    pub fake: FakeServer,
    pub port: u16,
    // Before `ca`: the front stops before its certificate files go.
    _front: Guarded,
    ca: TestCa,
}

impl CimdHost {
    pub fn start() -> CimdHost {
        let ca = TestCa::generate();
        let fake = FakeServer::start();
        let upstream = fake
            .url()
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
            .expect("the fake's port");
        let script = ca.dir().join("tls_front.py");
        std::fs::write(&script, TLS_FRONT).expect("write tls_front.py");
        let venv = repo_root().join(".venv/bin/python");
        let python = if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".to_string()
        };
        let port = free_port();
        let log = ca.dir().join("tls_front.log");
        let mut front = Guarded::spawn(
            &python,
            &[
                &script.display().to_string(),
                &ca.leaf_cert().display().to_string(),
                &ca.leaf_key().display().to_string(),
                &port.to_string(),
                &upstream.to_string(),
            ],
            ca.dir(),
            &[],
            &log,
        )
        .expect("spawn the TLS front");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if said.contains("ready") {
                break;
            }
            assert!(front.is_running(), "the TLS front exited:\n{said}");
            assert!(
                Instant::now() < deadline,
                "the TLS front never started:\n{said}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        CimdHost {
            fake,
            port,
            _front: front,
            ca,
        }
    }

    /// `https://localhost:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// The CA file a stack must trust (`NODE_EXTRA_CA_CERTS`).
    pub fn ca_file(&self) -> PathBuf {
        self.ca.ca_pem()
    }

    /// Serves `doc` as JSON at `path` (200, `Cache-Control: no-store` so every authorize
    /// fetches it again).
    pub fn serve(&self, path: &str, doc: &Value) {
        self.fake.on(
            "GET",
            path,
            Reply::json(200, doc).with_header("cache-control", "no-store"),
        );
    }

    /// Serves a valid metadata document for a new client at a fresh path
    /// (`/clients/{label}-{random}.json`) and gives its URL, which is the client id.
    pub fn publish(&self, label: &str, client_name: &str, redirect_uris: &[&str]) -> String {
        let path = format!("/clients/{label}-{}.json", crate::random_hex(5));
        let url = self.url(&path);
        self.serve(&path, &metadata_document(&url, client_name, redirect_uris));
        url
    }

    /// Serves any reply at `path` (a redirect, a slow or an oversized answer).
    pub fn reply(&self, path: &str, reply: Reply) {
        self.fake.on("GET", path, reply);
    }

    /// How many times the fake was asked for `target`: a path, or a URL [`Self::url`] made
    /// (the client id [`Self::publish`] gave).
    pub fn fetched(&self, target: &str) -> usize {
        let origin = self.url("");
        let path = target.strip_prefix(origin.as_str()).unwrap_or(target);
        self.fake.count("GET", path)
    }
}

/// A metadata document for `url` (its own client id) with these redirect URIs.
pub fn metadata_document(url: &str, name: &str, redirect_uris: &[&str]) -> Value {
    json!({
        "client_id": url,
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

// ------------------------------------------------------------------------ wire flow

/// A client that never follows redirects (an authorize answer is judged as it comes).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A PKCE pair (RFC 7636): a 64-character verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(random_hex(24).as_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// One answer as seen on the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    async fn of(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Location` header, if any.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The `error` of an RFC 6749 error body.
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or_default()
    }
}

/// A query parameter of `url` (absolute, or a path like `/oauth/consent?request=…`).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = Url::parse(url)
        .or_else(|_| Url::parse("http://relative.invalid").and_then(|b| b.join(url)))
        .ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `POST /oauth/register` (RFC 7591) with this JSON body.
pub async fn register(base: &str, body: &Value) -> Answer {
    let resp = http()
        .post(format!("{base}/oauth/register"))
        .json(body)
        .send()
        .await
        .expect("register");
    Answer::of(resp).await
}

/// Registers a public client with these redirect URIs; its `client_id`.
pub async fn register_client(base: &str, name: &str, redirect_uris: &[&str]) -> String {
    let a = register(
        base,
        &json!({"client_name": name, "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(a.status, 201, "registration: {}", a.text);
    a.json["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("client_id in {}", a.text))
        .to_string()
}

/// An authorization request: the usual parameters, each replaceable or removable.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub params: Vec<(String, String)>,
}

impl AuthRequest {
    /// `response_type=code`, S256 PKCE, `state`, `resource`, `scope=mcp`.
    pub fn new(client_id: &str, redirect_uri: &str, challenge: &str, resource: &str) -> Self {
        let state = random_hex(16);
        AuthRequest {
            params: [
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("state", &state),
                ("resource", resource),
                ("scope", "mcp"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_string(), value.to_string()));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn url(&self, base: &str) -> String {
        Url::parse_with_params(&format!("{base}/oauth/authorize"), &self.params)
            .expect("authorize url")
            .to_string()
    }

    /// `GET /oauth/authorize` (redirects not followed).
    pub async fn send(&self, base: &str) -> Answer {
        let resp = http().get(self.url(base)).send().await.expect("authorize");
        Answer::of(resp).await
    }

    /// The same, asking for JSON errors.
    pub async fn send_json(&self, base: &str) -> Answer {
        let resp = http()
            .get(self.url(base))
            .header("accept", "application/json")
            .send()
            .await
            .expect("authorize");
        Answer::of(resp).await
    }

    /// Sends it and expects the consent redirect; the request id `rid`.
    pub async fn pending(&self, base: &str) -> String {
        let a = self.send(base).await;
        assert_eq!(a.status, 302, "authorize {:?}: {}", self.params, a.text);
        let loc = a.location().unwrap_or_default();
        assert!(
            loc.starts_with("/oauth/consent?")
                || loc.starts_with(&format!("{base}/oauth/consent?")),
            "authorize went to {loc}"
        );
        query_param(loc, "request").unwrap_or_else(|| panic!("no request id in {loc}"))
    }
}

/// `GET` or `POST /api/oauth/requests/{rid}` with a session cookie (and our `Origin` on a
/// POST, as every cookie-carried change needs).
pub async fn consent_get(base: &str, cookie: &str, rid: &str) -> Answer {
    let resp = http()
        .get(format!("{base}/api/oauth/requests/{rid}"))
        .header("cookie", format!("cw_session={cookie}"))
        .send()
        .await
        .expect("consent get");
    Answer::of(resp).await
}

pub async fn consent_post(base: &str, cookie: &str, rid: &str, approve: bool) -> Answer {
    let resp = http()
        .post(format!("{base}/api/oauth/requests/{rid}"))
        .header("cookie", format!("cw_session={cookie}"))
        .header("origin", base)
        .json(&json!({"approve": approve}))
        .send()
        .await
        .expect("consent post");
    Answer::of(resp).await
}

/// `POST /oauth/token` with this form.
pub async fn token(base: &str, form: &[(&str, &str)]) -> Answer {
    let resp = http()
        .post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await
        .expect("token");
    Answer::of(resp).await
}

/// `POST /oauth/revoke` (RFC 7009).
pub async fn revoke(base: &str, token: &str, hint: Option<&str>) -> Answer {
    let mut form = vec![("token", token)];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    let resp = http()
        .post(format!("{base}/oauth/revoke"))
        .form(&form)
        .send()
        .await
        .expect("revoke");
    Answer::of(resp).await
}

/// What a completed flow gave: the tokens and everything secret along the way.
#[derive(Clone, Debug)]
pub struct Granted {
    pub client_id: String,
    pub redirect_uri: String,
    pub resource: String,
    pub code: String,
    pub verifier: String,
    pub access: String,
    pub refresh: String,
}

/// The whole flow on the wire: authorize → consent (approve, by `cookie`) → code exchange.
/// Asserts each step's answer as the contract has it.
pub async fn grant(
    base: &str,
    cookie: &str,
    client_id: &str,
    redirect_uri: &str,
    resource: &str,
) -> Granted {
    let p = pkce();
    let req = AuthRequest::new(client_id, redirect_uri, &p.challenge, resource);
    let rid = req.pending(base).await;
    let decided = consent_post(base, cookie, &rid, true).await;
    assert_eq!(decided.status, 200, "consent: {}", decided.text);
    let to = decided.json["redirect_to"].as_str().unwrap_or_default();
    assert!(to.starts_with(redirect_uri), "redirect_to {to}");
    assert_eq!(query_param(to, "state").as_deref(), req.get("state"));
    assert_eq!(query_param(to, "iss").as_deref(), Some(base));
    let code = query_param(to, "code").unwrap_or_else(|| panic!("no code in {to}"));
    let t = token(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", &p.verifier),
            ("resource", resource),
        ],
    )
    .await;
    assert_eq!(t.status, 200, "code exchange: {}", t.text);
    Granted {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        resource: resource.to_string(),
        code,
        verifier: p.verifier,
        access: t.json["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        refresh: t.json["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// `grant_type=refresh_token` for `g`'s client and resource.
pub async fn refresh(base: &str, g: &Granted, refresh_token: &str) -> Answer {
    token(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &g.client_id),
            ("resource", &g.resource),
        ],
    )
    .await
}

/// One MCP `initialize` through the gateway with `Authorization: Bearer {token}`: the
/// answer (200 when the token is accepted and the machine answers).
pub async fn mcp_initialize(url: &str, bearer: &str) -> Answer {
    let resp = http()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(bearer)
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "oauth-wire-test", "version": "1"}}}),
        )
        .send()
        .await
        .expect("mcp initialize");
    Answer::of(resp).await
}
