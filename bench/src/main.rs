//! `mcp-load`: drives an MCP Streamable HTTP endpoint with `tools/call echo` from many
//! sessions at once and prints latency percentiles, throughput, the time to open N
//! sessions, and (given the server's pid) the memory of its process tree per session.
//!
//! usage: mcp-load --url URL [--header NAME:VALUE]… [--concurrency 1,16,64] [--seconds 5]
//!                 [--warmup 1] [--open 64] [--pid PID] [--label NAME] [--first-event]
//! `--first-event` adds, per concurrency level, the time from sending a tools/call of
//! server-everything's `trigger-long-running-operation` to its first SSE progress event.
//! Prints one JSON object per line; `bench/run.sh` runs it against each bridge.

use std::time::{Duration, Instant};

use mcp_bench::{percentile, tree_rss_kib, Session};
use reqwest::Client;
use serde_json::json;

struct Args {
    url: String,
    headers: Vec<(String, String)>,
    concurrency: Vec<usize>,
    seconds: f64,
    warmup: f64,
    open: usize,
    pid: Option<u32>,
    label: String,
    first_event: bool,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        headers: vec![],
        concurrency: vec![1, 16, 64],
        seconds: 5.0,
        warmup: 1.0,
        open: 64,
        pid: None,
        label: "target".into(),
        first_event: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => a.url = v,
            "--header" => {
                if let Some((k, val)) = v.split_once(':') {
                    a.headers.push((k.trim().into(), val.trim().into()));
                }
            }
            "--concurrency" => {
                a.concurrency = v.split(',').filter_map(|c| c.parse().ok()).collect()
            }
            "--seconds" => a.seconds = v.parse().unwrap_or(5.0),
            "--warmup" => a.warmup = v.parse().unwrap_or(1.0),
            "--open" => a.open = v.parse().unwrap_or(64),
            "--pid" => a.pid = v.parse().ok(),
            "--label" => a.label = v,
            "--first-event" => {
                a.first_event = v == "on" || v == "true" || v == "1";
            }
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(2);
            }
        }
    }
    if a.url.is_empty() {
        eprintln!("--url is required");
        std::process::exit(2);
    }
    a
}

async fn open_many(client: &Client, a: &Args, n: usize) -> (Vec<Session>, Duration, usize) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (c, url, h) = (client.clone(), a.url.clone(), a.headers.clone());
            tokio::spawn(async move { Session::open(c, &url, &h).await })
        })
        .collect();
    let mut sessions = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => sessions.push(s),
            _ => failed += 1,
        }
    }
    (sessions, start.elapsed(), failed)
}

#[tokio::main]
async fn main() {
    let a = args();
    let client = Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let base_kib = a.pid.map(tree_rss_kib);

    // Session open time and memory per session.
    let (sessions, took, failed) = open_many(&client, &a, a.open).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded_kib = a.pid.map(tree_rss_kib);
    let per_session_mib = match (base_kib, loaded_kib) {
        (Some(b), Some(l)) if !sessions.is_empty() => {
            Some((l.saturating_sub(b)) as f64 / 1024.0 / sessions.len() as f64)
        }
        _ => None,
    };
    println!(
        "{}",
        json!({"label": a.label, "phase": "open", "sessions": sessions.len(), "failed": failed, "ms": took.as_secs_f64() * 1000.0,
               "rss_base_mib": base_kib.map(|k| k as f64 / 1024.0), "rss_loaded_mib": loaded_kib.map(|k| k as f64 / 1024.0),
               "mib_per_session": per_session_mib})
    );
    for s in &sessions {
        s.close().await;
    }
    drop(sessions);
    tokio::time::sleep(Duration::from_millis(500)).await;

    for &c in &a.concurrency {
        let (sessions, _, failed) = open_many(&client, &a, c).await;
        if failed > 0 {
            println!(
                "{}",
                json!({"label": a.label, "phase": "load", "concurrency": c, "error": format!("{failed} sessions failed to open")})
            );
            continue;
        }
        let warm_until = Instant::now() + Duration::from_secs_f64(a.warmup);
        let end = warm_until + Duration::from_secs_f64(a.seconds);
        let workers: Vec<_> = sessions
            .into_iter()
            .map(|mut s| {
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0usize;
                    while Instant::now() < end {
                        let t = Instant::now();
                        let ok = s
                            .call(
                                "tools/call",
                                json!({"name": "echo", "arguments": {"message": "ping"}}),
                            )
                            .await
                            .is_ok();
                        if t >= warm_until {
                            if ok {
                                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                            } else {
                                errors += 1;
                            }
                        }
                    }
                    s.close().await;
                    (lat, errors)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for w in workers {
            if let Ok((l, e)) = w.await {
                all.extend(l);
                errors += e;
            }
        }
        all.sort_by(|x, y| x.total_cmp(y));
        println!(
            "{}",
            json!({"label": a.label, "phase": "load", "concurrency": c, "calls": all.len(), "errors": errors,
                   "calls_per_s": all.len() as f64 / a.seconds,
                   "p50_ms": percentile(&all, 50.0), "p99_ms": percentile(&all, 99.0)})
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        if a.first_event {
            first_event_phase(&client, &a, c).await;
        }
    }
}

/// `c` sessions each calling the progress tool for `a.seconds`; prints first-event p50/p99.
async fn first_event_phase(client: &Client, a: &Args, c: usize) {
    let (sessions, _, failed) = open_many(client, a, c).await;
    if failed > 0 {
        println!(
            "{}",
            json!({"label": a.label, "phase": "first_event", "concurrency": c, "error": format!("{failed} sessions failed to open")})
        );
        return;
    }
    let end = Instant::now() + Duration::from_secs_f64(a.seconds);
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut firsts = Vec::new();
                let mut errors = 0usize;
                while Instant::now() < end {
                    match s.first_event().await {
                        Ok(ms) => firsts.push(ms),
                        Err(_) => errors += 1,
                    }
                }
                s.close().await;
                (firsts, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for w in workers {
        if let Ok((f, e)) = w.await {
            all.extend(f);
            errors += e;
        }
    }
    all.sort_by(|x, y| x.total_cmp(y));
    println!(
        "{}",
        json!({"label": a.label, "phase": "first_event", "concurrency": c, "calls": all.len(), "errors": errors,
               "p50_ms": percentile(&all, 50.0), "p99_ms": percentile(&all, 99.0)})
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
}
