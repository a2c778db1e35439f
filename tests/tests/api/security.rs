//! Findings of the security review (issue 17) that need a whole stack: which Fly account a
//! machine operation uses, the orphan sweep over every machine, the upstream secret
//! rotating with the access token, and bounded usage rows. Analysis findings are in
//! `analyze.rs`, the session rule in `gateway.rs`, identity in `auth.rs`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::deploy_faults::run_cron;
use crate::deployments::{
    call, deploy_running, machine, machines_of, on, person, wait_for, world, World,
};

/// The local machines service under another app name (it serves any app).
fn app_api(w: &World, app: &str, path: &str) -> String {
    format!("{}/v1/apps/{app}/machines{path}", w.machines.base_url)
}

async fn in_app(w: &World, app: &str, deployment: &str) -> Vec<Value> {
    let list: Value = edge_tests::stack::client()
        .get(app_api(
            w,
            app,
            &format!("?metadata.catwalk_deployment={deployment}"),
        ))
        .bearer_auth(&w.machines.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] != "destroyed")
        .cloned()
        .collect()
}

/// Finding 3: set your own Fly account, then delete deployments made in the operator's:
/// their machines go (they used to stay behind, holding plaintext credentials). And a
/// deployment made in your own account keeps being managed there after you clear it.
#[tokio::test]
async fn machine_operations_use_the_account_the_machine_lives_in() {
    let w = world();
    let token = person(w);
    let (a, _, _) = deploy_running(w, &token, "acct-a", "acct-secret-a").await;
    let (b, _, _) = deploy_running(w, &token, "acct-b", "acct-secret-b").await;
    let (s, body, _) = call(
        w,
        Method::PUT,
        "/api/settings",
        &token,
        Some(json!({"fly_api_token": w.machines.token, "fly_app": "personal-app"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    for id in [&a, &b] {
        let (s, _, text) = on(w, Method::DELETE, &token, id, "").await;
        assert_eq!(s, 204, "{text}");
        assert!(
            machines_of(w, id).await.is_empty(),
            "{id}: a machine stayed behind"
        );
    }

    // A deployment made now lives in the person's own app …
    let (c, _, _) = deploy_running(w, &token, "acct-c", "acct-secret-c").await;
    assert_eq!(in_app(w, "personal-app", &c).await.len(), 1);
    assert!(
        machines_of(w, &c).await.is_empty(),
        "not in the operator's app"
    );
    let sealed = w.stack.query(&format!(
        "SELECT * FROM machine_accounts WHERE deployment_id = '{c}'"
    ));
    assert_eq!(sealed.len(), 1, "the account's token is recorded with it");
    assert!(
        !sealed[0].to_string().contains(&w.machines.token),
        "sealed, not plain"
    );

    // … and stays managed there when the settings are cleared.
    let (s, _, _) = call(
        w,
        Method::PUT,
        "/api/settings",
        &token,
        Some(json!({"fly_api_token": null, "fly_app": null})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body, text) = on(w, Method::POST, &token, &c, "/stop").await;
    assert_eq!(
        (s, body["status"].as_str()),
        (200, Some("stopped")),
        "{text}"
    );
    let m = &in_app(w, "personal-app", &c).await[0];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = edge_tests::stack::client()
            .get(app_api(
                w,
                "personal-app",
                &format!("/{}", m["id"].as_str().unwrap()),
            ))
            .bearer_auth(&w.machines.token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["state"]
            .clone();
        if state == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "never stopped: {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, _, text) = on(w, Method::DELETE, &token, &c, "").await;
    assert_eq!(s, 204, "{text}");
    assert!(
        in_app(w, "personal-app", &c).await.is_empty(),
        "nothing stranded"
    );
    assert!(w
        .stack
        .query(&format!(
            "SELECT * FROM machine_accounts WHERE deployment_id = '{c}'"
        ))
        .is_empty());
}

/// Finding 4: the orphan sweep looks at every machine, not the first 25: with 25 live
/// machines listed before it, an orphan is still found and destroyed.
#[tokio::test]
async fn the_orphan_sweep_finds_an_orphan_behind_25_live_machines() {
    let w = world();
    let token = person(w);
    let (live, _, _) = deploy_running(w, &token, "sweep-live", "sweep-secret").await;
    let make = |dep: String| async move {
        let r = edge_tests::stack::client()
            .post(w.machines.api("/machines"))
            .bearer_auth(&w.machines.token)
            .json(&json!({"skip_launch": true, "config": {"image": "x", "metadata": {"catwalk_deployment": dep},
                "env": {"CATWALK_LAUNCH": "{\"argv\":[\"cat\"]}", "CATWALK_UPSTREAM_SECRET": "sweep-upstream-0123456789"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    for _ in 0..25 {
        make(live.clone()).await;
    }
    let ghost = format!("dep_{}", edge_tests::random_hex(15));
    make(ghost.clone()).await;
    assert_eq!(machines_of(w, &live).await.len(), 26);
    run_cron(w).await;
    assert!(
        machines_of(w, &ghost).await.is_empty(),
        "the orphan was destroyed"
    );
    assert_eq!(
        machines_of(w, &live).await.len(),
        26,
        "live machines are kept"
    );
    let (s, _, _) = on(w, Method::DELETE, &token, &live, "").await;
    assert_eq!(s, 204);
    assert!(machines_of(w, &live).await.is_empty());
}

fn upstream_secret_of(m: &Value) -> String {
    m["config"]["env"]["CATWALK_UPSTREAM_SECRET"]
        .as_str()
        .expect("the machine's upstream secret")
        .to_string()
}

/// The runner's answer to an `initialize` presented with `secret`, through the local
/// stand-in for Fly's proxy.
async fn runner_status(w: &World, machine_id: &str, secret: &str) -> u16 {
    edge_tests::stack::client()
        .post(format!("{}/mcp", w.machines.base_url))
        .header("fly-force-instance-id", machine_id)
        .header("authorization", format!("Bearer {secret}"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Finding 10: rotating the access token rotates the upstream secret too: the machine is
/// updated with a new one, the old one is refused by the runner, and the gateway works.
#[tokio::test]
async fn rotating_the_token_rotates_the_upstream_secret_on_the_machine() {
    let w = world();
    let token = person(w);
    let (id, _, running) = deploy_running(w, &token, "rotor", "rotor-secret").await;
    let machine_id = running["machine"]["id"].as_str().unwrap().to_string();
    let old = upstream_secret_of(&machine(w, &machine_id).await);
    let (s, body, text) = on(w, Method::POST, &token, &id, "/rotate-token").await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(body["upstream_secret_rotated"], true);
    let new_token = body["access_token"].as_str().unwrap().to_string();
    let new = upstream_secret_of(&machine(w, &machine_id).await);
    assert_ne!(old, new, "the machine has a new upstream secret");
    assert!(!text.contains(&new) && !text.contains(&old), "never shown");
    let deadline = Instant::now() + Duration::from_secs(30);
    while runner_status(w, &machine_id, &new).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the rebooted runner never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        runner_status(w, &machine_id, &old).await,
        401,
        "the old secret is dead"
    );
    let url = w.stack.url(&format!("/api/mcp/{id}"));
    let py = tokio::task::spawn_blocking(move || {
        edge_tests::clients::python(&url, &new_token, "basic", None)
    })
    .await
    .unwrap();
    assert_eq!(py["echo"], "Echo: hello from python", "{py}");
    assert!(
        !w.stack.logs().contains(&new),
        "the new secret reached the log"
    );
    let d = wait_for(w, &token, &id, |d| d["status"] == "running").await;
    assert_eq!(d["status"], "running");
    on(w, Method::DELETE, &token, &id, "").await;
}

/// Finding 5: tool names are chosen by clients; a deployment keeps a bounded number of
/// usage rows however many distinct names it sees.
#[tokio::test]
async fn usage_rows_stay_bounded_whatever_tool_names_clients_send() {
    let w = world();
    let token = person(w);
    let (id, access, _) = deploy_running(w, &token, "names", "names-secret").await;
    let url = w.stack.url(&format!("/api/mcp/{id}"));
    for i in 0..100 {
        let r = edge_tests::stack::client()
            .post(&url)
            .bearer_auth(&access)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .json(&json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": format!("tool-{i}-{}", "x".repeat(300)), "arguments": {}}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{}", r.status());
    }
    let (s, usage, text) = on(w, Method::GET, &token, &id, "/usage").await;
    assert_eq!(s, 200, "{text}");
    let tools = usage["tool_calls"].as_object().unwrap();
    assert!(tools.len() <= 65, "{} tool rows", tools.len());
    assert!(
        tools.keys().all(|k| k.len() <= 128),
        "names are bounded in bytes"
    );
    assert_eq!(
        tools.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        100
    );
    assert!(tools["(other)"].as_u64().unwrap() >= 36, "{usage}");
    let rows = w.stack.query(&format!(
        "SELECT COUNT(*) AS n FROM usage_counters WHERE deployment_id = '{id}'"
    ));
    assert!(rows[0]["n"].as_i64().unwrap() <= 65 + 30, "{rows:?}");
    on(w, Method::DELETE, &token, &id, "").await;
}
