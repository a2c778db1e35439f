//! The machine's answer as the client receives it: whitelisted headers copied, our session
//! id instead of the runner's, no proxy buffering for streams, and the body handed on as
//! the runtime's own stream (never read here).

use mcp_wire::version::HEADER_SESSION_ID;
use worker::{Headers, Response, ResponseBody};

use crate::gateway::failure::Failure;
use crate::gateway::request as rules;

pub fn relay(upstream: worker::Response, session: Option<&str>) -> Result<Response, Failure> {
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
            .set(HEADER_SESSION_ID, s)
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
