//! What a misbehaving MCP server cannot make the runner hold.

use std::time::Duration;

use edge_tests::runner::{server_everything, Runner};
use serde_json::json;

use crate::raw::{log_lines, open_session};

/// Peak resident memory of a process, from /proc (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

async fn logs(r: &Runner) -> Vec<String> {
    log_lines(&r.base_url, &r.secret).await
}

#[tokio::test]
async fn a_128_mib_stderr_line_is_cut_to_8_kib_without_the_runner_holding_it() {
    // The server prints 128 MiB of `x` with no newline before it starts; the shell waits
    // for the pipe to drain, so the session only opens once the runner has read it all.
    let script = "head -c 134217728 /dev/zero | tr '\\0' x >&2; printf '\\nafter the long line\\n' >&2; exec node \"$0\" stdio";
    let launch = json!({"argv": ["sh", "-c", script, server_everything().display().to_string()]})
        .to_string();
    // No spare: the probe and the session each print the line, which is enough.
    let r = Runner::start(&launch, &[("CATWALK_SPARES", "0")]);
    open_session(&r.mcp_url(), &r.secret).await;
    let peak = peak_rss_kib(r.pid().expect("runner pid"));
    assert!(
        (1..64 * 1024).contains(&peak),
        "runner peak RSS {peak} KiB after a 128 MiB line"
    );

    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = logs(&r).await;
        if lines.iter().any(|l| l.ends_with("after the long line")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let long = lines
        .iter()
        .find(|l| l.contains("xxxx"))
        .expect("the long line is logged");
    assert!(long.ends_with("xxx … [truncated]"), "not marked as cut");
    assert!(
        long.len() < 8 * 1024 + 64,
        "kept {} bytes of the line",
        long.len()
    );
    assert!(lines.iter().any(|l| l.ends_with("after the long line")));
}
