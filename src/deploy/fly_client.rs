//! The Fly Machines API client (pure over [`Upstream`], so every retry rule is tested
//! natively): list by deployment metadata, create without twins, get, wait, stop, start,
//! restart, update, destroy.
//!
//! Retries: reads and idempotent actions are retried on 408/429/5xx/timeouts with backoff
//! (honouring `Retry-After`, capped). A create is never blindly re-sent: before every
//! attempt the machines carrying the deployment's metadata are listed and a match is
//! adopted, because a 408/5xx/timeout on create may still have created the machine. Should
//! a twin ever appear anyway (Fly's list can lag), the extras are destroyed.
//!
//! Machine bodies hold `config.env` — the credentials in plaintext — so nothing here ever
//! logs or returns a raw body: [`Machine`] keeps only id, state, region and metadata.

use serde_json::{json, Value};
use url::Url;

use crate::config::join;
use crate::deploy::fly::METADATA_KEY;
use crate::error::AppError;
use crate::outbound::{Fetched, Upstream, UpstreamError};

/// Body cap for Fly answers (a machine with a large config stays well below it).
const MAX_BODY: usize = 1024 * 1024;
/// Per-call timeout for ordinary API calls.
const CALL_TIMEOUT_MS: u64 = 15_000;
/// Tries for idempotent calls and for the create loop.
const ATTEMPTS: u32 = 4;
/// Longest wait between tries, whatever `Retry-After` says.
const MAX_BACKOFF_MS: u64 = 5_000;
/// One `wait` call blocks at most this long (Fly clamps to 60 s).
pub const WAIT_SLICE_SECS: u32 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub id: String,
    pub state: String,
    pub region: Option<String>,
    /// The deployment named in `config.metadata`, if any.
    pub deployment: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlyError {
    /// 408, 429, 5xx, timeout or unreachable: may succeed later.
    Transient {
        status: Option<u16>,
        retry_after: Option<u32>,
    },
    /// 404: no such machine (or app).
    NotFound,
    /// Any other refusal. `code` is Fly's `status` word when it is one (never its text,
    /// which may echo our request).
    Refused { status: u16, code: Option<String> },
    /// A success whose body we could not read.
    Malformed(&'static str),
    /// The machine reached a state it will not leave by itself (`failed`, `destroyed`).
    Broken(String),
}

impl FlyError {
    /// A one-line, secret-free description for `error_message` and logs.
    pub fn summary(&self) -> String {
        match self {
            Self::Transient {
                status: Some(s), ..
            } => format!("Fly Machines API unavailable (HTTP {s})"),
            Self::Transient { status: None, .. } => {
                "Fly Machines API unreachable or timed out".to_string()
            }
            Self::NotFound => "the machine no longer exists".to_string(),
            Self::Refused {
                status,
                code: Some(c),
            } => format!("Fly Machines API refused the request (HTTP {status}, {c})"),
            Self::Refused { status, code: None } => {
                format!("Fly Machines API refused the request (HTTP {status})")
            }
            Self::Malformed(what) => format!("Fly Machines API answered malformed {what}"),
            Self::Broken(state) => format!("the machine is {state}"),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// The HTTP error a route answers with.
    pub fn into_app(self) -> AppError {
        match self {
            Self::Transient { retry_after, .. } => AppError::Unavailable {
                message: "The machine platform is busy or unreachable; try again shortly."
                    .to_string(),
                retry_after_secs: Some(retry_after.unwrap_or(5).clamp(1, 60)),
            },
            // Fly refuses an action the machine's current state does not allow (412: e.g. a
            // restart while it is still stopping) or an update that raced another (409).
            // That is the deployment's state, not a broken platform: a conflict to retry.
            Self::Refused {
                status: 409 | 412, ..
            } => AppError::Conflict {
                code: "deployment_busy",
                message: "The machine is changing state; try again in a moment.".to_string(),
            },
            other => AppError::Upstream {
                service: "machine platform",
                detail: other.summary(),
            },
        }
    }
}

/// `Authorization` for a Fly token: macaroons (`fm1r_`, `fm1a_`, `fm2_`) go as `FlyV1`,
/// a value already starting with `FlyV1 ` is used as is, anything else is a bearer token.
pub fn authorization(token: &str) -> String {
    let t = token.trim();
    if t.starts_with("FlyV1 ") {
        t.to_string()
    } else if ["fm1r_", "fm1a_", "fm2_"].iter().any(|p| t.starts_with(p)) {
        format!("FlyV1 {t}")
    } else {
        format!("Bearer {t}")
    }
}

fn classify(f: Fetched) -> Result<Fetched, FlyError> {
    match f.status {
        200..=299 => Ok(f),
        404 => Err(FlyError::NotFound),
        408 | 429 | 500..=599 => Err(FlyError::Transient {
            status: Some(f.status),
            retry_after: f.retry_after,
        }),
        status => {
            let code = serde_json::from_slice::<Value>(&f.body)
                .ok()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_string))
                .filter(|c| {
                    (1..=40).contains(&c.len())
                        && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                });
            Err(FlyError::Refused { status, code })
        }
    }
}

fn transport(e: UpstreamError) -> FlyError {
    match e {
        UpstreamError::TooLarge => FlyError::Malformed("an oversized body"),
        UpstreamError::Timeout | UpstreamError::Unreachable(_) => FlyError::Transient {
            status: None,
            retry_after: None,
        },
    }
}

/// Reads the fields we keep from a Machine object.
pub fn machine_of(v: &Value) -> Option<Machine> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Some(Machine {
        id: s("id").filter(|id| !id.is_empty())?,
        state: s("state").unwrap_or_else(|| "unknown".to_string()),
        region: s("region"),
        deployment: v
            .pointer(&format!("/config/metadata/{METADATA_KEY}"))
            .and_then(Value::as_str)
            .map(str::to_string),
        updated_at: s("updated_at"),
    })
}

fn backoff_ms(attempt: u32, retry_after: Option<u32>) -> u64 {
    let base = 500u64 << attempt.min(4);
    retry_after
        .map(|s| u64::from(s) * 1000)
        .unwrap_or(base)
        .min(MAX_BACKOFF_MS)
}

/// Machine ids are 14 hex characters on Fly; we accept any short token of safe characters
/// so the id can go into a path unescaped.
pub fn machine_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub struct Fly<'a, U: Upstream> {
    pub up: &'a U,
    pub base: &'a Url,
    pub app: &'a str,
    /// The token as configured; [`authorization`] picks the scheme.
    pub token: &'a str,
}

impl<U: Upstream> Fly<'_, U> {
    fn url(&self, rest: &str) -> String {
        join(self.base, &format!("/v1/apps/{}/machines{rest}", self.app))
    }

    async fn once(
        &self,
        method: &str,
        rest: &str,
        body: Option<&Value>,
        timeout_ms: u64,
    ) -> Result<Fetched, FlyError> {
        let body = body.map(Value::to_string);
        let fetched = self
            .up
            .call(
                method,
                &self.url(rest),
                &authorization(self.token),
                body.as_deref(),
                MAX_BODY,
                timeout_ms,
            )
            .await
            .map_err(transport)?;
        classify(fetched)
    }

    /// An idempotent call, retried on transient failures.
    async fn retrying(
        &self,
        method: &str,
        rest: &str,
        body: Option<&Value>,
        timeout_ms: u64,
    ) -> Result<Fetched, FlyError> {
        let mut attempt = 0;
        loop {
            match self.once(method, rest, body, timeout_ms).await {
                Err(FlyError::Transient { retry_after, .. }) if attempt + 1 < ATTEMPTS => {
                    self.up.sleep(backoff_ms(attempt, retry_after)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn json(f: &Fetched) -> Result<Value, FlyError> {
        serde_json::from_slice(&f.body).map_err(|_| FlyError::Malformed("JSON"))
    }

    /// Live machines carrying `deployment_id` in their metadata, oldest id first.
    pub async fn list_for(&self, deployment_id: &str) -> Result<Vec<Machine>, FlyError> {
        let f = self
            .retrying(
                "GET",
                &format!("?metadata.{METADATA_KEY}={deployment_id}"),
                None,
                CALL_TIMEOUT_MS,
            )
            .await?;
        let list = Self::json(&f)?;
        let items = list.as_array().ok_or(FlyError::Malformed("machine list"))?;
        // Filtered again here: an API that ignored the filter must not hand us strangers.
        let mut found: Vec<Machine> = items
            .iter()
            .filter_map(machine_of)
            .filter(|m| m.deployment.as_deref() == Some(deployment_id))
            .filter(|m| !matches!(m.state.as_str(), "destroyed" | "destroying"))
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    /// Every live machine of the app that names a deployment (for the orphan sweep).
    pub async fn list_tagged(&self) -> Result<Vec<Machine>, FlyError> {
        let f = self.retrying("GET", "", None, CALL_TIMEOUT_MS).await?;
        let list = Self::json(&f)?;
        let items = list.as_array().ok_or(FlyError::Malformed("machine list"))?;
        Ok(items
            .iter()
            .filter_map(machine_of)
            .filter(|m| m.deployment.is_some())
            .filter(|m| !matches!(m.state.as_str(), "destroyed" | "destroying"))
            .collect())
    }

    pub async fn get(&self, id: &str) -> Result<Machine, FlyError> {
        if !machine_id_ok(id) {
            return Err(FlyError::NotFound);
        }
        let f = self
            .retrying("GET", &format!("/{id}"), None, CALL_TIMEOUT_MS)
            .await?;
        machine_of(&Self::json(&f)?).ok_or(FlyError::Malformed("machine"))
    }

    /// One quick look at the machine, no retries (for showing its state).
    pub async fn peek(&self, id: &str) -> Result<Machine, FlyError> {
        if !machine_id_ok(id) {
            return Err(FlyError::NotFound);
        }
        let f = self.once("GET", &format!("/{id}"), None, 5_000).await?;
        machine_of(&Self::json(&f)?).ok_or(FlyError::Malformed("machine"))
    }

    /// Creates the deployment's machine, or adopts the one an earlier (lost) attempt made.
    /// `body` is [`crate::deploy::fly::create_body`]'s output, whose metadata names
    /// `deployment_id`.
    pub async fn create(&self, deployment_id: &str, body: &Value) -> Result<Machine, FlyError> {
        let mut last = FlyError::Transient {
            status: None,
            retry_after: None,
        };
        for attempt in 0..ATTEMPTS {
            if let Some(m) = self.adopt(deployment_id).await? {
                return Ok(m);
            }
            match self.once("POST", "", Some(body), CALL_TIMEOUT_MS).await {
                Ok(f) => return machine_of(&Self::json(&f)?).ok_or(FlyError::Malformed("machine")),
                // Name taken: an earlier attempt (or a twin request) made it; adopt it.
                Err(FlyError::Refused { status: 409, .. }) => {}
                Err(e @ FlyError::Transient { .. }) => {
                    let retry_after = match &e {
                        FlyError::Transient { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    last = e;
                    self.up.sleep(backoff_ms(attempt, retry_after)).await;
                }
                Err(e) => return Err(e),
            }
        }
        // The last attempt may have succeeded without telling us.
        match self.adopt(deployment_id).await? {
            Some(m) => Ok(m),
            None => Err(last),
        }
    }

    /// The deployment's machine if one exists; twins beyond the first are destroyed.
    async fn adopt(&self, deployment_id: &str) -> Result<Option<Machine>, FlyError> {
        let mut found = self.list_for(deployment_id).await?;
        if found.is_empty() {
            return Ok(None);
        }
        for twin in found.split_off(1) {
            self.destroy(&twin.id).await?;
        }
        Ok(found.pop())
    }

    /// Waits for `state`; `Ok(false)` when the slice ran out first (Fly's 408).
    pub async fn wait(&self, id: &str, state: &str, secs: u32) -> Result<bool, FlyError> {
        if !machine_id_ok(id) {
            return Err(FlyError::NotFound);
        }
        let secs = secs.clamp(1, 60);
        let rest = format!("/{id}/wait?state={state}&timeout={secs}");
        match self
            .once("GET", &rest, None, u64::from(secs) * 1000 + CALL_TIMEOUT_MS)
            .await
        {
            Ok(_) => Ok(true),
            Err(FlyError::Transient {
                status: Some(408), ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `total_secs` for `started`, checking between slices that the machine
    /// has not failed or vanished (then waiting longer would only hide the failure).
    pub async fn wait_started(&self, id: &str, total_secs: u32) -> Result<(), FlyError> {
        let mut left = total_secs;
        let mut transient = 0;
        while left > 0 {
            let slice = left.min(WAIT_SLICE_SECS);
            match self.wait(id, "started", slice).await {
                Ok(true) => return Ok(()),
                Ok(false) => left -= slice,
                Err(e) if e.is_transient() && transient + 1 < ATTEMPTS => {
                    transient += 1;
                    self.up.sleep(backoff_ms(transient, None)).await;
                    left = left.saturating_sub(1);
                }
                Err(e) => return Err(e),
            }
            let m = self.get(id).await?;
            match m.state.as_str() {
                "started" => return Ok(()),
                "failed" | "destroyed" | "destroying" => return Err(FlyError::Broken(m.state)),
                _ => {}
            }
        }
        Err(FlyError::Transient {
            status: Some(408),
            retry_after: None,
        })
    }

    pub async fn stop(&self, id: &str) -> Result<(), FlyError> {
        self.action(id, "stop", Some(&json!({}))).await
    }

    pub async fn start(&self, id: &str) -> Result<(), FlyError> {
        self.action(id, "start", None).await
    }

    pub async fn restart(&self, id: &str) -> Result<(), FlyError> {
        self.action(id, "restart", None).await
    }

    async fn action(&self, id: &str, verb: &str, body: Option<&Value>) -> Result<(), FlyError> {
        if !machine_id_ok(id) {
            return Err(FlyError::NotFound);
        }
        self.retrying("POST", &format!("/{id}/{verb}"), body, CALL_TIMEOUT_MS)
            .await
            .map(|_| ())
    }

    /// Replaces the machine's whole config (Fly has no partial update); a running machine
    /// reboots with it, a stopped one stays stopped.
    pub async fn update(&self, id: &str, config: &Value) -> Result<Machine, FlyError> {
        if !machine_id_ok(id) {
            return Err(FlyError::NotFound);
        }
        let f = self
            .retrying(
                "POST",
                &format!("/{id}"),
                Some(&json!({ "config": config })),
                CALL_TIMEOUT_MS,
            )
            .await?;
        machine_of(&Self::json(&f)?).ok_or(FlyError::Malformed("machine"))
    }

    /// Destroys the machine whatever its state; one already gone is success.
    pub async fn destroy(&self, id: &str) -> Result<(), FlyError> {
        if !machine_id_ok(id) {
            return Ok(());
        }
        match self
            .retrying(
                "DELETE",
                &format!("/{id}?force=true"),
                None,
                CALL_TIMEOUT_MS,
            )
            .await
        {
            Ok(_) | Err(FlyError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Destroys every machine of the deployment (and `known`, if the list missed it).
    pub async fn destroy_all(
        &self,
        deployment_id: &str,
        known: Option<&str>,
    ) -> Result<(), FlyError> {
        if let Some(id) = known {
            self.destroy(id).await?;
        }
        for m in self.list_for(deployment_id).await? {
            self.destroy(&m.id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::memory::MemoryUpstream;
    use futures_util::FutureExt;

    const BASE: &str = "http://fly.test";
    const LIST: &str = "GET http://fly.test/v1/apps/app/machines?metadata.catwalk_deployment=dep_1";
    const CREATE: &str = "POST http://fly.test/v1/apps/app/machines";

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        f.now_or_never().expect("the memory upstream never pends")
    }

    fn machine(id: &str, dep: &str, state: &str) -> Value {
        json!({"id": id, "state": state, "region": "ord", "config": {"env": {"SECRET": "v"}, "metadata": {METADATA_KEY: dep}}})
    }

    fn with<T>(up: &MemoryUpstream, f: impl FnOnce(&Fly<'_, MemoryUpstream>) -> T) -> T {
        let base = Url::parse(BASE).unwrap();
        let fly = Fly {
            up,
            base: &base,
            app: "app",
            token: "fm2_abc",
        };
        f(&fly)
    }

    fn creates(up: &MemoryUpstream) -> usize {
        up.calls.borrow().iter().filter(|c| *c == CREATE).count()
    }

    #[test]
    fn macaroons_go_as_flyv1_and_other_tokens_as_bearer() {
        assert_eq!(authorization("fm2_x"), "FlyV1 fm2_x");
        assert_eq!(authorization("FlyV1 fm2_x,fm2_y"), "FlyV1 fm2_x,fm2_y");
        assert_eq!(authorization("fo1_x"), "Bearer fo1_x");
    }

    #[test]
    fn a_create_is_adopted_when_the_first_answer_was_lost() {
        let up = MemoryUpstream::default();
        up.then(LIST, 200, "[]");
        up.then(
            LIST,
            200,
            json!([machine("m1", "dep_1", "starting")]).to_string(),
        );
        up.status(CREATE, 500, None);
        let m = with(&up, |f| run(f.create("dep_1", &json!({})))).unwrap();
        assert_eq!((m.id.as_str(), m.state.as_str()), ("m1", "starting"));
        assert_eq!(
            creates(&up),
            1,
            "the create is not re-sent once a machine exists"
        );
    }

    #[test]
    fn a_name_conflict_adopts_and_twins_are_destroyed() {
        let up = MemoryUpstream::default();
        up.then(LIST, 200, "[]");
        up.then(
            LIST,
            200,
            json!([
                machine("m2", "dep_1", "started"),
                machine("m1", "dep_1", "started"),
                machine("x", "dep_other", "started")
            ])
            .to_string(),
        );
        up.then(
            CREATE,
            409,
            r#"{"error":"name taken","status":"name_taken"}"#,
        );
        up.ok(
            "DELETE http://fly.test/v1/apps/app/machines/m2?force=true",
            "{}",
        );
        let m = with(&up, |f| run(f.create("dep_1", &json!({})))).unwrap();
        assert_eq!(m.id, "m1");
        assert!(up
            .calls
            .borrow()
            .iter()
            .any(|c| c.starts_with("DELETE") && c.contains("/m2")));
    }

    #[test]
    fn rate_limits_and_timeouts_are_retried_with_backoff_then_reported() {
        let up = MemoryUpstream::default();
        up.ok(LIST, "[]");
        up.status(CREATE, 429, Some(2));
        let e = with(&up, |f| run(f.create("dep_1", &json!({})))).unwrap_err();
        assert!(e.is_transient());
        assert_eq!(creates(&up), ATTEMPTS as usize);
        assert!(up.slept.borrow().contains(&2000), "Retry-After honoured");
        assert!(up.slept.borrow().iter().all(|ms| *ms <= MAX_BACKOFF_MS));
        assert_eq!(e.clone().into_app().status(), 503);

        let up = MemoryUpstream::default();
        up.ok(LIST, "[]");
        up.fail(CREATE, UpstreamError::Timeout);
        assert!(with(&up, |f| run(f.create("dep_1", &json!({}))))
            .unwrap_err()
            .is_transient());
    }

    #[test]
    fn refusals_and_malformed_bodies_are_not_retried_and_never_echo_fly_text() {
        let up = MemoryUpstream::default();
        up.ok(LIST, "[]");
        up.then(
            CREATE,
            422,
            r#"{"error":"bad env SECRET=hunter2","status":"unknown"}"#,
        );
        let e = with(&up, |f| run(f.create("dep_1", &json!({})))).unwrap_err();
        assert_eq!(creates(&up), 1);
        assert!(!e.summary().contains("hunter2"));
        assert!(e.summary().contains("422"));
        assert_eq!(e.into_app().status(), 502);
        // A machine mid-transition (schemathesis found a restart right after a restart
        // answered 502) is the deployment's state: 409 deployment_busy.
        for status in [409, 412] {
            let e = FlyError::Refused { status, code: None }.into_app();
            assert_eq!((e.status(), e.code()), (409, "deployment_busy"));
        }

        let up = MemoryUpstream::default();
        up.ok(LIST, "{not json");
        let e = with(&up, |f| run(f.list_for("dep_1"))).unwrap_err();
        assert_eq!(e, FlyError::Malformed("JSON"));
    }

    #[test]
    fn lists_ignore_strangers_and_destroyed_machines() {
        let up = MemoryUpstream::default();
        up.ok(LIST, json!([machine("a", "dep_1", "destroyed"), machine("b", "dep_2", "started"), {"id": "c", "state": "started"}, machine("d", "dep_1", "stopped")]).to_string());
        let found = with(&up, |f| run(f.list_for("dep_1"))).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "d");
    }

    #[test]
    fn waiting_loops_on_408_and_stops_at_a_failed_machine() {
        let up = MemoryUpstream::default();
        let wait = "GET http://fly.test/v1/apps/app/machines/m1/wait?state=started&timeout=30";
        let get = "GET http://fly.test/v1/apps/app/machines/m1";
        up.then(wait, 408, "{}");
        up.then(wait, 200, r#"{"ok":true}"#);
        up.ok(get, machine("m1", "dep_1", "starting").to_string());
        assert!(with(&up, |f| run(f.wait_started("m1", 120))).is_ok());

        let up = MemoryUpstream::default();
        up.status(wait, 408, None);
        up.ok(get, machine("m1", "dep_1", "failed").to_string());
        assert_eq!(
            with(&up, |f| run(f.wait_started("m1", 120))).unwrap_err(),
            FlyError::Broken("failed".into())
        );
    }

    #[test]
    fn destroying_a_gone_machine_is_success_and_bad_ids_never_reach_a_path() {
        let up = MemoryUpstream::default();
        assert!(with(&up, |f| run(f.destroy("m9"))).is_ok(), "404 is gone");
        assert!(with(&up, |f| run(f.destroy("../../apps"))).is_ok());
        assert_eq!(
            with(&up, |f| run(f.get("a/b"))).unwrap_err(),
            FlyError::NotFound
        );
        assert!(up.calls.borrow().iter().all(|c| !c.contains("..")));
    }
}
