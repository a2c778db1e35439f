//! HS256 JWTs for the dev-token command and the tests, hand-assembled so tests can also
//! build the broken ones (alg none, other algorithms, wrong keys, odd claims). A crate of
//! its own so `make token` compiles in seconds, without the test harness's dependencies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Signs `header.claims` with HMAC-SHA256 under `key`, whatever `header` says.
pub fn sign(header: &Value, claims: &Value, key: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(format!("{h}.{c}").as_bytes());
    format!(
        "{h}.{c}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// An unsigned token (`alg: none`, empty signature).
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Claims of a valid session for `sub` lasting `ttl` seconds, issued now (`iat`, which the
/// Worker requires). `email` is left unverified: add `"email_verified": true` to link.
pub fn claims(sub: &str, email: Option<&str>, ttl: i64) -> Value {
    let t = now();
    let mut c = json!({"sub": sub, "iat": t, "exp": t + ttl});
    if let Some(e) = email {
        c["email"] = json!(e);
    }
    c
}

/// A valid HS256 session token.
pub fn session(key: &str, sub: &str, email: Option<&str>) -> String {
    sign(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims(sub, email, 3600),
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_compact::alg::{Hs256, Hs256Key};
    use jwt_compact::{AlgorithmExt, UntrustedToken};

    #[test]
    fn session_tokens_verify_with_an_independent_hs256_implementation() {
        let key = "a-key-of-reasonable-length-for-hs256";
        let token = session(key, "usr_1", Some("a@b.co"));
        let untrusted = UntrustedToken::new(&token).unwrap();
        let verified = Hs256
            .validator::<Value>(&Hs256Key::new(key))
            .validate(&untrusted)
            .unwrap();
        assert_eq!(verified.claims().custom["sub"], "usr_1");
        assert!(Hs256
            .validator::<Value>(&Hs256Key::new("another-key"))
            .validate(&untrusted)
            .is_err());
    }

    #[test]
    fn every_session_carries_an_issue_time_and_an_expiry_ttl_later() {
        let c = claims("u", Some("a@b.co"), 600);
        let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
        assert!((now() - iat).abs() <= 1);
        assert_eq!(exp - iat, 600);
        assert!(c.get("email_verified").is_none());
    }

    #[test]
    fn unsigned_tokens_say_alg_none_and_carry_no_signature() {
        let token = unsigned(&claims("u", None, 60));
        assert!(token.ends_with('.'));
        assert_eq!(UntrustedToken::new(&token).unwrap().algorithm(), "none");
    }
}
