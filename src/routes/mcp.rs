//! `/api/mcp/{deployment_id}`: the MCP Streamable HTTP gateway — the stable URL a person
//! pastes into Claude (the work is `proxy`'s) — and the owner's usage report.

use serde_json::json;
use worker::{Request, Response};

use crate::error::{AppError, AppResult};
use crate::gateway::usage;
use crate::platform::{env, web};
use crate::proxy;
use crate::routes::Ctx;
use crate::store::deployments as store;
use crate::time::now_ms;

pub async fn handle(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let id = id.ok_or_else(|| AppError::not_found("No such MCP endpoint."))?;
    proxy::handle(req, cx, id).await
}

/// `GET /api/deployments/{id}/usage` (owner): counters, tool calls, latency percentiles.
pub async fn usage_report(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let user = crate::routes::auth::signed_in(&req, cx).await?;
    let id = id.ok_or_else(|| AppError::not_found("No such deployment."))?;
    let db = env::db(&cx.env)?;
    let d = store::get_owned(&db, &user.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such deployment."))?;
    // This isolate's unwritten counts first (others' arrive within a few seconds).
    crate::store::usage::record(&db, &proxy::usage::take_pending(), now_ms()).await?;
    let rows = crate::store::usage::read(&db, &d.id).await?;
    let mut requests = 0;
    let mut errors = 0;
    let mut tools = serde_json::Map::new();
    let mut buckets = Vec::new();
    for r in rows {
        let n = r.count.max(0) as u64;
        match r.metric.split_once(':') {
            None if r.metric == "requests" => requests = n,
            None if r.metric == "errors" => errors = n,
            Some(("tool", name)) => {
                tools.insert(name.to_string(), json!(n));
            }
            Some(("latency", b)) => {
                if let Ok(b) = b.parse::<usize>() {
                    buckets.push((b, n));
                }
            }
            _ => {}
        }
    }
    let p = |q: f64| usage::percentile(&buckets, q);
    web::json(
        200,
        &json!({
            "deployment_id": d.id,
            "requests": requests,
            "errors": errors,
            "tool_calls": tools,
            "latency_ms": { "p50": p(50.0), "p90": p(90.0), "p99": p(99.0) },
            "note": "Latency is time to the response head, as the upper bound of a histogram bucket."
        }),
    )
}
