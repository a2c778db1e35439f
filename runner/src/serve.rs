//! `serve` mode: the machine's entrypoint. MCP Streamable HTTP on `/mcp` — the handshake
//! era (2025-03-26 … 2025-11-25) in front of one stdio child per session, and 2026-07-28
//! (no sessions) on a bounded pool of children, bridged or passed through (see
//! [`crate::modern`], [`crate::pool`]) — `/health` (open, nothing secret) and `/logs` (the
//! child's masked stderr). `/mcp` and `/logs` require
//! `Authorization: Bearer <CATWALK_UPSTREAM_SECRET>`.
//!
//! Boot. The runner listens at once, then prepares its server (see [`crate::ready`]):
//! `starting` until a probe child answered `initialize`, then `ready` (and warm spares
//! are started, see [`crate::session`]), or `failed` with a short reason. So a machine is
//! reachable, and its `/health` answers, while the package installs.
//!
//! `GET /health` (open; the phase, counts and the reason only — no stderr, no env):
//! - `200 {"status": "ready", "sessions": 1, "spares": 1, "pooled": 0, "uptime_s": 42}`
//! - `503 {"status": "starting", "sessions": 0, "spares": 0, "uptime_s": 3}`
//! - `503 {"status": "failed", "reason": "no answer to initialize within 300 s", "sessions": 0, "spares": 0, "uptime_s": 301}`
//!
//! `sessions` counts client sessions; `spares` the warm spares that answered their ping;
//! `pooled` the children serving 2026-07-28 requests (idle or busy).
//!
//! Which era a POST is: 2026-07-28 when its `MCP-Protocol-Version` names that revision
//! (an `Mcp-Session-Id` sent along is ignored, as the era says), or when it names no
//! session and is one request that is `server/discover` or carries the era's `_meta`
//! envelope; otherwise the handshake era. A GET or DELETE with the 2026-07-28 version
//! header gets 405 (`Allow: POST`).
//!
//! `/mcp` while not ready. A request that arrives while `starting` (a machine woken by
//! that very request) is held until `ready` and then served as usual, for at most
//! `CATWALK_WAKE_WAIT_SECS`; past that it gets `503`, `Retry-After`, and a JSON-RPC error
//! (`-32000`, the id of its first request echoed) saying the server is still starting.
//! While `failed`, every `/mcp` request gets `503` and a JSON-RPC error with the reason.
//!
//! `GET /logs[?lines=N]` (authenticated): the newest `N` lines (1 ..= the ring's 2000,
//! default 200) of the children's masked stderr and the runner's notes about them, oldest
//! first: `{"lines": [{"ts": "2026-12-02T17:00:00.123Z", "line": "[probe] …"}], "dropped": 0}`.
//! Each line starts with its child's tag: `[probe]` for the readiness probe, the first 8
//! characters of the session id otherwise. `dropped` counts lines the ring has evicted
//! (not those left out by `lines`). A bad `lines` is `400 {"error": "…"}`.
//!
//! Settings (environment; all are removed from the child's environment):
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `CATWALK_LAUNCH` | required | launch spec JSON (see `launch`) |
//! | `CATWALK_UPSTREAM_SECRET` | required | bearer secret the gateway presents |
//! | `PORT` | 8080 | listen port |
//! | `CATWALK_BIND` | 0.0.0.0 | listen address (an IP; IPv6 other than `::1` is refused, see below) |
//! | `CATWALK_BIND_ALLOW_IPV6` | unset | `1`: accept an IPv6 `CATWALK_BIND` anyway (exposes the runner on the 6PN) |
//! | `CATWALK_MAX_SESSIONS` | from memory | concurrent sessions (= child processes); see [`sessions_for_memory`] |
//! | `CATWALK_IDLE_TIMEOUT_SECS` | 900 | a session idle this long with nothing in flight ends |
//! | `CATWALK_REPLAY_EVENTS` | 512 | SSE events kept per session for `Last-Event-ID` |
//! | `CATWALK_REPLAY_BYTES` | 4194304 | bytes of those events kept per session (oldest evicted first); also the byte bound of the session's backlog for its GET stream |
//! | `CATWALK_MAX_BODY_BYTES` | 4194304 | largest POST body |
//! | `CATWALK_ALLOWED_ORIGINS` | none | browser origins allowed to call `/mcp` directly |
//! | `CATWALK_CHILD_UID` / `CATWALK_CHILD_GID` | unset | run every MCP server as this uid / gid (set both, neither 0); the runner must be root to switch and refuses to start otherwise |
//! | `CATWALK_CHILD_HOME` | unset | with `CATWALK_CHILD_UID`: the child's `HOME` and working directory (npx / uv caches) |
//! | `CATWALK_READY_TIMEOUT_SECS` | 300 | how long the readiness probe may take to answer `initialize` (a first install downloads) |
//! | `CATWALK_SPARES` | 1 | warm spares kept once ready (0 disables); they count against `CATWALK_MAX_SESSIONS` |
//! | `CATWALK_WAKE_WAIT_SECS` | 60 | how long a `/mcp` request that arrives while starting is held (0: not held) |
//! | `CATWALK_STATELESS_POOL` | 2 | children serving 2026-07-28 requests at most (≥ 1); they count against `CATWALK_MAX_SESSIONS` |
//!
//! Listen address. On a Fly Machine, Fly Proxy (which serves `https://{app}.fly.dev` and
//! honours `fly-force-instance-id`) reaches a service "through a private IPv4 address on
//! each VM, so the process should listen on 0.0.0.0:<port>"; the organization's private
//! network (6PN, `fly-local-6pn`, `fdaa::/16`) is "a mesh of WireGuard tunnels using IPv6"
//! that every app of the organization can reach without going through the proxy (Fly.io
//! docs, "Connect to an App Service", fly.io/docs/networking/app-services/, and "Private
//! Networking", fly.io/docs/networking/private-networking/). So the default `0.0.0.0` (an
//! IPv4 socket) is exactly what the proxy needs and is not on the 6PN, while `::` (on
//! Linux also IPv4-mapped) or a `fdaa:` address would let any machine of the organization
//! call the runner directly: the upstream secret still guards `/mcp`, but `/health` is
//! open and nothing else should be reachable from a neighbour. Serve mode therefore
//! refuses every IPv6 address but `::1` unless `CATWALK_BIND_ALLOW_IPV6=1`.
//!
//! DNS-rebinding defence (MCP 2025-11-25): a request with an `Origin` header not listed in
//! `CATWALK_ALLOWED_ORIGINS` gets 403. Legitimate callers (the gateway, server-side
//! clients) send no `Origin`; a browser page that rebinds a name to the runner does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use mcp_wire::jsonrpc::{self, classify, error_response, Kind};
use mcp_wire::version::{
    self, HANDSHAKE_VERSIONS, HEADER_LAST_EVENT_ID, HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID,
};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::http::{self, Body, BodyError};
use crate::launch::{self, ChildUser};
use crate::modern::Modern;
use crate::pool::Pool;
use crate::ready::{self, Phase};
use crate::ring::LogRing;
use crate::session::{Limits, Posted, Sessions, StartError};

pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Log ring bounds: lines and bytes.
pub const LOG_LINES: usize = 2000;
pub const LOG_BYTES: usize = 512 * 1024;
/// Lines `/logs` returns without `?lines=`.
pub const DEFAULT_LOG_LINES: usize = 200;
/// `Retry-After` for a request refused because the server is still starting.
const STARTING_RETRY_AFTER_SECS: u64 = 5;

/// Resident memory of one session's MCP server, measured with `bench/run.sh`: npm
/// `server-everything` under node takes 68 MiB per session; 80 leaves headroom.
pub const SESSION_MIB: u64 = 80;
/// What the runner itself and the OS keep (the runner is ~5 MiB; the rest is page cache).
pub const RESERVED_MIB: u64 = 64;
pub const MAX_DEFAULT_SESSIONS: u64 = 64;

/// The default session limit for a machine with `total_mib` of memory: what fits after
/// the reserve, at least one. A 256 MiB Fly machine gets 2, 1 GiB gets 12, 2 GiB gets 24.
pub fn sessions_for_memory(total_mib: u64) -> usize {
    (total_mib.saturating_sub(RESERVED_MIB) / SESSION_MIB).clamp(1, MAX_DEFAULT_SESSIONS) as usize
}

/// The memory this process may use: the cgroup limit if there is one, else the machine's.
fn memory_mib() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    [cgroup, total]
        .into_iter()
        .flatten()
        .min()
        .map(|b| b / (1024 * 1024))
}

/// The default listen address: every IPv4 address, where Fly Proxy reaches the runner.
pub const DEFAULT_BIND: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// `CATWALK_BIND` (an IP, optionally in brackets) and `PORT` as a listen address; IPv6 other
/// than loopback only with `allow_ipv6` (see the module docs).
pub fn parse_bind(ip: Option<&str>, port: u16, allow_ipv6: bool) -> Result<SocketAddr, String> {
    let ip = match ip.map(str::trim) {
        None => DEFAULT_BIND,
        Some(text) => {
            let bare = text
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(text);
            bare.parse::<IpAddr>().map_err(|_| {
                format!("CATWALK_BIND {text:?} is not an IP address (host names such as fly-local-6pn are not accepted)")
            })?
        }
    };
    if let IpAddr::V6(v6) = ip {
        if !v6.is_loopback() && !allow_ipv6 {
            return Err(format!(
                "CATWALK_BIND {ip} is an IPv6 address: on Fly that is the private 6PN network, \
                 reachable by every app of the organization, while Fly Proxy reaches the runner \
                 over IPv4 (0.0.0.0); set CATWALK_BIND_ALLOW_IPV6=1 to bind it anyway"
            ));
        }
    }
    Ok(SocketAddr::new(ip, port))
}

fn env_flag(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, String> {
    match get(name).as_deref().map(str::trim) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(format!("{name} must be 1 or 0")),
    }
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub argv: Vec<String>,
    pub child_user: Option<ChildUser>,
    pub secret: String,
    pub bind: SocketAddr,
    pub limits: Limits,
    pub max_body: usize,
    pub allowed_origins: Vec<String>,
    pub ready_timeout: Duration,
    pub wake_wait: Duration,
    /// Children serving 2026-07-28 requests at most (see [`crate::pool`]).
    pub stateless_pool: usize,
}

fn env_num<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, String> {
    match get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a number")),
    }
}

impl ServeConfig {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let launch = launch::parse(&get("CATWALK_LAUNCH").ok_or("CATWALK_LAUNCH is required")?)?;
        let secret = get("CATWALK_UPSTREAM_SECRET")
            .filter(|s| s.len() >= 16)
            .ok_or("CATWALK_UPSTREAM_SECRET is required (at least 16 characters)")?;
        let port: u16 = env_num(&get, "PORT", 8080)?;
        let bind = parse_bind(
            get("CATWALK_BIND").as_deref(),
            port,
            env_flag(&get, "CATWALK_BIND_ALLOW_IPV6")?,
        )?;
        let child_user = ChildUser::from_env(&get)?;
        if let Some(user) = &child_user {
            // SAFETY: geteuid/getegid only read this process's credentials.
            let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
            user.check_switch(euid, egid)?;
        }
        Ok(Self {
            argv: launch.argv,
            child_user,
            secret,
            bind,
            limits: Limits {
                max_sessions: env_num(
                    &get,
                    "CATWALK_MAX_SESSIONS",
                    memory_mib().map(sessions_for_memory).unwrap_or(4),
                )?,
                replay_events: env_num(&get, "CATWALK_REPLAY_EVENTS", 512)?,
                replay_bytes: env_num(&get, "CATWALK_REPLAY_BYTES", 4 * 1024 * 1024)?,
                idle_timeout: Duration::from_secs(env_num(&get, "CATWALK_IDLE_TIMEOUT_SECS", 900)?),
                spares: env_num(&get, "CATWALK_SPARES", 1)?,
            },
            ready_timeout: match env_num(&get, "CATWALK_READY_TIMEOUT_SECS", 300u64)? {
                0 => return Err("CATWALK_READY_TIMEOUT_SECS must be at least 1".into()),
                secs => Duration::from_secs(secs),
            },
            wake_wait: Duration::from_secs(env_num(&get, "CATWALK_WAKE_WAIT_SECS", 60)?),
            stateless_pool: match env_num(&get, "CATWALK_STATELESS_POOL", 2usize)? {
                0 => return Err("CATWALK_STATELESS_POOL must be at least 1".into()),
                n => n,
            },
            max_body: env_num(&get, "CATWALK_MAX_BODY_BYTES", 4 * 1024 * 1024)?,
            allowed_origins: get("CATWALK_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().to_ascii_lowercase())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

struct App {
    cfg: ServeConfig,
    sessions: Arc<Sessions>,
    modern: Arc<Modern>,
    started: Instant,
    phase: watch::Sender<Phase>,
}

/// Why a `/mcp` request cannot be served yet.
enum NotReady {
    Starting,
    Failed(String),
}

impl App {
    /// Waits (at most `CATWALK_WAKE_WAIT_SECS`) until the server is prepared.
    async fn until_ready(&self) -> Result<(), NotReady> {
        let mut rx = self.phase.subscribe();
        let settled =
            tokio::time::timeout(self.cfg.wake_wait, rx.wait_for(|p| *p != Phase::Starting)).await;
        match settled {
            Ok(Ok(phase)) => match &*phase {
                Phase::Failed(reason) => Err(NotReady::Failed(reason.clone())),
                _ => Ok(()),
            },
            _ => Err(NotReady::Starting),
        }
    }
}

/// The answer to a `/mcp` request that cannot be served (`id`: its first request's).
fn not_ready(why: NotReady, id: Option<&Value>) -> Response<Body> {
    match why {
        NotReady::Starting => {
            let mut r = rpc_error(
                503,
                id,
                jsonrpc::SERVER_ERROR,
                "The MCP server is still starting; retry shortly.",
                Some(json!({"status": "starting"})),
            );
            http::set_header(
                &mut r,
                "retry-after",
                &STARTING_RETRY_AFTER_SECS.to_string(),
            );
            r
        }
        NotReady::Failed(reason) => rpc_error(
            503,
            id,
            jsonrpc::SERVER_ERROR,
            &format!("The MCP server failed to start: {reason}."),
            Some(json!({"status": "failed", "reason": reason})),
        ),
    }
}

/// A JSON-RPC error as the HTTP answer, with its HTTP status (also the 2026-07-28 path's).
pub(crate) fn rpc_error(
    status: u16,
    id: Option<&Value>,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response<Body> {
    http::json(status, &error_response(id, code, message, data))
}

fn accepts<B>(req: &Request<B>, media: &str) -> bool {
    http::header(req, "accept").is_some_and(|a| {
        a.split(',').any(|p| {
            let p = p.split(';').next().unwrap_or_default().trim();
            p.eq_ignore_ascii_case(media) || p == "*/*"
        })
    })
}

pub async fn run(cfg: ServeConfig, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    let child_env = launch::child_env(std::env::vars());
    let secrets: Vec<String> = child_env
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "PATH" | "HOME" | "USER" | "SHELL" | "LANG" | "TERM" | "PWD" | "NODE_ENV"
            )
        })
        .map(|(_, v)| v.clone())
        .chain(std::iter::once(cfg.secret.clone()))
        .collect();
    let ring = Arc::new(LogRing::new(LOG_LINES, LOG_BYTES, secrets));
    let sessions = Sessions::new(
        cfg.limits.clone(),
        cfg.argv.clone(),
        child_env,
        cfg.child_user.clone(),
        ring,
    );
    let listener = tokio::net::TcpListener::bind(cfg.bind).await?;
    eprintln!(
        "catwalk-runner serve: listening on {}",
        listener.local_addr()?
    );
    let modern = Modern::new(Pool::new(sessions.clone(), cfg.stateless_pool));
    let app = Arc::new(App {
        cfg,
        sessions: sessions.clone(),
        modern,
        started: Instant::now(),
        phase: watch::channel(Phase::Starting).0,
    });

    // Prepare the server while already answering /health (see `ready`).
    let boot = app.clone();
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        let prepared = tokio::select! {
            r = ready::prepare(&boot.sessions, boot.cfg.ready_timeout) => r,
            // Dropping the probe kills its process group.
            _ = stop.wait_for(|s| *s) => return,
        };
        match prepared {
            Ok(()) => {
                // Spawned (not yet proven) before `ready`, so that requests held until
                // now find a spare in place.
                boot.sessions.warm_up().await;
                boot.phase.send_replace(Phase::Ready);
            }
            Err(reason) => {
                boot.phase.send_replace(Phase::Failed(reason));
            }
        }
    });

    let reaper = sessions.clone();
    let every =
        (reaper.limits.idle_timeout / 2).clamp(Duration::from_millis(250), Duration::from_secs(15));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            reaper.reap_idle();
        }
    });

    let handler_app = app.clone();
    http::serve(
        listener,
        move |req, _| handle(handler_app.clone(), req),
        shutdown,
        Duration::from_secs(10),
    )
    .await;
    sessions.terminate_all();
    // Give children their grace period before the runtime (and kill_on_drop) ends them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/health" => health(&app),
        "/mcp" | "/logs" if !http::bearer_ok(&req, &app.cfg.secret) => {
            let mut r = rpc_error(
                401,
                None,
                jsonrpc::SERVER_ERROR,
                "Unauthorized: a valid bearer token is required.",
                None,
            );
            http::set_header(
                &mut r,
                "www-authenticate",
                "Bearer realm=\"catwalk-runner\"",
            );
            r
        }
        "/mcp"
            if http::header(&req, "origin").is_some_and(|o| {
                !app.cfg
                    .allowed_origins
                    .contains(&o.trim().to_ascii_lowercase())
            }) =>
        {
            rpc_error(
                403,
                None,
                jsonrpc::SERVER_ERROR,
                "Forbidden: this Origin may not call the MCP endpoint.",
                None,
            )
        }
        "/logs" => logs(&app, &req),
        "/mcp" => match *req.method() {
            Method::POST => post(app, req).await,
            // 2026-07-28 has no GET stream and no session to delete.
            Method::GET | Method::DELETE
                if http::header(&req, HEADER_PROTOCOL_VERSION)
                    .is_some_and(version::is_stateless) =>
            {
                let mut r = rpc_error(
                    405,
                    None,
                    jsonrpc::SERVER_ERROR,
                    "Method not allowed: 2026-07-28 requests are POSTs.",
                    None,
                );
                http::set_header(&mut r, "allow", "POST");
                r
            }
            Method::GET | Method::DELETE => {
                if let Err(why) = app.until_ready().await {
                    return not_ready(why, None);
                }
                if req.method() == Method::GET {
                    get(app, req)
                } else {
                    delete(app, req)
                }
            }
            _ => {
                let mut r = rpc_error(
                    405,
                    None,
                    jsonrpc::SERVER_ERROR,
                    "Method not allowed.",
                    None,
                );
                http::set_header(&mut r, "allow", "GET, POST, DELETE");
                r
            }
        },
        _ => http::json(404, &json!({"error": "not found"})),
    }
}

fn health(app: &App) -> Response<Body> {
    let phase = app.phase.borrow().clone();
    let mut body = json!({
        "status": phase.name(),
        "sessions": app.sessions.len(),
        "spares": app.sessions.spares_ready(),
        "pooled": app.sessions.pooled(),
        "uptime_s": app.started.elapsed().as_secs(),
    });
    if let Phase::Failed(reason) = &phase {
        body["reason"] = json!(reason);
    }
    http::json(if phase == Phase::Ready { 200 } else { 503 }, &body)
}

/// `?lines=N` of a `/logs` request: absent → the default; otherwise 1 ..= `max`.
pub fn log_lines_param(query: Option<&str>, max: usize) -> Result<usize, String> {
    let given = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == "lines")
        .map(|(_, v)| v);
    match given {
        None => Ok(DEFAULT_LOG_LINES.min(max)),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("lines must be a whole number from 1 to {max}")),
    }
}

fn logs(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let ring = &app.sessions.ring;
    let n = match log_lines_param(req.uri().query(), ring.capacity()) {
        Ok(n) => n,
        Err(why) => return http::json(400, &json!({"error": why})),
    };
    let (lines, dropped) = ring.tail(n);
    let lines: Vec<Value> = lines
        .into_iter()
        .map(|(at, line)| json!({"ts": crate::clock::rfc3339_ms(at), "line": line}))
        .collect();
    http::json(200, &json!({"lines": lines, "dropped": dropped}))
}

/// An early answer (boxed: a response is large and errors should be cheap to carry).
type Refusal = Box<Response<Body>>;

fn session_from<B>(
    app: &App,
    req: &Request<B>,
) -> Result<Option<Arc<crate::session::Session>>, Refusal> {
    let Some(id) = http::header(req, HEADER_SESSION_ID) else {
        return Ok(None);
    };
    match app.sessions.get(id) {
        Some(s) if mcp_wire::session::is_valid(id) => Ok(Some(s)),
        _ => Err(Box::new(rpc_error(
            404,
            None,
            jsonrpc::SERVER_ERROR,
            "Session not found; start a new session with initialize.",
            None,
        ))),
    }
}

fn session_required(id: Option<&Value>) -> Response<Body> {
    rpc_error(
        400,
        id,
        jsonrpc::SERVER_ERROR,
        "Bad Request: Mcp-Session-Id header is required.",
        None,
    )
}

/// After initialize, `MCP-Protocol-Version` (absent means 2025-03-26) must be a revision we serve.
fn check_version<B>(req: &Request<B>) -> Result<(), Refusal> {
    match http::header(req, HEADER_PROTOCOL_VERSION) {
        Some(v) if !version::is_handshake(v) => Err(Box::new(rpc_error(
            400,
            None,
            jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
            "Bad Request: unsupported MCP-Protocol-Version.",
            Some(json!({"supported": HANDSHAKE_VERSIONS, "requested": v})),
        ))),
        _ => Ok(()),
    }
}

async fn post(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let sse = accepts(&req, "text/event-stream");
    if !sse && !accepts(&req, "application/json") {
        return rpc_error(
            406,
            None,
            jsonrpc::SERVER_ERROR,
            "Not Acceptable: accept application/json and text/event-stream.",
            None,
        );
    }
    let ct_ok = http::header(&req, "content-type").is_some_and(|c| {
        c.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/json")
    });
    if !ct_ok {
        return rpc_error(
            415,
            None,
            jsonrpc::SERVER_ERROR,
            "Unsupported Media Type: send application/json.",
            None,
        );
    }
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, ());
    let header_version = http::header(&req, HEADER_PROTOCOL_VERSION).map(str::to_string);
    let body = match http::read_capped(body, app.cfg.max_body).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return rpc_error(413, None, jsonrpc::SERVER_ERROR, "Payload Too Large.", None)
        }
        Err(BodyError::Read) => {
            return rpc_error(
                400,
                None,
                jsonrpc::PARSE_ERROR,
                "Could not read the request body.",
                None,
            )
        }
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return rpc_error(
                400,
                None,
                jsonrpc::PARSE_ERROR,
                "Parse error: the body is not JSON.",
                None,
            )
        }
    };
    let batch = parsed.is_array();
    let messages = match parsed {
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => {
            return rpc_error(
                400,
                None,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: empty batch.",
                None,
            )
        }
        one => vec![one],
    };
    let kinds: Vec<Kind> = messages.iter().map(classify).collect();
    if kinds.contains(&Kind::Invalid) {
        return rpc_error(
            400,
            None,
            jsonrpc::INVALID_REQUEST,
            "Invalid Request: not a JSON-RPC 2.0 message.",
            None,
        );
    }
    let initialize = messages.iter().find_map(jsonrpc::initialize);
    // 2026-07-28: its version header (a session id sent along is ignored, as the era
    // says), or, with no session, a body that carries the era's envelope or is discover.
    let stateless = header_version.as_deref().is_some_and(version::is_stateless)
        || (http::header(&req, HEADER_SESSION_ID).is_none()
            && initialize.is_none()
            && messages.len() == 1
            && mcp_wire::stateless::is_stateless_post(None, &messages[0]));
    if let Err(why) = app.until_ready().await {
        let first = kinds.iter().find_map(|k| match k {
            Kind::Request { id, .. } => Some(id),
            _ => None,
        });
        return not_ready(why, first);
    }
    if stateless {
        if batch {
            // 2026-07-28 has no batches: one JSON-RPC message per POST.
            return rpc_error(
                400,
                None,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: a 2026-07-28 POST carries one JSON-RPC message, not a batch.",
                None,
            );
        }
        let json_ok = accepts(&req, "application/json");
        return app.modern.post(req.headers(), messages, json_ok, sse).await;
    }
    let session = match session_from(&app, &req) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if session.is_some() {
        if let Err(r) = check_version(&req) {
            return *r;
        }
    }

    let (session, is_new) = match (session, initialize) {
        (Some(_), Some(init)) => {
            return rpc_error(
                400,
                Some(&init.id),
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: the session is already initialized.",
                None,
            )
        }
        (Some(s), None) => (s, false),
        (None, Some(init)) => {
            let id = init.id;
            if messages.len() != 1 {
                return rpc_error(
                    400,
                    Some(&id),
                    jsonrpc::INVALID_REQUEST,
                    "Invalid Request: initialize must be sent alone.",
                    None,
                );
            }
            let requested = init
                .requested_version
                .unwrap_or_else(|| version::DEFAULT_VERSION.to_string());
            match app.sessions.start(&requested).await {
                Ok(s) => (s, true),
                Err(StartError::Full) => {
                    let mut r = rpc_error(
                        503,
                        Some(&id),
                        jsonrpc::SERVER_ERROR,
                        "Too many sessions on this machine; retry shortly.",
                        None,
                    );
                    http::set_header(&mut r, "retry-after", "5");
                    return r;
                }
                Err(StartError::BackingOff(wait)) => {
                    let mut r = rpc_error(
                        503,
                        Some(&id),
                        jsonrpc::SERVER_ERROR,
                        "The MCP server keeps exiting at start; backing off.",
                        None,
                    );
                    http::set_header(&mut r, "retry-after", &wait.as_secs().max(1).to_string());
                    return r;
                }
                Err(StartError::Spawn(why)) => {
                    app.sessions
                        .ring
                        .push(&format!("could not start the MCP server: {why}"));
                    return rpc_error(
                        500,
                        Some(&id),
                        jsonrpc::INTERNAL_ERROR,
                        "The MCP server could not be started.",
                        None,
                    );
                }
            }
        }
        (None, None) => {
            let id = kinds.iter().find_map(|k| match k {
                Kind::Request { id, .. } => Some(id.clone()),
                _ => None,
            });
            return session_required(id.as_ref());
        }
    };

    let outcome = session.post(messages, sse).await;
    let mut resp = match outcome {
        Ok(Posted::Accepted) => http::empty(202),
        Ok(Posted::Stream(rx)) => http::sse_response(rx, KEEPALIVE),
        Ok(Posted::Json(rx)) => match rx.await {
            Ok(v) => http::json(200, &v),
            Err(_) => rpc_error(
                500,
                None,
                jsonrpc::INTERNAL_ERROR,
                "The MCP server exited before answering.",
                None,
            ),
        },
        Err(why) => rpc_error(400, None, jsonrpc::INVALID_REQUEST, &why, None),
    };
    if is_new {
        http::set_header(&mut resp, HEADER_SESSION_ID, &session.id);
    }
    resp
}

fn get(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    if !accepts(&req, "text/event-stream") {
        return rpc_error(
            406,
            None,
            jsonrpc::SERVER_ERROR,
            "Not Acceptable: a GET stream needs Accept: text/event-stream.",
            None,
        );
    }
    if let Err(r) = check_version(&req) {
        return *r;
    }
    match session_from(&app, &req) {
        Err(r) => *r,
        Ok(None) => session_required(None),
        Ok(Some(s)) => {
            http::sse_response(s.get(http::header(&req, HEADER_LAST_EVENT_ID)), KEEPALIVE)
        }
    }
}

fn delete(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    match session_from(&app, &req) {
        Err(r) => *r,
        Ok(None) => session_required(None),
        Ok(Some(s)) => {
            s.terminate();
            app.sessions.remove(&s.id);
            http::empty(204)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_session_limit_follows_machine_memory() {
        assert_eq!(sessions_for_memory(256), 2);
        assert_eq!(sessions_for_memory(1024), 12);
        assert_eq!(sessions_for_memory(2048), 24);
        assert_eq!(sessions_for_memory(64), 1);
        assert_eq!(sessions_for_memory(1 << 20), 64);
    }

    #[test]
    fn configuration_errors_name_the_setting() {
        let launch = r#"{"argv":["node","x.js"]}"#;
        let env = |pairs: Vec<(&'static str, &'static str)>| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(ServeConfig::from_env(env(vec![]))
            .unwrap_err()
            .contains("CATWALK_LAUNCH"));
        assert!(ServeConfig::from_env(env(vec![
            ("CATWALK_LAUNCH", launch),
            ("CATWALK_UPSTREAM_SECRET", "short")
        ]))
        .unwrap_err()
        .contains("CATWALK_UPSTREAM_SECRET"));
        let ok = vec![
            ("CATWALK_LAUNCH", launch),
            ("CATWALK_UPSTREAM_SECRET", "0123456789abcdef"),
            ("PORT", "9"),
        ];
        assert_eq!(
            ServeConfig::from_env(env(ok.clone())).unwrap().bind.port(),
            9
        );
        let mut bad = ok.clone();
        bad.push(("CATWALK_MAX_SESSIONS", "many"));
        assert!(ServeConfig::from_env(env(bad))
            .unwrap_err()
            .contains("CATWALK_MAX_SESSIONS"));

        let mut v6 = ok.clone();
        v6.push(("CATWALK_BIND", "[::]"));
        assert!(ServeConfig::from_env(env(v6.clone()))
            .unwrap_err()
            .contains("CATWALK_BIND_ALLOW_IPV6=1"));
        v6.push(("CATWALK_BIND_ALLOW_IPV6", "1"));
        assert!(ServeConfig::from_env(env(v6.clone())).is_ok());
        v6.pop();
        v6.push(("CATWALK_BIND_ALLOW_IPV6", "yes"));
        assert!(ServeConfig::from_env(env(v6))
            .unwrap_err()
            .contains("CATWALK_BIND_ALLOW_IPV6"));

        let mut half = ok;
        half.push(("CATWALK_CHILD_UID", "10001"));
        assert!(ServeConfig::from_env(env(half))
            .unwrap_err()
            .contains("CATWALK_CHILD_GID"));
    }

    #[test]
    fn readiness_settings_have_defaults_and_are_checked() {
        let base = [
            ("CATWALK_LAUNCH", r#"{"argv":["node","x.js"]}"#),
            ("CATWALK_UPSTREAM_SECRET", "0123456789abcdef"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let all: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
            ServeConfig::from_env(move |k| {
                all.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let cfg = with(&[]).unwrap();
        assert_eq!(cfg.ready_timeout, Duration::from_secs(300));
        assert_eq!(cfg.wake_wait, Duration::from_secs(60));
        assert_eq!(cfg.limits.spares, 1);
        assert_eq!(cfg.stateless_pool, 2);
        let cfg = with(&[("CATWALK_SPARES", "0"), ("CATWALK_WAKE_WAIT_SECS", "0")]).unwrap();
        assert_eq!((cfg.limits.spares, cfg.wake_wait), (0, Duration::ZERO));
        for (name, bad) in [
            ("CATWALK_READY_TIMEOUT_SECS", "0"),
            ("CATWALK_READY_TIMEOUT_SECS", "soon"),
            ("CATWALK_SPARES", "-1"),
            ("CATWALK_WAKE_WAIT_SECS", "1.5"),
            ("CATWALK_STATELESS_POOL", "0"),
        ] {
            let err = with(&[(name, bad)]).unwrap_err();
            assert!(err.contains(name), "{name}={bad}: {err}");
        }
    }

    #[test]
    fn the_logs_line_count_defaults_to_200_and_stays_within_the_ring() {
        assert_eq!(log_lines_param(None, 2000), Ok(200));
        assert_eq!(log_lines_param(Some("x=1"), 2000), Ok(200));
        assert_eq!(log_lines_param(Some("lines=1"), 2000), Ok(1));
        assert_eq!(log_lines_param(Some("a=b&lines=2000"), 2000), Ok(2000));
        assert_eq!(log_lines_param(None, 50), Ok(50));
        for bad in [
            "lines=0",
            "lines=2001",
            "lines=-3",
            "lines=ten",
            "lines=",
            "lines",
        ] {
            let err = log_lines_param(Some(bad), 2000).unwrap_err();
            assert!(err.contains("1 to 2000"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_default_bind_is_every_ipv4_address_where_fly_proxy_reaches_the_runner() {
        let at = |ip: Option<&str>| parse_bind(ip, 8080, false).map(|a| a.to_string());
        assert_eq!(at(None).unwrap(), "0.0.0.0:8080");
        assert_eq!(at(Some("127.0.0.1")).unwrap(), "127.0.0.1:8080");
        assert_eq!(at(Some(" 10.0.0.5 ")).unwrap(), "10.0.0.5:8080");
        assert_eq!(at(Some("::1")).unwrap(), "[::1]:8080");
        assert_eq!(at(Some("[::1]")).unwrap(), "[::1]:8080");
    }

    #[test]
    fn an_ipv6_bind_that_would_reach_the_6pn_needs_the_explicit_opt_in() {
        for ip in [
            "::",
            "[::]",
            "fdaa:0:18:a7b:7d:f066:b83b:2",
            "::ffff:0.0.0.0",
            "2a09:8280:1::2d:1111",
        ] {
            let err = parse_bind(Some(ip), 8080, false).unwrap_err();
            assert!(
                err.contains("6PN") && err.contains("CATWALK_BIND_ALLOW_IPV6=1"),
                "{ip}: {err}"
            );
            assert!(parse_bind(Some(ip), 8080, true).is_ok(), "{ip}");
        }
        for name in ["fly-local-6pn", "localhost", "0.0.0.0:80", "", "[::"] {
            let err = parse_bind(Some(name), 8080, true).unwrap_err();
            assert!(err.contains("not an IP address"), "{name}: {err}");
        }
    }
}
