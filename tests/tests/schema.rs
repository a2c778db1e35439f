//! The D1 schema, checked natively on SQLite (D1 is SQLite): the migrations apply twice,
//! and its constraints refuse what the application must never store.

use edge_tests::repo_root;
use edge_tests::stack::rows;
use rusqlite::Connection;

/// Every migration in order, as wrangler applies them.
fn migrations() -> String {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn db() -> Connection {
    let sql = migrations();
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    conn.execute_batch(&sql).unwrap();
    conn.execute_batch(&sql)
        .expect("the migrations are idempotent");
    conn.execute_batch(
        "INSERT INTO users (id, email, created_at, last_seen_at) VALUES ('usr_1', 'a@b.co', 0, 0);",
    )
    .unwrap();
    conn
}

fn deployment(status: &str, id: &str, hash: &str) -> String {
    format!(
        "INSERT INTO deployments (id, owner_id, name, source, package, runtime, status, access_token_hash, created_at, updated_at) \
         VALUES ('{id}', 'usr_1', '{id}', 'npm:x', 'x', 'npm', '{status}', '{hash}', 0, 0);"
    )
}

#[test]
fn every_documented_deployment_status_is_accepted_and_nothing_else() {
    let conn = db();
    for (i, s) in [
        "pending",
        "deploying",
        "running",
        "stopped",
        "failed",
        "deleting",
    ]
    .iter()
    .enumerate()
    {
        conn.execute_batch(&deployment(s, &format!("dep_{i}"), &format!("h{i}")))
            .unwrap();
    }
    for bad in ["exploded", "RUNNING", ""] {
        assert!(
            conn.execute_batch(&deployment(bad, "dep_bad", "hb"))
                .is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn machine_ids_token_hashes_and_names_per_owner_are_unique() {
    let conn = db();
    conn.execute_batch(&deployment("running", "dep_a", "h1"))
        .unwrap();
    assert!(
        conn.execute_batch(&deployment("running", "dep_b", "h1"))
            .is_err(),
        "same token hash"
    );
    conn.execute_batch("UPDATE deployments SET machine_id = 'm1' WHERE id = 'dep_a';")
        .unwrap();
    conn.execute_batch(&deployment("running", "dep_c", "h3"))
        .unwrap();
    assert!(conn
        .execute_batch("UPDATE deployments SET machine_id = 'm1' WHERE id = 'dep_c';")
        .is_err());
    assert!(conn
        .execute_batch("INSERT INTO deployments (id, owner_id, name, source, package, runtime, access_token_hash, created_at, updated_at) VALUES ('dep_d', 'usr_1', 'dep_a', 's', 'p', 'npm', 'h4', 0, 0);")
        .is_err(), "same name for the same owner");
}

#[test]
fn credentials_go_with_their_deployment() {
    let conn = db();
    conn.execute_batch(&deployment("running", "dep_a", "h1"))
        .unwrap();
    conn.execute_batch("INSERT INTO credentials (deployment_id, key_id, nonce, ciphertext, created_at, updated_at) VALUES ('dep_a', 'k1', 'n', 'c', 0, 0);").unwrap();
    assert!(conn
        .execute_batch("INSERT INTO credentials (deployment_id, key_id, nonce, ciphertext, created_at, updated_at) VALUES ('dep_a', 'k1', 'n2', 'c2', 0, 0);")
        .is_err(), "one credentials row per deployment");
    conn.execute_batch("DELETE FROM deployments WHERE id = 'dep_a';")
        .unwrap();
    assert_eq!(
        rows(&conn, "SELECT COUNT(*) AS n FROM credentials")[0]["n"],
        0
    );
}

#[test]
fn json_columns_refuse_invalid_json_and_settings_are_plain_or_sealed_never_both() {
    let conn = db();
    assert!(conn
        .execute_batch("INSERT INTO analysis_cache (source_key, result, created_at, expires_at) VALUES ('k', 'not json', 0, 1);")
        .is_err());
    assert!(conn
        .execute_batch(
            "INSERT INTO audit_log (id, action, metadata, created_at) VALUES ('a', 'x', '{', 0);"
        )
        .is_err());
    conn.execute_batch("INSERT INTO user_settings (user_id, key, value, updated_at) VALUES ('usr_1', 'theme', 'dark', 0);").unwrap();
    conn.execute_batch("INSERT INTO user_settings (user_id, key, key_id, nonce, ciphertext, updated_at) VALUES ('usr_1', 'llm_api_key', 'k1', 'n', 'c', 0);").unwrap();
    assert!(conn
        .execute_batch("INSERT INTO user_settings (user_id, key, value, key_id, nonce, ciphertext, updated_at) VALUES ('usr_1', 'both', 'v', 'k1', 'n', 'c', 0);")
        .is_err());
    assert!(conn
        .execute_batch("INSERT INTO user_settings (user_id, key, key_id, updated_at) VALUES ('usr_1', 'half', 'k1', 0);")
        .is_err());
}

#[test]
fn emails_are_unique_regardless_of_case() {
    let conn = db();
    assert!(conn
        .execute_batch("INSERT INTO users (id, email, created_at, last_seen_at) VALUES ('usr_2', 'A@B.CO', 0, 0);")
        .is_err());
}
