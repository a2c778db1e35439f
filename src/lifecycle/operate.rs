//! What a person does to a settled deployment: stop / start / restart (a failed one is
//! created again), replace its credentials, rotate its access token (and the machine's
//! upstream secret with it). Each pushes to the machine first and writes D1 after, so a
//! stored value is one the machine has.

use serde_json::json;

use crate::crypto::keyring;
use crate::crypto::vault::Sealed;
use crate::deploy::fly::machine_body;
use crate::deploy::fly_client::FlyError;
use crate::deploy::row::Deployment;
use crate::deploy::secrets::{seal_env, seal_upstream, Secrets};
use crate::deploy::state::Status;
use crate::deploy::token;
use crate::error::{AppError, AppResult};
use crate::ids::random_hex;
use crate::lifecycle::ports::{Accounts, Audit, Change, Machines, Platform, Ports, Probe, Rows};
use crate::lifecycle::retire::prepare_retry;
use crate::platform::log::Logger;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Stop,
    Start,
    Restart,
}

/// What an [`act`] left to do: nothing, or schedule the creation of a failed deployment
/// that is `deploying` again.
#[derive(Debug, PartialEq, Eq)]
pub enum Acted {
    Done,
    Redeploy,
}

/// Stop, start or restart. Stop and start are real transitions (stopping a stopped
/// deployment is a 409); restarting a running one keeps its status; restarting a failed
/// one cleans up and makes it `deploying` (the caller schedules the creation).
pub async fn act<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    log: &Logger,
    d: &Deployment,
    action: Action,
) -> AppResult<Acted> {
    let status = d.status;
    let (next, verb) = match (action, status) {
        (Action::Stop, _) => (Status::Stopped, "deployment.stopped"),
        (Action::Start, _) => (Status::Running, "deployment.started"),
        (Action::Restart, Status::Failed) => (Status::Deploying, "deployment.redeployed"),
        (Action::Restart, Status::Stopped) => (Status::Running, "deployment.started"),
        (Action::Restart, Status::Running) => (Status::Running, "deployment.restarted"),
        (Action::Restart, other) => {
            return Err(AppError::Conflict {
                code: "illegal_transition",
                message: format!("A {} deployment cannot be restarted.", other.as_str()),
            })
        }
    };
    if next != status || action != Action::Restart {
        status.transition(next)?;
    }
    if next == Status::Deploying {
        prepare_retry(p, log, d).await?;
        let again = Change::new(&[Status::Failed], Status::Deploying).audit(verb, json!({}));
        p.rows.transition(d, again).await?;
        return Ok(Acted::Redeploy);
    }
    let machine = d
        .machine_id
        .as_deref()
        .ok_or_else(|| AppError::internal(format!("{} has no machine", d.id)))?;
    let target = p.accounts.of(d).await?;
    let machines = p.platform.machines(&target);
    let done = match (action, status) {
        (Action::Stop, _) => machines.stop(machine).await,
        (Action::Restart, Status::Running) => machines.restart(machine).await,
        _ => machines.start(machine).await,
    };
    done.map_err(FlyError::into_app)?;
    if next == status {
        let audit = Audit {
            action: verb,
            metadata: json!({}),
        };
        p.rows.audit(d, audit).await;
        return Ok(Acted::Done);
    }
    let change = Change::new(std::slice::from_ref(&status), next).audit(verb, json!({}));
    if !p.rows.transition(d, change).await? {
        return Err(AppError::Conflict {
            code: "deployment_changed",
            message: "The deployment changed meanwhile; read it again.".into(),
        });
    }
    Ok(Acted::Done)
}

fn settling(status: Status) -> bool {
    matches!(
        status,
        Status::Pending | Status::Deploying | Status::Deleting
    )
}

/// Pushes `secrets` to the machine of a settled deployment (it reboots with them).
async fn push<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    d: &Deployment,
    secrets: &Secrets,
) -> AppResult<()> {
    if let (Some(machine), Status::Running | Status::Stopped) = (&d.machine_id, d.status) {
        let target = p.accounts.of(d).await?;
        let body = machine_body(p.config, &d.id, d.launch()?, d.region(), secrets)?;
        p.platform
            .machines(&target)
            .update(machine, &body["config"])
            .await
            .map_err(FlyError::into_app)?;
    }
    Ok(())
}

/// The whole new set of credentials, validated against the deployment's plan, sealed under
/// the current key, pushed to the machine, then stored.
pub async fn replace_credentials<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    d: &Deployment,
    creds: Vec<(String, String)>,
) -> AppResult<()> {
    let launch = d.launch()?;
    let creds = launch.complete(&creds)?;
    launch.check(&creds)?;
    if settling(d.status) {
        return Err(AppError::Conflict {
            code: "deployment_busy",
            message: format!(
                "A {} deployment's credentials cannot change now; try again when it has settled.",
                d.status.as_str()
            ),
        });
    }
    let ring = keyring::required(p.config.encryption_keys.as_ref())?;
    let old = p.rows.secrets(&d.id).await?;
    let secrets = Secrets {
        env: creds,
        upstream_secret: old.upstream_secret,
    };
    let sealed = seal_env(ring, &d.id, &secrets.env)?;
    push(p, d, &secrets).await?;
    p.rows.put_env(&d.id, &sealed).await?;
    let audit = Audit {
        action: "deployment.credentials_updated",
        metadata: json!({ "credentials": secrets.env.iter().map(|(k, _)| k).collect::<Vec<_>>() }),
    };
    p.rows.audit(d, audit).await;
    Ok(())
}

/// A rotation's outcome: the new access token (shown once) and whether the machine's
/// upstream secret rotated with it.
pub struct Rotated {
    pub access_token: String,
    pub upstream_rotated: bool,
}

/// The old token fails from this write on. The per-machine upstream secret rotates with it
/// whenever the deployment has a settled machine: the machine is updated with the new
/// secret first (it reboots), then both are written together. Mid-creation the upstream
/// secret is left alone (the creation is using it); a platform that cannot be reached
/// still rotates the access token — that is the part a person rotating a leaked token
/// needs at once — and says so.
pub async fn rotate_token<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    log: &mut Logger,
    d: &Deployment,
) -> AppResult<Rotated> {
    let (access_token, digest) = token::mint()?;
    log.also_redact(&access_token);
    let upstream = match rotate_upstream(p, log, d).await {
        Ok(sealed) => sealed,
        Err(e) => {
            log.warn(
                "upstream_rotation_failed",
                json!({ "deployment": d.id, "code": e.code(), "detail": e.log_detail() }),
            );
            None
        }
    };
    if !p
        .rows
        .rotate_secrets(&d.owner_id, &d.id, &digest, upstream.as_ref())
        .await?
    {
        return Err(AppError::Conflict {
            code: "deployment_deleting",
            message: "The deployment is being deleted.".into(),
        });
    }
    let audit = Audit {
        action: "deployment.token_rotated",
        metadata: json!({ "upstream_secret_rotated": upstream.is_some() }),
    };
    p.rows.audit(d, audit).await;
    Ok(Rotated {
        access_token,
        upstream_rotated: upstream.is_some(),
    })
}

/// A new upstream secret, already on the deployment's machine, sealed for storage; `None`
/// when the deployment is mid-creation (or being deleted) and keeps its current one.
async fn rotate_upstream<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    log: &mut Logger,
    d: &Deployment,
) -> AppResult<Option<Sealed>> {
    if settling(d.status) {
        return Ok(None);
    }
    let ring = keyring::required(p.config.encryption_keys.as_ref())?;
    let old = p.rows.secrets(&d.id).await?;
    let secrets = Secrets {
        env: old.env,
        upstream_secret: random_hex(32)?,
    };
    log.also_redact(&secrets.upstream_secret);
    push(p, d, &secrets).await?;
    Ok(Some(seal_upstream(ring, &d.id, &secrets.upstream_secret)?))
}
