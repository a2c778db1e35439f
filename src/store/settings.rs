//! Per-user settings in `user_settings`; secret ones are sealed by the vault with
//! associated data `catwalk:v1:setting:{user_id}:{key}:{key_id}`.

use worker::D1Database;

use crate::crypto::keyring::KeyRing;
use crate::crypto::vault::{aad, open, Sealed};
use crate::error::AppResult;
use crate::store::d1::text;

/// The setting holding a user's own LLM API key.
pub const LLM_API_KEY: &str = "llm_api_key";

#[derive(serde::Deserialize)]
struct Row {
    key_id: String,
    nonce: String,
    ciphertext: String,
}

/// A sealed setting's plaintext, if the user has one.
pub async fn secret(
    db: &D1Database,
    ring: &KeyRing,
    user_id: &str,
    key: &str,
) -> AppResult<Option<String>> {
    let row = db
        .prepare("SELECT key_id, nonce, ciphertext FROM user_settings WHERE user_id = ?1 AND key = ?2 AND ciphertext IS NOT NULL")
        .bind(&[text(user_id), text(key)])?
        .first::<Row>(None)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let sealed = Sealed {
        key_id: row.key_id,
        nonce: row.nonce,
        ciphertext: row.ciphertext,
    };
    let plain = open(ring, &sealed, |kid| aad("setting", user_id, key, kid))?;
    Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
}
