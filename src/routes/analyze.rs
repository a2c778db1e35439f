//! `POST /api/analyze` (signed in): source → launch plan. Parse, look up, answer; the
//! caching, quota, lock and pipeline rules live in `crate::planner`.
//!
//! A cache hit is one round of independent reads issued together: the person's row (D1),
//! their own cached plan (D1, found by their JWT's subject in the same round) and the
//! shared plan (KV). No write, unless this is their first sign-in or `last_seen_at` is
//! older than its refresh interval.

use serde_json::Value;
use worker::{Request, Response};

use crate::analysis::request::{parse, AnalyzeRequest};
use crate::error::AppResult;
use crate::planner::{self, Reader};
use crate::platform::web;
use crate::routes::auth::{user_of, verified};
use crate::routes::Ctx;

pub async fn analyze(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let identity = verified(&req, cx)?;
    let body = web::read_json(&mut req).await?;
    let request = parse(&body)?;
    let lookup = async {
        if request.refresh {
            return Ok(None);
        }
        planner::cached(&cx.env, &request, Reader::Subject(&identity.subject)).await
    };
    let (user, hit) = futures_util::join!(user_of(cx, &identity), lookup);
    let user = user?;
    let plan = match hit? {
        Some(plan) => plan,
        None => planner::analyze(&cx.env, &request, &body, &user.id).await?,
    };
    web::json(200, &plan)
}

/// The plan for a parsed request, from the cache or the pipeline, for the routes that need
/// one on the way to something else (creating a deployment).
pub async fn plan_for(
    cx: &Ctx,
    request: &AnalyzeRequest,
    body: &Value,
    user_id: &str,
) -> AppResult<Value> {
    planner::plan_for(&cx.env, request, body, user_id).await
}
