//! The dashboard's session: the same JWT the API takes as a bearer token, carried in an
//! `HttpOnly; Secure; SameSite=Strict` cookie so the page's script never holds it. Pure:
//! where a request's token comes from, the `Set-Cookie` values, and the CSRF rule for
//! cookie-borne requests.

/// The cookie's name. `__Host-` would pin it to `Path=/` on the exact host, but browsers
/// refuse that prefix on plain `http://127.0.0.1` (local development), so the attributes
/// are set by hand instead.
pub const COOKIE: &str = "cw_session";

/// Where the session token of a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Header,
    Cookie,
}

/// The session cookie's value from a `Cookie` header, if there is exactly one usable.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    let mut found = None;
    for pair in header.split(';') {
        let Some((name, value)) = pair.trim().split_once('=') else {
            continue;
        };
        if name.trim() == COOKIE {
            if found.is_some() {
                // Two session cookies (one planted by a sibling subdomain?): trust neither.
                return None;
            }
            found = Some(value.trim()).filter(|v| !v.is_empty());
        }
    }
    found
}

/// `Set-Cookie` for a session token that may live `max_age_secs`.
pub fn set_cookie(token: &str, max_age_secs: u32) -> String {
    format!(
        "{COOKIE}={token}; Path=/api; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict"
    )
}

/// `Set-Cookie` that removes the session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/api; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// A cookie-borne request that changes something must say where it comes from: browsers
/// send `Origin` on every such fetch, and the pipeline has already refused any origin that
/// is neither ours nor listed. A forged form post from elsewhere either has a foreign
/// `Origin` (refused there) or none (refused here). `SameSite=Strict` is the first line;
/// this is the second.
pub fn csrf_ok(carrier: Carrier, method: &str, origin: Option<&str>) -> bool {
    let safe = matches!(method, "GET" | "HEAD" | "OPTIONS");
    carrier == Carrier::Header || safe || origin.is_some_and(|o| !o.is_empty() && o != "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_read_from_its_cookie_only_when_unambiguous() {
        assert_eq!(
            from_cookie_header("a=1; cw_session=abc.def.ghi; b=2"),
            Some("abc.def.ghi")
        );
        assert_eq!(from_cookie_header("cw_session="), None);
        assert_eq!(from_cookie_header("other=cw_session"), None);
        assert_eq!(from_cookie_header("cw_session=a; cw_session=b"), None);
        assert_eq!(from_cookie_header(""), None);
    }

    #[test]
    fn the_cookie_is_http_only_secure_and_strict() {
        let c = set_cookie("t", 60);
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/api",
            "Max-Age=60",
        ] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn a_cookie_borne_change_needs_an_origin() {
        assert!(csrf_ok(Carrier::Cookie, "GET", None));
        assert!(!csrf_ok(Carrier::Cookie, "POST", None));
        assert!(!csrf_ok(Carrier::Cookie, "DELETE", Some("null")));
        assert!(csrf_ok(
            Carrier::Cookie,
            "PUT",
            Some("http://127.0.0.1:8787")
        ));
        assert!(csrf_ok(Carrier::Header, "POST", None));
    }
}
