//! `/api/registry/servers…` (signed in): the official MCP registry (being built).

use worker::{Request, Response};

use crate::error::{AppError, AppResult};
use crate::routes::Ctx;

pub async fn list(_req: Request, _cx: &mut Ctx) -> AppResult<Response> {
    Err(AppError::not_found("No such route."))
}

pub async fn get(_req: Request, _cx: &mut Ctx, _name: Option<&str>) -> AppResult<Response> {
    Err(AppError::not_found("No such route."))
}
