//! Small helpers shared by the test modules.

use edge_tests::stack::{client, Stack};
use reqwest::{Method, Response};
use serde_json::Value;

pub fn stack() -> &'static Stack {
    Stack::shared()
}

/// Asserts the documented error shape and returns the error code.
pub async fn error_code(resp: Response, status: u16) -> String {
    let got = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "status for body {body}");
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("error body is JSON: {body}"));
    let code = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error.code in {body}"));
    assert!(v["error"]["message"].is_string(), "error.message in {body}");
    code.to_string()
}

pub async fn get(path: &str, token: Option<&str>) -> Response {
    let mut r = client().get(stack().url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.expect("request")
}

pub async fn send(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Response {
    let mut r = client().request(method, stack().url(path));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(b) = body {
        r = r.body(b);
    }
    r.send().await.expect("request")
}

/// A unique suffix for test data in the shared stack.
pub fn unique() -> String {
    edge_tests::random_hex(6)
}

/// One tool call by the Python SDK client through `url` (its own session): what
/// `tests/clients/py_client.py call` printed.
pub async fn py_call(url: String, token: String, tool: &str, arguments: Value) -> Value {
    let arg = serde_json::json!({"tool": tool, "arguments": arguments}).to_string();
    tokio::task::spawn_blocking(move || {
        edge_tests::clients::python(&url, &token, "call", Some(&arg))
    })
    .await
    .unwrap()
}
