//! `GET /api/audit`: the caller's own audit events, newest first, keyset-paginated.

use serde_json::{json, Value};
use worker::{Request, Response};

use crate::error::AppResult;
use crate::http::page::{self, cursor};
use crate::platform::{env, web};
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::audit::list_own;
use crate::time::rfc3339;

pub async fn list(req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let page = page::parse(req.url()?.query())?;
    let rows = list_own(&env::db(&cx.env)?, &user.id, &page).await?;
    let next = (rows.len() == page.limit as usize)
        .then(|| rows.last().map(|e| cursor(e.created_at, &e.id)))
        .flatten();
    let items: Vec<Value> = rows
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "action": e.action,
                "resource": e.resource,
                "metadata": serde_json::from_str::<Value>(&e.metadata).unwrap_or(json!({})),
                "created_at": rfc3339(e.created_at),
            })
        })
        .collect();
    web::json(200, &json!({ "items": items, "next_cursor": next }))
}
