//! Issue 11 on the real stack (wrangler dev → the local machines service → runner → a real
//! MCP server): `running` means the server answered `initialize`; PyPI and npm servers run
//! on the embedded default; a server that cannot start ends `failed` in its own words,
//! masked; owners read its logs. Real packages come from the real npm and PyPI registries
//! (the machines inherit this machine's TLS settings); analysis reads loopback fakes, and
//! the failing packages are served by a loopback npm registry (`edge_tests::npm`).

use std::time::{Duration, Instant};

use edge_tests::fake::{FakeServer, Reply};
use edge_tests::runner::Machines;
use edge_tests::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};

use super::support::py_call;

struct Fixture {
    fake: FakeServer,
    machines: Machines,
    stack: Stack,
    _dir: tempfile::TempDir,
}

fn start(machine_env: Vec<(String, String)>, start_timeout_secs: u32) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeServer::start();
    let tools = edge_tests::repo_root()
        .join(".tools/bin")
        .display()
        .to_string();
    let mut env = vec![("CATWALK_MACHINE_PATH".to_string(), tools)];
    env.extend(machine_env);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let machines = Machines::start_with_env(&dir.path().join("machines"), 600, &env);
    let stack = Stack::start(StackOptions {
        vars: [
            machines.fly_vars(),
            vec![
                ("NPM_REGISTRY_BASE".into(), format!("{}/npm", fake.url())),
                ("PYPI_BASE".into(), format!("{}/pypi-base", fake.url())),
                (
                    "FLY_START_TIMEOUT_SECS".into(),
                    start_timeout_secs.to_string(),
                ),
            ],
        ]
        .concat(),
        ..Default::default()
    });
    Fixture {
        fake,
        machines,
        stack,
        _dir: dir,
    }
}

async fn api(
    f: &Fixture,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    f.stack.call(method, path, token, body).await
}

async fn deploy(f: &Fixture, token: &str, body: Value) -> (String, String) {
    let (s, b, text) = api(f, Method::POST, "/api/deployments", token, Some(body)).await;
    assert_eq!(s, 201, "{text}");
    (
        b["id"].as_str().unwrap().to_string(),
        b["access_token"].as_str().unwrap().to_string(),
    )
}

const TIME_VERSION: &str = "2026.10.19";
const MEMORY_VERSION: &str = "2026.8.31";

/// A PyPI server (uvx) and an npm server other than server-everything (npx), both from the
/// real registries: each is `running` only once it answered, and a real SDK client calls
/// a real tool through the gateway — also after the machine was stopped and woken.
#[tokio::test]
async fn pypi_and_npm_servers_run_on_the_embedded_default() {
    let f = start(Vec::new(), 240);
    f.fake.on(
        "GET",
        "/pypi-base/pypi/mcp-server-time/json",
        Reply::json(
            200,
            &json!({"info": {"name": "mcp-server-time", "version": TIME_VERSION,
            "description": "# mcp-server-time\n\nTime and timezone conversion for MCP."},
            "releases": {TIME_VERSION: []}, "urls": []}),
        ),
    );
    let memory = "@modelcontextprotocol/server-memory";
    f.fake.on(
        "GET",
        &format!("/npm/{}", memory.replacen('/', "%2f", 1)),
        Reply::json(200, &json!({"name": memory, "readme": "# memory\n\nA knowledge graph.",
            "dist-tags": {"latest": MEMORY_VERSION},
            "versions": {MEMORY_VERSION: {"name": memory, "version": MEMORY_VERSION, "bin": {"mcp-server-memory": "dist/index.js"}}}})),
    );
    let token = f.stack.token("pythonista", Some("py@example.com"));
    let (time_id, time_token) = deploy(
        &f,
        &token,
        json!({"name": "Clock", "package": format!("pypi:mcp-server-time@{TIME_VERSION}")}),
    )
    .await;
    let (mem_id, mem_token) = deploy(
        &f,
        &token,
        json!({"name": "Memory", "package": format!("npm:{memory}@{MEMORY_VERSION}")}),
    )
    .await;
    for id in [&time_id, &mem_id] {
        let d = f.stack.settled(&token, id, Duration::from_secs(300)).await;
        assert_eq!(d["status"], "running", "{d}");
    }

    let time_url = f.stack.url(&format!("/api/mcp/{time_id}"));
    let out = py_call(
        time_url.clone(),
        time_token.clone(),
        "get_current_time",
        json!({"timezone": "UTC"}),
    )
    .await;
    assert_eq!(out["is_error"], false, "{out}");
    assert!(out["text"].as_str().unwrap().contains("UTC"), "{out}");

    let mem_url = f.stack.url(&format!("/api/mcp/{mem_id}"));
    let out = py_call(mem_url, mem_token, "read_graph", json!({})).await;
    assert_eq!(out["is_error"], false, "{out}");
    assert!(out["text"].as_str().unwrap().contains("entities"), "{out}");

    // Waking keeps working: the machine is stopped behind the gateway's back; the next call
    // auto-starts it and is held until its runner is ready again.
    let (_, d, _) = api(
        &f,
        Method::GET,
        &format!("/api/deployments/{time_id}"),
        &token,
        None,
    )
    .await;
    let machine = d["machine"]["id"].as_str().unwrap().to_string();
    f.machines
        .stop_machine(&machine, Duration::from_secs(30))
        .await;
    let woke = Instant::now();
    let out = py_call(
        time_url,
        time_token,
        "get_current_time",
        json!({"timezone": "UTC"}),
    )
    .await;
    assert!(out["text"].as_str().unwrap().contains("UTC"), "{out}");
    eprintln!(
        "wake → first answer (PyPI, through the gateway): {:?}",
        woke.elapsed()
    );

    // The owner reads the server's logs (and nobody else does).
    let (s, logs, text) = api(
        &f,
        Method::GET,
        &format!("/api/deployments/{time_id}/logs?lines=5"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let lines = logs["lines"].as_array().unwrap();
    assert!(lines.len() <= 5, "{logs}");
    assert!(
        lines
            .iter()
            .all(|l| l["ts"].is_string() && l["line"].is_string()),
        "{logs}"
    );
    let stranger = f.stack.token("stranger", None);
    let (s, _, _) = api(
        &f,
        Method::GET,
        &format!("/api/deployments/{time_id}/logs"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, err, _) = api(
        &f,
        Method::GET,
        &format!("/api/deployments/{time_id}/logs?lines=0"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        (s, err["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    for id in [&time_id, &mem_id] {
        api(
            &f,
            Method::DELETE,
            &format!("/api/deployments/{id}"),
            &token,
            None,
        )
        .await;
    }
}

/// Servers that cannot start end `failed` with their own last words, masked; the machine
/// is kept so the owner can read its logs; no credential value appears anywhere.
#[tokio::test]
async fn a_server_that_cannot_start_fails_in_its_own_words_without_leaking_a_secret() {
    let registry = FakeServer::start();
    let f = start(
        vec![
            (
                "npm_config_registry".into(),
                format!("{}/npm/", registry.url()),
            ),
            ("npm_config_audit".into(), "false".into()),
            ("npm_config_fund".into(), "false".into()),
            ("npm_config_update_notifier".into(), "false".into()),
        ],
        25,
    );
    // Analysis reads the same registry the machines install from.
    f.fake.on("GET", "/npm/*", Reply::forward(registry.url()));
    let run = edge_tests::random_hex(4);
    let canary = format!("canary-{}", edge_tests::random_hex(12));
    let node = |body: &str| format!("#!/usr/bin/env node\n{body}\n");
    // (kind, package.json additions, files, words the failure must quote)
    type Case<'a> = (&'a str, Value, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "nobin",
            json!({}),
            vec![("index.js", "module.exports = 1;".to_string())],
            "executable",
        ),
        (
            "crash",
            json!({"bin": {"crash": "cli.js"}}),
            vec![("cli.js", node("console.error('fatal: cannot open the database at /data/db.sqlite');\nprocess.exit(2);"))],
            "cannot open the database",
        ),
        (
            "needsenv",
            json!({"bin": {"needsenv": "cli.js"}}),
            vec![("cli.js", node("if (!process.env.WIDGET_REGION) {\n  console.error('Error: WIDGET_REGION environment variable is required');\n  process.exit(1);\n}"))],
            "WIDGET_REGION environment variable is required",
        ),
        (
            "leaky",
            json!({"bin": {"leaky": "cli.js"}}),
            vec![("cli.js", node("console.error('connecting with token ' + process.env.CANARY_TOKEN);\nprocess.exit(1);"))],
            "connecting with token [REDACTED]",
        ),
        (
            "silent",
            json!({"bin": {"silent": "cli.js"}}),
            vec![("cli.js", node("process.stdin.resume();\nsetInterval(() => {}, 1000);"))],
            "did not become ready within 25 seconds",
        ),
    ];
    let token = f.stack.token("unlucky", Some("unlucky@example.com"));
    let mut deployed = Vec::new();
    for (kind, extra, files, _) in &cases {
        let name = format!("catwalk-test-{kind}-{run}");
        let mut manifest = json!({"name": name, "version": "1.0.0"});
        for (k, v) in extra.as_object().unwrap() {
            manifest[k] = v.clone();
        }
        let readme = format!("# {kind}\n\n```json\n{{\"mcpServers\": {{\"x\": {{\"command\": \"npx\", \"args\": [\"-y\", \"{name}\"], \"env\": {{\"CANARY_TOKEN\": \"<your token>\"}}}}}}}}\n```\n");
        let files: Vec<(&str, &str)> = files.iter().map(|(p, b)| (*p, b.as_str())).collect();
        edge_tests::npm::publish(&registry, &name, "1.0.0", &readme, manifest, &files);
        let (id, _) = deploy(
            &f,
            &token,
            json!({"name": format!("{kind} server"), "package": format!("npm:{name}"), "credentials": {"CANARY_TOKEN": canary}}),
        )
        .await;
        deployed.push(id);
    }
    for (id, (kind, _, _, words)) in deployed.iter().zip(&cases) {
        let d = f.stack.settled(&token, id, Duration::from_secs(120)).await;
        assert_eq!(d["status"], "failed", "{kind}: {d}");
        let message = d["error_message"].as_str().unwrap();
        assert!(message.contains(words), "{kind}: {message}");
        assert!(
            !message.contains(&canary),
            "{kind}: the canary leaked: {message}"
        );
    }
    // The leaky server's logs: its line is there, masked.
    let leaky = &deployed[3];
    let (s, logs, text) = api(
        &f,
        Method::GET,
        &format!("/api/deployments/{leaky}/logs"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert!(text.contains("connecting with token [REDACTED]"), "{logs}");
    assert!(!text.contains(&canary));
    // Nowhere else either.
    let (_, audit, _) = api(&f, Method::GET, "/api/audit", &token, None).await;
    assert!(!audit.to_string().contains(&canary));
    assert!(
        !f.stack.logs().contains(&canary),
        "the canary reached the Worker's log"
    );
    // A failed deployment is retried on a fresh machine, and deleting leaves nothing.
    let (s, b, text) = api(
        &f,
        Method::POST,
        &format!("/api/deployments/{}/restart", deployed[1]),
        &token,
        None,
    )
    .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (200, Some("deploying")),
        "{text}"
    );
    let d = f
        .stack
        .settled(&token, &deployed[1], Duration::from_secs(120))
        .await;
    assert_eq!(d["status"], "failed");
    for id in &deployed {
        let (s, _, text) = api(
            &f,
            Method::DELETE,
            &format!("/api/deployments/{id}"),
            &token,
            None,
        )
        .await;
        assert_eq!(s, 204, "{text}");
    }
    let all: Value = f.machines.machines("").await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "destroyed"),
        "{all}"
    );
}
