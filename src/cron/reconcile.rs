//! Reconciles deployment status with reality.
//!
//! What it can do before the Fly client exists: a deployment left in `pending` or
//! `deploying` for longer than [`STUCK_AFTER_MS`] (its creator's Worker invocation died
//! mid-flight) is marked `failed` with a message saying so, so no row waits forever. The
//! deployments issue adds the comparison with each machine's real state.

use serde_json::json;
use worker::Env;

use crate::error::AppResult;
use crate::platform::env;
use crate::platform::log::Logger;
use crate::store::d1::int;
use crate::time::now_ms;

pub const STUCK_AFTER_MS: i64 = 30 * 60 * 1000;

pub async fn run(env: &Env, log: &Logger) -> AppResult<()> {
    let db = env::db(env)?;
    let now = now_ms();
    let result = db
        .prepare(
            "UPDATE deployments SET status = 'failed', updated_at = ?1, \
             error_message = 'Deployment did not finish within 30 minutes; delete it and try again.' \
             WHERE status IN ('pending', 'deploying') AND updated_at <= ?2",
        )
        .bind(&[int(now), int(now - STUCK_AFTER_MS)])?
        .run()
        .await?;
    let failed = result.meta()?.and_then(|m| m.changes).unwrap_or(0);
    log.info("reconcile", json!({ "marked_failed": failed }));
    Ok(())
}
