//! `usage_counters`: the gateway's per-deployment counters (requests, errors, tool calls
//! by name, latency buckets), added with upserts. The gateway batches them per isolate
//! (see `proxy::usage`), so D1 sees one write batch every few seconds rather
//! than one per request.

use serde::Deserialize;
use worker::D1Database;

use crate::error::AppResult;
use crate::gateway::usage::{MAX_TOOL_METRICS, OTHER_TOOLS, TOOL_PREFIX};
use crate::store::d1::{int, text};

/// Adds each (deployment, metric, n) in one batch; counts for a deployment deleted
/// meanwhile are dropped. A tool name not yet counted for the deployment is counted under
/// `tool:(other)` once it already has [`MAX_TOOL_METRICS`] tool rows.
pub async fn record(db: &D1Database, counts: &[(String, String, u64)], now: i64) -> AppResult<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let mut stmts = Vec::with_capacity(counts.len());
    for (deployment_id, metric, n) in counts {
        stmts.push(
            db.prepare(
                "INSERT INTO usage_counters (deployment_id, metric, count, updated_at) \
                 SELECT ?1, CASE WHEN substr(?2, 1, length(?5)) <> ?5 \
                   OR EXISTS (SELECT 1 FROM usage_counters WHERE deployment_id = ?1 AND metric = ?2) \
                   OR (SELECT COUNT(*) FROM usage_counters WHERE deployment_id = ?1 AND substr(metric, 1, length(?5)) = ?5) < ?6 \
                   THEN ?2 ELSE ?7 END, ?4, ?3 \
                 WHERE EXISTS (SELECT 1 FROM deployments WHERE id = ?1) \
                 ON CONFLICT (deployment_id, metric) DO UPDATE SET count = count + ?4, updated_at = ?3",
            )
            .bind(&[
                text(deployment_id),
                text(metric),
                int(now),
                int(*n as i64),
                text(TOOL_PREFIX),
                int(i64::from(MAX_TOOL_METRICS)),
                text(OTHER_TOOLS),
            ])?,
        );
    }
    db.batch(stmts).await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct Counter {
    pub metric: String,
    pub count: i64,
}

pub async fn read(db: &D1Database, deployment_id: &str) -> AppResult<Vec<Counter>> {
    Ok(db
        .prepare("SELECT metric, count FROM usage_counters WHERE deployment_id = ?1")
        .bind(&[text(deployment_id)])?
        .all()
        .await?
        .results::<Counter>()?)
}
