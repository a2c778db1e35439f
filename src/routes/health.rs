//! `GET /api/health` (open: status and, when misconfigured, the *names* of what is missing)
//! and `GET /api/health/storage` (signed in: a real round trip through D1, KV and a Durable
//! Object, timed, so an operator can tell which binding is broken).

use serde_json::{json, Value};
use worker::{Request, Response};

use crate::error::{AppError, AppResult};
use crate::platform::{env, web};
use crate::routes::auth::signed_in;
use crate::routes::Ctx;
use crate::store::schema;
use crate::time::now_ms;

/// Probe keys live for the KV minimum TTL in case the delete below is lost.
const PROBE_TTL_SECS: u64 = 60;
/// The one gateway object name that never collides with a deployment id (`dep_…`).
pub const PROBE_OBJECT: &str = "health-probe";

pub fn health(cx: &Ctx) -> AppResult<Response> {
    let c = &cx.config;
    let version = env!("CARGO_PKG_VERSION");
    let bindings = env::missing_bindings(&cx.env);
    if c.is_healthy() && bindings.is_empty() {
        return web::json(200, &json!({ "status": "healthy", "version": version }));
    }
    let invalid: Vec<&str> = c.invalid.iter().map(|(name, _)| *name).collect();
    let missing: Vec<&str> = c.missing.iter().copied().chain(bindings).collect();
    cx.log.warn(
        "config_incomplete",
        json!({ "missing": missing, "invalid": c.invalid }),
    );
    web::json(
        503,
        &json!({ "status": "degraded", "version": version, "missing": missing, "invalid": invalid }),
    )
}

async fn timed<F: std::future::Future<Output = AppResult<Value>>>(f: F) -> Value {
    let start = now_ms();
    match f.await {
        Ok(detail) => json!({ "ok": true, "ms": now_ms() - start, "detail": detail }),
        Err(e) => json!({ "ok": false, "ms": now_ms() - start, "error": e.code() }),
    }
}

async fn probe_d1(cx: &Ctx) -> AppResult<Value> {
    let db = env::db(&cx.env)?;
    let n = db
        .prepare(schema::count_present_sql())
        .first::<i64>(Some("n"))
        .await?
        .unwrap_or(0);
    let want = schema::TABLES.len();
    if usize::try_from(n).ok() != Some(want) {
        return Err(AppError::internal(format!(
            "schema has {n} of {want} tables: migrations not applied"
        )));
    }
    Ok(json!({ "tables": n }))
}

async fn probe_kv(cx: &Ctx) -> AppResult<Value> {
    let kv = env::cache(&cx.env)?;
    let key = format!("health:probe:{}", cx.log.request_id());
    let value = format!("probe-{}", now_ms());
    kv.put(&key, value.as_str())?
        .expiration_ttl(PROBE_TTL_SECS)
        .execute()
        .await?;
    let read = kv.get(&key).text().await?;
    kv.delete(&key).await?;
    if read.as_deref() != Some(value.as_str()) {
        return Err(AppError::internal("kv read back a different value"));
    }
    Ok(json!({ "round_trip": true }))
}

async fn probe_durable_object(cx: &Ctx) -> AppResult<Value> {
    let mut resp =
        env::post_to_object(&env::gateways(&cx.env)?, PROBE_OBJECT, "/probe", None).await?;
    if resp.status_code() != 200 {
        return Err(AppError::internal(format!(
            "probe object answered {}",
            resp.status_code()
        )));
    }
    let body: Value = resp.json().await?;
    Ok(json!({ "count": body["count"] }))
}

pub async fn storage(req: Request, cx: &mut Ctx) -> AppResult<Response> {
    signed_in(&req, cx).await?;
    let d1 = timed(probe_d1(cx)).await;
    let kv = timed(probe_kv(cx)).await;
    let durable_object = timed(probe_durable_object(cx)).await;
    let ok = [&d1, &kv, &durable_object].iter().all(|v| v["ok"] == true);
    web::json(
        if ok { 200 } else { 503 },
        &json!({ "status": if ok { "healthy" } else { "degraded" }, "d1": d1, "kv": kv, "durable_object": durable_object }),
    )
}
