//! The dashboard's sign-in: which ways exist (`GET /api/auth/providers`), the development
//! sign-in (`POST /api/auth/dev-sign-in`, only with `DEV_SIGN_IN` in development), turning
//! an identity provider's session JWT into the session cookie (`POST /api/auth/session`),
//! and signing out (`POST /api/auth/sign-out`). The cookie rules are in
//! `crate::identity::session`.

use serde_json::json;
use worker::{Request, Response};

use crate::error::{AppError, AppResult};
use crate::http::input::Fields;
use crate::identity::jwt::{mint, verify, MAX_SUBJECT_LEN};
use crate::identity::session::{clear_cookie, set_cookie, Carrier};
use crate::identity::sync::valid_email;
use crate::platform::web;
use crate::routes::auth::{auth_config, known, session_token, user_json};
use crate::routes::Ctx;
use crate::time::{now_ms, to_datetime};

/// The development sign-in's subjects: `dev:<email>`.
const DEV_SUBJECT: &str = "dev:";

fn with_cookie(mut resp: Response, cookie: &str) -> AppResult<Response> {
    resp.headers_mut().set("Set-Cookie", cookie)?;
    Ok(resp)
}

/// `GET /api/auth/providers` (open)
pub fn providers(cx: &Ctx) -> AppResult<Response> {
    let s = &cx.config.sign_in;
    web::json(
        200,
        &json!({
            "dev_sign_in": s.dev,
            "login_url": s.login_url.as_ref().map(|u| u.as_str().to_string()),
        }),
    )
}

/// `POST /api/auth/dev-sign-in` `{"email": …}`: anyone, as any email — which is why it
/// exists only when the operator turned it on in development; otherwise no such route.
pub async fn dev_sign_in(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    if !cx.config.sign_in.dev {
        return Err(AppError::not_found("No such route."));
    }
    let auth = auth_config(cx)?.clone();
    let body = web::read_json(&mut req).await?;
    let mut f = Fields::of(&body)?;
    let email = f.required_str("email", 320);
    if email.as_deref().is_some_and(|e| !valid_email(e)) {
        f.fail("email", "must be an email address");
    } else if email
        .as_deref()
        .is_some_and(|e| DEV_SUBJECT.len() + e.len() > MAX_SUBJECT_LEN)
    {
        // The minted `sub` must pass the very check that reads it back (a longer email
        // was a 401 "names no subject"; found by schemathesis).
        f.fail(
            "email",
            format!(
                "must be at most {} bytes here",
                MAX_SUBJECT_LEN - DEV_SUBJECT.len()
            ),
        );
    }
    let email = f
        .finish(|| email)?
        .ok_or_else(|| AppError::field("email", "is required"))?
        .to_ascii_lowercase();
    let now = to_datetime(now_ms());
    let token = mint(&auth, &format!("{DEV_SUBJECT}{email}"), &email, now)?;
    let identity = verify(&auth, &token, now)?;
    let user = known(cx, &identity).await?.user;
    let resp = web::json(200, &json!({ "user": user_json(&user) }))?;
    with_cookie(resp, &set_cookie(&token, auth.max_lifetime_secs))
}

/// `POST /api/auth/session` with `Authorization: Bearer <session JWT>`: the identity
/// provider's token, checked like on any route, becomes the session cookie.
pub async fn create(req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let auth = auth_config(cx)?.clone();
    let (token, carrier) = session_token(&req)?;
    if carrier != Carrier::Header {
        return Err(AppError::unauthorized(
            "missing_token",
            "Send the identity provider's token as Authorization: Bearer.",
        ));
    }
    let identity = verify(&auth, &token, to_datetime(now_ms()))?;
    let user = known(cx, &identity).await?.user;
    let resp = web::json(200, &json!({ "user": user_json(&user) }))?;
    with_cookie(resp, &set_cookie(&token, auth.max_lifetime_secs))
}

/// `POST /api/auth/sign-out`: forgets the cookie (a JWT cannot be revoked; it expires).
pub fn sign_out() -> AppResult<Response> {
    with_cookie(Response::empty()?.with_status(204), &clear_cookie())
}
