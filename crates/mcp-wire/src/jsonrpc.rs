//! JSON-RPC 2.0 as MCP uses it: every message is a request (method + id), a notification
//! (method, no id) or a response (id + result or error).

use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined server errors (-32000 to -32099).
pub const SERVER_ERROR: i64 = -32000;
/// 2026-07-28: a transport header disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the requested protocol version is not supported; `data.supported` lists ours.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Request { id: Value, method: String },
    Notification { method: String },
    Response { id: Value },
    Invalid,
}

/// Classifies one message. Ids must be strings or numbers (null only on error responses).
pub fn classify(msg: &Value) -> Kind {
    let Some(obj) = msg.as_object() else {
        return Kind::Invalid;
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Kind::Invalid;
    }
    let id = obj.get("id");
    let id_ok = matches!(id, Some(Value::String(_)) | Some(Value::Number(_)));
    match obj.get("method") {
        Some(Value::String(method)) => match id {
            None => Kind::Notification {
                method: method.clone(),
            },
            Some(_) if id_ok => Kind::Request {
                id: id.cloned().unwrap_or(Value::Null),
                method: method.clone(),
            },
            Some(_) => Kind::Invalid,
        },
        Some(_) => Kind::Invalid,
        None if obj.contains_key("result") || obj.contains_key("error") => match id {
            Some(v) if id_ok || (v.is_null() && obj.contains_key("error")) => {
                Kind::Response { id: v.clone() }
            }
            _ => Kind::Invalid,
        },
        None => Kind::Invalid,
    }
}

/// A map key for an id: `"s:abc"` and `"n:1"` so the string "1" and the number 1 differ.
pub fn id_key(id: &Value) -> String {
    match id {
        Value::String(s) => format!("s:{s}"),
        other => format!("n:{other}"),
    }
}

pub fn error_response(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({ "jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error })
}

/// The handshake's first request.
pub const INITIALIZE: &str = "initialize";

/// An `initialize` request: its id and the protocol revision it asks for (absent when the
/// client names none; servers then assume [`crate::version::DEFAULT_VERSION`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Initialize {
    pub id: Value,
    pub requested_version: Option<String>,
}

/// The message as an `initialize` request, if it is one (a notification named
/// `initialize` is not: the handshake needs an id to answer).
pub fn initialize(msg: &Value) -> Option<Initialize> {
    match classify(msg) {
        Kind::Request { id, method } if method == INITIALIZE => Some(Initialize {
            id,
            requested_version: msg
                .pointer("/params/protocolVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
        }),
        _ => None,
    }
}

/// The `progressToken` a request asked progress to be reported under, if any.
pub fn progress_token(request: &Value) -> Option<&Value> {
    request.pointer("/params/_meta/progressToken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_is_a_request_with_an_id_and_names_its_version() {
        let i = initialize(
            &json!({"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}),
        );
        assert_eq!(
            i,
            Some(Initialize {
                id: json!(7),
                requested_version: Some("2025-06-18".into())
            })
        );
        let bare = initialize(&json!({"jsonrpc": "2.0", "id": "a", "method": "initialize"}));
        assert_eq!(bare.and_then(|i| i.requested_version), None);
        assert_eq!(
            initialize(&json!({"jsonrpc": "2.0", "method": "initialize"})),
            None
        );
        assert_eq!(
            initialize(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
            None
        );
    }

    #[test]
    fn the_three_message_kinds_are_told_apart() {
        assert_eq!(
            classify(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
            Kind::Request {
                id: json!(1),
                method: "tools/list".into()
            }
        );
        assert_eq!(
            classify(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
            Kind::Notification {
                method: "notifications/initialized".into()
            }
        );
        assert_eq!(
            classify(&json!({"jsonrpc": "2.0", "id": "a", "result": {}})),
            Kind::Response { id: json!("a") }
        );
        assert_eq!(
            classify(
                &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "x"}})
            ),
            Kind::Response { id: Value::Null }
        );
    }

    #[test]
    fn malformed_messages_are_invalid() {
        for bad in [
            json!([]),
            json!({"id": 1, "method": "x"}),
            json!({"jsonrpc": "1.0", "id": 1, "method": "x"}),
            json!({"jsonrpc": "2.0", "id": {}, "method": "x"}),
            json!({"jsonrpc": "2.0", "id": null, "method": "x"}),
            json!({"jsonrpc": "2.0", "method": 5}),
            json!({"jsonrpc": "2.0", "id": null, "result": {}}),
            json!({"jsonrpc": "2.0"}),
        ] {
            assert_eq!(classify(&bad), Kind::Invalid, "{bad}");
        }
    }

    #[test]
    fn string_and_number_ids_never_collide() {
        assert_ne!(id_key(&json!("1")), id_key(&json!(1)));
    }

    #[test]
    fn progress_tokens_are_read_from_meta() {
        let req = json!({"params": {"_meta": {"progressToken": 7}}});
        assert_eq!(progress_token(&req), Some(&json!(7)));
        assert_eq!(progress_token(&json!({"params": {}})), None);
    }
}
