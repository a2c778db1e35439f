//! A soak under faults: N MCP sessions call `echo` through the gateway in three phases —
//! before, during and after a chaos loop that restarts the machine through the API, kills
//! the sessions' MCP server processes, stops the machine behind the Worker's back (the next
//! request wakes it), and makes the Machines API answer 503 for a while (a restart asked
//! meanwhile must fail in words, not break the calls). Every call is accounted for: an
//! answer, a refusal (and why), or lost (no answer at all, which must never happen).
//! `make soak` prints the report of two rounds and the memory between them
//! (`src/bin/soak.rs`); `tests/tests/api/soak.rs` runs a short round in `make test`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mcp_bench::{percentile, tree_rss_kib, CallError, Session};
use reqwest::Method;
use serde_json::{json, Value};

use crate::fake::{FakeServer, Reply};
use crate::runner::{children, publish_everything, Machines, EVERYTHING_PACKAGE};
use crate::stack::{Stack, StackOptions};

/// How long each phase lasts and how many sessions call at once.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub sessions: usize,
    pub before: Duration,
    pub during: Duration,
    pub after: Duration,
}

/// The stack, its machines service, the Machines API's fault switch and one running
/// deployment of server-everything.
pub struct World {
    pub stack: Stack,
    pub machines: Machines,
    /// Stands between the Worker and the Machines API: forwards, or answers 503.
    fly_api: FakeServer,
    _npm: FakeServer,
    _dir: tempfile::TempDir,
    pub session_jwt: String,
    pub id: String,
    pub url: String,
    pub token: String,
}

impl World {
    pub async fn start() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let machines = Machines::start(&dir.path().join("machines"), 3600);
        let fly_api = FakeServer::start();
        fly_api.on("*", "/*", Reply::forward(machines.base_url.clone()));
        let npm = FakeServer::start();
        publish_everything(&npm);
        let mut vars = machines.fly_vars();
        vars.retain(|(k, _)| k != "FLY_API_BASE");
        vars.extend([
            ("FLY_API_BASE".to_string(), fly_api.url()),
            (
                "NPM_REGISTRY_BASE".to_string(),
                format!("{}/npm", npm.url()),
            ),
            ("FLY_START_TIMEOUT_SECS".to_string(), "60".to_string()),
            // The soak's own calls must not trip the per-deployment limit.
            ("MCP_RATE_LIMIT".to_string(), "1000000".to_string()),
        ]);
        let stack = tokio::task::spawn_blocking(move || {
            Stack::start(StackOptions {
                vars,
                ..Default::default()
            })
        })
        .await
        .expect("stack");
        let session_jwt = stack.token("soak", Some("soak@example.com"));
        let body = json!({"name": "soak", "package": format!("npm:{EVERYTHING_PACKAGE}"),
            "credentials": {"CANARY_TOKEN": "soak-canary"}});
        let (status, created, text) = stack
            .call(Method::POST, "/api/deployments", &session_jwt, Some(body))
            .await;
        assert_eq!(status, 201, "{text}");
        let id = created["id"].as_str().expect("id").to_string();
        let token = created["access_token"].as_str().expect("token").to_string();
        let d = stack
            .settled(&session_jwt, &id, Duration::from_secs(120))
            .await;
        assert_eq!(d["status"], "running", "{d}");
        let url = stack.url(&format!("/api/mcp/{id}"));
        World {
            stack,
            machines,
            fly_api,
            _npm: npm,
            _dir: dir,
            session_jwt,
            id,
            url,
            token,
        }
    }

    async fn machine_id(&self) -> String {
        let d = self
            .stack
            .get_json(&format!("/api/deployments/{}", self.id), &self.session_jwt)
            .await;
        d["machine"]["id"].as_str().unwrap_or_default().to_string()
    }

    /// The runner's pid and its MCP server processes (one per session, and a warm spare).
    fn runner(&self) -> Option<(u32, Vec<u32>)> {
        let service = self.machines.service_pid()?;
        let mut tree = vec![service];
        let mut i = 0;
        while i < tree.len() {
            tree.extend(children(tree[i]));
            i += 1;
        }
        let runner = tree.into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "catwalk-runner")
        })?;
        Some((runner, children(runner)))
    }

    /// (machines service alone, runner with its servers) resident memory, KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let service = self.machines.service_pid().map_or(0, |p| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0)
        });
        let runner = self.runner().map_or(0, |(pid, _)| tree_rss_kib(pid));
        (service, runner)
    }

    /// `POST /api/deployments/{id}/restart` as the owner: (status, body).
    async fn restart(&self) -> (u16, Value) {
        let path = format!("/api/deployments/{}/restart", self.id);
        let (s, b, _) = self
            .stack
            .call(Method::POST, &path, &self.session_jwt, None)
            .await;
        (s, b)
    }

    /// One fault; what it did, in words.
    async fn fault(&self, fault: Fault, hold: Duration) -> String {
        match fault {
            Fault::Restart => {
                let (s, b) = self.restart().await;
                format!("restart through the API: {s} {}", b["status"])
            }
            Fault::KillChild => match self.runner() {
                // Every session's server (and the warm spare): which one is a session's
                // cannot be told from outside, so none is spared.
                Some((_, servers)) if !servers.is_empty() => {
                    for pid in &servers {
                        // SAFETY: kill(2) on pids just read; no memory is involved.
                        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
                    }
                    format!("killed the runner's {} MCP server processes", servers.len())
                }
                _ => "no MCP server process to kill".to_string(),
            },
            Fault::StopMachine => {
                // Sessions keep calling, so the next request wakes it at once: no waiting
                // for `stopped` here.
                let m = self.machine_id().await;
                let stop = crate::stack::client()
                    .post(self.machines.api(&format!("/machines/{m}/stop")))
                    .bearer_auth(&self.machines.token)
                    .json(&json!({}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                format!("machine {m} stopped behind the Worker's back: {stop:?}")
            }
            Fault::ApiDown => {
                self.fly_api.on(
                    "*",
                    "/*",
                    Reply::json(503, &json!({"error": "unavailable"})),
                );
                let (s, b) = self.restart().await;
                tokio::time::sleep(hold).await;
                self.fly_api
                    .on("*", "/*", Reply::forward(self.machines.base_url.clone()));
                format!(
                    "Machines API 503 for {hold:?}; a restart meanwhile: {s} {}",
                    b["error"]["code"]
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Restart,
    KillChild,
    StopMachine,
    ApiDown,
}

pub const FAULTS: [Fault; 4] = [
    Fault::Restart,
    Fault::KillChild,
    Fault::StopMachine,
    Fault::ApiDown,
];

/// One call's outcome, when it started and how long it took.
struct Call {
    at: Instant,
    ms: f64,
    outcome: Outcome,
}

enum Outcome {
    Ok,
    /// Answered, but not with the echo: why, in a few words.
    Failed(String),
    /// No answer at all.
    Lost(String),
}

#[derive(Debug, Default, Clone)]
pub struct PhaseReport {
    pub name: &'static str,
    pub calls: usize,
    pub ok: usize,
    pub failed: usize,
    pub lost: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub sessions: usize,
    pub phases: Vec<PhaseReport>,
    /// Why calls failed (answered, but not with the echo), counted.
    pub failed: BTreeMap<String, usize>,
    /// Why calls were lost (no answer), counted. Must be empty.
    pub lost: BTreeMap<String, usize>,
    /// Each fault: what it did, and how many sessions lost their session to it (had to
    /// initialize again) rather than being carried over transparently.
    pub faults: Vec<(String, usize)>,
    /// Sessions still answering at the end.
    pub alive_at_end: usize,
}

impl Report {
    pub fn calls(&self) -> usize {
        self.phases.iter().map(|p| p.calls).sum()
    }

    pub fn lost_calls(&self) -> usize {
        self.lost.values().sum()
    }

    /// A table for people.
    pub fn print(&self) {
        println!(
            "{} sessions, {} calls; lost (no answer): {}",
            self.sessions,
            self.calls(),
            self.lost_calls()
        );
        println!(
            "{:<8} {:>7} {:>7} {:>7} {:>5} {:>9} {:>9}",
            "phase", "calls", "ok", "failed", "lost", "p50 ms", "p99 ms"
        );
        for p in &self.phases {
            println!(
                "{:<8} {:>7} {:>7} {:>7} {:>5} {:>9.1} {:>9.1}",
                p.name, p.calls, p.ok, p.failed, p.lost, p.p50_ms, p.p99_ms
            );
        }
        for (what, reinit) in &self.faults {
            println!(
                "fault: {what}; sessions carried over: {}/{}",
                self.sessions - reinit.min(&self.sessions),
                self.sessions
            );
        }
        for (why, n) in &self.failed {
            println!("failed ×{n}: {why}");
        }
        for (why, n) in &self.lost {
            println!("LOST ×{n}: {why}");
        }
        println!(
            "sessions answering at the end: {}/{}",
            self.alive_at_end, self.sessions
        );
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .expect("client")
}

/// One session's loop until `end`: (its calls, when it had to initialize again, whether
/// its last call was answered).
async fn session_loop(
    url: String,
    token: String,
    end: Instant,
    n: usize,
) -> (Vec<Call>, Vec<Instant>, bool) {
    let headers = vec![("authorization".to_string(), format!("Bearer {token}"))];
    let mut calls = Vec::new();
    let mut reopened = Vec::new();
    let mut session = None;
    let mut last_ok = false;
    let mut i = 0u64;
    while Instant::now() < end {
        let Some(s) = session.as_mut() else {
            match Session::open(client(), &url, &headers).await {
                Ok(s) => session = Some(s),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            continue;
        };
        i += 1;
        let message = format!("soak-{n}-{i}");
        let at = Instant::now();
        let answer = s
            .call(
                "tools/call",
                json!({"name": "echo", "arguments": {"message": message}}),
            )
            .await;
        let ms = at.elapsed().as_secs_f64() * 1000.0;
        let outcome = match answer {
            Ok(v) if text_of(&v).contains(&message) => Outcome::Ok,
            Ok(v) if v.get("error").is_some() => Outcome::Failed(format!(
                "JSON-RPC {}: {}",
                v["error"]["code"],
                v["error"]["message"].as_str().unwrap_or_default()
            )),
            Ok(v) => Outcome::Failed(format!(
                "not the echo: {}",
                v.to_string().chars().take(80).collect::<String>()
            )),
            Err(CallError::Status(404, _)) => {
                // The gateway forgot the session: the client must initialize again.
                session = None;
                reopened.push(Instant::now());
                Outcome::Failed("HTTP 404 (session gone; initialized again)".into())
            }
            Err(e @ CallError::Status(..)) => Outcome::Failed(e.to_string()),
            Err(CallError::NoAnswer(why)) => Outcome::Lost(why),
        };
        last_ok = matches!(outcome, Outcome::Ok);
        if !last_ok {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        calls.push(Call { at, ms, outcome });
    }
    if let Some(s) = session {
        s.close().await;
    }
    (calls, reopened, last_ok)
}

fn text_of(v: &Value) -> String {
    v["result"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect()
}

/// One round: the three phases, the faults spread over the middle one.
pub async fn round(w: &World, o: Options) -> Report {
    let start = Instant::now();
    let during_at = start + o.before;
    let after_at = during_at + o.during;
    let end = after_at + o.after;
    let workers: Vec<_> = (0..o.sessions)
        .map(|n| tokio::spawn(session_loop(w.url.clone(), w.token.clone(), end, n)))
        .collect();

    // The chaos loop: each fault at its slot of the middle phase.
    tokio::time::sleep_until(during_at.into()).await;
    let slot = o.during / FAULTS.len() as u32;
    let mut log = Vec::new();
    for (k, fault) in FAULTS.iter().enumerate() {
        let at = during_at + slot * k as u32;
        tokio::time::sleep_until(at.into()).await;
        let what = w.fault(*fault, slot / 2).await;
        log.push((at, what));
    }

    let mut calls = Vec::new();
    let mut reopened = Vec::new();
    let mut alive = 0;
    for t in workers {
        let (c, r, ok) = t.await.expect("session task");
        calls.extend(c);
        reopened.push(r);
        alive += usize::from(ok);
    }

    // A call in flight when the faults begin belongs to them, not to the calm before.
    let phase_of = |c: &Call| {
        let ended = c.at + Duration::from_secs_f64(c.ms / 1000.0);
        if ended < during_at {
            0
        } else if c.at < after_at {
            1
        } else {
            2
        }
    };
    let mut report = Report {
        sessions: o.sessions,
        alive_at_end: alive,
        ..Default::default()
    };
    for (i, name) in ["before", "during", "after"].into_iter().enumerate() {
        let mine: Vec<&Call> = calls.iter().filter(|c| phase_of(c) == i).collect();
        let mut ms: Vec<f64> = mine
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Ok))
            .map(|c| c.ms)
            .collect();
        ms.sort_by(f64::total_cmp);
        report.phases.push(PhaseReport {
            name,
            calls: mine.len(),
            ok: ms.len(),
            failed: mine
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
                .count(),
            lost: mine
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Lost(_)))
                .count(),
            p50_ms: percentile(&ms, 50.0),
            p99_ms: percentile(&ms, 99.0),
        });
    }
    for c in &calls {
        match &c.outcome {
            Outcome::Failed(why) => *report.failed.entry(why.clone()).or_default() += 1,
            Outcome::Lost(why) => *report.lost.entry(why.clone()).or_default() += 1,
            Outcome::Ok => {}
        }
    }
    for (k, (at, what)) in log.iter().enumerate() {
        let until = log.get(k + 1).map_or(end, |(next, _)| *next);
        let hit = reopened
            .iter()
            .filter(|r| r.iter().any(|t| t >= at && *t < until))
            .count();
        report.faults.push((what.clone(), hit));
    }
    report
}
