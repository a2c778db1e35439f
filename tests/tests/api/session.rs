//! The dashboard's session on the real stack: the development sign-in exists only when
//! turned on in development (absent by default and refused in production); its cookie is
//! `HttpOnly; Secure; SameSite=Strict` and works on every signed-in route; a change made
//! with the cookie must carry an Origin (ours or a listed one); an identity provider's JWT
//! becomes the same cookie; signing out clears it.

use edge_tests::stack::{client, Stack, StackOptions};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use super::support::{error_code, stack};

fn dev_stack() -> Stack {
    Stack::start(StackOptions {
        vars: vec![("DEV_SIGN_IN".into(), "true".into())],
        ..Default::default()
    })
}

/// The `cw_session` cookie a response set, and the whole `Set-Cookie` line.
fn session_cookie(resp: &Response) -> (String, String) {
    let line = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cw_session="))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", resp.headers()))
        .to_string();
    let value = line
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    (value, line)
}

async fn with_cookie(
    s: &Stack,
    method: Method,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut r = client()
        .request(method, s.url(path))
        .header("cookie", format!("theme=dark; cw_session={cookie}"));
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.expect("request")
}

#[tokio::test]
async fn the_development_sign_in_is_absent_unless_turned_on_in_development() {
    let s = stack();
    let providers: Value = client()
        .get(s.url("/api/auth/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers, json!({"dev_sign_in": false, "login_url": null}));
    let resp = client()
        .post(s.url("/api/auth/dev-sign-in"))
        .json(&json!({"email": "mallory@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("set-cookie").is_none());
    assert_eq!(error_code(resp, 404).await, "not_found");

    // Turned on in production: refused, and health says so.
    let prod = Stack::start(StackOptions {
        vars: vec![
            ("DEV_SIGN_IN".into(), "true".into()),
            ("ENVIRONMENT".into(), "production".into()),
            ("AUTH_JWT_ISSUER".into(), "https://idp.example".into()),
            ("AUTH_JWT_AUDIENCE".into(), "catwalk-edge".into()),
        ],
        ..Default::default()
    });
    let resp = client()
        .post(prod.url("/api/auth/dev-sign-in"))
        .json(&json!({"email": "mallory@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("set-cookie").is_none());
    assert_eq!(error_code(resp, 404).await, "not_found");
    let health: Value = client()
        .get(prod.url("/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["invalid"], json!(["DEV_SIGN_IN"]), "{health}");
}

#[tokio::test]
async fn the_session_cookie_signs_in_and_guards_changes_by_origin() {
    let s = dev_stack();
    let own = s.url("").trim_end_matches('/').to_string();
    let resp = client()
        .post(s.url("/api/auth/dev-sign-in"))
        .header("origin", &own)
        .json(&json!({"email": "Ada@Example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (cookie, line) = session_cookie(&resp);
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api"] {
        assert!(line.contains(attr), "{line}");
    }
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ada@example.com");
    // An email too long for the minted `sub` (`dev:<email>`, 255 bytes at most) is a 422
    // on the email, not a 401 for the token we minted ourselves (found by schemathesis).
    let long = format!("a@{}.example", "b".repeat(245));
    let resp = client()
        .post(s.url("/api/auth/dev-sign-in"))
        .header("origin", &own)
        .json(&json!({ "email": long }))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("set-cookie").is_none());
    assert_eq!(error_code(resp, 422).await, "validation_failed");
    assert!(
        !body.to_string().contains(&cookie),
        "the token is not in the body"
    );

    // Reads with the cookie alone.
    let me = with_cookie(&s, Method::GET, "/api/auth/me", &cookie, None, None).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user"]["id"], body["user"]["id"]);

    // A change with the cookie: no Origin → 403; a foreign one → 403; ours → on to the
    // handler (here a 422 for an empty body).
    let put = |origin: Option<&'static str>| {
        let (s, cookie) = (&s, cookie.clone());
        async move {
            with_cookie(
                s,
                Method::PUT,
                "/api/settings",
                &cookie,
                origin,
                Some(json!({})),
            )
            .await
        }
    };
    assert_eq!(error_code(put(None).await, 403).await, "origin_required");
    let evil = put(Some("https://evil.example")).await;
    assert_eq!(error_code(evil, 403).await, "origin_not_allowed");
    let ours = with_cookie(
        &s,
        Method::PUT,
        "/api/settings",
        &cookie,
        Some(&own),
        Some(json!({"nope": 1})),
    )
    .await;
    assert_ne!(
        ours.status().as_u16(),
        403,
        "our own origin may change things"
    );
    assert_ne!(ours.status().as_u16(), 401);
    // A listed frontend origin may too.
    let listed = with_cookie(
        &s,
        Method::PUT,
        "/api/settings",
        &cookie,
        Some("http://localhost:3000"),
        Some(json!({"nope": 1})),
    )
    .await;
    assert_ne!(listed.status().as_u16(), 403);

    // A bearer header wins over the cookie (and needs no Origin).
    let bad = client()
        .get(s.url("/api/auth/me"))
        .header("cookie", format!("cw_session={cookie}"))
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad, 401).await, "unauthorized");
    // Two session cookies are trusted for neither.
    let two = client()
        .get(s.url("/api/auth/me"))
        .header("cookie", format!("cw_session={cookie}; cw_session=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 401);

    // An identity provider's JWT becomes the same kind of cookie.
    let idp = s.token("idp-subject", Some("grace@example.com"));
    let resp = client()
        .post(s.url("/api/auth/session"))
        .bearer_auth(&idp)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (from_idp, _) = session_cookie(&resp);
    assert_eq!(from_idp, idp);
    let resp = client()
        .post(s.url("/api/auth/session"))
        .header("cookie", format!("cw_session={cookie}"))
        .header("origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a cookie is not exchanged for itself");

    // Signing out clears it.
    let out = client()
        .post(s.url("/api/auth/sign-out"))
        .header("origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let (cleared, line) = session_cookie(&out);
    assert!(cleared.is_empty() && line.contains("Max-Age=0"), "{line}");
    // Nothing of the session reached the log.
    assert!(!s.logs().contains(&cookie));
}
