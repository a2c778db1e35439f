//! The children that serve 2026-07-28 requests: which era the server's SDK speaks (found
//! out once), and a bounded pool of children leased one request at a time.
//!
//! ## The era of the child
//! The first 2026-07-28 request starts a fresh child (never a warm spare: see
//! `Sessions::start_pooled`) and sends it `server/discover` with the per-request envelope
//! before anything else. An SDK that speaks
//! the new era answers with `supportedVersions` naming 2026-07-28: every request is then
//! passed through as it is (the child reads each request's `_meta` itself) and this first
//! child joins the pool. Anything else — a method-not-found error, an error of any kind,
//! no answer within [`DETECT_WAIT`] — means a handshake-era SDK, and the runner bridges:
//! every pooled child is initialized by the runner once (`Pool::bridge_initialize`) and
//! then serves stateless requests. The probed child becomes the first of them if it
//! answered (its SDK handled an unknown method, which changes no state); one that did not
//! answer is ended (a server that choked on a request before `initialize` is not trusted
//! to be in a clean state).
//!
//! ## Bound
//! At most [`Pool::size`] children (`CATWALK_STATELESS_POOL`, default 2) exist for this
//! era, idle or busy: a request holds a permit for as long as it holds its child, and a
//! child is only started when no idle one is left, so children never outnumber permits.
//! A request that finds every permit taken waits up to [`LEASE_WAIT`] for one, then gets
//! 503 + `Retry-After`. Pooled children also count against `CATWALK_MAX_SESSIONS` with
//! sessions and spares (each is a process with its memory), and idle ones are ended after
//! `CATWALK_IDLE_TIMEOUT_SECS` like idle sessions.
//!
//! ## Isolation on a pooled child (handshake-era servers)
//! A handshake-era server keeps per-connection state; a pooled child's connection is the
//! runner's, shared by every client whose requests it serves, one request at a time:
//! - negotiated once, by the runner: protocol version, client capabilities
//!   (`sampling`, `elicitation`; not `roots`, which many servers ask for unprompted at
//!   `initialized`, a question nobody would be there to answer) and client info
//!   (`catwalk-runner`). A request's own `_meta` client info is not seen by the server;
//!   its capabilities decide only whether the runner relays the server's questions (see
//!   [`crate::modern`]).
//! - never mixed: one request in flight per child; each request gets a runner id
//!   (`catwalk-runner/{n}`) so a late answer to a request whose client went away can never
//!   be taken for another client's; progress goes only to the stream of the request that
//!   asked for it.
//! - not relayed: what a bridged server sends outside the request in flight (log
//!   messages, list-changed notifications) reaches no client — the era has no GET stream —
//!   and waits in the child's bounded backlog until it is evicted;
//! - refused, because they would change the shared connection for later clients:
//!   `logging/setLevel`, `resources/subscribe`, `resources/unsubscribe` and `initialize`
//!   (none exists in 2026-07-28: the log level travels in `_meta`, subscriptions through
//!   `subscriptions/listen`).
//! - what may leak is what the server itself keeps in process memory across requests
//!   (caches, counters, a tool that stores what it was told). The same is true of any
//!   server that serves many clients over HTTP, which is what the 2026-07-28 era asks of
//!   servers; a deployment is one person's, reachable only with its token, so the clients
//!   sharing a pooled child are that person's own. Sessions of the handshake era keep
//!   their own child each, as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_wire::jsonrpc::{classify, Kind};
use mcp_wire::stateless::{self, DISCOVER};
use mcp_wire::version::STATELESS_VERSIONS;
use serde_json::{json, Value};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::session::{Session, Sessions, StartError};

/// How long the first child gets to answer `server/discover`; a handshake-era server may
/// not answer a request before `initialize` at all.
pub const DETECT_WAIT: Duration = Duration::from_secs(10);
/// How long a child gets to answer the runner's `initialize`.
pub const INIT_WAIT: Duration = Duration::from_secs(60);
/// How long a request waits for a free child before 503.
pub const LEASE_WAIT: Duration = Duration::from_secs(30);
/// The revision the runner negotiates with a bridged child.
pub const BRIDGE_VERSION: &str = "2025-11-25";

/// What the server's SDK speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28 itself: requests pass through.
    Stateless,
    /// Only the handshake: the runner bridges.
    Handshake,
}

/// Why no child could be leased.
pub enum PoolError {
    /// Every pooled child is busy and none came free in time.
    Busy,
    /// The start of a child was refused (limit, back-off, spawn).
    Start(StartError),
    /// The child did not complete the runner's `initialize`.
    Init(String),
}

pub struct Pool {
    sessions: Arc<Sessions>,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Arc<Session>>>,
    era: tokio::sync::OnceCell<Era>,
    /// The `initialize` result of a bridged child (what `server/discover` answers from).
    initialized: Mutex<Option<Value>>,
    next_id: AtomicU64,
    pub size: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A child held for one request (and, while it waits for a client's input, for that
/// request's continuation). Dropped, the child goes back to the pool if it is clean.
pub struct Lease {
    child: Arc<Session>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub fn child(&self) -> &Arc<Session> {
        &self.child
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.child.is_closed() {
            return;
        }
        if self.child.has_pending() {
            // Something is still owed to a request nobody waits for: never hand this child
            // to another client.
            self.child.terminate();
            self.pool.sessions.remove(&self.child.id);
            return;
        }
        lock(&self.pool.idle).push(self.child.clone());
    }
}

/// The `_meta` envelope of a request the runner itself sends in this era.
fn runner_envelope() -> Value {
    json!({
        stateless::META_PROTOCOL_VERSION: STATELESS_VERSIONS.last().copied().unwrap_or("2026-07-28"),
        stateless::META_CLIENT_CAPABILITIES: {},
        stateless::META_CLIENT_INFO: {"name": "catwalk-runner", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// Waits for the answer (a response) on an exchange's channel.
async fn answer(rx: &mut mpsc::UnboundedReceiver<Value>, within: Duration) -> Option<Value> {
    tokio::time::timeout(within, async {
        while let Some(m) = rx.recv().await {
            if matches!(classify(&m), Kind::Response { .. }) {
                return Some(m);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

impl Pool {
    pub fn new(sessions: Arc<Sessions>, size: usize) -> Arc<Self> {
        let size = size.max(1);
        Arc::new(Self {
            sessions,
            permits: Arc::new(Semaphore::new(size)),
            idle: Mutex::new(Vec::new()),
            era: tokio::sync::OnceCell::new(),
            initialized: Mutex::new(None),
            next_id: AtomicU64::new(1),
            size,
        })
    }

    /// A fresh id for a request the runner writes to a pooled child.
    pub fn next_id(&self) -> Value {
        Value::from(format!(
            "catwalk-runner/{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// The child's era, found out on first use (concurrent first requests share one probe).
    pub async fn era(self: &Arc<Self>) -> Result<Era, PoolError> {
        self.era.get_or_try_init(|| self.detect()).await.copied()
    }

    async fn detect(self: &Arc<Self>) -> Result<Era, PoolError> {
        let child = self
            .sessions
            .start_pooled(false)
            .await
            .map_err(PoolError::Start)?;
        let id = self.next_id();
        let probe = json!({"jsonrpc": "2.0", "id": id, "method": DISCOVER,
            "params": {"_meta": runner_envelope()}});
        let answered = match child.exchange(probe).await {
            Ok(mut rx) => answer(&mut rx, DETECT_WAIT).await,
            Err(_) => None,
        };
        child.forget(&id);
        let speaks_it = answered.as_ref().is_some_and(|a| {
            a.pointer("/result/supportedVersions")
                .and_then(Value::as_array)
                .is_some_and(|vs| {
                    vs.iter()
                        .any(|v| v.as_str().is_some_and(mcp_wire::version::is_stateless))
                })
        });
        let era = if speaks_it {
            Era::Stateless
        } else {
            Era::Handshake
        };
        // A child that answered (an error: its SDK handled the unknown method, which changes
        // no state) becomes the first pooled child, which spares the first request a
        // second start; one that did not answer is not trusted with anything more.
        let keep = match era {
            Era::Stateless => true,
            Era::Handshake => answered.is_some() && self.bridge_initialize(&child).await.is_ok(),
        };
        if keep {
            lock(&self.idle).push(child);
        } else {
            child.terminate();
            self.sessions.remove(&child.id);
        }
        self.sessions.ring.push(&format!(
            "2026-07-28 requests: the MCP server {}",
            match era {
                Era::Stateless => "speaks 2026-07-28; requests pass through",
                Era::Handshake => "speaks only the handshake era; bridged on pooled children",
            }
        ));
        Ok(era)
    }

    /// A child for one request: an idle one, else a new one (initialized by the runner
    /// when bridging), waiting up to `wait` for a permit.
    pub async fn lease(self: &Arc<Self>, wait: Duration) -> Result<Lease, PoolError> {
        let era = self.era().await?;
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PoolError::Busy)?
            .map_err(|_| PoolError::Busy)?;
        loop {
            let Some(child) = lock(&self.idle).pop() else {
                break;
            };
            if !child.is_closed() {
                child.touch();
                return Ok(self.hold(child, permit));
            }
        }
        let child = self
            .sessions
            .start_pooled(era == Era::Handshake)
            .await
            .map_err(|e| {
                if let StartError::Spawn(why) = &e {
                    self.sessions
                        .ring
                        .push(&format!("could not start a pooled child: {why}"));
                }
                PoolError::Start(e)
            })?;
        if era == Era::Handshake {
            if let Err(why) = self.bridge_initialize(&child).await {
                self.sessions
                    .ring
                    .push(&format!("a pooled child did not initialize: {why}"));
                child.terminate();
                self.sessions.remove(&child.id);
                return Err(PoolError::Init(why));
            }
        }
        Ok(self.hold(child, permit))
    }

    fn hold(self: &Arc<Self>, child: Arc<Session>, permit: OwnedSemaphorePermit) -> Lease {
        Lease {
            child,
            pool: self.clone(),
            _permit: permit,
        }
    }

    /// The runner's own handshake with a child it will bridge (see the module docs for
    /// what it declares and why).
    async fn bridge_initialize(&self, child: &Session) -> Result<(), String> {
        let id = self.next_id();
        let init = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": BRIDGE_VERSION,
            "capabilities": {"sampling": {}, "elicitation": {}},
            "clientInfo": {"name": "catwalk-runner", "version": env!("CARGO_PKG_VERSION")},
        }});
        let mut rx = child.exchange(init).await?;
        let Some(answer) = answer(&mut rx, INIT_WAIT).await else {
            child.forget(&id);
            return Err(format!(
                "no answer to initialize within {} s",
                INIT_WAIT.as_secs()
            ));
        };
        let Some(result) = answer.get("result") else {
            return Err("the MCP server answered initialize with an error".into());
        };
        *lock(&self.initialized) = Some(result.clone());
        child
            .write(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
    }

    /// The `initialize` result a bridged child gave, initializing one if none has yet.
    pub async fn initialize_result(self: &Arc<Self>) -> Result<Value, PoolError> {
        if let Some(r) = lock(&self.initialized).clone() {
            return Ok(r);
        }
        drop(self.lease(LEASE_WAIT).await?);
        lock(&self.initialized)
            .clone()
            .ok_or_else(|| PoolError::Init("no initialize result".into()))
    }

    /// The server's `serverInfo`, once a bridged child has said it.
    pub fn server_info(&self) -> Option<Value> {
        lock(&self.initialized)
            .as_ref()
            .and_then(|r| r.get("serverInfo").cloned())
    }
}
