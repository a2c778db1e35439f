//! Ending a deployment's machine: delete (→ `deleting`, machines destroyed, row removed),
//! the teardown the cron retries, and the clean-up before a failed deployment is created
//! again (possibly in another account).

use serde_json::json;

use crate::crypto::keyring;
use crate::deploy::account::{Account, Target};
use crate::deploy::fly_client::FlyError;
use crate::deploy::row::Deployment;
use crate::deploy::secrets::seal_fly_token;
use crate::deploy::state::Status;
use crate::error::AppResult;
use crate::lifecycle::ports::{Accounts, Audit, Change, Machines, Platform, Ports, Probe, Rows};
use crate::platform::log::Logger;

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

/// Destroys every machine of `d` in `target`. An account that refuses our token is only
/// passed over when no machine was ever recorded there (else it would be an orphan).
async fn destroy_in<P: Platform>(
    platform: &P,
    log: &Logger,
    target: &Target,
    d: &Deployment,
) -> AppResult<()> {
    match platform
        .machines(target)
        .destroy_all(&d.id, d.machine_id.as_deref())
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if refused_auth(&e) && d.machine_id.is_none() => {
            log.warn(
                "teardown_account_refused",
                json!({ "deployment": d.id, "app": target.app, "reason": e.summary() }),
            );
            Ok(())
        }
        Err(e) => Err(e.into_app()),
    }
}

/// `DELETE`: the row becomes `deleting` (the URL stops answering now, not when the machine
/// is gone), then [`teardown`]; audited once the row is gone. A platform failure leaves it
/// `deleting` for a retry (the caller's or the cron's).
pub async fn delete<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    log: &Logger,
    d: &Deployment,
) -> AppResult<()> {
    let from: Vec<Status> = Status::ALL
        .into_iter()
        .filter(|s| s.can_become(Status::Deleting))
        .collect();
    p.rows
        .transition(d, Change::new(&from, Status::Deleting))
        .await?;
    teardown(p, log, d).await?;
    let audit = Audit {
        action: "deployment.deleted",
        metadata: json!({ "name": d.name }),
    };
    p.rows.audit(d, audit).await;
    Ok(())
}

/// Destroys every machine of a `deleting` deployment in the account it lives in, then
/// removes its row and credentials.
pub async fn teardown<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    log: &Logger,
    d: &Deployment,
) -> AppResult<()> {
    let target = p.accounts.of(d).await?;
    destroy_in(p.platform, log, &target, d).await?;
    p.rows.remove(&d.id).await?;
    Ok(())
}

/// Before a failed deployment is created again: whatever it left in the account it was
/// recorded in is destroyed (a machine whose server never became ready, or a twin of a
/// lost one), so the new creation starts from a fresh machine; then the owner's *current*
/// account is recorded in its place, so a person who fixed their settings is not stuck
/// with a broken account — and nothing is ever left behind in the old one.
pub async fn prepare_retry<R: Rows, A: Accounts, P: Platform, Q: Probe>(
    p: &Ports<'_, R, A, P, Q>,
    log: &Logger,
    d: &Deployment,
) -> AppResult<()> {
    let old = p.accounts.of(d).await?;
    destroy_in(p.platform, log, &old, d).await?;
    if d.machine_id.is_some() {
        p.rows.clear_machine(&d.id).await?;
    }
    let new = p.accounts.for_new(&d.owner_id).await?;
    if new.same_place(&old) {
        return Ok(());
    }
    d.launch()?;
    let sealed = match new.account {
        Account::User => Some(seal_fly_token(
            keyring::required(p.config.encryption_keys.as_ref())?,
            &d.id,
            new.token(),
        )?),
        Account::Operator => None,
    };
    p.rows
        .set_account(&d.id, &d.config.rehomed(&new), sealed.as_ref())
        .await?;
    log.info(
        "deployment_rehomed",
        json!({ "deployment": d.id, "from": old.app, "to": new.app }),
    );
    Ok(())
}
