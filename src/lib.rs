//! Catwalk Edge: the Cloudflare Worker that turns an MCP server's GitHub URL or package
//! name into a running, authenticated MCP endpoint.
//!
//! Layering (see `docs/architecture.md`): pure logic modules (`config`, `error`, `http`,
//! `outbound` (the outbound HTTP port), `identity`, `crypto`, `analysis`, `deploy`, `log`,
//! `ids`, `time`, `registry` (the official MCP registry as a source), `oauth` (the
//! authorization server's rules) and `gateway`, the MCP gateway's rules) know nothing of the `worker`
//! crate and are tested natively with `cargo test`; `platform` and `store` bind them to
//! the runtime (Env, D1, KV, Durable Objects, console, `fetch`); `planner` (request →
//! cached launch plan), `lifecycle` (a deployment's machine) and `proxy` (an MCP request
//! to its machine and back) run the logic over those bindings; `edge` is the request
//! pipeline, `routes` the thin handlers, `durable` the Durable Object classes and `cron`
//! the scheduled jobs.

pub mod analysis;
pub mod config;
pub mod crypto;
pub mod deploy;
pub mod error;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod ids;
pub mod log;
pub mod oauth;
pub mod outbound;
pub mod registry;
pub mod time;

pub mod cron;
pub mod durable;
pub mod edge;
pub mod lifecycle;
pub mod planner;
pub mod platform;
pub mod proxy;
pub mod routes;
pub mod store;

use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    edge::handle(req, env, ctx).await
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let config = platform::env::config(&env);
    let log = platform::log::Logger::background(&config);
    cron::dispatch(&event.cron(), &env, &log).await;
}
