//! `GET /api/registry/servers` and `GET /api/registry/servers/{name}` (signed in): the
//! official MCP registry, searched, normalized and cached (`crate::registry`). Handlers
//! only: parse, ask, answer.

use worker::{Request, Response};

use crate::error::{AppError, AppResult};
use crate::http::route::decode_registry_name;
use crate::platform::env;
use crate::platform::upstream::FetchUpstream;
use crate::platform::web;
use crate::registry::{self, fetch};
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::memo::KvMemo;
use crate::time::now_ms;

/// `GET /api/registry/servers?search=&cursor=&limit=&include_inactive=`
pub async fn list(req: Request, cx: &mut Ctx) -> AppResult<Response> {
    signed_in(&req, cx).await?;
    let query = fetch::parse_query(web::query(&req).as_deref())?;
    let kv = env::cache(&cx.env)?;
    let page = fetch::list(
        &FetchUpstream::default(),
        &KvMemo { kv: &kv },
        &cx.config.upstreams.mcp_registry,
        &query,
    )
    .await?;
    web::json(200, &page)
}

/// `?version=` on one server: optional, a version as the registry spells them.
fn version_query(query: Option<&str>) -> AppResult<Option<String>> {
    let mut version = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "version" {
            if !fetch::version_ok(&v) {
                return Err(AppError::bad_request(
                    "invalid_query",
                    "version must be a version such as 1.2.0 (letters, digits, . + - _).",
                ));
            }
            version = Some(v.into_owned());
        }
    }
    Ok(version)
}

/// `GET /api/registry/servers/{name}?version=`
pub async fn get(req: Request, cx: &mut Ctx, segment: Option<&str>) -> AppResult<Response> {
    signed_in(&req, cx).await?;
    let name = segment
        .and_then(decode_registry_name)
        .ok_or_else(|| AppError::not_found("No such server in the registry."))?;
    let version = version_query(web::query(&req).as_deref())?;
    let kv = env::cache(&cx.env)?;
    let (doc, entry, cached) = fetch::server(
        &FetchUpstream::default(),
        &KvMemo { kv: &kv },
        &cx.config.upstreams.mcp_registry,
        &name,
        version.as_deref(),
    )
    .await?;
    web::json(200, &registry::detail(&doc, &entry, cached, now_ms()))
}
