//! `McpGateway`: one SQLite-backed Durable Object per deployment (binding `MCP_GATEWAYS`,
//! named by the deployment id) — the gateway's authority, so an MCP request costs the
//! Worker one object hop and no D1 read.
//!
//! In memory: the deployment's [`Authority`] (token digest, status, machine link with the
//! upstream secret opened), loaded from D1 when the object is cold, when a writer said it
//! changed (`/forget`: rotate, stop, start, restart, credentials, provisioning, reconcile,
//! delete — each before it answers), or when it is older than
//! [`authority::MAX_AGE_MS`]. Concurrent requests share one load. Never persisted here: D1
//! stays the source of truth, and the upstream secret is never written to this storage.
//!
//! Persisted (this object's storage, `s:{session}` keys): the handshake-era sessions
//! (`gateway::sessions`), kept in memory too; an evicted object reads them back on its
//! next request. Idle ones expire by alarm. When the runner lost a session (machine
//! restarted or auto-stopped), `/recover` re-initializes it once for all concurrent
//! callers. Streams never pass through here: the Worker fetches the machine itself.
//!
//! OAuth access tokens (`cwa_…`) are checked here too: a token's grant must be for this
//! deployment (its audience) and standing; a verified token is remembered in memory until
//! it expires or for [`authority::MAX_AGE_MS`], whichever is first, and forgotten with
//! everything else on `/forget` (which every revocation calls).
//!
//! Internal protocol (JSON over `fetch` from `proxy::gate`): `POST /pass` (→ a
//! [`Verdict`]), `/begin`, `/recover`, `/forget`; `/probe` serves the storage check.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{
    durable_object, DurableObject, Env, ListOptions, Method, Request, Response, Result, State,
};

use crate::crypto::keyring;
use crate::deploy::secrets::open_upstream;
use crate::deploy::state::Status;
use crate::error::AppError;
use crate::gateway::authority::{self, Authority, Verdict};
use crate::gateway::failure::Failure;
use crate::gateway::link::MachineLink;
use crate::gateway::rate::Bucket;
use crate::gateway::recovery::{self, Setback};
use crate::gateway::request::TokenSource;
use crate::gateway::sessions::{Session, Sessions};
use crate::oauth::secret;
use crate::platform::env;
use crate::platform::log::Logger;
use crate::platform::web::{error_response, json_text};
use crate::store::deployments as store;
use crate::time::now_ms;

const PROBE_COUNT_KEY: &str = "probe_count";
const SESSION_PREFIX: &str = "s:";
/// At most one `mcp.auth_failed` audit row per deployment per this long.
const AUTH_AUDIT_EVERY_MS: i64 = 60_000;

#[derive(Deserialize)]
struct Call {
    deployment_id: String,
    /// `/pass`: the presented access token and where it was found.
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_in: Option<TokenSource>,
    /// Our session id, when the request names one.
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    version: Option<String>,
    /// `/pass` for a DELETE: the session ends (the answer still carries its runner id).
    #[serde(default)]
    end: bool,
    /// `/begin`: the runner's session and the client's `initialize` (JSON text).
    #[serde(default)]
    upstream_session: Option<String>,
    #[serde(default)]
    initialize: Option<String>,
    /// `/recover`: the runner session the caller found gone.
    #[serde(default)]
    stale: Option<String>,
    /// `/forget`: the deployment is gone; drop its sessions too.
    #[serde(default)]
    drop_sessions: bool,
}

type Loaded = std::result::Result<Option<Rc<Authority>>, String>;
type Load = Shared<LocalBoxFuture<'static, Loaded>>;
type Recovery = Shared<LocalBoxFuture<'static, std::result::Result<String, String>>>;

#[durable_object]
pub struct McpGateway {
    state: State,
    env: Env,
    /// The authority and when it was loaded; `Some((None, _))` remembers "no such row".
    authority: RefCell<Option<(Option<Rc<Authority>>, i64)>>,
    /// A load in flight and the generation it started in.
    loading: RefCell<Option<(u64, Load)>>,
    /// Bumped by every `/forget`, so a load that raced a writer is not kept.
    generation: Cell<u64>,
    sessions: RefCell<Option<Sessions>>,
    /// Per session: the stale runner id being recovered and the shared recovery.
    recovering: RefCell<HashMap<String, (String, Recovery)>>,
    last_auth_audit: Cell<i64>,
    bucket: RefCell<Bucket>,
    /// Verified OAuth access tokens: digest → valid until (ms).
    oauth: RefCell<HashMap<String, i64>>,
}

/// At most this many verified OAuth tokens are remembered; past it the memory starts over.
const MAX_OAUTH_REMEMBERED: usize = 1_000;

fn answer(status: u16, body: Value) -> Result<Response> {
    json_text(status, body.to_string(), None)
}

fn verdict(v: &Verdict) -> Result<Response> {
    answer(200, json!(v))
}

fn bad(message: &str) -> Result<Response> {
    Ok(error_response(&AppError::bad_request(
        "invalid_body",
        message,
    )))
}

/// Reads the deployment's gateway row from D1 and opens its upstream secret.
async fn load(env: Env, id: String) -> Loaded {
    let db = env::db(&env).map_err(|e| e.log_detail().unwrap_or_else(|| e.code().to_string()))?;
    let Some(row) = store::for_gateway(&db, &id)
        .await
        .map_err(|e| e.log_detail().unwrap_or_else(|| e.code().to_string()))?
    else {
        return Ok(None);
    };
    let config = env::config(&env);
    let link = match row.machine_id.clone() {
        None => Err(Failure::Deploying),
        Some(machine_id) => keyring::required(config.encryption_keys.as_ref())
            .ok()
            .zip(row.upstream_sealed())
            .and_then(|(ring, sealed)| open_upstream(ring, &id, &sealed).ok())
            .map(|secret| MachineLink {
                url: row.config.ingress_url(&config),
                machine_id,
                secret,
            })
            .ok_or(Failure::Internal),
    };
    Ok(Some(Rc::new(Authority {
        owner_id: row.owner_id,
        // An unknown status never reads (the row is an error above), so is never served.
        status: row.status,
        token_digest: row.access_token_hash,
        link,
    })))
}

impl McpGateway {
    /// The cached authority, or one shared load of it.
    async fn authority(&self, id: &str) -> Loaded {
        for _ in 0..3 {
            if let Some((a, at)) = self.authority.borrow().as_ref() {
                if now_ms() - at < authority::MAX_AGE_MS {
                    return Ok(a.clone());
                }
            }
            let generation = self.generation.get();
            let pending = self
                .loading
                .borrow()
                .as_ref()
                .filter(|(g, _)| *g == generation)
                .map(|(_, f)| f.clone());
            let fut = match pending {
                Some(f) => f,
                None => {
                    let f = load(self.env.clone(), id.to_string())
                        .boxed_local()
                        .shared();
                    *self.loading.borrow_mut() = Some((generation, f.clone()));
                    f
                }
            };
            let loaded = fut.await;
            if matches!(self.loading.borrow().as_ref(), Some((g, _)) if *g == generation) {
                self.loading.borrow_mut().take();
            }
            if self.generation.get() != generation {
                // A writer changed the deployment while we read it: read again.
                continue;
            }
            if let Ok(a) = &loaded {
                *self.authority.borrow_mut() = Some((a.clone(), now_ms()));
            }
            return loaded;
        }
        Err("the deployment kept changing while it was read".into())
    }

    async fn sessions_loaded(&self) -> Result<()> {
        if self.sessions.borrow().is_some() {
            return Ok(());
        }
        let map = self
            .state
            .storage()
            .list_with_options(ListOptions::new().prefix(SESSION_PREFIX))
            .await?;
        let mut stored = Vec::new();
        for entry in map.entries() {
            let Ok(pair) = entry else { continue };
            let pair = worker::js_sys::Array::from(&pair);
            let (Some(key), Some(text)) = (pair.get(0).as_string(), pair.get(1).as_string()) else {
                continue;
            };
            if let (Some(id), Ok(s)) = (
                key.strip_prefix(SESSION_PREFIX),
                serde_json::from_str::<Session>(&text),
            ) {
                stored.push((id.to_string(), s));
            }
        }
        // Another request may have loaded (and begun sessions) while we listed.
        if self.sessions.borrow().is_none() {
            *self.sessions.borrow_mut() = Some(Sessions::from_stored(stored));
        }
        Ok(())
    }

    async fn persist(&self, id: &str) -> Result<()> {
        let text = self
            .sessions
            .borrow()
            .as_ref()
            .and_then(|t| t.get(id))
            .and_then(|s| serde_json::to_string(s).ok());
        let key = format!("{SESSION_PREFIX}{id}");
        match text {
            Some(t) => self.state.storage().put(&key, t).await,
            None => self.state.storage().delete(&key).await.map(|_| ()),
        }
    }

    async fn pass(&self, call: Call) -> Result<Response> {
        let authority = match self.authority(&call.deployment_id).await {
            Ok(Some(a)) => a,
            Ok(None) => return verdict(&Verdict::NotFound),
            Err(why) => {
                self.logger().error(
                    "gateway_load_failed",
                    json!({ "deployment": call.deployment_id, "detail": why }),
                );
                return verdict(&Verdict::Refused {
                    failure: Failure::Internal,
                });
            }
        };
        let presented = call.token.as_deref().unwrap_or_default();
        let v = if !secret::well_formed(secret::ACCESS_PREFIX, presented) {
            authority.judge(presented)
        } else if call.token_in != Some(TokenSource::Bearer) {
            // OAuth tokens ride in `Authorization: Bearer` only (RFC 6750 §2.1; the metadata
            // says `bearer_methods_supported: ["header"]`): never in a URL that gets logged.
            Verdict::Unauthorized
        } else {
            match self.oauth_access(&call.deployment_id, presented).await {
                Ok(true) => authority.admit(),
                Ok(false) => Verdict::Unauthorized,
                Err(why) => {
                    self.logger().error(
                        "gateway_oauth_check_failed",
                        json!({ "deployment": call.deployment_id, "detail": why }),
                    );
                    Verdict::Refused {
                        failure: Failure::Internal,
                    }
                }
            }
        };
        match &v {
            Verdict::Unauthorized => self.audit_auth_failure(&authority, &call),
            // Whatever its status, an authenticated request spends the rate allowance.
            Verdict::Pass { .. } | Verdict::Refused { .. } => {
                if let Err(retry_after_secs) = self.bucket.borrow_mut().take(now_ms()) {
                    return verdict(&Verdict::Limited { retry_after_secs });
                }
            }
            _ => {}
        }
        let Verdict::Pass { link, .. } = v else {
            return verdict(&v);
        };
        let Some(ours) = call.session.as_deref() else {
            return verdict(&Verdict::Pass {
                link,
                upstream_session: None,
            });
        };
        self.sessions_loaded().await?;
        let now = now_ms();
        let found = if call.end {
            self.sessions
                .borrow_mut()
                .as_mut()
                .and_then(|t| t.end(ours))
                .map(|s| (s.upstream_session, true))
        } else {
            self.sessions
                .borrow_mut()
                .as_mut()
                .and_then(|t| t.touch(ours, call.version.as_deref(), now))
                .map(|f| (f.upstream_session, f.persist))
        };
        let Some((upstream, persist)) = found else {
            return verdict(&Verdict::Refused {
                failure: Failure::UnknownSession,
            });
        };
        if persist {
            self.persist(ours).await?;
        }
        verdict(&Verdict::Pass {
            link,
            upstream_session: Some(upstream),
        })
    }

    async fn begin(&self, call: Call) -> Result<Response> {
        let (Some(ours), Some(upstream), Some(initialize)) =
            (call.session, call.upstream_session, call.initialize)
        else {
            return bad("begin needs our session, the upstream session and initialize.");
        };
        self.sessions_loaded().await?;
        let session = Session::new(upstream, call.version, initialize, now_ms());
        let evicted = self
            .sessions
            .borrow_mut()
            .as_mut()
            .and_then(|t| t.begin(ours.clone(), session));
        self.persist(&ours).await?;
        if let Some(old) = evicted {
            self.persist(&old).await?;
        }
        if self.state.storage().get_alarm().await?.is_none() {
            self.state
                .storage()
                .set_alarm(std::time::Duration::from_millis(
                    crate::gateway::sessions::IDLE_MS as u64,
                ))
                .await?;
        }
        answer(200, json!({ "ok": true }))
    }

    async fn recover(&self, call: Call) -> Result<Response> {
        let (Some(ours), Some(stale)) = (call.session, call.stale) else {
            return bad("recover needs our session and the stale upstream session.");
        };
        let link = match self.authority(&call.deployment_id).await {
            Ok(Some(a)) => match &a.link {
                Ok(l) if a.status == Status::Running => l.clone(),
                _ => return answer(404, json!({ "error": { "code": "not_running" } })),
            },
            _ => return answer(404, json!({ "error": { "code": "not_found" } })),
        };
        self.sessions_loaded().await?;
        let Some(s) = self
            .sessions
            .borrow()
            .as_ref()
            .and_then(|t| t.get(&ours).cloned())
        else {
            return Ok(error_response(&AppError::not_found("No such session.")));
        };
        // Someone already recovered past the id the caller saw: use theirs.
        if s.upstream_session != stale {
            return answer(200, json!({ "upstream_session": s.upstream_session }));
        }
        let existing = self
            .recovering
            .borrow()
            .get(&ours)
            .filter(|(st, _)| *st == stale)
            .map(|(_, f)| f.clone());
        let fut = match existing {
            Some(f) => f,
            None => {
                // Registered before the first await, so concurrent callers share one run.
                let f = reinitialize(link, s.initialize.clone(), s.version.clone())
                    .boxed_local()
                    .shared();
                self.recovering
                    .borrow_mut()
                    .insert(ours.clone(), (stale.clone(), f.clone()));
                f
            }
        };
        let outcome = fut.await;
        self.recovering.borrow_mut().remove(&ours);
        match outcome {
            Ok(fresh) => {
                let current = self
                    .sessions
                    .borrow_mut()
                    .as_mut()
                    .and_then(|t| t.recovered(&ours, &stale, &fresh, now_ms()));
                self.persist(&ours).await?;
                let current = current.unwrap_or(fresh);
                answer(200, json!({ "upstream_session": current }))
            }
            Err(why) => {
                self.logger().warn(
                    "session_recovery_failed",
                    json!({ "deployment_id": call.deployment_id, "why": why }),
                );
                answer(
                    502,
                    json!({ "error": { "code": "recovery_failed", "message": why } }),
                )
            }
        }
    }

    /// Whether an OAuth access token is live and granted for this deployment: from
    /// memory, or one D1 read (which also marks the grant used, after the answer).
    async fn oauth_access(
        &self,
        deployment_id: &str,
        token: &str,
    ) -> std::result::Result<bool, String> {
        let digest = secret::digest(token);
        let now = now_ms();
        if self
            .oauth
            .borrow()
            .get(&digest)
            .is_some_and(|until| *until > now)
        {
            return Ok(true);
        }
        let generation = self.generation.get();
        let db = env::db(&self.env).map_err(|e| e.code().to_string())?;
        let found = crate::store::oauth::access(&db, &digest, deployment_id, now)
            .await
            .map_err(|e| e.log_detail().unwrap_or_else(|| e.code().to_string()))?;
        let Some(access) = found else {
            return Ok(false);
        };
        // A revocation that raced this read must win: remember only if nothing changed.
        if self.generation.get() == generation {
            let mut known = self.oauth.borrow_mut();
            if known.len() >= MAX_OAUTH_REMEMBERED {
                known.clear();
            }
            known.insert(digest, access.expires_at.min(now + authority::MAX_AGE_MS));
        }
        self.state.wait_until(async move {
            let _ = crate::store::oauth::touch(&db, &access.grant_id, now_ms()).await;
        });
        Ok(true)
    }

    async fn forget(&self, call: Call) -> Result<Response> {
        self.generation.set(self.generation.get() + 1);
        self.authority.borrow_mut().take();
        self.oauth.borrow_mut().clear();
        if call.drop_sessions {
            *self.sessions.borrow_mut() = Some(Sessions::default());
            self.recovering.borrow_mut().clear();
            self.state.storage().delete_all().await?;
        }
        answer(200, json!({ "forgotten": true }))
    }

    fn logger(&self) -> Logger {
        Logger::background(&env::config(&self.env))
    }

    /// One `mcp.auth_failed` row per deployment per minute, for its owner, after the
    /// answer (never delaying the 401).
    fn audit_auth_failure(&self, authority: &Authority, call: &Call) {
        let now = now_ms();
        if now - self.last_auth_audit.get() < AUTH_AUDIT_EVERY_MS {
            return;
        }
        self.last_auth_audit.set(now);
        let Ok(db) = env::db(&self.env) else { return };
        let log = self.logger();
        let owner = authority.owner_id.clone();
        let id = call.deployment_id.clone();
        let token_in = call
            .token_in
            .map(|s| format!("{s:?}").to_lowercase())
            .unwrap_or_default();
        self.state.wait_until(async move {
            crate::store::audit::deployment(
                &db,
                &log,
                &owner,
                "mcp.auth_failed",
                &id,
                json!({ "token_in": token_in }),
            )
            .await;
        });
    }
}

/// A new upstream session from the stored `initialize`, tried again once when the fresh
/// child was lost before the handshake finished (see [`recovery`]).
async fn reinitialize(
    link: MachineLink,
    initialize: String,
    version: Option<String>,
) -> std::result::Result<String, String> {
    let mut said: Vec<String> = Vec::new();
    loop {
        match handshake(&link, &initialize, version.as_deref()).await {
            Ok(session) => return Ok(session),
            Err(s) => {
                let again = s.worth_retrying() && said.len() + 1 < recovery::TRIES;
                said.push(s.into_message());
                if !again {
                    // Every try's reason, in order: the log shows why the retry failed too.
                    return Err(said.join("; then "));
                }
            }
        }
    }
}

/// The request, then the `notifications/initialized` the protocol requires before
/// anything else.
async fn handshake(
    link: &MachineLink,
    initialize: &str,
    version: Option<&str>,
) -> std::result::Result<String, Setback> {
    use mcp_wire::version::{HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID};
    let unreachable = |f: Failure| Setback::Refused(f.message().to_string());
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "accept".to_string(),
            "application/json, text/event-stream".to_string(),
        ),
    ];
    let mut resp = link
        .send(Method::Post, &headers, Some(initialize.as_bytes()), None)
        .await
        .map_err(unreachable)?;
    let status = resp.status_code();
    let body = resp.text().await.unwrap_or_default();
    if status != 200 {
        return Err(recovery::initialize_refused(status, &body));
    }
    let session = resp
        .headers()
        .get(HEADER_SESSION_ID)
        .ok()
        .flatten()
        .filter(|s| mcp_wire::session::is_valid(s))
        .ok_or_else(|| Setback::Refused("re-initialize gave no session id".to_string()))?;
    recovery::initialize_answer(&body)?;
    if let Some(v) = version {
        headers.push((HEADER_PROTOCOL_VERSION.to_string(), v.to_string()));
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
        .map_err(unreachable)?;
    recovery::notification_answer(ack.status_code())?;
    Ok(session)
}

impl DurableObject for McpGateway {
    fn new(state: State, env: Env) -> Self {
        Self {
            bucket: RefCell::new(Bucket::new(
                env::config(&env).limits.mcp_requests_per_minute,
                now_ms(),
            )),
            state,
            env,
            authority: RefCell::new(None),
            loading: RefCell::new(None),
            generation: Cell::new(0),
            sessions: RefCell::new(None),
            recovering: RefCell::new(HashMap::new()),
            last_auth_audit: Cell::new(0),
            oauth: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        if req.method() != Method::Post {
            return Ok(error_response(&AppError::not_found(
                "No such gateway operation.",
            )));
        }
        if path == "/probe" {
            let storage = self.state.storage();
            let count = storage.get::<u64>(PROBE_COUNT_KEY).await?.unwrap_or(0) + 1;
            storage.put(PROBE_COUNT_KEY, count).await?;
            return Response::from_json(&json!({ "count": count }));
        }
        // Text, then serde_json: the `worker` crate's `json()` walks a JS object field by
        // field across the wasm boundary, measurable on the hot path.
        let Some(call) = req
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str::<Call>(&t).ok())
        else {
            return bad("Not a gateway call.");
        };
        if !crate::http::route::deployment_id_ok(&call.deployment_id) {
            return bad("Not a deployment id.");
        }
        match path.as_str() {
            "/pass" => self.pass(call).await,
            "/begin" => self.begin(call).await,
            "/recover" => self.recover(call).await,
            "/forget" => self.forget(call).await,
            _ => Ok(error_response(&AppError::not_found(
                "No such gateway operation.",
            ))),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.sessions_loaded().await?;
        let (expired, next) = self
            .sessions
            .borrow_mut()
            .as_mut()
            .map(|t| t.sweep(now_ms()))
            .unwrap_or_default();
        for id in expired {
            self.persist(&id).await?;
        }
        if let Some(at) = next {
            let wait = (at - now_ms()).max(1_000) as u64;
            self.state
                .storage()
                .set_alarm(std::time::Duration::from_millis(wait))
                .await?;
        }
        Response::empty()
    }
}
