//! Reads [`Config`] from the Worker's `Env` (vars and secrets share one namespace there)
//! and opens the bindings by their `wrangler.toml` names.

use std::rc::Rc;
use worker::{
    D1Database, Env, KvStore, Method, ObjectNamespace, RateLimiter, Request, RequestInit, Response,
};

use crate::config::Config;
use crate::error::{AppError, AppResult};

pub const DB: &str = "DB";
pub const CACHE: &str = "CACHE";
pub const MCP_GATEWAYS: &str = "MCP_GATEWAYS";
pub const ANALYSIS_LOCKS: &str = "ANALYSIS_LOCKS";
pub const DEPLOYERS: &str = "DEPLOYERS";
/// Per-person limit on analysis pipeline runs (cache misses and `refresh`).
pub const ANALYZE_RATE_LIMITER: &str = "ANALYZE_RATE_LIMITER";
/// Per-address limit on OAuth client registrations (anyone may register, so it is bounded).
pub const OAUTH_RATE_LIMITER: &str = "OAUTH_RATE_LIMITER";
/// Every rate limiter the Worker needs: one missing is a configuration error that
/// `/api/health` names, never a silently unlimited route.
pub const RATE_LIMITERS: &[&str] = &[ANALYZE_RATE_LIMITER, OAUTH_RATE_LIMITER];

thread_local! {
    static CONFIG: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

/// The configuration, read from the environment once per isolate: an isolate's vars and
/// secrets never change (a new value deploys a new version, which starts new isolates), and
/// reading ~30 bindings and parsing URLs and keys on every request is most of a small
/// request's CPU.
pub fn config(env: &Env) -> Rc<Config> {
    CONFIG.with(|c| {
        c.get_or_init(|| {
            Rc::new(Config::from_lookup(|name| {
                env.secret(name)
                    .ok()
                    .map(|s| s.to_string())
                    .or_else(|| env.var(name).ok().map(|v| v.to_string()))
            }))
        })
        .clone()
    })
}

pub fn db(env: &Env) -> AppResult<D1Database> {
    Ok(env.d1(DB)?)
}

pub fn cache(env: &Env) -> AppResult<KvStore> {
    Ok(env.kv(CACHE)?)
}

pub fn gateways(env: &Env) -> AppResult<ObjectNamespace> {
    Ok(env.durable_object(MCP_GATEWAYS)?)
}

pub fn analysis_locks(env: &Env) -> AppResult<ObjectNamespace> {
    Ok(env.durable_object(ANALYSIS_LOCKS)?)
}

pub fn deployers(env: &Env) -> AppResult<ObjectNamespace> {
    Ok(env.durable_object(DEPLOYERS)?)
}

pub fn rate_limiter(env: &Env, name: &str) -> AppResult<RateLimiter> {
    env.rate_limiter(name).map_err(|_| AppError::NotConfigured {
        missing: vec![name.to_string()],
    })
}

/// The rate limiter bindings that are absent (for `/api/health`).
pub fn missing_bindings(env: &Env) -> Vec<&'static str> {
    RATE_LIMITERS
        .iter()
        .copied()
        .filter(|name| env.rate_limiter(name).is_err())
        .collect()
}

/// POSTs `body` (if any) to `path` of the object named `name` in `ns`: the one way the
/// Worker talks to its Durable Objects (the host part of the URL is never routed).
pub async fn post_to_object(
    ns: &ObjectNamespace,
    name: &str,
    path: &str,
    body: Option<String>,
) -> worker::Result<Response> {
    let stub = ns.id_from_name(name)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post);
    if let Some(b) = body {
        init.with_body(Some(b.into()));
    }
    let req = Request::new_with_init(&format!("https://object.internal{path}"), &init)?;
    stub.fetch_with_request(req).await
}
