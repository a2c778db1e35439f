//! Opening a deployment's sealed records from D1 (`deploy::secrets` holds the envelopes),
//! re-sealing each under the current key when an older key sealed it: touching a record is
//! when it moves to the new key.

use serde_json::json;
use worker::D1Database;

use crate::crypto::keyring::KeyRing;
use crate::crypto::vault::Sealed;
use crate::deploy::secrets::{
    is_stale, open_env, open_fly_token, open_upstream, seal_env, seal_fly_token, seal_upstream,
    Secrets,
};
use crate::error::{AppError, AppResult};
use crate::platform::log::Logger;
use crate::store::deployments::{reseal, sealed, Record};

/// Opens one sealed record (re-sealing it under the current key if it is stale).
pub async fn open_record<T>(
    db: &D1Database,
    ring: &KeyRing,
    log: &Logger,
    deployment_id: &str,
    record: Record,
    open: impl Fn(&KeyRing, &str, &Sealed) -> AppResult<T>,
    seal: impl Fn(&KeyRing, &str, &T) -> AppResult<Sealed>,
) -> AppResult<T> {
    let stored = sealed(db, record, deployment_id).await?.ok_or_else(|| {
        AppError::internal(format!(
            "deployment {deployment_id}: a sealed record is missing"
        ))
    })?;
    let value = open(ring, deployment_id, &stored)?;
    if is_stale(ring, &stored) {
        let fresh = seal(ring, deployment_id, &value)?;
        reseal(db, record, deployment_id, &fresh).await?;
        log.info(
            "secret_resealed",
            json!({ "deployment": deployment_id, "from": stored.key_id, "to": fresh.key_id }),
        );
    }
    Ok(value)
}

/// Both of the deployment's secrets (to build or update its machine).
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

/// The owner's Fly token recorded with a deployment in their own account.
pub async fn open_fly_token_of(
    db: &D1Database,
    ring: &KeyRing,
    log: &Logger,
    deployment_id: &str,
) -> AppResult<String> {
    open_record(
        db,
        ring,
        log,
        deployment_id,
        Record::FlyToken,
        open_fly_token,
        |r, id, v: &String| seal_fly_token(r, id, v),
    )
    .await
}
