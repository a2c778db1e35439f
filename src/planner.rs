//! Turns a parsed analyze request into a launch plan over the Worker's bindings: the cache
//! lookup (a person's own plan first, else the shared one; rules in
//! `analysis::cache_keys`), the person's `ANALYZE_RATE_LIMITER` quota, the hop through the
//! source's `AnalysisLock` object (so two concurrent analyses of one uncached source run
//! the pipeline and the LLM once), and [`run`], the pipeline that object executes:
//! collect, ask the LLM if a key is configured, merge, confirm the package is published,
//! store. The pure pieces live in `crate::analysis`; this module only wires them to KV, D1,
//! Durable Objects and `fetch`. Pipeline runs count against the quota; cache hits are free.
//!
//! [`launch_for`] is what a new deployment asks: its launch and credentials, from that plan
//! or — for a registry entry — from the entry itself (`crate::deploy::from_registry`).

use serde_json::{json, Value};
use worker::Env;

use crate::analysis::cache_keys::{self, Entry};
use crate::analysis::exists::{self, Memo};
use crate::analysis::merge::{merge, Plan};
use crate::analysis::request::{AnalyzeRequest, Source};
use crate::analysis::source::Registry;
use crate::analysis::{collect, llm};
use crate::config::Config;
use crate::deploy::from_registry;
use crate::deploy::request::{Launch, Origin};
use crate::error::{AppError, AppResult, FieldError};
use crate::platform::env;
use crate::platform::log::Logger;
use crate::platform::upstream::{FetchUpstream, LLM_TIMEOUT};
use crate::registry::fetch;
use crate::store::analysis_cache;
use crate::store::memo::KvMemo;
use crate::store::settings;
use crate::time::{now_ms, rfc3339};

/// The analysis limiter's period (`[[ratelimits]]` in wrangler.toml), for `Retry-After`.
const ANALYZE_RATE_PERIOD_SECS: u32 = 60;

/// Who is reading the cache, which decides whether a personal entry is looked for.
#[derive(Debug, Clone, Copy)]
pub enum Reader<'a> {
    /// A known user id.
    User(&'a str),
    Nobody,
}

fn plan_json(plan: &Plan, analyzed_at: i64) -> Value {
    let mut v = json!(plan);
    v["analyzed_at"] = json!(rfc3339(analyzed_at));
    v
}

/// What the lock object receives: the request as parsed here (it is not parsed again).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct LockCall {
    pub request: AnalyzeRequest,
    pub user_id: Option<String>,
}

/// A cached plan for this reader: their own entry wins, else the shared one. Both are
/// read at once, so a lookup is one round of I/O, not a chain.
pub async fn cached(
    env: &Env,
    request: &AnalyzeRequest,
    reader: Reader<'_>,
) -> AppResult<Option<Value>> {
    let (kv, db) = (env::cache(env)?, env::db(env)?);
    let shared = request.source.cache_key();
    let now = now_ms();
    let personal = async {
        match reader {
            Reader::User(uid) => {
                analysis_cache::get_durable(&db, &cache_keys::personal(&shared, uid), now).await
            }
            Reader::Nobody => Ok(None),
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

/// The plan for a parsed request: from the cache unless `refresh`, else [`analyze`].
pub async fn plan_for(env: &Env, request: &AnalyzeRequest, user_id: &str) -> AppResult<Value> {
    if !request.refresh {
        if let Some(hit) = cached(env, request, Reader::User(user_id)).await? {
            return Ok(hit);
        }
    }
    analyze(env, request, user_id).await
}

/// The launch a new deployment runs (`credentials` are checked against a registry
/// entry's declared choices and formats). A registry entry is
/// read (cached briefly) instead of analysed; its package and version are confirmed on npm
/// or PyPI like any plan's, and the entry version deployed is written back into `origin`.
pub async fn launch_for(
    env: &Env,
    config: &Config,
    origin: &mut Origin,
    credentials: &[(String, String)],
    user_id: &str,
) -> AppResult<Launch> {
    let pick = match origin {
        Origin::Analyzed(request) => {
            let plan = plan_for(env, request, user_id).await?;
            return Launch::from_plan(&plan);
        }
        Origin::Registry(pick) => pick,
    };
    let kv = env::cache(env)?;
    let (up, memo) = (FetchUpstream::default(), KvMemo { kv: &kv });
    let (doc, entry, _) = fetch::server(
        &up,
        &memo,
        &config.upstreams.mcp_registry,
        &pick.name,
        pick.version.as_deref(),
    )
    .await
    .map_err(|e| match e {
        AppError::NotFound { message } => AppError::field("registry", message),
        other => other,
    })?;
    let launch = from_registry::launch(&doc, &entry, pick, credentials)?;
    let registry = match launch.runtime.as_str() {
        "python" => Registry::Pypi,
        _ => Registry::Npm,
    };
    let bases = (&config.upstreams.npm_registry, &config.upstreams.pypi);
    exists::ensure(
        &up,
        &memo,
        bases,
        registry,
        &launch.package,
        launch.version.as_deref(),
    )
    .await
    .map_err(|e| match e {
        // "not published" names the package field; here the person chose `registry`.
        AppError::Validation { fields } => AppError::Validation {
            fields: fields
                .into_iter()
                .map(|f| FieldError::new("registry", f.message))
                .collect(),
        },
        other => other,
    })?;
    pick.version = Some(entry.version.clone());
    Ok(launch)
}

/// Runs the pipeline for a request the cache did not answer: within the person's quota,
/// through the source's `AnalysisLock` object (one run per source at a time).
pub async fn analyze(env: &Env, request: &AnalyzeRequest, user_id: &str) -> AppResult<Value> {
    let limiter = env::rate_limiter(env, env::ANALYZE_RATE_LIMITER)?;
    if !limiter.limit(user_id.to_string()).await?.success {
        return Err(AppError::RateLimited {
            retry_after_secs: ANALYZE_RATE_PERIOD_SECS,
        });
    }
    let mut answer = env::post_to_object(
        &env::analysis_locks(env)?,
        &request.source.cache_key(),
        "/run",
        Some(
            json!(LockCall {
                request: request.clone(),
                user_id: Some(user_id.to_string()),
            })
            .to_string(),
        ),
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

/// The person's own LLM key from their settings; unreadable counts as none (logged).
async fn own_llm_key(
    env: &Env,
    config: &Config,
    log: &Logger,
    user_id: Option<&str>,
) -> Option<String> {
    let (Some(ring), Some(uid)) = (&config.encryption_keys, user_id) else {
        return None;
    };
    let read = match env::db(env) {
        Ok(db) => settings::secret(&db, ring, uid, settings::LLM_API_KEY).await,
        Err(e) => Err(e),
    };
    read.unwrap_or_else(|e| {
        log.warn(
            "user_llm_key_unreadable",
            json!({ "code": e.code(), "detail": e.log_detail() }),
        );
        None
    })
}

/// The pipeline after a cache miss. Runs inside the lock object.
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
        let reader = user_id.map_or(Reader::Nobody, Reader::User);
        if let Some(hit) = cached(env, request, reader).await? {
            return Ok(hit);
        }
    }
    let up = FetchUpstream::default();
    let bases = &config.upstreams;
    let collect = async {
        match &request.source {
            Source::Repo(r) => collect::github(&up, &bases.github_api, &bases.github_raw, r).await,
            Source::Package(p) => collect::package(&up, &bases.npm_registry, &bases.pypi, p).await,
        }
    };
    // The user's own key, else the operator's; read while the sources are fetched.
    let (collected, own_key) = futures_util::join!(collect, own_llm_key(env, config, log, user_id));
    let mut collected = collected?;
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
    let stored = match cache_keys::entry_for(&shared_key, llm_failed, own_key.is_some(), user_id) {
        Some(Entry::Shared) => analysis_cache::put(&kv, &db, &shared_key, &result, now).await,
        Some(Entry::Personal(key)) => analysis_cache::put_durable(&db, &key, &result, now)
            .await
            .map(drop),
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
