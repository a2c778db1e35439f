//! Reads [`Config`] from the Worker's `Env` (vars and secrets share one namespace there)
//! and opens the bindings by their `wrangler.toml` names.

use worker::{D1Database, Env, KvStore, Method, ObjectNamespace, Request, RequestInit, Response};

use crate::config::Config;
use crate::error::AppResult;

pub const DB: &str = "DB";
pub const CACHE: &str = "CACHE";
pub const MCP_SESSIONS: &str = "MCP_SESSIONS";
pub const ANALYSIS_LOCKS: &str = "ANALYSIS_LOCKS";
pub const DEPLOYERS: &str = "DEPLOYERS";

pub fn config(env: &Env) -> Config {
    Config::from_lookup(|name| {
        env.secret(name)
            .ok()
            .map(|s| s.to_string())
            .or_else(|| env.var(name).ok().map(|v| v.to_string()))
    })
}

pub fn db(env: &Env) -> AppResult<D1Database> {
    Ok(env.d1(DB)?)
}

pub fn cache(env: &Env) -> AppResult<KvStore> {
    Ok(env.kv(CACHE)?)
}

pub fn sessions(env: &Env) -> AppResult<ObjectNamespace> {
    Ok(env.durable_object(MCP_SESSIONS)?)
}

pub fn analysis_locks(env: &Env) -> AppResult<ObjectNamespace> {
    Ok(env.durable_object(ANALYSIS_LOCKS)?)
}

pub fn deployers(env: &Env) -> AppResult<ObjectNamespace> {
    Ok(env.durable_object(DEPLOYERS)?)
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
