//! What the load tools share: one MCP Streamable HTTP session of the handshake era (its
//! answers read as JSON or SSE), percentiles, and a process tree's memory from /proc.

use std::time::Instant;

use futures_util::StreamExt;
use mcp_wire::sse::Parser;
use reqwest::Client;
use serde_json::{json, Value};

pub const VERSION: &str = "2025-06-18";

/// Why a request got no result: the server's HTTP refusal, or no answer at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// An HTTP status other than 2xx (404 on a session: the server forgot it), with what
    /// the body said (a JSON-RPC error's message, else its first characters).
    Status(u16, String),
    /// The connection failed, timed out, or the stream ended without the response.
    NoAnswer(String),
}

/// An error with every cause under it (`error sending request: … connection closed`).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Status(s, said) if said.is_empty() => write!(f, "HTTP {s}"),
            CallError::Status(s, said) => write!(f, "HTTP {s}: {said}"),
            CallError::NoAnswer(why) => write!(f, "no answer: {why}"),
        }
    }
}

pub struct Session {
    client: Client,
    url: String,
    headers: Vec<(String, String)>,
    id: Option<String>,
    next: u64,
}

impl Session {
    pub fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        if let Some(id) = &self.id {
            r = r
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", VERSION);
        }
        r
    }

    /// Calls a tool that reports progress and returns the ms to the first progress event
    /// (then reads the stream to its end, so the session is free for the next call).
    pub async fn first_event(&mut self) -> Result<f64, String> {
        self.next += 1;
        let id = self.next;
        let t = Instant::now();
        let resp = self
            .request(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "trigger-long-running-operation", "arguments": {"duration": 0.2, "steps": 20},
                "_meta": {"progressToken": format!("p{id}")}}}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let mut parser = Parser::default();
        let mut stream = resp.bytes_stream();
        let mut first = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            for ev in parser.push(&String::from_utf8_lossy(&chunk)) {
                let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
                    continue;
                };
                if first.is_none() && v["method"] == "notifications/progress" {
                    first = Some(t.elapsed().as_secs_f64() * 1000.0);
                }
                if v.get("id") == Some(&json!(id)) {
                    return first.ok_or_else(|| "no progress before the result".to_string());
                }
            }
        }
        Err("stream ended without a response".into())
    }

    /// Sends one request and reads until its response arrives (JSON or SSE).
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        self.next += 1;
        let id = self.next;
        let resp = self
            .request(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .send()
            .await
            .map_err(|e| CallError::NoAnswer(chain(&e)))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            let said = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.chars().take(80).collect());
            return Err(CallError::Status(status, said));
        }
        if let Some(sid) = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.id = Some(sid.to_string());
        }
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if !is_sse {
            return resp
                .json()
                .await
                .map_err(|e| CallError::NoAnswer(chain(&e)));
        }
        let mut parser = Parser::default();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| CallError::NoAnswer(chain(&e)))?;
            for ev in parser.push(&String::from_utf8_lossy(&chunk)) {
                if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                    if v.get("id") == Some(&json!(id)) {
                        return Ok(v);
                    }
                }
            }
        }
        Err(CallError::NoAnswer(format!(
            "{method}: the stream ended without its response"
        )))
    }

    pub async fn open(
        client: Client,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Session, String> {
        let mut s = Session {
            client,
            url: url.to_string(),
            headers: headers.to_vec(),
            id: None,
            next: 0,
        };
        s.call("initialize", json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "mcp-load", "version": "1"}}))
            .await
            .map_err(|e| format!("initialize: {e}"))?;
        let ack = s
            .request(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !ack.status().is_success() {
            return Err(format!("initialized: HTTP {}", ack.status()));
        }
        Ok(s)
    }

    pub async fn close(&self) {
        if let Some(id) = &self.id {
            let mut r = self.client.delete(&self.url).header("mcp-session-id", id);
            for (k, v) in &self.headers {
                r = r.header(k, v);
            }
            let _ = r.send().await;
        }
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Resident memory (KiB) of `pid` and all its descendants, from /proc.
pub fn tree_rss_kib(pid: u32) -> u64 {
    let mut parents: Vec<(u32, u32, u64)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for p in entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
                continue;
            };
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            parents.push((
                p,
                field("PPid:").unwrap_or(0) as u32,
                field("VmRSS:").unwrap_or(0),
            ));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let cur = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp, _)| *pp == cur)
                .map(|(p, _, _)| *p),
        );
        i += 1;
    }
    parents
        .iter()
        .filter(|(p, _, _)| tree.contains(p))
        .map(|(_, _, rss)| rss)
        .sum()
}
