//! `GET /api/openapi.json` (open): the API contract, `docs/openapi.json`, compiled in so
//! the document served is the one the route-table test checked.

use worker::Response;

use crate::error::AppResult;
use crate::platform::web;

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub fn document() -> AppResult<Response> {
    Ok(web::json_text(200, DOCUMENT.to_string(), None)?)
}
