use edge_tests::stack::{client, Stack, StackOptions};
use serde_json::Value;

use crate::support::{error_code, get, send};

#[tokio::test]
async fn health_is_healthy_when_every_required_setting_is_present() {
    let resp = get("/api/health", None).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "healthy");
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404_and_a_wrong_method_a_405_with_allow() {
    assert_eq!(
        error_code(get("/api/nope", None).await, 404).await,
        "not_found"
    );
    assert_eq!(error_code(get("/nope", None).await, 404).await, "not_found");
    assert_eq!(
        error_code(get("/deployments/dep_nope", None).await, 404).await,
        "not_found"
    );
    // The dashboard's pages are its index.html with the assets' headers ("/" is the file
    // itself; the others come through the Worker, which adds its own).
    for page in ["/", "/deployments", "/settings"] {
        let resp = get(page, None).await;
        assert_eq!(resp.status(), 200, "{page}");
        let h = resp.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
        if page != "/" {
            assert_eq!(h["x-request-id"].len(), 16);
        }
        assert!(resp.text().await.unwrap().contains("<div id=\"app\">"));
    }
    let resp = send(reqwest::Method::POST, "/settings", &[], None).await;
    assert_eq!(resp.headers()["allow"], "GET");
    assert_eq!(error_code(resp, 405).await, "method_not_allowed");
    let resp = send(reqwest::Method::DELETE, "/api/health", &[], None).await;
    assert_eq!(resp.headers()["allow"], "GET");
    assert_eq!(error_code(resp, 405).await, "method_not_allowed");
    // Methods the `worker` crate does not name are not read as GET (schemathesis found
    // `QUERY /api/health` answered 200). Ones workerd does not know at all never reach
    // the Worker (it answers 501 itself).
    for m in ["QUERY", "PROPFIND"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let resp = send(method, "/api/health", &[], None).await;
        assert_eq!(resp.headers()["allow"], "GET", "{m}");
        assert_eq!(error_code(resp, 405).await, "method_not_allowed", "{m}");
    }
}

#[tokio::test]
async fn hostile_paths_are_json_404s() {
    let long = format!("/api/{}", "a".repeat(8000));
    for path in [
        "/api/health/..%2f..%2fetc%2fpasswd",
        "/api/%2e%2e/auth/me",
        "/api/health%00",
        "/api/health;rm%20-rf%20%2F",
        "/api/auth/me%0d%0aX-Injected:%201",
        "/api/$(id)",
        long.as_str(),
    ] {
        let resp = get(path, None).await;
        assert!(resp.headers().get("x-injected").is_none());
        assert_eq!(
            error_code(resp, 404).await,
            "not_found",
            "{}",
            &path[..path.len().min(60)]
        );
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_no_store() {
    for path in ["/api/health", "/api/nope"] {
        let resp = get(path, None).await;
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 16, "{id}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    }
}

/// A second stack, misconfigured on purpose, also pins the JWT issuer and audience.
fn degraded() -> &'static Stack {
    static S: std::sync::OnceLock<Stack> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        Stack::start(StackOptions {
            vars: vec![
                ("AUTH_JWT_ISSUER".into(), "https://catwalk.test".into()),
                ("AUTH_JWT_AUDIENCE".into(), "catwalk-edge".into()),
                ("ENCRYPTION_KEYS".into(), "k1:too-short".into()),
            ],
            omit: vec!["FLY_API_TOKEN".into(), "AUTH_SYNC_SECRET".into()],
            ..Default::default()
        })
    })
}

#[tokio::test]
async fn health_names_missing_and_invalid_settings_but_never_their_values() {
    let s = degraded();
    let resp = client().get(s.url("/api/health")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "degraded");
    assert_eq!(
        v["missing"],
        serde_json::json!(["AUTH_SYNC_SECRET", "FLY_API_TOKEN"])
    );
    assert_eq!(v["invalid"], serde_json::json!(["ENCRYPTION_KEYS"]));
    assert!(!text.contains("too-short"));
    assert!(!text.contains(s.var("AUTH_SECRET")));
}

#[tokio::test]
async fn a_route_whose_setting_is_missing_answers_503_not_configured() {
    let s = degraded();
    let resp = client()
        .post(s.url("/api/auth/sync-user"))
        .header("x-auth-secret", "anything")
        .json(&serde_json::json!({"email": "a@b.co"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp, 503).await, "not_configured");
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_configured() {
    use edge_tests::jwt;
    let s = degraded();
    let key = s.var("AUTH_SECRET");
    let mut claims = jwt::claims("iss-user", None, 600);
    let header = serde_json::json!({"alg": "HS256"});
    let me = |t: String| client().get(s.url("/api/auth/me")).bearer_auth(t).send();

    let resp = me(jwt::sign(&header, &claims, key)).await.unwrap();
    assert_eq!(error_code(resp, 401).await, "unauthorized");

    claims["iss"] = "https://catwalk.test".into();
    claims["aud"] = "someone-else".into();
    let resp = me(jwt::sign(&header, &claims, key)).await.unwrap();
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("wrong_audience"));

    claims["aud"] = serde_json::json!(["x", "catwalk-edge"]);
    let resp = me(jwt::sign(&header, &claims, key)).await.unwrap();
    assert_eq!(resp.status(), 200);
}
