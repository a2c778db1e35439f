//! The analysis cache: D1 `analysis_cache` is the record (expires after
//! [`DURABLE_TTL_MS`]; the cleanup cron deletes expired rows). Shared plans also have a
//! hot copy in KV (TTL [`HOT_TTL_SECS`]); a KV miss that D1 can answer refills KV. A
//! person's own plans live in D1 only: they are read only for people whose settings hold
//! their own LLM key (most hits read KV alone), so a KV copy would save little.

use serde_json::Value;
use worker::{D1Database, KvStore};

use crate::error::AppResult;
use crate::store::d1::{int, text};

pub const HOT_TTL_SECS: u64 = 3600;
pub const DURABLE_TTL_MS: i64 = 24 * 3600 * 1000;

fn parsed(raw: Option<String>) -> Option<(Value, String)> {
    let raw = raw?;
    serde_json::from_str::<Value>(&raw).ok().map(|v| (v, raw))
}

/// A shared plan: KV first, then D1 (refilling KV).
pub async fn get(kv: &KvStore, db: &D1Database, key: &str, now: i64) -> AppResult<Option<Value>> {
    if let Some(hit) = kv.get(key).json::<Value>().await? {
        return Ok(Some(hit));
    }
    let row = db
        .prepare("SELECT result FROM analysis_cache WHERE source_key = ?1 AND expires_at > ?2")
        .bind(&[text(key), int(now)])?
        .first::<String>(Some("result"))
        .await?;
    let Some((value, raw)) = parsed(row) else {
        return Ok(None);
    };
    kv.put(key, raw)?
        .expiration_ttl(HOT_TTL_SECS)
        .execute()
        .await?;
    Ok(Some(value))
}

/// A person's own plan by their user id (D1 only).
pub async fn get_durable(db: &D1Database, key: &str, now: i64) -> AppResult<Option<Value>> {
    let row = db
        .prepare("SELECT result FROM analysis_cache WHERE source_key = ?1 AND expires_at > ?2")
        .bind(&[text(key), int(now)])?
        .first::<String>(Some("result"))
        .await?;
    Ok(parsed(row).map(|(v, _)| v))
}

/// Stores a shared plan: D1, then the hot KV copy.
pub async fn put(
    kv: &KvStore,
    db: &D1Database,
    key: &str,
    value: &Value,
    now: i64,
) -> AppResult<()> {
    let raw = put_durable(db, key, value, now).await?;
    kv.put(key, raw)?
        .expiration_ttl(HOT_TTL_SECS)
        .execute()
        .await?;
    Ok(())
}

/// Stores a plan in D1 only (a person's own plan); returns the JSON text stored.
pub async fn put_durable(db: &D1Database, key: &str, value: &Value, now: i64) -> AppResult<String> {
    let raw = value.to_string();
    db.prepare(
        "INSERT INTO analysis_cache (source_key, result, created_at, expires_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (source_key) DO UPDATE SET result = excluded.result, created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(&[text(key), text(&raw), int(now), int(now + DURABLE_TTL_MS)])?
    .run()
    .await?;
    Ok(raw)
}
