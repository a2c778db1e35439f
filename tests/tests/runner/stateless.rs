//! 2026-07-28 requests on the runner (see `runner/src/modern.rs`, `runner/src/pool.rs`):
//! bridged for server-everything (a handshake-era TypeScript SDK server), passed through for
//! a server on the Python SDK 2.3 that speaks the era itself, next to handshake-era
//! sessions on the same runner.

use std::time::{Duration, Instant};

use edge_tests::clients::python;
use edge_tests::repo_root;
use edge_tests::runner::Runner;
use reqwest::RequestBuilder;
use serde_json::{json, Value};

use crate::raw::{client, health, json_of, log_lines, open_session, post, read_all};

const ERA: &str = "2026-07-28";

fn envelope() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": ERA,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    })
}

/// A 2026-07-28 request with its headers agreeing with its body.
fn stateless(url: &str, secret: &str, id: u64, method: &str, mut params: Value) -> RequestBuilder {
    params["_meta"] = envelope();
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut r = client()
        .post(url)
        .bearer_auth(secret)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", ERA)
        .header("mcp-method", method)
        .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    if let Some(n) = name {
        r = r.header("mcp-name", n);
    }
    r
}

/// The answer of a 2026-07-28 POST: its status and the JSON-RPC response (JSON or the
/// last SSE event).
async fn answer(r: RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    assert!(
        resp.headers().get("mcp-session-id").is_none(),
        "no session in this era"
    );
    let sse = resp.headers().get("content-type").is_some_and(|c| {
        c.to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    });
    if sse {
        let events = read_all(resp).await;
        let last = events.last().map(json_of).unwrap_or(Value::Null);
        (status, last)
    } else {
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn discover_is_bridged_from_an_initialized_child_of_a_handshake_era_server() {
    let r = Runner::everything(&[]);
    crate::raw::wait_status(&r.base_url, "ready").await;
    let (status, v) = answer(stateless(
        &r.mcp_url(),
        &r.secret,
        1,
        "server/discover",
        json!({}),
    ))
    .await;
    assert_eq!(status, 200, "{v}");
    let result = &v["result"];
    assert_eq!(v["id"], 1);
    assert_eq!(result["supportedVersions"], json!([ERA]));
    assert!(result["capabilities"]["tools"].is_object(), "{result}");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-servers/everything"
    );
    assert_eq!(result["resultType"], "complete");
    assert!(log_lines(&r.base_url, &r.secret)
        .await
        .iter()
        .any(|l| l.contains("speaks only the handshake era; bridged")));
}

#[tokio::test]
async fn stateless_tools_list_and_call_run_on_pooled_children() {
    let r = Runner::everything(&[]);
    let (status, list) = answer(stateless(
        &r.mcp_url(),
        &r.secret,
        1,
        "tools/list",
        json!({}),
    ))
    .await;
    assert_eq!(status, 200, "{list}");
    let tools = list["result"]["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t["name"] == "echo"));
    assert_eq!(list["result"]["resultType"], "complete");
    assert_eq!(list["result"]["ttlMs"], 0, "cache hints of this era");
    let (status, call) = answer(stateless(
        &r.mcp_url(),
        &r.secret,
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "pooled"}}),
    ))
    .await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["id"], 2, "the client's id, not the runner's");
    assert_eq!(call["result"]["content"][0]["text"], "Echo: pooled");
    // A method the server lacks: JSON with this era's status for -32601.
    let (status, missing) = answer(stateless(
        &r.mcp_url(),
        &r.secret,
        3,
        "nothing/here",
        json!({}),
    ))
    .await;
    assert_eq!(
        (status, missing["error"]["code"].as_i64()),
        (404, Some(-32601)),
        "{missing}"
    );
    // Methods that would change the pooled child's connection for later clients.
    let (status, level) = answer(stateless(
        &r.mcp_url(),
        &r.secret,
        4,
        "logging/setLevel",
        json!({"level": "debug"}),
    ))
    .await;
    assert_eq!(
        (status, level["error"]["code"].as_i64()),
        (404, Some(-32601)),
        "{level}"
    );
    let (_, h) = health(&r.base_url).await;
    assert_eq!(h["sessions"], 0, "no session was opened: {h}");
    assert_eq!(h["pooled"], 1, "one pooled child served every request: {h}");
}

#[test]
fn the_python_sdk_pinned_to_2026_07_28_lists_calls_and_samples_through_input_required() {
    let r = Runner::everything(&[]);
    let out = python(&r.mcp_url(), &r.secret, "modern", None);
    assert_eq!(out["text"], "Echo: modern");
    assert_eq!(out["discover_versions"], json!([ERA]));
    let requests = out["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .all(|q| q["http"] == "POST" && q["session"].is_null() && q["version"] == ERA),
        "{requests:?}"
    );
    let sampling =
        json!({"tool": "trigger-sampling-request", "arguments": {"prompt": "say", "maxTokens": 5}});
    let out = python(
        &r.mcp_url(),
        &r.secret,
        "modern",
        Some(&sampling.to_string()),
    );
    assert_eq!(out["asked"].as_array().map(Vec::len), Some(1), "{out}");
    assert!(
        out["text"]
            .as_str()
            .unwrap()
            .contains("sampled through input_required"),
        "{out}"
    );
    // The call went out twice: the first answer asked for input, the retry completed it.
    let calls = out["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["mcp_method"] == "tools/call")
        .count();
    assert_eq!(calls, 2, "{out}");
}

#[test]
fn a_server_that_speaks_2026_07_28_itself_is_passed_through() {
    let launch = json!({"argv": [
        repo_root().join(".venv/bin/python").display().to_string(),
        repo_root().join("tests/fixtures/modern-server/server.py").display().to_string(),
    ]})
    .to_string();
    let r = Runner::start(&launch, &[]);
    let out = python(&r.mcp_url(), &r.secret, "modern", None);
    // The server read the request's own envelope: it was not bridged.
    assert_eq!(out["text"], "Echo: modern (2026-07-28)", "{out}");
    assert_eq!(out["server"], "modern-fixture");
    let logs = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(log_lines(&r.base_url, &r.secret));
    assert!(
        logs.iter()
            .any(|l| l.contains("speaks 2026-07-28; requests pass through")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn the_pool_bound_holds_under_concurrency() {
    let r = Runner::everything(&[("CATWALK_STATELESS_POOL", "2"), ("CATWALK_SPARES", "0")]);
    // Settle the era first (the probed child becomes the first pooled one).
    answer(stateless(
        &r.mcp_url(),
        &r.secret,
        1,
        "tools/list",
        json!({}),
    ))
    .await;
    let started = Instant::now();
    let calls = (0..6).map(|i| {
        let req = stateless(
            &r.mcp_url(),
            &r.secret,
            10 + i,
            "tools/call",
            json!({"name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 1}}),
        );
        tokio::spawn(answer(req))
    });
    let calls: Vec<_> = calls.collect();
    let mut most_pooled = 0;
    let mut most_processes = 0;
    while calls.iter().any(|c| !c.is_finished()) {
        let (_, h) = health(&r.base_url).await;
        most_pooled = most_pooled.max(h["pooled"].as_u64().unwrap_or(0));
        most_processes = most_processes.max(r.session_processes().len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    for c in calls {
        let (status, v) = c.await.unwrap();
        assert_eq!(status, 200, "{v}");
        assert!(
            v["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("completed"),
            "{v}"
        );
    }
    assert_eq!(most_pooled, 2, "never more pooled children than the bound");
    assert!(most_processes <= 2, "{most_processes} server processes");
    // Six one-second calls on two children: three rounds, never all at once.
    assert!(took >= Duration::from_millis(2900), "{took:?}");
}

/// A `tools/call` of `echo` with the routing headers given (not derived from the body).
fn with_headers(url: &str, secret: &str, headers: &[(&str, &str)]) -> RequestBuilder {
    let mut r = client()
        .post(url)
        .bearer_auth(secret)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "x"}, "_meta": envelope()}}));
    for (name, value) in headers {
        r = r.header(*name, *value);
    }
    r
}

#[tokio::test]
async fn routing_headers_that_disagree_with_the_body_are_refused_with_32020() {
    let r = Runner::everything(&[]);
    let v = ("mcp-protocol-version", ERA);
    let m = ("mcp-method", "tools/call");
    let n = ("mcp-name", "echo");
    let (status, ok) = answer(with_headers(&r.mcp_url(), &r.secret, &[v, m, n])).await;
    assert_eq!(
        (status, ok["result"]["content"][0]["text"].as_str()),
        (200, Some("Echo: x")),
        "{ok}"
    );
    for (what, headers) in [
        (
            "Mcp-Method names another method",
            vec![v, ("mcp-method", "tools/list"), n],
        ),
        (
            "Mcp-Name names another tool",
            vec![v, m, ("mcp-name", "get-env")],
        ),
        ("Mcp-Name missing", vec![v, m]),
        ("Mcp-Method sent twice", vec![v, m, m, n]),
        (
            "the version header disagrees with _meta",
            vec![("mcp-protocol-version", "2025-11-25"), m, n],
        ),
    ] {
        let (status, e) = answer(with_headers(&r.mcp_url(), &r.secret, &headers)).await;
        assert_eq!(status, 400, "{what}: {e}");
        assert_eq!(e["error"]["code"], -32020, "{what}: {e}");
        assert_eq!(e["id"], 7, "{what}");
    }
    // No envelope at all: invalid params.
    let (status, e) = answer(
        client()
            .post(r.mcp_url())
            .bearer_auth(&r.secret)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", ERA)
            .header("mcp-method", "tools/list")
            .json(&json!({"jsonrpc": "2.0", "id": 10, "method": "tools/list"})),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_i64()),
        (400, Some(-32602)),
        "{e}"
    );
}

#[tokio::test]
async fn get_and_delete_are_405_in_the_new_era_notifications_are_202_and_batches_400() {
    let r = Runner::everything(&[]);
    crate::raw::wait_status(&r.base_url, "ready").await;
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let resp = client()
            .request(method.clone(), r.mcp_url())
            .bearer_auth(&r.secret)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", ERA)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "POST", "{method}");
    }
    let note = client()
        .post(r.mcp_url())
        .bearer_auth(&r.secret)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", ERA)
        .header("mcp-method", "notifications/cancelled")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 202);
    // One message per POST in this era.
    let batch = client()
        .post(r.mcp_url())
        .bearer_auth(&r.secret)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", ERA)
        .header("mcp-method", "tools/list")
        .json(&json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": envelope()}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 400);
    let v: Value = batch.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32600);
}

#[tokio::test]
async fn a_handshake_session_works_at_the_same_time_on_its_own_child() {
    let r = Runner::everything(&[]);
    let sid = open_session(&r.mcp_url(), &r.secret).await;
    let in_session = post(
        &r.mcp_url(),
        &r.secret,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 2},
                "_meta": {"progressToken": "p"}}}),
    )
    .send();
    let modern = answer(stateless(
        &r.mcp_url(),
        &r.secret,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "meanwhile"}}),
    ));
    let (session_resp, (status, v)) = tokio::join!(in_session, modern);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "Echo: meanwhile");
    let events = read_all(session_resp.unwrap()).await;
    assert!(
        events
            .iter()
            .any(|e| json_of(e)["method"] == "notifications/progress"),
        "the session still streams its progress: {events:?}"
    );
    assert!(events
        .iter()
        .any(|e| json_of(e)["result"]["content"].is_array()));
    let (_, h) = health(&r.base_url).await;
    assert_eq!(
        (h["sessions"].as_u64(), h["pooled"].as_u64()),
        (Some(1), Some(1)),
        "{h}"
    );
}

#[tokio::test]
async fn progress_streams_before_the_answer_and_closing_the_stream_cancels_and_frees_the_child() {
    let r = Runner::everything(&[("CATWALK_STATELESS_POOL", "1")]);
    let long = |id: u64, secs: u64| {
        let mut req = stateless(
            &r.mcp_url(),
            &r.secret,
            id,
            "tools/call",
            json!({"name": "trigger-long-running-operation", "arguments": {"duration": secs, "steps": secs}}),
        );
        // The headers from `stateless`, the body again with a progress token in `_meta`.
        let mut body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "trigger-long-running-operation", "arguments": {"duration": secs, "steps": secs},
                "_meta": envelope()}});
        body["params"]["_meta"]["progressToken"] = json!(format!("p{id}"));
        req = req.json(&body);
        req
    };
    // Progress first, so the answer commits to SSE: notifications, then the result.
    let resp = long(1, 2).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = read_all(resp).await;
    let progress = events
        .iter()
        .filter(|e| json_of(e)["method"] == "notifications/progress")
        .count();
    assert!(progress >= 1, "{events:?}");
    let last = events.last().map(json_of).unwrap_or_default();
    assert_eq!(last["id"], 1);
    assert_eq!(last["result"]["resultType"], "complete");

    // A long call whose client goes away after its first progress event: the only pooled
    // child is told, and serves the next request at once instead of after 30 s.
    let resp = long(2, 30).send().await.unwrap();
    let mut events = crate::raw::Events::new(resp);
    let first = events.next().await.expect("a progress event");
    assert_eq!(json_of(&first)["method"], "notifications/progress");
    drop(events);
    let started = Instant::now();
    let (status, v) = answer(stateless(
        &r.mcp_url(),
        &r.secret,
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "after"}}),
    ))
    .await;
    assert_eq!(
        (status, v["result"]["content"][0]["text"].as_str()),
        (200, Some("Echo: after")),
        "{v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (_, h) = health(&r.base_url).await;
    assert_eq!(h["pooled"], 1, "{h}");
}
