//! `POST /api/analyze` (signed in): source → launch plan. Parse, look up, answer; the
//! caching, quota, lock and pipeline rules live in `crate::planner`.
//!
//! A cache hit in a warm isolate is the JWT check and one KV read: the person comes from
//! the isolate's recent table (`identity::recent`), and their own cached plans (D1) are
//! looked for only when their settings hold their own LLM key. A cold isolate resolves the
//! person from D1 first. No write, unless this is their first sign-in or `last_seen_at`
//! is older than its refresh interval.

use worker::{Request, Response};

use crate::analysis::request::parse;
use crate::error::AppResult;
use crate::planner::{self, Reader};
use crate::platform::web;
use crate::routes::auth::{known, verified};
use crate::routes::Ctx;

pub async fn analyze(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let identity = verified(&req, cx)?;
    let body = web::read_json(&mut req).await?;
    let request = parse(&body)?;
    let known = known(cx, &identity).await?;
    let user = known.user;
    let hit = if request.refresh {
        Ok(None)
    } else {
        let reader = if known.own_llm_key {
            Reader::User(&user.id)
        } else {
            Reader::Nobody
        };
        planner::cached(&cx.env, &request, reader).await
    };
    let plan = match hit? {
        Some(plan) => plan,
        None => planner::analyze(&cx.env, &request, &user.id).await?,
    };
    web::json(200, &plan)
}
