//! `GET /api/settings` and `PUT /api/settings`: a person's own LLM API key and Fly account
//! (token + app), used instead of the operator's. Secret values are sealed by the vault and
//! never returned: GET says whether each is set, when it changed and, for a long enough
//! secret, its last four characters (opened for the answer, never stored in plaintext).

use serde_json::{json, Map, Value};
use worker::{Request, Response};

use crate::crypto::keyring;
use crate::error::{shown_key, AppError, AppResult};
use crate::http::input::Fields;
use crate::platform::{env, web};
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::audit::user_event;
use crate::store::settings::{self, FLY_API_TOKEN, FLY_APP, LLM_API_KEY};
use crate::time::{now_ms, rfc3339};

/// (name, secret, max length) of every setting a person may change.
const KNOWN: &[(&str, bool, usize)] = &[
    (LLM_API_KEY, true, 512),
    (FLY_API_TOKEN, true, 4096),
    (FLY_APP, false, 63),
];

fn fly_app_ok(app: &str) -> bool {
    let b = app.as_bytes();
    (2..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The last four characters of a secret long enough that they give nothing away (at least
/// 12); `None` for a shorter one.
fn last_four(secret: &str) -> Option<String> {
    let n = secret.chars().count();
    (n >= 12).then(|| secret.chars().skip(n - 4).collect())
}

/// The field a 422 names for a name that is not a setting: the name as given (bounded,
/// control characters dropped), or `settings` when nothing of it is left to name.
fn unknown_field(key: &str) -> String {
    shown_key(key).unwrap_or_else(|| "settings".to_string())
}

pub async fn get(req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let db = env::db(&cx.env)?;
    let rows = settings::list(&db, &user.id).await?;
    let mut out = Map::new();
    for (name, secret, _) in KNOWN {
        let row = rows.iter().find(|r| r.0 == *name);
        let mut v = json!({ "set": row.is_some(), "updated_at": row.map(|r| rfc3339(r.3)) });
        if !secret {
            v["value"] = json!(row.and_then(|r| r.2.clone()));
        } else {
            let hint = match (row, cx.config.encryption_keys.as_ref()) {
                (Some(_), Some(ring)) => settings::secret(&db, ring, &user.id, name)
                    .await
                    // One that no key opens any more shows no hint; it can still be replaced.
                    .unwrap_or(None)
                    .and_then(|plain| last_four(&plain)),
                _ => None,
            };
            v["last_four"] = json!(hint);
        }
        out.insert((*name).to_string(), v);
    }
    web::json(200, &json!({ "settings": out }))
}

/// Body: any of the known names → a string (set) or null (clear). Unknown names are 422.
pub async fn put(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let body = web::read_json(&mut req).await?;
    let mut f = Fields::of(&body)?;
    let obj = body.as_object().cloned().unwrap_or_default();
    for k in obj.keys() {
        if !KNOWN.iter().any(|(n, _, _)| n == k) {
            f.fail(&unknown_field(k), "is not a setting");
        }
    }
    let mut changes: Vec<(&str, bool, Option<String>)> = Vec::new();
    for (name, secret, max) in KNOWN {
        match obj.get(*name) {
            None => {}
            Some(Value::Null) => changes.push((name, *secret, None)),
            Some(_) => {
                if let Some(v) = f.required_str(name, *max) {
                    if *name == FLY_APP && !fly_app_ok(&v) {
                        f.fail(
                            name,
                            "must be a Fly app name (lowercase letters, digits, hyphens)",
                        );
                    } else if *secret && v.chars().any(char::is_whitespace) {
                        f.fail(name, "must not contain spaces");
                    } else {
                        changes.push((name, *secret, Some(v)));
                    }
                }
            }
        }
    }
    if obj.is_empty() {
        f.fail("settings", "give at least one setting");
    }
    let changes = f.finish(|| changes)?;
    let db = env::db(&cx.env)?;
    let now = now_ms();
    for (name, secret, value) in &changes {
        match value {
            Some(v) if *secret => {
                cx.log.also_redact(v);
                settings::put_secret(
                    &db,
                    keyring::required(cx.config.encryption_keys.as_ref())?,
                    &user.id,
                    name,
                    v,
                    now,
                )
                .await?
            }
            Some(v) => settings::put_value(&db, &user.id, name, v, now).await?,
            None => settings::remove(&db, &user.id, name).await?,
        }
    }
    if changes.is_empty() {
        return Err(AppError::field("settings", "nothing to change"));
    }
    // Whether their own LLM key exists decides which cached plans they read.
    crate::routes::auth::forget_known(&user.id);
    let names: Vec<&str> = changes.iter().map(|c| c.0).collect();
    user_event(
        &db,
        &cx.log,
        &user.id,
        "settings.changed",
        "settings",
        json!({ "settings": names }),
    )
    .await;
    get(req, cx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_long_secret_shows_its_last_four() {
        assert_eq!(last_four("sk-abcdefgh1234").as_deref(), Some("1234"));
        assert_eq!(last_four("ééééééééééé€xyz").as_deref(), Some("€xyz"));
        assert_eq!(last_four("short-12345"), None);
        assert_eq!(last_four(""), None);
    }

    #[test]
    fn an_unknown_name_is_named_and_an_empty_one_is_the_settings() {
        assert_eq!(unknown_field("bogus"), "bogus");
        assert_eq!(unknown_field("a\u{7}b"), "ab");
        assert_eq!(unknown_field(&"x".repeat(100)).len(), 64);
        // `{"": null}` answered a field named "" (found by schemathesis).
        assert_eq!(unknown_field(""), "settings");
        assert_eq!(unknown_field("\u{1}"), "settings");
    }
}
