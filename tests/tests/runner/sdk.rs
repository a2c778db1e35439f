//! The official SDK clients through the runner.

use edge_tests::clients::{python, typescript};
use edge_tests::runner::Runner;

#[test]
fn python_client_initializes_lists_tools_and_calls_echo() {
    let r = Runner::everything(&[("GITHUB_TOKEN", "ghp_canary_credential_value")]);
    let out = python(&r.mcp_url(), &r.secret, "basic", None);
    assert_eq!(out["protocol"], "2025-11-25");
    assert_eq!(out["echo"], "Echo: hello from python");
    assert!(out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "trigger-long-running-operation"));
    // Credentials reach the MCP server; the runner's own settings never do.
    let env = &out["env"];
    assert_eq!(env["GITHUB_TOKEN"], "ghp_canary_credential_value");
    for hidden in ["CATWALK_UPSTREAM_SECRET", "CATWALK_LAUNCH", "PORT"] {
        assert!(env.get(hidden).is_none(), "{hidden} leaked to the child");
    }
    assert!(!env.to_string().contains(&r.secret));
}

/// Before the runner served 2026-07-28 its probe was refused and the SDK fell back to the
/// handshake; now the probe is answered and the SDK stays in the new era.
#[test]
fn python_auto_mode_adopts_2026_07_28_from_the_discover_probe() {
    let r = Runner::everything(&[]);
    let out = python(&r.mcp_url(), &r.secret, "auto", None);
    assert_eq!(out["echo"], "Echo: auto");
    assert_eq!(out["protocol"], "2026-07-28");
}

#[test]
fn typescript_client_initializes_lists_tools_calls_echo_and_deletes_the_session() {
    let r = Runner::everything(&[]);
    let out = typescript(&r.mcp_url(), &r.secret, "basic", None);
    assert_eq!(out["echo"], "Echo: hello from typescript");
    assert_eq!(out["tools"], 13);
    assert_eq!(out["session"].as_str().unwrap().len(), 32);
}

/// Progress must arrive while the tool runs (about one a second), not all at the end.
fn assert_streamed(out: &serde_json::Value) {
    let seen = out["progress"].as_array().unwrap();
    assert_eq!(seen.len(), 3, "{out}");
    let times: Vec<f64> = seen.iter().map(|p| p["t"].as_f64().unwrap()).collect();
    let done = out["done_at"].as_f64().unwrap();
    assert!(
        times[0] < done - 1.5,
        "first progress at {} s, result at {done} s: buffered",
        times[0]
    );
    assert!(
        times[1] - times[0] > 0.5 && times[2] - times[1] > 0.5,
        "progress bunched together: {times:?}"
    );
}

#[test]
fn progress_notifications_stream_while_the_tool_runs_python() {
    let r = Runner::everything(&[]);
    assert_streamed(&python(&r.mcp_url(), &r.secret, "progress", Some("3")));
}

#[test]
fn progress_notifications_stream_while_the_tool_runs_typescript() {
    let r = Runner::everything(&[]);
    assert_streamed(&typescript(&r.mcp_url(), &r.secret, "progress", Some("3")));
}

#[test]
fn a_sampling_request_round_trips_through_the_client_python() {
    let r = Runner::everything(&[]);
    let out = python(&r.mcp_url(), &r.secret, "sampling", None);
    assert!(
        out["result"]
            .as_str()
            .unwrap()
            .contains("sampled by the python test client"),
        "{out}"
    );
    assert!(out["asked"][0].as_str().unwrap().contains("say something"));
}

#[test]
fn a_sampling_request_round_trips_through_the_client_typescript() {
    let r = Runner::everything(&[]);
    let out = typescript(&r.mcp_url(), &r.secret, "sampling", None);
    assert!(
        out["result"]
            .as_str()
            .unwrap()
            .contains("sampled by the typescript test client"),
        "{out}"
    );
}
