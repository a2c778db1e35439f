//! The route table: (method, path) → [`Route`], or the 404 / 405 that every unknown path
//! or method gets. Kept pure so the whole table is tested natively; handlers live in
//! `crate::routes`.

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/health`: liveness and configuration completeness.
    Health,
    /// `GET /api/health/storage`: a signed-in round trip through D1, KV and a Durable Object.
    HealthStorage,
    /// `POST /api/auth/sync-user`: the frontend's server upserts a person by email.
    SyncUser,
    /// `GET /api/auth/me`: the signed-in person.
    Me,
    /// `GET /api/auth/providers`: the ways to sign in to the dashboard.
    AuthProviders,
    /// `POST /api/auth/dev-sign-in`: the development sign-in (404 unless enabled).
    DevSignIn,
    /// `POST /api/auth/session`: an identity provider's JWT → the session cookie.
    CreateSession,
    /// `POST /api/auth/sign-out`: clears the session cookie.
    SignOut,
    /// `POST /api/analyze`: a source → a launch plan.
    Analyze,
    /// `GET /api/settings`: which personal settings are set (never their values).
    Settings,
    /// `PUT /api/settings`: set or clear personal settings (own LLM key, own Fly token).
    PutSettings,
    /// `GET /api/audit`: the caller's own audit events.
    Audit,
    /// `GET /api/deployments`: the caller's deployments, newest first.
    ListDeployments,
    /// `POST /api/deployments`: validate, store, and start creating the machine.
    CreateDeployment,
    /// `GET /api/deployments/{id}`
    GetDeployment,
    /// `DELETE /api/deployments/{id}`
    DeleteDeployment,
    /// `POST /api/deployments/{id}/rotate-token`
    RotateToken,
    /// `POST /api/deployments/{id}/stop`
    StopDeployment,
    /// `POST /api/deployments/{id}/start`
    StartDeployment,
    /// `POST /api/deployments/{id}/restart`
    RestartDeployment,
    /// `PUT /api/deployments/{id}/credentials`
    PutCredentials,
    /// `GET /api/deployments/{id}/usage`
    Usage,
    /// `GET /api/deployments/{id}/logs?lines=N`: the server's recent stderr, masked.
    Logs,
    /// `POST|GET|DELETE|OPTIONS /api/mcp/{id}`: the MCP gateway.
    Mcp,
    /// `GET /api/registry/servers`: the official MCP registry, searched and normalized.
    RegistryServers,
    /// `GET /api/registry/servers/{name}`: one registry entry as a deployment form.
    RegistryServer,
    /// `GET /api/openapi.json`: the API contract (OpenAPI 3.1).
    OpenApi,
    /// `GET` of one of the dashboard's pages ([`PAGES`]): its `index.html`.
    Page,
    /// `GET /.well-known/oauth-protected-resource[/api/mcp/{id}]`: RFC 9728.
    ResourceMetadata,
    /// `GET /.well-known/oauth-authorization-server` (and the OpenID discovery aliases,
    /// plain and path-suffixed): RFC 8414.
    ServerMetadata,
    /// `POST /oauth/register`: Dynamic Client Registration (RFC 7591).
    OAuthRegister,
    /// `GET /oauth/authorize`: an authorization request → the consent page.
    OAuthAuthorize,
    /// `POST /oauth/token`: code or refresh token → tokens.
    OAuthToken,
    /// `POST /oauth/revoke`: RFC 7009.
    OAuthRevoke,
    /// `GET /api/oauth/requests/{key}`: a pending authorization request, for its consent page.
    OAuthRequest,
    /// `POST /api/oauth/requests/{key}`: the owner allows or denies it.
    OAuthDecide,
    /// `GET /api/deployments/{id}/oauth-grants`: the deployment's connected clients.
    OAuthGrants,
    /// `DELETE /api/deployments/{id}/oauth-grants/{key}`: revoke one.
    RevokeOAuthGrant,
}

/// A matched route and the resource key its path carried, if any: a deployment id, or a
/// registry server name still percent-encoded as it came (`io.github.acme%2Fweather`);
/// and a second, opaque key (an OAuth request or grant id) where the path has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub route: Route,
    pub id: Option<String>,
    pub key: Option<String>,
}

/// One path pattern with the methods it answers. A `{id}` segment matches a deployment
/// id (`dep_` + 30 hex), a `{name}` segment a registry server name with its one slash
/// encoded ([`registry_name_segment_ok`]), a `{key}` segment an opaque id of ours
/// ([`key_ok`]); anything else there is a 404 before any handler runs.
struct Entry {
    path: &'static str,
    methods: &'static [(&'static str, Route)],
}

const TABLE: &[Entry] = &[
    Entry {
        path: "/api/health",
        methods: &[("GET", Route::Health)],
    },
    Entry {
        path: "/api/health/storage",
        methods: &[("GET", Route::HealthStorage)],
    },
    Entry {
        path: "/api/auth/sync-user",
        methods: &[("POST", Route::SyncUser)],
    },
    Entry {
        path: "/api/auth/me",
        methods: &[("GET", Route::Me)],
    },
    Entry {
        path: "/api/auth/providers",
        methods: &[("GET", Route::AuthProviders)],
    },
    Entry {
        path: "/api/auth/dev-sign-in",
        methods: &[("POST", Route::DevSignIn)],
    },
    Entry {
        path: "/api/auth/session",
        methods: &[("POST", Route::CreateSession)],
    },
    Entry {
        path: "/api/auth/sign-out",
        methods: &[("POST", Route::SignOut)],
    },
    Entry {
        path: "/api/analyze",
        methods: &[("POST", Route::Analyze)],
    },
    Entry {
        path: "/api/settings",
        methods: &[("GET", Route::Settings), ("PUT", Route::PutSettings)],
    },
    Entry {
        path: "/api/audit",
        methods: &[("GET", Route::Audit)],
    },
    Entry {
        path: "/api/deployments",
        methods: &[
            ("GET", Route::ListDeployments),
            ("POST", Route::CreateDeployment),
        ],
    },
    Entry {
        path: "/api/deployments/{id}",
        methods: &[
            ("GET", Route::GetDeployment),
            ("DELETE", Route::DeleteDeployment),
        ],
    },
    Entry {
        path: "/api/deployments/{id}/rotate-token",
        methods: &[("POST", Route::RotateToken)],
    },
    Entry {
        path: "/api/deployments/{id}/stop",
        methods: &[("POST", Route::StopDeployment)],
    },
    Entry {
        path: "/api/deployments/{id}/start",
        methods: &[("POST", Route::StartDeployment)],
    },
    Entry {
        path: "/api/deployments/{id}/restart",
        methods: &[("POST", Route::RestartDeployment)],
    },
    Entry {
        path: "/api/deployments/{id}/credentials",
        methods: &[("PUT", Route::PutCredentials)],
    },
    Entry {
        path: "/api/deployments/{id}/usage",
        methods: &[("GET", Route::Usage)],
    },
    Entry {
        path: "/api/deployments/{id}/logs",
        methods: &[("GET", Route::Logs)],
    },
    Entry {
        path: "/api/mcp/{id}",
        methods: &[
            ("POST", Route::Mcp),
            ("GET", Route::Mcp),
            ("DELETE", Route::Mcp),
            ("OPTIONS", Route::Mcp),
        ],
    },
    Entry {
        path: "/api/registry/servers",
        methods: &[("GET", Route::RegistryServers)],
    },
    Entry {
        path: "/api/registry/servers/{name}",
        methods: &[("GET", Route::RegistryServer)],
    },
    Entry {
        path: "/api/openapi.json",
        methods: &[("GET", Route::OpenApi)],
    },
    Entry {
        path: "/.well-known/oauth-protected-resource",
        methods: &[("GET", Route::ResourceMetadata)],
    },
    Entry {
        path: "/.well-known/oauth-protected-resource/api/mcp/{id}",
        methods: &[("GET", Route::ResourceMetadata)],
    },
    Entry {
        path: "/.well-known/oauth-authorization-server",
        methods: &[("GET", Route::ServerMetadata)],
    },
    Entry {
        path: "/.well-known/oauth-authorization-server/api/mcp/{id}",
        methods: &[("GET", Route::ServerMetadata)],
    },
    Entry {
        path: "/.well-known/openid-configuration",
        methods: &[("GET", Route::ServerMetadata)],
    },
    Entry {
        path: "/.well-known/openid-configuration/api/mcp/{id}",
        methods: &[("GET", Route::ServerMetadata)],
    },
    Entry {
        path: "/api/mcp/{id}/.well-known/openid-configuration",
        methods: &[("GET", Route::ServerMetadata)],
    },
    Entry {
        path: "/oauth/register",
        methods: &[("POST", Route::OAuthRegister)],
    },
    Entry {
        path: "/oauth/authorize",
        methods: &[("GET", Route::OAuthAuthorize)],
    },
    Entry {
        path: "/oauth/token",
        methods: &[("POST", Route::OAuthToken)],
    },
    Entry {
        path: "/oauth/revoke",
        methods: &[("POST", Route::OAuthRevoke)],
    },
    Entry {
        path: "/api/oauth/requests/{key}",
        methods: &[("GET", Route::OAuthRequest), ("POST", Route::OAuthDecide)],
    },
    Entry {
        path: "/api/deployments/{id}/oauth-grants",
        methods: &[("GET", Route::OAuthGrants)],
    },
    Entry {
        path: "/api/deployments/{id}/oauth-grants/{key}",
        methods: &[("DELETE", Route::RevokeOAuthGrant)],
    },
];

/// Allowed-method lists for the `Allow` header, one per table entry (static so the
/// error type can hold them without allocation).
const ALLOW: &[&[&str]] = &[
    &["GET"],
    &["GET"],
    &["POST"],
    &["GET"],
    &["GET"],
    &["POST"],
    &["POST"],
    &["POST"],
    &["POST"],
    &["GET", "PUT"],
    &["GET"],
    &["GET", "POST"],
    &["GET", "DELETE"],
    &["POST"],
    &["POST"],
    &["POST"],
    &["POST"],
    &["PUT"],
    &["GET"],
    &["GET"],
    &["POST", "GET", "DELETE", "OPTIONS"],
    &["GET"],
    &["GET"],
    &["GET"],
    &["GET"],
    &["GET"],
    &["GET"],
    &["GET"],
    &["GET"],
    &["GET"],
    &["GET"],
    &["POST"],
    &["GET"],
    &["POST"],
    &["POST"],
    &["GET", "POST"],
    &["GET"],
    &["DELETE"],
];

/// The dashboard's pages (the paths `web/src/app.tsx` shows): each answers the dashboard's
/// `index.html` from the static assets, which route in the page. The assets' own files
/// (`/assets/…`, `/favicon.svg`) never reach the Worker; any other path is a JSON 404.
pub const PAGES: &[&str] = &[
    "/",
    "/deployments",
    "/deployments/{id}",
    "/audit",
    "/settings",
    "/oauth/consent",
];

/// Every API path pattern with the methods it answers, in table order (what the OpenAPI
/// document must describe, no more and no less).
pub fn table() -> impl Iterator<Item = (&'static str, Vec<&'static str>)> {
    TABLE
        .iter()
        .map(|e| (e.path, e.methods.iter().map(|(m, _)| *m).collect()))
}

/// The longest registry server name (the registry's own limit).
pub const MAX_REGISTRY_NAME: usize = 200;

/// A registry server name (`namespace/server`, reverse DNS) as one path segment, its slash
/// encoded as `%2F` (either case); nothing else may be encoded and nothing else may appear.
pub fn registry_name_segment_ok(segment: &str) -> bool {
    decode_registry_name(segment).is_some()
}

/// `io.github.acme%2Fweather` → `io.github.acme/weather`, or `None` for anything that is
/// not a registry name: the namespace is `[A-Za-z0-9.-]+`, the server `[A-Za-z0-9._-]+`
/// (the registry's own pattern), each with at least one letter or digit.
pub fn decode_registry_name(segment: &str) -> Option<String> {
    let (ns, server) = segment
        .split_once("%2F")
        .or_else(|| segment.split_once("%2f"))?;
    // Dots alone (`..`) are a path step somewhere, never a name.
    let has_alnum = |s: &str| s.bytes().any(|b| b.is_ascii_alphanumeric());
    let ns_ok = has_alnum(ns)
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    let server_ok = has_alnum(server)
        && server
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let name = format!("{ns}/{server}");
    (ns_ok && server_ok && name.len() <= MAX_REGISTRY_NAME).then_some(name)
}

/// An opaque id of ours in a path (an OAuth request or grant): 1–64 of `[A-Za-z0-9_-]`.
pub fn key_ok(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `dep_` followed by 30 lowercase hex digits (what [`crate::ids::new_id`] makes).
pub fn deployment_id_ok(id: &str) -> bool {
    id.strip_prefix("dep_").is_some_and(|hex| {
        hex.len() == 30
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A single trailing slash is tolerated (`/api/health/` is `/api/health`).
fn normalise(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

/// The captures of `pattern` in `path`: the `{id}`/`{name}` and the `{key}`, each `None`
/// when the pattern has none; `None` altogether when the path does not match.
type Captured = (Option<String>, Option<String>);

fn capture(pattern: &str, path: &str) -> Option<Captured> {
    let (mut p, mut s) = (pattern.split('/'), path.split('/'));
    let (mut id, mut key) = (None, None);
    loop {
        match (p.next(), s.next()) {
            (None, None) => return Some((id, key)),
            (Some("{id}"), Some(seg)) if deployment_id_ok(seg) => id = Some(seg.to_string()),
            (Some("{name}"), Some(seg)) if registry_name_segment_ok(seg) => {
                id = Some(seg.to_string())
            }
            (Some("{key}"), Some(seg)) if key_ok(seg) => key = Some(seg.to_string()),
            (Some(a), Some(b)) if a == b && !a.starts_with('{') => {}
            _ => return None,
        }
    }
}

pub fn resolve(method: &str, path: &str) -> Result<Resolved, AppError> {
    let path = normalise(path);
    for (i, entry) in TABLE.iter().enumerate() {
        let Some((id, key)) = capture(entry.path, path) else {
            continue;
        };
        // HEAD is answered like GET by the runtime's semantics; we keep it explicit.
        let method = if method == "HEAD" { "GET" } else { method };
        return entry
            .methods
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, r)| Resolved {
                route: *r,
                id: id.clone(),
                key: key.clone(),
            })
            .ok_or(AppError::MethodNotAllowed {
                allowed: ALLOW.get(i).copied().unwrap_or(&[]),
            });
    }
    if let Some((id, _)) = PAGES.iter().find_map(|p| capture(p, path)) {
        return match method {
            "GET" | "HEAD" => Ok(Resolved {
                route: Route::Page,
                id,
                key: None,
            }),
            _ => Err(AppError::MethodNotAllowed { allowed: &["GET"] }),
        };
    }
    Err(AppError::not_found("No such route."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_routes_carry_their_deployment_and_key() {
        let id = format!("dep_{}", "0a".repeat(15));
        let r = resolve(
            "GET",
            &format!("/.well-known/oauth-protected-resource/api/mcp/{id}"),
        )
        .unwrap();
        assert_eq!(
            (r.route, r.id.as_deref()),
            (Route::ResourceMetadata, Some(id.as_str()))
        );
        for p in [
            "/.well-known/oauth-authorization-server".to_string(),
            format!("/.well-known/oauth-authorization-server/api/mcp/{id}"),
            "/.well-known/openid-configuration".to_string(),
            format!("/.well-known/openid-configuration/api/mcp/{id}"),
            format!("/api/mcp/{id}/.well-known/openid-configuration"),
        ] {
            assert_eq!(
                resolve("GET", &p).map(|r| r.route),
                Ok(Route::ServerMetadata),
                "{p}"
            );
        }
        let r = resolve(
            "DELETE",
            &format!("/api/deployments/{id}/oauth-grants/grt_abc"),
        )
        .unwrap();
        assert_eq!(r.route, Route::RevokeOAuthGrant);
        assert_eq!(
            (r.id.as_deref(), r.key.as_deref()),
            (Some(id.as_str()), Some("grt_abc"))
        );
        let r = resolve("POST", "/api/oauth/requests/0123abcd").unwrap();
        assert_eq!(
            (r.route, r.key.as_deref()),
            (Route::OAuthDecide, Some("0123abcd"))
        );
        assert_eq!(
            resolve("GET", "/oauth/consent").map(|r| r.route),
            Ok(Route::Page)
        );
        for bad in [
            "/api/oauth/requests/a.b".to_string(),
            "/api/oauth/requests/..".to_string(),
            format!("/api/oauth/requests/{}", "a".repeat(65)),
            "/.well-known/oauth-protected-resource/api/mcp/dep_x".to_string(),
        ] {
            assert!(
                matches!(resolve("GET", &bad), Err(AppError::NotFound { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            resolve("GET", "/oauth/token"),
            Err(AppError::MethodNotAllowed { allowed: &["POST"] })
        ));
    }

    #[test]
    fn the_dashboards_pages_are_get_only_and_nothing_else_outside_the_api_is_a_page() {
        let route = |m: &str, p: &str| resolve(m, p).map(|r| r.route);
        let id = format!("dep_{}", "0a".repeat(15));
        for p in ["/", "/deployments", "/deployments/", "/audit", "/settings"] {
            assert_eq!(route("GET", p), Ok(Route::Page), "{p}");
            assert_eq!(route("HEAD", p), Ok(Route::Page), "{p}");
        }
        let r = resolve("GET", &format!("/deployments/{id}")).unwrap();
        assert_eq!((r.route, r.id), (Route::Page, Some(id)));
        assert!(matches!(
            route("POST", "/settings"),
            Err(AppError::MethodNotAllowed { .. })
        ));
        for p in [
            "/deployments/dep_nope",
            "/auth/me",
            "/index.html/../etc/passwd",
            "/settings/x",
            "/__scheduled",
        ] {
            assert!(
                matches!(route("GET", p), Err(AppError::NotFound { .. })),
                "{p}"
            );
        }
    }

    #[test]
    fn known_routes_resolve_with_or_without_a_trailing_slash() {
        let route = |m: &str, p: &str| resolve(m, p).map(|r| r.route);
        assert_eq!(route("GET", "/api/health"), Ok(Route::Health));
        assert_eq!(route("GET", "/api/health/"), Ok(Route::Health));
        assert_eq!(route("POST", "/api/auth/sync-user"), Ok(Route::SyncUser));
    }

    #[test]
    fn deployment_ids_are_captured_and_anything_else_is_404() {
        let id = format!("dep_{}", "0a".repeat(15));
        let r = resolve("POST", &format!("/api/deployments/{id}/rotate-token")).unwrap();
        assert_eq!(
            (r.route, r.id.as_deref()),
            (Route::RotateToken, Some(id.as_str()))
        );
        assert_eq!(
            resolve("DELETE", &format!("/api/deployments/{id}/"))
                .unwrap()
                .route,
            Route::DeleteDeployment
        );
        for bad in [
            "/api/deployments/dep_x",
            "/api/deployments/..%2f..",
            "/api/deployments/{id}",
            &format!("/api/deployments/{}", id.to_uppercase()),
            &format!("/api/deployments/{id}/nope"),
            &format!("/api/deployments/{id}/stop/extra"),
        ] {
            assert_eq!(resolve("POST", bad).unwrap_err().status(), 404, "{bad}");
        }
        assert_eq!(
            resolve("PATCH", &format!("/api/deployments/{id}"))
                .unwrap_err()
                .headers()[0],
            ("Allow", "GET, DELETE".to_string())
        );
    }

    #[test]
    fn registry_names_are_one_encoded_segment_and_anything_else_is_404() {
        let r = resolve("GET", "/api/registry/servers/io.github.acme%2Fweather").unwrap();
        assert_eq!(
            (r.route, r.id.as_deref()),
            (Route::RegistryServer, Some("io.github.acme%2Fweather"))
        );
        assert_eq!(
            decode_registry_name("io.github.Acme-1%2fweather_2.x").as_deref(),
            Some("io.github.Acme-1/weather_2.x")
        );
        for bad in [
            "/api/registry/servers/io.github.acme/weather",
            "/api/registry/servers/io.github.acme",
            "/api/registry/servers/%2Fweather",
            "/api/registry/servers/acme%2F",
            "/api/registry/servers/a%2Fb%2Fc",
            "/api/registry/servers/..%2F..",
            "/api/registry/servers/a%20b%2Fc",
            "/api/registry/servers/{name}",
        ] {
            assert_eq!(resolve("GET", bad).unwrap_err().status(), 404, "{bad}");
        }
        let long = format!("{}%2Fx", "a".repeat(MAX_REGISTRY_NAME));
        assert!(!registry_name_segment_ok(&long));
    }

    #[test]
    fn a_wrong_method_is_405_with_allow_and_an_unknown_path_is_404() {
        let e = resolve("DELETE", "/api/health").unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(e.headers()[0], ("Allow", "GET".to_string()));
        assert_eq!(resolve("GET", "/api/nope").unwrap_err().status(), 404);
        assert_eq!(
            resolve("GET", "/api/health/../auth/me")
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(resolve("GET", "//api/health").unwrap_err().status(), 404);
    }

    #[test]
    fn the_allow_table_matches_the_route_table() {
        assert_eq!(ALLOW.len(), TABLE.len());
        for (entry, allow) in TABLE.iter().zip(ALLOW) {
            let methods: Vec<&str> = entry.methods.iter().map(|(m, _)| *m).collect();
            assert_eq!(&methods, allow, "{}", entry.path);
        }
    }
}
