//! A minimal raw Streamable HTTP client for wire-level assertions.

use std::time::Duration;

use futures_util::StreamExt;
use mcp_wire::sse::{Event, Parser};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub fn post(url: &str, secret: &str, session: Option<&str>, body: &Value) -> RequestBuilder {
    let mut r = client()
        .post(url)
        .bearer_auth(secret)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(s) = session {
        r = r
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-11-25");
    }
    r
}

pub fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

/// Initializes a session and sends `notifications/initialized`; returns the session id.
pub async fn open_session(url: &str, secret: &str) -> String {
    let resp = post(url, secret, None, &init_body()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let events = read_all(resp).await;
    assert!(
        events
            .iter()
            .any(|e| e.data.contains("\"protocolVersion\"")),
        "{events:?}"
    );
    let ack = post(
        url,
        secret,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(ack.status(), 202);
    sid
}

/// Reads SSE events from a response incrementally.
pub struct Events {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: Parser,
    ready: std::collections::VecDeque<Event>,
}

impl Events {
    pub fn new(resp: Response) -> Self {
        Self {
            stream: resp.bytes_stream().boxed(),
            parser: Parser::default(),
            ready: Default::default(),
        }
    }

    /// The next event with data (priming events are skipped), or None at the end.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            while let Some(ev) = self.ready.pop_front() {
                if !ev.data.is_empty() {
                    return Some(ev);
                }
            }
            let chunk = self.stream.next().await?.ok()?;
            let text = String::from_utf8_lossy(&chunk).into_owned();
            self.ready.extend(self.parser.push(&text));
        }
    }
}

pub async fn read_all(resp: Response) -> Vec<Event> {
    let mut ev = Events::new(resp);
    let mut out = Vec::new();
    while let Some(e) = ev.next().await {
        out.push(e);
    }
    out
}

pub fn json_of(e: &Event) -> Value {
    serde_json::from_str(&e.data).unwrap_or(Value::Null)
}

/// `GET {base}/health` (open): its status code and body.
pub async fn health(base: &str) -> (u16, Value) {
    let resp = client().get(format!("{base}/health")).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls `/health` until `done` holds for its body; panics with the last body after `within`.
pub async fn wait_health(base: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (_, body) = health(base).await;
        if done(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/health never got there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `/health` says `status` (`ready` or `failed`) and returns its body.
pub async fn wait_status(base: &str, status: &str) -> Value {
    wait_health(base, Duration::from_secs(60), |h| h["status"] == status).await
}

/// `GET {base}/logs{query}` with the secret: the whole JSON answer.
pub async fn logs_json(base: &str, secret: &str, query: &str) -> Value {
    let resp = client()
        .get(format!("{base}/logs{query}"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The text of the newest `/logs` lines (all the ring keeps).
pub async fn log_lines(base: &str, secret: &str) -> Vec<String> {
    logs_json(base, secret, "?lines=2000").await["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["line"].as_str().map(str::to_string))
        .collect()
}
