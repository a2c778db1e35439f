//! Reading a gateway request: the access token (`Authorization: Bearer`, `X-Access-Token`
//! or `?token=`), the JSON-RPC message (initialize? which tool?), the protocol era, and the
//! headers that cross to the machine (everything the client sent except hop-by-hop,
//! credentials and platform headers — so `Mcp-Method`, `Mcp-Name` and every
//! `Mcp-Param-*` pass untouched) and back.

use mcp_wire::jsonrpc::{classify, initialize, Kind, INITIALIZE};
use mcp_wire::version::{is_stateless, HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID};
use serde_json::Value;

/// Where the token came from (for the audit log; never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    Bearer,
    Header,
    Query,
}

/// The presented token: the first of `Authorization: Bearer`, `X-Access-Token`, `?token=`.
pub fn token<'a>(
    authorization: Option<&'a str>,
    x_access_token: Option<&'a str>,
    query: Option<&str>,
) -> Option<(String, TokenSource)> {
    if let Some(v) = authorization {
        let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
            return Some((rest.trim().to_string(), TokenSource::Bearer));
        }
    }
    if let Some(v) = x_access_token.map(str::trim).filter(|v| !v.is_empty()) {
        return Some((v.to_string(), TokenSource::Header));
    }
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, v)| k == "token" && !v.is_empty())
        .map(|(_, v)| (v.into_owned(), TokenSource::Query))
}

/// The query string with any `token` value replaced, for logs.
pub fn loggable_query(query: Option<&str>) -> Option<String> {
    let q = query?;
    let pairs: Vec<String> = url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| {
            if k == "token" {
                format!("{k}=[redacted]")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    Some(pairs.join("&"))
}

/// What the gateway needs to know about a POSTed message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// The JSON-RPC id of a request (errors we answer carry it).
    pub id: Option<Value>,
    pub method: Option<String>,
    /// `params.name` of a `tools/call`.
    pub tool: Option<String>,
    /// `params.protocolVersion` of an `initialize`.
    pub requested_version: Option<String>,
}

impl Message {
    pub fn is_initialize(&self) -> bool {
        self.method.as_deref() == Some(INITIALIZE) && self.id.is_some()
    }
}

/// Longest tool name kept for usage counting, in bytes.
pub const MAX_TOOL_NAME_BYTES: usize = 128;

/// A client-chosen tool name as a usage metric: at most [`MAX_TOOL_NAME_BYTES`], cut on a
/// character boundary, control characters dropped.
fn bounded_tool_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_TOOL_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// Reads a POST body; anything unparsable is an empty [`Message`] (the server judges it).
pub fn message(body: &[u8]) -> Message {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Message::default();
    };
    match classify(&v) {
        Kind::Request { id, method } => Message {
            tool: (method == "tools/call")
                .then(|| v.pointer("/params/name").and_then(Value::as_str))
                .flatten()
                .map(bounded_tool_name),
            requested_version: initialize(&v).and_then(|i| i.requested_version),
            id: Some(id),
            method: Some(method),
        },
        Kind::Notification { method } => Message {
            method: Some(method),
            ..Message::default()
        },
        _ => Message::default(),
    }
}

/// The session a request names, as its era reads it: 2026-07-28 has no sessions and says a
/// `Mcp-Session-Id` sent along is ignored, so with that version the header counts as absent
/// (judging it would answer a valid request 404, or re-version a handshake session).
pub fn session_of<'a>(protocol_version: Option<&str>, session: Option<&'a str>) -> Option<&'a str> {
    session.filter(|_| !protocol_version.is_some_and(is_stateless))
}

/// The 2026-07-28 form: no session, the new protocol version on the request.
pub fn is_stateless_request(protocol_version: Option<&str>, session: Option<&str>) -> bool {
    session.is_none() && protocol_version.is_some_and(is_stateless)
}

/// Request headers never forwarded: hop-by-hop, the client's credentials (the machine gets
/// our own secret instead), cookies, the session id (replaced by the upstream's) and
/// platform headers.
fn request_header_dropped(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization"
            | "x-access-token"
            | "cookie"
            | "host"
            | "connection"
            | "keep-alive"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "origin"
            | HEADER_SESSION_ID
            | "fly-force-instance-id"
            | "fly-prefer-instance-id"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-real-ip"
            | "true-client-ip"
    ) || n.starts_with("cf-")
        || n.starts_with("fly-")
}

pub fn forward_request_header(name: &str) -> bool {
    !request_header_dropped(name)
}

/// Response headers passed back to the client (the session id is ours, set separately).
pub fn forward_response_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "content-type" | "cache-control" | HEADER_PROTOCOL_VERSION | "retry-after"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_token_is_found_in_each_place_in_order() {
        assert_eq!(
            token(Some("Bearer cwk_a"), Some("cwk_b"), Some("token=cwk_c")),
            Some(("cwk_a".into(), TokenSource::Bearer))
        );
        assert_eq!(
            token(Some("Basic abc"), Some(" cwk_b "), None),
            Some(("cwk_b".into(), TokenSource::Header))
        );
        assert_eq!(
            token(None, None, Some("x=1&token=cwk_c%2B")),
            Some(("cwk_c+".into(), TokenSource::Query))
        );
        assert_eq!(token(Some("Bearer "), Some(""), Some("token=")), None);
    }

    #[test]
    fn logged_queries_never_hold_the_token() {
        let q = loggable_query(Some("token=cwk_secret&x=1")).unwrap();
        assert!(!q.contains("cwk_secret") && q.contains("x=1"));
        assert_eq!(loggable_query(None), None);
    }

    #[test]
    fn messages_are_read_for_what_the_gateway_needs() {
        let m = message(
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "secret"}}})
                .to_string()
                .as_bytes(),
        );
        assert!(!m.is_initialize());
        assert_eq!((m.id, m.tool.as_deref()), (Some(json!(7)), Some("echo")));
        let long = message(
            json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "é".repeat(500) + "\n"}})
                .to_string()
                .as_bytes(),
        );
        let tool = long.tool.unwrap();
        assert!(tool.len() <= MAX_TOOL_NAME_BYTES && tool.chars().all(|c| c == 'é'));
        let i = message(json!({"jsonrpc": "2.0", "id": "a", "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}).to_string().as_bytes());
        assert!(i.is_initialize());
        assert_eq!(i.requested_version.as_deref(), Some("2025-06-18"));
        assert_eq!(message(b"{not json"), Message::default());
        assert!(!message(br#"{"jsonrpc":"2.0","method":"initialize"}"#).is_initialize());
    }

    #[test]
    fn credentials_and_platform_headers_stay_behind_and_mcp_headers_pass() {
        for h in [
            "Authorization",
            "X-Access-Token",
            "Cookie",
            "Host",
            "Mcp-Session-Id",
            "cf-connecting-ip",
            "Fly-Force-Instance-Id",
            "Origin",
        ] {
            assert!(!forward_request_header(h), "{h}");
        }
        for h in [
            "Content-Type",
            "Accept",
            "MCP-Protocol-Version",
            "Mcp-Method",
            "Mcp-Name",
            "Mcp-Param-City",
            "Last-Event-ID",
        ] {
            assert!(forward_request_header(h), "{h}");
        }
        assert!(forward_response_header("Content-Type"));
        assert!(
            !forward_response_header("Set-Cookie") && !forward_response_header("Mcp-Session-Id")
        );
    }

    #[test]
    fn the_stateless_era_is_a_new_version_without_a_session() {
        assert!(is_stateless_request(Some("2026-07-28"), None));
        assert!(!is_stateless_request(Some("2026-07-28"), Some("abc")));
        assert!(!is_stateless_request(Some("2025-06-18"), None));
        assert!(!is_stateless_request(None, None));
    }

    #[test]
    fn a_session_id_sent_with_a_2026_07_28_request_is_ignored() {
        assert_eq!(session_of(Some("2026-07-28"), Some("abc")), None);
        assert_eq!(session_of(Some("2025-11-25"), Some("abc")), Some("abc"));
        assert_eq!(session_of(None, Some("abc")), Some("abc"));
        assert_eq!(session_of(Some("2026-07-28"), None), None);
    }
}
