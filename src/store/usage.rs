//! `usage_counters`: the gateway's per-deployment counters (requests, errors, tool calls
//! by name, latency buckets), added with upserts in one batch per request.

use serde::Deserialize;
use worker::D1Database;

use crate::error::AppResult;
use crate::store::d1::{int, text};

/// Adds 1 to each metric of the deployment.
pub async fn record(
    db: &D1Database,
    deployment_id: &str,
    metrics: &[String],
    now: i64,
) -> AppResult<()> {
    let mut stmts = Vec::with_capacity(metrics.len());
    for m in metrics {
        stmts.push(
            db.prepare(
                "INSERT INTO usage_counters (deployment_id, metric, count, updated_at) VALUES (?1, ?2, 1, ?3) \
                 ON CONFLICT (deployment_id, metric) DO UPDATE SET count = count + 1, updated_at = ?3",
            )
            .bind(&[text(deployment_id), text(m), int(now)])?,
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
