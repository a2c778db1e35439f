//! `/api/deployments…` (signed in; another owner's deployment is always a 404): create,
//! list, read, delete, rotate the access token, stop / start / restart, replace the
//! credentials, read the server's logs. Handlers only: parse, call `crate::lifecycle`,
//! answer.

use serde_json::{json, Value};
use worker::{Request, Response};

use crate::crypto::keyring;
use crate::deploy::client_config::snippets;
use crate::deploy::fly_client::FlyError;
use crate::deploy::request::{parse_create, parse_credentials};
use crate::deploy::state::Status;
use crate::error::{AppError, AppResult};
use crate::http::page::{self, cursor};
use crate::identity::users::User;
use crate::lifecycle::live::{schedule_provision, Live};
use crate::lifecycle::ports::{Accounts, Rows};
use crate::lifecycle::{self, Acted, Action};
use crate::platform::{env, web};
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::deployments::{self as store, Deployment};
use crate::time::rfc3339;

/// The MCP URL a deployment is reached at: `PUBLIC_BASE_URL` or this request's origin.
fn connection_url(req: &Request, cx: &Ctx, id: &str) -> AppResult<String> {
    Ok(crate::oauth::metadata::resource_url(
        &crate::routes::public_base(req, cx)?,
        id,
    ))
}

/// The public form: never a credential value, the token, or its digest.
fn deployment_json(d: &Deployment, url: &str, machine: Option<Value>) -> Value {
    let launch = d.config.launch();
    json!({
        "id": d.id,
        "name": d.display(),
        "slug": d.name,
        "status": d.status,
        "source": d.source,
        "package": d.package,
        "runtime": d.runtime,
        "version": launch.and_then(|l| l.version.clone()),
        "region": launch.and(d.region()),
        "env_vars": launch.map(|l| l.env_vars.iter().map(|v| json!({"name": v.name, "required": v.required, "secret": v.secret})).collect::<Vec<_>>()),
        "error_message": d.error_message,
        "connection_url": url,
        "machine": machine,
        "created_at": rfc3339(d.created_at),
        "updated_at": rfc3339(d.updated_at),
    })
}

/// The caller's deployment `id`; someone else's is a 404 like an unknown one.
pub(crate) async fn owned(cx: &Ctx, user: &User, id: Option<&str>) -> AppResult<Deployment> {
    let id = id.ok_or_else(|| AppError::not_found("No such deployment."))?;
    store::get_owned(&env::db(&cx.env)?, &user.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such deployment."))
}

/// `POST /api/deployments`
pub async fn create(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let body = web::read_json(&mut req).await?;
    let mut request = parse_create(&body)?;
    // Nothing is sealed without keys: said before any platform or analysis work.
    keyring::required(cx.config.encryption_keys.as_ref())?;
    for (_, v) in &request.credentials {
        cx.log.also_redact(v);
    }
    let live = Live::new(&cx.env, &cx.config, &cx.log)?;
    // Configuration first: nothing is validated against a platform we cannot reach. The
    // account chosen now is recorded with the deployment and used for its whole life.
    let account = live.accounts.for_new(&user.id).await?;
    let launch = crate::planner::launch_for(
        &cx.env,
        &cx.config,
        &mut request.source,
        &request.credentials,
        &user.id,
    )
    .await?;
    // Defaults and fixed values a registry entry sets are sealed like the person's own.
    request.credentials = launch.complete(&request.credentials)?;
    launch.check(&request.credentials)?;
    let created = lifecycle::create::create(
        &live,
        &cx.env,
        &mut cx.log,
        &user.id,
        &request,
        launch,
        &account,
    )
    .await?;
    let d = &created.deployment;
    let url = connection_url(&req, cx, &d.id)?;
    let out = json!({
        "id": d.id,
        "name": request.name.display,
        "slug": request.name.slug,
        "status": Status::Deploying.as_str(),
        "connection_url": url,
        "access_token": created.access_token,
        "client_config": snippets(&request.name.slug, &url, &created.access_token),
        "deployment": deployment_json(d, &url, None),
    });
    web::json(201, &out)
}

/// `GET /api/deployments`
pub async fn list(req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let page = page::parse(req.url()?.query())?;
    let rows = store::list_owned(&env::db(&cx.env)?, &user.id, &page).await?;
    let next = (rows.len() == page.limit as usize)
        .then(|| rows.last().map(|d| cursor(d.created_at, &d.id)))
        .flatten();
    let mut items = Vec::with_capacity(rows.len());
    for d in &rows {
        items.push(deployment_json(d, &connection_url(&req, cx, &d.id)?, None));
    }
    web::json(200, &json!({ "items": items, "next_cursor": next }))
}

/// `GET /api/deployments/{id}`: with the machine's live state when the platform answers.
pub async fn get(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let d = owned(cx, &user, id).await?;
    let machine = match &d.machine_id {
        Some(mid) => {
            let live = Live::new(&cx.env, &cx.config, &cx.log)?;
            match live.accounts.of(&d).await {
                Ok(t) => Some(match t.fly(&live.platform.0).peek(mid).await {
                    Ok(m) => json!({ "id": m.id, "state": m.state, "region": m.region }),
                    Err(FlyError::NotFound) => json!({ "id": mid, "state": "missing" }),
                    Err(_) => json!({ "id": mid, "state": "unknown" }),
                }),
                Err(_) => Some(json!({ "id": mid, "state": "unknown" })),
            }
        }
        None => None,
    };
    web::json(
        200,
        &deployment_json(&d, &connection_url(&req, cx, &d.id)?, machine),
    )
}

/// `DELETE /api/deployments/{id}`: machine destroyed, credentials and row removed. While
/// the platform is unreachable the deployment stays `deleting` and a retry (or the cron)
/// finishes the job; a second DELETE after success is a 404 like any unknown id.
pub async fn delete(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let d = owned(cx, &user, id).await?;
    let live = Live::new(&cx.env, &cx.config, &cx.log)?;
    lifecycle::retire::delete(&live.ports(), &cx.log, &d).await?;
    Ok(Response::empty()?.with_status(204))
}

/// `POST /api/deployments/{id}/rotate-token`: the old token fails from this write on (see
/// `lifecycle::operate::rotate_token` for the upstream secret).
pub async fn rotate_token(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let d = owned(cx, &user, id).await?;
    let live = Live::new(&cx.env, &cx.config, &cx.log)?;
    let rotated = lifecycle::operate::rotate_token(&live.ports(), &mut cx.log, &d).await?;
    let url = connection_url(&req, cx, &d.id)?;
    web::json(
        200,
        &json!({ "access_token": rotated.access_token, "client_config": snippets(&d.name, &url, &rotated.access_token), "upstream_secret_rotated": rotated.upstream_rotated }),
    )
}

/// `POST /api/deployments/{id}/stop|start|restart`. Restarting a failed deployment runs
/// the creation again.
pub async fn act(
    req: Request,
    cx: &mut Ctx,
    id: Option<&str>,
    action: Action,
) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let d = owned(cx, &user, id).await?;
    let live = Live::new(&cx.env, &cx.config, &cx.log)?;
    if lifecycle::operate::act(&live.ports(), &cx.log, &d, action).await? == Acted::Redeploy {
        schedule_provision(&cx.env, &d.id).await?;
    }
    let fresh = live.rows.get(&d.id).await?.unwrap_or(d);
    web::json(
        200,
        &deployment_json(&fresh, &connection_url(&req, cx, &fresh.id)?, None),
    )
}

/// `PUT /api/deployments/{id}/credentials`: the whole new set, validated against the
/// deployment's plan, sealed under the current key, then pushed to the machine (which
/// reboots with it). The stored record changes only once the machine took the new set.
pub async fn put_credentials(
    mut req: Request,
    cx: &mut Ctx,
    id: Option<&str>,
) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let d = owned(cx, &user, id).await?;
    let body = web::read_json(&mut req).await?;
    let creds = parse_credentials(&body)?;
    for (_, v) in &creds {
        cx.log.also_redact(v);
    }
    let live = Live::new(&cx.env, &cx.config, &cx.log)?;
    lifecycle::operate::replace_credentials(&live.ports(), &d, creds).await?;
    web::json(
        200,
        &deployment_json(&d, &connection_url(&req, cx, &d.id)?, None),
    )
}

/// Lines `GET …/logs` returns by default, and at most.
const DEFAULT_LOG_LINES: u32 = 100;
const MAX_LOG_LINES: u32 = 1000;

fn log_lines(query: Option<&str>) -> AppResult<u32> {
    let mut n = DEFAULT_LOG_LINES;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "lines" {
            n = v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LOG_LINES).contains(n))
                .ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_query",
                        format!("lines must be a number from 1 to {MAX_LOG_LINES}."),
                    )
                })?;
        }
    }
    Ok(n)
}

/// `GET /api/deployments/{id}/logs?lines=N` (owner): the MCP server's recent stderr as the
/// runner keeps it (in memory, masked there), masked again here with the deployment's own
/// credential values and the Worker's secrets. A machine that is stopped (or not there)
/// is not woken for this: its logs are empty until it runs again.
pub async fn logs(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let lines = log_lines(req.url()?.query())?;
    let d = owned(cx, &user, id).await?;
    let status = d.status;
    let empty = |note: &str| {
        web::json(
            200,
            &json!({ "deployment_id": d.id, "lines": [], "dropped": 0, "note": note }),
        )
    };
    let Some(machine_id) = d.machine_id.clone() else {
        return empty("The deployment has no machine yet.");
    };
    if matches!(status, Status::Stopped | Status::Deleting) {
        return empty("The machine is stopped; its logs start afresh when it runs again.");
    }
    let secrets = Live::new(&cx.env, &cx.config, &cx.log)?
        .rows
        .secrets(&d.id)
        .await?;
    for (_, v) in &secrets.env {
        cx.log.also_redact(v);
    }
    cx.log.also_redact(&secrets.upstream_secret);
    let link = crate::platform::machine::MachineLink {
        url: d.config.ingress_url(&cx.config),
        machine_id,
        secret: secrets.upstream_secret,
    };
    let unavailable = || AppError::Unavailable {
        message: "The deployment's machine did not answer; try again shortly.".into(),
        retry_after_secs: Some(5),
    };
    let (code, body) = link
        .get_json(
            &format!("/logs?lines={lines}"),
            std::time::Duration::from_secs(10),
        )
        .await
        .map_err(|_| unavailable())?;
    if code != 200 {
        cx.log.warn(
            "logs_unavailable",
            json!({ "deployment": d.id, "status": code }),
        );
        return Err(unavailable());
    }
    let redactor = cx.log.redactor();
    let items: Vec<Value> = body["lines"]
        .as_array()
        .map(|all| {
            let skip = all.len().saturating_sub(lines as usize);
            all.iter()
                .skip(skip)
                .filter_map(|l| {
                    let (ts, text) = match l {
                        Value::String(t) => (Value::Null, t.as_str()),
                        other => (other["ts"].clone(), other["line"].as_str()?),
                    };
                    Some(json!({ "ts": ts, "line": redactor.redact(text) }))
                })
                .collect()
        })
        .unwrap_or_default();
    web::json(
        200,
        &json!({ "deployment_id": d.id, "lines": items, "dropped": body["dropped"].as_u64().unwrap_or(0) }),
    )
}
