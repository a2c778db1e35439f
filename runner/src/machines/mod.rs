//! `machines` mode: a loopback stand-in for the subset of the Fly Machines REST API the
//! Worker uses, where each "machine" is a `catwalk-runner serve` process on a free port.
//! The Worker talks to it exactly as to Fly: only the base URL and token differ.
//!
//! API (`/v1/apps/{app}/machines…`, `Authorization: Bearer|FlyV1 <token>`, any app name):
//! create (`POST`), list (`GET`, `metadata.{k}=v` filters, `include_deleted`), get, update
//! (`POST /{id}`, full config), `GET /{id}/wait?state=&timeout=&instance_id=` (408 on
//! timeout, at most 60 s; `stopped` needs `instance_id`), `POST /{id}/stop`, `POST /{id}/start`,
//! `POST /{id}/restart` (`timeout` / `signal` / `force_stop` ignored; answers `{"ok": true}`
//! once a running machine is `stopping`, then goes `stopped` → `starting` → `started` in the
//! background with the same `instance_id`; not counted against `restart.max_retries`),
//! `DELETE /{id}?force=true` (or `kill=true`; without it the machine must be stopped: 412).
//! Errors are `{"error": "...", "status": "..."}`. A second machine with the same name is a
//! 409 `name_taken` (Fly's behaviour is undocumented; we chose to refuse). Destroyed
//! machines answer 404 (listed with `include_deleted=true`).
//!
//! Honoured config fields: `image` (required; recorded only), `env` (the runner's whole
//! environment: launch spec, upstream secret, credentials), `metadata`, `services[0].autostop`
//! / `autostart`, `restart.policy` / `max_retries`. Everything else is stored and echoed.
//!
//! Ingress, like Fly's proxy: any other path with `fly-force-instance-id: <id>` is streamed
//! to that machine (SSE unbuffered) — `/mcp`, and also the runner's `/health` and `/logs`,
//! which the Worker polls after `started` until the runner is `ready` (or `failed`, then it
//! reads `/logs`). Only `/health` *without* that header is this service's own. A stopped
//! machine with `autostart` is started first; one with `autostop` is stopped after
//! `CATWALK_IDLE_STOP_SECS` without traffic. A machine is `started` as soon as its runner
//! listens, which it does before its MCP server is prepared, like on Fly.
//!
//! Records persist as JSON under `CATWALK_STATE_DIR`; after a restart of this service,
//! machines that were running come back `stopped` (their processes are gone) and start again.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `CATWALK_MACHINES_TOKEN` | required | the API token (the Worker's `FLY_API_TOKEN`) |
//! | `PORT` / `CATWALK_BIND` | 4280 / 127.0.0.1 | listen address (API and ingress) |
//! | `CATWALK_STATE_DIR` | `.state/machines` | where records persist |
//! | `CATWALK_IDLE_STOP_SECS` | 300 | idle time before an `autostop` machine stops |
//! | `CATWALK_MACHINE_PATH` | unset | directories (`:`-separated, made absolute) put in front of each machine's `PATH`, e.g. a project's `.tools/bin` holding `uvx` |
//!
//! A machine's environment. A Fly Machine gets its image's environment plus its config's
//! `env`; here the image is this host, so each machine's runner starts with a named
//! allow-list of this service's environment ([`passed_through`]), then the machine's
//! config `env` on top (it wins), then `PORT` / `CATWALK_BIND`. The runner hands all of it
//! but its own `CATWALK_*` settings to the MCP server, so these reach `npx` / `uvx` too:
//!
//! | variables | why a machine needs them |
//! | --- | --- |
//! | `PATH` (with `CATWALK_MACHINE_PATH` in front), `HOME`, `LANG`, `TMPDIR`, `NODE_PATH` | find `node` / `npx` / `uvx` where this host has them; a home and temp dir for their caches |
//! | `SSL_CERT_FILE`, `SSL_CERT_DIR`, `NODE_EXTRA_CA_CERTS`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` | trust the same CAs as the host: behind a TLS-inspecting proxy (a corporate laptop, these dev machines) `uvx` fails with "invalid peer certificate: UnknownIssuer" without them |
//! | `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, `ALL_PROXY` (upper or lower case) | reach the registries the way the host does |
//! | `npm_config_*` / `NPM_CONFIG_*`, `UV_*`, `PIP_*` | the host's package-index settings: registry mirror, cafile, cache dir, native TLS |
//!
//! Nothing else of the host's environment (its tokens, this service's own settings) reaches
//! a machine. On Fly the image sets the equivalent (see `Dockerfile`).

pub mod model;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::process::Child;
use tokio::sync::watch;

use crate::clock::{now_ms, rfc3339};
use crate::http::{self, Body, BodyError};
use model::{event, honoured, image_ref, metadata_matches, ulid_like, Machine};

const MAX_WAIT: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a restart waits for the old process to go before giving up on the relaunch
/// (a little more than `STOP_GRACE`, after which the process group is killed).
const RESTART_STOP_WAIT: Duration = Duration::from_secs(15);
const MAX_API_BODY: usize = 1024 * 1024;

/// Host variables a machine inherits by exact name (see the module docs).
const PASSED_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "TMPDIR",
    "NODE_PATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];
/// Host variables a machine inherits by prefix: package-index settings.
const PASSED_PREFIXES: &[&str] = &["npm_config_", "NPM_CONFIG_", "UV_", "PIP_"];

/// Whether a host variable is passed to every machine.
pub fn passed_through(name: &str) -> bool {
    PASSED_NAMES.contains(&name) || PASSED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The part of the host's environment a machine starts with: the allow-list, with
/// `machine_path` in front of `PATH`.
pub fn machine_env(
    host: impl Iterator<Item = (String, String)>,
    machine_path: Option<&str>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = host.filter(|(k, _)| passed_through(k)).collect();
    if let Some(front) = machine_path.filter(|p| !p.is_empty()) {
        match env.iter_mut().find(|(k, _)| k == "PATH") {
            Some((_, path)) if !path.is_empty() => *path = format!("{front}:{path}"),
            Some((_, path)) => *path = front.to_string(),
            None => env.push(("PATH".into(), front.to_string())),
        }
    }
    env
}

/// `CATWALK_MACHINE_PATH` with every entry made absolute (a machine's runner, and its
/// child under another working directory, must find the same directories).
fn absolute_path_list(list: &str) -> Result<String, String> {
    list.split(':')
        .filter(|p| !p.is_empty())
        .map(|p| {
            std::path::absolute(p)
                .map(|a| a.display().to_string())
                .map_err(|e| format!("CATWALK_MACHINE_PATH entry {p:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(":"))
}

#[derive(Debug, Clone)]
pub struct MachinesConfig {
    pub token: String,
    pub bind: SocketAddr,
    pub state_dir: PathBuf,
    pub idle_stop: Duration,
    pub runner_bin: PathBuf,
    /// `CATWALK_MACHINE_PATH`, absolute.
    pub machine_path: Option<String>,
}

impl MachinesConfig {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let token = get("CATWALK_MACHINES_TOKEN")
            .filter(|t| !t.is_empty())
            .ok_or("CATWALK_MACHINES_TOKEN is required")?;
        let port: u16 = get("PORT")
            .map(|p| p.parse().map_err(|_| "PORT must be a number"))
            .transpose()?
            .unwrap_or(4280);
        let ip = get("CATWALK_BIND").unwrap_or_else(|| "127.0.0.1".into());
        let bind = format!("{ip}:{port}")
            .parse()
            .map_err(|_| format!("CATWALK_BIND {ip:?} is not an IP address"))?;
        let idle: u64 = get("CATWALK_IDLE_STOP_SECS")
            .map(|s| {
                s.parse()
                    .map_err(|_| "CATWALK_IDLE_STOP_SECS must be a number")
            })
            .transpose()?
            .unwrap_or(300);
        let runner_bin =
            std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
        Ok(Self {
            token,
            bind,
            state_dir: get("CATWALK_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".state/machines")),
            idle_stop: Duration::from_secs(idle),
            runner_bin,
            machine_path: get("CATWALK_MACHINE_PATH")
                .map(|p| absolute_path_list(&p))
                .transpose()?
                .filter(|p| !p.is_empty()),
        })
    }
}

/// A machine's live side: its process, port and traffic bookkeeping.
struct Live {
    record: Machine,
    app: String,
    port: Option<u16>,
    pgid: Option<i32>,
    stop_requested: bool,
    retries: u32,
    last_traffic: Instant,
    in_flight: usize,
    state_tx: watch::Sender<(String, String)>,
}

impl Live {
    /// A machine with no process yet (new, or loaded from disk).
    fn new(record: Machine, app: &str) -> Self {
        let (state_tx, _) = watch::channel((record.state.clone(), record.instance_id.clone()));
        Self {
            record,
            app: app.to_string(),
            port: None,
            pgid: None,
            stop_requested: false,
            retries: 0,
            last_traffic: Instant::now(),
            in_flight: 0,
            state_tx,
        }
    }
}

pub struct Service {
    cfg: MachinesConfig,
    machines: Mutex<HashMap<String, Live>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Incoming>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn fly_error(status: u16, code: &str, message: &str) -> Response<Body> {
    http::json(status, &json!({"error": message, "status": code}))
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let _ = getrandom::getrandom(&mut b);
    b
}

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}

impl Service {
    fn path_for(&self, app: &str, id: &str) -> PathBuf {
        self.cfg.state_dir.join(app).join(format!("{id}.json"))
    }

    fn persist(&self, live: &Live) {
        let path = self.path_for(&live.app, &live.record.id);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension("json.tmp");
        if let Ok(text) =
            serde_json::to_vec_pretty(&json!({"app": live.app, "machine": live.record}))
        {
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }

    fn load(cfg: &MachinesConfig) -> HashMap<String, Live> {
        let mut out = HashMap::new();
        let Ok(apps) = std::fs::read_dir(&cfg.state_dir) else {
            return out;
        };
        for file in apps
            .flatten()
            .filter_map(|a| std::fs::read_dir(a.path()).ok())
            .flatten()
            .flatten()
        {
            let Ok(text) = std::fs::read(file.path()) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<Value>(&text) else {
                continue;
            };
            let (Some(app), Ok(mut record)) = (
                v["app"].as_str(),
                serde_json::from_value::<Machine>(v["machine"].clone()),
            ) else {
                continue;
            };
            if !matches!(
                record.state.as_str(),
                "created" | "stopped" | "destroyed" | "failed"
            ) {
                record.state = "stopped".into();
                record.events.insert(0, event("exit", "stopped", now_ms()));
            }
            out.insert(record.id.clone(), Live::new(record, app));
        }
        out
    }

    fn set_state(&self, live: &mut Live, state: &str, kind: &str) {
        live.record.state = state.to_string();
        live.record.updated_at = rfc3339(now_ms());
        live.record.events.insert(0, event(kind, state, now_ms()));
        live.record.events.truncate(50);
        live.state_tx
            .send_replace((state.to_string(), live.record.instance_id.clone()));
        self.persist(live);
    }

    /// Starts the machine's runner process and marks it started once it listens.
    /// Returns the record as it stood when the process was started (`starting`): the
    /// readiness watcher may flip it to `started` a moment later on another thread.
    fn launch(self: &Arc<Self>, id: &str) -> Result<Machine, String> {
        let mut map = lock(&self.machines);
        let live = map.get_mut(id).ok_or("no such machine")?;
        let h = honoured(&live.record.config)?;
        let port = free_port().ok_or("no free port")?;
        let mut cmd = tokio::process::Command::new(&self.cfg.runner_bin);
        cmd.arg("serve")
            .env_clear()
            .envs(machine_env(
                std::env::vars(),
                self.cfg.machine_path.as_deref(),
            ))
            .envs(h.env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .env("CATWALK_BIND", "127.0.0.1")
            .env("FLY_MACHINE_ID", id)
            .env("FLY_APP_NAME", &live.app)
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("spawn runner: {e}"))?;
        live.port = Some(port);
        live.pgid = child.id().map(|p| p as i32);
        live.stop_requested = false;
        live.last_traffic = Instant::now();
        self.set_state(live, "starting", "start");
        let snapshot = live.record.clone();
        drop(map);
        self.watch(id.to_string(), child, port);
        Ok(snapshot)
    }

    fn watch(self: &Arc<Self>, id: String, mut child: Child, port: u16) {
        let svc = self.clone();
        let ready_id = id.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    let mut map = lock(&svc.machines);
                    if let Some(live) = map.get_mut(&ready_id) {
                        if live.record.state == "starting" && live.port == Some(port) {
                            svc.set_state(live, "started", "start");
                        }
                    }
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let svc = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let ok = status.as_ref().map(|s| s.success()).unwrap_or(false);
            let restart = {
                let mut map = lock(&svc.machines);
                let Some(live) = map.get_mut(&id) else { return };
                if live.port != Some(port) {
                    return;
                }
                if let Some(pgid) = live.pgid.take() {
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
                live.port = None;
                let h = honoured(&live.record.config).unwrap_or_default();
                let again = !live.stop_requested
                    && live.record.state != "destroying"
                    && (h.restart_policy == "always" || (h.restart_policy == "on-failure" && !ok))
                    && live.retries < h.max_retries;
                if again {
                    live.retries += 1;
                } else if live.record.state != "destroying" {
                    svc.set_state(live, "stopped", "exit");
                }
                again
            };
            if restart {
                tokio::time::sleep(Duration::from_secs(1)).await;
                // A stop, restart, start or destroy during the pause has the last word.
                let still_wanted = lock(&svc.machines).get(&id).is_some_and(|l| {
                    !l.stop_requested
                        && l.port.is_none()
                        && !matches!(l.record.state.as_str(), "destroying" | "destroyed")
                });
                if still_wanted {
                    let _ = svc.launch(&id);
                }
            }
        });
    }

    fn stop(self: &Arc<Self>, id: &str) {
        let mut map = lock(&self.machines);
        let Some(live) = map.get_mut(id) else { return };
        live.stop_requested = true;
        match live.pgid {
            Some(pgid) if live.port.is_some() => {
                self.set_state(live, "stopping", "stop");
                unsafe { libc::kill(-pgid, libc::SIGTERM) };
                tokio::spawn(async move {
                    tokio::time::sleep(STOP_GRACE).await;
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                });
            }
            _ if live.record.state != "stopped" && live.record.state != "destroyed" => {
                self.set_state(live, "stopped", "stop")
            }
            _ => {}
        }
    }

    async fn wait_for(
        &self,
        id: &str,
        wanted: &[String],
        instance: Option<&str>,
        timeout: Duration,
    ) -> Result<String, u16> {
        let mut rx = {
            let map = lock(&self.machines);
            let live = map.get(id).ok_or(404u16)?;
            if let Some(i) = instance {
                if i != live.record.instance_id {
                    return Err(404);
                }
            }
            live.state_tx.subscribe()
        };
        let result =
            tokio::time::timeout(timeout, rx.wait_for(|(s, _)| wanted.iter().any(|w| w == s)))
                .await;
        match result {
            Ok(Ok(v)) => Ok(v.0.clone()),
            Ok(Err(_)) => Err(404),
            Err(_) => Err(408),
        }
    }
}

pub async fn run(cfg: MachinesConfig, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    std::fs::create_dir_all(&cfg.state_dir)?;
    let machines = Service::load(&cfg);
    let listener = tokio::net::TcpListener::bind(cfg.bind).await?;
    eprintln!(
        "catwalk-runner machines: Fly Machines API and ingress on http://{}",
        listener.local_addr()?
    );
    let svc = Arc::new(Service {
        cfg,
        machines: Mutex::new(machines),
        client: Client::builder(TokioExecutor::new()).build_http(),
    });

    let idle = svc.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let due: Vec<String> = lock(&idle.machines)
                .iter()
                .filter(|(_, l)| {
                    l.record.state == "started"
                        && l.in_flight == 0
                        && l.last_traffic.elapsed() >= idle.cfg.idle_stop
                        && honoured(&l.record.config)
                            .map(|h| h.autostop)
                            .unwrap_or(false)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in due {
                idle.stop(&id);
            }
        }
    });

    let handler = svc.clone();
    http::serve(
        listener,
        move |req, _| handle(handler.clone(), req),
        shutdown,
        Duration::from_secs(5),
    )
    .await;
    let ids: Vec<String> = lock(&svc.machines).keys().cloned().collect();
    for id in ids {
        if let Some(pgid) = lock(&svc.machines).get(&id).and_then(|l| l.pgid) {
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    let Some(value) = http::header(req, "authorization") else {
        return false;
    };
    let Some((scheme, given)) = value.split_once(' ') else {
        return false;
    };
    let given = given.trim();
    let given = given.strip_prefix("FlyV1 ").unwrap_or(given);
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("flyv1"))
        && given.len() == token.len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            token.as_bytes(),
        ))
}

async fn handle(svc: Arc<Service>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/health" && http::header(&req, "fly-force-instance-id").is_none() {
        return http::json(
            200,
            &json!({"status": "ok", "machines": lock(&svc.machines).len()}),
        );
    }
    let Some(rest) = path.strip_prefix("/v1/apps/") else {
        return ingress(svc, req).await;
    };
    if !authorized(&req, &svc.cfg.token) {
        return fly_error(401, "unauthorized", "unauthorized");
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%2C", ",").replace("%2c", ",")))
        .collect();
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() < 2 || parts[1] != "machines" || !valid_name(parts[0]) {
        return fly_error(404, "not_found", "not found");
    }
    let app = parts[0].to_string();
    let method = req.method().clone();
    match (&method, &parts[2..]) {
        (&Method::POST, []) => create(svc, &app, req).await,
        (&Method::GET, []) => list(&svc, &app, &query),
        (&Method::GET, [id]) => with_machine(&svc, &app, id, |l| http::json(200, &json!(l.record))),
        (&Method::POST, [id]) => update(svc, &app, id, req).await,
        (&Method::DELETE, [id]) => destroy(&svc, &app, id, &query),
        (&Method::POST, [id, "stop"]) => {
            if let Some(r) = missing(&svc, &app, id) {
                return r;
            }
            svc.stop(id);
            http::json(200, &json!({"ok": true}))
        }
        (&Method::POST, [id, "start"]) => start(&svc, &app, id),
        (&Method::POST, [id, "restart"]) => restart(&svc, &app, id),
        (&Method::GET, [id, "wait"]) => wait(&svc, &app, id, &query).await,
        _ => fly_error(404, "not_found", "not found"),
    }
}

fn missing(svc: &Service, app: &str, id: &str) -> Option<Response<Body>> {
    let map = lock(&svc.machines);
    match map.get(id) {
        Some(l) if l.app == app && l.record.state != "destroyed" => None,
        _ => Some(fly_error(404, "not_found", "machine not found")),
    }
}

fn with_machine(
    svc: &Service,
    app: &str,
    id: &str,
    f: impl FnOnce(&Live) -> Response<Body>,
) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    match lock(&svc.machines).get(id) {
        Some(l) => f(l),
        None => fly_error(404, "not_found", "machine not found"),
    }
}

async fn read_json(req: Request<Incoming>) -> Result<Value, Response<Body>> {
    match http::read_capped(req.into_body(), MAX_API_BODY).await {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|_| fly_error(400, "unknown", "invalid JSON body"))
        }
        Err(BodyError::TooLarge) => Err(fly_error(413, "unknown", "body too large")),
        Err(BodyError::Read) => Err(fly_error(400, "unknown", "could not read body")),
    }
}

/// A create or update body and its `config`, checked like Fly checks it.
async fn read_machine_body(req: Request<Incoming>) -> Result<(Value, Value), Response<Body>> {
    let body = read_json(req).await?;
    let config = body.get("config").cloned().unwrap_or(Value::Null);
    honoured(&config).map_err(|why| fly_error(422, "unknown", &why))?;
    Ok((body, config))
}

async fn create(svc: Arc<Service>, app: &str, req: Request<Incoming>) -> Response<Body> {
    let (body, config) = match read_machine_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = hex14();
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("machine-{}", &id[..6]));
    {
        let map = lock(&svc.machines);
        if map
            .values()
            .any(|l| l.app == app && l.record.name == name && l.record.state != "destroyed")
        {
            return fly_error(
                409,
                "name_taken",
                &format!("a machine named {name} already exists"),
            );
        }
    }
    let now = rfc3339(now_ms());
    let image = config["image"].as_str().unwrap_or_default().to_string();
    let record = Machine {
        id: id.clone(),
        name,
        state: "created".into(),
        region: body
            .get("region")
            .and_then(Value::as_str)
            .unwrap_or("local")
            .to_string(),
        instance_id: ulid_like(&random::<16>()),
        private_ip: format!("fdaa:0:1::{}", &id[..4]),
        config,
        image_ref: image_ref(&image),
        created_at: now.clone(),
        updated_at: now,
        events: vec![event("launch", "created", now_ms())],
        host_status: "ok".into(),
    };
    let live = Live::new(record, app);
    svc.persist(&live);
    lock(&svc.machines).insert(id.clone(), live);
    if !body
        .get("skip_launch")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return match svc.launch(&id) {
            Ok(machine) => http::json(200, &json!(machine)),
            Err(why) => fly_error(500, "unknown", &why),
        };
    }
    with_machine(&svc, app, &id, |l| http::json(200, &json!(l.record)))
}

fn hex14() -> String {
    random::<7>().iter().map(|b| format!("{b:02x}")).collect()
}

fn list(svc: &Service, app: &str, query: &HashMap<String, String>) -> Response<Body> {
    let filters: Vec<(String, String)> = query
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata.")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    let deleted = query.get("include_deleted").is_some_and(|v| v == "true");
    let map = lock(&svc.machines);
    let mut out: Vec<&Machine> = map
        .values()
        .filter(|l| {
            l.app == app
                && (deleted || l.record.state != "destroyed")
                && metadata_matches(&l.record.config, &filters)
        })
        .map(|l| &l.record)
        .collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    http::json(200, &json!(out))
}

async fn update(svc: Arc<Service>, app: &str, id: &str, req: Request<Incoming>) -> Response<Body> {
    if let Some(r) = missing(&svc, app, id) {
        return r;
    }
    let (body, config) = match read_machine_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let was_running = {
        let mut map = lock(&svc.machines);
        let Some(live) = map.get_mut(id) else {
            return fly_error(404, "not_found", "machine not found");
        };
        if let Some(v) = body.get("current_version").and_then(Value::as_str) {
            if v != live.record.instance_id {
                return fly_error(409, "unknown", "current_version does not match");
            }
        }
        live.record.image_ref = image_ref(config["image"].as_str().unwrap_or_default());
        live.record.config = config;
        live.record.instance_id = ulid_like(&random::<16>());
        let running = live.port.is_some();
        svc.set_state(
            live,
            if running { "replacing" } else { "stopped" },
            "update",
        );
        running
    };
    if was_running {
        // A running machine reboots into the new config.
        svc.stop(id);
        let _ = svc
            .wait_for(
                id,
                &["stopped".into()],
                None,
                STOP_GRACE + Duration::from_secs(2),
            )
            .await;
        if let Err(why) = svc.launch(id) {
            return fly_error(500, "unknown", &why);
        }
    }
    with_machine(&svc, app, id, |l| http::json(200, &json!(l.record)))
}

fn state_of(svc: &Service, id: &str) -> String {
    lock(&svc.machines)
        .get(id)
        .map(|l| l.record.state.clone())
        .unwrap_or_default()
}

fn start(svc: &Arc<Service>, app: &str, id: &str) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    let previous = state_of(svc, id);
    match previous.as_str() {
        "created" | "stopped" | "failed" | "suspended" => {
            if let Some(live) = lock(&svc.machines).get_mut(id) {
                live.retries = 0;
            }
            if let Err(why) = svc.launch(id) {
                return fly_error(500, "unknown", &why);
            }
        }
        "started" | "starting" => {}
        other => {
            return fly_error(
                412,
                "unknown",
                &format!("unable to start machine from current state {other}"),
            )
        }
    }
    http::json(
        200,
        &json!({"previous_state": previous, "migrated": false, "new_host": ""}),
    )
}

/// Fly's `POST /{id}/restart`: a running machine is stopped like `stop` (so its exit is not
/// a crash for the restart policy), then launched again like `start` once its process is
/// gone; the answer comes as soon as the stop is under way. A machine that is not running
/// is simply started.
fn restart(svc: &Arc<Service>, app: &str, id: &str) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    let previous = state_of(svc, id);
    match previous.as_str() {
        "started" | "starting" => {
            // `stop` sets `stop_requested`, so the exit watcher records `stopped` instead of
            // relaunching (and without touching `retries`).
            svc.stop(id);
            let svc = svc.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                let _ = svc
                    .wait_for(&id, &["stopped".into()], None, RESTART_STOP_WAIT)
                    .await;
                let relaunch = match lock(&svc.machines).get_mut(&id) {
                    // Anything else means someone acted meanwhile (started, destroyed it),
                    // or the old process would not die: leave it be.
                    Some(live) if live.port.is_none() && live.record.state == "stopped" => {
                        live.retries = 0;
                        true
                    }
                    _ => false,
                };
                if !relaunch {
                    eprintln!("catwalk-runner machines: restart of {id}: not relaunched (no longer stopped)");
                } else if let Err(why) = svc.launch(&id) {
                    eprintln!("catwalk-runner machines: restart of {id}: {why}");
                }
            });
        }
        "created" | "stopped" | "failed" | "suspended" => {
            if let Some(live) = lock(&svc.machines).get_mut(id) {
                live.retries = 0;
            }
            if let Err(why) = svc.launch(id) {
                return fly_error(500, "unknown", &why);
            }
        }
        other => {
            return fly_error(
                412,
                "unknown",
                &format!("unable to restart machine from current state {other}"),
            )
        }
    }
    http::json(200, &json!({"ok": true}))
}

fn destroy(
    svc: &Arc<Service>,
    app: &str,
    id: &str,
    query: &HashMap<String, String>,
) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    let force = ["force", "kill"]
        .iter()
        .any(|k| query.get(*k).is_some_and(|v| v == "true"));
    let mut map = lock(&svc.machines);
    let Some(live) = map.get_mut(id) else {
        return fly_error(404, "not_found", "machine not found");
    };
    if live.port.is_some() && !force {
        return fly_error(
            412,
            "unknown",
            "machine is running: stop it first or pass force=true",
        );
    }
    live.stop_requested = true;
    if let Some(pgid) = live.pgid.take() {
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    live.port = None;
    svc.set_state(live, "destroyed", "destroy");
    http::json(200, &json!({"ok": true}))
}

async fn wait(
    svc: &Arc<Service>,
    app: &str,
    id: &str,
    query: &HashMap<String, String>,
) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        if lock(&svc.machines)
            .get(id)
            .is_some_and(|l| l.record.state == "destroyed")
            && query.get("state").is_some_and(|s| s.contains("destroyed"))
        {
            return http::json(200, &json!({"ok": true, "state": "destroyed"}));
        }
        return r;
    }
    let wanted: Vec<String> = query
        .get("state")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| vec!["started".into()]);
    let known = [
        "started",
        "stopped",
        "suspended",
        "destroyed",
        "failed",
        "created",
    ];
    if wanted.iter().any(|w| !known.contains(&w.as_str())) {
        return fly_error(
            400,
            "unknown",
            "state must be one of started, stopped, suspended, destroyed, failed",
        );
    }
    let instance = query
        .get("instance_id")
        .or_else(|| query.get("version"))
        .map(String::as_str);
    if wanted.iter().any(|w| w == "stopped") && instance.is_none() {
        return fly_error(
            400,
            "unknown",
            "instance_id is required to wait for stopped",
        );
    }
    let secs: u64 = query
        .get("timeout")
        .and_then(|t| t.trim_end_matches('s').parse().ok())
        .unwrap_or(60);
    let timeout = Duration::from_secs(secs.clamp(1, 60)).min(MAX_WAIT);
    match svc.wait_for(id, &wanted, instance, timeout).await {
        Ok(state) => http::json(200, &json!({"ok": true, "state": state})),
        Err(408) => fly_error(
            408,
            "deadline_exceeded",
            &format!("machine did not reach {} in time", wanted.join(",")),
        ),
        Err(_) => fly_error(404, "not_found", "machine not found"),
    }
}

/// Fly-proxy-like ingress: streams the request to the machine named by
/// `fly-force-instance-id`, starting it first if it is stopped and allows autostart.
async fn ingress(svc: Arc<Service>, mut req: Request<Incoming>) -> Response<Body> {
    let Some(id) = http::header(&req, "fly-force-instance-id").map(str::to_string) else {
        return fly_error(
            404,
            "not_found",
            "no route: send fly-force-instance-id to reach a machine",
        );
    };
    let (state, autostart) = match lock(&svc.machines).get(&id) {
        Some(l) if l.record.state != "destroyed" => (
            l.record.state.clone(),
            honoured(&l.record.config)
                .map(|h| h.autostart)
                .unwrap_or(false),
        ),
        _ => return fly_error(404, "not_found", "machine not found"),
    };
    if state != "started" {
        if matches!(state.as_str(), "stopped" | "created" | "stopping") && autostart {
            if state == "stopping" {
                let _ = svc
                    .wait_for(&id, &["stopped".into()], None, STOP_GRACE)
                    .await;
            }
            if lock(&svc.machines)
                .get(&id)
                .is_some_and(|l| l.port.is_none())
            {
                if let Err(why) = svc.launch(&id) {
                    return fly_error(503, "unknown", &format!("machine could not start: {why}"));
                }
            }
        } else if state != "starting" {
            return fly_error(
                503,
                "unknown",
                &format!("machine is {state} and does not autostart"),
            );
        }
        if svc
            .wait_for(&id, &["started".into()], None, START_TIMEOUT)
            .await
            .is_err()
        {
            return fly_error(503, "unknown", "machine did not start in time");
        }
    }
    let port = {
        let mut map = lock(&svc.machines);
        let Some(live) = map.get_mut(&id) else {
            return fly_error(404, "not_found", "machine not found");
        };
        live.in_flight += 1;
        live.last_traffic = Instant::now();
        live.port
    };
    let Some(port) = port else {
        return fly_error(503, "unknown", "machine is not running");
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let uri: hyper::Uri = match format!("http://127.0.0.1:{port}{path}").parse() {
        Ok(u) => u,
        Err(_) => return fly_error(400, "unknown", "bad request path"),
    };
    *req.uri_mut() = uri;
    for h in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "host",
    ] {
        req.headers_mut().remove(h);
    }
    let result = svc.client.request(req).await;
    let done = InFlight {
        svc: svc.clone(),
        id: id.clone(),
    };
    match result {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            // The guard lives as long as the body: an open SSE stream counts as traffic.
            let body = body.map_err(std::io::Error::other).map_frame(move |f| {
                let _ = &done;
                f
            });
            Response::from_parts(parts, BodyExt::boxed(body))
        }
        Err(e) => {
            drop(done);
            fly_error(502, "unknown", &format!("machine did not answer: {e}"))
        }
    }
}

struct InFlight {
    svc: Arc<Service>,
    id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(live) = lock(&self.svc.machines).get_mut(&self.id) {
            live.in_flight = live.in_flight.saturating_sub(1);
            live.last_traffic = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> impl Iterator<Item = (String, String)> {
        [
            ("PATH", "/usr/bin"),
            ("SSL_CERT_FILE", "/etc/proxy-ca.pem"),
            ("NODE_EXTRA_CA_CERTS", "/etc/proxy-ca.pem"),
            ("https_proxy", "http://proxy:3128"),
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("npm_config_cafile", "/etc/proxy-ca.pem"),
            ("NPM_CONFIG_REGISTRY", "https://mirror"),
            ("UV_NATIVE_TLS", "1"),
            ("PIP_INDEX_URL", "https://mirror/simple"),
            ("GITHUB_TOKEN", "ghp_host_secret"),
            ("CATWALK_MACHINES_TOKEN", "fm2_x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("Https_Proxy", "mixed case is not a convention"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
    }

    #[test]
    fn a_machine_inherits_the_hosts_tls_proxy_and_package_index_settings_only() {
        let env = machine_env(host(), None);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "SSL_CERT_FILE",
                "NODE_EXTRA_CA_CERTS",
                "https_proxy",
                "HTTPS_PROXY",
                "npm_config_cafile",
                "NPM_CONFIG_REGISTRY",
                "UV_NATIVE_TLS",
                "PIP_INDEX_URL"
            ]
        );
    }

    #[test]
    fn the_machine_path_goes_in_front_of_path() {
        let env = machine_env(host(), Some("/repo/.tools/bin"));
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        assert_eq!(path, Some("/repo/.tools/bin:/usr/bin"));
        let bare = machine_env(std::iter::empty(), Some("/x"));
        assert_eq!(bare, [("PATH".to_string(), "/x".to_string())]);
        let list = absolute_path_list(".tools/bin::/opt/bin").unwrap_or_default();
        let entries: Vec<&str> = list.split(':').collect();
        assert_eq!(entries.len(), 2, "{list}");
        assert!(entries[0].starts_with('/') && entries[0].ends_with("/.tools/bin"));
        assert_eq!(entries[1], "/opt/bin");
    }
}
