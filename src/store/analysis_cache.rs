//! The analysis cache: KV for the hot path (TTL [`HOT_TTL_SECS`]), D1 `analysis_cache` for
//! durability (expires after [`DURABLE_TTL_MS`]; the cleanup cron deletes expired rows).
//! A KV miss that D1 can answer refills KV.

use serde_json::Value;
use worker::{D1Database, KvStore};

use crate::error::AppResult;
use crate::store::d1::{int, text};

pub const HOT_TTL_SECS: u64 = 3600;
pub const DURABLE_TTL_MS: i64 = 24 * 3600 * 1000;

pub async fn get(kv: &KvStore, db: &D1Database, key: &str, now: i64) -> AppResult<Option<Value>> {
    if let Some(hit) = kv.get(key).json::<Value>().await? {
        return Ok(Some(hit));
    }
    let row = db
        .prepare("SELECT result FROM analysis_cache WHERE source_key = ?1 AND expires_at > ?2")
        .bind(&[text(key), int(now)])?
        .first::<String>(Some("result"))
        .await?;
    let Some(raw) = row else { return Ok(None) };
    let Ok(value) = serde_json::from_str::<Value>(&raw) else {
        return Ok(None);
    };
    kv.put(key, raw)?
        .expiration_ttl(HOT_TTL_SECS)
        .execute()
        .await?;
    Ok(Some(value))
}

pub async fn put(
    kv: &KvStore,
    db: &D1Database,
    key: &str,
    value: &Value,
    now: i64,
) -> AppResult<()> {
    let raw = value.to_string();
    db.prepare(
        "INSERT INTO analysis_cache (source_key, result, created_at, expires_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (source_key) DO UPDATE SET result = excluded.result, created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(&[text(key), text(&raw), int(now), int(now + DURABLE_TTL_MS)])?
    .run()
    .await?;
    kv.put(key, raw)?
        .expiration_ttl(HOT_TTL_SECS)
        .execute()
        .await?;
    Ok(())
}
