//! Codes and tokens: 256 bits from the CSPRNG behind a prefix that says what they are
//! (and that the log redactor masks), stored only as SHA-256 digests; PKCE's S256 check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::crypto::secret::constant_time_eq;
use crate::error::{AppError, AppResult};

pub const ACCESS_PREFIX: &str = "cwa_";
pub const REFRESH_PREFIX: &str = "cwr_";
pub const CODE_PREFIX: &str = "cwg_";

/// Access tokens are short-lived: a leaked one is useful for an hour at most.
pub const ACCESS_TTL_MS: i64 = 3_600_000;
/// Refresh tokens rotate on every use; an unused one lapses after 30 days.
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3_600_000;
/// A code is exchanged within seconds by a working client.
pub const CODE_TTL_MS: i64 = 60_000;

/// 32 random bytes as base64url: 43 characters.
const BODY_LEN: usize = 43;

pub fn mint(prefix: &str) -> AppResult<String> {
    let mut buf = [0u8; 32];
    getrandom::getrandom(&mut buf).map_err(|e| AppError::internal(format!("getrandom: {e}")))?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(buf)))
}

pub fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Whether `value` could be one of ours of this kind (checked before any lookup).
pub fn well_formed(prefix: &str, value: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|body| {
        body.len() == BODY_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A code challenge as RFC 7636 §4.2 makes it for S256: 43 base64url characters.
pub fn challenge_ok(challenge: &str) -> bool {
    challenge.len() == BODY_LEN
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1 verifier syntax, then `BASE64URL(SHA256(verifier)) == challenge`.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let syntax = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    syntax && {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        constant_time_eq(computed.as_bytes(), challenge.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_values_are_prefixed_256_bit_and_recognized() {
        let a = mint(ACCESS_PREFIX).unwrap();
        let b = mint(ACCESS_PREFIX).unwrap();
        assert_ne!(a, b);
        assert!(well_formed(ACCESS_PREFIX, &a));
        assert!(!well_formed(REFRESH_PREFIX, &a));
        assert!(!well_formed(ACCESS_PREFIX, &format!("{a}x")));
        assert!(!well_formed(ACCESS_PREFIX, "cwa_"));
        assert_eq!(digest(&a).len(), 64);
    }

    #[test]
    fn the_redactor_masks_every_kind() {
        let r = crate::log::Redactor::default();
        for p in [ACCESS_PREFIX, REFRESH_PREFIX, CODE_PREFIX] {
            let v = mint(p).unwrap();
            assert!(!r.redact(&format!("got {v} here")).contains(&v[4..]), "{p}");
        }
    }

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(challenge_ok(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(&format!("{verifier}x"), challenge));
        // `plain` would send the verifier itself as the challenge.
        assert!(!verifier_matches(verifier, verifier));
        assert!(!verifier_matches("short", challenge));
    }
}
