//! The `deployments` table and its sealed records (`credentials`, `upstream_secrets`,
//! `machine_accounts`): reads as free functions, every write through [`D1Deployments`]
//! (the lifecycle's [`Rows`]), which tells the deployment's gateway object after each
//! write it caches, before returning — so no writer can forget to. Status changes are
//! compare-and-set (`WHERE status IN (…)`) over edges `deploy::state` allows, so two
//! actors racing on one deployment (a delete while the machine is still being created)
//! cannot both win; the D1 CHECK backs the same names.

use serde::Deserialize;
use worker::{D1Database, Env};

use crate::config::Config;
use crate::crypto::keyring;
use crate::crypto::vault::Sealed;
use crate::deploy::secrets::Secrets;
use crate::deploy::state::{check_change, Status};
use crate::deploy::stored::{self, StoredConfig};
use crate::error::{AppError, AppResult};
use crate::http::page::Page;
use crate::lifecycle::ports::{Audit, Change, Rows};
use crate::platform::log::Logger;
use crate::proxy::gate;
use crate::store::audit;
use crate::store::d1::{changed, int, opt_text, text};
use crate::store::sealed::open_secrets;
use crate::time::now_ms;

pub use crate::deploy::row::Deployment;

const COLUMNS: &str = "id, owner_id, name, source, package, runtime, status, machine_id, config, error_message, created_at, updated_at";

pub struct NewDeployment<'a> {
    pub id: &'a str,
    pub owner_id: &'a str,
    /// The slug; the name as typed goes in `config`.
    pub name: &'a str,
    pub source: &'a str,
    pub package: &'a str,
    pub runtime: &'a str,
    pub config: &'a StoredConfig,
    pub token_hash: &'a str,
}

fn in_list(statuses: &[Status]) -> String {
    // Status names are our own constants, never input: safe to inline.
    statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts the row (as `pending`) and its sealed credentials in one transaction, only if
/// the owner has fewer than `limit` deployments and the name is free. Nothing is written
/// when either check fails.
pub async fn insert(
    db: &D1Database,
    d: &NewDeployment<'_>,
    sealed: &Sealed,
    upstream: &Sealed,
    fly_token: Option<&Sealed>,
    limit: u32,
    now: i64,
) -> AppResult<()> {
    let taken = db
        .prepare(
            "SELECT COUNT(*) AS n, SUM(name = ?2) AS same FROM deployments WHERE owner_id = ?1",
        )
        .bind(&[text(d.owner_id), text(d.name)])?
        .first::<Counts>(None)
        .await?
        .unwrap_or_default();
    if taken.same.unwrap_or(0) > 0 {
        return Err(name_taken(d.name));
    }
    if taken.n >= i64::from(limit) {
        return Err(over_limit(limit));
    }
    let row = db
        .prepare(
            "INSERT INTO deployments (id, owner_id, name, source, package, runtime, status, config, access_token_hash, created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?9 \
             WHERE (SELECT COUNT(*) FROM deployments WHERE owner_id = ?2) < ?10",
        )
        .bind(&[
            text(d.id),
            text(d.owner_id),
            text(d.name),
            text(d.source),
            text(d.package),
            text(d.runtime),
            text(&d.config.to_text()),
            text(d.token_hash),
            int(now),
            int(i64::from(limit)),
        ])?;
    let mut stmts = vec![
        row,
        insert_sealed(db, Record::Env, d.id, sealed, now)?,
        insert_sealed(db, Record::Upstream, d.id, upstream, now)?,
    ];
    if let Some(t) = fly_token {
        stmts.push(insert_sealed(db, Record::FlyToken, d.id, t, now)?);
    }
    let results = match db.batch(stmts).await {
        Ok(r) => r,
        // A concurrent create with the same name won the race.
        Err(e) if e.to_string().contains("UNIQUE") && e.to_string().contains("name") => {
            return Err(name_taken(d.name))
        }
        Err(e) => return Err(e.into()),
    };
    let inserted = results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0);
    if inserted == 0 {
        return Err(over_limit(limit));
    }
    Ok(())
}

/// A sealed record's insert, effective only if the deployment row exists (same batch).
fn insert_sealed(
    db: &D1Database,
    record: Record,
    id: &str,
    sealed: &Sealed,
    now: i64,
) -> AppResult<worker::D1PreparedStatement> {
    Ok(db
        .prepare(format!(
            "INSERT INTO {} (deployment_id, key_id, nonce, ciphertext, created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?5 WHERE EXISTS (SELECT 1 FROM deployments WHERE id = ?1)",
            record.table()
        ))
        .bind(&[
            text(id),
            text(&sealed.key_id),
            text(&sealed.nonce),
            text(&sealed.ciphertext),
            int(now),
        ])?)
}

#[derive(Deserialize, Default)]
struct Counts {
    n: i64,
    same: Option<i64>,
}

fn name_taken(slug: &str) -> AppError {
    AppError::field(
        "name",
        format!("another of your deployments already uses the name {slug} (names are compared as lowercase letters, digits and hyphens)"),
    )
}

fn over_limit(limit: u32) -> AppError {
    AppError::field(
        "name",
        format!("you already have {limit} deployments, the most allowed; delete one first"),
    )
}

/// The caller's own deployment; another owner's is indistinguishable from none.
pub async fn get_owned(db: &D1Database, owner: &str, id: &str) -> AppResult<Option<Deployment>> {
    Ok(db
        .prepare(format!(
            "SELECT {COLUMNS} FROM deployments WHERE id = ?1 AND owner_id = ?2"
        ))
        .bind(&[text(id), text(owner)])?
        .first::<Deployment>(None)
        .await?)
}

pub async fn get(db: &D1Database, id: &str) -> AppResult<Option<Deployment>> {
    Ok(db
        .prepare(format!("SELECT {COLUMNS} FROM deployments WHERE id = ?1"))
        .bind(&[text(id)])?
        .first::<Deployment>(None)
        .await?)
}

pub async fn list_owned(db: &D1Database, owner: &str, page: &Page) -> AppResult<Vec<Deployment>> {
    let (t, id) = page.before.clone().unwrap_or((i64::MAX, String::new()));
    Ok(db
        .prepare(format!(
            "SELECT {COLUMNS} FROM deployments WHERE owner_id = ?1 \
             AND (created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
             ORDER BY created_at DESC, id DESC LIMIT ?4"
        ))
        .bind(&[text(owner), int(t), text(&id), int(i64::from(page.limit))])?
        .all()
        .await?
        .results::<Deployment>()?)
}

/// Rows in `statuses` not updated since `before` (the reconcile sweep), oldest first.
pub async fn in_states(
    db: &D1Database,
    statuses: &[Status],
    before: i64,
    limit: u32,
) -> AppResult<Vec<Deployment>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deployments WHERE status IN ({}) AND updated_at <= ?1 ORDER BY updated_at LIMIT ?2",
        in_list(statuses)
    );
    Ok(db
        .prepare(sql)
        .bind(&[int(before), int(i64::from(limit))])?
        .all()
        .await?
        .results::<Deployment>()?)
}

/// Which of `ids` name existing deployments (one query for the whole batch).
pub async fn existing(
    db: &D1Database,
    ids: &[&str],
) -> AppResult<std::collections::HashSet<String>> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let list = serde_json::to_string(ids).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(db
        .prepare("SELECT id FROM deployments WHERE id IN (SELECT value FROM json_each(?1))")
        .bind(&[text(&list)])?
        .all()
        .await?
        .results::<Id>()?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// Moves the row to `to` if it is in one of `from` (each pair checked against the state
/// machine first). `error` replaces `error_message` (None clears it). False if it was not.
async fn transition(
    db: &D1Database,
    id: &str,
    from: &[Status],
    to: Status,
    error: Option<&str>,
    now: i64,
) -> AppResult<bool> {
    check_change(from, to)?;
    let sql = format!(
        "UPDATE deployments SET status = ?1, error_message = ?2, updated_at = ?3 WHERE id = ?4 AND status IN ({})",
        in_list(from)
    );
    let r = db
        .prepare(sql)
        .bind(&[text(to.as_str()), opt_text(error), int(now), text(id)])?
        .run()
        .await?;
    Ok(changed(&r))
}

/// Records the machine while the deployment is still being created.
async fn set_machine(db: &D1Database, id: &str, machine_id: &str, now: i64) -> AppResult<bool> {
    let r = db
        .prepare(
            "UPDATE deployments SET machine_id = ?1, updated_at = ?2 WHERE id = ?3 AND status IN ('pending', 'deploying')",
        )
        .bind(&[text(machine_id), int(now), text(id)])?
        .run()
        .await?;
    Ok(changed(&r))
}

/// Forgets the machine of a failed deployment (destroyed before it is created again).
async fn clear_machine(db: &D1Database, id: &str, now: i64) -> AppResult<bool> {
    let r = db
        .prepare(
            "UPDATE deployments SET machine_id = NULL, updated_at = ?1 WHERE id = ?2 AND status = 'failed'",
        )
        .bind(&[int(now), text(id)])?
        .run()
        .await?;
    Ok(changed(&r))
}

#[derive(Deserialize)]
struct SealedRow {
    key_id: String,
    nonce: String,
    ciphertext: String,
}

/// Which sealed record: the server's environment, the upstream secret, or the owner's own
/// Fly token the deployment's machines live under.
#[derive(Clone, Copy)]
pub enum Record {
    Env,
    Upstream,
    FlyToken,
}

impl Record {
    pub const ALL: [Record; 3] = [Record::Env, Record::Upstream, Record::FlyToken];

    fn table(self) -> &'static str {
        match self {
            Self::Env => "credentials",
            Self::Upstream => "upstream_secrets",
            Self::FlyToken => "machine_accounts",
        }
    }
}

pub async fn sealed(db: &D1Database, record: Record, id: &str) -> AppResult<Option<Sealed>> {
    Ok(db
        .prepare(format!(
            "SELECT key_id, nonce, ciphertext FROM {} WHERE deployment_id = ?1",
            record.table()
        ))
        .bind(&[text(id)])?
        .first::<SealedRow>(None)
        .await?
        .map(|r| Sealed {
            key_id: r.key_id,
            nonce: r.nonce,
            ciphertext: r.ciphertext,
        }))
}

async fn put_sealed(
    db: &D1Database,
    record: Record,
    id: &str,
    sealed: &Sealed,
    now: i64,
) -> AppResult<()> {
    db.prepare(format!(
        "UPDATE {} SET key_id = ?1, nonce = ?2, ciphertext = ?3, updated_at = ?4 WHERE deployment_id = ?5",
        record.table()
    ))
    .bind(&[
        text(&sealed.key_id),
        text(&sealed.nonce),
        text(&sealed.ciphertext),
        int(now),
        text(id),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Removes a `deleting` row and every sealed record together (the records first, each
/// only while the row is `deleting`); false when the row was not `deleting`.
async fn delete(db: &D1Database, id: &str) -> AppResult<bool> {
    let mut stmts = Vec::new();
    for record in Record::ALL {
        stmts.push(
            db.prepare(format!(
                "DELETE FROM {} WHERE deployment_id = ?1 \
                 AND EXISTS (SELECT 1 FROM deployments WHERE id = ?1 AND status = 'deleting')",
                record.table()
            ))
            .bind(&[text(id)])?,
        );
    }
    stmts.extend(crate::store::oauth::delete_deployment_stmts(db, id)?);
    stmts.push(
        db.prepare("DELETE FROM deployments WHERE id = ?1 AND status = 'deleting'")
            .bind(&[text(id)])?,
    );
    let results = db.batch(stmts).await?;
    Ok(results.last().is_some_and(changed))
}

/// Moves a deployment to another Fly account (only ever one that holds no machine of it):
/// the stored config (app, account kind) and the sealed token, replaced together.
async fn set_account(
    db: &D1Database,
    id: &str,
    config: &StoredConfig,
    token: Option<&Sealed>,
    now: i64,
) -> AppResult<()> {
    let mut stmts = vec![
        db.prepare("UPDATE deployments SET config = ?1, updated_at = ?2 WHERE id = ?3")
            .bind(&[text(&config.to_text()), int(now), text(id)])?,
        db.prepare("DELETE FROM machine_accounts WHERE deployment_id = ?1")
            .bind(&[text(id)])?,
    ];
    if let Some(t) = token {
        stmts.push(insert_sealed(db, Record::FlyToken, id, t, now)?);
    }
    db.batch(stmts).await?;
    Ok(())
}

/// The new access-token digest and upstream secret of a rotation, written together (not
/// while the deployment is being deleted), ending the deployment's OAuth grants: whether
/// it rotated.
async fn rotate_secrets(
    db: &D1Database,
    owner: &str,
    id: &str,
    token_hash: &str,
    upstream: Option<&Sealed>,
    now: i64,
) -> AppResult<bool> {
    let mut stmts = vec![db
        .prepare(
            "UPDATE deployments SET access_token_hash = ?1, updated_at = ?2 \
             WHERE id = ?3 AND owner_id = ?4 AND status <> 'deleting'",
        )
        .bind(&[text(token_hash), int(now), text(id), text(owner)])?];
    // A new static token ends every OAuth grant too: rotation is the owner's "revoke all".
    stmts.push(crate::store::oauth::revoke_deployment_stmt(
        db,
        id,
        "token_rotated",
        now,
    )?);
    if let Some(u) = upstream {
        stmts.push(
            db.prepare(
                "UPDATE upstream_secrets SET key_id = ?1, nonce = ?2, ciphertext = ?3, updated_at = ?4 \
                 WHERE deployment_id = ?5 AND EXISTS (SELECT 1 FROM deployments WHERE id = ?5 AND status <> 'deleting')",
            )
            .bind(&[
                text(&u.key_id),
                text(&u.nonce),
                text(&u.ciphertext),
                int(now),
                text(id),
            ])?,
        );
    }
    let results = db.batch(stmts).await?;
    Ok(results.first().is_some_and(changed))
}

/// What the MCP gateway reads on every request, in one query.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayRow {
    pub owner_id: String,
    pub status: Status,
    pub access_token_hash: String,
    pub machine_id: Option<String>,
    #[serde(deserialize_with = "stored::from_text")]
    pub config: StoredConfig,
    pub key_id: Option<String>,
    pub nonce: Option<String>,
    pub ciphertext: Option<String>,
}

impl GatewayRow {
    pub fn upstream_sealed(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.key_id.clone()?,
            nonce: self.nonce.clone()?,
            ciphertext: self.ciphertext.clone()?,
        })
    }
}

pub async fn for_gateway(db: &D1Database, id: &str) -> AppResult<Option<GatewayRow>> {
    Ok(db
        .prepare(
            "SELECT d.owner_id, d.status, d.access_token_hash, d.machine_id, d.config, u.key_id, u.nonce, u.ciphertext \
             FROM deployments d LEFT JOIN upstream_secrets u ON u.deployment_id = d.id WHERE d.id = ?1",
        )
        .bind(&[text(id)])?
        .first::<GatewayRow>(None)
        .await?)
}

/// The deployment rows in D1 as the lifecycle's [`Rows`]: each write that changes what the
/// gateway caches is followed by `gate::forget` (`forget_deleted` for a removal) before
/// it returns, and each status change that carries an audit row writes it here.
pub struct D1Deployments<'a> {
    pub env: &'a Env,
    pub db: D1Database,
    pub config: &'a Config,
    pub log: Logger,
}

impl D1Deployments<'_> {
    async fn forget(&self, id: &str) {
        gate::forget(self.env, &self.log, id).await
    }
}

impl Rows for D1Deployments<'_> {
    async fn get(&self, id: &str) -> AppResult<Option<Deployment>> {
        get(&self.db, id).await
    }

    async fn transition(&self, d: &Deployment, change: Change<'_>) -> AppResult<bool> {
        let changed = transition(
            &self.db,
            &d.id,
            change.from,
            change.to,
            change.error,
            now_ms(),
        )
        .await?;
        if changed {
            self.forget(&d.id).await;
            if let Some(a) = change.audit {
                self.audit(d, a).await;
            }
        }
        Ok(changed)
    }

    async fn set_machine(&self, id: &str, machine_id: &str) -> AppResult<bool> {
        let changed = set_machine(&self.db, id, machine_id, now_ms()).await?;
        if changed {
            self.forget(id).await;
        }
        Ok(changed)
    }

    async fn clear_machine(&self, id: &str) -> AppResult<bool> {
        let changed = clear_machine(&self.db, id, now_ms()).await?;
        if changed {
            self.forget(id).await;
        }
        Ok(changed)
    }

    async fn remove(&self, id: &str) -> AppResult<bool> {
        // Best effort: only the audit line depends on it.
        let grants = crate::store::oauth::standing_grants(&self.db, id)
            .await
            .ok()
            .flatten();
        let removed = delete(&self.db, id).await?;
        gate::forget_deleted(self.env, &self.log, id).await;
        if let (true, Some((owner, n))) = (removed, grants) {
            audit::deployment(
                &self.db,
                &self.log,
                &owner,
                "oauth.revoked",
                id,
                serde_json::json!({ "reason": "deleted", "grants": n }),
            )
            .await;
        }
        Ok(removed)
    }

    async fn set_account(
        &self,
        id: &str,
        config: &StoredConfig,
        token: Option<&Sealed>,
    ) -> AppResult<()> {
        set_account(&self.db, id, config, token, now_ms()).await?;
        self.forget(id).await;
        Ok(())
    }

    async fn secrets(&self, id: &str) -> AppResult<Secrets> {
        let ring = keyring::required(self.config.encryption_keys.as_ref())?;
        open_secrets(&self.db, ring, &self.log, id).await
    }

    async fn put_env(&self, id: &str, sealed: &Sealed) -> AppResult<()> {
        put_sealed(&self.db, Record::Env, id, sealed, now_ms()).await?;
        self.forget(id).await;
        Ok(())
    }

    async fn rotate_secrets(
        &self,
        owner: &str,
        id: &str,
        token_hash: &str,
        upstream: Option<&Sealed>,
    ) -> AppResult<bool> {
        // Counted before the batch that ends them (a batch's change counts are not a
        // reliable per-statement figure): only the audit line depends on it.
        let grants = crate::store::oauth::standing_grants(&self.db, id)
            .await
            .ok()
            .flatten();
        let changed = rotate_secrets(&self.db, owner, id, token_hash, upstream, now_ms()).await?;
        if changed {
            // The old token (and every OAuth token) fails on the very next request.
            self.forget(id).await;
        }
        if let (true, Some((_, revoked))) = (changed, grants) {
            audit::deployment(
                &self.db,
                &self.log,
                owner,
                "oauth.revoked",
                id,
                serde_json::json!({ "reason": "token_rotated", "grants": revoked }),
            )
            .await;
        }
        Ok(changed)
    }

    async fn audit(&self, d: &Deployment, a: Audit<'_>) {
        audit::deployment(
            &self.db,
            &self.log,
            &d.owner_id,
            a.action,
            &d.id,
            a.metadata,
        )
        .await
    }
}

/// Re-seals one record under the current key (the value is unchanged: nothing cached
/// changes, so the gateway is not told).
pub(crate) async fn reseal(
    db: &D1Database,
    record: Record,
    id: &str,
    sealed: &Sealed,
) -> AppResult<()> {
    put_sealed(db, record, id, sealed, now_ms()).await
}
