//! Access tokens for a deployment's MCP URL: 256 bits from the CSPRNG behind a
//! recognizable prefix (so leaked tokens are easy to spot and our log redactor masks them),
//! stored only as a SHA-256 hex digest and compared in constant time. Shown once.

use sha2::{Digest, Sha256};

use crate::crypto::secret::constant_time_eq;
use crate::error::AppResult;
use crate::ids::random_hex;

pub const PREFIX: &str = "cwk_";

/// A new token (`cwk_` + 64 hex chars) and the digest to store.
pub fn mint() -> AppResult<(String, String)> {
    let token = format!("{PREFIX}{}", random_hex(32)?);
    let digest = digest(&token);
    Ok((token, digest))
}

pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `presented` is the token behind `stored_digest`; malformed input is simply "no".
pub fn matches(presented: &str, stored_digest: &str) -> bool {
    presented.starts_with(PREFIX)
        && presented.len() == PREFIX.len() + 64
        && constant_time_eq(digest(presented).as_bytes(), stored_digest.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_unique_and_only_their_digest_is_kept() {
        let (a, da) = mint().unwrap();
        let (b, _) = mint().unwrap();
        assert!(a.starts_with("cwk_") && a.len() == 68 && a != b);
        assert_eq!(da.len(), 64);
        assert!(!da.contains(&a[4..]));
        assert!(matches(&a, &da));
        assert!(!matches(&b, &da));
    }

    #[test]
    fn malformed_tokens_never_match() {
        let (_, d) = mint().unwrap();
        for bad in [
            "",
            "cwk_",
            "Bearer x",
            &"a".repeat(68),
            &format!("cwk_{}", "0".repeat(65)),
        ] {
            assert!(!matches(bad, &d), "{bad}");
        }
    }

    #[test]
    fn the_log_redactor_masks_minted_tokens() {
        let (t, _) = mint().unwrap();
        let r = crate::log::Redactor::default();
        assert!(!r.redact(&format!("token {t} used")).contains(&t[4..]));
    }
}
