//! The machine resource itself: create, list, update (a new config, and a reboot into it
//! if running) and destroy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use catwalk_runner::clock::{now_ms, rfc3339};
use catwalk_runner::http::{self, Body};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::{fly_error, missing, read_machine_body, with_machine};
use crate::fleet::{lock, Live, Service};
use crate::model::{event, image_ref, metadata_matches, ulid_like, Machine};
use crate::persist;
use crate::supervise::STOP_GRACE;

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let _ = getrandom::getrandom(&mut b);
    b
}

/// 14 hex digits, the shape of Fly's machine ids.
fn hex14() -> String {
    random::<7>().iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn create(svc: Arc<Service>, app: &str, req: Request<Incoming>) -> Response<Body> {
    let (body, config) = match read_machine_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = hex14();
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("machine-{}", &id[..6]));
    {
        let map = lock(&svc.machines);
        if map
            .values()
            .any(|l| l.app == app && l.record.name == name && l.record.state != "destroyed")
        {
            return fly_error(
                409,
                "name_taken",
                &format!("a machine named {name} already exists"),
            );
        }
    }
    let now = rfc3339(now_ms());
    let image = config["image"].as_str().unwrap_or_default().to_string();
    let record = Machine {
        id: id.clone(),
        name,
        state: "created".into(),
        region: body
            .get("region")
            .and_then(Value::as_str)
            .unwrap_or("local")
            .to_string(),
        instance_id: ulid_like(&random::<16>()),
        private_ip: format!("fdaa:0:1::{}", &id[..4]),
        config,
        image_ref: image_ref(&image),
        created_at: now.clone(),
        updated_at: now,
        events: vec![event("launch", "created", now_ms())],
        host_status: "ok".into(),
    };
    let live = Live::new(record, app);
    persist::save(&svc.cfg.state_dir, &live);
    lock(&svc.machines).insert(id.clone(), live);
    if !body
        .get("skip_launch")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return match svc.launch(&id) {
            Ok(machine) => http::json(200, &json!(machine)),
            Err(why) => fly_error(500, "unknown", &why),
        };
    }
    with_machine(&svc, app, &id, |l| http::json(200, &json!(l.record)))
}

pub fn list(svc: &Service, app: &str, query: &HashMap<String, String>) -> Response<Body> {
    let filters: Vec<(String, String)> = query
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata.")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    let deleted = query.get("include_deleted").is_some_and(|v| v == "true");
    let map = lock(&svc.machines);
    let mut out: Vec<&Machine> = map
        .values()
        .filter(|l| {
            l.app == app
                && (deleted || l.record.state != "destroyed")
                && metadata_matches(&l.record.config, &filters)
        })
        .map(|l| &l.record)
        .collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    http::json(200, &json!(out))
}

pub async fn update(
    svc: Arc<Service>,
    app: &str,
    id: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    if let Some(r) = missing(&svc, app, id) {
        return r;
    }
    let (body, config) = match read_machine_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let was_running = {
        let mut map = lock(&svc.machines);
        let Some(live) = map.get_mut(id) else {
            return fly_error(404, "not_found", "machine not found");
        };
        if let Some(v) = body.get("current_version").and_then(Value::as_str) {
            if v != live.record.instance_id {
                return fly_error(409, "unknown", "current_version does not match");
            }
        }
        live.record.image_ref = image_ref(config["image"].as_str().unwrap_or_default());
        live.record.config = config;
        live.record.instance_id = ulid_like(&random::<16>());
        let running = live.port.is_some();
        svc.set_state(
            live,
            if running { "replacing" } else { "stopped" },
            "update",
        );
        running
    };
    if was_running {
        // A running machine reboots into the new config.
        svc.stop(id);
        let _ = svc
            .wait_for(
                id,
                &["stopped".into()],
                None,
                STOP_GRACE + Duration::from_secs(2),
            )
            .await;
        if let Err(why) = svc.launch(id) {
            return fly_error(500, "unknown", &why);
        }
    }
    with_machine(&svc, app, id, |l| http::json(200, &json!(l.record)))
}

pub fn destroy(
    svc: &Arc<Service>,
    app: &str,
    id: &str,
    query: &HashMap<String, String>,
) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    let force = ["force", "kill"]
        .iter()
        .any(|k| query.get(*k).is_some_and(|v| v == "true"));
    let mut map = lock(&svc.machines);
    let Some(live) = map.get_mut(id) else {
        return fly_error(404, "not_found", "machine not found");
    };
    if live.port.is_some() && !force {
        return fly_error(
            412,
            "unknown",
            "machine is running: stop it first or pass force=true",
        );
    }
    live.kill_now();
    svc.set_state(live, "destroyed", "destroy");
    http::json(200, &json!({"ok": true}))
}
