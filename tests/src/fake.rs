//! Programmable loopback HTTP servers that stand in for upstreams the tests cannot reach
//! (Fly's API, GitHub, registries, the LLM). Each fake runs on its own thread and runtime,
//! so it outlives any single test's runtime, and:
//! - answers by route (`METHOD /path`, or a prefix ending in `*`; the method `*` matches any
//!   method) with a default [`Reply`], after first consuming any one-shot replies queued for
//!   that route (script a 500 then a 200, a 429, a timeout, a malformed body, a dropped
//!   connection);
//! - can stand in front of a real service: [`Reply::Forward`] relays the request (method,
//!   path, query, headers, body) to another base URL and relays its answer back (buffered:
//!   no SSE streaming; 502 with a JSON body if the upstream cannot be reached), and
//!   [`Reply::ForwardThen`] forwards it the same way but throws the answer away and gives
//!   another reply instead — the request took effect upstream but its response was lost
//!   (a 500, a hang, a dropped connection, a malformed body);
//! - records every request (method, path, query, headers, body) for assertions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, headers, body.
    Http(u16, Vec<(String, String)>, Bytes),
    /// Wait, then give the inner reply (a slow upstream; longer than the caller's timeout
    /// makes a timeout).
    Delay(Duration, Box<Reply>),
    /// Never answer; the connection stays open until the client gives up.
    Hang,
    /// Close the connection without any response.
    Drop,
    /// Send the request on to this base URL (e.g. `http://127.0.0.1:4280`; the request's
    /// path and query are appended) with the same method, headers (minus `Host`,
    /// `Content-Length` and hop-by-hop ones) and body, and relay the upstream's status,
    /// headers and body. An unreachable upstream gives a 502 with a JSON body.
    Forward(String),
    /// Forward like [`Reply::Forward`] so the request takes effect upstream, ignore the
    /// upstream's answer (or failure), then give the inner reply: a lost response.
    ForwardThen(String, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Self {
        Self::Http(
            status,
            vec![("content-type".into(), "application/json".into())],
            Bytes::from(body.to_string()),
        )
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self::Http(
            status,
            vec![("content-type".into(), "text/plain".into())],
            Bytes::from(body.to_string()),
        )
    }

    pub fn status(status: u16) -> Self {
        Self::Http(status, Vec::new(), Bytes::new())
    }

    /// Declares JSON but sends something that is not.
    pub fn malformed_json(status: u16) -> Self {
        Self::Http(
            status,
            vec![("content-type".into(), "application/json".into())],
            Bytes::from_static(b"{\"id\": \"1857156b526dd8\", \"state\": "),
        )
    }

    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Self::Http(s, mut h, b) => {
                h.push((name.into(), value.into()));
                Self::Http(s, h, b)
            }
            other => other,
        }
    }

    pub fn delayed(self, by: Duration) -> Self {
        Self::Delay(by, Box::new(self))
    }

    /// [`Reply::Forward`] to `base`.
    pub fn forward(base: impl Into<String>) -> Self {
        Self::Forward(base.into())
    }

    /// [`Reply::ForwardThen`]: forward to `base`, then answer with `then` instead.
    pub fn forward_then(base: impl Into<String>, then: Reply) -> Self {
        Self::ForwardThen(base.into(), Box::new(then))
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Default)]
struct State {
    defaults: Vec<(String, String, Reply)>,
    queued: Vec<(String, String, Reply)>,
    requests: Vec<Recorded>,
}

fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// A route's method: `*` matches any method, anything else only itself.
fn method_matches(pattern: &str, method: &str) -> bool {
    pattern == "*" || pattern == method
}

impl State {
    fn reply_for(&mut self, method: &str, path: &str) -> Reply {
        if let Some(i) = self
            .queued
            .iter()
            .position(|(m, p, _)| method_matches(m, method) && matches(p, path))
        {
            return self.queued.remove(i).2;
        }
        self.defaults
            .iter()
            .rev()
            .find(|(m, p, _)| method_matches(m, method) && matches(p, path))
            .map(|(_, _, r)| r.clone())
            .unwrap_or_else(|| {
                Reply::json(
                    404,
                    &serde_json::json!({"error": "no fake route", "path": path}),
                )
            })
    }
}

pub struct FakeServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
                // One client per fake, made on its runtime, for `Reply::Forward*`. Redirects
                // are relayed, not followed; the environment's proxy never applies.
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .connect_timeout(Duration::from_secs(5))
                    .build()
                    .expect("fake forwarding client");
                addr_tx.send(listener.local_addr().expect("addr")).ok();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = shared.clone();
                            let client = client.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| handle(state.clone(), client.clone(), req));
                                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                            });
                        }
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("fake server address");
        Self {
            addr,
            state,
            shutdown: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The default reply for a route (later calls win over earlier ones). `method` may be
    /// `*` for any method; `path` may end in `*` for a prefix.
    pub fn on(&self, method: &str, path: &str, reply: Reply) -> &Self {
        self.lock()
            .defaults
            .push((method.into(), path.into(), reply));
        self
    }

    /// A one-shot reply, used before the route's default; several queue up in order.
    pub fn push(&self, method: &str, path: &str, reply: Reply) -> &Self {
        self.lock().queued.push((method.into(), path.into(), reply));
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Recorded requests matching a route (the same patterns as [`FakeServer::on`]).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| method_matches(method, &r.method) && matches(path, &r.path))
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a forwarded request needs of the incoming one.
struct Forwardable {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// Request headers that must not be forwarded (hop-by-hop, or set by the client itself).
const NOT_FORWARDED: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// Response headers that must not be relayed (hop-by-hop, or recomputed for the relayed body).
const NOT_RELAYED: &[&str] = &[
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers named in `Connection` are hop-by-hop too.
fn strip_hop_by_hop(headers: &mut HeaderMap, fixed: &[&str]) {
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in fixed {
        headers.remove(*name);
    }
}

async fn forward(
    client: &reqwest::Client,
    base: &str,
    req: &Forwardable,
) -> Result<Response<Full<Bytes>>, String> {
    let url = format!("{}{}", base.trim_end_matches('/'), req.path_and_query);
    let mut headers = req.headers.clone();
    strip_hop_by_hop(&mut headers, NOT_FORWARDED);
    let upstream = client
        .request(req.method.clone(), &url)
        .headers(headers)
        .body(req.body.clone())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    strip_hop_by_hop(&mut headers, NOT_RELAYED);
    let body = upstream
        .bytes()
        .await
        .map_err(|e| format!("{url}: reading the body: {e}"))?;
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    Ok(resp)
}

async fn handle(
    state: Arc<Mutex<State>>,
    client: reqwest::Client,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let incoming = Forwardable {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        headers: parts.headers,
        body: body.clone(),
    };
    let mut reply = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query,
            headers,
            body,
        });
        s.reply_for(&method, &path)
    };
    loop {
        match reply {
            Reply::Delay(by, inner) => {
                tokio::time::sleep(by).await;
                reply = *inner;
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                reply = Reply::Drop;
            }
            // An error from the service makes hyper close the connection unanswered.
            Reply::Drop => return Err(std::io::Error::other("fake: dropping connection")),
            Reply::Forward(base) => {
                return Ok(forward(&client, &base, &incoming)
                    .await
                    .unwrap_or_else(|why| {
                        let body = serde_json::json!({
                            "error": "fake: upstream unreachable",
                            "detail": why,
                        });
                        let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
                        *resp.status_mut() = StatusCode::BAD_GATEWAY;
                        resp.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        resp
                    }));
            }
            Reply::ForwardThen(base, inner) => {
                if let Err(why) = forward(&client, &base, &incoming).await {
                    eprintln!("fake: ForwardThen could not reach the upstream: {why}");
                }
                reply = *inner;
            }
            Reply::Http(status, headers, body) => {
                let mut resp = Response::new(Full::new(body));
                *resp.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                for (k, v) in headers {
                    if let (Ok(name), Ok(value)) = (
                        hyper::header::HeaderName::from_bytes(k.as_bytes()),
                        hyper::header::HeaderValue::from_str(&v),
                    ) {
                        resp.headers_mut().append(name, value);
                    }
                }
                return Ok(resp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn queued_failures_come_before_the_default_and_requests_are_recorded() {
        let fake = FakeServer::start();
        fake.on("GET", "/v1/apps/*", Reply::json(200, &json!({"ok": true})));
        fake.push("GET", "/v1/apps/*", Reply::status(503));
        let c = reqwest::Client::new();
        let first = c
            .get(format!("{}/v1/apps/x?y=1", fake.url()))
            .header("authorization", "Bearer t")
            .send()
            .await
            .unwrap();
        let second = c
            .get(format!("{}/v1/apps/x", fake.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (first.status().as_u16(), second.status().as_u16()),
            (503, 200)
        );
        let recorded = fake.requests();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[0].query.as_deref(), Some("y=1"));
        assert_eq!(recorded[0].header("Authorization"), Some("Bearer t"));
        assert_eq!(fake.count("GET", "/v1/apps/*"), 2);
    }

    #[tokio::test]
    async fn delays_make_timeouts_and_drops_make_connection_errors() {
        let fake = FakeServer::start();
        fake.on(
            "GET",
            "/slow",
            Reply::status(200).delayed(Duration::from_secs(5)),
        );
        fake.on("GET", "/drop", Reply::Drop);
        fake.on("GET", "/bad", Reply::malformed_json(200));
        let c = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        assert!(c
            .get(format!("{}/slow", fake.url()))
            .send()
            .await
            .unwrap_err()
            .is_timeout());
        assert!(c.get(format!("{}/drop", fake.url())).send().await.is_err());
        let bad = c.get(format!("{}/bad", fake.url())).send().await.unwrap();
        assert!(bad.json::<Value>().await.is_err());
        let unknown = c.get(format!("{}/nope", fake.url())).send().await.unwrap();
        assert_eq!(unknown.status().as_u16(), 404);
    }

    #[tokio::test]
    async fn forward_relays_the_request_and_the_answer_and_star_matches_any_method() {
        let upstream = FakeServer::start();
        upstream.on(
            "*",
            "/v1/apps/*",
            Reply::json(201, &json!({"made": true})).with_header("x-upstream", "yes"),
        );
        let front = FakeServer::start();
        front.on("*", "/*", Reply::forward(upstream.url()));
        let c = reqwest::Client::new();
        let resp = c
            .put(format!("{}/v1/apps/a/machines?x=1&y=two", front.url()))
            .header("authorization", "Bearer t")
            .header("content-type", "application/json")
            .body(r#"{"name":"m1"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        assert_eq!(
            resp.headers().get("x-upstream").map(|v| v.as_bytes()),
            Some(&b"yes"[..])
        );
        assert_eq!(resp.json::<Value>().await.unwrap(), json!({"made": true}));

        let seen = upstream.requests();
        assert_eq!(seen.len(), 1);
        let r = &seen[0];
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
            ("PUT", "/v1/apps/a/machines", Some("x=1&y=two"))
        );
        assert_eq!(r.json(), json!({"name": "m1"}));
        assert_eq!(r.header("authorization"), Some("Bearer t"));
        assert_eq!(r.header("host"), Some(&upstream.url()["http://".len()..]));
        assert_eq!(front.count("*", "/*"), 1);
        assert_eq!(front.count("PUT", "/v1/apps/*"), 1);
        assert_eq!(front.count("GET", "/v1/apps/*"), 0);

        // An unreachable upstream is a 502 with a JSON body.
        let closed = format!("http://127.0.0.1:{}", crate::free_port());
        front.push("GET", "/gone", Reply::forward(closed));
        let gone = c.get(format!("{}/gone", front.url())).send().await.unwrap();
        assert_eq!(gone.status().as_u16(), 502);
        assert!(gone.json::<Value>().await.unwrap()["error"].is_string());
    }

    #[tokio::test]
    async fn forward_then_takes_effect_upstream_but_answers_with_the_inner_reply() {
        let upstream = FakeServer::start();
        upstream.on(
            "POST",
            "/v1/apps/a/machines",
            Reply::json(200, &json!({"id": "m"})),
        );
        let front = FakeServer::start();
        front.push(
            "POST",
            "/v1/apps/a/machines",
            Reply::forward_then(upstream.url(), Reply::status(500)),
        );
        front.push(
            "POST",
            "/v1/apps/a/machines",
            Reply::forward_then(upstream.url(), Reply::Drop),
        );
        front.on(
            "POST",
            "/v1/apps/a/machines",
            Reply::forward(upstream.url()),
        );
        let c = reqwest::Client::new();
        let url = format!("{}/v1/apps/a/machines", front.url());
        let lost = c.post(&url).body("first").send().await.unwrap();
        assert_eq!(lost.status().as_u16(), 500);
        assert!(c.post(&url).body("second").send().await.is_err());
        let ok = c.post(&url).body("third").send().await.unwrap();
        assert_eq!(ok.json::<Value>().await.unwrap(), json!({"id": "m"}));
        let bodies: Vec<String> = upstream
            .requests()
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        assert_eq!(bodies, ["first", "second", "third"]);
    }
}
