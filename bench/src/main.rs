//! `mcp-load`: drives an MCP Streamable HTTP endpoint with `tools/call echo` from many
//! sessions at once and prints latency percentiles, throughput, the time to open N
//! sessions, and (given the server's pid) the memory of its process tree per session.
//!
//! usage: mcp-load --url URL [--header NAME:VALUE]… [--concurrency 1,16,64] [--seconds 5]
//!                 [--warmup 1] [--open 64] [--pid PID] [--label NAME] [--first-event]
//! `--first-event` adds, per concurrency level, the time from sending a tools/call of
//! server-everything's `trigger-long-running-operation` to its first SSE progress event.
//! Prints one JSON object per line; `bench/run.sh` runs it against each bridge.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mcp_wire::sse::Parser;
use reqwest::Client;
use serde_json::{json, Value};

const VERSION: &str = "2025-06-18";

struct Args {
    url: String,
    headers: Vec<(String, String)>,
    concurrency: Vec<usize>,
    seconds: f64,
    warmup: f64,
    open: usize,
    pid: Option<u32>,
    label: String,
    first_event: bool,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        headers: vec![],
        concurrency: vec![1, 16, 64],
        seconds: 5.0,
        warmup: 1.0,
        open: 64,
        pid: None,
        label: "target".into(),
        first_event: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => a.url = v,
            "--header" => {
                if let Some((k, val)) = v.split_once(':') {
                    a.headers.push((k.trim().into(), val.trim().into()));
                }
            }
            "--concurrency" => {
                a.concurrency = v.split(',').filter_map(|c| c.parse().ok()).collect()
            }
            "--seconds" => a.seconds = v.parse().unwrap_or(5.0),
            "--warmup" => a.warmup = v.parse().unwrap_or(1.0),
            "--open" => a.open = v.parse().unwrap_or(64),
            "--pid" => a.pid = v.parse().ok(),
            "--label" => a.label = v,
            "--first-event" => {
                a.first_event = v == "on" || v == "true" || v == "1";
            }
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(2);
            }
        }
    }
    if a.url.is_empty() {
        eprintln!("--url is required");
        std::process::exit(2);
    }
    a
}

struct Session {
    client: Client,
    url: String,
    headers: Vec<(String, String)>,
    id: Option<String>,
    next: u64,
}

impl Session {
    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
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
    async fn first_event(&mut self) -> Result<f64, String> {
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
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next += 1;
        let id = self.next;
        let resp = self
            .request(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{method}: HTTP {}", resp.status()));
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
            return resp.json().await.map_err(|e| e.to_string());
        }
        let mut parser = Parser::default();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            for ev in parser.push(&String::from_utf8_lossy(&chunk)) {
                if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                    if v.get("id") == Some(&json!(id)) {
                        return Ok(v);
                    }
                }
            }
        }
        Err(format!("{method}: stream ended without a response"))
    }

    async fn open(
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
            .await?;
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

    async fn close(&self) {
        if let Some(id) = &self.id {
            let mut r = self.client.delete(&self.url).header("mcp-session-id", id);
            for (k, v) in &self.headers {
                r = r.header(k, v);
            }
            let _ = r.send().await;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Resident memory (KiB) of `pid` and all its descendants, from /proc.
fn tree_rss_kib(pid: u32) -> u64 {
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

async fn open_many(client: &Client, a: &Args, n: usize) -> (Vec<Session>, Duration, usize) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (c, url, h) = (client.clone(), a.url.clone(), a.headers.clone());
            tokio::spawn(async move { Session::open(c, &url, &h).await })
        })
        .collect();
    let mut sessions = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => sessions.push(s),
            _ => failed += 1,
        }
    }
    (sessions, start.elapsed(), failed)
}

#[tokio::main]
async fn main() {
    let a = args();
    let client = Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let base_kib = a.pid.map(tree_rss_kib);

    // Session open time and memory per session.
    let (sessions, took, failed) = open_many(&client, &a, a.open).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded_kib = a.pid.map(tree_rss_kib);
    let per_session_mib = match (base_kib, loaded_kib) {
        (Some(b), Some(l)) if !sessions.is_empty() => {
            Some((l.saturating_sub(b)) as f64 / 1024.0 / sessions.len() as f64)
        }
        _ => None,
    };
    println!(
        "{}",
        json!({"label": a.label, "phase": "open", "sessions": sessions.len(), "failed": failed, "ms": took.as_secs_f64() * 1000.0,
               "rss_base_mib": base_kib.map(|k| k as f64 / 1024.0), "rss_loaded_mib": loaded_kib.map(|k| k as f64 / 1024.0),
               "mib_per_session": per_session_mib})
    );
    for s in &sessions {
        s.close().await;
    }
    drop(sessions);
    tokio::time::sleep(Duration::from_millis(500)).await;

    for &c in &a.concurrency {
        let (sessions, _, failed) = open_many(&client, &a, c).await;
        if failed > 0 {
            println!(
                "{}",
                json!({"label": a.label, "phase": "load", "concurrency": c, "error": format!("{failed} sessions failed to open")})
            );
            continue;
        }
        let warm_until = Instant::now() + Duration::from_secs_f64(a.warmup);
        let end = warm_until + Duration::from_secs_f64(a.seconds);
        let workers: Vec<_> = sessions
            .into_iter()
            .map(|mut s| {
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0usize;
                    while Instant::now() < end {
                        let t = Instant::now();
                        let ok = s
                            .call(
                                "tools/call",
                                json!({"name": "echo", "arguments": {"message": "ping"}}),
                            )
                            .await
                            .is_ok();
                        if t >= warm_until {
                            if ok {
                                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                            } else {
                                errors += 1;
                            }
                        }
                    }
                    s.close().await;
                    (lat, errors)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for w in workers {
            if let Ok((l, e)) = w.await {
                all.extend(l);
                errors += e;
            }
        }
        all.sort_by(|x, y| x.total_cmp(y));
        println!(
            "{}",
            json!({"label": a.label, "phase": "load", "concurrency": c, "calls": all.len(), "errors": errors,
                   "calls_per_s": all.len() as f64 / a.seconds,
                   "p50_ms": percentile(&all, 50.0), "p99_ms": percentile(&all, 99.0)})
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        if a.first_event {
            first_event_phase(&client, &a, c).await;
        }
    }
}

/// `c` sessions each calling the progress tool for `a.seconds`; prints first-event p50/p99.
async fn first_event_phase(client: &Client, a: &Args, c: usize) {
    let (sessions, _, failed) = open_many(client, a, c).await;
    if failed > 0 {
        println!(
            "{}",
            json!({"label": a.label, "phase": "first_event", "concurrency": c, "error": format!("{failed} sessions failed to open")})
        );
        return;
    }
    let end = Instant::now() + Duration::from_secs_f64(a.seconds);
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut firsts = Vec::new();
                let mut errors = 0usize;
                while Instant::now() < end {
                    match s.first_event().await {
                        Ok(ms) => firsts.push(ms),
                        Err(_) => errors += 1,
                    }
                }
                s.close().await;
                (firsts, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for w in workers {
        if let Ok((f, e)) = w.await {
            all.extend(f);
            errors += e;
        }
    }
    all.sort_by(|x, y| x.total_cmp(y));
    println!(
        "{}",
        json!({"label": a.label, "phase": "first_event", "concurrency": c, "calls": all.len(), "errors": errors,
               "p50_ms": percentile(&all, 50.0), "p99_ms": percentile(&all, 99.0)})
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
}
