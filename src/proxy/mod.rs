//! The gateway's Worker side: one MCP request from the client to its deployment's machine
//! and back. Per request: the token and session are judged by the deployment's
//! `McpGateway` object in one hop (no D1 read), which also keeps the per-deployment rate
//! limit; then the machine's runner behind Fly's proxy with our upstream secret. Handshake-era sessions:
//! we mint the session id, the object maps it to the runner's and re-initializes when the
//! runner lost it; 2026-07-28 stateless requests go straight through (a session id sent
//! along with one is ignored) and the runner serves them (`runner/src/modern.rs`). Response bodies are
//! the runtime's own stream, handed on unread; request bodies are read (≤ [`MAX_BODY`])
//! once, because a request may be sent twice (after a recovery) and must be inspected.

pub mod gate;
pub mod relay;
pub mod usage;

use mcp_wire::version::{HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID};
use serde_json::{json, Value};
use worker::{Method, Request, Response};

use crate::error::{AppError, AppResult};
use crate::gateway::authority::Verdict;
use crate::gateway::failure::Failure;
use crate::gateway::link::MachineLink;
use crate::gateway::request::{self as rules, Message};
use crate::gateway::timing::Timing;
use crate::ids::random_hex;
use crate::platform::web;
use crate::routes::Ctx;
use crate::time::now_ms;
use gate::{Gate, Presented};
use relay::relay;

/// The largest MCP message the gateway accepts (bytes).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

fn unauthorized(reason: &'static str) -> AppError {
    AppError::unauthorized(
        reason,
        "A valid access token is required (Authorization: Bearer, X-Access-Token or ?token=), or an OAuth access token for this URL.",
    )
}

/// A 401 that tells an OAuth client where to start (RFC 9728 §5.1): the documented error
/// body, with `WWW-Authenticate` naming this deployment's protected resource metadata.
fn challenged(req: &Request, cx: &Ctx, id: &str, reason: &'static str) -> AppResult<Response> {
    let mut r = web::error_response(&unauthorized(reason));
    let base = crate::routes::public_base(req, cx)?;
    let presented = reason != "missing_token";
    r.headers_mut().set(
        "WWW-Authenticate",
        &crate::oauth::metadata::challenge(&base, id, presented),
    )?;
    cx.log.info(
        "mcp_unauthorized",
        json!({ "deployment": id, "reason": reason }),
    );
    Ok(r)
}

fn not_found() -> AppError {
    AppError::not_found("No such MCP endpoint.")
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

pub async fn handle(mut req: Request, cx: &mut Ctx, id: &str) -> AppResult<Response> {
    let method = req.method();
    if method == Method::Options {
        let mut r = Response::empty()?.with_status(204);
        r.headers_mut().set("Allow", "GET, POST, DELETE, OPTIONS")?;
        return Ok(r);
    }
    let started = now_ms();
    let mut timing = Timing::default();
    let query = web::query(&req);
    let Some((presented, token_in)) = rules::token(
        web::header(&req, "authorization").as_deref(),
        web::header(&req, "x-access-token").as_deref(),
        query.as_deref(),
    ) else {
        return challenged(&req, cx, id, "missing_token");
    };
    cx.log.also_redact(&presented);
    let version = web::header(&req, HEADER_PROTOCOL_VERSION);
    let client_session = web::header(&req, HEADER_SESSION_ID);
    let client_session = rules::session_of(version.as_deref(), client_session.as_deref());
    // A malformed session id is judged as none, then refused once the token passed.
    let session = client_session.filter(|s| mcp_wire::session::is_valid(s));
    let gate = Gate::of(&cx.env, id)?;
    let judged = gate.pass(Presented {
        token: &presented,
        token_in,
        session,
        version: version.as_deref(),
        end: method == Method::Delete,
    });
    // The body is read while the object judges the token: the two overlap.
    let reading = async {
        if method == Method::Post {
            web::read_capped(&mut req, MAX_BODY).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (verdict, body) = futures_util::join!(judged, reading);
    let verdict = match verdict {
        Ok(v) => v,
        Err(f) => return failed(f, None),
    };
    let (link, upstream_session) = match verdict {
        Verdict::Pass {
            link,
            upstream_session,
        } => (link, upstream_session),
        Verdict::NotFound => return Err(not_found()),
        Verdict::Unauthorized => return challenged(&req, cx, id, "invalid_token"),
        Verdict::Limited { retry_after_secs } => {
            return Err(AppError::RateLimited { retry_after_secs })
        }
        Verdict::Refused { failure } => {
            let body = body?;
            let msg = body.as_deref().map(rules::message).unwrap_or_default();
            return failed(failure, msg.id.as_ref());
        }
    };
    timing.mark("gate");
    let body = body?;
    let msg = body.as_deref().map(rules::message).unwrap_or_default();
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .filter(|(k, _)| rules::forward_request_header(k))
        .collect();
    let outcome = if client_session.is_some() && session.is_none() {
        Err(Failure::UnknownSession)
    } else {
        exchange(
            &gate,
            &link,
            Exchange {
                method: method.clone(),
                headers: &headers,
                body: body.as_deref(),
                msg: &msg,
                session: session.zip(upstream_session.as_deref()),
                version: version.as_deref(),
            },
        )
        .await
    };
    let mut response = match outcome {
        Ok(r) => r,
        Err(f) => {
            cx.log.warn(
                "mcp_failed",
                json!({ "deployment": id, "failure": format!("{f:?}") }),
            );
            failed(f, msg.id.as_ref())?
        }
    };
    timing.mark("upstream");
    let _ = response
        .headers_mut()
        .set("server-timing", &timing.header());
    usage::record(
        &cx.worker,
        &cx.env,
        &cx.log,
        id,
        &msg,
        response.status_code(),
        now_ms() - started,
    );
    Ok(response)
}

struct Exchange<'a> {
    method: Method,
    headers: &'a [(String, String)],
    body: Option<&'a [u8]>,
    msg: &'a Message,
    /// Ours and the runner's, when the request named a session the object knows.
    session: Option<(&'a str, &'a str)>,
    version: Option<&'a str>,
}

/// Sends the request the way its era and session call for, and relays the answer.
async fn exchange(gate: &Gate, link: &MachineLink, x: Exchange<'_>) -> Result<Response, Failure> {
    let Some((ours, upstream)) = x.session else {
        let stateless = rules::is_stateless_request(x.version, None);
        if !stateless && x.method == Method::Post && x.msg.is_initialize() {
            return initialize(gate, link, &x).await;
        }
        let resp = link.send(x.method.clone(), x.headers, x.body, None).await?;
        return relay(resp, None);
    };
    if x.method == Method::Delete {
        // The object has ended our session; the runner's goes too (best effort: the
        // runner also reaps idle sessions by itself).
        let _ = link.send(Method::Delete, &[], None, Some(upstream)).await;
        return Response::empty()
            .map(|r| r.with_status(204))
            .map_err(|_| Failure::Internal);
    }
    let resp = link
        .send(x.method.clone(), x.headers, x.body, Some(upstream))
        .await?;
    if resp.status_code() != 404 {
        return relay(resp, Some(ours));
    }
    // The runner no longer knows the session (machine restarted or auto-stopped):
    // re-initialize behind the client's back and send the request once more.
    let fresh = gate.recover(ours, upstream).await?;
    let resp = link
        .send(x.method.clone(), x.headers, x.body, Some(&fresh))
        .await?;
    if resp.status_code() == 404 {
        return Err(Failure::UnknownSession);
    }
    relay(resp, Some(ours))
}

/// `initialize` without a session: forwarded, and when the runner opens a session the
/// gateway mints its own id, records the pair with the object and answers with it.
async fn initialize(
    gate: &Gate,
    link: &MachineLink,
    x: &Exchange<'_>,
) -> Result<Response, Failure> {
    let resp = link.send(Method::Post, x.headers, x.body, None).await?;
    let upstream = resp.headers().get(HEADER_SESSION_ID).ok().flatten();
    let Some(upstream) = upstream.filter(|s| mcp_wire::session::is_valid(s)) else {
        // No session (an error, or a server without sessions): relay as it is.
        return relay(resp, None);
    };
    let ours = random_hex(16).map_err(|_| Failure::Internal)?;
    let initialize = String::from_utf8_lossy(x.body.unwrap_or_default()).into_owned();
    gate.begin(
        &ours,
        &upstream,
        x.msg.requested_version.as_deref(),
        &initialize,
    )
    .await?;
    relay(resp, Some(&ours))
}
