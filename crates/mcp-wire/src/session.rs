//! `Mcp-Session-Id`: visible ASCII (0x21–0x7E) only, and unguessable when we mint it.

/// Longer ids are refused outright; ours are 32 characters.
pub const MAX_LEN: usize = 128;

pub fn is_valid(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// A session id from 16 random bytes (the caller supplies the randomness).
pub fn from_random(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_ascii_of_bounded_length_is_a_session_id() {
        assert!(is_valid(&from_random(&[0xab; 16])));
        for bad in ["", "a b", "a\nb", "é", &"x".repeat(MAX_LEN + 1)] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }
}
