//! The vault: AES-256-GCM with a fresh 96-bit nonce per sealing (from the platform CSPRNG)
//! and associated data that binds each ciphertext to what it belongs to and to the key id,
//! so a ciphertext copied to another row, user or key id fails to open. Records name the
//! key that sealed them; any key of the ring opens its own records, new ones use the
//! current key. Tampering is an error, never garbage.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::crypto::keyring::KeyRing;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// base64 of the 12-byte nonce
    pub nonce: String,
    /// base64 of ciphertext + tag
    pub ciphertext: String,
}

/// Associated data: what the ciphertext is (`kind`), whose (`owner`), which (`name`), and
/// under which key id it was sealed.
pub fn aad(kind: &str, owner: &str, name: &str, key_id: &str) -> String {
    format!("catwalk:v1:{kind}:{owner}:{name}:{key_id}")
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

/// Seals under the ring's current key; `aad_for` receives that key's id.
pub fn seal(
    ring: &KeyRing,
    aad_for: impl Fn(&str) -> String,
    plaintext: &[u8],
) -> AppResult<Sealed> {
    let (key_id, key) = ring.current();
    let mut nonce = [0u8; 12];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| AppError::internal(format!("vault: no randomness: {e}")))?;
    let aad = aad_for(key_id);
    let ct = cipher(key)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| AppError::internal("vault: seal failed"))?;
    Ok(Sealed {
        key_id: key_id.to_string(),
        nonce: STANDARD.encode(nonce),
        ciphertext: STANDARD.encode(ct),
    })
}

pub fn open(
    ring: &KeyRing,
    sealed: &Sealed,
    aad_for: impl Fn(&str) -> String,
) -> AppResult<Vec<u8>> {
    let fail = |why: &str| {
        AppError::internal(format!(
            "vault: cannot open a record sealed under key {}: {why}",
            sealed.key_id
        ))
    };
    let key = ring
        .get(&sealed.key_id)
        .ok_or_else(|| fail("unknown key id"))?;
    let nonce = STANDARD
        .decode(&sealed.nonce)
        .map_err(|_| fail("bad nonce encoding"))?;
    if nonce.len() != 12 {
        return Err(fail("bad nonce length"));
    }
    let ct = STANDARD
        .decode(&sealed.ciphertext)
        .map_err(|_| fail("bad ciphertext encoding"))?;
    let aad = aad_for(&sealed.key_id);
    cipher(key)
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| fail("authentication failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(spec: &str) -> KeyRing {
        KeyRing::parse(spec).unwrap()
    }

    const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    fn for_row<'a>(owner: &'a str) -> impl Fn(&str) -> String + 'a {
        move |kid| aad("setting", owner, "llm_api_key", kid)
    }

    #[test]
    fn sealed_values_open_only_for_their_own_row() {
        let r = ring(K1);
        let s = seal(&r, for_row("usr_a"), b"sk-secret").unwrap();
        assert!(!s.ciphertext.contains("sk-secret"));
        assert_eq!(open(&r, &s, for_row("usr_a")).unwrap(), b"sk-secret");
        assert_eq!(
            open(&r, &s, for_row("usr_b")).unwrap_err().status(),
            500,
            "a swapped row fails"
        );
    }

    #[test]
    fn nonces_are_fresh_and_tampering_is_detected() {
        let r = ring(K1);
        let a = seal(&r, for_row("u"), b"x").unwrap();
        let b = seal(&r, for_row("u"), b"x").unwrap();
        assert_ne!(a.nonce, b.nonce);
        let mut bytes = STANDARD.decode(&a.ciphertext).unwrap();
        bytes[0] ^= 1;
        let tampered = Sealed {
            ciphertext: STANDARD.encode(bytes),
            ..a.clone()
        };
        assert!(open(&r, &tampered, for_row("u")).is_err());
        let relabeled = Sealed {
            key_id: "k9".into(),
            ..a
        };
        assert!(open(&r, &relabeled, for_row("u")).is_err());
    }

    #[test]
    fn records_under_an_old_key_still_open_after_rotation() {
        let old = seal(&ring(K1), for_row("u"), b"v").unwrap();
        let rotated = ring(&format!("{K2},{K1}"));
        assert_eq!(open(&rotated, &old, for_row("u")).unwrap(), b"v");
        assert_eq!(seal(&rotated, for_row("u"), b"v").unwrap().key_id, "k2");
    }
}
