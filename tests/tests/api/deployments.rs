//! Deployments end to end: wrangler dev → the local machines service (the same runner
//! binary that runs in each machine) with a fake npm registry for the analysis. Covers the
//! happy path to `running`, validation (nothing written), the token shown once and
//! rotation, the cross-owner matrix, stop/start/restart, credential updates, the vault's
//! key rotation, delete (also while deploying), audit, settings, and a canary credential
//! that must appear nowhere it should not.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use catwalk_edge::crypto::keyring::KeyRing;
use catwalk_edge::deploy::secrets::{seal_env, seal_upstream};
use edge_tests::fake::{FakeServer, Reply};
use edge_tests::runner::Machines;
use edge_tests::stack::{client, test_encryption_key, Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};

pub use edge_tests::runner::{
    publish_everything, EVERYTHING_PACKAGE as PACKAGE, EVERYTHING_VERSION as VERSION,
};
/// The newer key the stack seals with; `t1` (the harness key) still opens old records.
const NEW_KEY: [u8; 32] = [0x42; 32];

pub struct World {
    /// Kept alive for the stack: the npm registry analysis reads.
    _registry: FakeServer,
    pub machines: Machines,
    pub stack: Stack,
    _dir: tempfile::TempDir,
}

/// A stack whose Fly API is the machines service, reached directly or through `proxy`
/// (a fake that forwards everything it has no scripted fault for).
pub fn start_world(proxy: Option<&FakeServer>, extra: Vec<(String, String)>) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let machines = Machines::start(&dir.path().join("machines"), 600);
    let fly_base = match proxy {
        Some(p) => {
            p.on("*", "/*", Reply::forward(machines.base_url.clone()));
            p.url()
        }
        None => machines.base_url.clone(),
    };
    let fake = FakeServer::start();
    publish_everything(&fake);
    let keys = format!(
        "t2:{},t1:{}",
        STANDARD.encode(NEW_KEY),
        STANDARD.encode(test_encryption_key())
    );
    let mut vars = vec![
        ("NPM_REGISTRY_BASE".into(), format!("{}/npm", fake.url())),
        ("FLY_API_BASE".into(), fly_base.clone()),
        // The machines service also plays Fly's proxy (routing by fly-force-instance-id).
        ("FLY_INGRESS_BASE".into(), fly_base),
        ("FLY_API_TOKEN".into(), machines.token.clone()),
        ("FLY_APP".into(), "catwalk-test".into()),
        ("ENCRYPTION_KEYS".into(), keys),
        ("FLY_START_TIMEOUT_SECS".into(), "30".into()),
    ];
    vars.extend(extra);
    let stack = Stack::start(StackOptions {
        vars,
        ..Default::default()
    });
    World {
        _registry: fake,
        machines,
        stack,
        _dir: dir,
    }
}

pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| start_world(None, vec![("MAX_DEPLOYMENTS_PER_USER".into(), "3".into())]))
}

/// A fresh person on `w`'s stack.
pub fn person(w: &World) -> String {
    let sub = format!("dep-{}", edge_tests::random_hex(6));
    w.stack.token(&sub, Some(&format!("{sub}@example.com")))
}

pub async fn call(
    w: &World,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    w.stack.call(method, path, token, body).await
}

/// A body-less call on one deployment: `suffix` is "" or e.g. "/stop".
pub async fn on(
    w: &World,
    method: Method,
    token: &str,
    id: &str,
    suffix: &str,
) -> (u16, Value, String) {
    call(
        w,
        method,
        &format!("/api/deployments/{id}{suffix}"),
        token,
        None,
    )
    .await
}

pub fn create_body(name: &str, canary: &str) -> Value {
    json!({"name": name, "package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": canary}})
}

/// Polls the deployment until `done` holds (or fails the test with the last body).
pub async fn wait_for(w: &World, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, body, _) = on(w, Method::GET, token, id, "").await;
        if done(&body) {
            return body;
        }
        if Instant::now() >= deadline {
            // What the Worker said about it (provision errors, scheduling) is the why.
            let said: Vec<String> = w
                .stack
                .logs()
                .lines()
                .filter(|l| l.contains(id))
                .map(str::to_string)
                .collect();
            panic!(
                "never settled: {body}\nthe Worker's log about it:\n{}",
                said.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn wait_status(w: &World, token: &str, id: &str, want: &str) -> Value {
    wait_for(w, token, id, |d| d["status"] == want).await
}

/// Machines (not destroyed) the local Fly API holds for a deployment.
pub async fn machines_of(w: &World, id: &str) -> Vec<Value> {
    let list = w
        .machines
        .machines(&format!("?metadata.catwalk_deployment={id}"))
        .await;
    list.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] != "destroyed")
        .cloned()
        .collect()
}

pub async fn machine(w: &World, machine_id: &str) -> Value {
    w.machines.machine(machine_id).await
}

/// Stops a machine behind the Worker's back (as Fly's auto-stop would) and waits until the
/// local Fly API says `stopped`.
pub async fn stop_machine(w: &World, machine_id: &str) {
    w.machines
        .stop_machine(machine_id, Duration::from_secs(20))
        .await
}

pub fn sha256_hex(s: &str) -> String {
    catwalk_edge::deploy::token::digest(s)
}

pub async fn deploy_running(
    w: &World,
    token: &str,
    name: &str,
    canary: &str,
) -> (String, String, Value) {
    let (status, body, text) = call(
        w,
        Method::POST,
        "/api/deployments",
        token,
        Some(create_body(name, canary)),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let id = body["id"].as_str().unwrap().to_string();
    let access = body["access_token"].as_str().unwrap().to_string();
    let running = wait_status(w, token, &id, "running").await;
    (id, access, running)
}

#[tokio::test]
async fn a_deployment_goes_from_201_to_a_running_machine() {
    let w = world();
    let token = person(w);
    let canary = format!("canary-{}", edge_tests::random_hex(8));
    let (status, body, _) = call(
        w,
        Method::POST,
        "/api/deployments",
        &token,
        Some(create_body("everything", &canary)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(body["status"], "deploying");
    assert!(body["connection_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/api/mcp/{id}")));
    let access = body["access_token"].as_str().unwrap();
    assert!(access.starts_with("cwk_") && access.len() == 68);
    for client_name in ["claude_desktop", "claude_code", "cursor", "vscode"] {
        assert!(
            !body["client_config"][client_name].is_null(),
            "{client_name}"
        );
    }
    assert!(body["client_config"]["claude_code"]
        .as_str()
        .unwrap()
        .starts_with("claude mcp add --transport http everything "));

    let running = wait_status(w, &token, id, "running").await;
    assert_eq!(running["machine"]["state"], "started", "{running}");
    assert_eq!(running["package"], PACKAGE);
    assert_eq!(running["version"], VERSION);
    let names: Vec<&str> = running["env_vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"CANARY_TOKEN"));
    let shown = running.to_string();
    assert!(
        !shown.contains(&canary) && !shown.contains(&access[4..]),
        "no secrets in GET"
    );

    // The machine has what the runner needs, and its runner answers through ingress.
    let ms = machines_of(w, id).await;
    assert_eq!(ms.len(), 1, "exactly one machine");
    let env = &ms[0]["config"]["env"];
    assert_eq!(env["CANARY_TOKEN"], canary.as_str());
    assert!(env["CATWALK_UPSTREAM_SECRET"].as_str().unwrap().len() >= 32);
    assert!(env["CATWALK_LAUNCH"].as_str().unwrap().contains(PACKAGE));
    let health = client()
        .get(format!("{}/health", w.machines.base_url))
        .header("fly-force-instance-id", ms[0]["id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // Stored: the digest only, sealed credentials under the current key.
    let rows = w.stack.query(&format!("SELECT d.access_token_hash, c.key_id, c.ciphertext, d.config FROM deployments d JOIN credentials c ON c.deployment_id = d.id WHERE d.id = '{id}'"));
    assert_eq!(rows[0]["access_token_hash"], sha256_hex(access).as_str());
    assert_eq!(rows[0]["key_id"], "t2");
    assert!(!rows[0].to_string().contains(&canary));

    // Listed, newest first; audited.
    let (_, list, _) = call(w, Method::GET, "/api/deployments", &token, None).await;
    assert_eq!(list["items"][0]["id"], id);
    assert!(
        !list.to_string().contains(&access[4..]),
        "the token is never shown again"
    );
    let (_, audit, _) = call(w, Method::GET, "/api/audit", &token, None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"deployment.created") && actions.contains(&"deployment.running"),
        "{actions:?}"
    );
    assert!(!audit.to_string().contains(&canary));
}

#[tokio::test]
async fn every_validation_failure_names_its_field_and_writes_nothing() {
    let w = world();
    let token = person(w);
    let me: Value = client()
        .get(w.stack.url("/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uid = me["user"]["id"].as_str().unwrap().to_string();
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": "x"}}),
            422,
            "name",
        ),
        (
            json!({"name": "Bad\u{1b}[31m Name", "package": format!("npm:{PACKAGE}")}),
            422,
            "name",
        ),
        (
            json!({"name": "; | $(\u{200b})", "package": format!("npm:{PACKAGE}")}),
            422,
            "name",
        ),
        (
            json!({"name": "ok", "package": format!("npm:{PACKAGE}")}),
            422,
            "credentials.CANARY_TOKEN",
        ),
        (
            json!({"name": "ok", "package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": "  "}}),
            422,
            "credentials.CANARY_TOKEN",
        ),
        (
            json!({"name": "ok", "package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": "x", "SMUGGLED": "y"}}),
            422,
            "credentials.SMUGGLED",
        ),
        (
            json!({"name": "ok", "package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": "x", "LD_PRELOAD": "/tmp/x.so"}}),
            422,
            "credentials.LD_PRELOAD",
        ),
        (
            json!({"name": "ok", "package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": 5}}),
            422,
            "credentials.CANARY_TOKEN",
        ),
        (
            json!({"name": "ok", "package": format!("npm:{PACKAGE}"), "credentials": ["CANARY_TOKEN"]}),
            422,
            "credentials",
        ),
        (
            json!({"name": "ok", "package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": "x"}, "region": "$(id)"}),
            422,
            "region",
        ),
        (
            json!({"name": "ok", "repo_url": "http://169.254.169.254/latest/meta-data", "credentials": {}}),
            400,
            "",
        ),
        (
            json!({"name": "ok", "package": "npm:../../etc/passwd"}),
            400,
            "",
        ),
        (
            json!({"name": "ok", "package": "npm:@nobody/not-published"}),
            404,
            "",
        ),
        (json!(["not", "an", "object"]), 400, ""),
    ];
    for (body, want, field) in cases {
        let (status, resp, text) = call(
            w,
            Method::POST,
            "/api/deployments",
            &token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, want, "{body} → {text}");
        assert!(
            resp["error"]["code"].is_string() && resp["error"]["message"].is_string(),
            "{text}"
        );
        if !field.is_empty() {
            let fields: Vec<&str> = resp["error"]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{field} in {fields:?}");
        }
    }
    // Bad JSON, wrong media type, oversized.
    for (ct, body, want) in [
        ("application/json", b"{\"name\": ".to_vec(), 400),
        ("text/plain", b"{}".to_vec(), 415),
        ("application/json", vec![b' '; 70 * 1024], 413),
    ] {
        let r = client()
            .post(w.stack.url("/api/deployments"))
            .bearer_auth(&token)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want);
    }
    let rows = w.stack.query(&format!(
        "SELECT id FROM deployments WHERE owner_id = '{uid}'"
    ));
    assert!(rows.is_empty(), "nothing written: {rows:?}");

    // Names are unique per person, and the per-person limit (3 here) holds.
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let (s, b, _) = call(
            w,
            Method::POST,
            "/api/deployments",
            &token,
            Some(create_body(name, "c")),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    let (s, b, _) = call(
        w,
        Method::POST,
        "/api/deployments",
        &token,
        Some(create_body("one", "c")),
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"][0]["field"].as_str()),
        (422, Some("name")),
        "{b}"
    );
    let (s, b, _) = call(
        w,
        Method::POST,
        "/api/deployments",
        &token,
        Some(create_body("four", "c")),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains('3'), "{b}");
    assert_eq!(
        w.stack
            .query(&format!(
                "SELECT id FROM deployments WHERE owner_id = '{uid}'"
            ))
            .len(),
        3
    );
    for id in ids {
        wait_status(w, &token, &id, "running").await;
        let (s, _, _) = on(w, Method::DELETE, &token, &id, "").await;
        assert_eq!(s, 204);
    }
}

#[tokio::test]
async fn another_persons_deployment_is_always_404() {
    let w = world();
    let (alice, mallory) = (person(w), person(w));
    let (id, access, _) = deploy_running(w, &alice, "private", "alice-secret").await;
    let unknown = format!("dep_{}", "0".repeat(30));
    for target in [id.as_str(), unknown.as_str()] {
        for (method, suffix, body) in [
            (Method::GET, "", None),
            (Method::DELETE, "", None),
            (Method::POST, "/rotate-token", None),
            (Method::POST, "/stop", None),
            (Method::POST, "/start", None),
            (Method::POST, "/restart", None),
            (
                Method::PUT,
                "/credentials",
                Some(json!({"credentials": {"CANARY_TOKEN": "stolen"}})),
            ),
        ] {
            let (s, b, _) = call(
                w,
                method.clone(),
                &format!("/api/deployments/{target}{suffix}"),
                &mallory,
                body,
            )
            .await;
            assert_eq!(
                (s, b["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{method} {suffix}"
            );
            assert_eq!(
                b["error"]["message"], "No such deployment.",
                "same body for unknown and foreign"
            );
        }
    }
    let (_, list, _) = call(w, Method::GET, "/api/deployments", &mallory, None).await;
    assert_eq!(list["items"], json!([]));
    // Untouched for its owner.
    let d = wait_status(w, &alice, &id, "running").await;
    assert_eq!(d["machine"]["state"], "started");
    let rows = w.stack.query(&format!(
        "SELECT access_token_hash FROM deployments WHERE id = '{id}'"
    ));
    assert_eq!(rows[0]["access_token_hash"], sha256_hex(&access).as_str());
}

#[tokio::test]
async fn rotation_replaces_the_token_at_once_and_shows_it_only_there() {
    let w = world();
    let token = person(w);
    let (id, old, _) = deploy_running(w, &token, "rotating", "rot-secret").await;
    let (s, body, _) = on(w, Method::POST, &token, &id, "/rotate-token").await;
    assert_eq!(s, 200);
    let new = body["access_token"].as_str().unwrap();
    assert!(new.starts_with("cwk_") && new != old);
    let rows = w.stack.query(&format!(
        "SELECT access_token_hash FROM deployments WHERE id = '{id}'"
    ));
    assert_eq!(
        rows[0]["access_token_hash"],
        sha256_hex(new).as_str(),
        "the old digest is gone with this write"
    );
    let (_, got, _) = on(w, Method::GET, &token, &id, "").await;
    assert!(!got.to_string().contains(&new[4..]) && !got.to_string().contains(&old[4..]));
    let (_, audit, _) = call(w, Method::GET, "/api/audit?limit=1", &token, None).await;
    assert_eq!(
        audit["items"][0]["action"], "deployment.token_rotated",
        "{audit}"
    );
    assert!(audit["next_cursor"].is_string());
    let (_, page2, _) = call(
        w,
        Method::GET,
        &format!(
            "/api/audit?limit=1&cursor={}",
            audit["next_cursor"].as_str().unwrap()
        ),
        &token,
        None,
    )
    .await;
    assert_ne!(page2["items"][0]["id"], audit["items"][0]["id"]);
    assert_eq!(
        call(w, Method::GET, "/api/audit?cursor=1.x'--", &token, None)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn stop_start_restart_and_credentials_reach_the_machine() {
    let w = world();
    let token = person(w);
    let (id, _, running) = deploy_running(w, &token, "lifecycle", "first-secret").await;
    let machine_id = running["machine"]["id"].as_str().unwrap().to_string();
    let path = |s: &str| format!("/api/deployments/{id}{s}");

    let (s, b, _) = call(w, Method::POST, &path("/stop"), &token, None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("stopped")), "{b}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while machine(w, &machine_id).await["state"] != "stopped" {
        assert!(Instant::now() < deadline, "machine never stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, b, _) = call(w, Method::POST, &path("/stop"), &token, None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("illegal_transition"))
    );
    let (s, b, _) = call(w, Method::POST, &path("/start"), &token, None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("running")), "{b}");
    let (s, b, _) = call(w, Method::POST, &path("/restart"), &token, None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("running")), "{b}");

    // New credentials: validated, sealed, pushed to the machine.
    let (s, b, _) = call(
        w,
        Method::PUT,
        &path("/credentials"),
        &token,
        Some(json!({"credentials": {"EXTRA_REGION": "eu"}})),
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"][0]["field"].as_str()),
        (422, Some("credentials.CANARY_TOKEN"))
    );
    let before = w.stack.query(&format!(
        "SELECT ciphertext FROM credentials WHERE deployment_id = '{id}'"
    ));
    let (s, b, _) = call(
        w,
        Method::PUT,
        &path("/credentials"),
        &token,
        Some(json!({"credentials": {"CANARY_TOKEN": "second-secret", "EXTRA_REGION": "eu"}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let m = machine(w, &machine_id).await;
    assert_eq!(m["config"]["env"]["CANARY_TOKEN"], "second-secret");
    assert_eq!(m["config"]["env"]["EXTRA_REGION"], "eu");
    let after = w.stack.query(&format!(
        "SELECT ciphertext FROM credentials WHERE deployment_id = '{id}'"
    ));
    assert_ne!(before, after);
    let (_, audit, _) = call(w, Method::GET, "/api/audit", &token, None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "deployment.stopped",
        "deployment.started",
        "deployment.restarted",
        "deployment.credentials_updated",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(!audit.to_string().contains("second-secret"));
}

#[tokio::test]
async fn delete_destroys_the_machine_and_forgets_everything() {
    let w = world();
    let token = person(w);
    let (id, _, running) = deploy_running(w, &token, "doomed", "doomed-secret").await;
    let machine_id = running["machine"]["id"].as_str().unwrap().to_string();
    let (s, _, _) = on(w, Method::DELETE, &token, &id, "").await;
    assert_eq!(s, 204);
    let m = client()
        .get(w.machines.api(&format!("/machines/{machine_id}")))
        .bearer_auth(&w.machines.token)
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 404, "the machine is destroyed");
    assert!(w
        .stack
        .query(&format!("SELECT id FROM deployments WHERE id = '{id}'"))
        .is_empty());
    assert!(w
        .stack
        .query(&format!(
            "SELECT deployment_id FROM credentials WHERE deployment_id = '{id}'"
        ))
        .is_empty());
    let (s, _, _) = on(w, Method::DELETE, &token, &id, "").await;
    assert_eq!(s, 404, "nothing left to delete");
}

#[tokio::test]
async fn deleting_while_deploying_leaves_no_machine_behind() {
    let w = world();
    let token = person(w);
    let (s, b, _) = call(
        w,
        Method::POST,
        "/api/deployments",
        &token,
        Some(create_body("hasty", "hasty-secret")),
    )
    .await;
    assert_eq!(s, 201);
    let id = b["id"].as_str().unwrap();
    let (s, _, text) = on(w, Method::DELETE, &token, id, "").await;
    assert_eq!(s, 204, "{text}");
    // Give the creation time to finish whatever it had started.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let left = machines_of(w, id).await;
        if Instant::now() > deadline {
            assert!(left.is_empty(), "orphan machines: {left:?}");
            break;
        }
    }
    assert!(w
        .stack
        .query(&format!("SELECT id FROM deployments WHERE id = '{id}'"))
        .is_empty());
}

#[tokio::test]
async fn settings_hold_secrets_sealed_and_a_persons_own_fly_token_is_used() {
    let w = world();
    let token = person(w);
    let (s, b, _) = call(
        w,
        Method::PUT,
        "/api/settings",
        &token,
        Some(json!({"llm_api_key": "sk-own-llm-key-123", "bogus": 1})),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    let (s, b, _) = call(w, Method::PUT, "/api/settings", &token, Some(json!({"llm_api_key": "sk-own-llm-key-123", "fly_api_token": "fo1_wrong-token", "fly_app": "catwalk-test"}))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["settings"]["llm_api_key"]["set"], true);
    assert_eq!(b["settings"]["llm_api_key"]["last_four"], "-123", "{b}");
    assert_eq!(b["settings"]["fly_api_token"]["last_four"], "oken", "{b}");
    assert_eq!(b["settings"]["fly_app"]["value"], "catwalk-test");
    assert!(!b.to_string().contains("sk-own-llm-key-123") && !b.to_string().contains("fo1_wrong"));
    let stored = w
        .stack
        .query("SELECT * FROM user_settings")
        .iter()
        .map(Value::to_string)
        .collect::<String>();
    assert!(!stored.contains("sk-own-llm-key-123") && !stored.contains("fo1_wrong"));

    // The person's own (wrong) Fly token is the one used: the platform refuses it.
    let (s, b, _) = call(
        w,
        Method::POST,
        "/api/deployments",
        &token,
        Some(create_body("own-fly", "own-secret")),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap();
    let failed = wait_status(w, &token, id, "failed").await;
    assert!(
        failed["error_message"].as_str().unwrap().contains("401"),
        "{failed}"
    );
    assert!(machines_of(w, id).await.is_empty());
    // Cleared → the operator's account again, and a restart of a failed deployment retries.
    let (s, _, _) = call(
        w,
        Method::PUT,
        "/api/settings",
        &token,
        Some(json!({"fly_api_token": null, "fly_app": null})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b, _) = on(w, Method::POST, &token, id, "/restart").await;
    assert_eq!((s, b["status"].as_str()), (200, Some("deploying")), "{b}");
    wait_status(w, &token, id, "running").await;
    let (_, audit, _) = call(w, Method::GET, "/api/audit", &token, None).await;
    assert!(audit.to_string().contains("settings.changed"));
    on(w, Method::DELETE, &token, id, "").await;
}

#[tokio::test]
async fn old_key_records_open_and_are_resealed_and_tampering_fails() {
    let w = world();
    let token = person(w);
    let (id, _, running) = deploy_running(w, &token, "vaulted", "vault-secret").await;
    let machine_id = running["machine"]["id"].as_str().unwrap().to_string();
    let (id2, _, _) = deploy_running(w, &token, "neighbour", "neighbour-secret").await;

    // A record sealed under the old key t1, with an upstream secret we know.
    let old_ring =
        KeyRing::parse(&format!("t1:{}", STANDARD.encode(test_encryption_key()))).unwrap();
    let known = "0123456789abcdef".repeat(4);
    let env = seal_env(
        &old_ring,
        &id,
        &[("CANARY_TOKEN".into(), "old-key-secret".into())],
    )
    .unwrap();
    let upstream = seal_upstream(&old_ring, &id, &known).unwrap();
    for (table, sealed) in [("credentials", env), ("upstream_secrets", upstream)] {
        w.stack.seed(&format!(
            "UPDATE {table} SET key_id = '{}', nonce = '{}', ciphertext = '{}' WHERE deployment_id = '{id}'",
            sealed.key_id, sealed.nonce, sealed.ciphertext
        ));
    }
    let (s, b, _) = call(
        w,
        Method::PUT,
        &format!("/api/deployments/{id}/credentials"),
        &token,
        Some(json!({"credentials": {"CANARY_TOKEN": "after-rotation"}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let m = machine(w, &machine_id).await;
    assert_eq!(
        m["config"]["env"]["CATWALK_UPSTREAM_SECRET"],
        known.as_str(),
        "the old record was opened"
    );
    for table in ["credentials", "upstream_secrets"] {
        let rows = w.stack.query(&format!(
            "SELECT key_id FROM {table} WHERE deployment_id = '{id}'"
        ));
        assert_eq!(
            rows[0]["key_id"], "t2",
            "{table} re-sealed under the current key"
        );
    }

    // A ciphertext copied from another deployment, then a flipped byte: both refused.
    w.stack.seed(&format!(
        "UPDATE credentials SET (key_id, nonce, ciphertext) = (SELECT key_id, nonce, ciphertext FROM credentials WHERE deployment_id = '{id2}') WHERE deployment_id = '{id}'"
    ));
    let put = json!({"credentials": {"CANARY_TOKEN": "x"}});
    let (s, b, text) = call(
        w,
        Method::PUT,
        &format!("/api/deployments/{id}/credentials"),
        &token,
        Some(put.clone()),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (500, Some("internal_error")),
        "{text}"
    );
    assert!(!text.contains("neighbour-secret"));
    let ct = w.stack.query(&format!(
        "SELECT ciphertext FROM credentials WHERE deployment_id = '{id2}'"
    ))[0]["ciphertext"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = STANDARD.decode(&ct).unwrap();
    bytes[3] ^= 0x01;
    w.stack.seed(&format!(
        "UPDATE credentials SET ciphertext = '{}' WHERE deployment_id = '{id2}'",
        STANDARD.encode(bytes)
    ));
    let (s, _, _) = call(
        w,
        Method::PUT,
        &format!("/api/deployments/{id2}/credentials"),
        &token,
        Some(put),
    )
    .await;
    assert_eq!(s, 500);
    assert!(w
        .stack
        .wait_for_log("authentication failed")
        .contains("authentication failed"));
    for d in [&id, &id2] {
        assert_eq!(on(w, Method::DELETE, &token, d, "").await.0, 204);
    }
}

#[tokio::test]
async fn a_canary_credential_never_leaves_the_vault() {
    let w = world();
    let token = person(w);
    let canary = format!("CANARY{}", edge_tests::random_hex(12));
    let mut seen = String::new();
    let (s, b, text) = call(
        w,
        Method::POST,
        "/api/deployments",
        &token,
        Some(create_body("canary", &canary)),
    )
    .await;
    assert_eq!(s, 201);
    seen += &text;
    let id = b["id"].as_str().unwrap().to_string();
    seen += &wait_status(w, &token, &id, "running").await.to_string();
    for (m, p, body) in [
        (Method::GET, format!("/api/deployments/{id}"), None),
        (Method::GET, "/api/deployments".to_string(), None),
        (
            Method::POST,
            format!("/api/deployments/{id}/rotate-token"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/deployments/{id}/credentials"),
            Some(json!({"credentials": {"CANARY_TOKEN": canary, "NOT_KNOWN": canary}})),
        ),
        (
            Method::PUT,
            format!("/api/deployments/{id}/credentials"),
            Some(json!({"credentials": {"CANARY_TOKEN": canary}})),
        ),
        (Method::GET, "/api/audit".to_string(), None),
        (Method::DELETE, format!("/api/deployments/{id}"), None),
    ] {
        seen += &call(w, m, &p, &token, body).await.2;
    }
    assert!(!seen.contains(&canary), "a response carried the canary");
    let logs = w.stack.logs();
    assert!(!logs.is_empty());
    assert!(!logs.contains(&canary), "a log line carried the canary");
    let mut stack_files = Vec::new();
    collect_files(w.stack.dir(), &mut stack_files);
    assert!(!stack_files.is_empty());
    for f in stack_files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes
                .windows(canary.len())
                .any(|win| win == canary.as_bytes()),
            "{} holds the canary",
            f.display()
        );
    }
}

pub fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Names as people type them: kept as typed, slugged for machine names, client config keys
/// and uniqueness; shell metacharacters never reach a client config.
#[tokio::test]
async fn a_display_name_is_kept_as_typed_and_its_slug_is_unique() {
    let w = world();
    let token = person(w);
    let (s, body, text) = call(
        w,
        Method::POST,
        "/api/deployments",
        &token,
        Some(json!({"name": "  My TickTick; rm -rf / ", "package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": "display-secret"}})),
    )
    .await;
    assert_eq!(s, 201, "{text}");
    assert_eq!(body["name"], "My TickTick; rm -rf /");
    assert_eq!(body["slug"], "my-ticktick-rm-rf");
    let code = body["client_config"]["claude_code"].as_str().unwrap();
    assert!(code.contains(" my-ticktick-rm-rf "), "{code}");
    assert!(!code.contains(';') && !code.contains("rm -rf /"), "{code}");
    assert!(body["client_config"]["claude_desktop"]["mcpServers"]["my-ticktick-rm-rf"].is_object());
    let id = body["id"].as_str().unwrap().to_string();
    let (_, got, _) = on(w, Method::GET, &token, &id, "").await;
    assert_eq!(
        (got["name"].as_str(), got["slug"].as_str()),
        (Some("My TickTick; rm -rf /"), Some("my-ticktick-rm-rf"))
    );
    let (_, list, _) = call(w, Method::GET, "/api/deployments", &token, None).await;
    assert_eq!(list["items"][0]["name"], "My TickTick; rm -rf /");
    let (s, clash, text) = call(
        w,
        Method::POST,
        "/api/deployments",
        &token,
        Some(json!({"name": "my ticktick (rm -rf)", "package": format!("npm:{PACKAGE}"), "credentials": {"CANARY_TOKEN": "x"}})),
    )
    .await;
    assert_eq!(s, 422, "{text}");
    let field = clash["error"]["fields"][0].clone();
    assert_eq!(field["field"], "name", "{clash}");
    assert!(
        field["message"]
            .as_str()
            .unwrap()
            .contains("my-ticktick-rm-rf"),
        "{clash}"
    );
    on(w, Method::DELETE, &token, &id, "").await;
}
