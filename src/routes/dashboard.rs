//! `GET` of a dashboard page (`/`, `/deployments`, …): the dashboard's `index.html` from
//! the Worker's static assets (`ASSETS`, built into `build/web`), with the headers the
//! assets give it (`_headers`: the CSP and friends, `no-cache`).

use worker::{Headers, Request, Response};

use crate::error::{AppError, AppResult};
use crate::routes::Ctx;

pub async fn page(req: &Request, cx: &Ctx) -> AppResult<Response> {
    let assets = cx
        .env
        .assets("ASSETS")
        .map_err(|_| AppError::NotConfigured {
            missing: vec!["ASSETS".to_string()],
        })?;
    // The assets answer `/` with index.html; the page itself routes the rest.
    let mut index = req.url()?;
    index.set_path("/");
    index.set_query(None);
    let mut upstream = assets.fetch(index.to_string(), None).await?;
    let status = upstream.status_code();
    let body = upstream.bytes().await?;
    // A fetched response's headers are immutable: copy them so the pipeline can add its own.
    let headers = Headers::new();
    for (k, v) in upstream.headers().entries() {
        headers.set(&k, &v)?;
    }
    Ok(Response::from_bytes(body)?
        .with_status(status)
        .with_headers(headers))
}
