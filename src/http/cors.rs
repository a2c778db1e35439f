//! CORS for the browser frontend: only origins listed in `ALLOWED_ORIGINS` get
//! `Access-Control-Allow-Origin` (echoed, never `*`, because requests carry credentials);
//! preflights from anywhere else are refused with 403. The one exception is the OAuth
//! authorization server's public endpoints ([`is_public_oauth`]): they read no cookie
//! and no ambient credential, so any origin may call them (`*`, no credentials), as
//! browser-based MCP clients must to discover, register and exchange codes.

use mcp_wire::version;

/// Request headers a browser may send (lowercase). `Mcp-Param-*` is a family: any name
/// with that prefix is allowed, as the 2026-07-28 transport defines open-ended ones.
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "x-request-id",
    "x-access-token",
    version::HEADER_SESSION_ID,
    version::HEADER_PROTOCOL_VERSION,
    version::HEADER_METHOD,
    version::HEADER_NAME,
    version::HEADER_LAST_EVENT_ID,
];
const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const EXPOSED_HEADERS: &str =
    "X-Request-Id, Mcp-Session-Id, Mcp-Protocol-Version, Retry-After, WWW-Authenticate";
/// How long a browser may cache a preflight answer (seconds).
const MAX_AGE_SECS: u32 = 600;

pub fn is_allowed(origin: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(origin.trim()))
}

fn header_allowed(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    ALLOWED_HEADERS.contains(&n.as_str()) || n.starts_with(version::HEADER_PARAM_PREFIX)
}

/// Headers for an allowed preflight. Requested headers outside the allowlist are left
/// out, so the browser refuses the actual request itself.
pub fn preflight_headers(origin: &str, requested: Option<&str>) -> Vec<(&'static str, String)> {
    let allow_headers: Vec<String> = requested
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty() && header_allowed(h))
        .map(str::to_ascii_lowercase)
        .collect();
    let mut out = response_headers(origin);
    out.push(("Access-Control-Allow-Methods", ALLOWED_METHODS.to_string()));
    if !allow_headers.is_empty() {
        out.push(("Access-Control-Allow-Headers", allow_headers.join(", ")));
    }
    out.push(("Access-Control-Max-Age", MAX_AGE_SECS.to_string()));
    out
}

/// Headers added to every response to an allowed origin.
pub fn response_headers(origin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Access-Control-Allow-Origin", origin.trim().to_string()),
        ("Access-Control-Allow-Credentials", "true".to_string()),
        ("Access-Control-Expose-Headers", EXPOSED_HEADERS.to_string()),
    ]
}

/// The OAuth discovery documents and the registration, token and revocation endpoints:
/// open to every origin. (`/oauth/authorize` is a navigation, not a fetch; the consent
/// and grants APIs use the session cookie and stay behind the origin list.)
pub fn is_public_oauth(path: &str) -> bool {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.starts_with("/.well-known/oauth-")
        || path.starts_with("/.well-known/openid-configuration")
        || (path.starts_with("/api/mcp/") && path.ends_with("/.well-known/openid-configuration"))
        || matches!(path, "/oauth/register" | "/oauth/token" | "/oauth/revoke")
}

/// Headers for a public OAuth endpoint's answer (and its preflight, with `preflight`).
pub fn public_headers(preflight: bool) -> Vec<(&'static str, String)> {
    let mut out = vec![("Access-Control-Allow-Origin", "*".to_string())];
    if preflight {
        out.push((
            "Access-Control-Allow-Methods",
            "GET, POST, OPTIONS".to_string(),
        ));
        out.push((
            "Access-Control-Allow-Headers",
            format!("content-type, {}", version::HEADER_PROTOCOL_VERSION),
        ));
        out.push(("Access-Control-Max-Age", MAX_AGE_SECS.to_string()));
    } else {
        out.push((
            "Access-Control-Expose-Headers",
            "WWW-Authenticate, Retry-After".to_string(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec![
            "https://app.example.com".into(),
            "http://localhost:3000".into(),
        ]
    }

    #[test]
    fn only_listed_origins_are_allowed_and_null_never_is() {
        assert!(is_allowed("https://app.example.com", &allowed()));
        assert!(is_allowed("HTTPS://APP.EXAMPLE.COM", &allowed()));
        for o in [
            "https://evil.example.com",
            "null",
            "https://app.example.com.evil.com",
            "*",
            "",
        ] {
            assert!(!is_allowed(o, &allowed()), "{o}");
        }
    }

    #[test]
    fn only_the_credential_free_oauth_endpoints_are_open_to_every_origin() {
        for p in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/api/mcp/dep_x",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/api/mcp/dep_x/.well-known/openid-configuration",
            "/oauth/register",
            "/oauth/token",
            "/oauth/revoke/",
        ] {
            assert!(is_public_oauth(p), "{p}");
        }
        for p in [
            "/oauth/authorize",
            "/api/oauth/requests/abc",
            "/api/mcp/dep_x",
            "/api/deployments",
            "/oauth/tokenx",
            "/.well-known/security.txt",
        ] {
            assert!(!is_public_oauth(p), "{p}");
        }
        assert!(public_headers(true)
            .iter()
            .all(|(k, _)| *k != "Access-Control-Allow-Credentials"));
    }

    #[test]
    fn preflight_echoes_the_origin_and_only_allowed_headers() {
        let h = preflight_headers(
            "http://localhost:3000",
            Some("Authorization, X-Evil, Mcp-Param-City"),
        );
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(
            get("Access-Control-Allow-Origin"),
            Some("http://localhost:3000")
        );
        assert_eq!(
            get("Access-Control-Allow-Headers"),
            Some("authorization, mcp-param-city")
        );
        assert_eq!(get("Access-Control-Allow-Credentials"), Some("true"));
        assert!(h.iter().all(|(_, v)| v != "*"));
    }
}
