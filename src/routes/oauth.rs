//! The authorization server's endpoints (docs/oauth.md): discovery documents, client
//! registration, the authorization request and its consent API, tokens, revocation, and a
//! deployment's connected clients. Rules live in `crate::oauth`, rows in `store::oauth`.
//! The OAuth endpoints answer errors in RFC 6749's form, which OAuth clients parse; the
//! consent and grants APIs are ordinary API routes with the API's error shape.

use std::collections::HashMap;

use serde_json::{json, Value};
use worker::{Headers, Request, Response};

use crate::error::{AppError, AppResult};
use crate::http::input::Fields;
use crate::identity::users::User;
use crate::ids::{new_id, random_hex};
use crate::oauth::client::{self, redirect_host, Client, Refusal};
use crate::oauth::metadata;
use crate::oauth::reply::{self, OAuthError};
use crate::oauth::request::{self, Pending, Unusable};
use crate::oauth::secret::{
    self, ACCESS_PREFIX, ACCESS_TTL_MS, CODE_PREFIX, CODE_TTL_MS, REFRESH_PREFIX, REFRESH_TTL_MS,
};
use crate::platform::{client_document, env, web};
use crate::proxy::gate;
use crate::routes::auth::signed_in;
use crate::routes::{public_base, Ctx};
use crate::store::deployments as deployments_store;
use crate::store::{audit, oauth as store};
use crate::time::now_ms;

/// Registration and token bodies are small forms or JSON (bytes).
const MAX_BODY: usize = 16 * 1024;
const PENDING_PREFIX: &str = "oauth-request:v1:";

fn public_json(value: &Value) -> AppResult<Response> {
    let mut r = web::json(200, value)?;
    r.headers_mut()
        .set("Cache-Control", "public, max-age=300")?;
    Ok(r)
}

/// `GET /.well-known/oauth-protected-resource[/api/mcp/{id}]`
pub fn resource_metadata(req: &Request, cx: &Ctx, id: Option<&str>) -> AppResult<Response> {
    public_json(&metadata::protected_resource(&public_base(req, cx)?, id))
}

/// `GET /.well-known/oauth-authorization-server` and its aliases.
pub fn server_metadata(req: &Request, cx: &Ctx) -> AppResult<Response> {
    public_json(&metadata::authorization_server(&public_base(req, cx)?))
}

fn oauth_error(e: &OAuthError) -> AppResult<Response> {
    let mut r = web::json(e.status, &e.body())?;
    r.headers_mut().set("Cache-Control", "no-store")?;
    Ok(r)
}

fn refusal(r: Refusal) -> OAuthError {
    OAuthError::new(400, r.error, r.description)
}

async fn read_body(req: &mut Request) -> Result<Vec<u8>, OAuthError> {
    web::read_capped(req, MAX_BODY).await.map_err(|e| match e {
        AppError::PayloadTooLarge { .. } => OAuthError::new(
            413,
            "invalid_request",
            format!("The body is larger than {MAX_BODY} bytes."),
        ),
        _ => OAuthError::invalid_request("The body could not be read."),
    })
}

/// `POST /oauth/register` (RFC 7591): a public client with its redirect URIs.
pub async fn register(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    // Anyone may register a client, so registrations are counted per address.
    let address = web::header(&req, "cf-connecting-ip").unwrap_or_else(|| "unknown".into());
    let limiter = env::rate_limiter(&cx.env, env::OAUTH_RATE_LIMITER)?;
    if !limiter.limit(address).await?.success {
        return Err(AppError::RateLimited {
            retry_after_secs: 60,
        });
    }
    let body = match read_body(&mut req).await {
        Ok(b) => b,
        Err(e) => return oauth_error(&e),
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return oauth_error(&OAuthError::new(
            400,
            "invalid_client_metadata",
            "The body must be a JSON object of client metadata.",
        ));
    };
    let client_id = format!("{}{}", client::REGISTERED_PREFIX, random_hex(16)?);
    let c = match client::registration(&v, client_id) {
        Ok(c) => c,
        Err(r) => return oauth_error(&refusal(r)),
    };
    let now = now_ms();
    store::insert_client(&env::db(&cx.env)?, &c, now).await?;
    cx.log.info(
        "oauth_client_registered",
        json!({ "client_id": c.client_id, "redirect_hosts": c.redirect_uris.iter().map(|u| redirect_host(u)).collect::<Vec<_>>() }),
    );
    let mut out = json!({
        "client_id": c.client_id,
        "client_id_issued_at": now / 1000,
        "redirect_uris": c.redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": metadata::SCOPE,
    });
    for (k, v) in [
        ("client_name", &c.client_name),
        ("client_uri", &c.client_uri),
        ("logo_uri", &c.logo_uri),
    ] {
        if let Some(v) = v {
            out[k] = json!(v);
        }
    }
    let mut r = web::json(201, &out)?;
    r.headers_mut().set("Cache-Control", "no-store")?;
    Ok(r)
}

/// The client a `client_id` names: its metadata document, or its registration.
async fn find_client(cx: &Ctx, client_id: &str) -> Result<Client, Unusable> {
    let unusable = |r: Refusal| Unusable {
        error: r.error,
        description: r.description,
    };
    if client::is_document_id(client_id) {
        client::document_url(client_id, cx.config.sign_in.oauth_loopback_clients)
            .map_err(unusable)?;
        let kv = env::cache(&cx.env).map_err(|_| Unusable {
            error: "server_error",
            description: "The client could not be looked up.".into(),
        })?;
        return client_document::load(&kv, client_id)
            .await
            .map_err(unusable);
    }
    let unknown = || Unusable {
        error: "invalid_client",
        description:
            "Unknown client_id: register the client first, or use a client metadata document URL."
                .into(),
    };
    if !client::registered_id_ok(client_id) {
        return Err(unknown());
    }
    let db = env::db(&cx.env).map_err(|_| unknown())?;
    match store::registered_client(&db, client_id).await {
        Ok(Some(c)) => Ok(c),
        _ => Err(unknown()),
    }
}

fn escape_html(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// An authorization request we cannot redirect back: told to the person (a page), or to
/// a client that asked for JSON. Never a redirect, so never an open redirector.
fn unusable_answer(req: &Request, u: &Unusable) -> AppResult<Response> {
    let wants_json = web::header(req, "accept").is_some_and(|a| a.contains("application/json"));
    // Our own failure (KV unreachable) is not the client's fault: a 503, not a 400.
    let status = if u.error == "server_error" { 503 } else { 400 };
    if wants_json {
        return oauth_error(&OAuthError::new(status, u.error, u.description.clone()));
    }
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorization failed</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem\">\
         <h1>This authorization request cannot be used</h1><p>{}</p><p><code>{}</code></p>\
         <p>Go back to your MCP client and connect again. If it keeps happening, the client is misconfigured.</p></body></html>",
        escape_html(&u.description),
        escape_html(u.error)
    );
    let headers = Headers::new();
    headers.set("Content-Type", "text/html; charset=utf-8")?;
    headers.set(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    )?;
    headers.set("X-Frame-Options", "DENY")?;
    headers.set("Referrer-Policy", "no-referrer")?;
    Ok(Response::ok(html)?
        .with_status(status)
        .with_headers(headers))
}

fn redirect(location: &str) -> AppResult<Response> {
    let headers = Headers::new();
    headers.set("Location", location)?;
    headers.set("Referrer-Policy", "no-referrer")?;
    Ok(Response::empty()?.with_status(302).with_headers(headers))
}

/// `GET /oauth/authorize`: checked in the order that keeps redirects safe, then kept for
/// the consent page, which the person reaches by redirect.
pub async fn authorize(req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let query = web::query(&req).unwrap_or_default();
    let q = match request::parse(&query) {
        Ok(q) => q,
        Err(u) => return unusable_answer(&req, &u),
    };
    let client_id = match request::client_id(&q) {
        Ok(c) => c.to_string(),
        Err(u) => return unusable_answer(&req, &u),
    };
    let client = match find_client(cx, &client_id).await {
        Ok(c) => c,
        Err(u) => {
            cx.log.info(
                "oauth_client_refused",
                json!({ "error": u.error, "why": u.description }),
            );
            return unusable_answer(&req, &u);
        }
    };
    let redirect_uri = match request::redirect_uri(&q, &client) {
        Ok(r) => r,
        Err(u) => return unusable_answer(&req, &u),
    };
    let issuer = public_base(&req, cx)?;
    let now = now_ms();
    let fail = |error: &str, description: &str| {
        redirect(&request::error_redirect(
            &redirect_uri,
            q.state.as_deref(),
            error,
            description,
            &issuer,
        ))
    };
    let pending = match request::judge(&q, &client, redirect_uri.clone(), &issuer, now) {
        Ok(p) => p,
        Err(r) => return fail(r.error, &r.description),
    };
    let db = env::db(&cx.env)?;
    let exists = deployments_store::for_gateway(&db, &pending.deployment_id)
        .await?
        .is_some_and(|row| row.status != crate::deploy::state::Status::Deleting);
    if !exists {
        return fail("invalid_target", "No such MCP server.");
    }
    let rid = random_hex(16)?;
    let text = serde_json::to_string(&pending).map_err(|e| AppError::internal(e.to_string()))?;
    env::cache(&cx.env)?
        .put(&format!("{PENDING_PREFIX}{rid}"), text)?
        .expiration_ttl((request::PENDING_TTL_MS / 1000) as u64)
        .execute()
        .await?;
    redirect(&format!("/oauth/consent?request={rid}"))
}

async fn pending(cx: &Ctx, rid: Option<&str>) -> AppResult<(String, Pending)> {
    let gone = || {
        AppError::NotFound {
        message: "This authorization request expired or was already answered; start again from your MCP client.".into(),
    }
    };
    let rid = rid.ok_or_else(gone)?;
    let key = format!("{PENDING_PREFIX}{rid}");
    let text = env::cache(&cx.env)?
        .get(&key)
        .text()
        .await?
        .ok_or_else(gone)?;
    let p: Pending = serde_json::from_str(&text).map_err(|_| gone())?;
    if p.expires_at <= now_ms() {
        return Err(gone());
    }
    Ok((key, p))
}

/// The deployment a pending request is for, if `user` owns it: 403 `not_owner` when it is
/// someone else's, 404 when it is gone.
async fn owned_target(
    cx: &Ctx,
    user: &User,
    p: &Pending,
) -> AppResult<crate::store::deployments::Deployment> {
    let db = env::db(&cx.env)?;
    match deployments_store::get(&db, &p.deployment_id).await? {
        Some(d) if d.owner_id == user.id && d.status != crate::deploy::state::Status::Deleting => {
            Ok(d)
        }
        Some(d) if d.owner_id != user.id => Err(AppError::Forbidden {
            code: "not_owner",
            message: "Only the owner of this deployment can grant access to it.".into(),
        }),
        _ => Err(AppError::not_found("No such deployment.")),
    }
}

/// `GET /api/oauth/requests/{key}`: what the consent page shows.
pub async fn request_info(req: Request, cx: &mut Ctx, rid: Option<&str>) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let (_, p) = pending(cx, rid).await?;
    let d = owned_target(cx, &user, &p).await?;
    web::json(
        200,
        &json!({
            "request": rid,
            "client": {
                "client_id": p.client.client_id,
                "client_name": p.client.client_name,
                "client_uri": p.client.client_uri,
                "logo_uri": p.client.logo_uri,
                "kind": request::kind_name(p.client.kind),
            },
            "redirect_host": redirect_host(&p.redirect_uri),
            "deployment": { "id": d.id, "name": d.display() },
            "scope": p.scope,
            "expires_at": p.expires_at / 1000,
        }),
    )
}

/// `POST /api/oauth/requests/{key}` `{"approve": bool}`: the owner's answer, once.
pub async fn decide(mut req: Request, cx: &mut Ctx, rid: Option<&str>) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let body = web::read_json(&mut req).await?;
    let mut f = Fields::of(&body)?;
    let approve = f.optional_bool("approve");
    // `null` is no answer either: a consent must be an explicit true or false.
    if approve.is_none() && f.get("approve").is_none_or(Value::is_null) {
        f.fail("approve", "is required (true or false)");
    }
    let approve = f.finish(|| approve.unwrap_or(false))?;
    let (key, p) = pending(cx, rid).await?;
    let d = owned_target(cx, &user, &p).await?;
    // Single use: gone before anything is granted.
    env::cache(&cx.env)?.delete(&key).await?;
    let issuer = public_base(&req, cx)?;
    let db = env::db(&cx.env)?;
    let host = redirect_host(&p.redirect_uri);
    let details = json!({ "client_id": p.client.client_id, "client_name": p.client.client_name, "redirect_host": host });
    if !approve {
        audit::deployment(&db, &cx.log, &user.id, "oauth.denied", &d.id, details).await;
        let to = request::error_redirect(
            &p.redirect_uri,
            p.state.as_deref(),
            "access_denied",
            "The owner denied access.",
            &issuer,
        );
        return web::json(200, &json!({ "redirect_to": to }));
    }
    let code = secret::mint(CODE_PREFIX)?;
    cx.log.also_redact(&code);
    let grant_id = new_id("grt")?;
    let now = now_ms();
    let granted = store::grant_with_code(
        &db,
        &store::NewGrant {
            id: &grant_id,
            deployment_id: &d.id,
            user_id: &user.id,
            client_id: &p.client.client_id,
            client_name: p.client.client_name.as_deref(),
            redirect_uri: &p.redirect_uri,
            scope: &p.scope,
        },
        &secret::digest(&code),
        &p.code_challenge,
        now + CODE_TTL_MS,
        now,
    )
    .await?;
    if !granted {
        return Err(AppError::not_found("No such deployment."));
    }
    let mut details = details;
    details["grant"] = json!(grant_id);
    audit::deployment(&db, &cx.log, &user.id, "oauth.granted", &d.id, details).await;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = p.state.as_deref() {
        params.push(("state", s));
    }
    let to = request::redirect_to(&p.redirect_uri, &params, &issuer);
    web::json(200, &json!({ "redirect_to": to }))
}

/// A form body (`application/x-www-form-urlencoded`), each parameter at most once.
async fn form(req: &mut Request) -> Result<HashMap<String, String>, OAuthError> {
    let ct = web::header(req, "content-type").unwrap_or_default();
    if !ct.split(';').next().is_some_and(|m| {
        m.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    }) {
        return Err(OAuthError::invalid_request(
            "The body must be application/x-www-form-urlencoded.",
        ));
    }
    let body = read_body(req).await?;
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "The parameter {} appears more than once.",
                crate::error::shown_key(&k).unwrap_or_default()
            )));
        }
    }
    Ok(out)
}

fn required<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    f.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required.")))
}

/// Ends a grant because one of its single-use values came back: every token of the
/// family stops working now, and the owner sees why in the audit log.
async fn revoke_family(
    cx: &Ctx,
    grant_id: &str,
    deployment_id: &str,
    owner: &str,
    reason: &str,
) -> AppResult<()> {
    let db = env::db(&cx.env)?;
    if store::revoke_grant(&db, grant_id, reason, now_ms()).await? {
        gate::forget(&cx.env, &cx.log, deployment_id).await;
        audit::deployment(
            &db,
            &cx.log,
            owner,
            "oauth.revoked",
            deployment_id,
            json!({ "grant": grant_id, "reason": reason }),
        )
        .await;
    }
    Ok(())
}

fn check_resource(
    f: &HashMap<String, String>,
    issuer: &str,
    deployment_id: &str,
) -> Result<(), OAuthError> {
    match f.get("resource") {
        Some(r) if metadata::deployment_of(issuer, r) != Some(deployment_id) => {
            Err(OAuthError::new(
                400,
                "invalid_target",
                "resource is not the MCP URL this grant is for.",
            ))
        }
        _ => Ok(()),
    }
}

async fn tokens_for(cx: &mut Ctx, grant_id: &str) -> Result<Value, OAuthError> {
    let server = |_| OAuthError::new(500, "server_error", "Tokens could not be issued.");
    let access = secret::mint(ACCESS_PREFIX).map_err(server)?;
    let refresh = secret::mint(REFRESH_PREFIX).map_err(server)?;
    cx.log.also_redact(&access);
    cx.log.also_redact(&refresh);
    let now = now_ms();
    let db = env::db(&cx.env).map_err(server)?;
    let issued = store::issue(
        &db,
        grant_id,
        (&secret::digest(&access), now + ACCESS_TTL_MS),
        (&secret::digest(&refresh), now + REFRESH_TTL_MS),
        now,
    )
    .await
    .map_err(server)?;
    if !issued {
        return Err(OAuthError::invalid_grant("The grant was revoked."));
    }
    Ok(reply::tokens(&access, &refresh))
}

async fn exchange_code(
    cx: &mut Ctx,
    f: &HashMap<String, String>,
    issuer: &str,
) -> Result<Value, OAuthError> {
    let code = required(f, "code")?;
    let redirect_uri = required(f, "redirect_uri")?;
    let client_id = required(f, "client_id")?;
    let verifier = required(f, "code_verifier")?;
    cx.log.also_redact(code);
    cx.log.also_redact(verifier);
    let invalid = || OAuthError::invalid_grant("The code is invalid, expired or already used.");
    if !secret::well_formed(CODE_PREFIX, code) {
        return Err(invalid());
    }
    let server = |_| OAuthError::new(500, "server_error", "The code could not be checked.");
    let db = env::db(&cx.env).map_err(server)?;
    let digest = secret::digest(code);
    let row = store::code(&db, &digest)
        .await
        .map_err(server)?
        .ok_or_else(invalid)?;
    if row.client_id != client_id {
        return Err(invalid());
    }
    // A code seen twice was stolen or replayed: whatever it issued is revoked.
    let code_reused = || async {
        revoke_family(
            cx,
            &row.grant_id,
            &row.deployment_id,
            &row.user_id,
            "code_reuse",
        )
        .await
        .map_err(server)
    };
    if row.used_at.is_some() {
        code_reused().await?;
        return Err(OAuthError::invalid_grant(
            "The code was already used; the tokens issued for it are revoked.",
        ));
    }
    if row.expires_at <= now_ms() || row.revoked_at.is_some() {
        return Err(invalid());
    }
    if row.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request.",
        ));
    }
    if !secret::verifier_matches(verifier, &row.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge.",
        ));
    }
    check_resource(f, issuer, &row.deployment_id)?;
    if !store::spend_code(&db, &digest, now_ms())
        .await
        .map_err(server)?
    {
        code_reused().await?;
        return Err(invalid());
    }
    tokens_for(cx, &row.grant_id).await
}

async fn refresh(
    cx: &mut Ctx,
    f: &HashMap<String, String>,
    issuer: &str,
) -> Result<Value, OAuthError> {
    let token = required(f, "refresh_token")?;
    let client_id = required(f, "client_id")?;
    cx.log.also_redact(token);
    let invalid = || OAuthError::invalid_grant("The refresh token is invalid, expired or revoked.");
    if !secret::well_formed(REFRESH_PREFIX, token) {
        return Err(invalid());
    }
    let server = |_| {
        OAuthError::new(
            500,
            "server_error",
            "The refresh token could not be checked.",
        )
    };
    let db = env::db(&cx.env).map_err(server)?;
    let digest = secret::digest(token);
    let row = store::token(&db, &digest)
        .await
        .map_err(server)?
        .ok_or_else(invalid)?;
    if row.kind != "refresh" || row.client_id != client_id || row.revoked_at.is_some() {
        return Err(invalid());
    }
    let reused = || async {
        revoke_family(
            cx,
            &row.grant_id,
            &row.deployment_id,
            &row.user_id,
            "refresh_reuse",
        )
        .await
        .map_err(server)?;
        Err::<Value, _>(OAuthError::invalid_grant(
            "The refresh token was already used; every token of this grant is revoked. Sign in again.",
        ))
    };
    if row.used_at.is_some() {
        return reused().await;
    }
    if row.expires_at <= now_ms() {
        return Err(invalid());
    }
    check_resource(f, issuer, &row.deployment_id)?;
    if let Some(scope) = f.get("scope") {
        if scope.split_whitespace().any(|s| s != metadata::SCOPE) {
            return Err(OAuthError::new(
                400,
                "invalid_scope",
                "The only scope is \"mcp\".",
            ));
        }
    }
    if !store::spend_refresh(&db, &digest, now_ms())
        .await
        .map_err(server)?
    {
        return reused().await;
    }
    tokens_for(cx, &row.grant_id).await
}

/// `POST /oauth/token`
pub async fn token(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let f = match form(&mut req).await {
        Ok(f) => f,
        Err(e) => return oauth_error(&e),
    };
    let issuer = public_base(&req, cx)?;
    let answer = match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange_code(cx, &f, &issuer).await,
        Some("refresh_token") => refresh(cx, &f, &issuer).await,
        Some(_) => Err(OAuthError::new(
            400,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token.",
        )),
        None => Err(OAuthError::invalid_request("grant_type is required.")),
    };
    match answer {
        Ok(tokens) => {
            let mut r = web::json(200, &tokens)?;
            r.headers_mut().set("Cache-Control", "no-store")?;
            r.headers_mut().set("Pragma", "no-cache")?;
            Ok(r)
        }
        Err(e) => {
            cx.log.info(
                "oauth_token_refused",
                json!({ "error": e.error, "why": e.description }),
            );
            oauth_error(&e)
        }
    }
}

/// `POST /oauth/revoke` (RFC 7009): revoking either token of a grant ends the grant. The
/// answer is 200 whether or not the token was known, so it reveals nothing.
pub async fn revoke(mut req: Request, cx: &mut Ctx) -> AppResult<Response> {
    let f = match form(&mut req).await {
        Ok(f) => f,
        Err(e) => return oauth_error(&e),
    };
    let token = match required(&f, "token") {
        Ok(t) => t.to_string(),
        Err(e) => return oauth_error(&e),
    };
    cx.log.also_redact(&token);
    if secret::well_formed(ACCESS_PREFIX, &token) || secret::well_formed(REFRESH_PREFIX, &token) {
        let db = env::db(&cx.env)?;
        if let Some(row) = store::token(&db, &secret::digest(&token)).await? {
            let same_client = f.get("client_id").is_none_or(|c| *c == row.client_id);
            if same_client && row.revoked_at.is_none() {
                revoke_family(
                    cx,
                    &row.grant_id,
                    &row.deployment_id,
                    &row.user_id,
                    "client",
                )
                .await?;
            }
        }
    }
    let mut r = Response::empty()?.with_status(200);
    r.headers_mut().set("Cache-Control", "no-store")?;
    Ok(r)
}

/// `GET /api/deployments/{id}/oauth-grants`: the clients connected to a deployment.
pub async fn grants(req: Request, cx: &mut Ctx, id: Option<&str>) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let d = crate::routes::deployments::owned(cx, &user, id).await?;
    let rows = store::active_grants(&env::db(&cx.env)?, &d.id).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|g| {
            json!({
                "id": g.id,
                "client_id": g.client_id,
                "client_name": g.client_name,
                "redirect_host": redirect_host(&g.redirect_uri),
                "created_at": g.created_at / 1000,
                "last_used_at": g.last_used_at.map(|t| t / 1000),
            })
        })
        .collect();
    web::json(200, &json!({ "grants": items }))
}

/// `DELETE /api/deployments/{id}/oauth-grants/{key}`: the owner revokes one client.
pub async fn revoke_grant(
    req: Request,
    cx: &mut Ctx,
    id: Option<&str>,
    key: Option<&str>,
) -> AppResult<Response> {
    let user = signed_in(&req, cx).await?;
    let d = crate::routes::deployments::owned(cx, &user, id).await?;
    let not_found = || AppError::NotFound {
        message: "No such connected client.".into(),
    };
    let key = key.ok_or_else(not_found)?;
    let db = env::db(&cx.env)?;
    store::grant(&db, &d.id, key).await?.ok_or_else(not_found)?;
    revoke_family(cx, key, &d.id, &user.id, "owner").await?;
    Ok(Response::empty()?.with_status(204))
}
