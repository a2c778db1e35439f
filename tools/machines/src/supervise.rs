//! Process supervision: each machine is a `catwalk-runner serve` process in its own
//! process group on a free loopback port. Launching, noticing it listens (`started`),
//! stopping it (SIGTERM, then SIGKILL after a grace), the restart policy when it exits on
//! its own, and the idle stop of `autostop` machines.
//!
//! A machine is `started` as soon as its runner listens, which it does before its MCP
//! server is prepared, like on Fly: the Worker then polls the runner's own `/health`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Child;

use crate::fleet::{lock, Live, Service};
use crate::host_env::machine_env;
use crate::model::{honoured, Machine};

/// How long a launched runner has to listen; also how long the ingress waits for a start.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// SIGTERM to SIGKILL: the runner ends its MCP servers itself when given the time.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}

fn kill_group(pgid: i32, signal: libc::c_int) {
    // A negative pid names the process group: the runner (its MCP servers run in groups of
    // their own; what a dead runner leaves behind is `orphans`' to end).
    unsafe { libc::kill(-pgid, signal) };
}

impl Service {
    /// Starts the machine's runner process and marks it started once it listens; a
    /// machine whose runner is already up is left as it is.
    /// Returns the record as it stood when the process was started (`starting`): the
    /// readiness watcher may flip it to `started` a moment later on another thread.
    pub fn launch(self: &Arc<Self>, id: &str) -> Result<Machine, String> {
        let mut map = lock(&self.machines);
        let live = map.get_mut(id).ok_or("no such machine")?;
        if live.port.is_some() {
            // One runner per machine. Two callers that waited for the same stop (an update
            // during a restart, a request waking the machine) may both launch: the second
            // would replace the first in the record and leave it running unseen.
            return Ok(live.record.clone());
        }
        let h = honoured(&live.record.config)?;
        let port = free_port().ok_or("no free port")?;
        let mut cmd = tokio::process::Command::new(&self.cfg.runner_bin);
        cmd.arg("serve")
            .env_clear()
            .envs(machine_env(
                std::env::vars(),
                self.cfg.machine_path.as_deref(),
            ))
            .envs(h.env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .env("CATWALK_BIND", "127.0.0.1")
            .env("FLY_MACHINE_ID", id)
            .env("FLY_APP_NAME", &live.app)
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("spawn runner: {e}"))?;
        live.port = Some(port);
        live.pgid = child.id().map(|p| p as i32);
        live.stop_requested = false;
        live.last_traffic = Instant::now();
        self.set_state(live, "starting", "start");
        let snapshot = live.record.clone();
        drop(map);
        self.watch(id.to_string(), child, port);
        Ok(snapshot)
    }

    fn watch(self: &Arc<Self>, id: String, mut child: Child, port: u16) {
        let svc = self.clone();
        let ready_id = id.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    let mut map = lock(&svc.machines);
                    if let Some(live) = map.get_mut(&ready_id) {
                        // The port check: a stop and relaunch meanwhile is another process.
                        if live.record.state == "starting" && live.port == Some(port) {
                            svc.set_state(live, "started", "start");
                        }
                    }
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let svc = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let ok = status.as_ref().map(|s| s.success()).unwrap_or(false);
            let restart = {
                let mut map = lock(&svc.machines);
                let Some(live) = map.get_mut(&id) else { return };
                if live.port != Some(port) {
                    return;
                }
                // The runner is gone; whatever it left in its group goes with it.
                if let Some(pgid) = live.pgid.take() {
                    kill_group(pgid, libc::SIGKILL);
                }
                live.port = None;
                let h = honoured(&live.record.config).unwrap_or_default();
                let again = !live.stop_requested
                    && live.record.state != "destroying"
                    && (h.restart_policy == "always" || (h.restart_policy == "on-failure" && !ok))
                    && live.retries < h.max_retries;
                if again {
                    live.retries += 1;
                } else if live.record.state != "destroying" {
                    svc.set_state(live, "stopped", "exit");
                }
                again
            };
            if restart {
                tokio::time::sleep(Duration::from_secs(1)).await;
                // A stop, restart, start or destroy during the pause has the last word.
                let still_wanted = lock(&svc.machines).get(&id).is_some_and(|l| {
                    !l.stop_requested
                        && l.port.is_none()
                        && !matches!(l.record.state.as_str(), "destroying" | "destroyed")
                });
                if still_wanted {
                    let _ = svc.launch(&id);
                }
            }
        });
    }

    /// Asks the machine to stop; returns at once (`stopping`), the exit watcher records
    /// `stopped`. `stop_requested` keeps the restart policy out of it.
    pub fn stop(self: &Arc<Self>, id: &str) {
        let mut map = lock(&self.machines);
        let Some(live) = map.get_mut(id) else { return };
        live.stop_requested = true;
        match live.pgid {
            Some(pgid) if live.port.is_some() => {
                self.set_state(live, "stopping", "stop");
                kill_group(pgid, libc::SIGTERM);
                tokio::spawn(async move {
                    tokio::time::sleep(STOP_GRACE).await;
                    kill_group(pgid, libc::SIGKILL);
                });
            }
            _ if live.record.state != "stopped" && live.record.state != "destroyed" => {
                self.set_state(live, "stopped", "stop")
            }
            _ => {}
        }
    }
}

impl Live {
    /// Kills the machine's processes now (a forced destroy); the exit watcher then finds
    /// the port gone and leaves the record alone.
    pub fn kill_now(&mut self) {
        self.stop_requested = true;
        if let Some(pgid) = self.pgid.take() {
            kill_group(pgid, libc::SIGKILL);
        }
        self.port = None;
    }
}

/// Stops `autostop` machines that have had no request in flight for `idle_stop`, checked
/// every second (an open SSE stream is a request in flight).
pub fn spawn_idle_stop(svc: Arc<Service>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let due: Vec<String> = lock(&svc.machines)
                .iter()
                .filter(|(_, l)| {
                    l.record.state == "started"
                        && l.in_flight == 0
                        && l.last_traffic.elapsed() >= svc.cfg.idle_stop
                        && honoured(&l.record.config)
                            .map(|h| h.autostop)
                            .unwrap_or(false)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in due {
                svc.stop(&id);
            }
        }
    });
}

/// At shutdown: SIGTERM to every machine, a moment for the runners to end their servers,
/// then SIGKILL to what is left and its orphans. Records are left as they are; the next
/// start reads them as `stopped`.
pub async fn terminate_all(svc: &Service) {
    let ids: Vec<String> = lock(&svc.machines).keys().cloned().collect();
    for id in ids {
        if let Some(pgid) = lock(&svc.machines).get(&id).and_then(|l| l.pgid) {
            kill_group(pgid, libc::SIGTERM);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A runner still up goes now; the servers it leaves become ours and go with it.
    let groups: Vec<i32> = lock(&svc.machines)
        .values()
        .filter_map(|l| l.pgid)
        .collect();
    for pgid in groups {
        kill_group(pgid, libc::SIGKILL);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    crate::orphans::reap();
}
