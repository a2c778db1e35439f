//! Thin handlers: parse → call logic → answer. One module per area; [`dispatch`] maps each
//! resolved [`Route`] to its handler.

pub mod analyze;
pub mod auth;
pub mod health;

use worker::{Context, Env, Request, Response};

use crate::config::Config;
use crate::error::AppResult;
use crate::http::route::Route;
use crate::platform::log::Logger;

/// What every handler may use for the duration of one request.
pub struct Ctx {
    pub env: Env,
    pub config: Config,
    pub log: Logger,
    pub worker: Context,
}

pub async fn dispatch(route: Route, req: Request, cx: &mut Ctx) -> AppResult<Response> {
    match route {
        Route::Health => health::health(cx),
        Route::HealthStorage => health::storage(req, cx).await,
        Route::SyncUser => auth::sync_user(req, cx).await,
        Route::Me => auth::me(req, cx).await,
        Route::Analyze => analyze::analyze(req, cx).await,
    }
}
