//! `Deployer`: one Durable Object per deployment (binding `DEPLOYERS`, migration `v3`)
//! that runs the machine creation in its alarm, after the API has answered 201. An alarm
//! outlives the request that set it (a `waitUntil` is cut 30 s after the response, and a
//! machine can take minutes to pull and boot), is retried by the platform if the object
//! is evicted mid-run, and runs one at a time per deployment.

use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

use crate::error::AppError;
use crate::http::route::deployment_id_ok;
use crate::lifecycle::live::Live;
use crate::lifecycle::provision::provision;
use crate::platform::log::Logger;
use crate::platform::{env, web};

const DEPLOYMENT_KEY: &str = "deployment_id";
/// Runs of the alarm that ended in an error (not a platform refusal: those fail the row).
const ERRORS_KEY: &str = "errors";

/// When to run the creation again after its `errors`-th error in a row: 2, 4, 8, 16 s,
/// then no more (the reconcile cron takes over). An error here is our side failing (D1,
/// KV, a key) mid-creation, which is usually over in seconds; without this the row would
/// sit in `deploying` until the cron's next pass.
fn retry_after(errors: u32) -> Option<std::time::Duration> {
    (1..=4)
        .contains(&errors)
        .then(|| std::time::Duration::from_secs(1 << errors))
}

#[durable_object]
pub struct Deployer {
    state: State,
    env: Env,
}

impl DurableObject for Deployer {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post || req.path() != "/provision" {
            return Ok(web::error_response(&AppError::not_found(
                "No such deployer operation.",
            )));
        }
        let body: Value = req.json().await.unwrap_or(Value::Null);
        let Some(id) = body["deployment_id"]
            .as_str()
            .filter(|id| deployment_id_ok(id))
        else {
            return Ok(web::error_response(&AppError::bad_request(
                "invalid_body",
                "deployment_id is required.",
            )));
        };
        let storage = self.state.storage();
        storage.put(DEPLOYMENT_KEY, id).await?;
        storage.put(ERRORS_KEY, 0u32).await?;
        // An offset of zero: the alarm runs as soon as this request returns.
        storage.set_alarm(std::time::Duration::ZERO).await?;
        web::json_text(202, json!({ "scheduled": true }).to_string(), None)
    }

    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        let Some(id) = storage.get::<String>(DEPLOYMENT_KEY).await? else {
            return Response::empty();
        };
        let config = env::config(&self.env);
        let mut log = Logger::background(&config);
        // Each write of the creation tells the deployment's gateway object itself.
        let outcome = match Live::new(&self.env, &config, &log) {
            Ok(live) => provision(&live.ports(), &mut log, &id).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                storage.delete(DEPLOYMENT_KEY).await?;
                storage.delete(ERRORS_KEY).await?;
            }
            Err(e) => {
                let errors = storage
                    .get::<u32>(ERRORS_KEY)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(0)
                    + 1;
                let again = retry_after(errors);
                log.error(
                    "provision_error",
                    json!({ "deployment": id, "code": e.code(), "detail": e.log_detail(), "errors": errors, "retry_in_secs": again.map(|d| d.as_secs()) }),
                );
                // Past the last retry it stays in storage: the reconcile cron re-schedules
                // deployments that stay in `deploying`, and fails them after 30 minutes.
                storage.put(ERRORS_KEY, errors).await?;
                if let Some(wait) = again {
                    storage.set_alarm(wait).await?;
                }
            }
        }
        Response::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::retry_after;
    use std::time::Duration;

    #[test]
    fn errors_are_retried_four_times_backing_off_then_left_to_the_cron() {
        let waits: Vec<_> = (0..7).map(retry_after).collect();
        let s = Duration::from_secs;
        assert_eq!(
            waits,
            [
                None,
                Some(s(2)),
                Some(s(4)),
                Some(s(8)),
                Some(s(16)),
                None,
                None
            ]
        );
    }
}
