//! The Fly Machines API misbehaving: a fault proxy (a fake speaking Fly's wire format)
//! sits between the Worker and the local machines service and, on cue, answers 429, 5xx,
//! hangs past our timeout, or returns malformed JSON — sometimes *after* forwarding, so the
//! action took effect and only its answer was lost. Every phase ends with a clear status
//! and exactly as many machines as there should be (never a twin, never an orphan). The
//! phases share one stack and run in order, because the faults are queued per route.

use edge_tests::fake::{FakeServer, Reply};
use reqwest::Method;
use serde_json::{json, Value};

use crate::deployments::{
    call, create_body, deploy_running, machines_of, on, person, start_world, wait_for, wait_status,
    World,
};

const CREATE: &str = "/v1/apps/catwalk-test/machines";

async fn creates_then(
    w: &World,
    proxy: &FakeServer,
    token: &str,
    name: &str,
    fault: Vec<Reply>,
) -> (String, Value) {
    for r in fault {
        proxy.push("POST", CREATE, r);
    }
    let (s, b, text) = call(
        w,
        Method::POST,
        "/api/deployments",
        token,
        Some(create_body(name, "fault-secret")),
    )
    .await;
    assert_eq!(s, 201, "{text}");
    let id = b["id"].as_str().unwrap().to_string();
    let settled = wait_for(w, token, &id, |d| {
        d["status"] == "running" || d["status"] == "failed"
    })
    .await;
    (id, settled)
}

/// Runs the reconcile cron once on `w`'s stack.
pub async fn run_cron(w: &World) {
    let r = edge_tests::stack::client()
        .get(w.stack.url("/__scheduled"))
        .query(&[("cron", "*/5 * * * *")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn platform_faults_end_in_a_clear_status_with_no_twin_or_orphan() {
    let proxy = FakeServer::start();
    let w = start_world(Some(&proxy), Vec::new());
    let token = person(&w);
    let base = w.machines.base_url.clone();
    let posts = || proxy.count("POST", CREATE);

    // 429 with Retry-After, then through: one machine.
    let before = posts();
    let (id, d) = creates_then(
        &w,
        &proxy,
        &token,
        "rate-limited",
        vec![
            Reply::json(429, &json!({"error": "rate limited", "status": "unknown"}))
                .with_header("retry-after", "1"),
        ],
    )
    .await;
    assert_eq!(d["status"], "running", "{d}");
    assert_eq!(machines_of(&w, &id).await.len(), 1);
    assert_eq!(posts() - before, 2, "one refused, one accepted");

    // 500 after the machine was made: adopted, not made twice.
    let before = posts();
    let (id, d) = creates_then(
        &w,
        &proxy,
        &token,
        "lost-answer",
        vec![Reply::forward_then(
            base.clone(),
            Reply::json(500, &json!({"error": "internal"})),
        )],
    )
    .await;
    assert_eq!(d["status"], "running", "{d}");
    assert_eq!(machines_of(&w, &id).await.len(), 1, "no twin");
    assert_eq!(posts() - before, 1, "the create was not re-sent");

    // The create hangs past our timeout after taking effect: adopted as well.
    let (id, d) = creates_then(
        &w,
        &proxy,
        &token,
        "timed-out",
        vec![Reply::forward_then(base.clone(), Reply::Hang)],
    )
    .await;
    assert_eq!(d["status"], "running", "{d}");
    assert_eq!(machines_of(&w, &id).await.len(), 1, "no twin");

    // Malformed JSON for a machine that was made: failed, and the machine is cleaned up.
    let (id, d) = creates_then(
        &w,
        &proxy,
        &token,
        "malformed",
        vec![Reply::forward_then(
            base.clone(),
            Reply::malformed_json(200),
        )],
    )
    .await;
    assert_eq!(d["status"], "failed", "{d}");
    let msg = d["error_message"].as_str().unwrap();
    assert!(
        msg.contains("malformed") && !msg.contains("fault-secret"),
        "{msg}"
    );
    assert!(machines_of(&w, &id).await.is_empty(), "no orphan");

    // The platform down for every try: failed with the status; a restart later succeeds.
    let (id, d) = creates_then(
        &w,
        &proxy,
        &token,
        "down",
        (0..4).map(|_| Reply::status(503)).collect(),
    )
    .await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(d["error_message"].as_str().unwrap().contains("503"), "{d}");
    assert!(machines_of(&w, &id).await.is_empty());
    let (s, b, _) = on(&w, Method::POST, &token, &id, "/restart").await;
    assert_eq!((s, b["status"].as_str()), (200, Some("deploying")));
    let d = wait_status(&w, &token, &id, "running").await;
    let machine = d["machine"]["id"].as_str().unwrap().to_string();

    // Reading state while Fly's GET fails: the deployment still answers, state unknown.
    proxy.push("GET", &format!("{CREATE}/{machine}"), Reply::status(500));
    let (s, d, _) = on(&w, Method::GET, &token, &id, "").await;
    assert_eq!(
        (s, d["machine"]["state"].as_str()),
        (200, Some("unknown")),
        "{d}"
    );

    // Stop while Fly errors: 503 with Retry-After, status unchanged.
    for _ in 0..4 {
        proxy.push(
            "POST",
            &format!("{CREATE}/{machine}/stop"),
            Reply::status(500),
        );
    }
    let r = edge_tests::stack::client()
        .post(w.stack.url(&format!("/api/deployments/{id}/stop")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(
        wait_status(&w, &token, &id, "running").await["status"],
        "running"
    );

    // Delete while Fly is down: 503, left `deleting`; the next DELETE finishes the job.
    for _ in 0..4 {
        proxy.push("DELETE", &format!("{CREATE}/{machine}"), Reply::status(502));
    }
    let (s, _, _) = on(&w, Method::DELETE, &token, &id, "").await;
    assert_eq!(s, 503);
    assert_eq!(
        wait_status(&w, &token, &id, "deleting").await["status"],
        "deleting"
    );
    let (s, _, _) = on(&w, Method::DELETE, &token, &id, "").await;
    assert_eq!(s, 204);
    assert!(machines_of(&w, &id).await.is_empty());

    // Reconcile: a machine destroyed behind our back fails its deployment; a machine
    // naming a deployment that does not exist is destroyed.
    let (id, _, running) = deploy_running(&w, &token, "vanishing", "v").await;
    let machine = running["machine"]["id"].as_str().unwrap();
    let gone = edge_tests::stack::client()
        .delete(w.machines.api(&format!("/machines/{machine}?force=true")))
        .bearer_auth(&w.machines.token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 200);
    let ghost = format!("dep_{}", edge_tests::random_hex(15));
    let made = edge_tests::stack::client()
        .post(w.machines.api("/machines"))
        .bearer_auth(&w.machines.token)
        .json(&json!({"name": "ghost", "config": {"image": "x", "metadata": {"catwalk_deployment": ghost},
            "env": {"CATWALK_LAUNCH": "{\"argv\":[\"cat\"]}", "CATWALK_UPSTREAM_SECRET": "ghost-secret-0123456789"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200);
    run_cron(&w).await;
    let d = wait_status(&w, &token, &id, "failed").await;
    assert!(
        d["error_message"]
            .as_str()
            .unwrap()
            .contains("no longer exists"),
        "{d}"
    );
    assert!(machines_of(&w, &ghost).await.is_empty(), "orphan destroyed");
    let logs = w.stack.logs();
    assert!(!logs.contains("fault-secret") && !logs.contains("ghost-secret"));
}
