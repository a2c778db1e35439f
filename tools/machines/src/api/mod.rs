//! The Machines REST API (the subset the Worker uses): routing, auth, the error shape and
//! body reading. Imitates <https://fly.io/docs/machines/api/machines-resource/>; see
//! `/work/shared/fly-machines-api.md` for the parts we rely on.
//!
//! `/v1/apps/{app}/machines…`, `Authorization: Bearer|FlyV1 <token>`, any app name:
//! create (`POST`), list (`GET`, `metadata.{k}=v` filters, `include_deleted`), get, update
//! (`POST /{id}`, full config), `GET /{id}/wait?state=&timeout=&instance_id=` (408 on
//! timeout, at most 60 s; `stopped` needs `instance_id`), `POST /{id}/stop`, `POST /{id}/start`,
//! `POST /{id}/restart` (`timeout` / `signal` / `force_stop` ignored; answers `{"ok": true}`
//! once a running machine is `stopping`, then goes `stopped` → `starting` → `started` in the
//! background with the same `instance_id`; not counted against `restart.max_retries`),
//! `DELETE /{id}?force=true` (or `kill=true`; without it the machine must be stopped: 412).
//! Errors are `{"error": "...", "status": "..."}`. A second machine with the same name is a
//! 409 `name_taken` (Fly's behaviour is undocumented; we chose to refuse). Destroyed
//! machines answer 404 (listed with `include_deleted=true`).
//!
//! Honoured config fields: `image` (required; recorded only), `env` (the runner's whole
//! environment: launch spec, upstream secret, credentials), `metadata`, `services[0].autostop`
//! / `autostart`, `restart.policy` / `max_retries`. Everything else is stored and echoed.

mod lifecycle;
mod records;

use std::collections::HashMap;
use std::sync::Arc;

use catwalk_runner::http::{self, Body, BodyError};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use crate::fleet::{lock, Live, Service};
use crate::model::honoured;

const MAX_API_BODY: usize = 1024 * 1024;

/// Fly's error body. The ingress answers in the same shape.
pub fn fly_error(status: u16, code: &str, message: &str) -> Response<Body> {
    http::json(status, &json!({"error": message, "status": code}))
}

/// Both schemes Fly accepts: the Worker sends macaroons (`fm2_…`) as `FlyV1 <token>` and
/// other tokens as `Bearer` (`authorization` in src/deploy/fly_client.rs).
fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    let Some(value) = http::header(req, "authorization") else {
        return false;
    };
    let Some((scheme, given)) = value.split_once(' ') else {
        return false;
    };
    let given = given.trim();
    let given = given.strip_prefix("FlyV1 ").unwrap_or(given);
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("flyv1"))
        && given.len() == token.len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            token.as_bytes(),
        ))
}

/// Query parameters. Only an encoded comma is decoded (`state=started%2Cstopped`): ids,
/// states and metadata values here never need another escape.
fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%2C", ",").replace("%2c", ",")))
        .collect()
}

fn valid_app_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Serves `/v1/apps/{rest}`.
pub async fn handle(svc: Arc<Service>, req: Request<Incoming>, rest: &str) -> Response<Body> {
    if !authorized(&req, &svc.cfg.token) {
        return fly_error(401, "unauthorized", "unauthorized");
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let query = query(&req);
    let (app, path) = match parts.as_slice() {
        [app, "machines", path @ ..] if valid_app_name(app) => (app.to_string(), path),
        _ => return fly_error(404, "not_found", "not found"),
    };
    let method = req.method().clone();
    match (&method, path) {
        (&Method::POST, []) => records::create(svc, &app, req).await,
        (&Method::GET, []) => records::list(&svc, &app, &query),
        (&Method::GET, [id]) => with_machine(&svc, &app, id, |l| http::json(200, &json!(l.record))),
        (&Method::POST, [id]) => records::update(svc, &app, id, req).await,
        (&Method::DELETE, [id]) => records::destroy(&svc, &app, id, &query),
        (&Method::POST, [id, "stop"]) => lifecycle::stop(&svc, &app, id),
        (&Method::POST, [id, "start"]) => lifecycle::start(&svc, &app, id),
        (&Method::POST, [id, "restart"]) => lifecycle::restart(&svc, &app, id),
        (&Method::GET, [id, "wait"]) => lifecycle::wait(&svc, &app, id, &query).await,
        _ => fly_error(404, "not_found", "not found"),
    }
}

/// The 404 for a machine that is not in this app or is destroyed; `None` if it is there.
fn missing(svc: &Service, app: &str, id: &str) -> Option<Response<Body>> {
    let map = lock(&svc.machines);
    match map.get(id) {
        Some(l) if l.app == app && l.record.state != "destroyed" => None,
        _ => Some(fly_error(404, "not_found", "machine not found")),
    }
}

fn with_machine(
    svc: &Service,
    app: &str,
    id: &str,
    f: impl FnOnce(&Live) -> Response<Body>,
) -> Response<Body> {
    if let Some(r) = missing(svc, app, id) {
        return r;
    }
    match lock(&svc.machines).get(id) {
        Some(l) => f(l),
        None => fly_error(404, "not_found", "machine not found"),
    }
}

async fn read_json(req: Request<Incoming>) -> Result<Value, Response<Body>> {
    match http::read_capped(req.into_body(), MAX_API_BODY).await {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|_| fly_error(400, "unknown", "invalid JSON body"))
        }
        Err(BodyError::TooLarge) => Err(fly_error(413, "unknown", "body too large")),
        Err(BodyError::Read) => Err(fly_error(400, "unknown", "could not read body")),
    }
}

/// A create or update body and its `config`, checked like Fly checks it.
async fn read_machine_body(req: Request<Incoming>) -> Result<(Value, Value), Response<Body>> {
    let body = read_json(req).await?;
    let config = body.get("config").cloned().unwrap_or(Value::Null);
    honoured(&config).map_err(|why| fly_error(422, "unknown", &why))?;
    Ok((body, config))
}
