//! `make bench-analyze`: POST /api/analyze latency on the local stack (real wrangler dev,
//! fake GitHub and npm on loopback): cache misses (`refresh: true`, the whole pipeline)
//! versus cache hits, next to the stack's floor (`GET /api/health`, no binding touched) in
//! the same run. Prints p50/p99 in milliseconds.

use std::time::Instant;

use edge_tests::fake::{FakeServer, Reply};
use edge_tests::stack::{client, Stack, StackOptions};
use serde_json::json;

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize]
}

#[tokio::main]
async fn main() {
    let misses: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let hits: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let fake = FakeServer::start();
    let base = fake.url();
    fake.on(
        "GET",
        "/gh-api/repos/bench/srv",
        Reply::json(200, &json!({"default_branch": "main"})),
    );
    fake.on("GET", "/gh-raw/bench/srv/main/package.json", Reply::text(200, &json!({"name": "@bench/srv", "bin": "x", "dependencies": {"@modelcontextprotocol/sdk": "1"}}).to_string()));
    fake.on("GET", "/gh-raw/bench/srv/main/README.md", Reply::text(200, "```json\n{\"mcpServers\": {\"b\": {\"command\": \"npx\", \"args\": [\"-y\", \"@bench/srv\"], \"env\": {\"BENCH_TOKEN\": \"<t>\"}}}}\n```"));
    fake.on(
        "GET",
        "/npm/@bench%2fsrv",
        Reply::json(
            200,
            &json!({"dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {}}}),
        ),
    );
    let stack = tokio::task::spawn_blocking(move || {
        Stack::start(StackOptions {
            vars: vec![
                ("GITHUB_API_BASE".into(), format!("{base}/gh-api")),
                ("GITHUB_RAW_BASE".into(), format!("{base}/gh-raw")),
                ("NPM_REGISTRY_BASE".into(), format!("{base}/npm")),
            ],
            // The benchmark's misses would trip the per-person analysis quota.
            patch: Some(|doc| {
                edge_tests::stack::set_rate_limit(doc, "ANALYZE_RATE_LIMITER", 100_000_000)
            }),
            ..Default::default()
        })
    })
    .await
    .expect("stack");
    let token = stack.token("bench", None);
    let c = client();
    let run = |refresh: bool| {
        let (c, url, token) = (c.clone(), stack.url("/api/analyze"), token.clone());
        async move {
            let t = Instant::now();
            let r = c
                .post(url)
                .bearer_auth(token)
                .json(&json!({"repo_url": "https://github.com/bench/srv", "refresh": refresh}))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 200);
            let _ = r.bytes().await;
            t.elapsed().as_secs_f64() * 1000.0
        }
    };
    for _ in 0..5 {
        run(true).await; // warm-up: isolate start, first D1/KV touches
    }
    let mut miss = Vec::new();
    for _ in 0..misses {
        miss.push(run(true).await);
    }
    let mut hit = Vec::new();
    let mut floor = Vec::new();
    // Interleaved, so a load spike from elsewhere on the machine lands on both alike.
    for _ in 0..hits {
        hit.push(run(false).await);
        let t = Instant::now();
        let r = c
            .get(stack.url("/api/health"))
            .send()
            .await
            .expect("request");
        let _ = r.bytes().await;
        floor.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    miss.sort_by(f64::total_cmp);
    hit.sort_by(f64::total_cmp);
    floor.sort_by(f64::total_cmp);
    println!(
        "analyze miss (refresh, {misses} runs): p50 {:.2} ms  p99 {:.2} ms",
        pct(&miss, 50.0),
        pct(&miss, 99.0)
    );
    println!(
        "analyze hit  (cache,   {hits} runs): p50 {:.2} ms  p99 {:.2} ms",
        pct(&hit, 50.0),
        pct(&hit, 99.0)
    );
    println!(
        "floor        (health,  {hits} runs): p50 {:.2} ms  p99 {:.2} ms",
        pct(&floor, 50.0),
        pct(&floor, 99.0)
    );
    stack.stop();
}
