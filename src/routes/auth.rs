//! Identity routes and the `signed_in` guard every user route calls first.

use serde_json::{json, Value};
use worker::{Request, Response};

use crate::error::{AppError, AppResult};
use crate::identity::jwt::{bearer, verify, Identity, Rejection};
use crate::identity::recent::{Known, Recent};
use crate::identity::session::{self, Carrier};
use crate::identity::sync::{authorize, parse_profile};
use crate::identity::users::{resolve, Outcome, User};
use crate::ids::new_id;
use crate::platform::{env, web};
use crate::routes::Ctx;
use crate::store::audit::{self, Event};
use crate::store::users::D1Users;
use crate::time::{now_ms, rfc3339, to_datetime};

/// The user's public JSON form.
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "avatar_url": u.avatar_url,
        "github_id": u.github_id,
        "created_at": rfc3339(u.created_at),
        "last_seen_at": rfc3339(u.last_seen_at),
    })
}

/// Audits `user.created` (first sight, by JWT or sync) or `user.linked` (a JWT's new subject
/// joined to a synced row by its verified email).
async fn audit_user(
    cx: &Ctx,
    db: &worker::D1Database,
    user: &User,
    action: &str,
    via: &str,
    now: i64,
) {
    let event = Event {
        user_id: Some(&user.id),
        action,
        resource: Some(&user.id),
        metadata: json!({ "via": via }),
    };
    if let Err(e) = audit::record(db, cx.log.redactor(), event, now).await {
        // The sign-in itself succeeded; a lost audit row is logged, not fatal.
        cx.log
            .error("audit_failed", json!({ "detail": e.log_detail() }));
    }
}

/// The session settings, or 503 naming what the operator has not configured.
pub fn auth_config(cx: &Ctx) -> AppResult<&crate::config::AuthConfig> {
    cx.config
        .auth
        .as_ref()
        .ok_or_else(|| AppError::NotConfigured {
            missing: cx
                .config
                .auth_missing()
                .into_iter()
                .map(String::from)
                .collect(),
        })
}

/// Verifies the session JWT (no I/O) — the bearer header, else the dashboard's cookie —
/// and, for a cookie-borne change, that the request says where it comes from.
pub fn verified(req: &Request, cx: &Ctx) -> AppResult<Identity> {
    let auth = auth_config(cx)?;
    let (token, carrier) = session_token(req)?;
    let origin = web::header(req, "origin");
    if !session::csrf_ok(carrier, req.method().as_ref(), origin.as_deref()) {
        return Err(AppError::Forbidden {
            code: "origin_required",
            message: "A change made with the session cookie must carry the page's Origin."
                .to_string(),
        });
    }
    Ok(verify(auth, &token, to_datetime(now_ms()))?)
}

/// The request's session token: the `Authorization` bearer when present (it wins), else
/// the dashboard's session cookie.
pub fn session_token(req: &Request) -> AppResult<(String, Carrier)> {
    let header = web::header(req, "authorization");
    if header.is_some() {
        return Ok((bearer(header.as_deref())?.to_string(), Carrier::Header));
    }
    let cookie = web::header(req, "cookie");
    match cookie.as_deref().and_then(session::from_cookie_header) {
        Some(t) => Ok((t.to_string(), Carrier::Cookie)),
        None => Err(Rejection::MissingToken.into()),
    }
}

/// The user of a verified identity, creating (or linking) the row on first sight and
/// auditing that. An existing user costs one D1 read (`last_seen_at` is written at most
/// every `identity::users::TOUCH_INTERVAL_MS`).
pub async fn user_of(cx: &Ctx, identity: &Identity) -> AppResult<User> {
    let now = now_ms();
    let db = env::db(&cx.env)?;
    let store = D1Users { db: &db };
    let (user, outcome) = resolve(&store, identity, now, || new_id("usr")).await?;
    if outcome != Outcome::Existing {
        cx.log.info(
            "user_first_sign_in",
            json!({ "user_id": user.id, "linked": outcome == Outcome::Linked }),
        );
    }
    match outcome {
        Outcome::Created => audit_user(cx, &db, &user, "user.created", "jwt", now).await,
        Outcome::Linked => audit_user(cx, &db, &user, "user.linked", "jwt", now).await,
        Outcome::Existing => {}
    }
    Ok(user)
}

thread_local! {
    static RECENT: std::cell::RefCell<Recent> = std::cell::RefCell::new(Recent::default());
}

/// The person behind a verified identity: from this isolate's recent table (no I/O), else
/// resolved from D1 (see [`user_of`]) with whether their settings hold an LLM key.
pub async fn known(cx: &Ctx, identity: &Identity) -> AppResult<Known> {
    let now = now_ms();
    if let Some(k) = RECENT.with(|r| r.borrow().get(&identity.subject, now)) {
        return Ok(k);
    }
    let user = user_of(cx, identity).await?;
    let db = env::db(&cx.env)?;
    let own_llm_key = crate::store::settings::list(&db, &user.id)
        .await?
        .iter()
        .any(|(key, sealed, _, _)| *sealed && key == crate::store::settings::LLM_API_KEY);
    let k = Known { user, own_llm_key };
    RECENT.with(|r| r.borrow_mut().put(&identity.subject, k.clone(), now));
    Ok(k)
}

/// After a write to a person's row or settings: this isolate reads them again.
pub fn forget_known(user_id: &str) {
    RECENT.with(|r| r.borrow_mut().forget_user(user_id));
}

/// Verifies the bearer JWT and returns its user, creating the row on first sight.
pub async fn signed_in(req: &Request, cx: &Ctx) -> AppResult<User> {
    let identity = verified(req, cx)?;
    Ok(known(cx, &identity).await?.user)
}

/// `GET /api/auth/me`
pub async fn me(req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    web::json(200, &json!({ "user": user_json(&user) }))
}

/// `POST /api/auth/sync-user`
pub async fn sync_user(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let expected = cx
        .config
        .auth_sync_secret
        .as_ref()
        .ok_or_else(|| AppError::NotConfigured {
            missing: vec!["AUTH_SYNC_SECRET".into()],
        })?;
    authorize(web::header(&req, "x-auth-secret").as_deref(), expected)?;
    let body = web::read_json(&mut req).await?;
    let profile = parse_profile(&body)?;
    let now = now_ms();
    let db = env::db(&cx.env)?;
    let store = D1Users { db: &db };
    let (user, created) =
        crate::identity::users::UserStore::upsert_profile(&store, &new_id("usr")?, &profile, now)
            .await?;
    forget_known(&user.id);
    if created {
        audit_user(cx, &db, &user, "user.created", "sync", now).await;
    }
    web::json(
        if created { 201 } else { 200 },
        &json!({ "user": user_json(&user), "created": created }),
    )
}
