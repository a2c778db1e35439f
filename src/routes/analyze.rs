//! `POST /api/analyze` (signed in): source → launch plan, cached in KV + D1. A repeat
//! analysis is answered from the cache without any upstream call; `refresh` bypasses it.
//! A miss goes through the `AnalysisLock` Durable Object named by the cache key, so two
//! concurrent analyses of the same uncached source run the pipeline (and the LLM) once.
//!
//! Whose plan is cached where: a plan made with the operator's LLM key (or with no LLM
//! configured) is the shared entry everyone reads; a plan made with a person's own LLM key
//! is cached for that person only; a plan whose LLM call failed is not cached at all (it
//! lacks what the LLM would have found, and would refuse other people's credentials).
//! Pipeline runs (misses and `refresh`) count against the person's
//! `ANALYZE_RATE_LIMITER` quota; cache hits are free.

use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::analysis::exists::{self, Memo};
use crate::analysis::merge::{merge, Plan};
use crate::analysis::request::{parse, AnalyzeRequest, Source};
use crate::analysis::{collect, llm};
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::platform::log::Logger;
use crate::platform::upstream::{FetchUpstream, LLM_TIMEOUT};
use crate::platform::{env, web};
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::analysis_cache;
use crate::store::memo::KvMemo;
use crate::store::settings;
use crate::time::{now_ms, rfc3339};

/// The analysis limiter's period (`[[ratelimits]]` in wrangler.toml), for `Retry-After`.
const ANALYZE_RATE_PERIOD_SECS: u32 = 60;

fn plan_json(plan: &Plan, analyzed_at: i64) -> Value {
    let mut v = json!(plan);
    v["analyzed_at"] = json!(rfc3339(analyzed_at));
    v
}

/// The request as the lock object receives it (the original, already-validated input).
pub fn lock_body(body: &Value, user_id: &str) -> Value {
    json!({ "repo_url": body.get("repo_url"), "package": body.get("package"), "refresh": body.get("refresh").or(body.get("force")), "user_id": user_id })
}

pub async fn analyze(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let body = web::read_json(&mut req).await?;
    let request = parse(&body)?;
    web::json(200, &plan_for(cx, &request, &body, &user.id).await?)
}

/// The cache key of a plan made with `user_id`'s own LLM key.
fn personal_key(shared: &str, user_id: &str) -> String {
    format!("{shared}:user:{user_id}")
}

/// A cached plan for this person: their own entry first, else the shared one (both read
/// at once, so a miss costs one round trip, not two).
async fn cached(
    env: &Env,
    request: &AnalyzeRequest,
    user_id: Option<&str>,
) -> AppResult<Option<Value>> {
    let (kv, db) = (env::cache(env)?, env::db(env)?);
    let shared = request.source.cache_key();
    let now = now_ms();
    let personal = async {
        match user_id {
            Some(uid) => analysis_cache::get(&kv, &db, &personal_key(&shared, uid), now).await,
            None => Ok(None),
        }
    };
    let (mine, everyone) =
        futures_util::join!(personal, analysis_cache::get(&kv, &db, &shared, now));
    let mut hit = match (mine?, everyone?) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => return Ok(None),
    };
    hit["cached"] = json!(true);
    Ok(Some(hit))
}

/// The plan for a parsed request: from the cache unless `refresh`, else through the
/// source's `AnalysisLock` object (one pipeline run per source at a time), within the
/// person's quota. `body` is the original request (what the lock object re-parses).
pub async fn plan_for(
    cx: &Ctx,
    request: &AnalyzeRequest,
    body: &Value,
    user_id: &str,
) -> AppResult<Value> {
    if !request.refresh {
        if let Some(hit) = cached(&cx.env, request, Some(user_id)).await? {
            return Ok(hit);
        }
    }
    let limiter = env::rate_limiter(&cx.env, env::ANALYZE_RATE_LIMITER)?;
    if !limiter.limit(user_id.to_string()).await?.success {
        return Err(AppError::RateLimited {
            retry_after_secs: ANALYZE_RATE_PERIOD_SECS,
        });
    }
    let mut answer = env::post_to_object(
        &env::analysis_locks(&cx.env)?,
        &request.source.cache_key(),
        "/run",
        Some(lock_body(body, user_id).to_string()),
    )
    .await?;
    let status = answer.status_code();
    let retry_after = answer
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u32>().ok());
    let text = answer.text().await?;
    if status == 200 {
        return serde_json::from_str(&text)
            .map_err(|_| AppError::internal("analysis lock answered non-JSON"));
    }
    Err(AppError::from_relayed(status, &text, retry_after))
}

/// The pipeline after a cache miss: collect, ask the LLM if a key is configured, merge,
/// check the package is published, store. Runs inside the lock object.
pub async fn run(
    env: &Env,
    config: &Config,
    log: &Logger,
    request: &AnalyzeRequest,
    user_id: Option<&str>,
) -> AppResult<Value> {
    let shared_key = request.source.cache_key();
    let (kv, db) = (env::cache(env)?, env::db(env)?);
    let now = now_ms();
    if !request.refresh {
        // A concurrent twin may have just finished.
        if let Some(hit) = cached(env, request, user_id).await? {
            return Ok(hit);
        }
    }
    let up = FetchUpstream::default();
    let bases = &config.upstreams;
    let mut collected = match &request.source {
        Source::Repo(r) => collect::github(&up, &bases.github_api, &bases.github_raw, r).await?,
        Source::Package(p) => collect::package(&up, &bases.npm_registry, &bases.pypi, p).await?,
    };
    // The user's own key from their settings, else the operator's.
    let own_key = match (&config.encryption_keys, user_id) {
        (Some(ring), Some(uid)) => settings::secret(&db, ring, uid, settings::LLM_API_KEY)
            .await
            .unwrap_or_else(|e| {
                log.warn(
                    "user_llm_key_unreadable",
                    json!({ "code": e.code(), "detail": e.log_detail() }),
                );
                None
            }),
        _ => None,
    };
    let key_source = if own_key.is_some() {
        "user"
    } else {
        "operator"
    };
    let mut llm_failed = false;
    if let Some(api_key) = own_key
        .as_deref()
        .or(config.llm.api_key.as_ref().map(|k| k.expose()))
    {
        log.info("llm_key", json!({ "source": key_source }));
        let llm_up = FetchUpstream {
            timeout: LLM_TIMEOUT,
        };
        let cfg = &config.llm;
        let readme = collected.readme.as_deref().unwrap_or_default();
        match llm::ask(
            &llm_up,
            &cfg.api_base,
            api_key,
            &cfg.model,
            &request.source.normalized(),
            readme,
        )
        .await
        {
            Ok(found) => collected.inputs.llm = Some(found),
            Err(why) => {
                log.warn("llm_failed", json!({ "reason": why }));
                llm_failed = true;
            }
        }
    }
    let mut plan = merge(collected.inputs).map_err(|why| AppError::field("source", why))?;
    if llm_failed {
        plan.warnings
            .push("The LLM reader failed; the plan comes from the manifests alone.".into());
    }
    confirm_published(&up, &KvMemo { kv: &kv }, config, request, &mut plan).await?;
    let mut result = plan_json(&plan, now);
    let cache_key = match (llm_failed, own_key.is_some(), user_id) {
        (true, _, _) => None,
        (false, true, Some(uid)) => Some(personal_key(&shared_key, uid)),
        (false, true, None) => None,
        (false, false, _) => Some(shared_key),
    };
    let stored = match &cache_key {
        Some(key) => analysis_cache::put(&kv, &db, key, &result, now).await,
        None => Ok(()),
    };
    if let Err(e) = stored {
        // The analysis is still good; a lost cache write costs a later re-analysis only.
        log.error(
            "analysis_cache_write_failed",
            json!({ "detail": e.log_detail() }),
        );
    }
    result["cached"] = json!(false);
    Ok(result)
}

/// Nothing reaches a plan unconfirmed: the package must be published, and so must the
/// version the plan pins. A version a repository declares that the registry does not have
/// (unpublished work, or an attempt to pin something else) is dropped with a warning, so
/// the machine installs the latest published release of the package the plan names. A
/// version the person asked for (`npm:x@1.2.3`) was resolved on the registry by the
/// collection already and is recorded as known.
async fn confirm_published(
    up: &FetchUpstream,
    memo: &KvMemo<'_>,
    config: &Config,
    request: &AnalyzeRequest,
    plan: &mut Plan,
) -> AppResult<()> {
    let bases = (&config.upstreams.npm_registry, &config.upstreams.pypi);
    if let Source::Package(p) = &request.source {
        if p.registry == plan.registry && p.name == plan.package {
            memo.put(
                &exists::memo_key(plan.registry, &plan.package, plan.version.as_deref()),
                "1",
                exists::POSITIVE_TTL_SECS,
            )
            .await;
            return Ok(());
        }
    }
    if let Some(version) = plan.version.clone() {
        match exists::ensure(
            up,
            memo,
            bases,
            plan.registry,
            &plan.package,
            Some(&version),
        )
        .await
        {
            Ok(()) => return Ok(()),
            Err(e) if e.status() == 422 => {
                plan.warnings.push(format!(
                    "Version {version} is not published for this package; the latest published version is used."
                ));
                plan.version = None;
            }
            Err(e) => return Err(e),
        }
    }
    exists::ensure(up, memo, bases, plan.registry, &plan.package, None).await
}
