//! The machines this service knows: each one's record and live side under one lock, and
//! the state changes that API calls, the supervisor and the ingress wait on.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use catwalk_runner::clock::{now_ms, rfc3339};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use crate::config::MachinesConfig;
use crate::model::{event, Machine};
use crate::persist;

/// A machine's live side: its process, port and traffic bookkeeping.
pub struct Live {
    pub record: Machine,
    pub app: String,
    pub port: Option<u16>,
    pub pgid: Option<i32>,
    pub stop_requested: bool,
    pub retries: u32,
    pub last_traffic: Instant,
    pub in_flight: usize,
    state_tx: watch::Sender<(String, String)>,
}

impl Live {
    /// A machine with no process yet (new, or loaded from disk).
    pub fn new(record: Machine, app: &str) -> Self {
        let (state_tx, _) = watch::channel((record.state.clone(), record.instance_id.clone()));
        Self {
            record,
            app: app.to_string(),
            port: None,
            pgid: None,
            stop_requested: false,
            retries: 0,
            last_traffic: Instant::now(),
            in_flight: 0,
            state_tx,
        }
    }
}

pub struct Service {
    pub cfg: MachinesConfig,
    pub machines: Mutex<HashMap<String, Live>>,
    /// The ingress's client to the runners; one pool for every machine.
    pub client: Client<HttpConnector, Incoming>,
}

/// A panic while holding the lock leaves the table usable: every update is a few field
/// writes, so there is no half-done invariant to protect.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ingress's connector to runners, with Nagle off: a request forwarded from a
/// Worker's fetch arrives chunked, and its small last write held back for the runner's
/// delayed ACK cost ~40 ms per request — a delay Fly's real proxy does not add.
fn nodelay_connector() -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c
}

impl Service {
    /// The service over the records found under its state dir.
    pub fn new(cfg: MachinesConfig) -> Self {
        let machines = persist::load(&cfg.state_dir);
        Self {
            cfg,
            machines: Mutex::new(machines),
            client: Client::builder(TokioExecutor::new()).build(nodelay_connector()),
        }
    }

    /// Records a transition (and its event), wakes whoever waits on it, and persists it.
    pub fn set_state(&self, live: &mut Live, state: &str, kind: &str) {
        live.record.state = state.to_string();
        live.record.updated_at = rfc3339(now_ms());
        live.record.events.insert(0, event(kind, state, now_ms()));
        live.record.events.truncate(50);
        live.state_tx
            .send_replace((state.to_string(), live.record.instance_id.clone()));
        persist::save(&self.cfg.state_dir, live);
    }

    /// Waits until the machine is in one of `wanted`. `Err(404)`: no such machine (or
    /// instance); `Err(408)`: not in time.
    pub async fn wait_for(
        &self,
        id: &str,
        wanted: &[String],
        instance: Option<&str>,
        timeout: Duration,
    ) -> Result<String, u16> {
        let mut rx = {
            let map = lock(&self.machines);
            let live = map.get(id).ok_or(404u16)?;
            if let Some(i) = instance {
                if i != live.record.instance_id {
                    return Err(404);
                }
            }
            live.state_tx.subscribe()
        };
        let result =
            tokio::time::timeout(timeout, rx.wait_for(|(s, _)| wanted.iter().any(|w| w == s)))
                .await;
        match result {
            Ok(Ok(v)) => Ok(v.0.clone()),
            Ok(Err(_)) => Err(404),
            Err(_) => Err(408),
        }
    }
}
