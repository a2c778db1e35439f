//! The encryption key ring parsed from `ENCRYPTION_KEYS`: `id:base64key[,id:base64key…]`,
//! the current key first. Every key is 32 bytes (AES-256); ids are short and printable
//! because they are stored beside each ciphertext so old records stay readable after a
//! rotation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::{AppError, AppResult};

pub const KEY_LEN: usize = 32;
const MAX_ID_LEN: usize = 16;

/// The configured ring, or the 503 that names `ENCRYPTION_KEYS` when there is none.
pub fn required(ring: Option<&KeyRing>) -> AppResult<&KeyRing> {
    ring.ok_or_else(|| AppError::NotConfigured {
        missing: vec!["ENCRYPTION_KEYS".into()],
    })
}

#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, [u8; KEY_LEN])>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeyRing").field("ids", &ids).finish()
    }
}

impl KeyRing {
    /// Parses the setting; the error says what is wrong without echoing key material.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut keys: Vec<(String, [u8; KEY_LEN])> = Vec::new();
        for (i, entry) in raw.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (id, b64) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry {} is not of the form id:base64key", i + 1))?;
            if id.is_empty()
                || id.len() > MAX_ID_LEN
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "entry {}: key id must be 1-{MAX_ID_LEN} characters of [A-Za-z0-9_-]",
                    i + 1
                ));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(format!("entry {}: key id {id} appears twice", i + 1));
            }
            let bytes = STANDARD
                .decode(b64.trim())
                .map_err(|_| format!("entry {} (id {id}): key is not valid base64", i + 1))?;
            let key: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
                format!(
                    "entry {} (id {id}): key must be {KEY_LEN} bytes, got {}",
                    i + 1,
                    b.len()
                )
            })?;
            keys.push((id.to_string(), key));
        }
        if keys.is_empty() {
            return Err("no keys".to_string());
        }
        Ok(Self { keys })
    }

    /// The key new ciphertexts are written under.
    pub fn current(&self) -> (&str, &[u8; KEY_LEN]) {
        let (id, key) = &self.keys[0];
        (id, key)
    }

    /// Any key of the ring by id (old records name the key they were written under).
    pub fn get(&self, id: &str) -> Option<&[u8; KEY_LEN]> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(byte: u8, len: usize) -> String {
        STANDARD.encode(vec![byte; len])
    }

    #[test]
    fn the_first_key_is_current_and_old_keys_stay_readable() {
        let ring = KeyRing::parse(&format!("k2:{},k1:{}", b64(2, 32), b64(1, 32))).unwrap();
        assert_eq!(ring.current().0, "k2");
        assert_eq!(ring.get("k1"), Some(&[1u8; 32]));
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
    }

    #[test]
    fn malformed_settings_are_refused_without_echoing_key_material() {
        let short = b64(7, 16);
        for raw in [
            String::new(),
            "k1".to_string(),
            format!("k1:{short}"),
            "k1:not*base64".to_string(),
            format!("bad id:{}", b64(1, 32)),
            format!("k1:{},k1:{}", b64(1, 32), b64(2, 32)),
        ] {
            let err = KeyRing::parse(&raw).unwrap_err();
            assert!(!err.contains(&short), "{err}");
        }
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = KeyRing::parse(&format!("k1:{}", b64(9, 32))).unwrap();
        assert!(!format!("{ring:?}").contains(&b64(9, 32)));
    }
}
