//! Runs the official MCP SDK clients (Python from `.venv`, TypeScript from `node_modules`)
//! as separate processes: `tests/clients/{py_client.py,ts_client.mjs} URL TOKEN SCENARIO`.
//! Each prints one JSON object describing what it observed.

use std::process::Command;

use serde_json::Value;

use crate::repo_root;

fn run(program: &str, script: &str, args: &[&str]) -> Value {
    let out = Command::new(program)
        .arg(repo_root().join("tests/clients").join(script))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| panic!("{script} printed no JSON: {stdout}"))
}

/// The Python SDK client.
pub fn python(url: &str, token: &str, scenario: &str, arg: Option<&str>) -> Value {
    let python = repo_root().join(".venv/bin/python");
    let mut args = vec![url, token, scenario];
    args.extend(arg);
    run(&python.display().to_string(), "py_client.py", &args)
}

/// The TypeScript SDK client.
pub fn typescript(url: &str, token: &str, scenario: &str, arg: Option<&str>) -> Value {
    let mut args = vec![url, token, scenario];
    args.extend(arg);
    run("node", "ts_client.mjs", &args)
}
