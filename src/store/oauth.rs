//! The OAuth tables (`oauth_clients`, `oauth_grants`, `oauth_codes`, `oauth_tokens`;
//! migration 0005, docs/storage.md). Codes and tokens are only ever digests here. Every
//! single-use step (spending a code, rotating a refresh token) is a compare-and-set, so
//! two racing presentations of one value cannot both succeed.

use serde::{Deserialize, Serialize};
use worker::{D1Database, D1PreparedStatement};

use crate::error::AppResult;
use crate::oauth::client::{Client, Kind};
use crate::store::d1::{changed, int, opt_text, text};

pub async fn insert_client(db: &D1Database, c: &Client, now: i64) -> AppResult<()> {
    let uris = serde_json::to_string(&c.redirect_uris).unwrap_or_else(|_| "[]".into());
    db.prepare(
        "INSERT INTO oauth_clients (client_id, client_name, client_uri, logo_uri, redirect_uris, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
        text(&c.client_id),
        opt_text(c.client_name.as_deref()),
        opt_text(c.client_uri.as_deref()),
        opt_text(c.logo_uri.as_deref()),
        text(&uris),
        int(now),
    ])?
    .run()
    .await?;
    Ok(())
}

#[derive(Deserialize)]
struct ClientRow {
    client_id: String,
    client_name: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    redirect_uris: String,
}

pub async fn registered_client(db: &D1Database, client_id: &str) -> AppResult<Option<Client>> {
    let row = db
        .prepare("SELECT client_id, client_name, client_uri, logo_uri, redirect_uris FROM oauth_clients WHERE client_id = ?1")
        .bind(&[text(client_id)])?
        .first::<ClientRow>(None)
        .await?;
    Ok(row.map(|r| Client {
        redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
        client_id: r.client_id,
        client_name: r.client_name,
        client_uri: r.client_uri,
        logo_uri: r.logo_uri,
        kind: Kind::Registered,
    }))
}

pub struct NewGrant<'a> {
    pub id: &'a str,
    pub deployment_id: &'a str,
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub client_name: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
}

/// A grant and its first code, together; nothing when the deployment is not this
/// owner's, or is being deleted (false).
pub async fn grant_with_code(
    db: &D1Database,
    g: &NewGrant<'_>,
    code_digest: &str,
    challenge: &str,
    expires_at: i64,
    now: i64,
) -> AppResult<bool> {
    let stmts = vec![
        db.prepare(
            "INSERT INTO oauth_grants (id, deployment_id, user_id, client_id, client_name, redirect_uri, scope, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 \
             WHERE EXISTS (SELECT 1 FROM deployments WHERE id = ?2 AND owner_id = ?3 AND status <> 'deleting')",
        )
        .bind(&[
            text(g.id),
            text(g.deployment_id),
            text(g.user_id),
            text(g.client_id),
            opt_text(g.client_name),
            text(g.redirect_uri),
            text(g.scope),
            int(now),
        ])?,
        db.prepare(
            "INSERT INTO oauth_codes (digest, grant_id, client_id, redirect_uri, code_challenge, expires_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM oauth_grants WHERE id = ?2)",
        )
        .bind(&[
            text(code_digest),
            text(g.id),
            text(g.client_id),
            text(g.redirect_uri),
            text(challenge),
            int(expires_at),
        ])?,
    ];
    let results = db.batch(stmts).await?;
    Ok(results.iter().all(changed))
}

/// A code as stored, with its grant's deployment and whether the grant still stands.
#[derive(Debug, Deserialize)]
pub struct CodeRow {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub deployment_id: String,
    pub user_id: String,
    pub revoked_at: Option<i64>,
}

pub async fn code(db: &D1Database, digest: &str) -> AppResult<Option<CodeRow>> {
    Ok(db
        .prepare(
            "SELECT c.grant_id, c.client_id, c.redirect_uri, c.code_challenge, c.expires_at, c.used_at, \
                    g.deployment_id, g.user_id, g.revoked_at \
             FROM oauth_codes c JOIN oauth_grants g ON g.id = c.grant_id WHERE c.digest = ?1",
        )
        .bind(&[text(digest)])?
        .first::<CodeRow>(None)
        .await?)
}

/// Marks a code used; false if someone used it first.
pub async fn spend_code(db: &D1Database, digest: &str, now: i64) -> AppResult<bool> {
    let r = db
        .prepare("UPDATE oauth_codes SET used_at = ?1 WHERE digest = ?2 AND used_at IS NULL")
        .bind(&[int(now), text(digest)])?
        .run()
        .await?;
    Ok(changed(&r))
}

fn insert_token(
    db: &D1Database,
    digest: &str,
    grant_id: &str,
    kind: &str,
    expires_at: i64,
    now: i64,
) -> AppResult<D1PreparedStatement> {
    Ok(db
        .prepare(
            "INSERT INTO oauth_tokens (digest, grant_id, kind, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM oauth_grants WHERE id = ?2 AND revoked_at IS NULL)",
        )
        .bind(&[
            text(digest),
            text(grant_id),
            text(kind),
            int(now),
            int(expires_at),
        ])?)
}

/// A new access and refresh token for a standing grant; false if it was revoked.
pub async fn issue(
    db: &D1Database,
    grant_id: &str,
    access: (&str, i64),
    refresh: (&str, i64),
    now: i64,
) -> AppResult<bool> {
    let stmts = vec![
        insert_token(db, access.0, grant_id, "access", access.1, now)?,
        insert_token(db, refresh.0, grant_id, "refresh", refresh.1, now)?,
        db.prepare("UPDATE oauth_grants SET last_used_at = ?1 WHERE id = ?2")
            .bind(&[int(now), text(grant_id)])?,
    ];
    let results = db.batch(stmts).await?;
    Ok(results.iter().take(2).all(changed))
}

/// A token as stored, with its grant.
#[derive(Debug, Deserialize)]
pub struct TokenRow {
    pub grant_id: String,
    pub kind: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub deployment_id: String,
    pub user_id: String,
    pub client_id: String,
    pub revoked_at: Option<i64>,
}

pub async fn token(db: &D1Database, digest: &str) -> AppResult<Option<TokenRow>> {
    Ok(db
        .prepare(
            "SELECT t.grant_id, t.kind, t.expires_at, t.used_at, g.deployment_id, g.user_id, g.client_id, g.revoked_at \
             FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.digest = ?1",
        )
        .bind(&[text(digest)])?
        .first::<TokenRow>(None)
        .await?)
}

/// Marks a refresh token rotated away; false if it already was (a replay).
pub async fn spend_refresh(db: &D1Database, digest: &str, now: i64) -> AppResult<bool> {
    let r = db
        .prepare(
            "UPDATE oauth_tokens SET used_at = ?1 WHERE digest = ?2 AND kind = 'refresh' AND used_at IS NULL",
        )
        .bind(&[int(now), text(digest)])?
        .run()
        .await?;
    Ok(changed(&r))
}

/// Revokes one grant (its whole token family); false if it was already revoked.
pub async fn revoke_grant(
    db: &D1Database,
    grant_id: &str,
    reason: &str,
    now: i64,
) -> AppResult<bool> {
    let r = db
        .prepare(
            "UPDATE oauth_grants SET revoked_at = ?1, revoked_reason = ?2 WHERE id = ?3 AND revoked_at IS NULL",
        )
        .bind(&[int(now), text(reason), text(grant_id)])?
        .run()
        .await?;
    Ok(changed(&r))
}

/// The statement that revokes every standing grant of a deployment (run in the same
/// batch as a static-token rotation).
pub fn revoke_deployment_stmt(
    db: &D1Database,
    deployment_id: &str,
    reason: &str,
    now: i64,
) -> AppResult<D1PreparedStatement> {
    Ok(db
        .prepare(
            "UPDATE oauth_grants SET revoked_at = ?1, revoked_reason = ?2 WHERE deployment_id = ?3 AND revoked_at IS NULL",
        )
        .bind(&[int(now), text(reason), text(deployment_id)])?)
}

#[derive(Deserialize)]
struct Standing {
    user_id: Option<String>,
    n: usize,
}

/// Who granted a deployment's standing grants and how many there are (read before a
/// deletion removes them, so the owner's audit log can say they ended).
pub async fn standing_grants(
    db: &D1Database,
    deployment_id: &str,
) -> AppResult<Option<(String, usize)>> {
    let row = db
        .prepare(
            "SELECT MAX(user_id) AS user_id, COUNT(*) AS n FROM oauth_grants WHERE deployment_id = ?1 AND revoked_at IS NULL",
        )
        .bind(&[text(deployment_id)])?
        .first::<Standing>(None)
        .await?;
    Ok(row.and_then(|r| r.user_id.filter(|_| r.n > 0).map(|u| (u, r.n))))
}

/// The statements that remove a deployment's OAuth rows (its deletion's batch).
pub fn delete_deployment_stmts(
    db: &D1Database,
    deployment_id: &str,
) -> AppResult<Vec<D1PreparedStatement>> {
    let grants = "SELECT id FROM oauth_grants WHERE deployment_id = ?1";
    Ok(vec![
        db.prepare(format!(
            "DELETE FROM oauth_tokens WHERE grant_id IN ({grants})"
        ))
        .bind(&[text(deployment_id)])?,
        db.prepare(format!(
            "DELETE FROM oauth_codes WHERE grant_id IN ({grants})"
        ))
        .bind(&[text(deployment_id)])?,
        db.prepare("DELETE FROM oauth_grants WHERE deployment_id = ?1")
            .bind(&[text(deployment_id)])?,
    ])
}

/// The grant behind an access token presented to deployment `deployment_id`, if that
/// token is live and was granted for exactly this deployment (its audience).
#[derive(Debug, Deserialize)]
pub struct Access {
    pub grant_id: String,
    pub expires_at: i64,
}

pub async fn access(
    db: &D1Database,
    digest: &str,
    deployment_id: &str,
    now: i64,
) -> AppResult<Option<Access>> {
    Ok(db
        .prepare(
            "SELECT t.grant_id, t.expires_at FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id \
             WHERE t.digest = ?1 AND t.kind = 'access' AND t.expires_at > ?2 \
               AND g.deployment_id = ?3 AND g.revoked_at IS NULL",
        )
        .bind(&[text(digest), int(now), text(deployment_id)])?
        .first::<Access>(None)
        .await?)
}

pub async fn touch(db: &D1Database, grant_id: &str, now: i64) -> AppResult<()> {
    db.prepare("UPDATE oauth_grants SET last_used_at = ?1 WHERE id = ?2")
        .bind(&[int(now), text(grant_id)])?
        .run()
        .await?;
    Ok(())
}

/// A connected client as the dashboard lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uri: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The standing grants of a deployment that got as far as a token, newest first.
pub async fn active_grants(db: &D1Database, deployment_id: &str) -> AppResult<Vec<GrantRow>> {
    Ok(db
        .prepare(
            "SELECT g.id, g.client_id, g.client_name, g.redirect_uri, g.created_at, g.last_used_at \
             FROM oauth_grants g WHERE g.deployment_id = ?1 AND g.revoked_at IS NULL \
               AND EXISTS (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = g.id) \
             ORDER BY g.created_at DESC, g.id DESC LIMIT 200",
        )
        .bind(&[text(deployment_id)])?
        .all()
        .await?
        .results::<GrantRow>()?)
}

pub async fn grant(
    db: &D1Database,
    deployment_id: &str,
    grant_id: &str,
) -> AppResult<Option<GrantRow>> {
    Ok(db
        .prepare(
            "SELECT id, client_id, client_name, redirect_uri, created_at, last_used_at \
             FROM oauth_grants WHERE id = ?1 AND deployment_id = ?2 AND revoked_at IS NULL",
        )
        .bind(&[text(grant_id), text(deployment_id)])?
        .first::<GrantRow>(None)
        .await?)
}
