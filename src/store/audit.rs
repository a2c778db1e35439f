//! Appends to `audit_log`. Metadata must never hold secrets: callers pass names and ids,
//! and the redactor is applied once more here as a safety net.

use serde_json::Value;
use worker::D1Database;

use crate::error::AppResult;
use crate::ids::new_id;
use crate::log::Redactor;
use crate::store::d1::{int, opt_text, text};

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
