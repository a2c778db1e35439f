//! The 2026-07-28 (stateless) request rules: the per-request `_meta` envelope, the
//! `Mcp-Method` / `Mcp-Name` routing headers checked against the body, the HTTP status of
//! each JSON-RPC error code, and the result shapes a bridge builds (`server/discover`,
//! `resultType`, `input_required`).
//!
//! Spec: modelcontextprotocol `docs/specification/2026-07-28/basic/transports.mdx` (headers,
//! HTTP status table), `basic/index.mdx` ("Per-request protocol fields"), SEP-2322
//! (input-required results); the Python SDK 2.3 (`mcp/shared/inbound.py`) checks the same
//! ladder in the same order.

use serde_json::{json, Map, Value};

use crate::jsonrpc::{
    HEADER_MISMATCH, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, UNSUPPORTED_PROTOCOL_VERSION,
};
use crate::version::{HEADER_METHOD, HEADER_NAME, HEADER_PROTOCOL_VERSION, STATELESS_VERSIONS};

/// `_meta` key: the protocol version of this one request.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: the client's `Implementation` (optional, should be sent).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key: the client's capabilities for this request (required).
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// Result `_meta` key: the server's `Implementation`.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// The request that replaces `initialize` for learning what a server offers.
pub const DISCOVER: &str = "server/discover";
pub const INVALID_PARAMS: i64 = -32602;
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// `resultType` of a final result and of one that asks the client for input first.
pub const COMPLETE: &str = "complete";
pub const INPUT_REQUIRED: &str = "input_required";

/// The body field `Mcp-Name` mirrors, for the methods that carry one.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// The methods whose result may be `input_required` (the only ones a server may ask the
/// client something during).
pub fn may_require_input(method: &str) -> bool {
    name_param(method).is_some()
}

/// The HTTP status of a JSON-RPC error on this era's wire; codes the spec gives no status
/// (handler errors such as -32603) travel with 200.
pub fn status_for(code: i64) -> u16 {
    match code {
        PARSE_ERROR
        | INVALID_REQUEST
        | INVALID_PARAMS
        | HEADER_MISMATCH
        | MISSING_REQUIRED_CLIENT_CAPABILITY
        | UNSUPPORTED_PROTOCOL_VERSION => 400,
        METHOD_NOT_FOUND => 404,
        _ => 200,
    }
}

/// Whether a POST without a session belongs to this era: its version header names a
/// stateless revision, or its body carries the envelope, or it is `server/discover`.
pub fn is_stateless_post(version_header: Option<&str>, body: &Value) -> bool {
    version_header.is_some_and(crate::version::is_stateless)
        || body.get("method").and_then(Value::as_str) == Some(DISCOVER)
        || body
            .pointer("/params/_meta")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(META_PROTOCOL_VERSION))
}

/// A request refused before it reaches a server: the JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl Rejection {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// What a valid request said about its client.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub protocol_version: String,
    pub client_info: Option<Value>,
    pub client_capabilities: Value,
}

impl Envelope {
    /// Whether the client declared the capability a server request needs
    /// (`sampling/createMessage` → `sampling`, `elicitation/create` → `elicitation`,
    /// `roots/list` → `roots`).
    pub fn can_answer(&self, server_method: &str) -> bool {
        let key = match server_method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => return false,
        };
        self.client_capabilities
            .get(key)
            .is_some_and(Value::is_object)
    }
}

/// Decodes a header value: verbatim, or the `=?base64?…?=` form clients use for values
/// that cannot travel as visible ASCII. A malformed (or non-canonical) encoding is `None`,
/// so it never matches a body value by accident.
pub fn decode_header_value(value: &str) -> Option<String> {
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_string());
    };
    let bytes = base64_decode(payload)?;
    String::from_utf8(bytes).ok()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding; `None` unless the text is the canonical encoding.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return None;
    }
    for c in body.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Canonical: the unused low bits are zero (so exactly one text decodes to these bytes).
    (acc == 0).then_some(out)
}

/// Runs the request ladder over one request body and its headers (`headers(name)` gives
/// every value of a lowercase header name), first failure wins:
/// 1. a routing header sent twice → -32020 (first-copy and last-copy readers would differ);
/// 2. `params._meta` with the protocol version and client capabilities → else -32602;
/// 3. `MCP-Protocol-Version` equals the envelope's, `Mcp-Method` the body's method, and
///    `Mcp-Name` the named param → else -32020 (before the version rung, so a client that
///    disagrees with itself is told so);
/// 4. the version is one we serve → else -32022 naming `supported`.
pub fn check<'a>(
    body: &Value,
    headers: impl Fn(&str) -> Vec<&'a str>,
    supported: &[&str],
) -> Result<Envelope, Rejection> {
    for name in [HEADER_PROTOCOL_VERSION, HEADER_METHOD, HEADER_NAME] {
        if headers(name).len() > 1 {
            return Err(Rejection::new(
                HEADER_MISMATCH,
                format!("{name} header appears more than once"),
            ));
        }
    }
    let one = |name: &str| headers(name).first().copied();
    let meta = body
        .pointer("/params/_meta")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Rejection::new(
                INVALID_PARAMS,
                format!("params._meta must carry {META_PROTOCOL_VERSION} and {META_CLIENT_CAPABILITIES}"),
            )
        })?;
    let missing: Vec<&str> = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::new(
            INVALID_PARAMS,
            format!("params._meta is missing {}", missing.join(", ")),
        ));
    }
    let version = &meta[META_PROTOCOL_VERSION];
    if one(HEADER_PROTOCOL_VERSION).is_none_or(|h| Some(h) != version.as_str()) {
        return Err(Rejection::new(
            HEADER_MISMATCH,
            "MCP-Protocol-Version header does not match the request's _meta protocol version",
        ));
    }
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if one(HEADER_METHOD) != Some(method) {
        return Err(Rejection::new(
            HEADER_MISMATCH,
            "Mcp-Method header does not match the request body's method",
        ));
    }
    if let Some(field) = name_param(method) {
        let in_body = body
            .pointer(&format!("/params/{field}"))
            .and_then(Value::as_str);
        let in_header = one(HEADER_NAME).and_then(decode_header_value);
        if in_body.is_none() || in_header.as_deref() != in_body {
            return Err(Rejection::new(
                HEADER_MISMATCH,
                format!("Mcp-Name header does not match the request's params.{field}"),
            ));
        }
    }
    let version = version.as_str().ok_or_else(|| {
        Rejection::new(
            INVALID_PARAMS,
            "the _meta protocol version must be a string",
        )
    })?;
    if !supported.contains(&version) {
        return Err(Rejection {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: "Unsupported protocol version".into(),
            data: Some(json!({"supported": supported, "requested": version})),
        });
    }
    Ok(Envelope {
        protocol_version: version.to_string(),
        client_info: meta.get(META_CLIENT_INFO).cloned(),
        client_capabilities: meta[META_CLIENT_CAPABILITIES].clone(),
    })
}

/// Removes the envelope keys from a request's `_meta` (a handshake-era server does not know
/// them; `progressToken` and other keys stay), and `_meta` itself when nothing is left.
pub fn strip_envelope(request: &mut Value) {
    let Some(params) = request.get_mut("params").and_then(Value::as_object_mut) else {
        return;
    };
    let empty = match params.get_mut("_meta").and_then(Value::as_object_mut) {
        Some(meta) => {
            for k in [
                META_PROTOCOL_VERSION,
                META_CLIENT_INFO,
                META_CLIENT_CAPABILITIES,
            ] {
                meta.remove(k);
            }
            meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
            meta.is_empty()
        }
        None => false,
    };
    if empty {
        params.remove("_meta");
    }
}

/// Methods whose results must carry the caching hints `ttlMs` and `cacheScope` (SEP-2549).
pub const CACHEABLE_METHODS: &[&str] = &[
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    DISCOVER,
    "tools/list",
];

/// Makes a handshake-era server's result for `method` a valid result of this era: the
/// `resultType: "complete"` servers of this revision must send; for cacheable methods the
/// caching hints, as "immediately stale, not shared" (a bridged server's list-changed
/// notifications cannot reach a stateless client, so nothing may be cached on its behalf);
/// and the server's identity stamped into `_meta`.
pub fn complete(result: &mut Value, method: &str, server_info: Option<&Value>) {
    let Some(obj) = result.as_object_mut() else {
        return;
    };
    obj.entry("resultType")
        .or_insert_with(|| Value::from(COMPLETE));
    if CACHEABLE_METHODS.contains(&method) {
        obj.entry("ttlMs").or_insert_with(|| Value::from(0));
        obj.entry("cacheScope")
            .or_insert_with(|| Value::from("private"));
    }
    if let Some(info) = server_info {
        if let Some(meta) = obj
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
        {
            meta.entry(META_SERVER_INFO).or_insert_with(|| info.clone());
        }
    }
}

/// How long a client may cache a bridged `server/discover` answer: the child's
/// capabilities cannot change while this runner runs its launch spec, but a redeploy may.
pub const DISCOVER_TTL_MS: u64 = 60_000;

/// The `server/discover` result built from an `initialize` result of the same server:
/// its capabilities, instructions and serverInfo, the versions we serve in this era.
pub fn discover_result(initialize_result: &Value) -> Value {
    let mut out = json!({
        "supportedVersions": STATELESS_VERSIONS,
        "capabilities": initialize_result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        // The capabilities are the server's, not per user; but a gateway's token scopes
        // who may see them, so no shared cache across authorization contexts.
        "cacheScope": "private",
        "ttlMs": DISCOVER_TTL_MS,
        "resultType": COMPLETE,
    });
    if let Some(i) = initialize_result
        .get("instructions")
        .filter(|i| i.is_string())
    {
        out["instructions"] = i.clone();
    }
    if let Some(info) = initialize_result.get("serverInfo") {
        out["_meta"] = json!({ META_SERVER_INFO: info });
    }
    out
}

/// An `input_required` result asking the client one server request (`{method, params}`)
/// under `key`; the client retries the original request with `inputResponses[key]` and
/// `requestState` echoed.
pub fn input_required(key: &str, server_request: &Value, request_state: &str) -> Value {
    let mut asked =
        json!({ "method": server_request.get("method").cloned().unwrap_or(Value::Null) });
    if let Some(p) = server_request.get("params") {
        asked["params"] = p.clone();
    }
    json!({
        "resultType": INPUT_REQUIRED,
        "inputRequests": { key: asked },
        "requestState": request_state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    }

    fn envelope() -> Value {
        json!({META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: {"sampling": {}},
            META_CLIENT_INFO: {"name": "t", "version": "1"}})
    }

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Vec<&'a str> + 'a {
        move |name| {
            pairs
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .collect()
        }
    }

    const V: &[&str] = &["2026-07-28"];

    #[test]
    fn a_well_formed_request_yields_its_envelope() {
        let body = request("tools/call", json!({"name": "echo", "_meta": envelope()}));
        let h = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ];
        let env = check(&body, headers(&h), V).unwrap();
        assert_eq!(env.protocol_version, "2026-07-28");
        assert!(env.can_answer("sampling/createMessage"));
        assert!(!env.can_answer("elicitation/create"));
    }

    #[test]
    fn headers_that_disagree_with_the_body_are_header_mismatches() {
        let body = request("tools/call", json!({"name": "echo", "_meta": envelope()}));
        for h in [
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
                ("mcp-name", "echo"),
            ],
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "other"),
            ],
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
            ],
            vec![("mcp-method", "tools/call"), ("mcp-name", "echo")],
            vec![
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
        ] {
            let err = check(&body, headers(&h), V).unwrap_err();
            assert_eq!(err.code, HEADER_MISMATCH, "{h:?}");
            assert_eq!(status_for(err.code), 400);
        }
    }

    #[test]
    fn a_missing_envelope_is_invalid_params_and_an_unknown_version_names_ours() {
        let h = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
        ];
        let bare = request("tools/list", json!({}));
        assert_eq!(
            check(&bare, headers(&h), V).unwrap_err().code,
            INVALID_PARAMS
        );
        let half = request(
            "tools/list",
            json!({"_meta": {META_PROTOCOL_VERSION: "2026-07-28"}}),
        );
        assert_eq!(
            check(&half, headers(&h), V).unwrap_err().code,
            INVALID_PARAMS
        );
        let future = request(
            "tools/list",
            json!({"_meta": {META_PROTOCOL_VERSION: "2027-01-01", META_CLIENT_CAPABILITIES: {}}}),
        );
        let h = [
            ("mcp-protocol-version", "2027-01-01"),
            ("mcp-method", "tools/list"),
        ];
        let err = check(&future, headers(&h), V).unwrap_err();
        assert_eq!(err.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(err.data.unwrap()["supported"], json!(V));
    }

    #[test]
    fn base64_header_values_decode_and_malformed_ones_match_nothing() {
        assert_eq!(decode_header_value("echo").as_deref(), Some("echo"));
        assert_eq!(
            decode_header_value("=?base64?aMOpbGxv?=").as_deref(),
            Some("héllo")
        );
        assert_eq!(
            decode_header_value("=?base64?aGk=?=").as_deref(),
            Some("hi")
        );
        for bad in ["=?base64?aGk?=", "=?base64?a*k=?=", "=?base64?aGl=?="] {
            assert_eq!(decode_header_value(bad), None, "{bad}");
        }
        let body = request(
            "resources/read",
            json!({"uri": "file:///é", "_meta": envelope()}),
        );
        let h = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "resources/read"),
            ("mcp-name", "=?base64?ZmlsZTovLy/DqQ==?="),
        ];
        assert!(check(&body, headers(&h), V).is_ok());
    }

    #[test]
    fn stateless_posts_are_told_from_handshake_ones() {
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        assert!(!is_stateless_post(None, &list));
        assert!(!is_stateless_post(Some("2025-11-25"), &list));
        assert!(is_stateless_post(Some("2026-07-28"), &list));
        assert!(is_stateless_post(None, &request(DISCOVER, json!({}))));
        assert!(is_stateless_post(
            None,
            &request("tools/list", json!({"_meta": envelope()}))
        ));
    }

    #[test]
    fn the_envelope_is_stripped_and_progress_tokens_kept() {
        let mut meta = envelope();
        meta["progressToken"] = json!(3);
        let mut r = request("tools/call", json!({"name": "x", "_meta": meta}));
        strip_envelope(&mut r);
        assert_eq!(r["params"]["_meta"], json!({"progressToken": 3}));
        let mut r = request("tools/list", json!({"_meta": envelope()}));
        strip_envelope(&mut r);
        assert_eq!(r["params"], json!({}));
    }

    #[test]
    fn bridged_results_are_complete_and_discover_comes_from_initialize() {
        let mut r = json!({"tools": []});
        complete(&mut r, "tools/list", Some(&json!({"name": "s"})));
        assert_eq!(r["resultType"], COMPLETE);
        assert_eq!(
            (r["ttlMs"].clone(), r["cacheScope"].clone()),
            (json!(0), json!("private"))
        );
        let mut call = json!({"content": []});
        complete(&mut call, "tools/call", None);
        assert_eq!(call, json!({"content": [], "resultType": COMPLETE}));
        assert_eq!(r["_meta"][META_SERVER_INFO]["name"], "s");
        let init = json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
            "serverInfo": {"name": "s", "version": "1"}, "instructions": "hi"});
        let d = discover_result(&init);
        assert_eq!(d["supportedVersions"], json!(["2026-07-28"]));
        assert_eq!(d["capabilities"], json!({"tools": {}}));
        assert_eq!(d["instructions"], "hi");
        assert_eq!(d["_meta"][META_SERVER_INFO]["name"], "s");
        let ir = input_required(
            "k",
            &json!({"jsonrpc": "2.0", "id": 5, "method": "roots/list"}),
            "st",
        );
        assert_eq!(ir["inputRequests"]["k"], json!({"method": "roots/list"}));
        assert_eq!(ir["resultType"], INPUT_REQUIRED);
    }
}
