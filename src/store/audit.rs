//! Appends to `audit_log`. Metadata must never hold secrets: callers pass names and ids,
//! and the redactor is applied once more here as a safety net.

use serde_json::{json, Value};
use worker::D1Database;

use crate::error::AppResult;
use crate::ids::new_id;
use crate::log::Redactor;
use crate::platform::log::Logger;
use crate::store::d1::{int, opt_text, text};
use crate::time::now_ms;

pub struct Event<'a> {
    pub user_id: Option<&'a str>,
    pub action: &'a str,
    pub resource: Option<&'a str>,
    pub metadata: Value,
}

pub async fn record(
    db: &D1Database,
    redactor: &Redactor,
    event: Event<'_>,
    now: i64,
) -> AppResult<()> {
    let metadata = redactor.redact(&event.metadata.to_string());
    db.prepare(
        "INSERT INTO audit_log (id, user_id, action, resource, metadata, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
        text(&new_id("aud")?),
        opt_text(event.user_id),
        text(event.action),
        opt_text(event.resource),
        text(&metadata),
        int(now),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Appends an event by `user_id` about `resource`; a lost audit row is logged, never fatal
/// to the action.
pub async fn user_event(
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
    if let Err(e) = record(db, log.redactor(), event, now_ms()).await {
        log.error(
            "audit_failed",
            json!({ "action": action, "detail": e.log_detail() }),
        );
    }
}

/// An event about a deployment (`resource` = `deployment:{id}`).
pub async fn deployment(
    db: &D1Database,
    log: &Logger,
    user_id: &str,
    action: &str,
    deployment_id: &str,
    metadata: Value,
) {
    let resource = format!("deployment:{deployment_id}");
    user_event(db, log, user_id, action, &resource, metadata).await
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Entry {
    pub id: String,
    pub action: String,
    pub resource: Option<String>,
    pub metadata: String,
    pub created_at: i64,
}

/// The user's own events, newest first, one keyset page.
pub async fn list_own(
    db: &D1Database,
    user_id: &str,
    page: &crate::http::page::Page,
) -> AppResult<Vec<Entry>> {
    let (t, id) = page.before.clone().unwrap_or((i64::MAX, String::new()));
    Ok(db
        .prepare(
            "SELECT id, action, resource, metadata, created_at FROM audit_log WHERE user_id = ?1 \
             AND (created_at < ?2 OR (created_at = ?2 AND id < ?3)) ORDER BY created_at DESC, id DESC LIMIT ?4",
        )
        .bind(&[text(user_id), int(t), text(&id), int(i64::from(page.limit))])?
        .all()
        .await?
        .results::<Entry>()?)
}
