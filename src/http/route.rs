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
}

/// A matched route and the resource id its path carried, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub route: Route,
    pub id: Option<String>,
}

/// One path pattern with the methods it answers. A `{id}` segment matches a deployment
/// id (`dep_` + 30 hex); anything else there is a 404 before any handler runs.
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
];

/// Allowed-method lists for the `Allow` header, one per table entry (static so the
/// error type can hold them without allocation).
const ALLOW: &[&[&str]] = &[
    &["GET"],
    &["GET"],
    &["POST"],
    &["GET"],
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
];

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

/// The id captured by `pattern` from `path`, `Some(None)` for a literal match.
fn capture(pattern: &str, path: &str) -> Option<Option<String>> {
    let (mut p, mut s) = (pattern.split('/'), path.split('/'));
    let mut id = None;
    loop {
        match (p.next(), s.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(seg)) if deployment_id_ok(seg) => id = Some(seg.to_string()),
            (Some(a), Some(b)) if a == b && a != "{id}" => {}
            _ => return None,
        }
    }
}

pub fn resolve(method: &str, path: &str) -> Result<Resolved, AppError> {
    let path = normalise(path);
    for (i, entry) in TABLE.iter().enumerate() {
        let Some(id) = capture(entry.path, path) else {
            continue;
        };
        // HEAD is answered like GET by the runtime's semantics; we keep it explicit.
        let method = if method == "HEAD" { "GET" } else { method };
        return entry
            .methods
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, r)| Resolved { route: *r, id })
            .ok_or(AppError::MethodNotAllowed {
                allowed: ALLOW.get(i).copied().unwrap_or(&[]),
            });
    }
    Err(AppError::not_found("No such route."))
}

#[cfg(test)]
mod tests {
    use super::*;

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
