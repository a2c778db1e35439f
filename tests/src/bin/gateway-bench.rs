//! `make bench-gateway`: what the gateway adds. One run, same machine, same server
//! (server-everything over stdio behind `catwalk-runner`), same load generator (mcp-load):
//! tools/call `echo` p50/p99 and the time to the first SSE progress event, at concurrency
//! 1 and 32, (a) straight to a runner and (b) through the Worker under `wrangler dev` →
//! the local machines service (Fly's proxy stand-in) → the deployment's runner. Then the
//! Worker's `.wasm` size, raw and gzipped.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use edge_tests::fake::FakeServer;
use edge_tests::runner::{publish_everything, Machines, Runner, EVERYTHING_PACKAGE};
use edge_tests::stack::{client, Stack, StackOptions};
use serde_json::{json, Value};

fn unlimited(doc: &mut toml::Table) {
    // The benchmark itself would trip the production rate limits.
    edge_tests::stack::set_rate_limit(doc, "ANALYZE_RATE_LIMITER", 100_000_000);
}

fn load(label: &str, url: &str, headers: &[String], secs: &str, levels: &str) -> Vec<Value> {
    // Built into the same target directory as this binary (`CARGO_TARGET_DIR` or not).
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("mcp-load")));
    let mut cmd = Command::new(
        beside.unwrap_or_else(|| edge_tests::repo_root().join("target/release/mcp-load")),
    );
    for h in headers {
        cmd.args(["--header", h]);
    }
    let out = cmd
        .args([
            "--url",
            url,
            "--label",
            label,
            "--seconds",
            secs,
            "--concurrency",
            levels,
        ])
        .args(["--open", "0", "--first-event", "on"])
        .output()
        .expect("run mcp-load (cargo build --release -p mcp-bench)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// One concurrency level of the floor.
struct Floor {
    c: usize,
    p50: f64,
    p99: f64,
    per_s: f64,
    cpu_ms: f64,
}

/// A floor under wrangler dev: a health answer (no storage, no upstream): latency,
/// throughput and workerd CPU per request (`cpu` reads that workerd's CPU seconds).
async fn floor(label: &str, cpu_secs: impl Fn() -> f64, url: &str, levels: &str) -> Vec<Floor> {
    let mut out = Vec::new();
    for c in levels.split(',').filter_map(|l| l.parse::<usize>().ok()) {
        let cpu = cpu_secs();
        let end = Instant::now() + Duration::from_secs(3);
        let tasks: Vec<_> = (0..c)
            .map(|_| {
                let (client, url) = (client(), url.to_string());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while Instant::now() < end {
                        let t = Instant::now();
                        if let Ok(r) = client.get(&url).send().await {
                            let _ = r.bytes().await;
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all.sort_by(f64::total_cmp);
        let f = Floor {
            c,
            p50: all[all.len() / 2],
            p99: all[all.len() * 99 / 100],
            per_s: all.len() as f64 / 3.0,
            cpu_ms: (cpu_secs() - cpu) * 1000.0 / all.len() as f64,
        };
        println!(
            "{label} c={c}: p50 {:.2} ms, p99 {:.2} ms, {:.0} req/s, workerd CPU {:.2} ms/request",
            f.p50, f.p99, f.per_s, f.cpu_ms
        );
        out.push(f);
    }
    out
}

/// Median of each `Server-Timing` part over 100 sequential echo calls through the gateway.
async fn breakdown(stack: &Stack, url: &str, auth: &str) {
    let c = client();
    let post = |body: Value, session: Option<String>| {
        let mut r = c
            .post(url)
            .header("authorization", auth)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.send()
    };
    let init = post(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}), None).await.expect("init");
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .expect("sid")
        .to_string();
    let _ = init.bytes().await;
    let _ = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(sid.clone()),
    )
    .await;
    let mut parts: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let cpu = stack.workerd_cpu_secs();
    for i in 1..=100 {
        let t = Instant::now();
        let r = post(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}}}), Some(sid.clone())).await.expect("echo");
        let head = t.elapsed().as_secs_f64() * 1000.0;
        let timing = r
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let _ = r.bytes().await;
        parts.entry("client: head".into()).or_default().push(head);
        parts
            .entry("client: whole answer".into())
            .or_default()
            .push(t.elapsed().as_secs_f64() * 1000.0);
        for p in timing.split(", ") {
            if let Some((name, dur)) = p.split_once(";dur=") {
                parts
                    .entry(name.to_string())
                    .or_default()
                    .push(dur.parse().unwrap_or(0.0));
            }
        }
    }
    let summary: Vec<String> = parts
        .iter_mut()
        .map(|(k, v)| {
            v.sort_by(f64::total_cmp);
            format!("{k} {:.1} ms", v[v.len() / 2])
        })
        .collect();
    println!(
        "gateway time to response head, median per part (Server-Timing): {}; workerd CPU {:.2} ms per call",
        summary.join(", "),
        (stack.workerd_cpu_secs() - cpu) * 1000.0 / 100.0
    );
}

/// workerd CPU per request for requests the gateway refuses at each stage, so the cost of
/// each stage shows: before the object (no token), the object hop (wrong token).
async fn refusal_cpu(stack: &Stack, url: &str) {
    let c = client();
    let mut parts = Vec::new();
    for (label, token) in [
        ("no token (edge only)", None),
        (
            "wrong token (edge + object hop)",
            Some(format!("cwk_{}", "0".repeat(64))),
        ),
    ] {
        let cpu = stack.workerd_cpu_secs();
        for _ in 0..100 {
            let mut r = c
                .post(url)
                .header("accept", "application/json, text/event-stream")
                .body("{}");
            if let Some(t) = &token {
                r = r.bearer_auth(t);
            }
            let _ = r.send().await.map(|r| r.status());
        }
        parts.push(format!(
            "{label} {:.2} ms",
            (stack.workerd_cpu_secs() - cpu) * 1000.0 / 100.0
        ));
    }
    println!("workerd CPU per refused request: {}", parts.join(", "));
}

/// One number of one phase's row (NaN when the row or the number is missing).
fn at(rows: &[Value], phase: &str, c: u64, key: &str) -> f64 {
    find(rows, phase, c)
        .and_then(|r| r[key].as_f64())
        .unwrap_or(f64::NAN)
}

fn find<'a>(rows: &'a [Value], phase: &str, c: u64) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["phase"] == phase && r["concurrency"] == c)
}

#[tokio::main]
async fn main() {
    let secs = std::env::args().nth(1).unwrap_or_else(|| "5".into());
    let levels = std::env::args().nth(2).unwrap_or_else(|| "1,32".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let machines = Machines::start(&dir.path().join("machines"), 3600);
    let registry = FakeServer::start();
    publish_everything(&registry);
    let mut vars = machines.fly_vars();
    vars.extend([
        (
            "NPM_REGISTRY_BASE".into(),
            format!("{}/npm", registry.url()),
        ),
        ("MCP_RATE_LIMIT".into(), "1000000".into()),
    ]);
    let stack = tokio::task::spawn_blocking(move || {
        Stack::start(StackOptions {
            vars,
            patch: Some(unlimited),
            ..Default::default()
        })
    })
    .await
    .expect("stack");
    let token = stack.token("bench", None);
    let c = client();
    let created: Value = c
        .post(stack.url("/api/deployments"))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "package": format!("npm:{EVERYTHING_PACKAGE}"), "credentials": {"CANARY_TOKEN": "bench"}}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("create failed: {created}"))
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = stack
            .get_json(&format!("/api/deployments/{id}"), &token)
            .await;
        if d["status"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "deployment never ran: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gateway_url = created["connection_url"].as_str().expect("url").to_string();
    let access = format!(
        "Bearer {}",
        created["access_token"].as_str().expect("token")
    );
    let runner = Runner::everything(&[("CATWALK_MAX_SESSIONS", "200")]);

    let floors = floor(
        "wrangler dev floor (GET /api/health)",
        || stack.workerd_cpu_secs(),
        &stack.url("/api/health"),
        &levels,
    )
    .await;
    if std::env::var("PROFILE").is_ok() {
        // Where the Worker's CPU goes while sequential echo calls run (see bench/profile.mjs).
        use std::io::BufRead;
        let mut profiler = Command::new("node")
            .arg(edge_tests::repo_root().join("bench/profile.mjs"))
            .args([stack.inspector_port.to_string(), "0".to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node");
        let mut lines = std::io::BufReader::new(profiler.stdout.take().expect("stdout")).lines();
        // Wait until sampling runs, so the profile covers exactly the calls below.
        for line in lines.by_ref() {
            if line.map(|l| l.contains("started")).unwrap_or(true) {
                break;
            }
        }
        let mut calls = 0u32;
        for _ in 0..3 {
            breakdown(&stack, &gateway_url, &access).await;
            calls += 102; // 100 echo calls + initialize + initialized, per breakdown
        }
        drop(profiler.stdin.take());
        let text: Vec<String> = lines.map_while(Result::ok).collect();
        let _ = profiler.wait();
        for line in &text {
            match serde_json::from_str::<Value>(line) {
                Ok(v) if v["profile"] == "busy_ms" => {
                    let per = |k: &str| v[k].as_f64().unwrap_or(f64::NAN) / f64::from(calls);
                    println!(
                        "Worker isolate CPU per gateway call (V8 profile over {calls} calls): {:.2} ms = our Rust (wasm) {:.2} + JS glue {:.2} + runtime {:.2}",
                        per("busy"), per("wasm"), per("glue"), per("runtime")
                    );
                }
                _ => println!("{line}"),
            }
        }
        stack.stop();
        return;
    }
    breakdown(&stack, &gateway_url, &access).await;
    refusal_cpu(&stack, &gateway_url).await;
    let direct = load(
        "direct-runner",
        &runner.mcp_url(),
        &[format!("Authorization: Bearer {}", runner.secret)],
        &secs,
        &levels,
    );
    let cpu = stack.workerd_cpu_secs();
    let gateway = load(
        "gateway",
        &gateway_url,
        &[format!("Authorization: {access}")],
        &secs,
        &levels,
    );
    let gateway_calls: f64 = gateway.iter().filter_map(|r| r["calls"].as_f64()).sum();
    let gateway_cpu_ms = (stack.workerd_cpu_secs() - cpu) * 1000.0 / gateway_calls.max(1.0);
    // The same deployment's runner through the machines service's ingress alone (our local
    // stand-in for Fly's proxy, which the gateway path also crosses).
    let listed: Value = c
        .get(machines.api(&format!("/machines?metadata.catwalk_deployment={id}")))
        .bearer_auth(&machines.token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let m = &listed[0];
    let secret = m["config"]["env"]["CATWALK_UPSTREAM_SECRET"]
        .as_str()
        .unwrap_or_default();
    let machine_id = m["id"].as_str().unwrap_or_default();
    let ingress_url = format!("{}/mcp", machines.base_url);
    let proxied = load(
        "machines-ingress",
        &ingress_url,
        &[
            format!("Authorization: Bearer {secret}"),
            format!("fly-force-instance-id: {machine_id}"),
        ],
        &secs,
        &levels,
    );
    // The same machine behind the bare lower-bound Worker (bench/bare-worker), last, on
    // the same CPUs.
    let bare_token = "bench-bare-token";
    let bare = tokio::task::spawn_blocking({
        let (ingress_url, machine_id, secret) = (
            ingress_url.clone(),
            machine_id.to_string(),
            secret.to_string(),
        );
        move || {
            edge_tests::bare::BareWorker::start(&edge_tests::bare::BareTarget {
                ingress_url: &ingress_url,
                machine_id: &machine_id,
                secret: &secret,
                token: bare_token,
            })
        }
    })
    .await
    .expect("bare worker");
    let bare_floors = floor(
        "bare JS Worker floor (GET /health)",
        || bare.workerd_cpu_secs(),
        &bare.url("/health"),
        &levels,
    )
    .await;
    let bare_auth = [format!("Authorization: Bearer {bare_token}")];
    let mut bare_rows = Vec::new();
    for (label, path) in [
        ("bare pass", "/mcp"),
        ("bare object + pass", "/mcp-do"),
        ("bare pass via object", "/mcp-via-do"),
    ] {
        let cpu = bare.workerd_cpu_secs();
        let rows = load(label, &bare.url(path), &bare_auth, &secs, &levels);
        let calls: f64 = rows.iter().filter_map(|r| r["calls"].as_f64()).sum();
        let cpu_ms = (bare.workerd_cpu_secs() - cpu) * 1000.0 / calls.max(1.0);
        bare_rows.push((label, rows, cpu_ms));
    }

    println!(
        "\n{:<14} {:>4} {:>10} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "phase", "c", "direct p50", "gw p50", "added p50", "direct p99", "gw p99", "added p99"
    );
    for phase in ["load", "first_event"] {
        for c in levels.split(',').filter_map(|l| l.parse::<u64>().ok()) {
            if let Some(why) = [&direct, &gateway, &proxied]
                .iter()
                .filter_map(|rows| find(rows, phase, c))
                .find_map(|r| r["error"].as_str().map(|e| format!("{}: {e}", r["label"])))
            {
                // mcp-load could not open its sessions (a runner refusing or timing out
                // under load): say so instead of a row of NaN.
                println!("{phase:<14} {c:>4} not measured: {why}");
                continue;
            }
            let (Some(d), Some(g)) = (find(&direct, phase, c), find(&gateway, phase, c)) else {
                println!(
                    "{phase:<14} {c:>4} missing: direct {:?} gateway {:?}",
                    find(&direct, phase, c),
                    find(&gateway, phase, c)
                );
                continue;
            };
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:<14} {:>4} {:>10.2} {:>10.2} {:>10.2} {:>12.2} {:>12.2} {:>10.2}   (errors {} / {})",
                if phase == "load" { "echo" } else { "first event" },
                c,
                f(d, "p50_ms"),
                f(g, "p50_ms"),
                f(g, "p50_ms") - f(d, "p50_ms"),
                f(d, "p99_ms"),
                f(g, "p99_ms"),
                f(g, "p99_ms") - f(d, "p99_ms"),
                d["errors"],
                g["errors"],
            );
        }
    }
    for phase in ["load", "first_event"] {
        for c in levels.split(',').filter_map(|l| l.parse::<u64>().ok()) {
            if let Some(p) = find(&proxied, phase, c) {
                println!(
                    "via the machines ingress only: {phase} c={c} p50 {:.2} ms p99 {:.2} ms",
                    p["p50_ms"].as_f64().unwrap_or(f64::NAN),
                    p["p99_ms"].as_f64().unwrap_or(f64::NAN)
                );
            }
        }
    }
    goals(&floors, &direct, &gateway, &proxied, gateway_cpu_ms);
    let under = Under {
        direct: &direct,
        ingress: &proxied,
    };
    lower_bound(
        &floors,
        &bare_floors,
        &under,
        &gateway,
        gateway_cpu_ms,
        &bare_rows,
    );
    let wasm = edge_tests::repo_root().join("build/index_bg.wasm");
    if let Ok(bytes) = std::fs::read(&wasm) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).expect("gzip");
        let gz = gz.finish().expect("gzip");
        println!(
            "\nworker wasm: {} bytes raw, {} bytes gzipped",
            bytes.len(),
            gz.len()
        );
    }
    stack.stop();
}

/// The issue-12 targets, each computed from this run's own numbers.
fn goals(floors: &[Floor], direct: &[Value], gateway: &[Value], proxied: &[Value], cpu_ms: f64) {
    let floor_at = |c: usize| floors.iter().find(|f| f.c == c);
    println!("\ntargets (issue 12), from this run:");
    if let Some(f1) = floor_at(1) {
        let base50 = f1.p50 + at(proxied, "load", 1, "p50_ms");
        let base99 = f1.p99 + at(proxied, "load", 1, "p99_ms");
        let (g50, g99) = (
            at(gateway, "load", 1, "p50_ms"),
            at(gateway, "load", 1, "p99_ms"),
        );
        println!(
            "  c=1 echo added over (floor + ingress alone): p50 {:.2} ms (target <= 3), p99 {:.2} ms (target <= 10)",
            g50 - base50,
            g99 - base99
        );
    }
    if let Some(f32) = floor_at(32) {
        let per_s = at(gateway, "load", 32, "calls_per_s");
        println!(
            "  c=32 throughput: gateway {:.0}/s vs floor {:.0}/s = {:.0}% (target >= 70%)",
            per_s,
            f32.per_s,
            100.0 * per_s / f32.per_s
        );
        // What lies under the gateway on the same CPUs: the machines ingress and the runner
        // alone, with no Worker in the path.
        let under = at(proxied, "load", 32, "calls_per_s");
        println!(
            "    (for scale: the machines ingress alone, no Worker, does {under:.0}/s = {:.0}% of the floor)",
            100.0 * under / f32.per_s
        );
    }
    let (d, g) = (
        at(direct, "first_event", 32, "p50_ms"),
        at(gateway, "first_event", 32, "p50_ms"),
    );
    println!(
        "  c=32 first SSE event p50: gateway {g:.2} ms vs direct {d:.2} ms = {:.2}x (target <= 2x)",
        g / d
    );
    let floor_cpu = floors.first().map(|f| f.cpu_ms).unwrap_or(f64::NAN);
    println!(
        "  workerd CPU per proxied request: {cpu_ms:.2} ms (Worker + gateway object + runtime; the floor's own request costs {floor_cpu:.2} ms, so the gateway adds {:.2} ms; target <= 2)",
        cpu_ms - floor_cpu
    );
}

/// The real gateway next to the bare lower-bound Worker, each against the issue-12 targets:
/// what a Worker doing only the unavoidable work reaches on this machine.
/// What runs under any gateway: the runner straight, and through the machines ingress.
struct Under<'a> {
    direct: &'a [Value],
    ingress: &'a [Value],
}

fn lower_bound(
    floors: &[Floor],
    bare_floors: &[Floor],
    under: &Under<'_>,
    gateway: &[Value],
    gateway_cpu_ms: f64,
    bare: &[(&str, Vec<Value>, f64)],
) {
    let floor_of = |f: &[Floor], c: usize| f.iter().find(|f| f.c == c).map(|f| (f.p50, f.per_s));
    let (Some((floor1, _)), Some((_, floor32))) = (floor_of(floors, 1), floor_of(floors, 32))
    else {
        return;
    };
    // "Added" as in the targets: over the floor plus the machines ingress alone.
    let base1 = floor1 + at(under.ingress, "load", 1, "p50_ms");
    let direct_first = at(under.direct, "first_event", 32, "p50_ms");
    println!(
        "\nthe lower bound: a bare JS Worker on the same wrangler dev and machine (bench/bare-worker)"
    );
    if let (Some((b1, _)), Some((_, b32))) = (floor_of(bare_floors, 1), floor_of(bare_floors, 32)) {
        println!(
            "  its floor: p50 {b1:.2} ms at c=1, {b32:.0}/s at c=32 (ours: {floor1:.2} ms, {floor32:.0}/s)"
        );
    }
    println!(
        "  {:<22} {:>16} {:>18} {:>22} {:>14}",
        "path", "c=1 p50 (added)", "c=32 /s (% floor)", "c=32 1st event (x dir)", "CPU ms/call"
    );
    let mut rows: Vec<(&str, &[Value], f64)> = bare
        .iter()
        .map(|(label, rows, cpu)| (*label, rows.as_slice(), *cpu))
        .collect();
    rows.push(("our gateway", gateway, gateway_cpu_ms));
    for (label, r, cpu) in rows {
        let p50 = at(r, "load", 1, "p50_ms");
        let per_s = at(r, "load", 32, "calls_per_s");
        let first = at(r, "first_event", 32, "p50_ms");
        println!(
            "  {label:<22} {:>7.2} ({:>5.2}) {:>9.0} ({:>4.0}%) {:>12.1} ({:>5.1}x) {:>14.2}",
            p50,
            p50 - base1,
            per_s,
            100.0 * per_s / floor32,
            first,
            first / direct_first,
            cpu
        );
    }
    println!("  (targets: added <= 3 ms, >= 70% of the floor, <= 2x direct, <= 2 ms CPU)");
}
