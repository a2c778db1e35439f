//! A new deployment, up to the 201: its secrets sealed, the row inserted as `pending` in
//! the account chosen for it, its gateway object placed near its region, `deploying`, and
//! the creation of its machine scheduled on its `Deployer` object.

use serde_json::json;
use worker::Env;

use crate::crypto::keyring;
use crate::deploy::account::{Account, Target};
use crate::deploy::request::{CreateRequest, Launch};
use crate::deploy::row::Deployment;
use crate::deploy::secrets::{seal_env, seal_fly_token, seal_upstream};
use crate::deploy::state::Status;
use crate::deploy::stored::StoredConfig;
use crate::deploy::token;
use crate::error::AppResult;
use crate::ids::{new_id, random_hex};
use crate::lifecycle::live::{schedule_provision, Live};
use crate::lifecycle::ports::{Audit, Change, Rows};
use crate::platform::log::Logger;
use crate::proxy::gate;
use crate::store::deployments::{self as store, NewDeployment};
use crate::time::now_ms;

/// What the creator sees once: the new deployment and its access token.
pub struct Created {
    pub deployment: Deployment,
    pub access_token: String,
}

pub async fn create(
    live: &Live<'_>,
    worker_env: &Env,
    log: &mut Logger,
    owner_id: &str,
    request: &CreateRequest,
    launch: Launch,
    account: &Target,
) -> AppResult<Created> {
    let ring = keyring::required(live.config.encryption_keys.as_ref())?;
    let id = new_id("dep")?;
    let (access_token, digest) = token::mint()?;
    log.also_redact(&access_token);
    let upstream_secret = random_hex(32)?;
    let sealed = seal_env(ring, &id, &request.credentials)?;
    let upstream = seal_upstream(ring, &id, &upstream_secret)?;
    let fly_token = match account.account {
        Account::User => Some(seal_fly_token(ring, &id, account.token())?),
        Account::Operator => None,
    };
    let source = request.source.normalized();
    let config = StoredConfig::new(
        launch,
        request.region.clone(),
        account,
        &request.name.display,
    );
    let db = &live.rows.db;
    store::insert(
        db,
        &NewDeployment {
            id: &id,
            owner_id,
            name: &request.name.slug,
            source: &source,
            package: config.launch.as_ref().map_or("", |l| l.package.as_str()),
            runtime: config.launch.as_ref().map_or("", |l| l.runtime.as_str()),
            config: &config,
            token_hash: &digest,
        },
        &sealed,
        &upstream,
        fly_token.as_ref(),
        live.config.limits.deployments_per_user,
        now_ms(),
    )
    .await?;
    let pending = store::get(db, &id).await?.ok_or_else(|| {
        crate::error::AppError::internal(format!("deployment {id}: gone after its insert"))
    })?;
    let created = Audit {
        action: "deployment.created",
        metadata: json!({ "name": request.name.slug, "source": source, "credentials": request.credentials.iter().map(|(k, _)| k).collect::<Vec<_>>() }),
    };
    live.rows.audit(&pending, created).await;
    // The deployment's gateway object is created near where its machine will run, before
    // anything else reaches it (the transition below tells it the row changed).
    gate::place(worker_env, log, &id, request.region.as_deref()).await;
    live.rows
        .transition(&pending, Change::new(&[Status::Pending], Status::Deploying))
        .await?;
    // Tried twice: a lost hop to the deployer object would otherwise leave the row in
    // `deploying` until the reconcile cron schedules it again.
    let scheduled = match schedule_provision(worker_env, &id).await {
        Ok(()) => Ok(()),
        Err(_) => schedule_provision(worker_env, &id).await,
    };
    if let Err(e) = scheduled {
        log.error(
            "provision_schedule_failed",
            json!({ "deployment": id, "detail": e.log_detail() }),
        );
    }
    let deployment = store::get(db, &id).await?.unwrap_or(pending);
    Ok(Created {
        deployment,
        access_token,
    })
}
