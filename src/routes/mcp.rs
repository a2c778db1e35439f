//! `/api/mcp/{deployment_id}`: the MCP Streamable HTTP gateway — the stable URL a person
//! pastes into Claude. Per request: the access token (checked against the digest in D1 on
//! every request, so a rotated token fails at once), the per-deployment rate limit, the
//! deployment's status, then the machine's runner behind Fly's proxy with our upstream
//! secret. Handshake-era sessions live in `McpSession` objects (we mint the session id,
//! they map it to the runner's and re-initialize transparently when the runner lost it);
//! 2026-07-28 stateless requests go straight through. Response bodies are the runtime's
//! own stream, handed on without being read; request bodies are read (≤ `MAX_BODY`) once,
//! because a request may have to be sent twice (after a recovery) and must be inspected.

use serde_json::{json, Value};
use worker::{Env, Headers, Method, Request, Response, ResponseBody};

use crate::deploy::secrets::open_upstream;
use crate::deploy::state::Status;
use crate::deploy::token;
use crate::error::{AppError, AppResult};
use crate::gateway::failure::Failure;
use crate::gateway::request::{self as rules, Message, TokenSource};
use crate::gateway::usage;
use crate::ids::random_hex;
use crate::lifecycle::{self, ring};
use crate::platform::machine::MachineLink;
use crate::platform::{env, web};
use crate::routes::Ctx;
use crate::store::deployments::{self as store, GatewayRow};
use crate::time::now_ms;

/// The largest MCP message the gateway accepts (bytes).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// The rate limiter's period (`[[ratelimits]]` in wrangler.toml), for `Retry-After`.
const RATE_PERIOD_SECS: u32 = 60;
/// At most one `mcp.auth_failed` audit row per deployment per this many seconds.
const AUTH_AUDIT_EVERY_SECS: u64 = 60;

/// `Server-Timing` for the response: where the gateway's own time went (auth, limit,
/// session, upstream head), so an operator can see it in any HTTP client.
struct Timing {
    last: i64,
    marks: Vec<(&'static str, i64)>,
}

impl Timing {
    fn new() -> Self {
        Self {
            last: now_ms(),
            marks: Vec::new(),
        }
    }

    fn mark(&mut self, name: &'static str) {
        let now = now_ms();
        self.marks.push((name, now - self.last));
        self.last = now;
    }

    fn header(&self) -> String {
        self.marks
            .iter()
            .map(|(n, d)| format!("{n};dur={d}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn unauthorized(reason: &'static str) -> AppError {
    AppError::unauthorized(
        reason,
        "A valid access token is required (Authorization: Bearer, X-Access-Token or ?token=).",
    )
}

/// The answer for a gateway failure: its status, JSON-RPC body and `Retry-After`.
fn failed(f: Failure, id: Option<&Value>) -> AppResult<Response> {
    let retry = f.retry_after().map(|s| s.to_string());
    Ok(web::json_text(
        f.status(),
        f.body(id).to_string(),
        retry.as_deref(),
    )?)
}

pub async fn handle(mut req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let id = id
        .ok_or_else(|| AppError::not_found("No such MCP endpoint."))?
        .to_string();
    let method = req.method();
    if method == Method::Options {
        let mut r = Response::empty()?.with_status(204);
        r.headers_mut().set("Allow", "GET, POST, DELETE, OPTIONS")?;
        return Ok(r);
    }
    let started = now_ms();
    let mut timing = Timing::new();
    let query = req.url()?.query().map(str::to_string);
    let (presented, source) = rules::token(
        web::header(&req, "authorization").as_deref(),
        web::header(&req, "x-access-token").as_deref(),
        query.as_deref(),
    )
    .ok_or_else(|| unauthorized("missing_token"))?;
    cx.log.also_redact(&presented);
    let db = env::db(&cx.env)?;
    let client_session = web::header(&req, "mcp-session-id");
    let version = web::header(&req, "mcp-protocol-version");
    // The session's state is read (never written) while D1 answers for the token: the two
    // round trips overlap instead of adding up, and an unauthenticated request cannot keep
    // a session alive or plant a version. The write, when due, follows the token check.
    let prefetch = async {
        match client_session.as_deref() {
            Some(s) if method != Method::Delete && mcp_wire::session::is_valid(s) => {
                let session = SessionRef::new(&cx.env, &id, s).ok()?;
                Some(
                    session
                        .call("/state", json!({ "version": version, "peek": true }))
                        .await,
                )
            }
            _ => None,
        }
    };
    let (row, prefetched) = futures_util::join!(store::for_gateway(&db, &id), prefetch);
    let row = row?.ok_or_else(|| AppError::not_found("No such MCP endpoint."))?;
    if !token::matches(&presented, &row.access_token_hash) {
        audit_auth_failure(cx, &db, &id, &row, source).await;
        return Err(unauthorized("invalid_token"));
    }
    if let (Some(Ok(state)), Some(s)) = (&prefetched, client_session.as_deref()) {
        if state["touch_due"] == true {
            touch_session(cx, &id, s, version.as_deref());
        }
    }
    timing.mark("auth");
    let limiter = env::rate_limiter(&cx.env, env::MCP_RATE_LIMITER)?;
    if !limiter.limit(id.clone()).await?.success {
        return Err(AppError::RateLimited {
            retry_after_secs: RATE_PERIOD_SECS,
        });
    }

    timing.mark("limit");
    let body = if method == Method::Post {
        Some(web::read_capped(&mut req, MAX_BODY).await?)
    } else {
        None
    };
    let msg = body.as_deref().map(rules::message).unwrap_or_default();
    let request_id = msg.id.clone();
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    let refusal = match status {
        Status::Running => None,
        Status::Stopped => Some(Failure::Stopped),
        Status::Failed => Some(Failure::Failed),
        Status::Pending | Status::Deploying => Some(Failure::Deploying),
        Status::Deleting => return Err(AppError::not_found("No such MCP endpoint.")),
    };
    if let Some(f) = refusal {
        return failed(f, request_id.as_ref());
    }
    let link = match machine_link(cx, &id, &row) {
        Ok(l) => l,
        Err(f) => return failed(f, request_id.as_ref()),
    };
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .filter(|(k, _)| rules::forward_request_header(k))
        .collect();

    timing.mark("read");
    let outcome = exchange(
        &cx.env,
        &id,
        &link,
        &mut timing,
        Exchange {
            method: method.clone(),
            headers: &headers,
            body: body.as_deref(),
            msg: &msg,
            client_session: client_session.as_deref(),
            version: version.as_deref(),
            prefetched,
        },
    )
    .await;
    let mut response = match outcome {
        Ok(r) => r,
        Err(f) => {
            cx.log.warn(
                "mcp_failed",
                json!({ "deployment": id, "failure": format!("{f:?}") }),
            );
            failed(f, request_id.as_ref())?
        }
    };
    timing.mark("upstream");
    let _ = response
        .headers_mut()
        .set("server-timing", &timing.header());
    record_usage(cx, &id, &msg, response.status_code(), now_ms() - started);
    Ok(response)
}

fn machine_link(cx: &Ctx, id: &str, row: &GatewayRow) -> Result<MachineLink, Failure> {
    let machine_id = row.machine_id.clone().ok_or(Failure::Deploying)?;
    let ring = ring(&cx.config).map_err(|_| Failure::Internal)?;
    let sealed = row.upstream_sealed().ok_or(Failure::Internal)?;
    let secret = open_upstream(ring, id, &sealed).map_err(|_| Failure::Internal)?;
    Ok(MachineLink {
        url: lifecycle::ingress_url(&cx.config, &row.config),
        machine_id,
        secret,
    })
}

struct Exchange<'a> {
    /// The session's `/state`, when it was fetched alongside the token check.
    prefetched: Option<Result<Value, Failure>>,
    method: Method,
    headers: &'a [(String, String)],
    body: Option<&'a [u8]>,
    msg: &'a Message,
    client_session: Option<&'a str>,
    version: Option<&'a str>,
}

/// Sends the request the way its era and session call for, and relays the answer.
async fn exchange(
    env: &Env,
    id: &str,
    link: &MachineLink,
    timing: &mut Timing,
    x: Exchange<'_>,
) -> Result<Response, Failure> {
    let stateless = rules::is_stateless_request(x.version, x.client_session);
    match x.client_session {
        None if !stateless && x.method == Method::Post && x.msg.is_initialize() => {
            initialize(env, id, link, &x).await
        }
        None => {
            let resp = link.send(x.method.clone(), x.headers, x.body, None).await?;
            relay(resp, None)
        }
        Some(ours) => {
            if !mcp_wire::session::is_valid(ours) {
                return Err(Failure::UnknownSession);
            }
            let session = SessionRef::new(env, id, ours)?;
            if x.method == Method::Delete {
                session.call("/end", json!({ "link": link })).await?;
                return Response::empty()
                    .map(|r| r.with_status(204))
                    .map_err(|_| Failure::Internal);
            }
            let state = match x.prefetched {
                Some(state) => state?,
                None => {
                    session
                        .call("/state", json!({ "version": x.version }))
                        .await?
                }
            };
            timing.mark("session");
            let upstream = state["upstream_session"]
                .as_str()
                .ok_or(Failure::Internal)?
                .to_string();
            let resp = link
                .send(x.method.clone(), x.headers, x.body, Some(&upstream))
                .await?;
            if resp.status_code() != 404 {
                return relay(resp, Some(ours));
            }
            // The runner no longer knows the session (machine restarted or auto-stopped):
            // re-initialize behind the client's back and send the request once more.
            let fresh = session
                .call("/recover", json!({ "stale": upstream, "link": link }))
                .await?;
            let upstream = fresh["upstream_session"]
                .as_str()
                .ok_or(Failure::BadUpstream)?
                .to_string();
            let resp = link
                .send(x.method.clone(), x.headers, x.body, Some(&upstream))
                .await?;
            if resp.status_code() == 404 {
                return Err(Failure::UnknownSession);
            }
            relay(resp, Some(ours))
        }
    }
}

/// `initialize` without a session: forwarded, and when the runner opens a session the
/// gateway mints its own id, records the pair in a new session object and answers with it.
async fn initialize(
    env: &Env,
    id: &str,
    link: &MachineLink,
    x: &Exchange<'_>,
) -> Result<Response, Failure> {
    let resp = link.send(Method::Post, x.headers, x.body, None).await?;
    let upstream = resp.headers().get("mcp-session-id").ok().flatten();
    let Some(upstream) = upstream.filter(|s| mcp_wire::session::is_valid(s)) else {
        // No session (an error, or a server without sessions): relay as it is.
        return relay(resp, None);
    };
    let ours = random_hex(16).map_err(|_| Failure::Internal)?;
    let initialize = String::from_utf8_lossy(x.body.unwrap_or_default()).into_owned();
    SessionRef::new(env, id, &ours)?
        .call(
            "/begin",
            json!({ "upstream_session": upstream, "version": x.msg.requested_version, "initialize": initialize }),
        )
        .await?;
    relay(resp, Some(&ours))
}

/// The machine's answer with our headers: whitelisted ones copied, our session id, no
/// proxy buffering for streams; the body handed on as the runtime's stream.
fn relay(upstream: worker::Response, session: Option<&str>) -> Result<Response, Failure> {
    let status = upstream.status_code();
    if matches!(status, 401 | 403) {
        // Our own secret was refused: a gateway fault, not the client's.
        return Err(Failure::BadUpstream);
    }
    let headers = Headers::new();
    let mut is_stream = false;
    for (k, v) in upstream.headers().entries() {
        if rules::forward_response_header(&k) {
            is_stream |=
                k.eq_ignore_ascii_case("content-type") && v.starts_with("text/event-stream");
            headers.set(&k, &v).map_err(|_| Failure::Internal)?;
        }
    }
    if let Some(s) = session {
        headers
            .set("mcp-session-id", s)
            .map_err(|_| Failure::Internal)?;
    }
    if is_stream {
        headers
            .set("x-accel-buffering", "no")
            .map_err(|_| Failure::Internal)?;
        headers
            .set("cache-control", "no-cache")
            .map_err(|_| Failure::Internal)?;
    }
    let (_, body) = upstream.into_parts();
    let body = match body {
        ResponseBody::Stream(s) => ResponseBody::Stream(s),
        ResponseBody::Body(b) => ResponseBody::Body(b),
        _ => ResponseBody::Empty,
    };
    Ok(Response::builder()
        .with_status(status)
        .with_headers(headers)
        .body(body))
}

/// Records an authenticated request on its session (last seen, stated version) after the
/// answer is on its way.
fn touch_session(cx: &Ctx, id: &str, session: &str, version: Option<&str>) {
    let Ok(session) = SessionRef::new(&cx.env, id, session) else {
        return;
    };
    let body = json!({ "version": version });
    cx.worker.wait_until(async move {
        let _ = session.call("/state", body).await;
    });
}

/// A handle on one gateway session object.
struct SessionRef {
    ns: worker::ObjectNamespace,
    name: String,
    deployment_id: String,
}

impl SessionRef {
    fn new(env: &Env, deployment_id: &str, session: &str) -> Result<Self, Failure> {
        Ok(Self {
            ns: env::sessions(env).map_err(|_| Failure::Internal)?,
            name: format!("{deployment_id}:{session}"),
            deployment_id: deployment_id.to_string(),
        })
    }

    /// One internal call; 404 means the session is unknown or ended.
    async fn call(&self, path: &str, mut body: Value) -> Result<Value, Failure> {
        body["deployment_id"] = json!(self.deployment_id);
        let mut resp = env::post_to_object(&self.ns, &self.name, path, Some(body.to_string()))
            .await
            .map_err(|_| Failure::Internal)?;
        match resp.status_code() {
            200 => resp.json::<Value>().await.map_err(|_| Failure::Internal),
            404 => Err(Failure::UnknownSession),
            502 => Err(Failure::BadUpstream),
            _ => Err(Failure::Internal),
        }
    }
}

/// Counts pending in this isolate: (deployment, metric) → n, and when they were last
/// written. Flushed at most every [`USAGE_FLUSH_MS`] (or past [`USAGE_FLUSH_AT`] entries),
/// after the answer, so D1 is not written once per request; an isolate evicted before its
/// next flush loses at most those seconds of counts.
struct Pending {
    counts: std::collections::HashMap<(String, String), u64>,
    flushed_at: i64,
}

thread_local! {
    static PENDING: std::cell::RefCell<Pending> = std::cell::RefCell::new(Pending {
        counts: Default::default(),
        flushed_at: 0,
    });
}

const USAGE_FLUSH_MS: i64 = 5_000;
const USAGE_FLUSH_AT: usize = 500;

/// Counts the request after the answer is on its way (never delays it).
fn record_usage(cx: &Ctx, id: &str, msg: &Message, status: u16, ms: i64) {
    let mut metrics = vec![
        "requests".to_string(),
        format!("latency:{}", usage::bucket(ms.max(0) as u64)),
    ];
    if status >= 400 {
        metrics.push("errors".to_string());
    }
    if let Some(tool) = &msg.tool {
        metrics.push(format!("tool:{tool}"));
    }
    let now = now_ms();
    let due = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        for m in metrics {
            *p.counts.entry((id.to_string(), m)).or_insert(0) += 1;
        }
        if now - p.flushed_at < USAGE_FLUSH_MS && p.counts.len() < USAGE_FLUSH_AT {
            return None;
        }
        p.flushed_at = now;
        Some(
            p.counts
                .drain()
                .map(|((d, m), n)| (d, m, n))
                .collect::<Vec<_>>(),
        )
    });
    let Some(batch) = due else { return };
    let env = cx.env.clone();
    let log = cx.log.clone();
    cx.worker.wait_until(async move {
        let result = match env::db(&env) {
            Ok(db) => crate::store::usage::record(&db, &batch, now_ms()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            log.warn("usage_record_failed", json!({ "detail": e.log_detail() }));
        }
    });
}

/// One `mcp.auth_failed` row per deployment per minute (a KV marker), for its owner.
async fn audit_auth_failure(
    cx: &Ctx,
    db: &worker::D1Database,
    id: &str,
    row: &GatewayRow,
    source: TokenSource,
) {
    let Ok(kv) = env::cache(&cx.env) else { return };
    let key = format!("audit:mcp-auth:{id}");
    if kv.get(&key).text().await.ok().flatten().is_some() {
        return;
    }
    if let Ok(put) = kv.put(&key, "1") {
        let _ = put.expiration_ttl(AUTH_AUDIT_EVERY_SECS).execute().await;
    }
    lifecycle::audit(
        db,
        &cx.log,
        &row.owner_id,
        "mcp.auth_failed",
        id,
        json!({ "token_in": format!("{source:?}").to_lowercase() }),
    )
    .await;
}

/// `GET /api/deployments/{id}/usage` (owner): counters, tool calls, latency percentiles.
pub async fn usage_report(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let user = crate::routes::auth::signed_in(&req, cx).await?;
    let id = id.ok_or_else(|| AppError::not_found("No such deployment."))?;
    let db = env::db(&cx.env)?;
    let d = store::get_owned(&db, &user.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such deployment."))?;
    // This isolate's unwritten counts first (others' arrive within USAGE_FLUSH_MS).
    let pending = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.flushed_at = now_ms();
        p.counts
            .drain()
            .map(|((d, m), n)| (d, m, n))
            .collect::<Vec<_>>()
    });
    crate::store::usage::record(&db, &pending, now_ms()).await?;
    let rows = crate::store::usage::read(&db, &d.id).await?;
    let mut requests = 0;
    let mut errors = 0;
    let mut tools = serde_json::Map::new();
    let mut buckets = Vec::new();
    for r in rows {
        let n = r.count.max(0) as u64;
        match r.metric.split_once(':') {
            None if r.metric == "requests" => requests = n,
            None if r.metric == "errors" => errors = n,
            Some(("tool", name)) => {
                tools.insert(name.to_string(), json!(n));
            }
            Some(("latency", b)) => {
                if let Ok(b) = b.parse::<usize>() {
                    buckets.push((b, n));
                }
            }
            _ => {}
        }
    }
    let p = |q: f64| usage::percentile(&buckets, q);
    web::json(
        200,
        &json!({
            "deployment_id": d.id,
            "requests": requests,
            "errors": errors,
            "tool_calls": tools,
            "latency_ms": { "p50": p(50.0), "p90": p(90.0), "p99": p(99.0) },
            "note": "Latency is time to the response head, as the upper bound of a histogram bucket."
        }),
    )
}
