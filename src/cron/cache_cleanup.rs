//! Deletes expired `analysis_cache` rows in bounded batches, so one run never holds D1
//! for long and a backlog drains over a few runs. KV entries expire by their own TTL.

use serde_json::json;
use worker::Env;

use crate::error::AppResult;
use crate::platform::env;
use crate::platform::log::Logger;
use crate::store::d1::int;
use crate::time::now_ms;

pub const BATCH: i64 = 500;
pub const MAX_BATCHES: usize = 20;

pub async fn run(env: &Env, log: &Logger) -> AppResult<()> {
    let db = env::db(env)?;
    let now = now_ms();
    let mut deleted = 0usize;
    for _ in 0..MAX_BATCHES {
        let result = db
            .prepare(
                "DELETE FROM analysis_cache WHERE rowid IN \
                 (SELECT rowid FROM analysis_cache WHERE expires_at <= ?1 LIMIT ?2)",
            )
            .bind(&[int(now), int(BATCH)])?
            .run()
            .await?;
        let n = result.meta()?.and_then(|m| m.changes).unwrap_or(0);
        deleted += n;
        if (n as i64) < BATCH {
            break;
        }
    }
    log.info("cache_cleanup", json!({ "deleted": deleted }));
    Ok(())
}
