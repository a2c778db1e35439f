//! The Fly-proxy stand-in: every request that is not this service's own is streamed to the
//! machine named by `fly-force-instance-id` (SSE unbuffered) — `/mcp`, and also the
//! runner's `/health` and `/logs`, which the Worker polls after `started` until the runner
//! is `ready` (or `failed`, then it reads `/logs`). One listener serves every app, so the
//! app name plays no part in routing: machine ids are unique across apps.
//!
//! A stopped machine with `autostart` is started first; traffic (an open stream counts)
//! keeps an `autostop` machine from the idle stop (see [`crate::supervise`]).

use std::sync::Arc;
use std::time::Instant;

use catwalk_runner::http::{self, Body};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::api::fly_error;
use crate::fleet::{lock, Service};
use crate::model::honoured;
use crate::supervise::{START_TIMEOUT, STOP_GRACE};

/// Hop-by-hop headers, plus `host`: the runner must see its own address.
const NOT_FORWARDED: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "host",
];

pub async fn forward(svc: Arc<Service>, mut req: Request<Incoming>) -> Response<Body> {
    let Some(id) = http::header(&req, "fly-force-instance-id").map(str::to_string) else {
        return fly_error(
            404,
            "not_found",
            "no route: send fly-force-instance-id to reach a machine",
        );
    };
    let (state, autostart) = match lock(&svc.machines).get(&id) {
        Some(l) if l.record.state != "destroyed" => (
            l.record.state.clone(),
            honoured(&l.record.config)
                .map(|h| h.autostart)
                .unwrap_or(false),
        ),
        _ => return fly_error(404, "not_found", "machine not found"),
    };
    if state != "started" {
        if matches!(state.as_str(), "stopped" | "created" | "stopping") && autostart {
            if state == "stopping" {
                let _ = svc
                    .wait_for(&id, &["stopped".into()], None, STOP_GRACE)
                    .await;
            }
            if lock(&svc.machines)
                .get(&id)
                .is_some_and(|l| l.port.is_none())
            {
                if let Err(why) = svc.launch(&id) {
                    return fly_error(503, "unknown", &format!("machine could not start: {why}"));
                }
            }
        } else if state != "starting" {
            return fly_error(
                503,
                "unknown",
                &format!("machine is {state} and does not autostart"),
            );
        }
        if svc
            .wait_for(&id, &["started".into()], None, START_TIMEOUT)
            .await
            .is_err()
        {
            return fly_error(503, "unknown", "machine did not start in time");
        }
    }
    let port = {
        let mut map = lock(&svc.machines);
        let Some(live) = map.get_mut(&id) else {
            return fly_error(404, "not_found", "machine not found");
        };
        live.in_flight += 1;
        live.last_traffic = Instant::now();
        live.port
    };
    // Counted from here, so the early answers below give the count back too: a count left
    // behind would keep the machine from ever stopping when idle.
    let done = InFlight {
        svc: svc.clone(),
        id: id.clone(),
    };
    let Some(port) = port else {
        return fly_error(503, "unknown", "machine is not running");
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let uri: hyper::Uri = match format!("http://127.0.0.1:{port}{path}").parse() {
        Ok(u) => u,
        Err(_) => return fly_error(400, "unknown", "bad request path"),
    };
    *req.uri_mut() = uri;
    for h in NOT_FORWARDED {
        req.headers_mut().remove(h);
    }
    match svc.client.request(req).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            // The guard lives as long as the body: an open SSE stream counts as traffic.
            let body = body.map_err(std::io::Error::other).map_frame(move |f| {
                let _ = &done;
                f
            });
            Response::from_parts(parts, BodyExt::boxed(body))
        }
        Err(e) => fly_error(502, "unknown", &format!("machine did not answer: {e}")),
    }
}

/// One request in flight to a machine, counted until dropped.
struct InFlight {
    svc: Arc<Service>,
    id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(live) = lock(&self.svc.machines).get_mut(&self.id) {
            live.in_flight = live.in_flight.saturating_sub(1);
            live.last_traffic = Instant::now();
        }
    }
}
