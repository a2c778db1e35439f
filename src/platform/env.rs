//! Reads [`Config`] from the Worker's `Env` (vars and secrets share one namespace there)
//! and opens the bindings by their `wrangler.toml` names.

use worker::{D1Database, Env, KvStore, ObjectNamespace};

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
