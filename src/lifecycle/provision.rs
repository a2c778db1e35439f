//! Creating a deployment's machine (run by the `Deployer` Durable Object's alarm, after
//! the 201): create or adopt, record it, wait for `started`, wait for the runner's
//! `ready`, then `running`. Idempotent: a twin run adopts the machine, never duplicates it.

use serde_json::json;

use crate::deploy::fly::machine_body;
use crate::deploy::fly_client::FlyError;
use crate::deploy::row::Deployment;
use crate::deploy::state::Status;
use crate::error::{AppError, AppResult};
use crate::gateway::link::MachineLink;
use crate::lifecycle::ports::{Accounts, Change, Machines, Platform, Ports, Probe, Rows};
use crate::platform::log::Logger;

/// Creates (or adopts) the deployment's machine and waits for it to start; the outcome
/// lands in `status` / `error_message`.
pub async fn provision<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    log: &mut Logger,
    id: &str,
) -> AppResult<()> {
    let Some(d) = p.rows.get(id).await? else {
        // Deleted before we ran: make sure nothing of it is left on the platform.
        if let Ok(t) = p.accounts.operator() {
            p.platform
                .machines(&t)
                .destroy_all(id, None)
                .await
                .map_err(FlyError::into_app)?;
        }
        return Ok(());
    };
    if !matches!(d.status, Status::Pending | Status::Deploying) {
        return Ok(());
    }
    p.rows
        .transition(&d, Change::new(&[Status::Pending], Status::Deploying))
        .await?;
    let target = p.accounts.of(&d).await?;
    log.also_redact(target.token());
    let machines = p.platform.machines(&target);
    let prepared = async {
        let secrets = p.rows.secrets(id).await?;
        for (_, v) in &secrets.env {
            log.also_redact(v);
        }
        log.also_redact(&secrets.upstream_secret);
        let body = machine_body(p.config, id, d.launch()?, d.region(), &secrets)?;
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
            return fail(
                p.rows,
                log,
                &d,
                "The deployment's stored settings could not be read.",
            )
            .await;
        }
    };
    let started = async {
        let machine = machines.create(id, &body).await?;
        let recorded =
            p.rows
                .set_machine(id, &machine.id)
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
            return settle_orphan(p.rows, &machines, log, id, &m.id).await;
        }
        Err(e) => {
            let _ = machines.destroy_all(id, None).await;
            log.warn(
                "provision_failed",
                json!({ "deployment": id, "stage": "create", "reason": e.summary() }),
            );
            let message = format!("The machine could not be created: {}.", e.summary());
            return fail(p.rows, log, &d, &message).await;
        }
    };
    log.info(
        "machine_created",
        json!({ "deployment": id, "machine": machine.id, "state": machine.state }),
    );
    if let Err(e) = machines
        .wait_started(&machine.id, p.config.fly.start_timeout_secs)
        .await
    {
        let _ = machines.destroy_all(id, Some(&machine.id)).await;
        log.warn(
            "provision_failed",
            json!({ "deployment": id, "stage": "start", "reason": e.summary() }),
        );
        let message = format!("The machine did not start: {}.", e.summary());
        return fail(p.rows, log, &d, &message).await;
    }
    // Fly's `started` means the runner process is up; `running` means the MCP server
    // answered. The runner prepares the server (install, a probe that completes
    // `initialize`) and says so on `/health`.
    let link = MachineLink {
        url: d.config.ingress_url(p.config),
        machine_id: machine.id.clone(),
        secret: upstream_secret,
    };
    if let Err(message) = p.probe.ready(&link, p.config.fly.start_timeout_secs).await {
        log.warn(
            "provision_failed",
            json!({ "deployment": id, "stage": "ready", "machine": machine.id }),
        );
        // The machine stays (recorded, stopped by Fly when idle) so its logs can be read
        // and a restart can try again; delete removes it.
        return fail(p.rows, log, &d, &message).await;
    }
    let running = Change::new(&[Status::Deploying], Status::Running).audit(
        "deployment.running",
        json!({ "by": "system", "machine": machine.id }),
    );
    if p.rows.transition(&d, running).await? {
        log.info(
            "deployment_running",
            json!({ "deployment": id, "machine": machine.id }),
        );
        return Ok(());
    }
    settle_orphan(p.rows, &machines, log, id, &machine.id).await
}

/// After losing a race: if the row is gone or being deleted, destroy the machine; if a
/// twin run already marked it running (or the row failed meanwhile), leave it.
async fn settle_orphan<R: Rows, M: Machines>(
    rows: &R,
    machines: &M,
    log: &Logger,
    id: &str,
    machine_id: &str,
) -> AppResult<()> {
    match rows.get(id).await? {
        Some(d) if d.status != Status::Deleting => Ok(()),
        _ => {
            log.info(
                "machine_orphaned",
                json!({ "deployment": id, "machine": machine_id }),
            );
            machines
                .destroy_all(id, Some(machine_id))
                .await
                .map_err(FlyError::into_app)
        }
    }
}

async fn fail<R: Rows>(rows: &R, log: &Logger, d: &Deployment, message: &str) -> AppResult<()> {
    let message = log.redactor().redact(message);
    // The run made the row `deploying` before anything could fail (`pending` cannot fail).
    let failed = Change::new(&[Status::Deploying], Status::Failed)
        .error(&message)
        .audit("deployment.failed", json!({ "by": "system" }));
    rows.transition(d, failed).await?;
    Ok(())
}
