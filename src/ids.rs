//! Random identifiers: a readable prefix plus 120 bits from the platform CSPRNG
//! (`getrandom`; `crypto.getRandomValues` inside the Worker).

use crate::error::AppError;

/// Lowercase hex of `n` random bytes.
pub fn random_hex(n: usize) -> Result<String, AppError> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| AppError::internal(format!("getrandom: {e}")))?;
    Ok(hex::encode(buf))
}

/// `usr_3f9c…` style ids: the prefix says what the id names, 15 random bytes make it
/// unguessable so a leaked id reveals nothing and cannot be enumerated.
pub fn new_id(prefix: &str) -> Result<String, AppError> {
    Ok(format!("{prefix}_{}", random_hex(15)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_do_not_repeat() {
        let a = new_id("usr").unwrap();
        let b = new_id("usr").unwrap();
        assert!(a.starts_with("usr_") && a.len() == 4 + 30);
        assert_ne!(a, b);
    }
}
