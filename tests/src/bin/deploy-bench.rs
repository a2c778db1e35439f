//! `make bench-deploy`: the deployment lifecycle on the local stack (real wrangler dev, the
//! local machines service, a fake npm registry): `POST /api/deployments` latency, time from
//! the 201 to `running` (Deployer alarm → Fly create → wait started), `GET` with the live
//! machine state, rotate-token and `DELETE` (machine destroyed). Prints p50/p99 in ms.

use std::time::{Duration, Instant};

use edge_tests::fake::{FakeServer, Reply};
use edge_tests::runner::Machines;
use edge_tests::stack::{client, Stack, StackOptions};
use serde_json::{json, Value};

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn report(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    println!(
        "{name:<28} n={:<3} p50 {:>8.2} ms  p99 {:>8.2} ms",
        v.len(),
        pct(&v, 50.0),
        pct(&v, 99.0)
    );
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let machines = Machines::start(&dir.path().join("machines"), 600);
    let fake = FakeServer::start();
    fake.on("GET", "/npm/@bench%2fdeploy", Reply::json(200, &json!({"name": "@bench/deploy", "readme": "",
        "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {"name": "@bench/deploy", "version": "1.0.0"}}})));
    let vars = vec![
        ("NPM_REGISTRY_BASE".into(), format!("{}/npm", fake.url())),
        ("FLY_API_BASE".into(), machines.base_url.clone()),
        ("FLY_API_TOKEN".into(), machines.token.clone()),
        ("FLY_APP".into(), "catwalk-test".into()),
        ("MAX_DEPLOYMENTS_PER_USER".into(), "1000".into()),
    ];
    let stack = tokio::task::spawn_blocking(move || {
        Stack::start(StackOptions {
            vars,
            ..Default::default()
        })
    })
    .await
    .expect("stack");
    let token = stack.token("bench", None);
    let c = client();
    let (mut create, mut to_running, mut get, mut rotate, mut delete) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 2 {
        let t = Instant::now();
        let r = c
            .post(stack.url("/api/deployments"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("bench-{i}"), "package": "npm:@bench/deploy"}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.expect("json");
        let created = ms(t);
        let id = body["id"].as_str().expect("id").to_string();
        let path = format!("/api/deployments/{id}");
        let url = stack.url(&path);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let d = stack.get_json(&path, &token).await;
            if d["status"] == "running" {
                break;
            }
            assert!(d["status"] != "failed" && Instant::now() < deadline, "{d}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let running = ms(t);
        let t = Instant::now();
        let d = stack.get_json(&path, &token).await;
        assert_eq!(d["machine"]["state"], "started");
        let got = ms(t);
        let t = Instant::now();
        let r = c
            .post(format!("{url}/rotate-token"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("rotate");
        assert_eq!(r.status(), 200);
        let rotated = ms(t);
        let t = Instant::now();
        let r = c
            .delete(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("delete");
        assert_eq!(r.status(), 204);
        let deleted = ms(t);
        if i >= 2 {
            // The first two warm the isolate, D1, KV and the Durable Object classes.
            create.push(created);
            to_running.push(running);
            get.push(got);
            rotate.push(rotated);
            delete.push(deleted);
        }
    }
    report("POST /api/deployments (201)", create);
    report("201 → running (poll 20 ms)", to_running);
    report("GET with live machine state", get);
    report("rotate-token", rotate);
    report("DELETE (machine destroyed)", delete);
    stack.stop();
}
