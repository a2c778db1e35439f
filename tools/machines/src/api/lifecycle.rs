//! Moving a machine between states: stop, start, restart, and waiting for a state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use catwalk_runner::http::{self, Body};
use hyper::Response;
use serde_json::json;

use super::{fly_error, missing};
use crate::fleet::{lock, Service};

/// Fly's ceiling for one `wait` call.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long a restart waits for the old process to go before giving up on the relaunch
/// (a little more than `STOP_GRACE`, after which the process group is killed).
const RESTART_STOP_WAIT: Duration = Duration::from_secs(15);

fn state_of(svc: &Service, id: &str) -> String {
    lock(&svc.machines)
        .get(id)
        .map(|l| l.record.state.clone())
        .unwrap_or_default()
}

pub fn stop(svc: &Arc<Service>, app: &str, id: &str) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    svc.stop(id);
    http::json(200, &json!({"ok": true}))
}

pub fn start(svc: &Arc<Service>, app: &str, id: &str) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    let previous = state_of(svc, id);
    match previous.as_str() {
        "created" | "stopped" | "failed" | "suspended" => {
            // An explicit start gives the restart policy its full budget again.
            if let Some(live) = lock(&svc.machines).get_mut(id) {
                live.retries = 0;
            }
            if let Err(why) = svc.launch(id) {
                return fly_error(500, "unknown", &why);
            }
        }
        "started" | "starting" => {}
        other => {
            return fly_error(
                412,
                "unknown",
                &format!("unable to start machine from current state {other}"),
            )
        }
    }
    http::json(
        200,
        &json!({"previous_state": previous, "migrated": false, "new_host": ""}),
    )
}

/// Fly's `POST /{id}/restart`: a running machine is stopped like `stop` (so its exit is not
/// a crash for the restart policy), then launched again like `start` once its process is
/// gone; the answer comes as soon as the stop is under way. A machine that is not running
/// is simply started.
pub fn restart(svc: &Arc<Service>, app: &str, id: &str) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    let previous = state_of(svc, id);
    match previous.as_str() {
        "started" | "starting" => {
            // `stop` sets `stop_requested`, so the exit watcher records `stopped` instead of
            // relaunching (and without touching `retries`).
            svc.stop(id);
            let svc = svc.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                let _ = svc
                    .wait_for(&id, &["stopped".into()], None, RESTART_STOP_WAIT)
                    .await;
                let relaunch = match lock(&svc.machines).get_mut(&id) {
                    // Anything else means someone acted meanwhile (started, destroyed it),
                    // or the old process would not die: leave it be.
                    Some(live) if live.port.is_none() && live.record.state == "stopped" => {
                        live.retries = 0;
                        true
                    }
                    _ => false,
                };
                if !relaunch {
                    eprintln!(
                        "catwalk-machines: restart of {id}: not relaunched (no longer stopped)"
                    );
                } else if let Err(why) = svc.launch(&id) {
                    eprintln!("catwalk-machines: restart of {id}: {why}");
                }
            });
        }
        "created" | "stopped" | "failed" | "suspended" => {
            if let Some(live) = lock(&svc.machines).get_mut(id) {
                live.retries = 0;
            }
            if let Err(why) = svc.launch(id) {
                return fly_error(500, "unknown", &why);
            }
        }
        other => {
            return fly_error(
                412,
                "unknown",
                &format!("unable to restart machine from current state {other}"),
            )
        }
    }
    http::json(200, &json!({"ok": true}))
}

pub async fn wait(
    svc: &Arc<Service>,
    app: &str,
    id: &str,
    query: &HashMap<String, String>,
) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        // A delete followed by a wait for `destroyed` must not read as "never existed";
        // any other wait on a destroyed machine is a 404 like every other call.
        if lock(&svc.machines)
            .get(id)
            .is_some_and(|l| l.record.state == "destroyed")
            && query.get("state").is_some_and(|s| s.contains("destroyed"))
        {
            return http::json(200, &json!({"ok": true, "state": "destroyed"}));
        }
        return r;
    }
    let wanted: Vec<String> = query
        .get("state")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| vec!["started".into()]);
    let known = [
        "started",
        "stopped",
        "suspended",
        "destroyed",
        "failed",
        "created",
    ];
    if wanted.iter().any(|w| !known.contains(&w.as_str())) {
        return fly_error(
            400,
            "unknown",
            "state must be one of started, stopped, suspended, destroyed, failed",
        );
    }
    let instance = query
        .get("instance_id")
        .or_else(|| query.get("version"))
        .map(String::as_str);
    if wanted.iter().any(|w| w == "stopped") && instance.is_none() {
        return fly_error(
            400,
            "unknown",
            "instance_id is required to wait for stopped",
        );
    }
    let secs: u64 = query
        .get("timeout")
        .and_then(|t| t.trim_end_matches('s').parse().ok())
        .unwrap_or(60);
    let timeout = Duration::from_secs(secs.clamp(1, 60)).min(MAX_WAIT);
    match svc.wait_for(id, &wanted, instance, timeout).await {
        Ok(state) => http::json(200, &json!({"ok": true, "state": state})),
        Err(408) => fly_error(
            408,
            "deadline_exceeded",
            &format!("machine did not reach {} in time", wanted.join(",")),
        ),
        Err(_) => fly_error(404, "not_found", "machine not found"),
    }
}
