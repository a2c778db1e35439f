//! `POST /api/analyze` (signed in): source → launch plan, cached in KV + D1. A repeat
//! analysis is answered from the cache without any upstream call; `refresh` bypasses it.

use serde_json::json;
use worker::{Request, Response};

use crate::analysis::collect;
use crate::analysis::merge::{merge, Plan};
use crate::analysis::request::{parse, Source};
use crate::error::{AppError, AppResult};
use crate::platform::upstream::FetchUpstream;
use crate::platform::{env, web};
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::analysis_cache;
use crate::time::{now_ms, rfc3339};

fn plan_json(plan: &Plan, analyzed_at: i64) -> serde_json::Value {
    let mut v = json!(plan);
    v["resources"] = json!([]);
    v["prompts"] = json!([]);
    v["analyzed_at"] = json!(rfc3339(analyzed_at));
    v
}

pub async fn analyze(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    signed_in(&req, cx).await?;
    let request = parse(&web::read_json(&mut req).await?)?;
    let key = request.source.cache_key();
    let (kv, db) = (env::cache(&cx.env)?, env::db(&cx.env)?);
    let now = now_ms();
    if !request.refresh {
        if let Some(mut hit) = analysis_cache::get(&kv, &db, &key, now).await? {
            hit["cached"] = json!(true);
            return web::json(200, &hit);
        }
    }
    let up = FetchUpstream::default();
    let bases = &cx.config.upstreams;
    let collected = match &request.source {
        Source::Repo(r) => collect::github(&up, &bases.github_api, &bases.github_raw, r).await?,
        Source::Package(p) => collect::package(&up, &bases.npm_registry, &bases.pypi, p).await?,
    };
    let plan = merge(collected.inputs).map_err(|why| AppError::field("source", why))?;
    let mut result = plan_json(&plan, now);
    if let Err(e) = analysis_cache::put(&kv, &db, &key, &result, now).await {
        // The analysis is still good; a lost cache write costs a later re-analysis only.
        cx.log.error(
            "analysis_cache_write_failed",
            json!({ "detail": e.log_detail() }),
        );
    }
    result["cached"] = json!(false);
    web::json(200, &result)
}
