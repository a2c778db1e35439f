//! Issue 13's registry on the real stack: `GET /api/registry/servers[/{name}]` over a
//! loopback registry that speaks the official registry's v0.1 wire format (fixtures in
//! `tests/fixtures/registry/`, written from its OpenAPI and server.json schema) — search,
//! paging, hidden inactive entries, entries we cannot run, and the registry failing (500,
//! 429, a timeout, garbage). Then a deployment straight from an entry: its argument values
//! reach a real server (published on a loopback npm registry, run by the local machines
//! service) as argv elements, exactly, and its secret goes nowhere else.

use std::time::{Duration, Instant};

use edge_tests::fake::{FakeServer, Reply};
use edge_tests::registry::{fixture, version_path};
use edge_tests::runner::Machines;
use edge_tests::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};

use super::support::py_call;

struct Fixture {
    registry: FakeServer,
    npm: FakeServer,
    machines: Machines,
    stack: Stack,
    run: String,
    _dir: tempfile::TempDir,
}

const ECHO: &str = "io.github.catwalk-test/argv-echo";

/// A stdio MCP server with one tool, `argv`, that answers with the command line it was
/// started with and what it sees of its environment.
const ECHO_SERVER: &str = r#"#!/usr/bin/env node
const rl = require('readline').createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
rl.on('line', (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  if (m.id === undefined || m.id === null) return;
  const ok = (result) => send({ jsonrpc: '2.0', id: m.id, result });
  if (m.method === 'initialize') {
    ok({ protocolVersion: m.params.protocolVersion, capabilities: { tools: {} },
         serverInfo: { name: 'argv-echo', version: '1.0.0' } });
  } else if (m.method === 'tools/list') {
    ok({ tools: [{ name: 'argv', description: 'argv and env', inputSchema: { type: 'object', properties: {} } }] });
  } else if (m.method === 'tools/call') {
    const seen = { argv: process.argv.slice(2), region: process.env.ECHO_REGION,
                   token_length: (process.env.ECHO_TOKEN || '').length };
    ok({ content: [{ type: 'text', text: JSON.stringify(seen) }] });
  } else if (m.method === 'ping') {
    ok({});
  } else {
    send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no such method' } });
  }
});
"#;

fn start() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (registry, npm) = (FakeServer::start(), FakeServer::start());
    let run = edge_tests::random_hex(4);
    // The echo server under a fresh name, so no machine's npx cache holds an older one.
    let package = format!("catwalk-argv-echo-{run}");
    let manifest = json!({"name": package, "version": "1.0.0", "bin": {"argv-echo": "cli.js"}});
    edge_tests::npm::publish(
        &npm,
        &package,
        "1.0.0",
        "# argv-echo",
        manifest,
        &[("cli.js", ECHO_SERVER)],
    );
    let mut echo = fixture("argv-echo");
    echo["server"]["packages"][0]["identifier"] = json!(package);
    registry.on(
        "GET",
        "/v0.1/servers/*",
        Reply::json(404, &json!({"error": "Server not found"})),
    );
    registry.on(
        "GET",
        &version_path(ECHO, "latest"),
        Reply::json(200, &echo),
    );
    registry.on("GET", &version_path(ECHO, "1.0.0"), Reply::json(200, &echo));
    for (name, file) in [
        ("io.github.acme/weather", "weather"),
        ("io.github.acme/files", "files"),
        ("io.github.acme/containers", "oci-only"),
        ("com.example/hosted", "remote-only"),
        ("io.github.acme/gone", "deleted"),
    ] {
        registry.on(
            "GET",
            &version_path(name, "latest"),
            Reply::json(200, &fixture(file)),
        );
    }
    registry.on(
        "GET",
        &version_path("io.github.acme/files", "0.4.2"),
        Reply::json(200, &fixture("files")),
    );
    registry.on(
        "GET",
        "/v0.1/servers",
        Reply::json(200, &fixture("list-page1")),
    );
    let env = [
        (
            "npm_config_registry".to_string(),
            format!("{}/npm/", npm.url()),
        ),
        ("npm_config_audit".to_string(), "false".to_string()),
        ("npm_config_fund".to_string(), "false".to_string()),
        (
            "npm_config_update_notifier".to_string(),
            "false".to_string(),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let machines = Machines::start_with_env(&dir.path().join("machines"), 600, &env);
    let stack = Stack::start(StackOptions {
        vars: [
            machines.fly_vars(),
            vec![
                ("MCP_REGISTRY_BASE".into(), registry.url()),
                ("NPM_REGISTRY_BASE".into(), format!("{}/npm", npm.url())),
                ("FLY_START_TIMEOUT_SECS".into(), "60".into()),
            ],
        ]
        .concat(),
        ..Default::default()
    });
    Fixture {
        registry,
        npm,
        machines,
        stack,
        run,
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

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {page}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

/// Browsing: a search reaches the registry as `search`, inactive entries are hidden
/// unless asked for, the registry's cursor pages on, and each entry says what we can run.
#[tokio::test]
async fn the_registry_is_searched_paged_and_explained() {
    let f = start();
    let token = f.stack.token("browser", Some("browser@example.com"));
    let (s, page, text) = api(
        &f,
        Method::GET,
        "/api/registry/servers?search=acme&limit=3",
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        names(&page),
        ["io.github.acme/weather", "io.github.acme/containers"],
        "files is deprecated: hidden"
    );
    let asked = f.registry.requests();
    let query = asked.last().unwrap().query.clone().unwrap_or_default();
    for part in ["version=latest", "limit=3", "search=acme"] {
        assert!(query.split('&').any(|p| p == part), "{query}");
    }
    let weather = &page["items"][0];
    assert_eq!(weather["deployable"], true);
    assert_eq!(weather["packages"][0]["identifier"], "@acme/weather-mcp");
    assert_eq!(weather["icons"].as_array().unwrap().len(), 1);
    let containers = &page["items"][1];
    assert_eq!(containers["deployable"], false);
    assert!(containers["packages"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("container image"));
    // The same query with inactive entries: one registry call served both.
    let (_, all, _) = api(
        &f,
        Method::GET,
        "/api/registry/servers?search=acme&limit=3&include_inactive=true",
        &token,
        None,
    )
    .await;
    assert_eq!(names(&all).len(), 3);
    assert_eq!(f.registry.count("GET", "/v0.1/servers"), 1);
    // The next page, by the registry's own cursor.
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    f.registry.push(
        "GET",
        "/v0.1/servers",
        Reply::json(200, &fixture("list-page2")),
    );
    let url = format!(
        "/api/registry/servers?search=acme&limit=3&cursor={}",
        urlencode(&cursor)
    );
    let (s, next, text) = api(&f, Method::GET, &url, &token, None).await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        names(&next),
        ["com.example/hosted", ECHO],
        "the deleted entry is hidden"
    );
    assert!(next["next_cursor"].is_null());
    let last = f
        .registry
        .requests()
        .last()
        .unwrap()
        .query
        .clone()
        .unwrap_or_default();
    assert!(
        last.contains("cursor=io.github.acme%2Fcontainers%3A1.0.0"),
        "{last}"
    );
    let hosted = &next["items"][0];
    assert_eq!(hosted["remotes"][0]["url"], "https://mcp.example.com/mcp");
    assert_eq!(hosted["remotes"][0]["deployable"], false);

    // One entry as a form: a required secret, defaults and choices.
    let (s, w, text) = api(
        &f,
        Method::GET,
        "/api/registry/servers/io.github.acme%2Fweather",
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        (
            w["deployable"].as_bool(),
            w["package"].as_str(),
            w["version"].as_str()
        ),
        (Some(true), Some("@acme/weather-mcp"), Some("2.1.0"))
    );
    assert_eq!(
        w["env_vars"][0],
        json!({"name": "ACME_API_KEY", "description": "Your Acme API key", "required": true, "secret": true, "default": null, "choices": [], "format": "string", "placeholder": null})
    );
    assert_eq!(w["env_vars"][1]["default"], "metric");
    // Positional and named arguments, a pinned version, a deprecation warning.
    let (s, files, text) = api(
        &f,
        Method::GET,
        "/api/registry/servers/io.github.acme%2Ffiles?version=0.4.2",
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(files["runtime"], "python");
    assert_eq!(files["version"], "0.4.2");
    assert_eq!(files["args"], json!(["serve", "--log-level", "info"]));
    let keys: Vec<&str> = files["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["mode", "port", "label", "root_dir"]);
    assert!(files["warnings"][0]
        .as_str()
        .unwrap()
        .contains("deprecated"));
    // What cannot run here says why.
    for (segment, words) in [
        ("io.github.acme%2Fcontainers", "container image"),
        ("com.example%2Fhosted", "hosted"),
        ("io.github.acme%2Fgone", "deleted"),
    ] {
        let (s, d, text) = api(
            &f,
            Method::GET,
            &format!("/api/registry/servers/{segment}"),
            &token,
            None,
        )
        .await;
        assert_eq!(s, 200, "{text}");
        assert_eq!(d["deployable"], false, "{segment}");
        assert!(
            d["reason"].as_str().unwrap().contains(words),
            "{segment}: {d}"
        );
    }
    // Unknown names and versions are 404; malformed ones never reach the registry.
    let before = f.registry.requests().len();
    for (path, status, code) in [
        (
            "/api/registry/servers/io.github.acme%2Fnope",
            404,
            "not_found",
        ),
        (
            "/api/registry/servers/io.github.acme%2Fweather?version=9.9.9",
            404,
            "not_found",
        ),
        (
            "/api/registry/servers/io.github.acme%2Fweather?version=..%2F..%2Fadmin",
            400,
            "invalid_query",
        ),
        ("/api/registry/servers/..%2F..", 404, "not_found"),
        ("/api/registry/servers?limit=1000", 400, "invalid_query"),
        (
            "/api/registry/servers?cursor=%0d%0aX-Injected:%201",
            400,
            "invalid_query",
        ),
    ] {
        let (s, e, text) = api(&f, Method::GET, path, &token, None).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {text}"
        );
    }
    assert_eq!(
        f.registry.requests().len(),
        before + 2,
        "only the two well-formed lookups were asked"
    );
    let (s, _, _) = api(
        &f,
        Method::GET,
        "/api/registry/servers",
        "not-a-token",
        None,
    )
    .await;
    assert_eq!(s, 401);
}

/// Percent-encodes a query value (the cursor is opaque; this one holds `/` and `:`).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A registry that is down, rate-limits us, hangs or answers garbage: 503 with
/// `Retry-After` (never an empty list) or 502, for the list, one entry and a deployment.
#[tokio::test]
async fn a_failing_registry_is_503_or_502_never_an_empty_answer() {
    let f = start();
    let token = f.stack.token("unlucky", Some("unlucky@example.com"));
    let garbage = Reply::Http(
        200,
        vec![("content-type".into(), "application/json".into())],
        "{\"servers\": [".into(),
    );
    let cases: Vec<(Reply, u16, &str)> = vec![
        (
            Reply::json(500, &json!({"error": "boom"})),
            503,
            "unavailable",
        ),
        (
            Reply::json(429, &json!({"error": "slow down"})).with_header("retry-after", "17"),
            503,
            "unavailable",
        ),
        (
            Reply::Delay(
                Duration::from_secs(8),
                Box::new(Reply::json(200, &fixture("list-page1"))),
            ),
            503,
            "unavailable",
        ),
        (garbage.clone(), 502, "upstream_error"),
        (
            Reply::json(200, &json!({"servers": "none"})),
            502,
            "upstream_error",
        ),
    ];
    for (i, (reply, status, code)) in cases.into_iter().enumerate() {
        // A search of its own, so no earlier answer is served from the cache.
        f.registry.push("GET", "/v0.1/servers", reply);
        let started = Instant::now();
        let resp = edge_tests::stack::client()
            .get(
                f.stack
                    .url(&format!("/api/registry/servers?search=fail{i}")),
            )
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let got = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "case {i}: {body}"
        );
        assert!(body.get("items").is_none());
        if status == 503 {
            let wait: u32 = retry.expect("Retry-After").parse().unwrap();
            assert!((1..=300).contains(&wait));
            if i == 1 {
                assert_eq!(wait, 17, "the registry's own wait is passed on");
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "case {i} took {:?}",
            started.elapsed()
        );
    }
    // A failure was not cached: the same search answers once the registry is back.
    let (s, page, text) = api(
        &f,
        Method::GET,
        "/api/registry/servers?search=fail0",
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(names(&page).len(), 2);
    // One entry and a deployment fail the same way, and the deployment writes nothing.
    f.registry.push(
        "GET",
        &version_path("io.github.acme/weather", "2.1.0"),
        garbage,
    );
    let (s, e, _) = api(
        &f,
        Method::GET,
        "/api/registry/servers/io.github.acme%2Fweather?version=2.1.0",
        &token,
        None,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (502, Some("upstream_error"))
    );
    f.registry.push(
        "GET",
        &version_path(ECHO, "1.0.0"),
        Reply::json(503, &json!({"error": "maintenance"})),
    );
    let body = json!({"name": "echo", "registry": ECHO, "version": "1.0.0", "arguments": {"greeting": "hi"}, "credentials": {"ECHO_TOKEN": "t"}});
    let (s, e, text) = api(&f, Method::POST, "/api/deployments", &token, Some(body)).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{text}"
    );
    let (_, list, _) = api(&f, Method::GET, "/api/deployments", &token, None).await;
    assert_eq!(list["items"], json!([]));
}

/// A deployment straight from a registry entry: bad values are named and write nothing;
/// good ones reach the real server as argv elements, shell metacharacters and all; the
/// entry's defaults are set; the secret appears nowhere but in the server's environment.
#[tokio::test]
async fn a_registry_entry_deploys_with_its_arguments_as_argv() {
    let f = start();
    let token = f
        .stack
        .token("registry-deployer", Some("deployer@example.com"));
    let canary = format!("canary-{}", edge_tests::random_hex(10));
    let refused = [
        (
            json!({"name": "x", "registry": ECHO, "arguments": {"mode": "reckless", "retries": "3; id", "nope": "1"}, "credentials": {"ECHO_TOKEN": canary, "ECHO_REGION": "mars"}}),
            vec![
                "arguments.greeting",
                "arguments.mode",
                "arguments.nope",
                "arguments.retries",
                "credentials.ECHO_REGION",
            ],
        ),
        (
            json!({"name": "x", "registry": ECHO, "arguments": {"greeting": "hi"}}),
            vec!["credentials.ECHO_TOKEN"],
        ),
        (
            json!({"name": "x", "registry": "io.github.acme/containers"}),
            vec!["registry"],
        ),
        (
            json!({"name": "x", "registry": "com.example/hosted"}),
            vec!["registry"],
        ),
        (
            json!({"name": "x", "registry": "io.github.acme/gone"}),
            vec!["registry"],
        ),
        (
            json!({"name": "x", "registry": "io.github.acme/nope"}),
            vec!["registry"],
        ),
        (
            json!({"name": "x", "registry": ECHO, "package": "npm:left-pad"}),
            vec!["registry"],
        ),
        (
            json!({"name": "x", "registry": "$(id)/x"}),
            vec!["registry"],
        ),
    ];
    for (body, want) in refused {
        let (s, e, text) = api(
            &f,
            Method::POST,
            "/api/deployments",
            &token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}: {text}"
        );
        let mut fields: Vec<&str> = e["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["field"].as_str().unwrap())
            .collect();
        fields.sort();
        assert_eq!(fields, want, "{body}");
        assert!(!text.contains(&canary));
    }
    let (_, list, _) = api(&f, Method::GET, "/api/deployments", &token, None).await;
    assert_eq!(list["items"], json!([]), "nothing was written");

    let greeting = "hi; rm -rf ~ $(id) `id` | cat /etc/passwd";
    let body = json!({"name": "Argv echo", "registry": ECHO,
        "arguments": {"greeting": greeting, "retries": "3", "path": ["a b", "--not-an-option-of-npx", "../../etc"]},
        "credentials": {"ECHO_TOKEN": canary}});
    let (s, created, text) = api(&f, Method::POST, "/api/deployments", &token, Some(body)).await;
    assert_eq!(s, 201, "{text}");
    let id = created["id"].as_str().unwrap().to_string();
    let access = created["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        created["deployment"]["source"],
        format!("registry:{ECHO}@1.0.0")
    );
    assert_eq!(
        created["deployment"]["package"],
        format!("catwalk-argv-echo-{}", f.run)
    );
    let d = f.stack.settled(&token, &id, Duration::from_secs(120)).await;
    assert_eq!(d["status"], "running", "{d}");
    let url = created["connection_url"].as_str().unwrap().to_string();
    let argv = || py_call(url.clone(), access.clone(), "argv", json!({}));
    let seen: Value = serde_json::from_str(argv().await["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        seen["argv"],
        json!([
            "stdio",
            "--greeting",
            greeting,
            "--mode",
            "careful",
            "--retries",
            "3",
            "a b",
            "--not-an-option-of-npx",
            "../../etc"
        ])
    );
    assert_eq!(seen["region"], "eu", "the entry's default was set");
    assert_eq!(seen["token_length"], canary.len());
    // A replaced set is held to the entry's choices as at create, and changes nothing.
    let (s, refused, text) = api(
        &f,
        Method::PUT,
        &format!("/api/deployments/{id}/credentials"),
        &token,
        Some(json!({"credentials": {"ECHO_TOKEN": "x", "ECHO_REGION": "mars"}})),
    )
    .await;
    assert_eq!(s, 422, "{text}");
    assert_eq!(
        refused["error"]["fields"][0]["field"], "credentials.ECHO_REGION",
        "{refused}"
    );
    assert!(refused["error"]["fields"][0]["message"]
        .as_str()
        .unwrap()
        .contains("eu, us"));
    // A replaced set of credentials keeps the entry's defaults.
    let rotated = format!("{canary}-2");
    let (s, _, text) = api(
        &f,
        Method::PUT,
        &format!("/api/deployments/{id}/credentials"),
        &token,
        Some(json!({"credentials": {"ECHO_TOKEN": rotated}})),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        f.stack.settled(&token, &id, Duration::from_secs(120)).await["status"],
        "running"
    );
    let again: Value = serde_json::from_str(argv().await["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        (again["region"].as_str(), again["token_length"].as_u64()),
        (Some("eu"), Some(rotated.len() as u64)),
        "{again}"
    );
    // The secret went to the server only.
    let (_, got, got_text) = api(
        &f,
        Method::GET,
        &format!("/api/deployments/{id}"),
        &token,
        None,
    )
    .await;
    assert!(!got_text.contains(&canary), "{got}");
    let (_, _, audit) = api(&f, Method::GET, "/api/audit", &token, None).await;
    assert!(!audit.contains(&canary));
    assert!(
        !f.stack.logs().contains(&canary),
        "the canary reached the Worker's log"
    );
    // Nor in the stack's storage (D1, KV, objects): only sealed.
    let mut files = Vec::new();
    super::deployments::collect_files(f.stack.dir(), &mut files);
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let found = bytes.windows(canary.len()).any(|w| w == canary.as_bytes());
        assert!(!found, "{} holds the canary", file.display());
    }
    // The machine runs exactly the entry's package with the person's values.
    let machines: Value = f.machines.machines("").await;
    assert!(
        machines.to_string().contains("--not-an-option-of-npx"),
        "{machines}"
    );
    let (s, _, _) = api(
        &f,
        Method::DELETE,
        &format!("/api/deployments/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let _ = &f.npm;
}
