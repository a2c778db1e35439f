//! `McpSession`: one SQLite-backed Durable Object per MCP gateway session (class bound as
//! `MCP_SESSIONS`, created by the `v1` migration with `new_sqlite_classes`).
//!
//! The gateway issue gives it the session's state (upstream session id, negotiated protocol
//! version, the stored `initialize`) and resumption. Today it answers the storage probe of
//! `GET /api/health/storage` — a counter in its own storage, proving that the binding,
//! the migration and persistence work — and refuses everything else with a JSON 404.

use serde_json::json;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

use crate::error::AppError;
use crate::platform::web::error_response;

const PROBE_COUNT_KEY: &str = "probe_count";

#[durable_object]
pub struct McpSession {
    state: State,
}

impl DurableObject for McpSession {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/probe") => {
                let storage = self.state.storage();
                let count = storage.get::<u64>(PROBE_COUNT_KEY).await?.unwrap_or(0) + 1;
                storage.put(PROBE_COUNT_KEY, count).await?;
                Response::from_json(&json!({ "count": count }))
            }
            _ => Ok(error_response(&AppError::not_found(
                "No such session operation.",
            ))),
        }
    }
}
