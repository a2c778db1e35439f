//! Reconciles deployment status with the machines' real state, every 5 minutes:
//! - `deploying` for over [`STUCK_AFTER_MS`] → `failed` (the creation died; a `pending`
//!   row cannot fail, it is rescheduled below, which makes it `deploying`);
//! - `deploying` quiet for over [`RESCHEDULE_AFTER_MS`] → creation scheduled again (it is
//!   idempotent: an existing machine is adopted, never duplicated);
//! - `deleting` for over [`RESCHEDULE_AFTER_MS`] → teardown retried;
//! - `running`/`stopped` whose machine is gone or `failed` → `failed`, with a message;
//! - machines in the operator's app naming a deployment that no longer exists → destroyed.
//!   Every machine is looked at in turn: [`SWEEP_BATCH`] per run in machine-id order, from
//!   a cursor kept in KV, with one D1 query per batch, so a large app is swept over a few
//!   runs instead of the first few machines forever.
//!
//! Each step is bounded per run; one failing step does not stop the others. Machines in a
//! person's own Fly account are not swept (their app is theirs to list); their
//! deployments' machines are still torn down through the recorded account.

use serde_json::json;
use worker::Env;

use crate::config::Config;
use crate::deploy::account::operator;
use crate::deploy::fly_client::FlyError;
use crate::deploy::state::Status;
use crate::error::AppResult;
use crate::lifecycle::live::{schedule_provision, Live};
use crate::lifecycle::ports::{Accounts, Change, Rows};
use crate::lifecycle::retire::teardown;
use crate::platform::env;
use crate::platform::log::Logger;
use crate::platform::upstream::FetchUpstream;
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
        ("stuck", stuck(worker_env, &config, log).await),
        ("reschedule", reschedule(worker_env).await),
        ("deleting", deleting(worker_env, &config, log).await),
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

const STUCK_MESSAGE: &str = "Deployment did not finish within 30 minutes; restart or delete it.";

async fn stuck(worker_env: &Env, config: &Config, log: &Logger) -> AppResult<u64> {
    let live = Live::new(worker_env, config, log)?;
    let from = [Status::Deploying];
    let rows = store::in_states(&live.rows.db, &from, now_ms() - STUCK_AFTER_MS, BATCH).await?;
    let mut failed = 0;
    for d in &rows {
        let change = Change::new(&from, Status::Failed)
            .error(STUCK_MESSAGE)
            .audit(
                "deployment.failed",
                json!({ "by": "system", "reason": STUCK_MESSAGE }),
            );
        if live.rows.transition(d, change).await? {
            failed += 1;
        }
    }
    Ok(failed)
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

async fn deleting(worker_env: &Env, config: &Config, log: &Logger) -> AppResult<u64> {
    let live = Live::new(worker_env, config, log)?;
    let rows = store::in_states(
        &live.rows.db,
        &[Status::Deleting],
        now_ms() - RESCHEDULE_AFTER_MS,
        BATCH,
    )
    .await?;
    let mut done = 0;
    for d in &rows {
        if teardown(&live.ports(), log, d).await.is_ok() {
            done += 1;
        }
    }
    Ok(done)
}

async fn machines(worker_env: &Env, config: &Config, log: &Logger) -> AppResult<u64> {
    let live = Live::new(worker_env, config, log)?;
    // Least recently updated first, so every deployment gets its turn across runs.
    let rows = store::in_states(
        &live.rows.db,
        &[Status::Running, Status::Stopped],
        now_ms(),
        BATCH,
    )
    .await?;
    let mut failed = 0;
    for d in &rows {
        let Some(machine_id) = &d.machine_id else {
            continue;
        };
        let Ok(t) = live.accounts.of(d).await else {
            continue;
        };
        let message = match t.fly(&live.platform.0).get(machine_id).await {
            Err(FlyError::NotFound) => "The machine no longer exists; restart to create it again.",
            Ok(m) if m.state == "destroyed" => {
                "The machine no longer exists; restart to create it again."
            }
            Ok(m) if m.state == "failed" => "The machine failed; restart to create it again.",
            _ => continue,
        };
        let change = Change::new(&[Status::Running, Status::Stopped], Status::Failed)
            .error(message)
            .audit(
                "deployment.failed",
                json!({ "by": "system", "reason": message }),
            );
        if live.rows.transition(d, change).await? {
            failed += 1;
            log.warn(
                "machine_lost",
                json!({ "deployment": d.id, "machine": machine_id, "was": d.status }),
            );
        }
    }
    Ok(failed)
}

/// Machines examined per run by the orphan sweep, and destroyed at most.
pub const SWEEP_BATCH: usize = 100;
const DESTROY_BATCH: usize = 25;
/// KV key of the sweep's cursor: the last machine id examined.
const ORPHAN_CURSOR: &str = "reconcile:orphans:cursor";

/// The next `batch` of `ids` (sorted) after `cursor`, and the cursor to store: the last id
/// taken while more remain, else `None` (the next run starts from the beginning).
pub fn sweep_page<'a>(
    ids: &'a [String],
    cursor: Option<&str>,
    batch: usize,
) -> (&'a [String], Option<&'a str>) {
    let start = match cursor {
        Some(c) => ids.partition_point(|id| id.as_str() <= c),
        None => 0,
    };
    let end = (start + batch).min(ids.len());
    let page = &ids[start..end];
    let next = (end < ids.len())
        .then(|| page.last().map(String::as_str))
        .flatten();
    (page, next)
}

async fn orphans(worker_env: &Env, config: &Config, log: &Logger) -> AppResult<u64> {
    let Ok(t) = operator(config) else {
        return Ok(0);
    };
    let db = env::db(worker_env)?;
    let kv = env::cache(worker_env)?;
    let up = FetchUpstream::default();
    let fly = t.fly(&up);
    let mut tagged = fly.list_tagged().await.map_err(FlyError::into_app)?;
    tagged.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<String> = tagged.iter().map(|m| m.id.clone()).collect();
    let cursor = kv.get(ORPHAN_CURSOR).text().await.ok().flatten();
    let (page, next) = sweep_page(&ids, cursor.as_deref(), SWEEP_BATCH);
    let examined: Vec<_> = tagged
        .iter()
        .filter(|m| page.binary_search(&m.id).is_ok())
        .collect();
    let named: Vec<&str> = examined
        .iter()
        .filter_map(|m| m.deployment.as_deref())
        .collect();
    let live = store::existing(&db, &named).await?;
    let mut destroyed = 0;
    // A machine is only created after its row exists, so a missing row means orphan.
    for m in examined {
        let Some(dep) = &m.deployment else { continue };
        if live.contains(dep) || destroyed >= DESTROY_BATCH as u64 {
            continue;
        }
        fly.destroy(&m.id).await.map_err(FlyError::into_app)?;
        log.info(
            "orphan_destroyed",
            json!({ "deployment": dep, "machine": m.id }),
        );
        destroyed += 1;
    }
    match next {
        Some(c) => kv.put(ORPHAN_CURSOR, c)?.execute().await?,
        None => kv.delete(ORPHAN_CURSOR).await?,
    }
    Ok(destroyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_pages_through_every_machine_and_wraps_around() {
        let ids: Vec<String> = (0..250).map(|i| format!("m{i:04}")).collect();
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (page, next) = sweep_page(&ids, cursor.as_deref(), SWEEP_BATCH);
            seen.extend(page.iter().cloned());
            cursor = next.map(str::to_string);
        }
        assert_eq!(seen, ids, "three runs see all 250, each once, in order");
        assert_eq!(cursor, None, "and the next run starts over");
        let (page, _) = sweep_page(&ids, Some("m0100"), 10);
        assert_eq!(page.first().map(String::as_str), Some("m0101"));
        // A cursor whose machine is gone meanwhile still lands in the right place.
        let (page, _) = sweep_page(&ids, Some("m0100x"), 10);
        assert_eq!(page.first().map(String::as_str), Some("m0101"));
        assert!(sweep_page(&[], Some("x"), 10).0.is_empty());
    }
}
