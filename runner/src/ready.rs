//! Readiness: "running" must mean the MCP server answered. Before serve mode reports
//! `ready` it proves the launch spec works with a *probe* child:
//! 1. the launch argv is started exactly as for a session (same environment, uid, group),
//!    which also resolves / installs the package once and so warms the npx / uv cache for
//!    every later child;
//! 2. it is sent `initialize` (the newest handshake-era revision the runner serves, client
//!    `catwalk-runner`) and given [`crate::serve::ServeConfig::ready_timeout`]
//!    (`CATWALK_READY_TIMEOUT_SECS`, default 300 s: a first install can download) to answer;
//! 3. on a result it is sent `notifications/initialized` and ended (stdin closed, TERM to
//!    its process group, KILL after a grace period); once it is gone the warm spares are
//!    spawned (see [`crate::session`]) and the runner is `ready`. The probe is never
//!    handed to a client: a client must negotiate its own `initialize`.
//!
//! The phases are `starting` → `ready` | `failed`; `failed` is final for this process (the
//! Worker reads `/logs` and decides). A failure carries a short reason in plain words for
//! the open `/health`: it is built only from the program name (`argv[0]`), an exit status
//! or signal, a number of seconds or a JSON-RPC error code — never from the server's
//! output (stderr, error messages) nor from the environment. The probe's stderr goes to the
//! masked log ring like any child's, each line tagged `[probe]`, followed by a line that
//! says how the probe ended.

use std::time::{Duration, Instant};

use mcp_wire::jsonrpc::{classify, Kind};
use mcp_wire::version::HANDSHAKE_VERSIONS;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout};

use crate::ring::LogRing;
use crate::session::{pipe_stderr, Sessions, KILL_GRACE, MAX_MESSAGE_BYTES};

/// The probe's log tag.
pub const PROBE_TAG: &str = "probe";
/// The id of the probe's `initialize`.
pub const PROBE_ID: &str = "catwalk-runner/ready";
/// How long an exited-looking probe (stdout closed) gets to report its exit status.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// Longest program name quoted in a reason.
const MAX_PROGRAM_IN_REASON: usize = 64;

/// Where the runner is in preparing its MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Ready,
    /// With the short, public reason.
    Failed(String),
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Ready => "ready",
            Phase::Failed(_) => "failed",
        }
    }
}

/// The newest handshake-era revision the runner serves.
pub fn probe_version() -> &'static str {
    HANDSHAKE_VERSIONS.last().copied().unwrap_or("2025-03-26")
}

fn initialize_request() -> Value {
    json!({"jsonrpc": "2.0", "id": PROBE_ID, "method": "initialize", "params": {
        "protocolVersion": probe_version(),
        "capabilities": {},
        "clientInfo": {"name": "catwalk-runner", "version": env!("CARGO_PKG_VERSION")}
    }})
}

/// How the probe's `initialize` was answered.
enum Answer {
    Result,
    Error(Option<i64>),
    /// Its stdout ended first.
    Closed,
    /// It wrote a line longer than any message we accept.
    Oversized,
}

/// Kills the probe's whole process group when dropped (also when the wait is cancelled
/// at shutdown), so no `npx` grandchild outlives it.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: signalling the process group created for the probe.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// Runs the probe: `Ok` once the server answered `initialize` and the probe is gone,
/// else the public reason.
pub async fn prepare(sessions: &Sessions, timeout: Duration) -> Result<(), String> {
    let ring = sessions.ring.clone();
    match probe(sessions, timeout).await {
        Ok(took) => {
            ring.push(&format!(
                "[{PROBE_TAG}] ready: the MCP server answered initialize in {} ms",
                took.as_millis()
            ));
            Ok(())
        }
        Err(reason) => {
            ring.push(&format!("[{PROBE_TAG}] not ready: {reason}"));
            Err(reason)
        }
    }
}

/// The probe itself: how long the answer took, or the public reason.
async fn probe(sessions: &Sessions, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let program = sessions.program();
    let mut child = sessions
        .command()
        .spawn()
        .map_err(|e| could_not_start(program, &e))?;
    let group = Group(child.id().map(|p| p as i32));
    if let Some(stderr) = child.stderr.take() {
        pipe_stderr(stderr, sessions.ring.clone(), PROBE_TAG.to_string());
    }
    let mut stdin = child.stdin.take();
    let Some(stdout) = child.stdout.take() else {
        return Err("could not start the program: no output pipe".into());
    };
    if let Some(pipe) = stdin.as_mut() {
        // A write error means the child is already gone: the read below sees it.
        let _ = pipe
            .write_all(format!("{}\n", initialize_request()).as_bytes())
            .await;
    }
    let answer = tokio::time::timeout(timeout, read_answer(stdout, &sessions.ring)).await;
    let outcome = match answer {
        Err(_) => Err(format!(
            "no answer to initialize within {} s",
            timeout.as_secs()
        )),
        Ok(Answer::Result) => {
            let took = started.elapsed();
            if let Some(pipe) = stdin.as_mut() {
                let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
                let _ = pipe.write_all(format!("{done}\n").as_bytes()).await;
            }
            Ok(took)
        }
        Ok(Answer::Error(Some(code))) => Err(format!(
            "the MCP server answered initialize with error {code}"
        )),
        Ok(Answer::Error(None)) => Err("the MCP server answered initialize with an error".into()),
        Ok(Answer::Oversized) => Err(format!(
            "the MCP server wrote a message over {} MiB before answering initialize",
            MAX_MESSAGE_BYTES >> 20
        )),
        Ok(Answer::Closed) => Err(match exit_status(&mut child, EXIT_WAIT).await {
            Some(how) => format!("the MCP server exited before answering initialize ({how})"),
            None => "the MCP server closed its output before answering initialize".into(),
        }),
    };
    drop(stdin);
    end(&mut child, &group).await;
    outcome
}

/// Reads the probe's stdout until the answer to its `initialize`; other messages are
/// ignored, lines that are not JSON go to the ring.
async fn read_answer(stdout: ChildStdout, ring: &LogRing) -> Answer {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_MESSAGE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .unwrap_or(0);
        if n == 0 {
            return Answer::Closed;
        }
        if line.len() > MAX_MESSAGE_BYTES {
            return Answer::Oversized;
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if !text.is_empty() {
                ring.push(&format!("[{PROBE_TAG}] (stdout, not JSON-RPC) {text}"));
            }
            continue;
        };
        if let Kind::Response { id } = classify(&msg) {
            if id.as_str() == Some(PROBE_ID) {
                return match msg.get("error") {
                    Some(err) => Answer::Error(err.get("code").and_then(Value::as_i64)),
                    None => Answer::Result,
                };
            }
        }
    }
}

/// The exit of a child whose stdout closed, if it comes within `wait`, in plain words.
async fn exit_status(child: &mut Child, wait: Duration) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    let status = tokio::time::timeout(wait, child.wait()).await.ok()?.ok()?;
    Some(match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "exit status unknown".into(),
    })
}

/// Ends the probe: TERM to its group, a grace period, then KILL (by the guard).
async fn end(child: &mut Child, group: &Group) {
    if let Some(pgid) = group.0 {
        // SAFETY: signalling the process group created for the probe.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
    }
    let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
}

/// Why the program could not be started, from the error's kind (not its text).
fn could_not_start(program: &str, e: &std::io::Error) -> String {
    let mut name: String = program.chars().take(MAX_PROGRAM_IN_REASON).collect();
    if name.len() < program.len() {
        name.push('…');
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("could not start the program: {name} not found"),
        std::io::ErrorKind::PermissionDenied => {
            format!("could not start the program: {name} is not executable (permission denied)")
        }
        kind => format!("could not start the program: {name} ({kind})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_speaks_the_newest_handshake_revision_as_catwalk_runner() {
        let init = initialize_request();
        assert_eq!(init["params"]["protocolVersion"], "2025-11-25");
        assert_eq!(init["params"]["clientInfo"]["name"], "catwalk-runner");
        assert_eq!(init["id"], PROBE_ID);
    }

    #[test]
    fn start_failures_are_described_by_kind_only() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "secret detail");
        assert_eq!(
            could_not_start("npx", &e),
            "could not start the program: npx not found"
        );
        let e = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "secret detail");
        assert!(could_not_start("./x", &e).contains("permission denied"));
        let long = "a".repeat(200);
        assert!(could_not_start(&long, &e).len() < 140);
    }
}
