//! `POST /api/auth/sync-user`: the frontend's *server* tells us about a person it signed
//! in (GitHub via its auth library). It proves itself with `X-Auth-Secret` =
//! `AUTH_SYNC_SECRET`; the body is parsed here into a [`SyncProfile`].

use serde_json::Value;
use url::Url;

use crate::crypto::secret::{constant_time_eq, Secret};
use crate::error::AppError;
use crate::http::input::Fields;

pub const MAX_EMAIL_LEN: usize = 320;
pub const MAX_NAME_LEN: usize = 200;
pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncProfile {
    /// Lowercased; the upsert key.
    pub email: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub github_id: Option<String>,
}

/// Checks the shared secret in constant time. A missing header and a wrong one are the
/// same 401 so a prober learns nothing.
pub fn authorize(header: Option<&str>, expected: &Secret) -> Result<(), AppError> {
    let given = header.unwrap_or_default().trim();
    if constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(AppError::unauthorized(
            "bad_sync_secret",
            "X-Auth-Secret is missing or wrong.",
        ))
    }
}

/// A deliberately plain address check: one `@`, a dotted domain, no spaces or controls.
/// Deliverability is the frontend's business; ours is refusing garbage and injection.
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.chars()
            .all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control()))
}

/// A JSON number that is a positive integer, also when written with a fraction (`42.0`
/// is the integer 42 in JSON, and some serializers write it so).
fn positive_integer(n: &serde_json::Number) -> Option<u64> {
    // 2^64: the first float past u64::MAX (the documented maximum).
    const PAST_MAX: f64 = 18_446_744_073_709_551_616.0;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f < PAST_MAX)
                .map(|f| f as u64)
        })
        .filter(|n| *n > 0)
}

pub fn parse_profile(body: &Value) -> Result<SyncProfile, AppError> {
    let mut f = Fields::of(body)?;
    let email = f
        .required_str("email", MAX_EMAIL_LEN)
        .map(|e| e.to_lowercase());
    if let Some(e) = &email {
        if !valid_email(e) {
            f.fail("email", "must be an email address");
        }
    }
    let name = f
        .optional_str("name", MAX_NAME_LEN)
        .filter(|n| !n.is_empty());
    let avatar_url = f
        .optional_str("avatar_url", MAX_URL_LEN)
        .filter(|u| !u.is_empty());
    if let Some(u) = &avatar_url {
        let ok = Url::parse(u)
            .map(|p| {
                p.scheme() == "https"
                    && p.host_str().is_some()
                    && p.username().is_empty()
                    && p.password().is_none()
            })
            .unwrap_or(false);
        if !ok {
            f.fail("avatar_url", "must be an https URL without credentials");
        }
    }
    // GitHub ids are positive integers; auth libraries hand them over as numbers or strings.
    let github_id = match f.get("github_id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if positive_integer(n).is_some() => {
            positive_integer(n).map(|n| n.to_string())
        }
        Some(Value::String(s))
            if s.len() <= 20
                && s.bytes().all(|b| b.is_ascii_digit())
                && s.bytes().any(|b| b != b'0') =>
        {
            Some(s.clone())
        }
        Some(_) => {
            f.fail("github_id", "must be a positive integer");
            None
        }
    };
    f.finish(|| SyncProfile {
        email: email.unwrap_or_default(),
        name,
        avatar_url,
        github_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_typical_profile_parses_with_a_lowercased_email() {
        let p = parse_profile(&json!({"email": "Ada@Example.COM", "name": "Ada", "avatar_url": "https://avatars.githubusercontent.com/u/1", "github_id": 583231})).unwrap();
        assert_eq!(p.email, "ada@example.com");
        assert_eq!(p.github_id.as_deref(), Some("583231"));
        // 2691.0 is an integer in JSON (schemathesis sent it and got a 422).
        let p = parse_profile(&json!({"email": "a@example.com", "github_id": 2691.0})).unwrap();
        assert_eq!(p.github_id.as_deref(), Some("2691"));
    }

    #[test]
    fn hostile_and_malformed_fields_are_named() {
        let cases = [
            (json!({}), "email"),
            (json!({"email": 5}), "email"),
            (json!({"email": "no-at-sign"}), "email"),
            (json!({"email": "a b@example.com"}), "email"),
            (json!({"email": "a@example.com\r\nBcc: x@y.z"}), "email"),
            (
                json!({"email": "a@example.com", "avatar_url": "javascript:alert(1)"}),
                "avatar_url",
            ),
            (
                json!({"email": "a@example.com", "avatar_url": "http://169.254.169.254/latest"}),
                "avatar_url",
            ),
            (
                json!({"email": "a@example.com", "github_id": "1; DROP TABLE users"}),
                "github_id",
            ),
            (
                json!({"email": "a@example.com", "github_id": -4}),
                "github_id",
            ),
            // Not positive (schemathesis found 0 accepted).
            (
                json!({"email": "a@example.com", "github_id": 0}),
                "github_id",
            ),
            (
                json!({"email": "a@example.com", "github_id": "000"}),
                "github_id",
            ),
            (
                json!({"email": "a@example.com", "name": "x".repeat(201)}),
                "name",
            ),
        ];
        for (body, field) in cases {
            match parse_profile(&body) {
                Err(AppError::Validation { fields }) => {
                    assert_eq!(fields[0].field, field, "{body}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_sync_secret_must_match_exactly() {
        let s = Secret::new("sync-secret-sync-secret-sync-secret");
        assert!(authorize(Some("sync-secret-sync-secret-sync-secret"), &s).is_ok());
        assert_eq!(
            authorize(Some("sync-secret"), &s).unwrap_err().status(),
            401
        );
        assert_eq!(authorize(None, &s).unwrap_err().status(), 401);
    }
}
