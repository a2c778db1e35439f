//! `/api/deployments…` (signed in; another owner's deployment is always a 404): create,
//! list, read, delete, rotate the access token, stop / start / restart, replace the
//! credentials. The machine work itself lives in `crate::lifecycle`.

use serde_json::{json, Value};
use worker::{Request, Response};

use crate::deploy::client_config::snippets;
use crate::deploy::fly_client::FlyError;
use crate::deploy::request::{parse_create, parse_credentials, Launch};
use crate::deploy::secrets::{seal_env, seal_fly_token, seal_upstream, Secrets};
use crate::deploy::state::Status;
use crate::deploy::token;
use crate::error::{AppError, AppResult};
use crate::http::page::{self, cursor};
use crate::identity::users::User;
use crate::ids::{new_id, random_hex};
use crate::lifecycle::{self, account_for_new, audit, ring, target_of, Account};
use crate::platform::upstream::FetchUpstream;
use crate::platform::{env, web};
use crate::proxy::gate;
use crate::routes::analyze::plan_for;
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::deployments::{self as store, Deployment, NewDeployment, Record};
use crate::time::{now_ms, rfc3339};

/// The MCP URL a deployment is reached at: `PUBLIC_BASE_URL` or this request's origin.
fn connection_url(req: &Request, cx: &Ctx, id: &str) -> AppResult<String> {
    let base = match &cx.config.public_base_url {
        Some(u) => u.as_str().trim_end_matches('/').to_string(),
        None => req.url()?.origin().ascii_serialization(),
    };
    Ok(format!("{base}/api/mcp/{id}"))
}

/// The public form: never a credential value, the token, or its digest.
fn deployment_json(d: &Deployment, url: &str, machine: Option<Value>) -> Value {
    let (launch, region) = lifecycle::launch_of(d)
        .map(|(l, r)| (Some(l), r))
        .unwrap_or((None, None));
    json!({
        "id": d.id,
        "name": d.display(),
        "slug": d.name,
        "status": d.status,
        "source": d.source,
        "package": d.package,
        "runtime": d.runtime,
        "version": launch.as_ref().and_then(|l| l.version.clone()),
        "region": region,
        "env_vars": launch.map(|l| l.env_vars.into_iter().map(|v| json!({"name": v.name, "required": v.required, "secret": v.secret})).collect::<Vec<_>>()),
        "error_message": d.error_message,
        "connection_url": url,
        "machine": machine,
        "created_at": rfc3339(d.created_at),
        "updated_at": rfc3339(d.updated_at),
    })
}

async fn owned(cx: &Ctx, user: &User, id: Option<&str>) -> AppResult<Deployment> {
    let id = id.ok_or_else(|| AppError::not_found("No such deployment."))?;
    store::get_owned(&env::db(&cx.env)?, &user.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such deployment."))
}

/// `POST /api/deployments`
pub async fn create(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let body = web::read_json(&mut req).await?;
    let request = parse_create(&body)?;
    for (_, v) in &request.credentials {
        cx.log.also_redact(v);
    }
    let ring = ring(&cx.config)?.clone();
    let db = env::db(&cx.env)?;
    // Configuration first: nothing is validated against a platform we cannot reach. The
    // account chosen now is recorded with the deployment and used for its whole life.
    let account = account_for_new(&db, &cx.config, &user.id).await?;
    let plan = plan_for(cx, &request.source, &body, &user.id).await?;
    let launch = Launch::from_plan(&plan)?;
    launch.check(&request.credentials)?;

    let id = new_id("dep")?;
    let (access_token, digest) = token::mint()?;
    let secrets = Secrets {
        env: request.credentials.clone(),
        upstream_secret: random_hex(32)?,
    };
    let sealed = seal_env(&ring, &id, &secrets.env)?;
    let upstream = seal_upstream(&ring, &id, &secrets.upstream_secret)?;
    let fly_token = match account.account {
        Account::User => Some(seal_fly_token(&ring, &id, account.token())?),
        Account::Operator => None,
    };
    let source = request.source.source.normalized();
    let mut config = lifecycle::stored_config(&launch, request.region.as_deref(), &account);
    config["display_name"] = json!(request.name.display);
    let config = config.to_string();
    let now = now_ms();
    store::insert(
        &db,
        &NewDeployment {
            id: &id,
            owner_id: &user.id,
            name: &request.name.slug,
            source: &source,
            package: &launch.package,
            runtime: &launch.runtime,
            config: &config,
            token_hash: &digest,
        },
        &sealed,
        &upstream,
        fly_token.as_ref(),
        cx.config.limits.deployments_per_user,
        now,
    )
    .await?;
    audit(
        &db,
        &cx.log,
        &user.id,
        "deployment.created",
        &id,
        json!({ "name": request.name.slug, "source": source, "credentials": request.credentials.iter().map(|(k, _)| k).collect::<Vec<_>>() }),
    )
    .await;
    store::transition(
        &db,
        &id,
        &[Status::Pending],
        Status::Deploying,
        None,
        now_ms(),
    )
    .await?;
    // The deployment's gateway object is created near where its machine will run.
    gate::place(&cx.env, &cx.log, &id, request.region.as_deref()).await;
    if let Err(e) = lifecycle::schedule_provision(&cx.env, &id).await {
        // The row stays `deploying`; the reconcile cron schedules it again.
        cx.log.error(
            "provision_schedule_failed",
            json!({ "deployment": id, "detail": e.log_detail() }),
        );
    }
    let url = connection_url(&req, cx, &id)?;
    cx.log.also_redact(&access_token);
    let mut out = json!({
        "id": id,
        "name": request.name.display,
        "slug": request.name.slug,
        "status": Status::Deploying.as_str(),
        "connection_url": url,
        "access_token": access_token,
        "client_config": snippets(&request.name.slug, &url, &access_token),
    });
    if let Some(d) = store::get(&db, &id).await? {
        out["deployment"] = deployment_json(&d, &url, None);
    }
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
            let db = env::db(&cx.env)?;
            let up = FetchUpstream::default();
            match target_of(&db, &cx.config, &cx.log, &d).await {
                Ok(t) => Some(match t.fly(&up).peek(mid).await {
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
    let db = env::db(&cx.env)?;
    let all: Vec<Status> = Status::ALL.to_vec();
    store::transition(&db, &d.id, &all, Status::Deleting, None, now_ms()).await?;
    // The URL stops answering now, not when the machine is gone.
    gate::forget(&cx.env, &cx.log, &d.id).await;
    let up = FetchUpstream::default();
    lifecycle::teardown(&db, &cx.config, &cx.log, &up, &d).await?;
    gate::forget_deleted(&cx.env, &cx.log, &d.id).await;
    audit(
        &db,
        &cx.log,
        &user.id,
        "deployment.deleted",
        &d.id,
        json!({ "name": d.name }),
    )
    .await;
    Ok(Response::empty()?.with_status(204))
}

/// `POST /api/deployments/{id}/rotate-token`: the old token fails from this write on.
/// The per-machine upstream secret rotates with it whenever the deployment has a settled
/// machine: the machine is updated with the new secret first (it reboots), then both are
/// written together. Mid-creation the upstream secret is left alone (the creation is using
/// it); a platform that cannot be reached still rotates the access token — that is the
/// part a person rotating a leaked token needs at once — and says so.
pub async fn rotate_token(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let d = owned(cx, &user, id).await?;
    let db = env::db(&cx.env)?;
    let (access_token, digest) = token::mint()?;
    cx.log.also_redact(&access_token);
    let upstream = match rotate_upstream(cx, &db, &d).await {
        Ok(sealed) => sealed,
        Err(e) => {
            cx.log.warn(
                "upstream_rotation_failed",
                json!({ "deployment": d.id, "code": e.code(), "detail": e.log_detail() }),
            );
            None
        }
    };
    if !store::rotate_secrets(&db, &user.id, &d.id, &digest, upstream.as_ref(), now_ms()).await? {
        return Err(AppError::Conflict {
            code: "deployment_deleting",
            message: "The deployment is being deleted.".into(),
        });
    }
    // The old token fails on the very next request.
    gate::forget(&cx.env, &cx.log, &d.id).await;
    audit(
        &db,
        &cx.log,
        &user.id,
        "deployment.token_rotated",
        &d.id,
        json!({ "upstream_secret_rotated": upstream.is_some() }),
    )
    .await;
    let url = connection_url(&req, cx, &d.id)?;
    web::json(
        200,
        &json!({ "access_token": access_token, "client_config": snippets(&d.name, &url, &access_token), "upstream_secret_rotated": upstream.is_some() }),
    )
}

/// A new upstream secret, already on the deployment's machine, sealed for storage; `None`
/// when the deployment is mid-creation (or being deleted) and keeps its current one.
async fn rotate_upstream(
    cx: &mut Ctx,
    db: &worker::D1Database,
    d: &Deployment,
) -> AppResult<Option<crate::crypto::vault::Sealed>> {
    let status = d.status()?;
    if matches!(
        status,
        Status::Pending | Status::Deploying | Status::Deleting
    ) {
        return Ok(None);
    }
    let ring = ring(&cx.config)?;
    let old = lifecycle::open_secrets(db, ring, &cx.log, &d.id).await?;
    let secrets = Secrets {
        env: old.env,
        upstream_secret: random_hex(32)?,
    };
    cx.log.also_redact(&secrets.upstream_secret);
    if let (Some(machine), Status::Running | Status::Stopped) = (&d.machine_id, status) {
        let (launch, region) = lifecycle::launch_of(d)?;
        let target = target_of(db, &cx.config, &cx.log, d).await?;
        let up = FetchUpstream::default();
        let body =
            lifecycle::machine_config(&cx.config, &d.id, &launch, region.as_deref(), &secrets)?;
        target
            .fly(&up)
            .update(machine, &body["config"])
            .await
            .map_err(FlyError::into_app)?;
    }
    Ok(Some(seal_upstream(ring, &d.id, &secrets.upstream_secret)?))
}

#[derive(Clone, Copy)]
pub enum Action {
    Stop,
    Start,
    Restart,
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
    let db = env::db(&cx.env)?;
    let status = d.status()?;
    let (next, verb) = match (action, status) {
        (Action::Stop, _) => (Status::Stopped, "stopped"),
        (Action::Start, _) => (Status::Running, "started"),
        (Action::Restart, Status::Failed) => (Status::Deploying, "redeployed"),
        (Action::Restart, Status::Stopped) => (Status::Running, "started"),
        (Action::Restart, Status::Running) => (Status::Running, "restarted"),
        (Action::Restart, other) => {
            return Err(AppError::Conflict {
                code: "illegal_transition",
                message: format!("A {} deployment cannot be restarted.", other.as_str()),
            })
        }
    };
    // Stop and start are real transitions (stopping a stopped deployment is a 409);
    // restarting a running one keeps its status.
    if next != status || !matches!(action, Action::Restart) {
        status.transition(next)?;
    }
    if next == Status::Deploying {
        lifecycle::prepare_retry(&db, &cx.config, &cx.log, &d).await?;
        store::transition(
            &db,
            &d.id,
            &[Status::Failed],
            Status::Deploying,
            None,
            now_ms(),
        )
        .await?;
        gate::forget(&cx.env, &cx.log, &d.id).await;
        lifecycle::schedule_provision(&cx.env, &d.id).await?;
    } else {
        let machine = d
            .machine_id
            .as_deref()
            .ok_or_else(|| AppError::internal(format!("{} has no machine", d.id)))?;
        let target = target_of(&db, &cx.config, &cx.log, &d).await?;
        let up = FetchUpstream::default();
        let fly = target.fly(&up);
        let done = match (action, status) {
            (Action::Stop, _) => fly.stop(machine).await,
            (Action::Restart, Status::Running) => fly.restart(machine).await,
            _ => fly.start(machine).await,
        };
        done.map_err(FlyError::into_app)?;
        if next != status && !store::transition(&db, &d.id, &[status], next, None, now_ms()).await?
        {
            return Err(AppError::Conflict {
                code: "deployment_changed",
                message: "The deployment changed meanwhile; read it again.".into(),
            });
        }
        gate::forget(&cx.env, &cx.log, &d.id).await;
    }
    audit(
        &db,
        &cx.log,
        &user.id,
        &format!("deployment.{verb}"),
        &d.id,
        json!({}),
    )
    .await;
    let fresh = store::get(&db, &d.id).await?.unwrap_or(d);
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
    let (launch, region) = lifecycle::launch_of(&d)?;
    launch.check(&creds)?;
    let status = d.status()?;
    if matches!(
        status,
        Status::Pending | Status::Deploying | Status::Deleting
    ) {
        return Err(AppError::Conflict {
            code: "deployment_busy",
            message: format!(
                "A {} deployment's credentials cannot change now; try again when it has settled.",
                status.as_str()
            ),
        });
    }
    let db = env::db(&cx.env)?;
    let ring = ring(&cx.config)?;
    let old = lifecycle::open_secrets(&db, ring, &cx.log, &d.id).await?;
    let secrets = Secrets {
        env: creds,
        upstream_secret: old.upstream_secret,
    };
    let sealed = seal_env(ring, &d.id, &secrets.env)?;
    if let (Some(machine), Status::Running | Status::Stopped) = (&d.machine_id, status) {
        let target = target_of(&db, &cx.config, &cx.log, &d).await?;
        let up = FetchUpstream::default();
        let body =
            lifecycle::machine_config(&cx.config, &d.id, &launch, region.as_deref(), &secrets)?;
        target
            .fly(&up)
            .update(machine, &body["config"])
            .await
            .map_err(FlyError::into_app)?;
    }
    store::put_sealed(&db, Record::Env, &d.id, &sealed, now_ms()).await?;
    gate::forget(&cx.env, &cx.log, &d.id).await;
    audit(
        &db,
        &cx.log,
        &user.id,
        "deployment.credentials_updated",
        &d.id,
        json!({ "credentials": secrets.env.iter().map(|(k, _)| k).collect::<Vec<_>>() }),
    )
    .await;
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
    let status = d.status()?;
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
    let db = env::db(&cx.env)?;
    let secrets = lifecycle::open_secrets(&db, ring(&cx.config)?, &cx.log, &d.id).await?;
    for (_, v) in &secrets.env {
        cx.log.also_redact(v);
    }
    cx.log.also_redact(&secrets.upstream_secret);
    let link = crate::platform::machine::MachineLink {
        url: lifecycle::ingress_url(&cx.config, &d.config),
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
