//! Thin handlers: parse → call logic → answer. One module per area; [`dispatch`] maps each
//! resolved [`Route`] to its handler.

pub mod analyze;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod deployments;
pub mod health;
pub mod mcp;
pub mod oauth;
pub mod openapi;
pub mod registry;
pub mod session;
pub mod settings;

use worker::{Context, Env, Request, Response};

use crate::config::Config;
use crate::error::AppResult;
use crate::http::route::{Resolved, Route};
use crate::lifecycle::Action;
use crate::platform::log::Logger;

/// What every handler may use for the duration of one request.
pub struct Ctx {
    pub env: Env,
    pub config: std::rc::Rc<Config>,
    pub log: Logger,
    pub worker: Context,
}

/// Our public origin: `PUBLIC_BASE_URL`, or this request's own origin when unset. The base
/// of every MCP URL, and the OAuth issuer.
pub fn public_base(req: &Request, cx: &Ctx) -> AppResult<String> {
    Ok(match &cx.config.public_base_url {
        Some(u) => u.as_str().trim_end_matches('/').to_string(),
        None => req.url()?.origin().ascii_serialization(),
    })
}

pub async fn dispatch(resolved: Resolved, req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let id = resolved.id.as_deref();
    let key = resolved.key.as_deref();
    match resolved.route {
        Route::Health => health::health(cx),
        Route::HealthStorage => health::storage(req, cx).await,
        Route::SyncUser => auth::sync_user(req, cx).await,
        Route::Me => auth::me(req, cx).await,
        Route::AuthProviders => session::providers(cx),
        Route::DevSignIn => session::dev_sign_in(req, cx).await,
        Route::CreateSession => session::create(req, cx).await,
        Route::SignOut => session::sign_out(),
        Route::Analyze => analyze::analyze(req, cx).await,
        Route::Settings => settings::get(req, cx).await,
        Route::PutSettings => settings::put(req, cx).await,
        Route::Audit => audit::list(req, cx).await,
        Route::ListDeployments => deployments::list(req, cx).await,
        Route::CreateDeployment => deployments::create(req, cx).await,
        Route::GetDeployment => deployments::get(req, cx, id).await,
        Route::DeleteDeployment => deployments::delete(req, cx, id).await,
        Route::RotateToken => deployments::rotate_token(req, cx, id).await,
        Route::StopDeployment => deployments::act(req, cx, id, Action::Stop).await,
        Route::StartDeployment => deployments::act(req, cx, id, Action::Start).await,
        Route::RestartDeployment => deployments::act(req, cx, id, Action::Restart).await,
        Route::PutCredentials => deployments::put_credentials(req, cx, id).await,
        Route::Usage => mcp::usage_report(req, cx, id).await,
        Route::Logs => deployments::logs(req, cx, id).await,
        Route::Mcp => mcp::handle(req, cx, id).await,
        Route::RegistryServers => registry::list(req, cx).await,
        Route::RegistryServer => registry::get(req, cx, id).await,
        Route::OpenApi => openapi::document(),
        Route::Page => dashboard::page(&req, cx).await,
        Route::ResourceMetadata => oauth::resource_metadata(&req, cx, id),
        Route::ServerMetadata => oauth::server_metadata(&req, cx),
        Route::OAuthRegister => oauth::register(req, cx).await,
        Route::OAuthAuthorize => oauth::authorize(req, cx).await,
        Route::OAuthToken => oauth::token(req, cx).await,
        Route::OAuthRevoke => oauth::revoke(req, cx).await,
        Route::OAuthRequest => oauth::request_info(req, cx, key).await,
        Route::OAuthDecide => oauth::decide(req, cx, key).await,
        Route::OAuthGrants => oauth::grants(req, cx, id).await,
        Route::RevokeOAuthGrant => oauth::revoke_grant(req, cx, id, key).await,
    }
}
