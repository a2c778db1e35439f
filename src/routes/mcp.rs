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
use worker::{Env, Headers, Method, Request, RequestInit, Response, ResponseBody};

use crate::deploy::secrets::open_upstream;
use crate::deploy::state::Status;
use crate::deploy::token;
use crate::error::{AppError, AppResult};
use crate::gateway::failure::Failure;
use crate::gateway::request::{self as rules, Message, TokenSource};
use crate::gateway::usage;
use crate::http::body::CappedBuffer;
use crate::ids::random_hex;
use crate::lifecycle::{self, ring};
use crate::platform::machine::MachineLink;
use crate::platform::{env, web};
use crate::routes::Ctx;
use crate::store::deployments::{self as store, GatewayRow};
use crate::time::now_ms;

/// The largest MCP message the gateway accepts (bytes).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Binding of the Workers rate limiter (`[[ratelimits]]` in wrangler.toml).
pub const RATE_LIMITER: &str = "MCP_RATE_LIMITER";
/// Its period, for `Retry-After`.
const RATE_PERIOD_SECS: u32 = 60;
/// At most one `mcp.auth_failed` audit row per deployment per this many seconds.
const AUTH_AUDIT_EVERY_SECS: u64 = 60;

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
    let query = req.url()?.query().map(str::to_string);
    let (presented, source) = rules::token(
        web::header(&req, "authorization").as_deref(),
        web::header(&req, "x-access-token").as_deref(),
        query.as_deref(),
    )
    .ok_or_else(|| unauthorized("missing_token"))?;
    cx.log.also_redact(&presented);
    let db = env::db(&cx.env)?;
    let row = store::for_gateway(&db, &id)
        .await?
        .ok_or_else(|| AppError::not_found("No such MCP endpoint."))?;
    if !token::matches(&presented, &row.access_token_hash) {
        audit_auth_failure(cx, &db, &id, &row, source).await;
        return Err(unauthorized("invalid_token"));
    }
    if let Ok(limiter) = cx.env.rate_limiter(RATE_LIMITER) {
        if !limiter.limit(id.clone()).await?.success {
            return Err(AppError::RateLimited {
                retry_after_secs: RATE_PERIOD_SECS,
            });
        }
    }

    let body = if method == Method::Post {
        Some(read_body(&mut req).await?)
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
    let client_session = web::header(&req, "mcp-session-id");
    let version = web::header(&req, "mcp-protocol-version");

    let outcome = exchange(
        &cx.env,
        &id,
        &link,
        Exchange {
            method: method.clone(),
            headers: &headers,
            body: body.as_deref(),
            msg: &msg,
            client_session: client_session.as_deref(),
            version: version.as_deref(),
        },
    )
    .await;
    let response = match outcome {
        Ok(r) => r,
        Err(f) => {
            cx.log.warn(
                "mcp_failed",
                json!({ "deployment": id, "failure": format!("{f:?}") }),
            );
            failed(f, request_id.as_ref())?
        }
    };
    record_usage(cx, &id, &msg, response.status_code(), now_ms() - started);
    Ok(response)
}

async fn read_body(req: &mut Request) -> AppResult<Vec<u8>> {
    use futures_util::StreamExt;
    crate::http::body::check_declared_length(
        web::header(req, "content-length").as_deref(),
        MAX_BODY,
    )?;
    let mut buf = CappedBuffer::new(MAX_BODY);
    if req.inner().body().is_some() {
        let mut stream = req.stream()?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                AppError::bad_request("body_read_failed", "The request body could not be read.")
            })?;
            buf.push(&chunk)?;
        }
    }
    Ok(buf.into_inner())
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
            let state = session
                .call("/state", json!({ "version": x.version }))
                .await?;
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

/// A handle on one gateway session object.
struct SessionRef {
    stub: worker::Stub,
    deployment_id: String,
}

impl SessionRef {
    fn new(env: &Env, deployment_id: &str, session: &str) -> Result<Self, Failure> {
        let ns = env::sessions(env).map_err(|_| Failure::Internal)?;
        let stub = ns
            .id_from_name(&format!("{deployment_id}:{session}"))
            .and_then(|id| id.get_stub())
            .map_err(|_| Failure::Internal)?;
        Ok(Self {
            stub,
            deployment_id: deployment_id.to_string(),
        })
    }

    /// One internal call; 404 means the session is unknown or ended.
    async fn call(&self, path: &str, mut body: Value) -> Result<Value, Failure> {
        body["deployment_id"] = json!(self.deployment_id);
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(body.to_string().into()));
        let req = Request::new_with_init(&format!("https://session.internal{path}"), &init)
            .map_err(|_| Failure::Internal)?;
        let mut resp = self
            .stub
            .fetch_with_request(req)
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
    let (env, id) = (cx.env.clone(), id.to_string());
    let log = cx.log.clone();
    cx.worker.wait_until(async move {
        let result = match env::db(&env) {
            Ok(db) => crate::store::usage::record(&db, &id, &metrics, now_ms()).await,
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
