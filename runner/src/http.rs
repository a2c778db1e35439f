//! HTTP plumbing shared by `serve` and `catwalk-machines`: body types, capped body reading, JSON answers,
//! bearer checks, and a small server loop with graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, watch};

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !content_type.is_empty() {
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
    }
    r
}

pub fn json(status: u16, value: &Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

pub fn empty(status: u16) -> Response<Body> {
    full(status, "", Bytes::new())
}

pub fn header<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub fn set_header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = value.parse() {
        resp.headers_mut().insert(name, v);
    }
}

/// `Authorization: Bearer <secret>`, compared in constant time.
pub fn bearer_ok(req: &Request<Incoming>, secret: &str) -> bool {
    let given = header(req, "authorization")
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    !secret.is_empty()
        && given.len() == secret.len()
        && bool::from(given.as_bytes().ct_eq(secret.as_bytes()))
}

pub enum BodyError {
    TooLarge,
    Read,
}

/// Reads the whole body, refusing it as soon as it passes `limit` bytes.
pub async fn read_capped(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

/// An SSE response body fed by `rx`, with a comment every `keepalive` while idle so
/// proxies do not cut long-running calls. Polled in place (no task, no second channel):
/// each hop would add latency to every call.
pub fn sse_body(rx: mpsc::UnboundedReceiver<Bytes>, keepalive: Duration) -> Body {
    let start = tokio::time::Instant::now() + keepalive;
    let tick = tokio::time::interval_at(start, keepalive);
    let stream = futures_util::stream::unfold((rx, tick), |(mut rx, mut tick)| async move {
        let next = tokio::select! {
            biased;
            msg = rx.recv() => {
                tick.reset();
                msg
            }
            _ = tick.tick() => Some(Bytes::from(mcp_wire::sse::comment("keep-alive"))),
        };
        next.map(|b| (b, (rx, tick)))
    });
    BodyExt::boxed(StreamBody::new(
        stream.map(|b| Ok::<_, std::io::Error>(Frame::data(b))),
    ))
}

pub fn sse_response(rx: mpsc::UnboundedReceiver<Bytes>, keepalive: Duration) -> Response<Body> {
    let mut r = Response::new(sse_body(rx, keepalive));
    set_header(&mut r, "content-type", "text/event-stream");
    set_header(&mut r, "cache-control", "no-cache, no-transform");
    set_header(&mut r, "x-accel-buffering", "no");
    r
}

/// Serves `handler` on `listener` until `shutdown` flips to true; then stops accepting
/// and gives open connections up to `grace` to finish.
pub async fn serve<H, Fut>(
    listener: tokio::net::TcpListener,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let (conn_tx, mut conn_rx) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { break },
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let h = handler.clone();
                let guard = conn_tx.clone();
                let mut stop = shutdown.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    let svc = hyper::service::service_fn(move |req| {
                        let h = h.clone();
                        async move { Ok::<_, Infallible>(h(req, peer).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    let stopping = tokio::select! {
                        _ = conn.as_mut() => false,
                        r = stop.wait_for(|s| *s) => r.is_ok(),
                    };
                    if stopping {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                });
            }
        }
    }
    drop(conn_tx);
    let _ = tokio::time::timeout(grace, conn_rx.recv()).await;
}

/// A stop signal for a graceful shutdown: turns `true` on SIGTERM (Fly stopping the
/// machine) or SIGINT. Both binaries (`catwalk-runner`, `catwalk-machines`) stop this way.
/// Must be called inside the Tokio runtime.
pub fn stop_on_signals() -> watch::Receiver<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        let _ = stop_tx.send(true);
    });
    stop_rx
}
