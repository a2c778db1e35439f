use edge_tests::jwt;
use edge_tests::stack::{client, Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{error_code, get, send, stack, unique};

async fn me(token: Option<&str>) -> reqwest::Response {
    get("/api/auth/me", token).await
}

fn reason(resp: &reqwest::Response) -> String {
    let h = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(h.starts_with("Bearer "), "{h}");
    h
}

#[tokio::test]
async fn every_bad_token_is_a_401_json_error_with_a_bearer_challenge() {
    let key = stack().var("AUTH_SECRET");
    let hs = json!({"alg": "HS256", "typ": "JWT"});
    let t = jwt::now();
    let ok = jwt::claims("u-reject", None, 600);
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no header", None, "missing_token"),
        ("malformed", Some("not-a-jwt".into()), "malformed_token"),
        (
            "alg none",
            Some(jwt::unsigned(&ok)),
            "unsupported_algorithm",
        ),
        (
            "HS512",
            Some(jwt::sign(&json!({"alg": "HS512"}), &ok, key)),
            "unsupported_algorithm",
        ),
        (
            "RS256",
            Some(jwt::sign(&json!({"alg": "RS256"}), &ok, key)),
            "unsupported_algorithm",
        ),
        (
            "wrong key",
            Some(jwt::sign(&hs, &ok, "a-completely-different-signing-key!!")),
            "bad_signature",
        ),
        (
            "expired",
            Some(jwt::sign(
                &hs,
                &json!({"sub": "u", "iat": t - 7200, "exp": t - 3600}),
                key,
            )),
            "token_expired",
        ),
        (
            "not yet valid",
            Some(jwt::sign(
                &hs,
                &json!({"sub": "u", "nbf": t + 3600, "exp": t + 7200}),
                key,
            )),
            "token_not_yet_valid",
        ),
        (
            "missing sub",
            Some(jwt::sign(
                &hs,
                &json!({"email": "a@b.co", "iat": t, "exp": t + 600}),
                key,
            )),
            "missing_sub",
        ),
        (
            "missing iat",
            Some(jwt::sign(&hs, &json!({"sub": "u", "exp": t + 600}), key)),
            "missing_iat",
        ),
        (
            "valid for a year",
            Some(jwt::sign(
                &hs,
                &json!({"sub": "u", "iat": t, "exp": t + 365 * 86_400}),
                key,
            )),
            "token_lifetime_too_long",
        ),
        (
            "issued two days ago",
            Some(jwt::sign(
                &hs,
                &json!({"sub": "u", "iat": t - 2 * 86_400, "exp": t + 600}),
                key,
            )),
            "token_too_old",
        ),
        (
            "missing exp",
            Some(jwt::sign(&hs, &json!({"sub": "u"}), key)),
            "missing_exp",
        ),
        (
            "oversized",
            Some(jwt::sign(
                &hs,
                &json!({"sub": "u", "exp": t + 600, "pad": "x".repeat(5000)}),
                key,
            )),
            "token_too_large",
        ),
    ];
    for (name, token, want) in cases {
        let resp = me(token.as_deref()).await;
        let challenge = reason(&resp);
        assert!(challenge.contains(want), "{name}: {challenge}");
        assert_eq!(error_code(resp, 401).await, "unauthorized", "{name}");
    }
    let basic = send(
        Method::GET,
        "/api/auth/me",
        &[("authorization", "Basic dXNlcjpwYXNz")],
        None,
    )
    .await;
    assert!(reason(&basic).contains("not_bearer"));
}

#[tokio::test]
async fn a_user_is_created_on_first_sight_and_found_again_after() {
    let sub = format!("github|{}", unique());
    let token = stack().token(&sub, Some(&format!("{sub}@example.com").replace('|', "-")));
    let first: Value = me(Some(&token)).await.json().await.unwrap();
    let second: Value = me(Some(&token)).await.json().await.unwrap();
    let id = first["user"]["id"].as_str().unwrap();
    assert!(id.starts_with("usr_"), "{first}");
    assert_eq!(second["user"]["id"], id);
    assert_eq!(second["user"]["created_at"], first["user"]["created_at"]);
    let rows = stack().query(&format!(
        "SELECT COUNT(*) AS n FROM users WHERE subject = '{sub}'"
    ));
    assert_eq!(rows[0]["n"], 1);
    let audit = stack().query(&format!(
        "SELECT action FROM audit_log WHERE user_id = '{id}'"
    ));
    assert_eq!(audit, vec![json!({"action": "user.created"})]);
}

async fn sync(secret: Option<&str>, body: &Value) -> reqwest::Response {
    let mut r = client().post(stack().url("/api/auth/sync-user")).json(body);
    if let Some(s) = secret {
        r = r.header("x-auth-secret", s);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn sync_user_requires_the_shared_secret() {
    let body = json!({"email": format!("{}@example.com", unique())});
    assert_eq!(
        error_code(sync(None, &body).await, 401).await,
        "unauthorized"
    );
    assert_eq!(
        error_code(sync(Some("wrong"), &body).await, 401).await,
        "unauthorized"
    );
}

#[tokio::test]
async fn sync_user_upserts_by_email_and_a_jwt_naming_that_id_finds_the_same_user() {
    let secret = stack().var("AUTH_SYNC_SECRET");
    let email = format!("Sync-{}@Example.com", unique());
    let created = sync(
        Some(secret),
        &json!({"email": email, "name": "Ada", "github_id": 42}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["user"]["email"], email.to_lowercase());
    let again = sync(
        Some(secret),
        &json!({"email": email, "avatar_url": "https://avatars.example.com/a.png"}),
    )
    .await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        again["user"]["id"], created["user"]["id"],
        "{again} vs {created}"
    );
    assert_eq!(again["user"]["name"], "Ada");
    assert_eq!(again["user"]["github_id"], "42");

    let id = created["user"]["id"].as_str().unwrap();
    let via_jwt: Value = me(Some(&stack().token(id, None)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(via_jwt["user"]["id"], id);
}

#[tokio::test]
async fn hostile_sync_bodies_are_refused_and_write_nothing() {
    let secret = stack().var("AUTH_SYNC_SECRET");
    let email = format!("hostile-{}@example.com", unique());
    let cases = [
        (json!({"email": email, "name": 7}), "name"),
        (
            json!({"email": email, "avatar_url": "http://169.254.169.254/latest/meta-data"}),
            "avatar_url",
        ),
        (
            json!({"email": email, "avatar_url": "file:///etc/passwd"}),
            "avatar_url",
        ),
        (
            json!({"email": email, "github_id": "1; DROP TABLE users; --"}),
            "github_id",
        ),
        (
            json!({"email": format!("{email}\r\nX-Injected: 1")}),
            "email",
        ),
        (json!({"email": "$(rm -rf /)@`id`.com;"}), "email"),
        (json!({"email": ["a@b.co"]}), "email"),
        (json!({"email": email, "name": "x".repeat(201)}), "name"),
    ];
    for (body, field) in cases {
        let resp = sync(Some(secret), &body).await;
        assert_eq!(resp.status(), 422, "{body}");
        let text = resp.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "validation_failed", "{body}: {text}");
        assert_eq!(v["error"]["fields"][0]["field"], field, "{body}: {text}");
    }
    let rows = stack().query(&format!(
        "SELECT COUNT(*) AS n FROM users WHERE email = '{email}'"
    ));
    assert_eq!(rows[0]["n"], 0, "a refused request wrote a row");
    assert_eq!(
        stack().query("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'users'")[0]["n"],
        1
    );
}

/// Issue 17 A: a token that merely names someone's email must not reach their account.
#[tokio::test]
async fn an_unverified_email_never_reaches_the_synced_user_and_a_verified_one_links() {
    let email = format!("victim-{}@example.com", unique());
    let synced = sync(
        Some(stack().var("AUTH_SYNC_SECRET")),
        &json!({"email": email}),
    )
    .await;
    assert_eq!(synced.status(), 201);
    let synced: Value = synced.json().await.unwrap();
    let victim = synced["user"]["id"].as_str().unwrap().to_string();
    // The victim, signed in by our user id, keeps something of their own.
    let put = client()
        .put(stack().url("/api/settings"))
        .bearer_auth(stack().token(&victim, None))
        .json(&json!({"fly_app": "victim-app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    let key = stack().var("AUTH_SECRET");
    let hs = json!({"alg": "HS256", "typ": "JWT"});
    let unverified = jwt::claims(&format!("attacker|{}", unique()), Some(&email), 600);
    let attacker = jwt::sign(&hs, &unverified, key);
    let seen: Value = me(Some(&attacker)).await.json().await.unwrap();
    assert_ne!(seen["user"]["id"], victim.as_str(), "{seen}");
    assert_eq!(seen["user"]["email"], Value::Null, "{seen}");
    let settings: Value = get("/api/settings", Some(&attacker))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["settings"]["fly_app"]["value"], Value::Null);
    let subject = stack().query(&format!("SELECT subject FROM users WHERE id = '{victim}'"));
    assert_eq!(subject, vec![json!({"subject": null})]);

    let mut verified = jwt::claims(&format!("github|{}", unique()), Some(&email), 600);
    verified["email_verified"] = json!(true);
    let linked: Value = me(Some(&jwt::sign(&hs, &verified, key)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(linked["user"]["id"], victim.as_str(), "{linked}");
    let audit = stack().query(&format!(
        "SELECT action FROM audit_log WHERE user_id = '{victim}'"
    ));
    assert!(
        audit.contains(&json!({"action": "user.linked"})),
        "{audit:?}"
    );
}

/// Issue 17 C: a production stack with no pinned issuer or audience accepts no JWT at all,
/// and health says which settings to add.
#[tokio::test]
async fn in_production_an_unpinned_issuer_and_audience_refuse_every_jwt_and_health_names_them() {
    let s = Stack::start(StackOptions {
        vars: vec![("ENVIRONMENT".into(), "production".into())],
        omit: vec!["AUTH_JWT_ISSUER".into(), "AUTH_JWT_AUDIENCE".into()],
        ..Default::default()
    });
    let health = client().get(s.url("/api/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(
        health["missing"],
        json!(["AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"])
    );
    let resp = client()
        .get(s.url("/api/auth/me"))
        .bearer_auth(s.token(&format!("prod-{}", unique()), None))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp, 503).await, "not_configured");
    s.stop();
}
