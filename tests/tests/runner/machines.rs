//! The local Fly Machines API: lifecycle over HTTP, persistence across restarts, ingress
//! by `fly-force-instance-id`, auto-stop and auto-start, and Fly's error answers.

use std::time::{Duration, Instant};

use edge_tests::runner::{
    everything_launch, server_everything, Machines, EVERYTHING_PACKAGE, EVERYTHING_VERSION,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::raw::{client, init_body, json_of, Events};

const SECRET: &str = "upstream-secret-for-machines-test";

fn create_body(name: &str, autostop: bool) -> Value {
    json!({
        "name": name,
        "region": "local",
        "config": {
            "image": "registry.fly.io/catwalk-runner:test",
            "env": {"CATWALK_LAUNCH": everything_launch(), "CATWALK_UPSTREAM_SECRET": SECRET},
            "metadata": {"deployment": name},
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
            "services": [{"protocol": "tcp", "internal_port": 8080, "autostop": if autostop { "stop" } else { "off" }, "autostart": autostop}],
            "restart": {"policy": "on-failure", "max_retries": 3}
        }
    })
}

async fn api(
    m: &Machines,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = client().request(method, m.api(path)).bearer_auth(&m.token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn create(m: &Machines, name: &str, autostop: bool) -> Value {
    let (status, machine) = api(
        m,
        reqwest::Method::POST,
        "/machines",
        Some(create_body(name, autostop)),
    )
    .await;
    assert_eq!(status, 200, "{machine}");
    machine
}

async fn wait(m: &Machines, id: &str, state: &str, extra: &str) -> StatusCode {
    api(
        m,
        reqwest::Method::GET,
        &format!("/machines/{id}/wait?state={state}&timeout=20{extra}"),
        None,
    )
    .await
    .0
}

async fn state(m: &Machines, id: &str) -> String {
    api(m, reqwest::Method::GET, &format!("/machines/{id}"), None)
        .await
        .1["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Opens an MCP session through ingress and returns the SSE answer to `initialize`.
async fn ingress_initialize(m: &Machines, id: &str) -> reqwest::Response {
    client()
        .post(format!("{}/mcp", m.base_url))
        .header("fly-force-instance-id", id)
        .bearer_auth(SECRET)
        .header("accept", "application/json, text/event-stream")
        .json(&init_body())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_create_wait_stop_start_delete_lifecycle_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let m = Machines::start(&dir.path().join("state"), 300);
    let machine = create(&m, "lifecycle", false).await;
    let id = machine["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 14);
    assert_eq!(machine["instance_id"].as_str().unwrap().len(), 26);
    assert!(matches!(
        machine["state"].as_str(),
        Some("created" | "starting")
    ));
    assert_eq!(wait(&m, &id, "started", "").await, 200);

    let resp = ingress_initialize(&m, &id).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("mcp-session-id").is_some());

    let instance = api(&m, reqwest::Method::GET, &format!("/machines/{id}"), None)
        .await
        .1["instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api(
            &m,
            reqwest::Method::POST,
            &format!("/machines/{id}/stop"),
            Some(json!({}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        wait(&m, &id, "stopped", &format!("&instance_id={instance}")).await,
        200
    );
    assert_eq!(state(&m, &id).await, "stopped");

    let (status, started) = api(
        &m,
        reqwest::Method::POST,
        &format!("/machines/{id}/start"),
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), started["previous_state"].as_str()),
        (200, Some("stopped"))
    );
    assert_eq!(wait(&m, &id, "started", "").await, 200);

    assert_eq!(
        api(
            &m,
            reqwest::Method::DELETE,
            &format!("/machines/{id}"),
            None
        )
        .await
        .0,
        412,
        "running needs force"
    );
    assert_eq!(
        api(
            &m,
            reqwest::Method::DELETE,
            &format!("/machines/{id}?force=true"),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        api(&m, reqwest::Method::GET, &format!("/machines/{id}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        api(
            &m,
            reqwest::Method::DELETE,
            &format!("/machines/{id}?force=true"),
            None
        )
        .await
        .0,
        404
    );
    let (_, all) = api(
        &m,
        reqwest::Method::GET,
        "/machines?include_deleted=true",
        None,
    )
    .await;
    assert_eq!(all[0]["state"], "destroyed");
    let (_, live) = api(&m, reqwest::Method::GET, "/machines", None).await;
    assert_eq!(live, json!([]));
}

#[tokio::test]
async fn machines_survive_a_restart_of_the_service_as_stopped_and_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let m = Machines::start(&state_dir, 300);
    let id = create(&m, "persistent", false).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    m.stop();

    let again = Machines::start(&state_dir, 300);
    // The old service's token is gone with it; the records are not.
    assert_eq!(state(&again, &id).await, "stopped");
    let (_, found) = api(
        &again,
        reqwest::Method::GET,
        "/machines?metadata.deployment=persistent",
        None,
    )
    .await;
    assert_eq!(found[0]["id"], id);
    assert_eq!(
        api(
            &again,
            reqwest::Method::POST,
            &format!("/machines/{id}/start"),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(wait(&again, &id, "started", "").await, 200);
    assert_eq!(ingress_initialize(&again, &id).await.status(), 200);
}

#[tokio::test]
async fn ingress_streams_sse_by_header_without_buffering() {
    let dir = tempfile::tempdir().unwrap();
    let m = Machines::start(&dir.path().join("state"), 300);
    let id = create(&m, "streaming", false).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    let init = ingress_initialize(&m, &id).await;
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    drop(init);
    let post = |body: Value| {
        client()
            .post(format!("{}/mcp", m.base_url))
            .header("fly-force-instance-id", &id)
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", "2025-11-25")
            .bearer_auth(SECRET)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
    };
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .unwrap();
    let start = Instant::now();
    let resp = post(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 3, "steps": 3}, "_meta": {"progressToken": 5}}}))
    .await
    .unwrap();
    let mut events = Events::new(resp);
    let first = events.next().await.unwrap();
    let first_at = start.elapsed();
    assert_eq!(json_of(&first)["method"], "notifications/progress");
    let mut last = Value::Null;
    while let Some(e) = events.next().await {
        last = json_of(&e);
    }
    let done_at = start.elapsed();
    assert_eq!(last["id"], 5);
    assert!(
        done_at - first_at > Duration::from_millis(1500),
        "progress buffered: first {first_at:?}, done {done_at:?}"
    );

    let unknown = client()
        .post(format!("{}/mcp", m.base_url))
        .header("fly-force-instance-id", "00000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let none = client()
        .post(format!("{}/mcp", m.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
}

#[tokio::test]
async fn an_idle_autostop_machine_stops_and_the_next_request_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = Machines::start(&dir.path().join("state"), 2);
    let id = create(&m, "sleepy", true).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    while state(&m, &id).await != "stopped" {
        assert!(Instant::now() < deadline, "never auto-stopped");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let resp = ingress_initialize(&m, &id).await;
    assert_eq!(
        resp.status(),
        200,
        "a request to a stopped autostart machine wakes it"
    );
    assert_eq!(state(&m, &id).await, "started");
}

/// The `catwalk-runner serve` processes running as machine `id` (by their environment).
fn runners_of(id: &str) -> usize {
    let want = format!("FLY_MACHINE_ID={id}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            cmd.starts_with(b"/")
                && String::from_utf8_lossy(&cmd).contains("catwalk-runner\0serve")
                && env.split(|b| *b == 0).any(|v| v == want.as_bytes())
        })
        .count()
}

/// An update that arrives while a restart is stopping the machine: both wait for the stop,
/// and only one of them may start the runner again (the other used to start a second
/// one, which kept running unseen: the API contract test left dozens).
#[tokio::test]
async fn an_update_during_a_restart_leaves_one_runner() {
    let dir = tempfile::tempdir().unwrap();
    let m = Machines::start(&dir.path().join("state"), 300);
    let machine = create(&m, "busy", false).await;
    let id = machine["id"].as_str().unwrap().to_string();
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    let (restart_path, update_path) =
        (format!("/machines/{id}/restart"), format!("/machines/{id}"));
    // The restart answers once its stop is under way, so the update lands while the old
    // process is still going (sent together, the update sometimes won the race and the
    // restart was rightly refused from `replacing` with a 412, which tests nothing).
    let (r, _) = api(&m, reqwest::Method::POST, &restart_path, None).await;
    let (u, _) = api(
        &m,
        reqwest::Method::POST,
        &update_path,
        Some(json!({"config": machine["config"]})),
    )
    .await;
    assert_eq!((r.as_u16(), u.as_u16()), (200, 200));
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    // The restart relaunches from a task of its own: give it its moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(runners_of(&id), 1, "one machine, one runner");
}

#[tokio::test]
async fn the_api_answers_like_fly_to_bad_tokens_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let m = Machines::start(&dir.path().join("state"), 300);
    let bad = client()
        .get(m.api("/machines"))
        .bearer_auth("fm2_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let none = client().get(m.api("/machines")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let flyv1 = client()
        .get(m.api("/machines"))
        .header("authorization", format!("FlyV1 {}", m.token))
        .send()
        .await
        .unwrap();
    assert_eq!(flyv1.status(), 200);

    let (status, err) = api(
        &m,
        reqwest::Method::POST,
        "/machines",
        Some(json!({"config": {"env": {}}})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(err["error"].as_str().unwrap().contains("image"));
    let garbage = client()
        .post(m.api("/machines"))
        .bearer_auth(&m.token)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);

    let id = create(&m, "unique-name", false).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, err) = api(
        &m,
        reqwest::Method::POST,
        "/machines",
        Some(create_body("unique-name", false)),
    )
    .await;
    assert_eq!(
        (status.as_u16(), err["status"].as_str()),
        (409, Some("name_taken"))
    );
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    assert_eq!(
        wait(&m, &id, "stopped", "").await,
        400,
        "stopped needs instance_id"
    );
    let instance = api(&m, reqwest::Method::GET, &format!("/machines/{id}"), None)
        .await
        .1["instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = api(
        &m,
        reqwest::Method::GET,
        &format!("/machines/{id}/wait?state=stopped&timeout=1&instance_id={instance}"),
        None,
    )
    .await;
    assert_eq!(status, 408);
    assert_eq!(
        api(&m, reqwest::Method::GET, "/machines/ffffffffffffff", None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn an_update_reboots_a_running_machine_into_the_new_config() {
    let dir = tempfile::tempdir().unwrap();
    let m = Machines::start(&dir.path().join("state"), 300);
    let machine = create(&m, "updatable", false).await;
    let id = machine["id"].as_str().unwrap().to_string();
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    let old_instance = machine["instance_id"].as_str().unwrap().to_string();

    let mut body = create_body("updatable", false);
    body["config"]["env"]["NEW_CREDENTIAL"] = json!("rotated-value");
    body["current_version"] = json!("stale-version");
    let (status, _) = api(
        &m,
        reqwest::Method::POST,
        &format!("/machines/{id}"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 409, "a stale current_version is refused");

    body["current_version"] = json!(old_instance);
    let (status, updated) = api(
        &m,
        reqwest::Method::POST,
        &format!("/machines/{id}"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_ne!(updated["instance_id"], old_instance);
    assert_eq!(updated["config"]["env"]["NEW_CREDENTIAL"], "rotated-value");
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    assert_eq!(
        ingress_initialize(&m, &id).await.status(),
        200,
        "the rebooted machine serves"
    );
}

/// Contract: the body the Worker builds (`deploy::fly::create_body`) is accepted by the
/// machines service, and the machine it describes serves MCP with its upstream secret.
#[tokio::test]
async fn the_workers_create_body_starts_a_serving_machine() {
    use catwalk_edge::deploy::fly::{create_body, MachineSpec, METADATA_KEY};
    let dir = tempfile::tempdir().unwrap();
    let m = Machines::start(&dir.path().join("state"), 300);
    // The runtime form a deployment uses; npx finds the pinned version in node_modules.
    let launch = launch_spec::LaunchSpec {
        runtime: launch_spec::Runtime::Npm,
        package: EVERYTHING_PACKAGE.into(),
        version: Some(EVERYTHING_VERSION.into()),
        args: vec!["stdio".into()],
    };
    let creds = vec![("ACME_TOKEN".to_string(), "canary".to_string())];
    let body = create_body(&MachineSpec {
        deployment_id: "dep_contract",
        image: "registry.fly.io/catwalk-machines:runner-test",
        region: None,
        launch: &launch,
        credentials: &creds,
        upstream_secret: SECRET,
        memory_mb: 256,
    });
    let (status, machine) = api(&m, reqwest::Method::POST, "/machines", Some(body)).await;
    assert_eq!(status, 200, "{machine}");
    let id = machine["id"].as_str().unwrap().to_string();
    assert_eq!(wait(&m, &id, "started", "").await, 200);
    let (_, found) = api(
        &m,
        reqwest::Method::GET,
        &format!("/machines?metadata.{METADATA_KEY}=dep_contract"),
        None,
    )
    .await;
    assert_eq!(
        found[0]["id"], id,
        "a retried create can find the machine by metadata"
    );
    assert_eq!(ingress_initialize(&m, &id).await.status(), 200);
}

/// What the Worker does after `started`: poll the machine's own `/health` through ingress
/// until `ready`, and read its `/logs` (here: also that the machine's MCP server got the
/// host's TLS / proxy / package-index settings, `CATWALK_MACHINE_PATH` in front of `PATH`,
/// the machine's config env over the host's, and nothing else of the host's environment).
#[tokio::test]
async fn ingress_serves_the_machines_health_and_logs_and_machines_get_the_hosts_tls_settings() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools-bin");
    std::fs::create_dir_all(&tools).unwrap();
    let tools_s = tools.display().to_string();
    let m = Machines::start_with_env(
        &dir.path().join("state"),
        300,
        &[
            ("CATWALK_MACHINE_PATH", &tools_s),
            ("npm_config_catwalk_probe", "npm-setting"),
            ("UV_CATWALK_PROBE", "uv-setting"),
            ("PIP_CATWALK_PROBE", "pip-setting"),
            ("no_proxy", "catwalk.test"),
            ("UV_INDEX_URL", "https://host.invalid/simple"),
            ("UNLISTED_HOST_SECRET", "must-not-reach-a-machine"),
        ],
    );
    // The MCP server writes its environment to a file before it starts.
    let env_file = dir.path().join("child.env");
    let script = r#"env > "$0"; exec node "$1" stdio"#;
    let mut body = create_body("envcheck", false);
    body["config"]["env"]["CATWALK_LAUNCH"] = json!(json!({"argv": ["sh", "-c", script,
        env_file.display().to_string(), server_everything().display().to_string()]})
    .to_string());
    body["config"]["env"]["UV_INDEX_URL"] = json!("https://config.invalid/simple");
    let (status, machine) = api(&m, reqwest::Method::POST, "/machines", Some(body)).await;
    assert_eq!(status, 200, "{machine}");
    let id = machine["id"].as_str().unwrap().to_string();
    assert_eq!(wait(&m, &id, "started", "").await, 200);

    let machine_health = || {
        client()
            .get(format!("{}/health", m.base_url))
            .header("fly-force-instance-id", &id)
            .send()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let resp = machine_health().await.unwrap();
        let code = resp.status().as_u16();
        let h: Value = resp.json().await.unwrap();
        assert!(
            matches!(
                (code, h["status"].as_str()),
                (503, Some("starting")) | (200, Some("ready"))
            ),
            "{code} {h}"
        );
        if code == 200 {
            break h;
        }
        assert!(Instant::now() < deadline, "never ready: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready["sessions"], 0);
    let own = client()
        .get(format!("{}/health", m.base_url))
        .send()
        .await
        .unwrap();
    let own: Value = own.json().await.unwrap();
    assert_eq!(
        own["status"], "ok",
        "without the header: the service's own health"
    );

    let logs = client()
        .get(format!("{}/logs?lines=5", m.base_url))
        .header("fly-force-instance-id", &id)
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(logs.status(), 200);
    let logs: Value = logs.json().await.unwrap();
    assert!(logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["line"].as_str().unwrap().starts_with("[probe] ready")));

    let env = std::fs::read_to_string(&env_file).unwrap();
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    assert_eq!(
        var("npm_config_catwalk_probe").as_deref(),
        Some("npm-setting")
    );
    assert_eq!(var("UV_CATWALK_PROBE").as_deref(), Some("uv-setting"));
    assert_eq!(var("PIP_CATWALK_PROBE").as_deref(), Some("pip-setting"));
    assert_eq!(var("no_proxy").as_deref(), Some("catwalk.test"));
    assert_eq!(
        var("UV_INDEX_URL").as_deref(),
        Some("https://config.invalid/simple"),
        "the machine's config env wins"
    );
    for name in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"] {
        if let Ok(host) = std::env::var(name) {
            assert_eq!(var(name), Some(host), "{name}");
        }
    }
    let path = var("PATH").unwrap_or_default();
    assert!(path.starts_with(&format!("{tools_s}:")), "{path}");
    assert_eq!(var("UNLISTED_HOST_SECRET"), None);
    assert_eq!(var("CATWALK_MACHINES_TOKEN"), None);
    assert_eq!(var("CATWALK_UPSTREAM_SECRET"), None);
}
