//! `GET /api/openapi.json` (open): the API contract, `docs/openapi.json`, compiled in so
//! the document served is the one the route-table test checked.

use worker::Response;

use crate::error::AppResult;
use crate::platform::web;

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub fn document() -> AppResult<Response> {
    Ok(web::json_text(200, DOCUMENT.to_string(), None)?)
}

/// The document against the route table (both directions) and its own rules: every 4xx
/// carries the one error shape (the OAuth endpoints' RFC 6749 form where OAuth clients
/// read it), every response the request id, every `$ref` resolves.
/// schemathesis checks it against the running Worker (`tests/tests/api/contract.rs`).
#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;
    use crate::http::route;

    const METHODS: &[&str] = &[
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    const ERROR: &str = "#/components/schemas/Error";
    /// What a deployment's runner answers through the gateway (MCP clients expect it).
    const JSON_RPC_ERROR: &str = "#/components/schemas/JsonRpcError";
    /// What the OAuth endpoints OAuth clients call answer (RFC 6749 §5.2, RFC 7591 §3.2.2).
    const OAUTH_ERROR: &str = "#/components/schemas/OAuthError";
    /// Those endpoints: the authorization server's own, not the consent and grants APIs
    /// under `/api/oauth/` and `/api/deployments/`, which the dashboard calls.
    const OAUTH_PREFIX: &str = "/oauth/";

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON")
    }

    /// Follows a local `$ref` (`#/a/b`), or panics naming it.
    fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let target = r
                    .strip_prefix('#')
                    .and_then(|p| doc.pointer(p))
                    .unwrap_or_else(|| panic!("unresolved $ref {r}"));
                resolve(doc, target)
            }
            None => v,
        }
    }

    /// Every operation: (path, METHOD, operation object).
    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let paths = doc["paths"].as_object().expect("paths");
        let mut out = Vec::new();
        for (path, item) in paths {
            let item = item.as_object().expect("path item");
            for (method, op) in item {
                if METHODS.contains(&method.as_str()) {
                    out.push((path.clone(), method.to_ascii_uppercase(), op));
                }
            }
        }
        out
    }

    /// The `$ref`s a response schema names at its top level or in its `oneOf`/`anyOf`.
    fn named_schemas(schema: &Value) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = schema
            .get("$ref")
            .and_then(Value::as_str)
            .into_iter()
            .collect();
        for key in ["oneOf", "anyOf"] {
            for alt in schema[key].as_array().into_iter().flatten() {
                out.extend(alt.get("$ref").and_then(Value::as_str));
            }
        }
        out
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let d = doc();
        let version = d["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1."), "openapi: {version}");
        assert!(d["info"]["title"].is_string() && d["info"]["version"].is_string());
    }

    #[test]
    fn the_document_and_the_route_table_list_the_same_operations() {
        let d = doc();
        let documented: BTreeSet<(String, String)> =
            operations(&d).into_iter().map(|(p, m, _)| (p, m)).collect();
        let routed: BTreeSet<(String, String)> = route::table()
            .flat_map(|(path, methods)| {
                methods
                    .into_iter()
                    .map(move |m| (path.to_string(), m.to_string()))
            })
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routed but not documented: {undocumented:?}; documented but not routed: {unrouted:?}"
        );
    }

    #[test]
    fn every_4xx_has_the_error_shape_and_every_response_the_request_id() {
        let d = doc();
        for (path, method, op) in operations(&d) {
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: operationId"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for (status, response) in responses {
                let at = format!("{method} {path} {status}");
                let response = resolve(&d, response);
                assert!(
                    resolve(&d, &response["headers"]["X-Request-Id"])["schema"].is_object(),
                    "{at}: X-Request-Id"
                );
                if !status.starts_with('4') {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"];
                let named = named_schemas(schema);
                // The gateway's 4xx are its own (the error shape) or the MCP server's
                // (JSON-RPC), which only the gateway's operations may document. The
                // authorization server's endpoints answer RFC 6749's form instead, because
                // OAuth client libraries parse `{"error": "<code>", "error_description"}`
                // and nothing else; only they may document it (the edge's own refusals in
                // front of them, e.g. 403 and 405, keep the error shape).
                let oauth = path.starts_with(OAUTH_PREFIX);
                let ok = named.contains(ERROR)
                    || (path.starts_with("/api/mcp/") && named.contains(JSON_RPC_ERROR))
                    || (oauth && named.contains(OAUTH_ERROR));
                assert!(ok, "{at}: a 4xx must document {ERROR}, got {named:?}");
                assert!(
                    oauth || !named.contains(OAUTH_ERROR),
                    "{at}: only /oauth/* may answer {OAUTH_ERROR}"
                );
                // And the reverse: an OAuth endpoint's own 400 is never the API's shape.
                if oauth && status == "400" {
                    assert!(
                        named.contains(OAUTH_ERROR) && !named.contains(ERROR),
                        "{at}: an OAuth endpoint's 400 is {OAUTH_ERROR}, got {named:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_ref_resolves() {
        fn walk(doc: &Value, v: &Value) {
            match v {
                Value::Object(o) => {
                    if o.contains_key("$ref") {
                        resolve(doc, v);
                    }
                    o.values().for_each(|x| walk(doc, x));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(doc, x)),
                _ => {}
            }
        }
        let d = doc();
        walk(&d, &d);
    }

    #[test]
    fn the_error_component_is_the_shape_the_error_type_writes() {
        use crate::error::{AppError, FieldError};
        let d = doc();
        let error = &d["components"]["schemas"]["Error"]["properties"]["error"];
        let codes: BTreeSet<&str> = error["properties"]["code"]["enum"]
            .as_array()
            .expect("code enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let samples = [
            AppError::bad_request("invalid_json", "x"),
            AppError::Validation {
                fields: vec![FieldError::new("name", "is required")],
            },
            AppError::unauthorized("missing_token", "x"),
            AppError::not_found("x"),
            AppError::MethodNotAllowed { allowed: &["GET"] },
            AppError::PayloadTooLarge { limit: 1 },
            AppError::UnsupportedMediaType {
                expected: "application/json",
            },
            AppError::RateLimited {
                retry_after_secs: 1,
            },
            AppError::NotConfigured {
                missing: Vec::new(),
            },
            AppError::internal("x"),
            AppError::Forbidden {
                code: "not_owner",
                message: "x".into(),
            },
        ];
        let allowed: BTreeSet<&str> = error["properties"]
            .as_object()
            .expect("error properties")
            .keys()
            .map(String::as_str)
            .collect();
        for e in samples {
            let body = e.body();
            assert!(
                codes.contains(e.code()),
                "{} not in the code enum",
                e.code()
            );
            for key in body["error"].as_object().expect("error object").keys() {
                assert!(allowed.contains(key.as_str()), "{key} undocumented");
            }
        }
    }

    #[test]
    fn the_oauth_error_component_is_the_shape_the_oauth_endpoints_write() {
        use crate::oauth::reply::OAuthError;
        let d = doc();
        let schema = &d["components"]["schemas"]["OAuthError"];
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
        let codes: BTreeSet<&str> = schema["properties"]["error"]["enum"]
            .as_array()
            .expect("error enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let documented: BTreeSet<&str> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        // Every code an OAuth endpoint answers in a body (the redirect-only ones,
        // `unsupported_response_type` and `access_denied`, travel in a Location).
        for code in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unsupported_grant_type",
            "invalid_scope",
            "invalid_target",
            "invalid_redirect_uri",
            "invalid_client_metadata",
            "server_error",
        ] {
            let e = OAuthError::new(400, code, "x");
            assert!(codes.contains(e.error), "{code} not in the OAuthError enum");
            let body = e.body();
            let keys: BTreeSet<&str> = body
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, documented, "{code}: the body's keys");
        }
    }
}
