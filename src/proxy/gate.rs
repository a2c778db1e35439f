//! The Worker's handle on a deployment's `McpGateway` object: the one hop an MCP request
//! makes before the machine (`pass`), the rarer ones (`begin` after an initialize,
//! `recover` when the runner lost a session), and [`forget`], which every writer of what
//! the object caches calls after its D1 write and before it answers.

use serde_json::{json, Value};
use worker::{Env, Method, Request, RequestInit, Stub};

use crate::error::AppResult;
use crate::gateway::authority::Verdict;
use crate::gateway::failure::Failure;
use crate::gateway::request::TokenSource;
use crate::platform::log::Logger;
use crate::platform::{env, web};

pub struct Gate {
    stub: Stub,
    deployment_id: String,
}

/// What `/pass` needs to judge a request.
pub struct Presented<'a> {
    pub token: &'a str,
    pub token_in: TokenSource,
    pub session: Option<&'a str>,
    pub version: Option<&'a str>,
    /// A DELETE of the session: it ends here.
    pub end: bool,
}

impl Gate {
    pub fn of(worker_env: &Env, deployment_id: &str) -> AppResult<Self> {
        Self::at(worker_env, deployment_id, None)
    }

    /// With a hint: the object is created near `hint` (a Cloudflare location hint) if it
    /// does not exist yet; an existing object stays where it is.
    fn at(worker_env: &Env, deployment_id: &str, hint: Option<&str>) -> AppResult<Self> {
        let ns = env::gateways(worker_env)?;
        let id = ns.id_from_name(deployment_id)?;
        let stub = match hint {
            Some(h) => id.get_stub_with_location_hint(h)?,
            None => id.get_stub()?,
        };
        Ok(Self {
            stub,
            deployment_id: deployment_id.to_string(),
        })
    }

    async fn call(&self, path: &str, mut body: Value) -> worker::Result<worker::Response> {
        body["deployment_id"] = json!(self.deployment_id);
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(body.to_string().into()));
        let req = Request::new_with_init(&format!("https://gateway.internal{path}"), &init)?;
        self.stub.fetch_with_request(req).await
    }

    pub async fn pass(&self, p: Presented<'_>) -> Result<Verdict, Failure> {
        let resp = self
            .call(
                "/pass",
                json!({ "token": p.token, "token_in": p.token_in, "session": p.session, "version": p.version, "end": p.end }),
            )
            .await
            .map_err(|_| Failure::Internal)?;
        if resp.status_code() != 200 {
            return Err(Failure::Internal);
        }
        let text = web::response_text(resp)
            .await
            .map_err(|_| Failure::Internal)?;
        serde_json::from_str::<Verdict>(&text).map_err(|_| Failure::Internal)
    }

    /// Records our new session for the runner's.
    pub async fn begin(
        &self,
        ours: &str,
        upstream: &str,
        version: Option<&str>,
        initialize: &str,
    ) -> Result<(), Failure> {
        let resp = self
            .call(
                "/begin",
                json!({ "session": ours, "upstream_session": upstream, "version": version, "initialize": initialize }),
            )
            .await
            .map_err(|_| Failure::Internal)?;
        match resp.status_code() {
            200 => Ok(()),
            _ => Err(Failure::Internal),
        }
    }

    /// The runner's new session for ours after it lost `stale`.
    pub async fn recover(&self, ours: &str, stale: &str) -> Result<String, Failure> {
        let resp = self
            .call("/recover", json!({ "session": ours, "stale": stale }))
            .await
            .map_err(|_| Failure::Internal)?;
        match resp.status_code() {
            200 => {}
            404 => return Err(Failure::UnknownSession),
            502 => return Err(Failure::BadUpstream),
            _ => return Err(Failure::Internal),
        }
        let text = web::response_text(resp)
            .await
            .map_err(|_| Failure::Internal)?;
        let v = serde_json::from_str::<Value>(&text).map_err(|_| Failure::Internal)?;
        v["upstream_session"]
            .as_str()
            .filter(|s| mcp_wire::session::is_valid(s))
            .map(str::to_string)
            .ok_or(Failure::BadUpstream)
    }

    async fn forget(&self, drop_sessions: bool) -> worker::Result<bool> {
        let resp = self
            .call("/forget", json!({ "drop_sessions": drop_sessions }))
            .await?;
        Ok(resp.status_code() == 200)
    }
}

/// Tells the deployment's gateway object that its row changed (status, token, machine,
/// account, secrets), so the very next MCP request reads it again. Tried twice; a failure
/// is logged (the object's cache then expires within `authority::MAX_AGE_MS`).
pub async fn forget(worker_env: &Env, log: &Logger, deployment_id: &str) {
    forget_with(worker_env, log, deployment_id, false).await
}

/// As [`forget`], for a deployment that is gone: its sessions are dropped too.
pub async fn forget_deleted(worker_env: &Env, log: &Logger, deployment_id: &str) {
    forget_with(worker_env, log, deployment_id, true).await
}

async fn forget_with(worker_env: &Env, log: &Logger, deployment_id: &str, drop_sessions: bool) {
    for _ in 0..2 {
        if let Ok(gate) = Gate::of(worker_env, deployment_id) {
            if let Ok(true) = gate.forget(drop_sessions).await {
                return;
            }
        }
    }
    log.error(
        "gateway_forget_failed",
        json!({ "deployment": deployment_id, "drop_sessions": drop_sessions }),
    );
}

/// Creates a new deployment's gateway object near where its machine will run (a
/// deployment without a region gets Cloudflare's default placement, near this request).
pub async fn place(worker_env: &Env, log: &Logger, deployment_id: &str, region: Option<&str>) {
    let Some(hint) = region.and_then(crate::deploy::fly::location_hint) else {
        return forget(worker_env, log, deployment_id).await;
    };
    let placed = match Gate::at(worker_env, deployment_id, Some(hint)) {
        Ok(gate) => gate.forget(false).await.unwrap_or(false),
        Err(_) => false,
    };
    if !placed {
        forget(worker_env, log, deployment_id).await;
    }
}
