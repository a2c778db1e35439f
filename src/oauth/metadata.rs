//! The discovery documents: protected resource metadata (RFC 9728) for each deployment's
//! MCP URL, authorization server metadata (RFC 8414, also served as OpenID discovery), the
//! `WWW-Authenticate` challenge that points a client at them, and which deployment a
//! `resource` indicator (RFC 8707) names.

use serde_json::{json, Value};

use crate::http::route::deployment_id_ok;

/// The one scope: call this deployment's MCP server as its owner allowed.
pub const SCOPE: &str = "mcp";

/// The MCP URL of deployment `id`: also its resource indicator and the audience of every
/// token granted for it.
pub fn resource_url(base: &str, id: &str) -> String {
    format!("{base}/api/mcp/{id}")
}

/// Where a client finds the protected resource metadata of deployment `id`.
pub fn resource_metadata_url(base: &str, id: &str) -> String {
    format!("{base}/.well-known/oauth-protected-resource/api/mcp/{id}")
}

/// RFC 9728 for deployment `id`, or for the origin when `id` is `None` (the root variant
/// some clients ask first; tokens are still only granted for one deployment's URL).
pub fn protected_resource(base: &str, id: Option<&str>) -> Value {
    let resource = id.map_or_else(|| base.to_string(), |id| resource_url(base, id));
    json!({
        "resource": resource,
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [SCOPE],
        "resource_documentation": format!("{base}/api/openapi.json"),
    })
}

/// RFC 8414 (and the OpenID discovery alias): what this authorization server supports.
pub fn authorization_server(base: &str) -> Value {
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [SCOPE],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
    })
}

/// The `WWW-Authenticate` value of a gateway 401 (RFC 6750 §3, RFC 9728 §5.1): no
/// `error` when no token came, `invalid_token` when one was refused.
pub fn challenge(base: &str, id: &str, token_presented: bool) -> String {
    let meta = resource_metadata_url(base, id);
    if token_presented {
        format!(
            "Bearer realm=\"catwalk-edge\", error=\"invalid_token\", resource_metadata=\"{meta}\", scope=\"{SCOPE}\""
        )
    } else {
        format!("Bearer realm=\"catwalk-edge\", resource_metadata=\"{meta}\", scope=\"{SCOPE}\"")
    }
}

/// The deployment a resource indicator names, if it is exactly one of our MCP URLs (a
/// trailing slash tolerated: some clients normalize URLs that way).
pub fn deployment_of<'a>(base: &str, resource: &'a str) -> Option<&'a str> {
    let rest = resource.strip_prefix(base)?.strip_prefix("/api/mcp/")?;
    let id = rest.strip_suffix('/').unwrap_or(rest);
    deployment_id_ok(id).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://edge.example";
    const ID: &str = "dep_0123456789abcdef0123456789abcd";

    #[test]
    fn a_resource_names_exactly_one_deployment_of_ours() {
        let url = resource_url(BASE, ID);
        assert_eq!(deployment_of(BASE, &url), Some(ID));
        assert_eq!(deployment_of(BASE, &format!("{url}/")), Some(ID));
        for other in [
            format!("https://evil.example/api/mcp/{ID}"),
            format!("{BASE}/api/mcp/{ID}/x"),
            format!("{BASE}/api/mcp/dep_nothex"),
            format!("{BASE}/api/mcp/{ID}?a=b"),
            format!("{BASE}.evil/api/mcp/{ID}"),
            BASE.to_string(),
            String::new(),
        ] {
            assert_eq!(deployment_of(BASE, &other), None, "{other}");
        }
    }

    #[test]
    fn the_challenge_points_at_the_deployments_metadata() {
        let c = challenge(BASE, ID, false);
        assert!(c.contains(&format!(
            "resource_metadata=\"{BASE}/.well-known/oauth-protected-resource/api/mcp/{ID}\""
        )));
        assert!(!c.contains("error="));
        assert!(challenge(BASE, ID, true).contains("error=\"invalid_token\""));
    }

    #[test]
    fn the_documents_name_our_endpoints_and_only_s256() {
        let a = authorization_server(BASE);
        assert_eq!(a["issuer"], BASE);
        assert_eq!(a["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(a["token_endpoint_auth_methods_supported"], json!(["none"]));
        let r = protected_resource(BASE, Some(ID));
        assert_eq!(r["resource"], resource_url(BASE, ID));
        assert_eq!(r["authorization_servers"], json!([BASE]));
    }
}
