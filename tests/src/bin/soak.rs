//! `make soak`: the soak under faults (`edge_tests::soak`), two rounds of the same size on
//! one stack, then the memory of the machines service and of the runner (with its MCP
//! servers) after each, so growth between them shows.
//!
//! usage: soak [--sessions 32] [--minutes 3] [--rounds 2]
//! Each round is a third before the faults, a third with them, a third after.
//! `SOAK_LOG=1` also prints the Worker's log lines about failed session recoveries and
//! 502 answers, to see why calls failed.

use std::time::Duration;

use edge_tests::soak::{round, Options, World};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let sessions = arg("--sessions", 32.0) as usize;
    let minutes = arg("--minutes", 3.0);
    let rounds = arg("--rounds", 2.0) as usize;
    let third = Duration::from_secs_f64(minutes * 60.0 / 3.0);
    let o = Options {
        sessions,
        before: third,
        during: third,
        after: third,
    };
    let w = World::start().await;
    let mut memory = Vec::new();
    let mut lost = 0;
    for r in 1..=rounds {
        println!("\n== round {r}: {sessions} sessions, {minutes} min ==");
        let report = round(&w, o).await;
        report.print();
        lost += report.lost_calls();
        let (service, runner) = w.memory_kib();
        println!("memory after round {r}: machines service {service} KiB, runner with its servers {runner} KiB");
        memory.push((service, runner));
    }
    if std::env::var_os("SOAK_LOG").is_some() {
        for line in w
            .stack
            .logs()
            .lines()
            .filter(|l| l.contains("session_recovery_failed") || l.contains("\"status\":502"))
        {
            println!("{line}");
        }
    }
    if let (Some(first), Some(last)) = (memory.first(), memory.last()) {
        if memory.len() > 1 {
            println!(
                "\nmemory growth from round 1 to round {}: machines service {:+} KiB, runner {:+} KiB",
                memory.len(),
                last.0 as i64 - first.0 as i64,
                last.1 as i64 - first.1 as i64
            );
        }
    }
    if lost > 0 {
        println!("{lost} calls got no answer at all");
        std::process::exit(1);
    }
}
