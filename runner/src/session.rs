//! One MCP session = one child process speaking MCP over stdio (a stdio server serves one
//! client; sharing it would leak state between users). This module owns the session table
//! and the routing of every message:
//! - a client request is written to the child's stdin after its id (and progress token)
//!   is registered to the stream of the POST that carried it;
//! - the child's response goes to exactly that stream, which ends once every request it
//!   carried has been answered;
//! - `notifications/progress` goes to the stream of the request that asked for it;
//! - server-initiated requests (sampling, elicitation, roots) go to the GET stream, else to
//!   the newest open request stream (they block the call in flight), else wait in a bounded
//!   backlog for the next GET stream; other notifications go to the GET stream or the
//!   backlog;
//! - client responses to server requests are written back to the child.
//!
//! Every SSE event is numbered `{stream}-{seq}` and kept in a per-session replay buffer
//! bounded by events and bytes, so a client that lost a stream resumes it with
//! `Last-Event-ID` and gets only that stream's missed events (a dropped connection is not
//! a cancellation). The backlog is bounded the same way (see [`crate::bounded`]).
//!
//! ## Warm spares
//! Starting an MCP server is the slow part of a new session (node or python loading the
//! package: hundreds of milliseconds, more under `npx` / `uvx`). Once the runner is ready
//! (see [`crate::ready`]) the table keeps [`Limits::spares`] children *spawned but not
//! initialized*. Each is sent one `ping` with the runner-reserved id [`SPARE_PING_ID`]
//! right after it starts — the MCP specification allows `ping` before `initialize`, and the
//! TypeScript SDK (`server-everything`) and Python SDK (`mcp-server-time`) servers answer
//! it — and is counted as loaded ("proven") once it answers.
//!
//! A client's `initialize` takes a spare (a proven one first, else the oldest) instead of
//! spawning; its `initialize` is then written to that child unchanged, exactly as it would
//! be to a fresh one. Why the semantics are preserved:
//! - the child has received nothing but a `ping`, which changes no MCP state: protocol
//!   version, client capabilities and client info are negotiated by the client's own
//!   `initialize`, never by the runner (a pre-initialized child would have fixed them);
//! - the ping's answer never reaches a client: it is recognised by its id while it is
//!   outstanding and dropped, also when it arrives after the hand-over; a client request
//!   reusing that id meanwhile is refused like any id already in flight;
//! - anything else the child printed before the hand-over (a log notification) waits in
//!   the session's backlog, as it would for a child started on demand;
//! - the session id is the spare's, minted when it was spawned and used for its log tag.
//!
//! A new spare is started in the background once the taken one has sent its first answer
//! (the `initialize` result; at most [`REFILL_AFTER`] later), so that loading it does not
//! compete for CPU with the handshake it is meant to speed up. Spares count against
//! [`Limits::max_sessions`] (each is a process with its memory): a spare is only started
//! while sessions + spares stay under the limit, and a client always takes a spare before
//! a new child is started, so the limit on clients is unchanged. A spare that exits on its
//! own counts as an early crash, so a server that cannot stay up is backed off instead of
//! respawned in a loop (see [`crate::crashes`]). With no spare at hand (`CATWALK_SPARES=0`,
//! a burst, back-off) a fresh child is started as before.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mcp_wire::jsonrpc::{self, classify, id_key, Kind};
use mcp_wire::sse::{self, Event};
use mcp_wire::version;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::bounded::Bounded;
use crate::crashes::Crashes;
use crate::launch::ChildUser;
use crate::lines::{read_capped_line, STDERR_LINE_BYTES};
use crate::ring::LogRing;

/// Longest stdout line (one JSON-RPC message) accepted from a child.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Server→client messages kept for a GET stream that is not open yet (also bounded by
/// [`Limits::replay_bytes`]).
const BACKLOG_CAP: usize = 256;
/// Finished streams remembered for resumption.
const DONE_STREAMS_CAP: usize = 64;
/// How long a child gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// The id of the runner's own `ping` to a warm spare (see the module docs).
pub const SPARE_PING_ID: &str = "catwalk-runner/spare-ping";
/// A taken spare is replaced once its session answered, or after this long at most.
pub const REFILL_AFTER: Duration = Duration::from_secs(5);
/// How long a client at the session limit waits for a spare that is being spawned.
const SPARE_SPAWN_WAIT: Duration = Duration::from_millis(5);
const SPARE_SPAWN_WAIT_TRIES: u32 = 40;

/// What the table needs to know to start and bound sessions.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    pub replay_events: usize,
    /// Bytes of SSE frames kept for replay, and (separately) of messages in the backlog.
    pub replay_bytes: usize,
    pub idle_timeout: Duration,
    /// Warm spares kept once ready (0: none); they count against `max_sessions`.
    pub spares: usize,
}

/// How a POST's answers are delivered.
pub enum Sink {
    Sse(mpsc::UnboundedSender<Bytes>),
    Json(Option<oneshot::Sender<Value>>),
    /// Messages as they are, for the 2026-07-28 bridge (see [`crate::modern`]), which
    /// reshapes them before any client sees them.
    Raw(mpsc::UnboundedSender<Value>),
}

struct Slot {
    sink: Option<Sink>,
    next_seq: u64,
    outstanding: usize,
    done: bool,
}

struct Stored {
    stream: u64,
    seq: u64,
    frame: Bytes,
}

struct State {
    slots: HashMap<u64, Slot>,
    /// Request id key → (stream, the id as the client sent it).
    pending: HashMap<String, (u64, Value)>,
    progress: HashMap<String, u64>,
    get_stream: Option<u64>,
    next_stream: u64,
    replay: Bounded<Stored>,
    backlog: Bounded<Value>,
    done_order: VecDeque<u64>,
}

impl State {
    fn new(limits: &Limits) -> Self {
        Self {
            slots: HashMap::new(),
            pending: HashMap::new(),
            progress: HashMap::new(),
            get_stream: None,
            next_stream: 0,
            replay: Bounded::new(limits.replay_events, limits.replay_bytes),
            backlog: Bounded::new(BACKLOG_CAP, limits.replay_bytes),
            done_order: VecDeque::new(),
        }
    }
}

pub struct Session {
    pub id: String,
    version: Mutex<String>,
    /// Written directly by the request handler: a writer task would add a hop per call.
    stdin: tokio::sync::Mutex<Option<tokio::process::ChildStdin>>,
    state: Mutex<State>,
    last_active: Mutex<Instant>,
    pgid: Option<i32>,
    closed: AtomicBool,
    /// The runner's `ping` to this child while it is a warm spare, until answered.
    ping: Mutex<Option<Ping>>,
    /// The spare answered its ping: the server is loaded.
    proven: AtomicBool,
    /// The child has answered something (its ping, a client's request): it started, so
    /// its exit, however soon, is no crash at start.
    answered: AtomicBool,
    /// Fired by the first answer to a client request (see [`Sessions::start`]).
    first_answer: Mutex<Option<oneshot::Sender<()>>>,
}

/// An outstanding runner `ping`: its id key and when it was sent.
struct Ping {
    key: String,
    sent: Instant,
}

/// Outcome of a client POST.
pub enum Posted {
    /// Only notifications/responses: 202.
    Accepted,
    Stream(mpsc::UnboundedReceiver<Bytes>),
    Json(oneshot::Receiver<Value>),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn encode(stream: u64, seq: u64, data: &str) -> Bytes {
    Bytes::from(sse::encode(&Event {
        id: Some(format!("{stream}-{seq}")),
        event: Some("message".into()),
        data: data.to_string(),
        retry: None,
    }))
}

pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (s, q) = id.split_once('-')?;
    Some((s.parse().ok()?, q.parse().ok()?))
}

impl Session {
    pub fn version(&self) -> String {
        lock(&self.version).clone()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn touch(&self) {
        *lock(&self.last_active) = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        lock(&self.last_active).elapsed()
    }

    pub fn has_pending(&self) -> bool {
        !lock(&self.state).pending.is_empty()
    }

    /// A warm spare that answered the runner's ping.
    pub fn is_proven(&self) -> bool {
        self.proven.load(Ordering::SeqCst)
    }

    fn priming(&self) -> bool {
        version::at_least(&self.version(), version::PRIMING_SINCE)
    }

    fn new_slot(&self, st: &mut State, sink: Sink, outstanding: usize) -> u64 {
        st.next_stream += 1;
        let id = st.next_stream;
        let slot = Slot {
            sink: Some(sink),
            next_seq: 1,
            outstanding,
            done: false,
        };
        // 2025-11-25: an event id with empty data at once, so a client can resume even if
        // the connection drops before the first real event.
        if self.priming() {
            if let Some(Sink::Sse(tx)) = &slot.sink {
                let _ = tx.send(encode(id, 0, ""));
            }
        }
        st.slots.insert(id, slot);
        id
    }

    fn deliver(&self, st: &mut State, stream: u64, msg: &Value) {
        let Some(slot) = st.slots.get_mut(&stream) else {
            return;
        };
        match &mut slot.sink {
            Some(Sink::Json(tx)) => {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(msg.clone());
                }
            }
            Some(Sink::Raw(tx)) => {
                if tx.send(msg.clone()).is_err() {
                    slot.sink = None;
                }
            }
            sink => {
                let seq = slot.next_seq;
                slot.next_seq += 1;
                let frame = encode(stream, seq, &msg.to_string());
                if let Some(Sink::Sse(tx)) = sink {
                    if tx.send(frame.clone()).is_err() {
                        *sink = None;
                    }
                }
                let size = frame.len();
                st.replay.push(Stored { stream, seq, frame }, size);
            }
        }
    }

    fn finish(&self, st: &mut State, stream: u64) {
        if let Some(slot) = st.slots.get_mut(&stream) {
            slot.done = true;
            slot.sink = None;
            st.progress.retain(|_, s| *s != stream);
            st.done_order.push_back(stream);
            while st.done_order.len() > DONE_STREAMS_CAP {
                if let Some(old) = st.done_order.pop_front() {
                    st.slots.remove(&old);
                }
            }
        }
    }

    fn live(st: &State, stream: u64) -> bool {
        st.slots
            .get(&stream)
            .is_some_and(|s| s.sink.is_some() && !s.done)
    }

    /// Routes one message from the child. Returns how long the answer took when the
    /// message was the answer to the runner's own ping (which goes to no client).
    pub fn from_server(&self, msg: Value) -> Option<Duration> {
        if let Kind::Response { id } = classify(&msg) {
            self.answered.store(true, Ordering::SeqCst);
            let mut ping = lock(&self.ping);
            if ping.as_ref().is_some_and(|p| p.key == id_key(&id)) {
                self.proven.store(true, Ordering::SeqCst);
                return ping.take().map(|p| p.sent.elapsed());
            }
        }
        let mut st = lock(&self.state);
        match classify(&msg) {
            Kind::Response { id } => {
                let (stream, _) = st.pending.remove(&id_key(&id))?;
                if let Some(first) = lock(&self.first_answer).take() {
                    let _ = first.send(());
                }
                if let Some(v) = msg
                    .pointer("/result/protocolVersion")
                    .and_then(Value::as_str)
                {
                    *lock(&self.version) = v.to_string();
                }
                self.deliver(&mut st, stream, &msg);
                let finished = match st.slots.get_mut(&stream) {
                    Some(slot) => {
                        slot.outstanding = slot.outstanding.saturating_sub(1);
                        slot.outstanding == 0
                    }
                    None => false,
                };
                if finished {
                    self.finish(&mut st, stream);
                }
            }
            Kind::Notification { method } if method == "notifications/progress" => {
                let target = msg
                    .pointer("/params/progressToken")
                    .and_then(|t| st.progress.get(&id_key(t)).copied())
                    .filter(|s| st.slots.contains_key(s));
                match target {
                    Some(stream) => self.deliver(&mut st, stream, &msg),
                    None => self.to_client_unrelated(&mut st, msg, false),
                }
            }
            Kind::Notification { .. } => self.to_client_unrelated(&mut st, msg, false),
            Kind::Request { .. } => self.to_client_unrelated(&mut st, msg, true),
            Kind::Invalid => {}
        }
        None
    }

    /// A server request blocks the call in flight until answered, so without a GET stream it
    /// rides the newest open request stream; a notification waits for the GET stream.
    fn to_client_unrelated(&self, st: &mut State, msg: Value, is_request: bool) {
        let target = st.get_stream.filter(|s| Self::live(st, *s)).or_else(|| {
            if !is_request {
                return None;
            }
            st.slots
                .iter()
                .filter(|(id, s)| {
                    matches!(s.sink, Some(Sink::Sse(_)) | Some(Sink::Raw(_)))
                        && !s.done
                        && Some(**id) != st.get_stream
                })
                .map(|(id, _)| *id)
                .max()
        });
        match target {
            Some(stream) => self.deliver(st, stream, &msg),
            None => {
                let size = msg.to_string().len();
                st.backlog.push(msg, size);
            }
        }
    }

    /// Handles a client POST of one or more messages (all already classified valid).
    pub async fn post(&self, messages: Vec<Value>, sse: bool) -> Result<Posted, String> {
        self.touch();
        let requests: Vec<(Value, Option<Value>)> = messages
            .iter()
            .filter_map(|m| match classify(m) {
                Kind::Request { id, .. } => Some((id, jsonrpc::progress_token(m).cloned())),
                _ => None,
            })
            .collect();
        let reserved = lock(&self.ping)
            .as_ref()
            .is_some_and(|p| requests.iter().any(|(id, _)| id_key(id) == p.key));
        if reserved {
            return Err("a request with this id is already in flight".into());
        }
        let posted = if requests.is_empty() {
            Posted::Accepted
        } else {
            let mut st = lock(&self.state);
            if requests
                .iter()
                .any(|(id, _)| st.pending.contains_key(&id_key(id)))
            {
                return Err("a request with this id is already in flight".into());
            }
            let (sink, posted) = if sse {
                let (tx, rx) = mpsc::unbounded_channel();
                (Sink::Sse(tx), Posted::Stream(rx))
            } else {
                let (tx, rx) = oneshot::channel();
                (Sink::Json(Some(tx)), Posted::Json(rx))
            };
            let stream = self.new_slot(&mut st, sink, requests.len());
            for (id, token) in &requests {
                st.pending.insert(id_key(id), (stream, id.clone()));
                if let Some(t) = token {
                    st.progress.insert(id_key(t), stream);
                }
            }
            posted
        };
        let mut buf = Vec::new();
        for m in &messages {
            serde_json::to_writer(&mut buf, m).map_err(|e| e.to_string())?;
            buf.push(b'\n');
        }
        self.write_lines(&buf).await?;
        Ok(posted)
    }

    /// Opens the GET stream, or resumes a stream after `last_event_id`.
    pub fn get(&self, last_event_id: Option<&str>) -> mpsc::UnboundedReceiver<Bytes> {
        self.touch();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = lock(&self.state);
        if let Some((stream, seq)) = last_event_id.and_then(parse_event_id) {
            if st.slots.contains_key(&stream) {
                for ev in st
                    .replay
                    .iter()
                    .filter(|e| e.stream == stream && e.seq > seq)
                {
                    let _ = tx.send(ev.frame.clone());
                }
                if let Some(slot) = st.slots.get_mut(&stream) {
                    if !slot.done && !matches!(slot.sink, Some(Sink::Json(_))) {
                        slot.sink = Some(Sink::Sse(tx));
                    }
                }
                return rx;
            }
        }
        if let Some(old) = st.get_stream.take() {
            self.finish(&mut st, old);
        }
        let stream = self.new_slot(&mut st, Sink::Sse(tx), 0);
        st.get_stream = Some(stream);
        let backlog = st.backlog.take_all();
        for msg in backlog {
            self.deliver(&mut st, stream, &msg);
        }
        rx
    }

    /// Sends one request whose answer, and everything the child relates to it (progress,
    /// its own requests while no GET stream is open, which a pooled child never has), comes
    /// back unencoded on the returned channel. For the 2026-07-28 bridge.
    pub async fn exchange(&self, request: Value) -> Result<mpsc::UnboundedReceiver<Value>, String> {
        self.touch();
        let (id, token) = match classify(&request) {
            Kind::Request { id, .. } => (id, jsonrpc::progress_token(&request).cloned()),
            _ => return Err("not a request".into()),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut st = lock(&self.state);
            if st.pending.contains_key(&id_key(&id)) {
                return Err("a request with this id is already in flight".into());
            }
            let stream = self.new_slot(&mut st, Sink::Raw(tx), 1);
            st.pending.insert(id_key(&id), (stream, id));
            if let Some(t) = token {
                st.progress.insert(id_key(&t), stream);
            }
        }
        self.write(&request).await?;
        Ok(rx)
    }

    /// Writes one message (a response to the child's request, a notification) to the child.
    pub async fn write(&self, msg: &Value) -> Result<(), String> {
        let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.write_lines(&line).await
    }

    /// Writes newline-terminated messages to the child's stdin in one write; a failed
    /// write closes our end (the child has exited).
    async fn write_lines(&self, lines: &[u8]) -> Result<(), String> {
        let mut stdin = self.stdin.lock().await;
        let written = match stdin.as_mut() {
            Some(pipe) => pipe.write_all(lines).await.is_ok() && pipe.flush().await.is_ok(),
            None => false,
        };
        if !written {
            *stdin = None;
            return Err("the MCP server has exited".to_string());
        }
        Ok(())
    }

    /// Stops waiting for the answer to `id` (its client went away): a late answer is then
    /// dropped, and nothing of that request is left to route.
    pub fn forget(&self, id: &Value) {
        let mut st = lock(&self.state);
        if let Some((stream, _)) = st.pending.remove(&id_key(id)) {
            self.finish(&mut st, stream);
        }
    }

    /// Answers every request still in flight with an error and ends every stream.
    fn fail_all(&self, message: &str) {
        let mut st = lock(&self.state);
        let pending: Vec<(u64, Value)> = st.pending.drain().map(|(_, v)| v).collect();
        for (stream, id) in pending {
            let err = jsonrpc::error_response(Some(&id), jsonrpc::INTERNAL_ERROR, message, None);
            self.deliver(&mut st, stream, &err);
        }
        let streams: Vec<u64> = st.slots.keys().copied().collect();
        for s in streams {
            self.finish(&mut st, s);
        }
    }

    /// Stops the child's whole process group: TERM, then KILL after a grace period.
    pub fn terminate(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(pgid) = self.pgid {
            // SAFETY: signalling the process group we created for this child.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            tokio::spawn(async move {
                tokio::time::sleep(KILL_GRACE).await;
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            });
        }
        self.fail_all("The MCP session was ended.");
    }
}

/// Every child the runner has: client sessions, warm spares, and the ones being spawned
/// (reserved under the lock so that concurrent starts cannot pass the limit together).
#[derive(Default)]
struct Table {
    sessions: HashMap<String, Arc<Session>>,
    spares: VecDeque<Arc<Session>>,
    /// Children of the 2026-07-28 pool (see [`crate::pool`]), idle or busy.
    pooled: Vec<Arc<Session>>,
    starting_sessions: usize,
    starting_spares: usize,
    starting_pooled: usize,
}

impl Table {
    fn children(&self) -> usize {
        self.sessions.len()
            + self.spares.len()
            + self.pooled.len()
            + self.starting_sessions
            + self.starting_spares
            + self.starting_pooled
    }
}

/// What a new child is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Session,
    Spare,
    Pooled,
    /// Pooled, and never a spare (see [`Sessions::start_pooled`]).
    PooledFresh,
}

pub struct Sessions {
    table: Mutex<Table>,
    pub limits: Limits,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    user: Option<ChildUser>,
    pub ring: Arc<LogRing>,
    crashes: Mutex<Crashes>,
    /// Spares are kept (set once ready, cleared at shutdown).
    warm: AtomicBool,
    /// A refill is already waiting for a back-off to pass.
    refill_waiting: AtomicBool,
}

pub enum StartError {
    Full,
    BackingOff(Duration),
    Spawn(String),
}

impl Sessions {
    pub fn new(
        limits: Limits,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        user: Option<ChildUser>,
        ring: Arc<LogRing>,
    ) -> Arc<Self> {
        Arc::new(Self {
            table: Mutex::new(Table::default()),
            limits,
            argv,
            env,
            user,
            ring,
            crashes: Mutex::new(Crashes::default()),
            warm: AtomicBool::new(false),
            refill_waiting: AtomicBool::new(false),
        })
    }

    /// The program the launch spec runs (`npx`, `uvx`, `node`, …), for messages.
    pub fn program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or_default()
    }

    /// The command for one MCP server child: the launch argv (never a shell), the child's
    /// environment only, its own process group, and its own uid / gid when configured.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.program());
        cmd.args(self.argv.iter().skip(1))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // Under its own uid the server cannot read the runner's /proc/<pid>/environ (which
        // holds the upstream secret) nor signal or trace the runner.
        if let Some(user) = &self.user {
            cmd.uid(user.uid).gid(user.gid);
            if let Some(home) = &user.home {
                cmd.env("HOME", home).current_dir(home);
            }
        }
        cmd
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.table)
            .sessions
            .get(id)
            .filter(|s| !s.is_closed())
            .cloned()
    }

    /// Client sessions (spares not included).
    pub fn len(&self) -> usize {
        lock(&self.table).sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Warm spares that have answered their ping.
    pub fn spares_ready(&self) -> usize {
        lock(&self.table)
            .spares
            .iter()
            .filter(|s| s.is_proven() && !s.is_closed())
            .count()
    }

    /// Forgets a session or a spare.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let mut t = lock(&self.table);
        if let Some(s) = t.sessions.remove(id) {
            return Some(s);
        }
        if let Some(at) = t.pooled.iter().position(|s| s.id == id) {
            return Some(t.pooled.swap_remove(at));
        }
        let at = t.spares.iter().position(|s| s.id == id)?;
        t.spares.remove(at)
    }

    /// Children of the 2026-07-28 pool (idle or busy).
    pub fn pooled(&self) -> usize {
        lock(&self.table).pooled.len()
    }

    /// Client sessions (spares not included).
    pub fn all(&self) -> Vec<Arc<Session>> {
        lock(&self.table).sessions.values().cloned().collect()
    }

    /// Shutdown: no more spares; every session and spare is terminated.
    pub fn terminate_all(&self) {
        self.warm.store(false, Ordering::SeqCst);
        let everyone: Vec<Arc<Session>> = {
            let t = lock(&self.table);
            t.sessions
                .values()
                .chain(t.spares.iter())
                .chain(t.pooled.iter())
                .cloned()
                .collect()
        };
        for s in everyone {
            s.terminate();
        }
    }

    fn backoff(&self) -> Option<Duration> {
        lock(&self.crashes).backoff(Instant::now())
    }

    /// A child for a new client session: a warm spare if there is one, else a fresh child.
    /// The caller then posts the client's `initialize` to it. Once the session has sent
    /// its first answer, spares are topped up again in the background.
    pub async fn start(
        self: &Arc<Self>,
        requested_version: &str,
    ) -> Result<Arc<Session>, StartError> {
        self.start_for(Role::Session, requested_version).await
    }

    /// A child for the 2026-07-28 pool, counted like a session's; the pool initializes it
    /// itself. `spare_ok`: a warm spare may be taken. Not for a server that speaks
    /// 2026-07-28, nor to find out whether it does: an SDK that serves both eras settles a
    /// connection's era on its first request, and a spare's first request was the
    /// runner's `ping`, without the 2026-07-28 envelope.
    pub async fn start_pooled(
        self: &Arc<Self>,
        spare_ok: bool,
    ) -> Result<Arc<Session>, StartError> {
        let role = if spare_ok {
            Role::Pooled
        } else {
            Role::PooledFresh
        };
        self.start_for(role, version::DEFAULT_VERSION).await
    }

    async fn start_for(
        self: &Arc<Self>,
        role: Role,
        requested_version: &str,
    ) -> Result<Arc<Session>, StartError> {
        let mut waited = 0;
        let session = loop {
            let taken = if role == Role::PooledFresh {
                Err(false)
            } else {
                let mut t = lock(&self.table);
                let at = t
                    .spares
                    .iter()
                    .position(|s| s.is_proven() && !s.is_closed())
                    .or_else(|| t.spares.iter().position(|s| !s.is_closed()));
                match at.and_then(|i| t.spares.remove(i)) {
                    Some(s) => {
                        if role == Role::Pooled {
                            t.pooled.push(s.clone());
                        } else {
                            t.sessions.insert(s.id.clone(), s.clone());
                        }
                        Ok(s)
                    }
                    None => Err(t.starting_spares > 0),
                }
            };
            match taken {
                Ok(s) => {
                    *lock(&s.version) = requested_version.to_string();
                    s.touch();
                    break s;
                }
                Err(spare_coming) => {
                    if let Some(wait) = self.backoff() {
                        return Err(StartError::BackingOff(wait));
                    }
                    let full = {
                        let mut t = lock(&self.table);
                        let full = t.children() >= self.limits.max_sessions;
                        if !full {
                            if matches!(role, Role::Pooled | Role::PooledFresh) {
                                t.starting_pooled += 1;
                            } else {
                                t.starting_sessions += 1;
                            }
                        }
                        full
                    };
                    if !full {
                        break self.spawn(role, requested_version).await?;
                    }
                    // At the limit only because a spare is being spawned this instant:
                    // it is there within milliseconds, take it then.
                    if !spare_coming || waited >= SPARE_SPAWN_WAIT_TRIES {
                        return Err(StartError::Full);
                    }
                    waited += 1;
                    tokio::time::sleep(SPARE_SPAWN_WAIT).await;
                }
            }
        };
        let (first_tx, first_rx) = oneshot::channel();
        *lock(&session.first_answer) = Some(first_tx);
        let table = self.clone();
        tokio::spawn(async move {
            // Ok or Err (the session ended first) alike: time to top up.
            let _ = tokio::time::timeout(REFILL_AFTER, first_rx).await;
            table.refill();
        });
        Ok(session)
    }

    /// Starts keeping warm spares (the runner is ready).
    pub async fn warm_up(self: &Arc<Self>) {
        self.warm.store(true, Ordering::SeqCst);
        self.fill_spares().await;
    }

    /// [`Self::fill_spares`] in a task of its own. (Children's exit watchers call this: a
    /// plain function keeps the async types of filling and spawning from nesting.)
    pub fn refill(self: &Arc<Self>) {
        let table = self.clone();
        tokio::spawn(async move { table.fill_spares().await });
    }

    /// Starts spares until there are [`Limits::spares`] of them or the session limit is
    /// reached; during a crash back-off, tries again once it has passed.
    pub async fn fill_spares(self: &Arc<Self>) {
        while self.warm.load(Ordering::SeqCst) {
            if let Some(wait) = self.backoff() {
                if !self.refill_waiting.swap(true, Ordering::SeqCst) {
                    let table = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        table.refill_waiting.store(false, Ordering::SeqCst);
                        table.refill();
                    });
                }
                return;
            }
            {
                let mut t = lock(&self.table);
                if t.spares.len() + t.starting_spares >= self.limits.spares
                    || t.children() >= self.limits.max_sessions
                {
                    return;
                }
                t.starting_spares += 1;
            }
            match self.spawn(Role::Spare, version::DEFAULT_VERSION).await {
                Ok(_) => {}
                Err(StartError::Spawn(why)) => {
                    self.ring
                        .push(&format!("could not start a warm spare: {why}"));
                    return;
                }
                Err(_) => return,
            }
        }
    }

    /// Spawns a child for `role` (whose slot the caller reserved in the table), wires its
    /// pipes and watches its exit. A spare is sent the runner's ping before anything else.
    async fn spawn(
        self: &Arc<Self>,
        role: Role,
        version: &str,
    ) -> Result<Arc<Session>, StartError> {
        let release = |t: &mut Table| match role {
            Role::Session => t.starting_sessions -= 1,
            Role::Spare => t.starting_spares -= 1,
            Role::Pooled | Role::PooledFresh => t.starting_pooled -= 1,
        };
        let mut rnd = [0u8; 16];
        if let Err(e) = getrandom::getrandom(&mut rnd) {
            release(&mut lock(&self.table));
            return Err(StartError::Spawn(e.to_string()));
        }
        let id = mcp_wire::session::from_random(&rnd);
        let mut child: Child = match self.command().spawn() {
            Ok(c) => c,
            Err(e) => {
                release(&mut lock(&self.table));
                return Err(StartError::Spawn(format!("{}: {e}", self.program())));
            }
        };
        let mut stdin = child.stdin.take();
        let mut ping = None;
        if role == Role::Spare {
            let request =
                serde_json::json!({"jsonrpc": "2.0", "id": SPARE_PING_ID, "method": "ping"});
            let line = format!("{request}\n");
            ping = Some(Ping {
                key: id_key(&Value::from(SPARE_PING_ID)),
                sent: Instant::now(),
            });
            // A fresh pipe takes a line at once; if the child is already gone its exit
            // watcher below cleans up.
            if let Some(pipe) = stdin.as_mut() {
                let _ = pipe.write_all(line.as_bytes()).await;
            }
        }
        let session = Arc::new(Session {
            id: id.clone(),
            version: Mutex::new(version.to_string()),
            stdin: tokio::sync::Mutex::new(stdin),
            state: Mutex::new(State::new(&self.limits)),
            last_active: Mutex::new(Instant::now()),
            pgid: child.id().map(|p| p as i32),
            closed: AtomicBool::new(false),
            ping: Mutex::new(ping),
            proven: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            first_answer: Mutex::new(None),
        });
        {
            let mut t = lock(&self.table);
            release(&mut t);
            match role {
                Role::Session => {
                    t.sessions.insert(id.clone(), session.clone());
                }
                Role::Spare => t.spares.push_back(session.clone()),
                Role::Pooled | Role::PooledFresh => t.pooled.push(session.clone()),
            }
        }
        self.wire(session.clone(), &mut child);

        let table = self.clone();
        let started = Instant::now();
        let watched = session.clone();
        tokio::spawn(async move {
            let session = watched;
            let status = child.wait().await;
            let requested = session.is_closed();
            let what = match &status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            };
            table.ring.push(&format!(
                "[{}] MCP server exited: {what}",
                short(&session.id)
            ));
            if !requested {
                let answered = session.answered.load(Ordering::SeqCst);
                lock(&table.crashes).exited(started, answered, Instant::now());
            }
            session.closed.store(true, Ordering::SeqCst);
            session.fail_all("The MCP server process exited; start a new session.");
            table.remove(&session.id);
            if let Some(pgid) = session.pgid {
                // Reap anything the server left behind in its group.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            // A slot is free (or a spare is gone): top up.
            table.refill();
        });
        Ok(session)
    }

    fn wire(&self, session: Arc<Session>, child: &mut Child) {
        if let Some(stdout) = child.stdout.take() {
            let s = session.clone();
            let ring = self.ring.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    let n = match (&mut reader)
                        .take(MAX_MESSAGE_BYTES as u64 + 1)
                        .read_until(b'\n', &mut line)
                        .await
                    {
                        Ok(n) => n,
                        Err(_) => break,
                    };
                    if n == 0 {
                        break;
                    }
                    if line.len() > MAX_MESSAGE_BYTES {
                        ring.push(&format!(
                            "[{}] message over {MAX_MESSAGE_BYTES} bytes; ending session",
                            short(&s.id)
                        ));
                        s.terminate();
                        break;
                    }
                    match serde_json::from_slice::<Value>(&line) {
                        Ok(msg) => {
                            if let Some(took) = s.from_server(msg) {
                                ring.push(&format!(
                                    "[{}] warm spare ready (answered ping in {} ms)",
                                    short(&s.id),
                                    took.as_millis()
                                ));
                            }
                        }
                        Err(_) => {
                            let text = String::from_utf8_lossy(&line);
                            let text = text.trim_end();
                            if !text.is_empty() {
                                ring.push(&format!(
                                    "[{}] (stdout, not JSON-RPC) {text}",
                                    short(&s.id)
                                ));
                            }
                        }
                    }
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            pipe_stderr(stderr, self.ring.clone(), short(&session.id).to_string());
        }
    }

    /// Ends sessions (and pooled children) idle past the limit that have nothing in flight.
    pub fn reap_idle(&self) -> usize {
        let everyone: Vec<Arc<Session>> = {
            let t = lock(&self.table);
            t.sessions
                .values()
                .chain(t.pooled.iter())
                .cloned()
                .collect()
        };
        let idle: Vec<Arc<Session>> = everyone
            .into_iter()
            .filter(|s| s.idle_for() > self.limits.idle_timeout && !s.has_pending())
            .collect();
        for s in &idle {
            self.ring.push(&format!(
                "[{}] idle for {:?}; ending session",
                short(&s.id),
                s.idle_for()
            ));
            s.terminate();
            self.remove(&s.id);
        }
        idle.len()
    }
}

/// Copies a child's stderr into the ring, each line prefixed with `[tag]`. Bounded per
/// line (see `lines`), and not UTF-8-strict: a reader that stopped at the first bad byte
/// would leave the pipe full and the child blocked on its next write.
pub fn pipe_stderr(
    stderr: impl AsyncRead + Unpin + Send + 'static,
    ring: Arc<LogRing>,
    tag: String,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(STDERR_LINE_BYTES, stderr);
        let mut line = Vec::with_capacity(STDERR_LINE_BYTES);
        while let Ok(Some(cut)) = read_capped_line(&mut reader, STDERR_LINE_BYTES, &mut line).await
        {
            let text = format!("[{tag}] {}", String::from_utf8_lossy(&line));
            if cut {
                ring.push_truncated(&text);
            } else {
                ring.push(&text);
            }
        }
    });
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MIB: usize = 1024 * 1024;

    /// A session with no child: enough to route messages and replay them.
    fn detached(replay_events: usize, replay_bytes: usize) -> Session {
        let limits = Limits {
            max_sessions: 1,
            replay_events,
            replay_bytes,
            idle_timeout: Duration::from_secs(60),
            spares: 0,
        };
        Session {
            id: "0".repeat(32),
            version: Mutex::new("2025-06-18".into()),
            stdin: tokio::sync::Mutex::new(None),
            state: Mutex::new(State::new(&limits)),
            last_active: Mutex::new(Instant::now()),
            pgid: None,
            closed: AtomicBool::new(false),
            ping: Mutex::new(None),
            proven: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            first_answer: Mutex::new(None),
        }
    }

    fn big_notification(i: usize) -> Value {
        json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": format!("{i}:{}", "x".repeat(MIB))}})
    }

    fn received(rx: &mut mpsc::UnboundedReceiver<Bytes>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }

    #[test]
    fn the_replay_buffer_is_bounded_by_bytes_not_only_by_events() {
        let s = detached(512, 4 * MIB);
        let mut live = s.get(None);
        for i in 0..20 {
            s.from_server(big_notification(i));
        }
        assert_eq!(received(&mut live).len(), 20, "all delivered live");
        {
            let st = lock(&s.state);
            assert!(st.replay.bytes() <= 4 * MIB, "{} bytes", st.replay.bytes());
            assert_eq!(st.replay.len(), 3);
        }
        // Resuming the GET stream from its start replays only what the budget kept: the newest.
        let mut resumed = s.get(Some("1-0"));
        let frames = received(&mut resumed);
        assert_eq!(frames.len(), 3);
        assert!(frames[0].contains("id: 1-18\n"), "{}", &frames[0][..40]);
        assert!(frames[2].contains("\"19:x"));
    }

    #[tokio::test]
    async fn the_answer_to_the_spare_ping_reaches_no_client_even_after_the_hand_over() {
        let s = detached(512, 4 * MIB);
        *lock(&s.ping) = Some(Ping {
            key: id_key(&json!(SPARE_PING_ID)),
            sent: Instant::now(),
        });
        let mut get = s.get(None);
        // While the ping is out, a client request cannot take its id.
        let clash = json!({"jsonrpc": "2.0", "id": SPARE_PING_ID, "method": "tools/list"});
        let refused = s.post(vec![clash], true).await.err().unwrap_or_default();
        assert!(refused.contains("already in flight"), "{refused}");
        // The client's own request is in flight when the late ping answer arrives.
        lock(&s.state)
            .pending
            .insert(id_key(&json!(1)), (99, json!(1)));
        let answer = json!({"jsonrpc": "2.0", "id": SPARE_PING_ID, "result": {}});
        assert!(
            s.from_server(answer.clone()).is_some(),
            "recognised as the ping"
        );
        assert!(s.is_proven());
        assert!(
            received(&mut get).is_empty(),
            "the ping answer went to a client"
        );
        assert_eq!(
            lock(&s.state).pending.len(),
            1,
            "the client's request is untouched"
        );
        // Answered once: the same id is an ordinary id again (and routed as one).
        assert!(s.from_server(answer).is_none());
    }

    #[test]
    fn the_backlog_for_a_get_stream_is_bounded_by_bytes() {
        let s = detached(512, 4 * MIB);
        for i in 0..20 {
            s.from_server(big_notification(i));
        }
        assert!(lock(&s.state).backlog.bytes() <= 4 * MIB);
        let mut get = s.get(None);
        let frames = received(&mut get);
        assert_eq!(frames.len(), 3, "oldest evicted first");
        assert!(frames[0].contains("\"17:x"));
        assert!(frames[2].contains("\"19:x"));
    }
}
