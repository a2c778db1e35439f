//! Issue 14: the dashboard, end to end in a real browser on the real stack. Debian's
//! Chromium, driven by `tests/browser/flow.mjs` (playwright-core), signs in with the
//! development sign-in, analyzes server-everything, deploys it and waits for running; at
//! that checkpoint the official Python SDK calls `echo` through the URL and token the page
//! showed; the page rotates the token and the SDK's old token is refused while the new one
//! works; then audit, settings (a saved LLM key shows only its last four), delete, a
//! required secret refused empty, a failed deployment's own reason, the deploy flow by
//! keyboard only, 375 px, the light scheme, sign-out, and the identity provider's way back
//! (`/#session=<jwt>` becomes the cookie), axe-core on every page. One screenshot per step goes to
//! `<target>/test-artifacts/dashboard/`.
//!
//! Packages come from a loopback npm registry (`edge_tests::npm`): the analysis and the
//! machines' `npx` read the same one; server-everything itself resolves from the project's
//! node_modules. The official MCP registry is the fixtures' loopback fake.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use edge_tests::fake::{FakeServer, Reply};
use edge_tests::runner::{server_everything, Machines, EVERYTHING_PACKAGE, EVERYTHING_VERSION};
use edge_tests::stack::{Stack, StackOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::support::py_call;

/// The crashing server's own words, which the page must show as the failure's reason.
const CRASH_WORDS: &str = "cannot open the database";

/// Where the screenshots go: the cargo target directory, kept after the run.
fn artifacts() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| edge_tests::repo_root().join("target"))
        .join("test-artifacts/dashboard")
}

/// The npm packages the flow analyzes, on `fake` under `/npm`: server-everything (no
/// credentials; its code comes from node_modules), one whose README requires a secret, and
/// one that crashes on start saying why. Returns (secret source, failing source).
fn publish_packages(fake: &FakeServer, run: &str) -> (String, String) {
    let readme = |name: &str, env: &str| {
        format!("# {name}\n\n```json\n{{\"mcpServers\": {{\"x\": {{\"command\": \"npx\", \"args\": [\"-y\", \"{name}\"]{env}}}}}}}\n```\n")
    };
    let doc = json!({"name": EVERYTHING_PACKAGE, "readme": readme(EVERYTHING_PACKAGE, ""),
        "dist-tags": {"latest": EVERYTHING_VERSION},
        "versions": {EVERYTHING_VERSION: {"name": EVERYTHING_PACKAGE, "version": EVERYTHING_VERSION,
            "bin": {"mcp-server-everything": "dist/index.js"}}}});
    fake.on(
        "GET",
        &format!("/npm/{}", EVERYTHING_PACKAGE.replacen('/', "%2f", 1)),
        Reply::json(200, &doc),
    );

    // A real MCP server (server-everything from node_modules) that refuses to start
    // without its key: the flow deploys it and replaces its credentials.
    let secret = format!("@catwalk-test/needs-key-{run}");
    let needs_key = format!(
        "#!/usr/bin/env node\nif (!process.env.ACME_API_KEY) {{ console.error('ACME_API_KEY is required'); process.exit(1); }}\nimport({:?}).catch((e) => {{ console.error(e); process.exit(1); }});\n",
        format!("file://{}", server_everything().display())
    );
    edge_tests::npm::publish(
        fake,
        &secret,
        "1.0.0",
        &readme(&secret, r#", "env": {"ACME_API_KEY": "<your API key>"}"#),
        json!({"name": secret, "version": "1.0.0", "bin": {"needs-key": "cli.js"}}),
        &[("cli.js", &needs_key)],
    );

    let crash = format!("@catwalk-test/crash-{run}");
    let cli = format!(
        "#!/usr/bin/env node\nconsole.error('fatal: {CRASH_WORDS} at /data/db.sqlite');\nprocess.exit(2);\n"
    );
    edge_tests::npm::publish(
        fake,
        &crash,
        "1.0.0",
        &readme(&crash, ""),
        json!({"name": crash, "version": "1.0.0", "bin": {"crash": "cli.js"}}),
        &[("cli.js", &cli)],
    );
    (format!("npm:{secret}"), format!("npm:{crash}"))
}

/// Reads the flow's stdout lines until one is JSON with `checkpoint` or the final result.
async fn next_json<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    seen: &mut String,
) -> Option<Value> {
    while let Ok(Some(line)) = lines.next_line().await {
        seen.push_str(&line);
        seen.push('\n');
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            return Some(v);
        }
    }
    None
}

#[tokio::test]
async fn a_person_deploys_uses_rotates_and_deletes_a_server_in_the_browser() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "Debian's chromium is missing: scripts/bootstrap.sh installs it (make test runs it)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeServer::start();
    let run = edge_tests::random_hex(4);
    let (secret_source, fail_source) = publish_packages(&fake, &run);
    edge_tests::registry::publish(&fake, Vec::new());
    let npm = format!("{}/npm/", fake.url());
    let machines = Machines::start_with_env(
        &dir.path().join("machines"),
        600,
        &[
            ("npm_config_registry", npm.as_str()),
            ("npm_config_audit", "false"),
            ("npm_config_fund", "false"),
            ("npm_config_update_notifier", "false"),
        ],
    );
    let base = fake.url();
    let stack = Stack::start(StackOptions {
        vars: [
            machines.fly_vars(),
            vec![
                ("NPM_REGISTRY_BASE".into(), format!("{base}/npm")),
                ("PYPI_BASE".into(), format!("{base}/pypi")),
                ("GITHUB_API_BASE".into(), format!("{base}/github-api")),
                ("GITHUB_RAW_BASE".into(), format!("{base}/github-raw")),
                ("MCP_REGISTRY_BASE".into(), format!("{base}/registry")),
                ("FLY_START_TIMEOUT_SECS".into(), "60".into()),
                ("DEV_SIGN_IN".into(), "true".into()),
            ],
        ]
        .concat(),
        ..Default::default()
    });

    // The identity provider's way back to the dashboard (production's sign-in).
    let idp_email = format!("idp-{run}@example.com");
    let mut claims = edge_tests::jwt::claims(&format!("idp|{run}"), Some(&idp_email), 600);
    claims["email_verified"] = json!(true);
    let idp_token = edge_tests::jwt::sign(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims,
        stack.var("AUTH_SECRET"),
    );
    let shots = artifacts();
    let _ = std::fs::remove_dir_all(&shots);
    let mut child = tokio::process::Command::new("node")
        .arg(edge_tests::repo_root().join("tests/browser/flow.mjs"))
        .arg("--base-url")
        .arg(stack.url(""))
        .arg("--artifacts")
        .arg(&shots)
        .args(["--chromium", "/usr/bin/chromium"])
        .args(["--source", &format!("npm:{EVERYTHING_PACKAGE}")])
        .args(["--expect-tool", "echo"])
        .args(["--secret-source", &secret_source])
        .args(["--fail-source", &fail_source])
        .args(["--fail-words", CRASH_WORDS])
        .args(["--registry-search", "weather"])
        .args(["--session-token", &idp_token])
        .args(["--timeout", "120"])
        .arg("--checkpoint")
        .current_dir(edge_tests::repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("run node tests/browser/flow.mjs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();

    let flow = async {
        // Running: the URL and token the page showed work for a real SDK client.
        let running = next_json(&mut lines, &mut seen).await;
        let mut sdk_echo = Value::Null;
        if let Some(cp) = running.as_ref().filter(|v| v["checkpoint"] == "running") {
            let url = cp["connection_url"].as_str().expect("url").to_string();
            let token = cp["access_token"].as_str().expect("token").to_string();
            assert_eq!(
                url,
                stack.url(&format!(
                    "/api/mcp/{}",
                    cp["deployment_id"].as_str().unwrap()
                ))
            );
            sdk_echo = py_call(
                url,
                token,
                "echo",
                json!({"message": "hello from the page"}),
            )
            .await;
            stdin.write_all(b"go\n").await.expect("continue the flow");
        }
        // Rotated: the SDK's old token is refused, the new one works.
        let rotated = next_json(&mut lines, &mut seen).await;
        let mut sdk_old = Value::Null;
        let mut sdk_new = Value::Null;
        if let Some(cp) = rotated.as_ref().filter(|v| v["checkpoint"] == "rotated") {
            let url = cp["connection_url"].as_str().expect("url").to_string();
            let old = cp["old_token"].as_str().expect("old").to_string();
            let new = cp["new_token"].as_str().expect("new").to_string();
            let u = url.clone();
            sdk_old = tokio::task::spawn_blocking(move || {
                edge_tests::clients::python(&u, &old, "refused", None)
            })
            .await
            .expect("python");
            sdk_new = py_call(url, new, "echo", json!({"message": "after rotation"})).await;
            stdin.write_all(b"go\n").await.expect("continue the flow");
        }
        let last = if rotated
            .as_ref()
            .is_some_and(|v| v.get("checkpoint").is_none())
        {
            rotated.clone()
        } else if running
            .as_ref()
            .is_some_and(|v| v.get("checkpoint").is_none())
        {
            running.clone()
        } else {
            next_json(&mut lines, &mut seen).await
        };
        (running, rotated, sdk_echo, sdk_old, sdk_new, last)
    };
    let (running, rotated, sdk_echo, sdk_old, sdk_new, last) =
        tokio::time::timeout(Duration::from_secs(900), flow)
            .await
            .expect("the browser flow finished within 15 minutes");
    let status = child.wait().await.expect("flow.mjs exit");
    let result = last.unwrap_or_else(|| panic!("flow.mjs printed no result:\n{seen}"));
    let failed: Vec<&Value> = result["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["ok"] != true)
        .collect();
    assert!(
        status.success() && result["ok"] == true && failed.is_empty(),
        "the browser flow failed ({status}): steps {failed:#?}\nerrors {}\naxe {}\nscreenshots in {}",
        result["errors"],
        result["axe"],
        shots.display()
    );
    assert!(running.is_some() && rotated.is_some(), "{seen}");

    // The real SDK, through what the page showed.
    assert_eq!(sdk_echo["is_error"], false, "{sdk_echo}");
    assert!(
        sdk_echo["text"]
            .as_str()
            .unwrap_or_default()
            .contains("hello from the page"),
        "{sdk_echo}"
    );
    assert_eq!(sdk_old["refused"], true, "{sdk_old}");
    assert_eq!(sdk_old["statuses"], json!([401]), "{sdk_old}");
    assert_eq!(result["old_token_refused"], true);
    assert!(
        sdk_new["text"]
            .as_str()
            .unwrap_or_default()
            .contains("after rotation"),
        "{sdk_new}"
    );
    // What the page said and checked.
    assert!(result["tools"]
        .as_array()
        .is_some_and(|t| t.contains(&json!("echo"))));
    assert!(
        result["failure_message"]
            .as_str()
            .is_some_and(|m| m.contains(CRASH_WORDS)),
        "{}",
        result["failure_message"]
    );
    assert_eq!(
        result["axe"]
            .as_object()
            .map(|a| a.values().all(|v| v == &json!([]))),
        Some(true)
    );
    let names: Vec<&str> = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for wanted in [
        "sign-in",
        "analyze",
        "deploy",
        "connection",
        "deployments",
        "rotate",
        "audit",
        "settings",
        "delete",
        "required-secret",
        "update-credentials",
        "registry",
        "failed-deployment",
        "keyboard-only",
        "phone-width",
        "light-scheme",
        "sign-out",
        "provider-return",
    ] {
        assert!(names.contains(&wanted), "no step {wanted}: {names:?}");
    }
    assert_eq!(
        result["provider_user"]["email"],
        idp_email.as_str(),
        "{result}"
    );
    let pngs = std::fs::read_dir(&shots)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
            })
            .count()
        })
        .unwrap_or(0);
    assert!(
        pngs >= names.len(),
        "{pngs} screenshots for {} steps",
        names.len()
    );

    // Nothing secret in what the stack logged or stored in plaintext.
    let logs = stack.logs();
    let stored: String = ["deployments", "user_settings", "audit_log"]
        .iter()
        .flat_map(|t| stack.query(&format!("SELECT * FROM {t}")))
        .map(|r| r.to_string())
        .collect();
    for secret in [
        &result["access_token"],
        &result["new_token"],
        &result["llm_key"],
    ] {
        let secret = secret.as_str().expect("the flow reports its secrets");
        assert!(!logs.contains(secret), "a secret is in the stack's log");
        assert!(!stored.contains(secret), "a secret is in D1 in plaintext");
    }
}
