//! The MCP server runs as another user than the runner, so it cannot read the runner's
//! environment (which holds the upstream secret). Needs root, as here and in CI.

use std::time::Duration;

use edge_tests::runner::Runner;
use serde_json::json;

use crate::raw::{init_body, log_lines, post};

/// Reports, on stderr, its ids, its HOME and whether it could read its parent's (the
/// runner's) environment and found the upstream secret there; then exits.
const PROBE: &str = r#"
const fs = require('fs');
let environ;
try {
  const e = fs.readFileSync('/proc/' + process.ppid + '/environ');
  environ = e.includes('CATWALK_UPSTREAM_SECRET=') ? 'read-with-secret' : 'read-without-secret';
} catch (err) {
  environ = 'denied-' + err.code;
}
process.stderr.write(`probe uid=${process.getuid()} gid=${process.getgid()} environ=${environ} home=${process.env.HOME} cwd=${process.cwd()}\n`);
"#;

/// Starts the runner (its readiness probe runs the script, which exits: the runner is
/// `failed`, but the report is in) and returns the report from `/logs`.
async fn probe(env: &[(&str, &str)]) -> String {
    let launch = json!({"argv": ["node", "-e", PROBE]}).to_string();
    let r = Runner::start(&launch, env);
    // The probe is no MCP server: the answer is an error, the report is what matters.
    let _ = post(&r.mcp_url(), &r.secret, None, &init_body())
        .send()
        .await;
    for _ in 0..100 {
        let found = log_lines(&r.base_url, &r.secret)
            .await
            .into_iter()
            .find(|l| l.contains("probe uid="));
        if let Some(line) = found {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no probe report:\n{}", r.logs());
}

#[tokio::test]
async fn the_mcp_server_runs_as_its_own_user_and_cannot_read_the_upstream_secret() {
    // SAFETY: geteuid only reads this process's credentials.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching the child's uid needs root");
        return;
    }
    // Control: as the runner's own user, the server reads the runner's environment.
    let same_user = probe(&[]).await;
    assert!(
        same_user.contains("uid=0 ") && same_user.contains("environ=read-with-secret"),
        "{same_user}"
    );

    let isolated = probe(&[
        ("CATWALK_CHILD_UID", "65534"),
        ("CATWALK_CHILD_GID", "65534"),
        ("CATWALK_CHILD_HOME", "/tmp"),
    ])
    .await;
    assert!(
        isolated.contains("uid=65534 gid=65534 "),
        "wrong ids: {isolated}"
    );
    assert!(
        isolated.contains("environ=denied-EACCES"),
        "the runner's environment was readable: {isolated}"
    );
    assert!(isolated.contains("home=/tmp cwd=/tmp"), "{isolated}");
}
