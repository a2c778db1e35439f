//! `McpSession`: one SQLite-backed Durable Object per MCP gateway session (binding
//! `MCP_SESSIONS`, migration `v1`), named `{deployment_id}:{session_id}` so a session id
//! presented with another deployment reaches an empty object (→ 404).
//!
//! It holds what the gateway needs to keep a session alive across machine restarts: the
//! upstream (runner) session id, the negotiated protocol version and the original
//! `initialize` request. When the upstream has lost the session (machine restarted or
//! auto-stopped), `/recover` re-runs `initialize` + `notifications/initialized` against a
//! new upstream session, once for all concurrent callers. Idle sessions expire by alarm.
//! Streams never pass through here: the gateway fetches the machine itself.
//!
//! Internal protocol (JSON over `fetch` from `routes::mcp`): `POST /begin`, `/state`
//! (`"peek": true` reads without writing and says whether a touch is due), `/recover`,
//! `/end`; `/probe` serves the storage health check.

use std::cell::RefCell;

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

use crate::error::AppError;
use crate::platform::machine::MachineLink;
use crate::platform::web::{error_response, json_text};
use crate::time::now_ms;

const PROBE_COUNT_KEY: &str = "probe_count";
const SESSION_KEY: &str = "session";
/// A session unused this long is forgotten.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// `last_seen` is persisted at most this often (the alarm only needs minutes).
const TOUCH_EVERY_MS: i64 = 60 * 1000;

#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub deployment_id: String,
    pub upstream_session: String,
    pub version: Option<String>,
    /// The client's original `initialize` request (JSON text).
    pub initialize: String,
    pub last_seen: i64,
}

#[derive(Deserialize)]
struct Call {
    deployment_id: String,
    #[serde(default)]
    upstream_session: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    initialize: Option<String>,
    #[serde(default)]
    stale: Option<String>,
    #[serde(default)]
    link: Option<MachineLink>,
    /// `/state` without writing: the gateway reads the session while the token is still
    /// being checked, and only an authenticated request may keep a session alive.
    #[serde(default)]
    peek: bool,
}

type Recovery = Shared<LocalBoxFuture<'static, std::result::Result<String, String>>>;

#[durable_object]
pub struct McpSession {
    state: State,
    cached: RefCell<Option<Session>>,
    recovering: RefCell<Option<(String, Recovery)>>,
}

fn answer(status: u16, body: Value) -> Result<Response> {
    json_text(status, body.to_string(), None)
}

fn gone() -> Result<Response> {
    Ok(error_response(&AppError::not_found("No such session.")))
}

impl McpSession {
    async fn load(&self) -> Result<Option<Session>> {
        if let Some(s) = self.cached.borrow().clone() {
            return Ok(Some(s));
        }
        let s = self.state.storage().get::<Session>(SESSION_KEY).await?;
        *self.cached.borrow_mut() = s.clone();
        Ok(s)
    }

    async fn save(&self, s: Session) -> Result<()> {
        self.state.storage().put(SESSION_KEY, &s).await?;
        *self.cached.borrow_mut() = Some(s);
        Ok(())
    }

    async fn forget(&self) -> Result<()> {
        *self.cached.borrow_mut() = None;
        self.state.storage().delete_all().await?;
        Ok(())
    }

    /// The session if it exists and belongs to `deployment_id`.
    async fn own(&self, deployment_id: &str) -> Result<Option<Session>> {
        Ok(self
            .load()
            .await?
            .filter(|s| s.deployment_id == deployment_id))
    }

    async fn begin(&self, call: Call) -> Result<Response> {
        let (Some(upstream_session), Some(initialize)) = (call.upstream_session, call.initialize)
        else {
            return Ok(error_response(&AppError::bad_request(
                "invalid_body",
                "begin needs the upstream session and initialize.",
            )));
        };
        let now = now_ms();
        self.save(Session {
            deployment_id: call.deployment_id,
            upstream_session,
            version: call.version,
            initialize,
            last_seen: now,
        })
        .await?;
        self.state
            .storage()
            .set_alarm(std::time::Duration::from_millis(IDLE_MS as u64))
            .await?;
        answer(200, json!({ "ok": true }))
    }

    async fn current(&self, call: Call) -> Result<Response> {
        let Some(mut s) = self.own(&call.deployment_id).await? else {
            return gone();
        };
        let now = now_ms();
        let mut dirty = now - s.last_seen > TOUCH_EVERY_MS;
        // The client states the negotiated version on every request after initialize.
        if let Some(v) = call.version.filter(|v| Some(v) != s.version.as_ref()) {
            s.version = Some(v);
            dirty = true;
        }
        if dirty && !call.peek {
            s.last_seen = now;
            self.save(s.clone()).await?;
        }
        answer(
            200,
            json!({ "upstream_session": s.upstream_session, "version": s.version, "touch_due": dirty && call.peek }),
        )
    }

    async fn recover(&self, call: Call) -> Result<Response> {
        let Some(s) = self.own(&call.deployment_id).await? else {
            return gone();
        };
        let Some(link) = call.link else {
            return Ok(error_response(&AppError::bad_request(
                "invalid_body",
                "recover needs the machine link.",
            )));
        };
        // Someone already recovered past the id the caller saw: use theirs.
        if call.stale.as_deref() != Some(s.upstream_session.as_str()) {
            return answer(200, json!({ "upstream_session": s.upstream_session }));
        }
        let existing = self
            .recovering
            .borrow()
            .as_ref()
            .filter(|(stale, _)| *stale == s.upstream_session)
            .map(|(_, f)| f.clone());
        let fut = match existing {
            Some(f) => f,
            None => {
                // Registered before the first await, so concurrent callers share one run.
                let f = reinitialize(link, s.initialize.clone(), s.version.clone())
                    .boxed_local()
                    .shared();
                *self.recovering.borrow_mut() = Some((s.upstream_session.clone(), f.clone()));
                f
            }
        };
        let outcome = fut.await;
        self.recovering.borrow_mut().take();
        match outcome {
            Ok(fresh) => {
                if let Some(mut cur) = self.load().await? {
                    if cur.upstream_session == s.upstream_session {
                        cur.upstream_session = fresh.clone();
                        cur.last_seen = now_ms();
                        self.save(cur).await?;
                    }
                }
                let now = self
                    .load()
                    .await?
                    .map(|c| c.upstream_session)
                    .unwrap_or(fresh);
                answer(200, json!({ "upstream_session": now }))
            }
            Err(why) => answer(
                502,
                json!({ "error": { "code": "recovery_failed", "message": why } }),
            ),
        }
    }

    async fn end(&self, call: Call) -> Result<Response> {
        let Some(s) = self.own(&call.deployment_id).await? else {
            return gone();
        };
        if let Some(link) = call.link {
            // Best effort: the runner also reaps idle sessions by itself.
            let _ = link
                .send(Method::Delete, &[], None, Some(&s.upstream_session))
                .await;
        }
        self.forget().await?;
        answer(200, json!({ "ended": true }))
    }
}

/// A new upstream session from the stored `initialize`: the request, then the
/// `notifications/initialized` the protocol requires before anything else.
async fn reinitialize(
    link: MachineLink,
    initialize: String,
    version: Option<String>,
) -> std::result::Result<String, String> {
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "accept".to_string(),
            "application/json, text/event-stream".to_string(),
        ),
    ];
    let mut resp = link
        .send(Method::Post, &headers, Some(initialize.as_bytes()), None)
        .await
        .map_err(|f| f.message().to_string())?;
    if resp.status_code() != 200 {
        return Err(format!("re-initialize answered {}", resp.status_code()));
    }
    let session = resp
        .headers()
        .get("mcp-session-id")
        .ok()
        .flatten()
        .filter(|s| mcp_wire::session::is_valid(s))
        .ok_or("re-initialize gave no session id")?;
    // The InitializeResult itself is not needed; reading it lets the runner finish the stream.
    let _ = resp.bytes().await;
    let mut headers = headers;
    if let Some(v) = version {
        headers.push(("mcp-protocol-version".to_string(), v));
    }
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string();
    let ack = link
        .send(
            Method::Post,
            &headers,
            Some(note.as_bytes()),
            Some(&session),
        )
        .await
        .map_err(|f| f.message().to_string())?;
    if !(200..300).contains(&ack.status_code()) {
        return Err(format!(
            "initialized notification answered {}",
            ack.status_code()
        ));
    }
    Ok(session)
}

impl DurableObject for McpSession {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            cached: RefCell::new(None),
            recovering: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        if req.method() != Method::Post {
            return Ok(error_response(&AppError::not_found(
                "No such session operation.",
            )));
        }
        if path == "/probe" {
            let storage = self.state.storage();
            let count = storage.get::<u64>(PROBE_COUNT_KEY).await?.unwrap_or(0) + 1;
            storage.put(PROBE_COUNT_KEY, count).await?;
            return Response::from_json(&json!({ "count": count }));
        }
        let Ok(call) = req.json::<Call>().await else {
            return Ok(error_response(&AppError::bad_request(
                "invalid_body",
                "Not a session call.",
            )));
        };
        match path.as_str() {
            "/begin" => self.begin(call).await,
            "/state" => self.current(call).await,
            "/recover" => self.recover(call).await,
            "/end" => self.end(call).await,
            _ => Ok(error_response(&AppError::not_found(
                "No such session operation.",
            ))),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let Some(s) = self.load().await? else {
            return Response::empty();
        };
        let idle_for = now_ms() - s.last_seen;
        if idle_for >= IDLE_MS {
            self.forget().await?;
        } else {
            self.state
                .storage()
                .set_alarm(std::time::Duration::from_millis(
                    (IDLE_MS - idle_for) as u64,
                ))
                .await?;
        }
        Response::empty()
    }
}
