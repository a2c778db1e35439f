use edge_tests::stack::{client, Stack, StackOptions};
use serde_json::{json, Value};

use crate::support::{get, stack, unique};

#[test]
fn migrations_apply_cleanly_twice() {
    let s = stack();
    let fresh = tempfile::tempdir().unwrap();
    let persist = fresh.path().display().to_string();
    let args = [
        "d1",
        "migrations",
        "apply",
        "DB",
        "--local",
        "--persist-to",
        &persist,
    ];
    let first = s.wrangler(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = s.wrangler(&args);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(String::from_utf8_lossy(&second.stdout).contains("No migrations to apply"));

    // The SQL itself is idempotent too: re-running the file directly changes nothing.
    let file = edge_tests::repo_root()
        .join("migrations/0001_initial.sql")
        .display()
        .to_string();
    let rerun = s.wrangler(&[
        "d1",
        "execute",
        "DB",
        "--local",
        "--persist-to",
        &persist,
        "--file",
        &file,
    ]);
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
}

#[tokio::test]
async fn the_storage_probe_round_trips_d1_kv_and_a_durable_object() {
    let token = stack().token(&format!("probe-{}", unique()), None);
    let first: Value = get("/api/health/storage", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["status"], "healthy", "{first}");
    // Every table migrations/*.sql create (store::schema::TABLES).
    assert_eq!(first["d1"]["detail"]["tables"], 13);
    assert_eq!(first["kv"]["ok"], true);
    let n1 = first["durable_object"]["detail"]["count"].as_u64().unwrap();
    let second: Value = get("/api/health/storage", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let n2 = second["durable_object"]["detail"]["count"]
        .as_u64()
        .unwrap();
    assert!(n2 > n1, "the object's storage persisted: {n1} then {n2}");
    // Anonymous callers get no probe.
    assert_eq!(get("/api/health/storage", None).await.status(), 401);
}

async fn run_cron(s: &Stack, cron: &str) {
    let resp = client()
        .get(s.url("/__scheduled"))
        .query(&[("cron", cron)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Cron jobs get a stack of their own: seeding writes to D1 from outside the Worker, which
/// must not race the shared stack's traffic.
#[tokio::test]
async fn cron_jobs_clean_expired_cache_rows_and_fail_stuck_deployments() {
    let s = Stack::start(StackOptions::default());
    s.seed(
        "INSERT INTO analysis_cache (source_key, result, created_at, expires_at) VALUES \
           ('old1', '{}', 0, 1000), ('old2', '{}', 0, 2000), ('fresh', '{}', 0, 99999999999999); \
         INSERT INTO users (id, created_at, last_seen_at) VALUES ('usr_rec', 0, 0); \
         INSERT INTO deployments (id, owner_id, name, source, package, runtime, status, access_token_hash, created_at, updated_at) VALUES \
           ('dep_stuck', 'usr_rec', 'a', 'npm:x', 'x', 'npm', 'deploying', 'h1', 0, 0), \
           ('dep_new', 'usr_rec', 'b', 'npm:x', 'x', 'npm', 'deploying', 'h2', 0, 99999999999999), \
           ('dep_run', 'usr_rec', 'c', 'npm:x', 'x', 'npm', 'running', 'h3', 0, 0);",
    );

    run_cron(&s, "*/30 * * * *").await;
    let rows = s.query("SELECT source_key FROM analysis_cache ORDER BY source_key");
    assert_eq!(rows, vec![json!({"source_key": "fresh"})]);

    run_cron(&s, "*/5 * * * *").await;
    let rows = s.query(
        "SELECT id, status, error_message IS NOT NULL AS has_error FROM deployments ORDER BY id",
    );
    assert_eq!(
        rows,
        vec![
            json!({"id": "dep_new", "status": "deploying", "has_error": 0}),
            json!({"id": "dep_run", "status": "running", "has_error": 0}),
            json!({"id": "dep_stuck", "status": "failed", "has_error": 1}),
        ]
    );

    // An unknown schedule is logged and changes nothing.
    run_cron(&s, "0 0 1 1 *").await;
    assert!(s.wait_for_log("cron_unknown").contains("cron_unknown"));
    s.stop();
}
