//! `POST /api/analyze` (signed in): source → launch plan, cached in KV + D1. A repeat
//! analysis is answered from the cache without any upstream call; `refresh` bypasses it.

use serde_json::json;
use worker::{Request, Response};

use crate::analysis::exists::{self, Memo};
use crate::analysis::merge::{merge, Plan};
use crate::analysis::request::{parse, Source};
use crate::analysis::{collect, llm};
use crate::error::{AppError, AppResult};
use crate::platform::upstream::{FetchUpstream, LLM_TIMEOUT};
use crate::platform::{env, web};
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::analysis_cache;
use crate::store::memo::KvMemo;
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
    let mut collected = match &request.source {
        Source::Repo(r) => collect::github(&up, &bases.github_api, &bases.github_raw, r).await?,
        Source::Package(p) => collect::package(&up, &bases.npm_registry, &bases.pypi, p).await?,
    };
    // The operator's key (a user's own key arrives with the settings vault).
    let mut llm_failed = false;
    if let Some(key) = &cx.config.llm.api_key {
        let llm_up = FetchUpstream {
            timeout: LLM_TIMEOUT,
        };
        let cfg = &cx.config.llm;
        let readme = collected.readme.as_deref().unwrap_or_default();
        match llm::ask(
            &llm_up,
            &cfg.api_base,
            key.expose(),
            &cfg.model,
            &request.source.normalized(),
            readme,
        )
        .await
        {
            Ok(found) => collected.inputs.llm = Some(found),
            Err(why) => {
                cx.log.warn("llm_failed", json!({ "reason": why }));
                llm_failed = true;
            }
        }
    }
    let mut plan = merge(collected.inputs).map_err(|why| AppError::field("source", why))?;
    if llm_failed {
        plan.warnings
            .push("The LLM reader failed; the plan comes from the manifests alone.".into());
    }
    // A package named by a repository must really be published; one named by the user was
    // just read from its registry, which proves it.
    let memo = KvMemo { kv: &kv };
    match &request.source {
        Source::Repo(_) => {
            let bases = (&cx.config.upstreams.npm_registry, &cx.config.upstreams.pypi);
            exists::ensure(&up, &memo, bases, plan.registry, &plan.package, None).await?;
        }
        Source::Package(p) => {
            let key = exists::memo_key(p.registry, &p.name, p.version.as_deref());
            memo.put(&key, "1", exists::POSITIVE_TTL_SECS).await;
        }
    }
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
