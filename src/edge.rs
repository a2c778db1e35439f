//! The request pipeline every route shares: request id, configuration, CORS and origin
//! policy, routing, the one error mapping, security headers, and one access-log line.

use serde_json::json;
use worker::{Context, Env, Request, Response};

use crate::error::AppError;
use crate::http::{cors, host, route};
use crate::ids::random_hex;
use crate::log::Redactor;
use crate::platform::log::Logger;
use crate::platform::{env, web};
use crate::routes::{dispatch, Ctx};
use crate::time::now_ms;

pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

pub async fn handle(
    req: Request,
    worker_env: Env,
    worker_ctx: Context,
) -> worker::Result<Response> {
    let started = now_ms();
    let config = env::config(&worker_env);
    let request_id = random_hex(8).unwrap_or_else(|_| format!("t{started}"));
    let log = Logger::new(Redactor::new(config.secret_values()), request_id.clone());

    // The method as sent: the `worker` crate's `Method` reads any method it does not know
    // (QUERY, PROPFIND, …) as GET, which would answer them like GET instead of 405.
    let method = req.inner().method();
    let path = req.path();
    // Never the `?token=` an MCP client may carry.
    let query = crate::gateway::request::loggable_query(web::query(&req).as_deref());
    let origin = web::header(&req, "origin");
    let allowed_origin = origin
        .as_deref()
        .filter(|o| cors::is_allowed(o, &config.allowed_origins))
        .map(str::to_string);
    // A Host that is not ours (DNS rebinding of a local `wrangler dev`) is refused before
    // anything else, and so never makes its own Origin look like ours.
    let host_served = host::is_served(
        config.environment,
        req.url().ok().as_ref().and_then(|u| u.host_str()),
        config.public_base_url.as_ref(),
    );
    // The dashboard the Worker serves calls it from its own origin: always allowed, and
    // needing no CORS headers.
    let own_origin = origin.as_deref().is_some_and(|o| {
        let here = req.url().ok().map(|u| u.origin().ascii_serialization());
        let public = config
            .public_base_url
            .as_ref()
            .map(|u| u.origin().ascii_serialization());
        Some(o) == here.as_deref() || Some(o) == public.as_deref()
    });

    let mut cx = Ctx {
        env: worker_env,
        config,
        log,
        worker: worker_ctx,
    };

    let is_preflight =
        method == "OPTIONS" && web::header(&req, "access-control-request-method").is_some();
    // The authorization server's credential-free endpoints are open to any origin.
    let public_oauth = cors::is_public_oauth(&path);
    let result = if !host_served {
        Err(AppError::Forbidden {
            code: "host_not_allowed",
            message: "This host name is not served here.".to_string(),
        })
    } else if public_oauth && is_preflight {
        // Its CORS headers are added below, with every public OAuth answer's.
        Response::empty()
            .map(|r| r.with_status(204))
            .map_err(AppError::from)
    } else if origin.is_some() && allowed_origin.is_none() && !own_origin && !public_oauth {
        // Present, not ours and not listed: refuse outright, preflight or not (also our
        // CSRF line).
        Err(AppError::Forbidden {
            code: "origin_not_allowed",
            message: "This origin may not call the API.".to_string(),
        })
    } else if is_preflight {
        preflight(&req, allowed_origin.as_deref())
    } else {
        match route::resolve(&method, &path) {
            Ok(r) => dispatch(r, req, &mut cx).await,
            Err(e) => Err(e),
        }
    };

    // 4xx causes (e.g. which JWT check failed) ride on the access line; 5xx get their own
    // error line with the internal detail.
    let mut failure = None;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status() >= 500 {
                cx.log.error(
                    "request_failed",
                    json!({ "code": e.code(), "detail": e.log_detail() }),
                );
            } else {
                failure = Some(json!({ "code": e.code(), "reason": e.log_detail() }));
            }
            web::error_response(&e)
        }
    };

    let headers = response.headers_mut();
    let _ = headers.set(REQUEST_ID_HEADER, &request_id);
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    if !headers.has("Cache-Control").unwrap_or(false) {
        let _ = headers.set("Cache-Control", "no-store");
    }
    if public_oauth && (origin.is_some() || is_preflight) {
        for (k, v) in cors::public_headers(is_preflight) {
            let _ = headers.set(k, &v);
        }
    } else if let Some(o) = &allowed_origin {
        let _ = headers.append("Vary", "Origin");
        if !is_preflight {
            for (k, v) in cors::response_headers(o) {
                let _ = headers.set(k, &v);
            }
        }
    }

    let mut line = json!({
        "method": method,
        "path": path,
        "query": query,
        "status": response.status_code(),
        "ms": now_ms() - started,
        "origin": origin,
    });
    if let Some(f) = failure {
        line["error"] = f;
    }
    cx.log.info("request", line);
    Ok(response)
}

fn preflight(req: &Request, origin: Option<&str>) -> Result<Response, AppError> {
    let origin = origin.ok_or_else(|| {
        AppError::bad_request("not_a_preflight", "A preflight must carry Origin.")
    })?;
    let requested = web::header(req, "access-control-request-headers");
    let mut response = Response::empty()?.with_status(204);
    let headers = response.headers_mut();
    for (k, v) in cors::preflight_headers(origin, requested.as_deref()) {
        headers.set(k, &v)?;
    }
    Ok(response)
}
