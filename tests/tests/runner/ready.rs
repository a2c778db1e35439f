//! Readiness at boot (`starting` → `ready` | `failed`), requests held while starting, and
//! the warm spare that serves the first session. See `runner/src/ready.rs` and the
//! "Warm spares" section of `runner/src/session.rs`.

use std::time::{Duration, Instant};

use edge_tests::runner::{server_everything, Runner, EVERYTHING_PACKAGE, EVERYTHING_VERSION};
use serde_json::{json, Value};

use crate::raw::{
    health, init_body, json_of, log_lines, logs_json, open_session, post, read_all, wait_health,
    wait_status,
};

/// A minimal stdio MCP server: answers `ping` and any request, and answers `initialize`
/// with the client's own protocol version and, in `instructions`, its pid, every method it
/// received so far and the client's `clientInfo` / `capabilities`.
const FAKE_SERVER: &str = r#"
const seen = [];
const send = (o) => process.stdout.write(JSON.stringify(o) + '\n');
require('readline').createInterface({ input: process.stdin }).on('line', (l) => {
  let m;
  try { m = JSON.parse(l); } catch { return; }
  if (m.method) seen.push(m.method);
  if (m.method === 'initialize') {
    send({ jsonrpc: '2.0', id: m.id, result: {
      protocolVersion: m.params.protocolVersion, capabilities: {},
      serverInfo: { name: 'fake', version: '1' },
      instructions: JSON.stringify({ pid: process.pid, seen, clientInfo: m.params.clientInfo,
        capabilities: m.params.capabilities }) } });
  } else if (m.method && m.id !== undefined) {
    send({ jsonrpc: '2.0', id: m.id, result: {} });
  }
});
"#;

/// Answers `initialize` with a JSON-RPC error whose message must never reach `/health`.
const REFUSING_SERVER: &str = r#"
require('readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const m = JSON.parse(l);
  if (m.method === 'initialize') process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id,
    error: { code: -32603, message: 'database password hunter2 rejected' } }) + '\n');
});
"#;

fn argv(args: &[&str]) -> String {
    json!({ "argv": args }).to_string()
}

/// Waits for `failed`; checks the reason, that `/health` carries no server output, and
/// that `/mcp` answers 503 with the reason and the request's id. Returns the runner.
async fn assert_fails(launch: &str, env: &[(&str, &str)], reason: &str) -> Runner {
    let r = Runner::start(launch, env);
    let h = wait_status(&r.base_url, "failed").await;
    let (status, _) = health(&r.base_url).await;
    assert_eq!(status, 503);
    let got = h["reason"].as_str().unwrap_or_default();
    assert!(got.contains(reason), "reason {got:?} lacks {reason:?}");
    let mut init = init_body();
    init["id"] = json!("init-after-failure");
    let resp = post(&r.mcp_url(), &r.secret, None, &init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "init-after-failure");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(got),
        "{body}"
    );
    assert_eq!(r.session_processes(), Vec::<u32>::new(), "nothing runs");
    r
}

#[tokio::test]
async fn server_everything_becomes_ready_with_a_proven_spare_and_logs_say_so() {
    let r = Runner::everything(&[]);
    let (status, first) = health(&r.base_url).await;
    assert!(
        (status == 503 && first["status"] == "starting") || first["status"] == "ready",
        "{status} {first}"
    );
    let h = wait_health(&r.base_url, Duration::from_secs(30), |h| {
        h["status"] == "ready" && h["spares"] == 1
    })
    .await;
    assert_eq!(h["sessions"], 0);
    assert!(h["uptime_s"].is_u64());
    assert_eq!(health(&r.base_url).await.0, 200);

    let logs = logs_json(&r.base_url, &r.secret, "").await;
    let lines = logs["lines"].as_array().unwrap();
    let ready = lines
        .iter()
        .find(|l| l["line"].as_str().unwrap().starts_with("[probe] ready:"))
        .expect("the probe's outcome is logged");
    let ts = ready["ts"].as_str().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
        "{ts}"
    );
    assert!(lines
        .iter()
        .any(|l| l["line"].as_str().unwrap().contains("warm spare ready")));
    assert_eq!(logs["dropped"], 0);
}

#[tokio::test]
async fn logs_return_the_newest_n_lines_and_refuse_a_bad_count() {
    let r = Runner::everything(&[]);
    wait_health(&r.base_url, Duration::from_secs(30), |h| h["spares"] == 1).await;
    let all = log_lines(&r.base_url, &r.secret).await;
    assert!(all.len() >= 2, "{all:?}");
    let one = logs_json(&r.base_url, &r.secret, "?lines=1").await;
    assert_eq!(one["lines"].as_array().unwrap().len(), 1);
    assert_eq!(
        one["lines"][0]["line"],
        all[all.len() - 1],
        "the newest line"
    );
    for bad in ["0", "2001", "many", ""] {
        let resp = crate::raw::client()
            .get(format!("{}/logs?lines={bad}", r.base_url))
            .bearer_auth(&r.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "lines={bad}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains("1 to 2000"), "{v}");
    }
}

#[tokio::test]
async fn failed_when_the_program_does_not_exist() {
    assert_fails(
        &argv(&["catwalk-no-such-program"]),
        &[],
        "could not start the program: catwalk-no-such-program not found",
    )
    .await;
}

#[tokio::test]
async fn failed_when_the_server_exits_before_answering_initialize() {
    assert_fails(
        &argv(&["node", "-e", "process.exit(3)"]),
        &[],
        "the MCP server exited before answering initialize (exit status 3)",
    )
    .await;
}

#[tokio::test]
async fn failed_when_initialize_gets_no_answer_in_time() {
    let started = Instant::now();
    assert_fails(
        &argv(&["node", "-e", "setInterval(() => {}, 1000)"]),
        &[("CATWALK_READY_TIMEOUT_SECS", "1")],
        "no answer to initialize within 1 s",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn failed_when_initialize_is_answered_with_an_error_and_only_its_code_is_told() {
    let r = assert_fails(
        &argv(&["node", "-e", REFUSING_SERVER]),
        &[],
        "the MCP server answered initialize with error -32603",
    )
    .await;
    let (_, h) = health(&r.base_url).await;
    assert!(!h.to_string().contains("hunter2"), "{h}");
}

#[tokio::test]
async fn a_credential_the_server_prints_before_dying_is_not_in_health_and_masked_in_logs() {
    let canary = "canary-credential-5f4e3d2c1b";
    let r = assert_fails(
        &argv(&[
            "sh",
            "-c",
            "echo \"auth failed for token $ACME_TOKEN\" >&2; exit 4",
        ]),
        &[("ACME_TOKEN", canary)],
        "exit status 4",
    )
    .await;
    let (_, h) = health(&r.base_url).await;
    let h = h.to_string();
    assert!(!h.contains(canary) && !h.contains("auth failed"), "{h}");
    let lines = log_lines(&r.base_url, &r.secret).await;
    assert!(
        lines
            .iter()
            .any(|l| l == "[probe] auth failed for token [REDACTED]"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains(canary)));
    assert!(lines.iter().any(|l| l.starts_with("[probe] not ready:")));
}

/// Slow only the first time it runs (the probe), like a first install.
fn slow_first_start(marker: &std::path::Path, secs: u32) -> String {
    let script =
        format!(r#"if [ ! -e "$0" ]; then touch "$0"; sleep {secs}; fi; exec node "$1" stdio"#);
    json!({"argv": ["sh", "-c", script, marker.display().to_string(),
        server_everything().display().to_string()]})
    .to_string()
}

#[tokio::test]
async fn a_request_that_arrives_while_starting_is_held_then_answered() {
    let dir = tempfile::tempdir().unwrap();
    let r = Runner::start(&slow_first_start(&dir.path().join("m"), 2), &[]);
    let started = Instant::now();
    let (status, h) = health(&r.base_url).await;
    assert_eq!((status, h["status"].as_str()), (503, Some("starting")));
    let sid = open_session(&r.mcp_url(), &r.secret).await;
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "not held: {:?}",
        started.elapsed()
    );
    assert_eq!(sid.len(), 32);
    assert_eq!(health(&r.base_url).await.1["status"], "ready");
}

#[tokio::test]
async fn past_the_wake_wait_a_request_gets_503_retry_after_and_its_own_id() {
    let dir = tempfile::tempdir().unwrap();
    let r = Runner::start(
        &slow_first_start(&dir.path().join("m"), 30),
        &[("CATWALK_WAKE_WAIT_SECS", "1")],
    );
    let started = Instant::now();
    let mut init = init_body();
    init["id"] = json!("wake-7");
    let resp = post(&r.mcp_url(), &r.secret, None, &init)
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(resp.status(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "wake-7");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("still starting"),
        "{body}"
    );
    assert_eq!(health(&r.base_url).await.1["status"], "starting");
}

/// The first session is served by the child that was spawned (and pinged) before the
/// client came: same pid; it saw nothing but the runner's ping before the client's own,
/// unchanged initialize; the ping's answer is not in the client's stream; a new spare
/// replaces it.
#[tokio::test]
async fn the_first_session_is_the_warm_spare_and_a_new_spare_replaces_it() {
    let r = Runner::start(&argv(&["node", "-e", FAKE_SERVER]), &[]);
    wait_health(&r.base_url, Duration::from_secs(20), |h| h["spares"] == 1).await;
    let spare = r.session_processes();
    assert_eq!(spare.len(), 1, "only the spare runs (the probe is gone)");

    let init = json!({"jsonrpc": "2.0", "id": "client-1", "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {"sampling": {}},
        "clientInfo": {"name": "spare-test", "version": "9"}}});
    let started = Instant::now();
    let resp = post(&r.mcp_url(), &r.secret, None, &init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = read_all(resp).await;
    let took = started.elapsed();
    let messages: Vec<Value> = events.iter().map(json_of).collect();
    assert_eq!(
        messages.len(),
        1,
        "only the initialize result: {messages:?}"
    );
    let result = &messages[0]["result"];
    assert_eq!(messages[0]["id"], "client-1");
    assert_eq!(
        result["protocolVersion"], "2025-06-18",
        "the client's version"
    );
    let seen: Value = serde_json::from_str(result["instructions"].as_str().unwrap()).unwrap();
    assert_eq!(seen["pid"], spare[0], "served by the pre-spawned spare");
    assert_eq!(seen["seen"], json!(["ping", "initialize"]));
    assert_eq!(seen["clientInfo"]["name"], "spare-test");
    assert_eq!(seen["capabilities"], json!({"sampling": {}}));
    assert!(took < Duration::from_millis(500), "{took:?}");

    let h = wait_health(&r.base_url, Duration::from_secs(20), |h| {
        h["sessions"] == 1 && h["spares"] == 1
    })
    .await;
    assert_eq!(h["status"], "ready");
    let now = r.session_processes();
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.contains(&spare[0]));
}

/// The launch form deployments use, through `npx` (the pinned version is in node_modules).
#[tokio::test]
async fn an_npm_package_run_with_npx_becomes_ready() {
    let launch = json!({"runtime": "npm", "package": EVERYTHING_PACKAGE,
        "version": EVERYTHING_VERSION, "args": ["stdio"]})
    .to_string();
    let r = Runner::start(&launch, &[]);
    let h = wait_health(&r.base_url, Duration::from_secs(120), |h| {
        h["status"] != "starting"
    })
    .await;
    assert_eq!(
        h["status"],
        "ready",
        "{h}\n{:?}",
        log_lines(&r.base_url, &r.secret).await
    );
    open_session(&r.mcp_url(), &r.secret).await;
}

/// A PyPI server through `uvx` (needs uv: `pip install uv`). The first run downloads its
/// packages from PyPI (~10 s here), later runs use uv's cache.
#[tokio::test]
async fn a_pypi_package_run_with_uvx_becomes_ready() {
    let found = std::process::Command::new("uvx")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: uvx is not on PATH (pip install uv)");
        return;
    }
    let launch = json!({"runtime": "python", "package": "mcp-server-time"}).to_string();
    let r = Runner::start(&launch, &[]);
    let h = wait_health(&r.base_url, Duration::from_secs(180), |h| {
        h["status"] != "starting"
    })
    .await;
    assert_eq!(
        h["status"],
        "ready",
        "{h}\n{:?}",
        log_lines(&r.base_url, &r.secret).await
    );
    let sid = open_session(&r.mcp_url(), &r.secret).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}});
    let resp = post(&r.mcp_url(), &r.secret, Some(&sid), &call)
        .send()
        .await
        .unwrap();
    let answer = read_all(resp)
        .await
        .iter()
        .map(json_of)
        .next_back()
        .unwrap();
    assert!(answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("UTC"));
}
