//! `catwalk-machines`: a loopback stand-in for the subset of the Fly Machines REST API the
//! Worker uses, and for Fly's proxy in front of the machines, where each "machine" is a
//! `catwalk-runner serve` process on a free port. The Worker talks to it exactly as to
//! Fly: only the base URL and token differ. For `make dev` and the integration tests; a
//! binary of its own so the machine image (`Dockerfile`, `-p catwalk-runner`) never
//! carries it.
//!
//! - [`config`]: settings from the environment;
//! - [`api`]: the Machines REST API (`/v1/apps/{app}/machines…`);
//! - [`ingress`]: everything else, routed to a machine by `fly-force-instance-id`;
//! - [`supervise`]: the runner processes behind the machines;
//! - [`host_env`]: what of this host a machine's environment holds;
//! - [`fleet`]: the table of machines and their state changes;
//! - [`persist`]: that table on disk;
//! - [`model`]: the machine record and the pure rules about it;
//! - [`orphans`]: the MCP servers a dead runner left behind, ended like a VM's.
//!
//! Only `/health` *without* `fly-force-instance-id` is this service's own.

mod api;
mod config;
mod fleet;
mod host_env;
mod ingress;
mod model;
mod orphans;
mod persist;
mod supervise;

use std::sync::Arc;
use std::time::Duration;

use catwalk_runner::http::{self, Body};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;
use tokio::sync::watch;

use config::MachinesConfig;
use fleet::{lock, Service};

#[tokio::main]
async fn main() {
    let stop_rx = http::stop_on_signals();
    let cfg = match MachinesConfig::from_env(|k| std::env::var(k).ok()) {
        Ok(cfg) => cfg,
        Err(why) => {
            eprintln!("catwalk-machines: {why}");
            std::process::exit(2)
        }
    };
    if let Err(e) = run(cfg, stop_rx).await {
        eprintln!("catwalk-machines: {e}");
        std::process::exit(1);
    }
}

async fn run(cfg: MachinesConfig, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    std::fs::create_dir_all(&cfg.state_dir)?;
    let bind = cfg.bind;
    let svc = Arc::new(Service::new(cfg));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    eprintln!(
        "catwalk-machines: Fly Machines API and ingress on http://{}",
        listener.local_addr()?
    );
    orphans::adopt();
    orphans::spawn_reaper();
    supervise::spawn_idle_stop(svc.clone());
    let handler = svc.clone();
    http::serve(
        listener,
        move |req, _| route(handler.clone(), req),
        shutdown,
        Duration::from_secs(5),
    )
    .await;
    supervise::terminate_all(&svc).await;
    Ok(())
}

async fn route(svc: Arc<Service>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/health" && http::header(&req, "fly-force-instance-id").is_none() {
        return http::json(
            200,
            &json!({"status": "ok", "machines": lock(&svc.machines).len()}),
        );
    }
    match path.strip_prefix("/v1/apps/") {
        Some(rest) => api::handle(svc, req, rest).await,
        None => ingress::forward(svc, req).await,
    }
}
