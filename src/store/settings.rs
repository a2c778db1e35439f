//! Per-user settings in `user_settings`; secret ones are sealed by the vault with
//! associated data `catwalk:v1:setting:{user_id}:{key}:{key_id}`.

use worker::D1Database;

use crate::crypto::keyring::KeyRing;
use crate::crypto::vault::{aad, open, Sealed};
use crate::error::AppResult;
use crate::store::d1::{int, text};

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

/// The setting holding a user's own Fly API token (used instead of `FLY_API_TOKEN`).
pub const FLY_API_TOKEN: &str = "fly_api_token";
/// The Fly app a user's own token creates machines in (plain; goes with the token).
pub const FLY_APP: &str = "fly_app";

/// Seals `value` under the ring's current key and stores it (replacing any old value).
pub async fn put_secret(
    db: &D1Database,
    ring: &KeyRing,
    user_id: &str,
    key: &str,
    value: &str,
    now: i64,
) -> AppResult<()> {
    let sealed = crate::crypto::vault::seal(
        ring,
        |kid| aad("setting", user_id, key, kid),
        value.as_bytes(),
    )?;
    db.prepare(
        "INSERT INTO user_settings (user_id, key, value, key_id, nonce, ciphertext, updated_at) VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6) \
         ON CONFLICT (user_id, key) DO UPDATE SET value = NULL, key_id = ?3, nonce = ?4, ciphertext = ?5, updated_at = ?6",
    )
    .bind(&[text(user_id), text(key), text(&sealed.key_id), text(&sealed.nonce), text(&sealed.ciphertext), int(now)])?
    .run()
    .await?;
    Ok(())
}

pub async fn put_value(
    db: &D1Database,
    user_id: &str,
    key: &str,
    value: &str,
    now: i64,
) -> AppResult<()> {
    db.prepare(
        "INSERT INTO user_settings (user_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user_id, key) DO UPDATE SET value = ?3, key_id = NULL, nonce = NULL, ciphertext = NULL, updated_at = ?4",
    )
    .bind(&[text(user_id), text(key), text(value), int(now)])?
    .run()
    .await?;
    Ok(())
}

pub async fn remove(db: &D1Database, user_id: &str, key: &str) -> AppResult<()> {
    db.prepare("DELETE FROM user_settings WHERE user_id = ?1 AND key = ?2")
        .bind(&[text(user_id), text(key)])?
        .run()
        .await?;
    Ok(())
}

/// A plain (non-secret) setting's value.
pub async fn value(db: &D1Database, user_id: &str, key: &str) -> AppResult<Option<String>> {
    #[derive(serde::Deserialize)]
    struct V {
        value: Option<String>,
    }
    Ok(db
        .prepare("SELECT value FROM user_settings WHERE user_id = ?1 AND key = ?2")
        .bind(&[text(user_id), text(key)])?
        .first::<V>(None)
        .await?
        .and_then(|v| v.value))
}

/// Which settings the user has: (key, is_secret, plain value, updated_at). Never secrets.
pub async fn list(
    db: &D1Database,
    user_id: &str,
) -> AppResult<Vec<(String, bool, Option<String>, i64)>> {
    #[derive(serde::Deserialize)]
    struct L {
        key: String,
        value: Option<String>,
        sealed: i64,
        updated_at: i64,
    }
    let rows = db
        .prepare("SELECT key, value, (ciphertext IS NOT NULL) AS sealed, updated_at FROM user_settings WHERE user_id = ?1 ORDER BY key")
        .bind(&[text(user_id)])?
        .all()
        .await?
        .results::<L>()?;
    Ok(rows
        .into_iter()
        .map(|r| (r.key, r.sealed != 0, r.value, r.updated_at))
        .collect())
}
