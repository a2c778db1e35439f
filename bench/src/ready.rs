//! `ready-bench`: what readiness and the warm spare buy, measured with real processes.
//!
//!   make bench-ready
//!   # = cargo build --release -p catwalk-runner -p mcp-bench && target/release/ready-bench
//!   # flags: [--sessions 20] [--gap-ms 1000] [--wakes 5] [--skip-wake]
//!
//! 1. First `initialize` of a new session through a release runner in front of npm
//!    `server-everything` over stdio (`node …/dist/index.js stdio`): `CATWALK_SPARES=0`
//!    (before: the session's child is started on demand, as the runner did until now) and
//!    `CATWALK_SPARES=1` (after: a warm spare takes the session), `--sessions` sessions
//!    each, one every `--gap-ms` (a taken spare is replaced within about 0.3 s here), each
//!    timed from sending `initialize` to its result and then deleted. p50 / p99 side by
//!    side.
//! 2. Wake → first answer: a runner process started fresh (cold process, warm package
//!    cache: one untimed run first) until the answer to the first `tools/call`, the
//!    client's `initialize` sent as soon as the port accepts (the runner holds it until
//!    ready). For npm `server-everything` through `npx` (pinned version) and PyPI
//!    `mcp-server-time` through `uvx`, from a scratch directory so `npx` uses its own cache
//!    like a machine does. Also when `/health` first said `ready`.
//!
//! The runner binary is the one next to this one (`target/release/catwalk-runner`).
//! Prints a table; numbers depend on the machine (2 shared cores here).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mcp_wire::sse::Parser;
use reqwest::Client;
use serde_json::{json, Value};

const EVERYTHING: &str = "@modelcontextprotocol/server-everything";
const EVERYTHING_VERSION: &str = "2026.8.31";

struct Args {
    sessions: usize,
    gap: Duration,
    wakes: usize,
    skip_wake: bool,
}

fn args() -> Args {
    let mut a = Args {
        sessions: 20,
        gap: Duration::from_millis(1000),
        wakes: 5,
        skip_wake: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse::<u64>().ok());
        match flag.as_str() {
            "--sessions" => a.sessions = num().unwrap_or(20) as usize,
            "--gap-ms" => a.gap = Duration::from_millis(num().unwrap_or(1000)),
            "--wakes" => a.wakes = num().unwrap_or(5) as usize,
            "--skip-wake" => a.skip_wake = true,
            _ => {
                eprintln!(
                    "usage: ready-bench [--sessions N] [--gap-ms MS] [--wakes N] [--skip-wake]"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn runner_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("catwalk-runner")))
        .unwrap_or_else(|| PathBuf::from("target/release/catwalk-runner"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_080)
}

fn random_secret() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench-secret-{nanos:x}-{}", std::process::id())
}

/// A `catwalk-runner serve` process; SIGTERM (it ends its children itself) on drop.
struct Runner {
    child: tokio::process::Child,
    base: String,
    secret: String,
    started: Instant,
}

impl Runner {
    fn start(launch: &Value, env: &[(&str, &str)], cwd: &std::path::Path) -> Runner {
        let port = free_port();
        let secret = random_secret();
        let started = Instant::now();
        let child = tokio::process::Command::new(runner_bin())
            .arg("serve")
            .current_dir(cwd)
            .env("CATWALK_LAUNCH", launch.to_string())
            .env("CATWALK_UPSTREAM_SECRET", &secret)
            .env("CATWALK_BIND", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("CATWALK_MAX_SESSIONS", "8")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", runner_bin().display()));
        Runner {
            child,
            base: format!("http://127.0.0.1:{port}"),
            secret,
            started,
        }
    }

    async fn listening(&self) {
        let addr = self.base.trim_start_matches("http://").to_string();
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn health(&self, client: &Client) -> Value {
        match client.get(format!("{}/health", self.base)).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// Waits until `/health` satisfies `done`.
    async fn until(&self, client: &Client, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let h = self.health(client).await;
            if done(&h) || Instant::now() > deadline {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    fn post(
        &self,
        client: &Client,
        session: Option<&str>,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        let mut r = client
            .post(format!("{}/mcp", self.base))
            .bearer_auth(&self.secret)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = session {
            r = r
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-11-25");
        }
        r
    }

    /// Sends one request; returns the session id header (if any) and the response to `id`.
    async fn call(
        &self,
        client: &Client,
        session: Option<&str>,
        body: &Value,
    ) -> Result<(Option<String>, Value), String> {
        let resp = self
            .post(client, session, body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let sid = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut parser = Parser::default();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            for ev in parser.push(&String::from_utf8_lossy(&chunk)) {
                if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                    if v.get("id") == body.get("id") {
                        return Ok((sid, v));
                    }
                }
            }
        }
        Err("the stream ended without an answer".into())
    }

    async fn delete(&self, client: &Client, session: &str) {
        let _ = client
            .delete(format!("{}/mcp", self.base))
            .bearer_auth(&self.secret)
            .header("mcp-session-id", session)
            .send()
            .await;
    }
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "ready-bench", "version": "1"}}})
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct FirstInit {
    ms: Vec<f64>,
    spare_ready: usize,
    errors: usize,
}

/// N sessions, one every `gap`: ms from sending `initialize` to its result.
async fn first_initialize(client: &Client, spares: &str, a: &Args) -> FirstInit {
    let se = repo_root().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let launch = json!({"argv": ["node", se.display().to_string(), "stdio"]});
    let r = Runner::start(&launch, &[("CATWALK_SPARES", spares)], &repo_root());
    let want: u64 = spares.parse().unwrap_or(0);
    r.until(client, |h| {
        h["status"] == "ready" && h["spares"].as_u64() >= Some(want)
    })
    .await;
    let mut out = FirstInit {
        ms: Vec::new(),
        spare_ready: 0,
        errors: 0,
    };
    for _ in 0..a.sessions {
        tokio::time::sleep(a.gap).await;
        if r.health(client).await["spares"].as_u64() > Some(0) {
            out.spare_ready += 1;
        }
        let t = Instant::now();
        match r.call(client, None, &initialize()).await {
            Ok((Some(sid), v)) if v["result"]["protocolVersion"].is_string() => {
                out.ms.push(t.elapsed().as_secs_f64() * 1000.0);
                r.delete(client, &sid).await;
            }
            _ => out.errors += 1,
        }
    }
    r.stop().await;
    out.ms.sort_by(|x, y| x.total_cmp(y));
    out
}

struct Wake {
    ready_ms: Vec<f64>,
    answer_ms: Vec<f64>,
    errors: Vec<String>,
}

/// A fresh runner until the first `tools/call` answer; `/health` polled alongside.
async fn wake_once(
    client: &Client,
    launch: &Value,
    call: &Value,
    cwd: &std::path::Path,
) -> Result<(f64, f64), String> {
    let r = Runner::start(launch, &[], cwd);
    let ready_at = {
        let (c, base) = (client.clone(), r.base.clone());
        let t0 = r.started;
        tokio::spawn(async move {
            loop {
                if let Ok(resp) = c.get(format!("{base}/health")).send().await {
                    if resp.status() == 200 {
                        return t0.elapsed().as_secs_f64() * 1000.0;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    r.listening().await;
    let outcome = async {
        let (sid, init) = r.call(client, None, &initialize()).await?;
        let sid = sid.ok_or("no session id")?;
        if init.get("error").is_some() {
            return Err(format!("initialize: {init}"));
        }
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        r.post(client, Some(&sid), &ack)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let (_, answer) = r.call(client, Some(&sid), call).await?;
        if answer.get("result").is_none() {
            return Err(format!("tools/call: {answer}"));
        }
        Ok(r.started.elapsed().as_secs_f64() * 1000.0)
    }
    .await;
    let ready = tokio::time::timeout(Duration::from_secs(5), ready_at).await;
    r.stop().await;
    let answered = outcome?;
    match ready {
        Ok(Ok(ms)) => Ok((ms, answered)),
        _ => Err("never ready".into()),
    }
}

async fn wake(client: &Client, launch: Value, call: Value, runs: usize) -> Wake {
    let scratch = std::env::temp_dir().join(format!("ready-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&scratch);
    let mut out = Wake {
        ready_ms: Vec::new(),
        answer_ms: Vec::new(),
        errors: Vec::new(),
    };
    // Warm the package cache (a first install downloads); not timed.
    if let Err(e) = wake_once(client, &launch, &call, &scratch).await {
        out.errors.push(format!("warm-up: {e}"));
        return out;
    }
    for _ in 0..runs {
        match wake_once(client, &launch, &call, &scratch).await {
            Ok((ready, answer)) => {
                out.ready_ms.push(ready);
                out.answer_ms.push(answer);
            }
            Err(e) => out.errors.push(e),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    out.ready_ms.sort_by(|x, y| x.total_cmp(y));
    out.answer_ms.sort_by(|x, y| x.total_cmp(y));
    out
}

#[tokio::main]
async fn main() {
    let a = args();
    let client = Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("http client");

    let before = first_initialize(&client, "0", &a).await;
    let after = first_initialize(&client, "1", &a).await;
    println!(
        "First initialize of a new session (server-everything over stdio, {} sessions, one every {} ms)",
        a.sessions,
        a.gap.as_millis()
    );
    println!(
        "{:34} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "", "p50 ms", "p99 ms", "min ms", "max ms", "errors"
    );
    for (label, r) in [
        ("before: CATWALK_SPARES=0", &before),
        ("after:  CATWALK_SPARES=1", &after),
    ] {
        println!(
            "{:34} {:9.1} {:9.1} {:9.1} {:9.1} {:7}",
            label,
            percentile(&r.ms, 50.0),
            percentile(&r.ms, 99.0),
            r.ms.first().copied().unwrap_or(f64::NAN),
            r.ms.last().copied().unwrap_or(f64::NAN),
            r.errors
        );
    }
    println!(
        "(after: a proven spare was waiting for {}/{} sessions)",
        after.spare_ready, a.sessions
    );
    if a.skip_wake {
        return;
    }

    println!();
    println!(
        "Wake -> first answer: fresh runner process, warm package cache, {} runs each",
        a.wakes
    );
    println!(
        "{:34} {:>12} {:>12} {:>12} {:>12}",
        "", "ready p50", "answer p50", "answer min", "answer max"
    );
    let npm = wake(
        &client,
        json!({"runtime": "npm", "package": EVERYTHING, "version": EVERYTHING_VERSION, "args": ["stdio"]}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "hi"}}}),
        a.wakes,
    )
    .await;
    let pypi = wake(
        &client,
        json!({"runtime": "python", "package": "mcp-server-time"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}}),
        a.wakes,
    )
    .await;
    for (label, w) in [
        ("npm server-everything (npx)", &npm),
        ("PyPI mcp-server-time (uvx)", &pypi),
    ] {
        println!(
            "{:34} {:>9.0} ms {:>9.0} ms {:>9.0} ms {:>9.0} ms",
            label,
            percentile(&w.ready_ms, 50.0),
            percentile(&w.answer_ms, 50.0),
            w.answer_ms.first().copied().unwrap_or(f64::NAN),
            w.answer_ms.last().copied().unwrap_or(f64::NAN),
        );
        for e in &w.errors {
            println!("    error: {e}");
        }
    }
}
