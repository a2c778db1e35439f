use edge_tests::stack::client;
use reqwest::Method;
use serde_json::json;

use crate::support::{error_code, send, stack};

const ALLOWED: &str = "http://localhost:3000";
const EVIL: &str = "https://evil.example.com";

#[tokio::test]
async fn an_allowed_origin_gets_its_own_origin_back_with_credentials() {
    let resp = send(Method::GET, "/api/health", &[("origin", ALLOWED)], None).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], ALLOWED);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["vary"].to_str().unwrap().contains("Origin"));
}

#[tokio::test]
async fn a_refused_origin_gets_403_and_no_cors_headers() {
    for origin in [EVIL, "null", "http://localhost:3000.evil.com"] {
        let resp = send(Method::GET, "/api/health", &[("origin", origin)], None).await;
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        assert_eq!(
            error_code(resp, 403).await,
            "origin_not_allowed",
            "{origin}"
        );
    }
}

/// DNS rebinding of the local stack: a page whose name now points at 127.0.0.1 calls us
/// with its own Host (and, on a POST, an Origin that matches it).
#[tokio::test]
async fn a_host_name_that_is_not_ours_is_refused_under_wrangler_dev() {
    let host = "evil.example.com";
    let origin = format!("http://{host}");
    for headers in [
        vec![("host", host)],
        vec![("host", host), ("origin", &origin)],
    ] {
        let resp = send(Method::GET, "/api/health", &headers, None).await;
        assert_eq!(
            error_code(resp, 403).await,
            "host_not_allowed",
            "{headers:?}"
        );
    }
    for host in ["localhost", "127.0.0.1"] {
        let resp = send(Method::GET, "/api/health", &[("host", host)], None).await;
        assert_ne!(resp.status(), 403, "{host}");
    }
}

#[tokio::test]
async fn preflight_is_answered_for_allowed_origins_and_refused_otherwise() {
    let ok = send(
        Method::OPTIONS,
        "/api/auth/me",
        &[
            ("origin", ALLOWED),
            ("access-control-request-method", "GET"),
            (
                "access-control-request-headers",
                "authorization, content-type, x-evil",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(ok.status(), 204);
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], ALLOWED);
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert!(h.get("access-control-max-age").is_some());

    let refused = send(
        Method::OPTIONS,
        "/api/auth/me",
        &[("origin", EVIL), ("access-control-request-method", "GET")],
        None,
    )
    .await;
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(error_code(refused, 403).await, "origin_not_allowed");
}

/// The authorization server's credential-free endpoints answer any origin with `*` (never
/// with credentials), preflight and answer alike; the consent API stays behind the list.
#[tokio::test]
async fn public_oauth_endpoints_are_open_to_any_origin_and_the_rest_is_not() {
    let pre = send(
        Method::OPTIONS,
        "/oauth/token",
        &[("origin", EVIL), ("access-control-request-method", "POST")],
        None,
    )
    .await;
    assert_eq!(pre.status(), 204);
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(h.get("access-control-max-age").is_some());
    assert!(h.get("access-control-allow-credentials").is_none());

    let doc = send(
        Method::GET,
        "/.well-known/oauth-authorization-server",
        &[("origin", EVIL)],
        None,
    )
    .await;
    assert_eq!(doc.status(), 200);
    let h = doc.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("WWW-Authenticate"));
    assert!(h.get("access-control-allow-credentials").is_none());

    let consent = send(
        Method::OPTIONS,
        "/api/oauth/requests/abc",
        &[("origin", EVIL), ("access-control-request-method", "POST")],
        None,
    )
    .await;
    assert!(consent
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(error_code(consent, 403).await, "origin_not_allowed");
}

fn sync_headers<'a>(secret: &'a str, ct: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("x-auth-secret", secret), ("content-type", ct)]
}

#[tokio::test]
async fn malformed_bodies_get_4xx_json_errors_with_distinct_codes() {
    let secret = stack().var("AUTH_SYNC_SECRET");
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100)).into_bytes();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"{\"email\": ".to_vec(),
            400,
            "invalid_json",
        ),
        ("application/json", b"".to_vec(), 400, "empty_body"),
        (
            "application/json",
            b"{\"email\": \"\xff\xfe@x.co\"}".to_vec(),
            400,
            "invalid_utf8",
        ),
        ("application/json", deep, 400, "json_too_deep"),
        ("application/json", b"[1, 2]".to_vec(), 400, "invalid_body"),
        (
            "text/plain",
            b"{\"email\": \"a@b.co\"}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/x-www-form-urlencoded",
            b"email=a@b.co".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/json; charset=latin1",
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (ct, body, status, code) in cases {
        let resp = send(
            Method::POST,
            "/api/auth/sync-user",
            &sync_headers(secret, ct),
            Some(body),
        )
        .await;
        assert_eq!(error_code(resp, status).await, code, "{ct}");
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_whether_declared_or_streamed() {
    let secret = stack().var("AUTH_SYNC_SECRET");
    let big =
        serde_json::to_vec(&json!({"email": "a@b.co", "name": "x".repeat(70 * 1024)})).unwrap();
    let declared = send(
        Method::POST,
        "/api/auth/sync-user",
        &sync_headers(secret, "application/json"),
        Some(big.clone()),
    )
    .await;
    assert_eq!(error_code(declared, 413).await, "payload_too_large");

    // Chunked, with no Content-Length to trust: the cap is enforced while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
    let streamed = client()
        .post(stack().url("/api/auth/sync-user"))
        .header("x-auth-secret", secret)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(streamed, 413).await, "payload_too_large");
}

#[tokio::test]
async fn wrong_types_are_422_naming_the_field() {
    let secret = stack().var("AUTH_SYNC_SECRET");
    let resp = send(
        Method::POST,
        "/api/auth/sync-user",
        &sync_headers(secret, "application/json"),
        Some(br#"{"email": {"$ne": null}, "github_id": true}"#.to_vec()),
    )
    .await;
    assert_eq!(resp.status(), 422);
    let v: serde_json::Value = resp.json().await.unwrap();
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "github_id"]);
}

#[tokio::test]
async fn log_lines_never_contain_bearer_tokens_or_secrets() {
    let s = stack();
    let token = s.token("log-canary-user", Some("log-canary@example.com"));
    let resp = client()
        .get(s.url(&format!("/api/auth/me?token={token}&note=ok")))
        .bearer_auth(&token)
        .header("x-access-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    // A wrong sync secret and a body full of secrets also pass through the logger.
    let sync_secret = s.var("AUTH_SYNC_SECRET");
    let _ = client()
        .post(s.url("/api/auth/sync-user"))
        .header("x-auth-secret", format!("{sync_secret}x"))
        .json(&json!({"email": "x@y.co"}))
        .send()
        .await
        .unwrap();

    let logs = s.wait_for_log(&request_id);
    assert!(logs.contains(&request_id), "the request was logged");
    let signature = token.rsplit('.').next().unwrap();
    for secret in [
        token.as_str(),
        signature,
        s.var("AUTH_SECRET"),
        sync_secret,
        s.var("FLY_API_TOKEN"),
    ] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
}
