//! The route table: (method, path) → [`Route`], or the 404 / 405 that every unknown path
//! or method gets. Kept pure so the whole table is tested natively; handlers live in
//! `crate::routes`.

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// One path pattern with the methods it answers. Patterns are literal for now; segments
/// that carry ids arrive with the routes that need them.
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
];

/// Allowed-method lists for the `Allow` header, one per table entry (static so the
/// error type can hold them without allocation).
const ALLOW: &[&[&str]] = &[&["GET"], &["GET"], &["POST"], &["GET"], &["POST"]];

/// A single trailing slash is tolerated (`/api/health/` is `/api/health`).
fn normalise(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

pub fn resolve(method: &str, path: &str) -> Result<Route, AppError> {
    let path = normalise(path);
    for (i, entry) in TABLE.iter().enumerate() {
        if entry.path != path {
            continue;
        }
        // HEAD is answered like GET by the runtime's semantics; we keep it explicit.
        let method = if method == "HEAD" { "GET" } else { method };
        return entry
            .methods
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, r)| r.clone())
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
        assert_eq!(resolve("GET", "/api/health"), Ok(Route::Health));
        assert_eq!(resolve("GET", "/api/health/"), Ok(Route::Health));
        assert_eq!(resolve("POST", "/api/auth/sync-user"), Ok(Route::SyncUser));
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
