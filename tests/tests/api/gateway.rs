//! The MCP gateway end to end: wrangler dev → the local machines service (playing Fly's
//! proxy) → the runner → `@modelcontextprotocol/server-everything`, driven by the official
//! Python and TypeScript SDK clients and by raw HTTP where a test needs to see the wire.

use std::time::{Duration, Instant};

use edge_tests::clients;
use edge_tests::fake::FakeServer;
use reqwest::Method;
use serde_json::{json, Value};

use crate::deployments::{call, deploy_running, on, person, start_world, world, World};

/// A deployment of server-everything, running, with its MCP URL and access token.
struct Live {
    id: String,
    url: String,
    token: String,
    owner: String,
    machine: String,
}

async fn live(w: &World, name: &str) -> Live {
    let owner = person(w);
    let (id, token, running) = deploy_running(w, &owner, name, "gateway-secret").await;
    Live {
        url: w.stack.url(&format!("/api/mcp/{id}")),
        machine: running["machine"]["id"].as_str().unwrap().to_string(),
        id,
        token,
        owner,
    }
}

/// One raw MCP POST; answers (status, headers, the JSON-RPC message with `want_id` if the
/// body is SSE or JSON, the raw body).
async fn post(
    url: &str,
    auth: &[(&str, &str)],
    session: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Option<Value>, String) {
    let mut r = edge_tests::stack::client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    for (k, v) in auth {
        r = r.header(*k, *v);
    }
    if let Some(s) = session {
        r = r.header("mcp-session-id", s);
    }
    let resp = r.json(body).send().await.expect("post");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let want = body.get("id").cloned();
    let found = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|m| want.is_none() || m.get("id") == want.as_ref());
    (status, headers, found, text)
}

fn init(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}})
}

fn echo(id: u64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": message}}})
}

/// initialize + notifications/initialized; the gateway's session id.
async fn open_session(url: &str, auth: &[(&str, &str)]) -> String {
    let (s, h, m, text) = post(url, auth, None, &init(1)).await;
    assert_eq!(s, 200, "{text}");
    let m = m.unwrap_or_else(|| panic!("initialize gave no answer: {text:?}"));
    assert!(m["result"]["serverInfo"].is_object(), "{m}");
    let sid = h["mcp-session-id"].to_str().unwrap().to_string();
    let (s, _, _, _) = post(
        url,
        auth,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(s, 202);
    sid
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn the_sdk_clients_work_through_the_gateway_with_the_token_in_each_place() {
    let w = world();
    let d = live(w, "sdk").await;
    let (url, token) = (d.url.clone(), d.token.clone());
    let py = tokio::task::spawn_blocking({
        let (url, token) = (url.clone(), token.clone());
        move || clients::python(&url, &token, "basic", None)
    });
    let ts = tokio::task::spawn_blocking({
        let (url, token) = (url.clone(), token.clone());
        move || clients::typescript(&url, &format!("header:{token}"), "basic", None)
    });
    let py = py.await.unwrap();
    assert_eq!(py["echo"], "Echo: hello from python", "{py}");
    assert!(py["tools"].as_array().unwrap().iter().any(|t| t == "echo"));
    let ts = ts.await.unwrap();
    assert_eq!(ts["echo"], "Echo: hello from typescript", "{ts}");

    // The TypeScript client ended its session with DELETE: the id is dead now.
    let sid = ts["session"].as_str().unwrap();
    let (s, _, m, _) = post(
        &url,
        &[("authorization", &bearer(&token))],
        Some(sid),
        &echo(9, "late"),
    )
    .await;
    assert_eq!(s, 404, "{m:?}");

    // Progress notifications arrive while the tool runs (token in the query string).
    let progress = tokio::task::spawn_blocking({
        let (url, token) = (url.clone(), token.clone());
        move || clients::python(&url, &format!("query:{token}"), "progress", Some("3"))
    })
    .await
    .unwrap();
    let seen = progress["progress"].as_array().unwrap();
    assert!(seen.len() >= 2, "{progress}");
    let done = progress["done_at"].as_f64().unwrap();
    assert!(
        seen[0]["t"].as_f64().unwrap() < done - 0.5,
        "first progress before the end: {progress}"
    );

    // Sampling round trips through the gateway, both SDKs.
    let ts_sampling = tokio::task::spawn_blocking({
        let (url, token) = (url.clone(), token.clone());
        move || clients::typescript(&url, &token, "sampling", None)
    })
    .await
    .unwrap();
    assert!(
        ts_sampling["result"]
            .as_str()
            .unwrap()
            .contains("sampled by the typescript test client"),
        "{ts_sampling}"
    );
    let py_sampling = tokio::task::spawn_blocking({
        let (url, token) = (url.clone(), format!("header:{token}"));
        move || clients::python(&url, &token, "sampling", None)
    })
    .await
    .unwrap();
    assert!(
        py_sampling["result"]
            .as_str()
            .unwrap()
            .contains("sampled by the python test client"),
        "{py_sampling}"
    );

    // Usage was counted: requests, echo calls, latency; never arguments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, usage, text) = on(w, Method::GET, &d.owner, &d.id, "/usage").await;
    assert_eq!(s, 200, "{text}");
    assert!(usage["requests"].as_u64().unwrap() >= 8, "{usage}");
    assert!(
        usage["tool_calls"]["echo"].as_u64().unwrap() >= 2,
        "{usage}"
    );
    assert!(usage["latency_ms"]["p50"].is_number(), "{usage}");
    assert!(!text.contains("hello from"), "no arguments in usage");
    // Another person sees nothing.
    assert_eq!(on(w, Method::GET, &person(w), &d.id, "/usage").await.0, 404);

    // The access token is in none of our own log lines (the query form included).
    let ours: String = w
        .stack
        .logs()
        .lines()
        .filter(|l| l.starts_with('{'))
        .collect();
    assert!(!ours.contains(&token[4..]), "token in our logs");
}

/// The gateway object caches its deployment; a delete must reach it before the DELETE
/// answers: a warm object with an open session refuses on the very next request.
#[tokio::test]
async fn a_deleted_deployment_is_gone_from_its_url_on_the_next_request() {
    let w = world();
    let d = live(w, "vanishing").await;
    let auth = bearer(&d.token);
    let sid = open_session(&d.url, &[("authorization", &auth)]).await;
    let (s, _, m, _) = post(
        &d.url,
        &[("authorization", &auth)],
        Some(&sid),
        &echo(2, "warm"),
    )
    .await;
    assert_eq!(
        (s, m.unwrap()["result"]["content"][0]["text"].as_str()),
        (200, Some("Echo: warm"))
    );
    assert_eq!(on(w, Method::DELETE, &d.owner, &d.id, "").await.0, 204);
    let (s, _, _, text) = post(
        &d.url,
        &[("authorization", &auth)],
        Some(&sid),
        &echo(3, "gone"),
    )
    .await;
    assert_eq!(s, 404, "{text}");
    assert!(!text.contains(&d.token[4..]));
    // Without the session, and with no token at all, the same.
    let (s, _, _, _) = post(&d.url, &[("authorization", &auth)], None, &init(4)).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_session_is_bound_to_its_deployment_and_its_token() {
    let w = world();
    let a = live(w, "bound-a").await;
    let auth = bearer(&a.token);
    let sid = open_session(&a.url, &[("authorization", &auth)]).await;
    let (s, h, m, _) = post(
        &a.url,
        &[("authorization", &auth)],
        Some(&sid),
        &echo(2, "one"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(m.unwrap()["result"]["content"][0]["text"], "Echo: one");
    assert_eq!(
        h["mcp-session-id"].to_str().unwrap(),
        sid,
        "our id, not the runner's"
    );

    // The session id of deployment A presented to deployment B: unknown there.
    let b = live(w, "bound-b").await;
    let (s, _, m, _) = post(
        &b.url,
        &[("x-access-token", &b.token)],
        Some(&sid),
        &echo(3, "x"),
    )
    .await;
    assert_eq!(s, 404, "{m:?}");
    assert_eq!(m.unwrap()["error"]["code"], -32000);

    // Rotation mid-session: the old token fails on the very next request.
    let (s, rotated, _) = on(w, Method::POST, &a.owner, &a.id, "/rotate-token").await;
    assert_eq!(s, 200);
    let resp = edge_tests::stack::client()
        .post(&a.url)
        .header("authorization", &auth)
        .header("mcp-session-id", &sid)
        .header("accept", "application/json, text/event-stream")
        .json(&echo(4, "old token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let new = bearer(rotated["access_token"].as_str().unwrap());
    let (s, _, m, _) = post(
        &a.url,
        &[("authorization", &new)],
        Some(&sid),
        &echo(5, "new token"),
    )
    .await;
    assert_eq!(
        (s, m.unwrap()["result"]["content"][0]["text"].as_str()),
        (200, Some("Echo: new token"))
    );

    // Auth failures are audited for the owner (rate-limited), with no token in them.
    let (_, audit, text) = call(w, Method::GET, "/api/audit", &a.owner, None).await;
    assert!(audit.to_string().contains("mcp.auth_failed"), "{audit}");
    assert!(!text.contains(&a.token[4..]));

    // DELETE ends it on both sides; the id is then 404.
    let resp = edge_tests::stack::client()
        .delete(&a.url)
        .header("authorization", &new)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (s, _, _, _) = post(
        &a.url,
        &[("authorization", &new)],
        Some(&sid),
        &echo(6, "after"),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_machine_stopped_mid_session_is_woken_and_the_session_recovered() {
    let w = world();
    let d = live(w, "sleepy").await;
    let auth = bearer(&d.token);
    let sid = open_session(&d.url, &[("authorization", &auth)]).await;
    let (s, _, _, _) = post(
        &d.url,
        &[("authorization", &auth)],
        Some(&sid),
        &echo(2, "before"),
    )
    .await;
    assert_eq!(s, 200);
    // Stopped behind the gateway's back, as Fly's auto-stop would.
    crate::deployments::stop_machine(w, &d.machine).await;
    let (s, h, m, text) = post(
        &d.url,
        &[("authorization", &auth)],
        Some(&sid),
        &echo(3, "after the nap"),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        m.unwrap()["result"]["content"][0]["text"],
        "Echo: after the nap"
    );
    assert_eq!(
        h["mcp-session-id"].to_str().unwrap(),
        sid,
        "the same session id"
    );
    assert_eq!(
        crate::deployments::machine(w, &d.machine).await["state"],
        "started"
    );
}

#[tokio::test]
async fn twenty_concurrent_sessions_stay_isolated() {
    let w = world();
    let d = live(w, "crowd").await;
    let auth = bearer(&d.token);
    // Opened five at a time (each starts a server process: twenty node starts at once
    // outlast a client's timeout on a loaded 2-CPU machine), then all call at once.
    let mut sids = Vec::new();
    for wave in 0..4 {
        let opened = futures_util::future::join_all((0..5).map(|_| {
            let (url, auth) = (d.url.clone(), auth.clone());
            async move { open_session(&url, &[("authorization", &auth)]).await }
        }))
        .await;
        assert_eq!(opened.len(), 5, "wave {wave}");
        sids.extend(opened);
    }
    let mut tasks = Vec::new();
    for (i, sid) in sids.into_iter().enumerate() {
        let (url, auth) = (d.url.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for n in 0..3 {
                let msg = format!("client {i} call {n}");
                let (s, _, m, text) = post(
                    &url,
                    &[("authorization", &auth)],
                    Some(&sid),
                    &echo(10 + n, &msg),
                )
                .await;
                assert_eq!(s, 200, "{text}");
                got.push(
                    m.unwrap()["result"]["content"][0]["text"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
                assert_eq!(got.last().unwrap(), &format!("Echo: {msg}"));
            }
            sid
        }));
    }
    let mut sids = Vec::new();
    for t in tasks {
        sids.push(t.await.unwrap());
    }
    sids.sort();
    sids.dedup();
    assert_eq!(sids.len(), 20, "20 distinct sessions");
}

#[tokio::test]
async fn refusals_are_clear_and_early() {
    let w = world();
    let d = live(w, "guarded").await;
    let auth = bearer(&d.token);
    let client = edge_tests::stack::client();
    // No token / a wrong token: 401 with WWW-Authenticate. Unknown deployment: 404.
    let r = client.post(&d.url).json(&init(1)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = client
        .post(&d.url)
        .bearer_auth("cwk_wrong")
        .json(&init(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let unknown = w.stack.url(&format!("/api/mcp/dep_{}", "0".repeat(30)));
    assert_eq!(
        client
            .post(&unknown)
            .bearer_auth(&d.token)
            .json(&init(1))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // A hostile Origin (DNS rebinding) is refused before anything else; none is fine.
    let r = client
        .post(&d.url)
        .header("origin", "http://evil.example")
        .bearer_auth(&d.token)
        .json(&init(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // So is a page that rebound its own name to our loopback port: its Host and its
    // matching Origin are not ours (found by the conformance suite's dns-rebinding-protection).
    let r = client
        .post(&d.url)
        .header("host", "evil.example.com")
        .header("origin", "http://evil.example.com")
        .bearer_auth(&d.token)
        .json(&init(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("host_not_allowed"));
    // Over the body cap: 413.
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x".repeat(5 * 1024 * 1024)}}});
    let r = client
        .post(&d.url)
        .bearer_auth(&d.token)
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // An unknown session id: 404 from the gateway itself, as a JSON-RPC error.
    let (s, _, m, _) = post(
        &d.url,
        &[("authorization", &auth)],
        Some("00000000000000000000000000000000"),
        &echo(2, "x"),
    )
    .await;
    assert_eq!((s, m.unwrap()["id"].as_u64()), (404, Some(2)));
    // Stopped by its owner: 503 with a JSON-RPC error that says so.
    assert_eq!(on(w, Method::POST, &d.owner, &d.id, "/stop").await.0, 200);
    let (s, _, m, _) = post(&d.url, &[("authorization", &auth)], None, &init(7)).await;
    let m = m.unwrap();
    assert_eq!((s, m["id"].as_u64()), (503, Some(7)));
    assert!(m["error"]["message"].as_str().unwrap().contains("stopped"));
}

/// A stack of its own: a low rate limit, and Fly's proxy replaced by a recording
/// forwarder so the test can see what reaches the machine.
#[tokio::test]
async fn rate_limits_and_stateless_headers_pass_through() {
    let proxy = FakeServer::start();
    let low_limit = vec![("MCP_RATE_LIMIT".to_string(), "10".to_string())];
    let w = start_world(Some(&proxy), low_limit);
    let d = live(&w, "limited").await;
    let auth = bearer(&d.token);
    // The stateless era: no session object; MCP headers reach the machine untouched, and
    // a session id sent along is ignored (the era has none).
    let resp = edge_tests::stack::client()
        .post(&d.url)
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .header("mcp-param-city", "Zürich".replace('ü', "u"))
        .header("mcp-session-id", "0123456789abcdef0123456789abcdef")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "hi"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the runner serves the new era");
    assert!(resp.headers().get("mcp-session-id").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "Echo: hi", "{body}");
    assert_eq!(body["result"]["resultType"], "complete");
    let seen = proxy
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/mcp")
        .expect("the request reached the machine");
    assert_eq!(seen.header("mcp-param-city"), Some("Zurich"));
    assert_eq!(seen.header("mcp-name"), Some("echo"));
    assert_eq!(
        seen.header("fly-force-instance-id"),
        Some(d.machine.as_str())
    );
    assert!(
        seen.header("authorization").unwrap() != auth,
        "never the client's token upstream"
    );
    assert!(seen.header("mcp-session-id").is_none());

    // Past 10 requests a minute: 429 with Retry-After. Sent at once and cheap for the
    // machine (a ping without a session), so the bucket's refill (one every 6 s) cannot
    // keep up however slow a loaded test machine is.
    let answers = futures_util::future::join_all((0..15).map(|i| {
        edge_tests::stack::client()
            .post(&d.url)
            .header("authorization", &auth)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": i, "method": "ping"}))
            .send()
    }))
    .await;
    let r = answers
        .into_iter()
        .map(|r| r.expect("an answer"))
        .find(|r| r.status() == 429)
        .expect("a 429 within 15 requests");
    assert!(r.headers().contains_key("retry-after"));
}

/// A client that speaks only 2026-07-28 (the Python SDK pinned to it, no fallback) and a
/// handshake-era client use one deployment at the same time, on the same URL.
#[tokio::test]
async fn both_protocol_eras_share_a_deployment_at_the_same_time() {
    let w = world();
    let d = live(w, "both eras").await;
    let (url, token) = (d.url.clone(), d.token.clone());
    let modern = tokio::task::spawn_blocking(move || clients::python(&url, &token, "modern", None));
    let (url, token) = (d.url.clone(), d.token.clone());
    let handshake =
        tokio::task::spawn_blocking(move || clients::python(&url, &token, "basic", None));
    let (url, token) = (d.url.clone(), d.token.clone());
    let sampling =
        json!({"tool": "trigger-sampling-request", "arguments": {"prompt": "say", "maxTokens": 5}})
            .to_string();
    let modern_sampling = tokio::task::spawn_blocking(move || {
        clients::python(&url, &token, "modern", Some(&sampling))
    });
    let (modern, handshake, modern_sampling) = (
        modern.await.unwrap(),
        handshake.await.unwrap(),
        modern_sampling.await.unwrap(),
    );
    assert_eq!(modern["text"], "Echo: modern", "{modern}");
    assert_eq!(modern["discover_versions"], json!(["2026-07-28"]));
    assert_eq!(modern["server"], "mcp-servers/everything");
    assert!(modern["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "echo"));
    let requests = modern["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .all(|q| q["http"] == "POST" && q["session"].is_null() && q["version"] == "2026-07-28"),
        "only 2026-07-28 POSTs, never a session: {requests:?}"
    );
    assert_eq!(handshake["echo"], "Echo: hello from python", "{handshake}");
    assert!(
        handshake["protocol"].as_str().unwrap() < "2026",
        "{handshake}"
    );
    // A server question (sampling) reached the new-era client as input_required.
    assert_eq!(
        modern_sampling["asked"].as_array().map(Vec::len),
        Some(1),
        "{modern_sampling}"
    );
    assert!(modern_sampling["text"]
        .as_str()
        .unwrap()
        .contains("sampled through input_required"));
}

#[tokio::test]
async fn streams_resume_through_the_gateway_with_last_event_id() {
    use futures_util::StreamExt;
    let w = world();
    let d = live(w, "resumable").await;
    let auth = bearer(&d.token);
    let sid = open_session(&d.url, &[("authorization", &auth)]).await;
    let client = edge_tests::stack::client();
    // A GET stream for server-initiated messages opens on our session.
    let get = client
        .get(&d.url)
        .header("authorization", &auth)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert!(get.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(get.headers()["x-accel-buffering"], "no");
    drop(get);
    // A progress stream, cut after its first event; the rest is replayed on resume.
    let call = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {"name": "trigger-long-running-operation",
        "arguments": {"duration": 1, "steps": 4}, "_meta": {"progressToken": "resume-me"}}});
    let resp = client
        .post(&d.url)
        .header("authorization", &auth)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&call)
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    let mut last_id = None;
    while last_id.is_none() {
        let chunk = stream.next().await.expect("an event").unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
        // The first event that carries data and an id (past the priming event).
        for block in seen.split("\n\n") {
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .map(|s| s.trim().to_string());
            let has_progress = block.contains("notifications/progress");
            if let (Some(id), true) = (id, has_progress) {
                last_id = Some(id);
                break;
            }
        }
    }
    drop(stream);
    let resumed = client
        .get(&d.url)
        .header("authorization", &auth)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "2025-06-18")
        .header("last-event-id", last_id.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let mut rest = String::new();
    let mut s = resumed.bytes_stream();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !rest.contains("\"id\":41") {
        assert!(
            Instant::now() < deadline,
            "no result after resuming: {rest}"
        );
        match tokio::time::timeout(Duration::from_secs(5), s.next()).await {
            Ok(Some(Ok(chunk))) => rest.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(
        rest.contains("\"id\":41"),
        "the result arrived on the resumed stream: {rest}"
    );
}

/// Security finding 8: the session object is read, never written, before the token is
/// checked. An attacker who learned a session id but not the token sends a request with a
/// planted protocol version; later the machine loses the session and the gateway
/// re-initializes it with the version it stored — which must still be the client's.
#[tokio::test]
async fn an_unauthenticated_request_cannot_touch_a_session() {
    let proxy = FakeServer::start();
    let w = start_world(Some(&proxy), Vec::new());
    let d = live(&w, "planted").await;
    let auth = bearer(&d.token);
    let sid = open_session(&d.url, &[("authorization", &auth)]).await;
    let planted = edge_tests::stack::client()
        .post(&d.url)
        .header("authorization", "Bearer cwk_not_the_token")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "2025-03-26")
        .json(&echo(2, "planted"))
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), 401);
    // The machine stops behind the gateway's back: the runner forgets every session.
    crate::deployments::stop_machine(&w, &d.machine).await;
    // An authenticated request that states no version: the stored one is used to recover.
    let resp = edge_tests::stack::client()
        .post(&d.url)
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .json(&echo(3, "after"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Echo: after"));
    let initialized: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| {
            r.path == "/mcp"
                && String::from_utf8_lossy(&r.body).contains("notifications/initialized")
        })
        .collect();
    assert_eq!(
        initialized.len(),
        2,
        "the client's, then the gateway's re-initialization"
    );
    let reinit = &initialized[1];
    assert_eq!(
        reinit.header("mcp-protocol-version"),
        Some("2025-06-18"),
        "the session keeps the version its authenticated client negotiated"
    );
}
