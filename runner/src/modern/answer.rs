//! The HTTP answer to one 2026-07-28 request: JSON with the status of its error code when
//! the answer comes first and soon, else an SSE stream (see [`super`]); and the refusals
//! when no pooled child can be had.

use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use mcp_wire::jsonrpc;
use mcp_wire::sse::{self, Event};
use mcp_wire::stateless;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::http::{self, Body};
use crate::pool::PoolError;
use crate::serve::rpc_error;
use crate::session::StartError;

/// How long an answer may take before the response commits to SSE (whose keep-alives then
/// hold the connection); a quicker answer goes out as JSON with its error's HTTP status.
pub const SSE_AFTER: Duration = crate::serve::KEEPALIVE;
/// What the relay of one request hands to its HTTP response.
pub(super) enum Out {
    Note(Value),
    Final(Value),
}

/// A final answer as plain JSON, with the HTTP status of its error code.
pub(super) fn json_answer(v: &Value) -> Response<Body> {
    let status = v
        .pointer("/error/code")
        .and_then(Value::as_i64)
        .map(stateless::status_for)
        .unwrap_or(200);
    http::json(status, v)
}

/// The call's stream ended before its final answer (the server went away mid-call).
fn unanswered() -> Response<Body> {
    rpc_error(
        500,
        None,
        jsonrpc::INTERNAL_ERROR,
        "The MCP server ended the call without answering.",
        None,
    )
}

fn frame(v: &Value) -> Bytes {
    Bytes::from(sse::encode(&Event {
        event: Some("message".into()),
        data: v.to_string(),
        ..Default::default()
    }))
}

/// The HTTP answer for a relayed call: JSON when the answer comes first and soon (or the
/// client takes only JSON), else SSE.
pub(super) async fn respond(
    mut rx: mpsc::UnboundedReceiver<Out>,
    accepts_json: bool,
    accepts_sse: bool,
) -> Response<Body> {
    if !accepts_sse {
        while let Some(out) = rx.recv().await {
            if let Out::Final(v) = out {
                return json_answer(&v);
            }
        }
        return unanswered();
    }
    let first = if accepts_json {
        match tokio::time::timeout(SSE_AFTER, rx.recv()).await {
            Ok(Some(Out::Final(v))) => return json_answer(&v),
            Ok(None) => return unanswered(),
            Ok(Some(Out::Note(n))) => Some(n),
            Err(_) => None,
        }
    } else {
        None
    };
    let (tx, body_rx) = mpsc::unbounded_channel();
    if let Some(n) = first {
        let _ = tx.send(frame(&n));
    }
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                o = rx.recv() => o,
                // The client closed the stream: dropping `rx` tells the relay.
                _ = tx.closed() => return,
            };
            match next {
                Some(Out::Note(v)) => {
                    let _ = tx.send(frame(&v));
                }
                Some(Out::Final(v)) => {
                    let _ = tx.send(frame(&v));
                    return;
                }
                None => return,
            }
        }
    });
    http::sse_response(body_rx, crate::serve::KEEPALIVE)
}

/// 503 (+ `Retry-After`) when no child could be had, 500 when one would not start.
pub(super) fn pool_refusal(why: PoolError, id: &Value) -> Response<Body> {
    let (status, message, retry) = match why {
        PoolError::Busy => (
            503,
            "Every server process for 2026-07-28 requests is busy; retry shortly.",
            Some(2),
        ),
        PoolError::Start(StartError::Full) => (
            503,
            "Too many server processes on this machine; retry shortly.",
            Some(5),
        ),
        PoolError::Start(StartError::BackingOff(w)) => (
            503,
            "The MCP server keeps exiting at start; backing off.",
            Some(w.as_secs().max(1)),
        ),
        PoolError::Start(StartError::Spawn(_)) => {
            (500, "The MCP server could not be started.", None)
        }
        PoolError::Init(_) => (
            500,
            "The MCP server did not complete its initialization.",
            None,
        ),
    };
    let code = if status == 503 {
        jsonrpc::SERVER_ERROR
    } else {
        jsonrpc::INTERNAL_ERROR
    };
    let mut r = rpc_error(status, Some(id), code, message, None);
    if let Some(secs) = retry {
        http::set_header(&mut r, "retry-after", &secs.to_string());
    }
    r
}
