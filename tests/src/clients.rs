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

/// Runs one of the OAuth client scripts (`py_oauth.py`, `ts_oauth.mjs`) with its JSON
/// configuration: (exited 0, the last JSON line it printed, its stderr). Unlike [`python`]
/// and [`typescript`] a failure is returned, not a panic: the script's JSON then says which
/// step broke and holds what it saw so far, for the test's own message.
pub fn oauth_script(script: &str, config: &Value) -> (bool, Value, String) {
    let program = if script.ends_with(".py") {
        repo_root().join(".venv/bin/python").display().to_string()
    } else {
        "node".to_string()
    };
    let out = Command::new(&program)
        .arg(repo_root().join("tests/clients").join(script))
        .arg(config.to_string())
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| Value::String(format!("{script} printed no JSON: {stdout}")));
    (out.status.success(), json, stderr)
}
