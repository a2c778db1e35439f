//! A deployment's machine over its life, over D1 and the Fly Machines API: which Fly
//! account to use, the machine config, creation (run by the `Deployer` Durable Object's
//! alarm, after the 201), updates and teardown. Shared by the routes, the Durable Object
//! and the reconcile cron so each rule lives once.
//!
//! Invariants: plaintext credentials exist only inside [`machine_config`]'s caller while a
//! request or alarm runs; a failed creation destroys whatever it made (no orphans); every
//! status change is a compare-and-set, so a delete racing a creation always wins and the
//! creator destroys the machine it finds itself owning no row for.

use serde_json::{json, Value};
use url::Url;
use worker::{D1Database, Env};

use crate::config::Config;
use crate::crypto::keyring::KeyRing;
use crate::crypto::secret::Secret;
use crate::crypto::vault::Sealed;
use crate::deploy::fly::{create_body, MachineSpec};
use crate::deploy::fly_client::{Fly, FlyError};
use crate::deploy::readiness::{self, Readiness};
use crate::deploy::request::Launch;
use crate::deploy::secrets::{
    is_stale, open_env, open_fly_token, open_upstream, seal_env, seal_fly_token, seal_upstream,
    Secrets,
};
use crate::deploy::state::Status;
use crate::error::{AppError, AppResult};
use crate::platform::env;
use crate::platform::log::Logger;
use crate::platform::machine::MachineLink;
use crate::platform::upstream::FetchUpstream;
use crate::store::audit::{self, Event};
use crate::store::deployments::{self as store, Deployment, Record};
use crate::store::settings;
use crate::time::now_ms;

/// The Fly account a deployment's machines live in.
pub struct Target {
    pub base: Url,
    pub app: String,
    token: Secret,
    pub account: Account,
}

/// Whose Fly account: the operator's (`FLY_APP`, `FLY_API_TOKEN`) or the owner's own (a
/// token and app from their settings). Recorded with the deployment at creation
/// (`deployments.config.account`, the token sealed in `machine_accounts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Account {
    Operator,
    User,
}

impl Target {
    pub fn fly<'a>(&'a self, up: &'a FetchUpstream) -> Fly<'a, FetchUpstream> {
        Fly {
            up,
            base: &self.base,
            app: &self.app,
            token: self.token.expose(),
        }
    }

    pub fn token(&self) -> &str {
        self.token.expose()
    }
}

pub fn ring(config: &Config) -> AppResult<&KeyRing> {
    config
        .encryption_keys
        .as_ref()
        .ok_or_else(|| AppError::NotConfigured {
            missing: vec!["ENCRYPTION_KEYS".into()],
        })
}

/// The owner's own Fly token and app from settings, when both are set.
async fn own_account(
    db: &D1Database,
    config: &Config,
    owner_id: &str,
) -> AppResult<Option<Target>> {
    let Some(ring) = &config.encryption_keys else {
        return Ok(None);
    };
    let token = settings::secret(db, ring, owner_id, settings::FLY_API_TOKEN).await?;
    let app = settings::value(db, owner_id, settings::FLY_APP).await?;
    Ok(match (token, app) {
        (Some(token), Some(app)) => Some(Target {
            base: config.fly.api_base.clone(),
            app,
            token: Secret::new(token),
            account: Account::User,
        }),
        _ => None,
    })
}

/// The account a *new* deployment goes to: the owner's own when their settings name one,
/// else the operator's. Existing deployments never come here: see [`target_of`].
pub async fn account_for_new(
    db: &D1Database,
    config: &Config,
    owner_id: &str,
) -> AppResult<Target> {
    match own_account(db, config, owner_id).await? {
        Some(t) => Ok(t),
        None => operator(config),
    }
}

/// The operator's Fly account (`FLY_APP`, `FLY_API_TOKEN`).
pub fn operator(config: &Config) -> AppResult<Target> {
    let mut missing = Vec::new();
    if config.fly.app.is_none() {
        missing.push("FLY_APP".to_string());
    }
    if config.fly.token.is_none() {
        missing.push("FLY_API_TOKEN".to_string());
    }
    match (&config.fly.app, &config.fly.token) {
        (Some(app), Some(token)) => Ok(Target {
            base: config.fly.api_base.clone(),
            app: app.clone(),
            token: token.clone(),
            account: Account::Operator,
        }),
        _ => Err(AppError::NotConfigured { missing }),
    }
}

/// The account recorded in a deployment's stored config: (kind, app). Rows stored before
/// the kind was recorded count as the operator's when their app is the operator's.
fn recorded_account(config: &Config, d: &Deployment) -> (Account, Option<String>) {
    let v: Value = serde_json::from_str(&d.config).unwrap_or(Value::Null);
    let app = v.get("app").and_then(Value::as_str).map(str::to_string);
    let kind = v
        .get("account")
        .and_then(|a| serde_json::from_value::<Account>(a.clone()).ok())
        .unwrap_or(if app.is_none() || app == config.fly.app {
            Account::Operator
        } else {
            Account::User
        });
    (kind, app)
}

/// The account a deployment's machines live in — always the one it was created in, never
/// the owner's *current* settings (which may name another account by now): stop, start,
/// credential updates, teardown, reconcile and re-provisioning all come here. For the
/// owner's own account, their current token is used while their settings still name the
/// same app (they may have rotated it), else the token recorded with the deployment.
pub async fn target_of(
    db: &D1Database,
    config: &Config,
    log: &Logger,
    d: &Deployment,
) -> AppResult<Target> {
    let (kind, app) = recorded_account(config, d);
    match kind {
        Account::Operator => {
            let mut t = operator(config)?;
            if let Some(app) = app {
                t.app = app;
            }
            Ok(t)
        }
        Account::User => {
            let app = app.ok_or_else(|| {
                AppError::internal(format!("deployment {}: no recorded Fly app", d.id))
            })?;
            if let Some(current) = own_account(db, config, &d.owner_id).await? {
                if current.app == app {
                    return Ok(current);
                }
            }
            let token = open_record(
                db,
                ring(config)?,
                log,
                &d.id,
                Record::FlyToken,
                open_fly_token,
                |r, id, v: &String| seal_fly_token(r, id, v),
            )
            .await?;
            Ok(Target {
                base: config.fly.api_base.clone(),
                app,
                token: Secret::new(token),
                account: Account::User,
            })
        }
    }
}

/// What `deployments.config` holds: the launch plan, the requested region, and the Fly
/// account the machine lives in — its app (the gateway reaches it through that app's
/// proxy) and whose account it is.
pub fn stored_config(launch: &Launch, region: Option<&str>, target: &Target) -> Value {
    json!({ "launch": launch, "region": region, "app": target.app, "account": target.account })
}

/// The runner's MCP endpoint behind the Fly proxy of the deployment's app: the app's own
/// `https://{app}.fly.dev`, unless `FLY_INGRESS_BASE` names one ingress for every app (the
/// local machines service, or a proxy of the operator's that routes by app and
/// `fly-force-instance-id`).
pub fn ingress_url(config: &Config, stored: &str) -> String {
    let app = serde_json::from_str::<Value>(stored)
        .ok()
        .and_then(|v| v.get("app").and_then(Value::as_str).map(str::to_string));
    let base = match (
        &config.fly.ingress_base,
        app.as_deref().or(config.fly.app.as_deref()),
    ) {
        (Some(b), _) => b.as_str().trim_end_matches('/').to_string(),
        (None, Some(a)) => format!("https://{a}.fly.dev"),
        (None, None) => "https://invalid.fly.dev".to_string(),
    };
    format!("{base}/mcp")
}

pub fn launch_of(d: &Deployment) -> AppResult<(Launch, Option<String>)> {
    let v: Value = serde_json::from_str(&d.config)
        .map_err(|_| AppError::internal(format!("deployment {}: config is not JSON", d.id)))?;
    let launch = serde_json::from_value::<Launch>(v.get("launch").cloned().unwrap_or(Value::Null))
        .ok()
        // A plan stored before the grammar was enforced is refused, never run.
        .filter(Launch::launchable)
        .ok_or_else(|| AppError::internal(format!("deployment {}: no launchable plan", d.id)))?;
    let region = v.get("region").and_then(Value::as_str).map(str::to_string);
    Ok((launch, region))
}

/// The Fly create body for the deployment (`{"name", "region"?, "config"}`); a plan whose
/// package or version fails the launch grammar is refused here too.
pub fn machine_config(
    config: &Config,
    deployment_id: &str,
    launch: &Launch,
    region: Option<&str>,
    secrets: &Secrets,
) -> AppResult<Value> {
    Ok(create_body(&MachineSpec {
        deployment_id,
        image: &config.fly.runner_image,
        region,
        launch: &launch.spec()?,
        credentials: &secrets.env,
        upstream_secret: &secrets.upstream_secret,
        memory_mb: config.fly.memory_mb,
    }))
}

/// Opens one sealed record, re-sealing it under the current key if an older key sealed it
/// (touching a record is when it moves to the new key).
pub async fn open_record<T>(
    db: &D1Database,
    ring: &KeyRing,
    log: &Logger,
    deployment_id: &str,
    record: Record,
    open: impl Fn(&KeyRing, &str, &Sealed) -> AppResult<T>,
    seal: impl Fn(&KeyRing, &str, &T) -> AppResult<Sealed>,
) -> AppResult<T> {
    let sealed = store::sealed(db, record, deployment_id)
        .await?
        .ok_or_else(|| {
            AppError::internal(format!(
                "deployment {deployment_id}: a sealed record is missing"
            ))
        })?;
    let value = open(ring, deployment_id, &sealed)?;
    if is_stale(ring, &sealed) {
        let fresh = seal(ring, deployment_id, &value)?;
        store::put_sealed(db, record, deployment_id, &fresh, now_ms()).await?;
        log.info(
            "secret_resealed",
            json!({ "deployment": deployment_id, "from": sealed.key_id, "to": fresh.key_id }),
        );
    }
    Ok(value)
}

/// Opens both of the deployment's secrets (to build or update its machine).
pub async fn open_secrets(
    db: &D1Database,
    ring: &KeyRing,
    log: &Logger,
    deployment_id: &str,
) -> AppResult<Secrets> {
    let env = open_record(
        db,
        ring,
        log,
        deployment_id,
        Record::Env,
        open_env,
        |r, id, v| seal_env(r, id, v),
    )
    .await?;
    let upstream_secret = open_record(
        db,
        ring,
        log,
        deployment_id,
        Record::Upstream,
        open_upstream,
        |r, id, v: &String| seal_upstream(r, id, v),
    )
    .await?;
    Ok(Secrets {
        env,
        upstream_secret,
    })
}

/// Appends an audit event; a lost audit row is logged, never fatal to the action.
pub async fn audit_user(
    db: &D1Database,
    log: &Logger,
    user_id: &str,
    action: &str,
    resource: &str,
    metadata: Value,
) {
    let event = Event {
        user_id: Some(user_id),
        action,
        resource: Some(resource),
        metadata,
    };
    if let Err(e) = audit::record(db, log.redactor(), event, now_ms()).await {
        log.error(
            "audit_failed",
            json!({ "action": action, "detail": e.log_detail() }),
        );
    }
}

/// An audit event about a deployment (`resource` = `deployment:{id}`).
pub async fn audit(
    db: &D1Database,
    log: &Logger,
    user_id: &str,
    action: &str,
    deployment_id: &str,
    metadata: Value,
) {
    let resource = format!("deployment:{deployment_id}");
    audit_user(db, log, user_id, action, &resource, metadata).await
}

/// Asks the deployment's `Deployer` object to run [`provision`] in its alarm.
pub async fn schedule_provision(worker_env: &Env, deployment_id: &str) -> AppResult<()> {
    let mut answer = env::post_to_object(
        &env::deployers(worker_env)?,
        deployment_id,
        "/provision",
        Some(json!({ "deployment_id": deployment_id }).to_string()),
    )
    .await?;
    if answer.status_code() != 202 {
        let body = answer.text().await.unwrap_or_default();
        return Err(AppError::internal(format!(
            "deployer refused: {} {body}",
            answer.status_code()
        )));
    }
    Ok(())
}

/// Creates (or adopts) the deployment's machine and waits for it to start; the outcome
/// lands in `status` / `error_message`. Idempotent: running it twice adopts the machine.
pub async fn provision(
    worker_env: &Env,
    config: &Config,
    log: &mut Logger,
    id: &str,
) -> AppResult<()> {
    let db = env::db(worker_env)?;
    let up = FetchUpstream::default();
    let Some(d) = store::get(&db, id).await? else {
        // Deleted before we ran: make sure nothing of it is left on the platform.
        if let Ok(t) = operator(config) {
            t.fly(&up)
                .destroy_all(id, None)
                .await
                .map_err(FlyError::into_app)?;
        }
        return Ok(());
    };
    if !matches!(d.status()?, Status::Pending | Status::Deploying) {
        return Ok(());
    }
    store::transition(
        &db,
        id,
        &[Status::Pending],
        Status::Deploying,
        None,
        now_ms(),
    )
    .await?;
    let target = target_of(&db, config, log, &d).await?;
    log.also_redact(target.token());
    let fly = target.fly(&up);
    let prepared = async {
        let (launch, region) = launch_of(&d)?;
        let secrets = open_secrets(&db, ring(config)?, log, id).await?;
        for (_, v) in &secrets.env {
            log.also_redact(v);
        }
        log.also_redact(&secrets.upstream_secret);
        let body = machine_config(config, id, &launch, region.as_deref(), &secrets)?;
        Ok::<_, AppError>((body, secrets.upstream_secret))
    }
    .await;
    let (body, upstream_secret) = match prepared {
        Ok(b) => b,
        Err(e) => {
            log.error(
                "provision_prepare_failed",
                json!({ "deployment": id, "detail": e.log_detail() }),
            );
            fail(
                &db,
                log,
                &d,
                "The deployment's stored settings could not be read.",
            )
            .await?;
            return Ok(());
        }
    };
    let started = async {
        let machine = fly.create(id, &body).await?;
        let recorded = store::set_machine(&db, id, &machine.id, now_ms())
            .await
            .map_err(|_| FlyError::Transient {
                status: None,
                retry_after: None,
            })?;
        Ok::<_, FlyError>((machine, recorded))
    }
    .await;
    let machine = match started {
        Ok((m, true)) => m,
        Ok((m, false)) => {
            // The row left `deploying` (deleted meanwhile): the machine is ours to remove.
            return settle_orphan(&db, &fly, log, id, &m.id).await;
        }
        Err(e) => {
            let _ = fly.destroy_all(id, None).await;
            log.warn(
                "provision_failed",
                json!({ "deployment": id, "stage": "create", "reason": e.summary() }),
            );
            fail(
                &db,
                log,
                &d,
                &format!("The machine could not be created: {}.", e.summary()),
            )
            .await?;
            return Ok(());
        }
    };
    log.info(
        "machine_created",
        json!({ "deployment": id, "machine": machine.id, "state": machine.state }),
    );
    if let Err(e) = fly
        .wait_started(&machine.id, config.fly.start_timeout_secs)
        .await
    {
        let _ = fly.destroy_all(id, Some(&machine.id)).await;
        log.warn(
            "provision_failed",
            json!({ "deployment": id, "stage": "start", "reason": e.summary() }),
        );
        fail(
            &db,
            log,
            &d,
            &format!("The machine did not start: {}.", e.summary()),
        )
        .await?;
        return Ok(());
    }
    // Fly's `started` means the runner process is up; `running` means the MCP server
    // answered. The runner prepares the server (install, a probe that completes
    // `initialize`) and says so on `/health`.
    let link = MachineLink {
        url: ingress_url(config, &d.config),
        machine_id: machine.id.clone(),
        secret: upstream_secret.clone(),
    };
    if let Err(message) = wait_ready(&link, config.fly.start_timeout_secs).await {
        log.warn(
            "provision_failed",
            json!({ "deployment": id, "stage": "ready", "machine": machine.id }),
        );
        // The machine stays (recorded, stopped by Fly when idle) so its logs can be read
        // and a restart can try again; delete removes it.
        fail(&db, log, &d, &message).await?;
        return Ok(());
    }
    if store::transition(
        &db,
        id,
        &[Status::Deploying],
        Status::Running,
        None,
        now_ms(),
    )
    .await?
    {
        log.info(
            "deployment_running",
            json!({ "deployment": id, "machine": machine.id }),
        );
        audit(
            &db,
            log,
            &d.owner_id,
            "deployment.running",
            id,
            json!({ "by": "system", "machine": machine.id }),
        )
        .await;
        return Ok(());
    }
    settle_orphan(&db, &fly, log, id, &machine.id).await
}

/// Polls the runner's `/health` until it is `ready` (Ok) or `failed`, or `timeout_secs`
/// pass; the error is the message the person sees: the runner's reason and the server's
/// last stderr lines (masked by the runner; the caller's redactor masks again).
async fn wait_ready(link: &MachineLink, timeout_secs: u32) -> Result<(), String> {
    let deadline = now_ms() + i64::from(timeout_secs) * 1000;
    loop {
        let look = link
            .get_json("/health", std::time::Duration::from_secs(10))
            .await;
        if let Ok((status, body)) = &look {
            match readiness::parse_health(*status, body) {
                Readiness::Ready => return Ok(()),
                Readiness::Failed(reason) => {
                    let tail = match link
                        .get_json("/logs?lines=50", std::time::Duration::from_secs(10))
                        .await
                    {
                        Ok((200, logs)) => readiness::stderr_tail(&logs, readiness::TAIL_LINES),
                        _ => Vec::new(),
                    };
                    return Err(readiness::failure_message(&reason, &tail));
                }
                Readiness::Starting => {}
            }
        }
        if now_ms() >= deadline {
            return Err(format!(
                "The MCP server did not become ready within {timeout_secs} seconds; restart to try again, or read its logs."
            ));
        }
        worker::Delay::from(std::time::Duration::from_millis(readiness::POLL_MS)).await;
    }
}

/// After losing a race: if the row is gone or being deleted, destroy the machine; if a
/// twin run already marked it running, leave it.
async fn settle_orphan(
    db: &D1Database,
    fly: &Fly<'_, FetchUpstream>,
    log: &Logger,
    id: &str,
    machine_id: &str,
) -> AppResult<()> {
    match store::get(db, id).await? {
        Some(d) if d.status()? != Status::Deleting => Ok(()),
        _ => {
            log.info(
                "machine_orphaned",
                json!({ "deployment": id, "machine": machine_id }),
            );
            fly.destroy_all(id, Some(machine_id))
                .await
                .map_err(FlyError::into_app)
        }
    }
}

async fn fail(db: &D1Database, log: &Logger, d: &Deployment, message: &str) -> AppResult<()> {
    let message = log.redactor().redact(message);
    if store::transition(
        db,
        &d.id,
        &[Status::Pending, Status::Deploying],
        Status::Failed,
        Some(&message),
        now_ms(),
    )
    .await?
    {
        audit(
            db,
            log,
            &d.owner_id,
            "deployment.failed",
            &d.id,
            json!({ "by": "system" }),
        )
        .await;
    }
    Ok(())
}

/// Whether the account refused our token (revoked or wrong): nothing can be done there.
fn refused_auth(e: &FlyError) -> bool {
    matches!(
        e,
        FlyError::Refused {
            status: 401 | 403,
            ..
        }
    )
}

/// Destroys every machine of the deployment in the account it lives in, then removes its
/// row and credentials. A platform failure leaves the row in `deleting` for a retry (the
/// caller's or cron's). An account that refuses our token cannot be cleaned: the row is
/// removed anyway only when no machine was ever recorded for it.
pub async fn teardown(
    db: &D1Database,
    config: &Config,
    log: &Logger,
    up: &FetchUpstream,
    d: &Deployment,
) -> AppResult<()> {
    let target = target_of(db, config, log, d).await?;
    match target
        .fly(up)
        .destroy_all(&d.id, d.machine_id.as_deref())
        .await
    {
        Ok(()) => {}
        Err(e) if refused_auth(&e) && d.machine_id.is_none() => log.warn(
            "teardown_account_refused",
            json!({ "deployment": d.id, "app": target.app, "reason": e.summary() }),
        ),
        Err(e) => return Err(e.into_app()),
    }
    store::delete(db, &d.id).await
}

/// Before a failed deployment is created again: whatever it left in the account it was
/// recorded in is destroyed (a machine whose server never became ready, or a twin of a
/// lost one), so the new creation starts from a fresh machine; then the owner's *current*
/// account is recorded in its place, so a person who fixed their settings is not stuck
/// with a broken account — and nothing is ever left behind in the old one. An old
/// account that refuses our token is only abandoned when no machine was recorded there.
pub async fn prepare_retry(
    db: &D1Database,
    config: &Config,
    log: &Logger,
    d: &Deployment,
) -> AppResult<()> {
    let up = FetchUpstream::default();
    let old = target_of(db, config, log, d).await?;
    match old
        .fly(&up)
        .destroy_all(&d.id, d.machine_id.as_deref())
        .await
    {
        Ok(()) => {}
        Err(e) if refused_auth(&e) && d.machine_id.is_none() => {}
        Err(e) => return Err(e.into_app()),
    }
    if d.machine_id.is_some() {
        store::clear_machine(db, &d.id, now_ms()).await?;
    }
    let new = account_for_new(db, config, &d.owner_id).await?;
    if new.account == old.account && new.app == old.app {
        return Ok(());
    }
    let (launch, region) = launch_of(d)?;
    let mut stored = stored_config(&launch, region.as_deref(), &new);
    stored["display_name"] = json!(d.display());
    let stored = stored.to_string();
    let sealed = match new.account {
        Account::User => Some(seal_fly_token(ring(config)?, &d.id, new.token())?),
        Account::Operator => None,
    };
    store::set_account(db, &d.id, &stored, sealed.as_ref(), now_ms()).await?;
    log.info(
        "deployment_rehomed",
        json!({ "deployment": d.id, "from": old.app, "to": new.app }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn each_app_is_reached_at_its_own_fly_dev_unless_one_ingress_serves_all() {
        let prod = cfg(&[("FLY_APP", "catwalk-machines")]);
        assert_eq!(
            ingress_url(&prod, r#"{"app": "catwalk-machines"}"#),
            "https://catwalk-machines.fly.dev/mcp"
        );
        assert_eq!(
            ingress_url(&prod, r#"{"app": "personal"}"#),
            "https://personal.fly.dev/mcp"
        );
        assert_eq!(
            ingress_url(&prod, "{}"),
            "https://catwalk-machines.fly.dev/mcp"
        );
        let local = cfg(&[
            ("FLY_APP", "catwalk-test"),
            ("FLY_INGRESS_BASE", "http://127.0.0.1:4280/"),
        ]);
        assert_eq!(
            ingress_url(&local, r#"{"app": "personal"}"#),
            "http://127.0.0.1:4280/mcp"
        );
    }
}
