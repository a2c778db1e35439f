//! Programmable loopback HTTP servers that stand in for upstreams the tests cannot reach
//! (Fly's API, GitHub, registries, the LLM). Each fake runs on its own thread and runtime,
//! so it outlives any single test's runtime, and:
//! - answers by route (`METHOD /path`, or a prefix ending in `*`) with a default [`Reply`],
//!   after first consuming any one-shot replies queued for that route (script a 500 then a
//!   200, a 429, a timeout, a malformed body, a dropped connection);
//! - records every request (method, path, query, headers, body) for assertions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
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

impl State {
    fn reply_for(&mut self, method: &str, path: &str) -> Reply {
        if let Some(i) = self
            .queued
            .iter()
            .position(|(m, p, _)| m == method && matches(p, path))
        {
            return self.queued.remove(i).2;
        }
        self.defaults
            .iter()
            .rev()
            .find(|(m, p, _)| m == method && matches(p, path))
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
                addr_tx.send(listener.local_addr().expect("addr")).ok();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = shared.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| handle(state.clone(), req));
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

    /// The default reply for a route (later calls win over earlier ones).
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

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method && matches(path, &r.path))
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

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
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
}
