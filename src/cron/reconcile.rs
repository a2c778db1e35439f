//! Reconciles deployment status with the machines' real state, every 5 minutes:
//! - `pending`/`deploying` for over [`STUCK_AFTER_MS`] → `failed` (the creation died);
//! - `deploying` quiet for over [`RESCHEDULE_AFTER_MS`] → creation scheduled again (it is
//!   idempotent: an existing machine is adopted, never duplicated);
//! - `deleting` for over [`RESCHEDULE_AFTER_MS`] → teardown retried;
//! - `running`/`stopped` whose machine is gone or `failed` → `failed`, with a message;
//! - machines in the operator's app naming a deployment that no longer exists → destroyed.
//!
//! Each step is bounded per run; one failing step does not stop the others.

use serde_json::json;
use worker::Env;

use crate::config::Config;
use crate::deploy::fly_client::FlyError;
use crate::deploy::state::Status;
use crate::error::AppResult;
use crate::lifecycle::{self, operator, schedule_provision, target};
use crate::platform::env;
use crate::platform::log::Logger;
use crate::platform::upstream::FetchUpstream;
use crate::store::d1::int;
use crate::store::deployments::{self as store};
use crate::time::now_ms;

pub const STUCK_AFTER_MS: i64 = 30 * 60 * 1000;
pub const RESCHEDULE_AFTER_MS: i64 = 2 * 60 * 1000;
/// Rows looked at per step and run.
const BATCH: u32 = 25;

pub async fn run(worker_env: &Env, log: &Logger) -> AppResult<()> {
    let config = env::config(worker_env);
    let mut summary = json!({});
    for (step, result) in [
        ("stuck", stuck(worker_env).await),
        ("reschedule", reschedule(worker_env).await),
        ("deleting", deleting(worker_env, &config).await),
        ("machines", machines(worker_env, &config, log).await),
        ("orphans", orphans(worker_env, &config, log).await),
    ] {
        match result {
            Ok(n) => summary[step] = json!(n),
            Err(e) => {
                summary[step] = json!(null);
                log.error(
                    "reconcile_step_failed",
                    json!({ "step": step, "code": e.code(), "detail": e.log_detail() }),
                );
            }
        }
    }
    log.info("reconcile", summary);
    Ok(())
}

async fn stuck(worker_env: &Env) -> AppResult<u64> {
    let db = env::db(worker_env)?;
    let now = now_ms();
    let result = db
        .prepare(
            "UPDATE deployments SET status = 'failed', updated_at = ?1, \
             error_message = 'Deployment did not finish within 30 minutes; restart or delete it.' \
             WHERE status IN ('pending', 'deploying') AND updated_at <= ?2",
        )
        .bind(&[int(now), int(now - STUCK_AFTER_MS)])?
        .run()
        .await?;
    Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0) as u64)
}

async fn reschedule(worker_env: &Env) -> AppResult<u64> {
    let db = env::db(worker_env)?;
    let rows = store::in_states(
        &db,
        &[Status::Pending, Status::Deploying],
        now_ms() - RESCHEDULE_AFTER_MS,
        BATCH,
    )
    .await?;
    for d in &rows {
        schedule_provision(worker_env, &d.id).await?;
    }
    Ok(rows.len() as u64)
}

async fn deleting(worker_env: &Env, config: &Config) -> AppResult<u64> {
    let db = env::db(worker_env)?;
    let rows = store::in_states(
        &db,
        &[Status::Deleting],
        now_ms() - RESCHEDULE_AFTER_MS,
        BATCH,
    )
    .await?;
    let up = FetchUpstream::default();
    let mut done = 0;
    for d in &rows {
        if lifecycle::teardown(&db, config, &up, d).await.is_ok() {
            done += 1;
        }
    }
    Ok(done)
}

async fn machines(worker_env: &Env, config: &Config, log: &Logger) -> AppResult<u64> {
    let db = env::db(worker_env)?;
    // Least recently updated first, so every deployment gets its turn across runs.
    let rows = store::in_states(&db, &[Status::Running, Status::Stopped], now_ms(), BATCH).await?;
    let up = FetchUpstream::default();
    let mut failed = 0;
    for d in &rows {
        let Some(machine_id) = &d.machine_id else {
            continue;
        };
        let Ok(t) = target(&db, config, &d.owner_id).await else {
            continue;
        };
        let message = match t.fly(&up).get(machine_id).await {
            Err(FlyError::NotFound) => "The machine no longer exists; restart to create it again.",
            Ok(m) if m.state == "destroyed" => {
                "The machine no longer exists; restart to create it again."
            }
            Ok(m) if m.state == "failed" => "The machine failed; restart to create it again.",
            _ => continue,
        };
        let from = [Status::Running, Status::Stopped];
        let changed =
            store::transition(&db, &d.id, &from, Status::Failed, Some(message), now_ms()).await?;
        if changed {
            failed += 1;
            log.warn(
                "machine_lost",
                json!({ "deployment": d.id, "machine": machine_id, "was": d.status }),
            );
            lifecycle::audit(
                &db,
                log,
                &d.owner_id,
                "deployment.failed",
                &d.id,
                json!({ "by": "system", "reason": message }),
            )
            .await;
        }
    }
    Ok(failed)
}

async fn orphans(worker_env: &Env, config: &Config, log: &Logger) -> AppResult<u64> {
    let Ok(t) = operator(config) else {
        return Ok(0);
    };
    let db = env::db(worker_env)?;
    let up = FetchUpstream::default();
    let fly = t.fly(&up);
    let tagged = fly.list_tagged().await.map_err(FlyError::into_app)?;
    let mut destroyed = 0;
    for m in tagged.iter().take(BATCH as usize) {
        let Some(dep) = &m.deployment else { continue };
        if store::exists(&db, dep).await? {
            continue;
        }
        // Re-checked after a pause would be safer against a row being inserted right now,
        // but a machine is only created after its row exists, so absence means orphan.
        fly.destroy(&m.id).await.map_err(FlyError::into_app)?;
        log.info(
            "orphan_destroyed",
            json!({ "deployment": dep, "machine": m.id }),
        );
        destroyed += 1;
    }
    Ok(destroyed)
}
