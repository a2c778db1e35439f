//! `AnalysisLock`: one Durable Object per analysis cache key (binding `ANALYSIS_LOCKS`,
//! migration `v2`). Requests for the same source are delivered to the same object, which
//! runs the pipeline once and hands the one result to every request that arrived while it
//! ran — so concurrent duplicate analyses cost one set of upstream calls and one LLM call.
//! Nothing is stored: the result lives in the analysis cache.

use std::cell::RefCell;

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::error::AppError;
use crate::planner::run;
use crate::planner::LockCall;
use crate::platform::log::Logger;
use crate::platform::{env, web};

/// (status, JSON body, Retry-After): what every waiter answers with.
type Outcome = (u16, String, Option<String>);

#[durable_object]
pub struct AnalysisLock {
    env: Env,
    inflight: RefCell<Option<Shared<LocalBoxFuture<'static, Outcome>>>>,
}

fn outcome_of(result: std::result::Result<Value, AppError>) -> Outcome {
    match result {
        Ok(v) => (200, v.to_string(), None),
        Err(e) => {
            let retry = e
                .headers()
                .into_iter()
                .find(|(k, _)| *k == "Retry-After")
                .map(|(_, v)| v);
            (e.status(), e.body().to_string(), retry)
        }
    }
}

impl DurableObject for AnalysisLock {
    fn new(_state: State, env: Env) -> Self {
        Self {
            env,
            inflight: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let existing = self.inflight.borrow().clone();
        let shared = match existing {
            Some(f) => f,
            None => {
                // Registered before the first await: a twin arriving while this request's
                // body is still being read must find it.
                let env = self.env.clone();
                let fut = async move {
                    let mut req = req;
                    let call = req.json::<LockCall>().await;
                    let config = env::config(&env);
                    let log = Logger::background(&config);
                    let result = match call {
                        Ok(c) => run(&env, &config, &log, &c.request, c.user_id.as_deref()).await,
                        Err(_) => Err(AppError::bad_request(
                            "invalid_body",
                            "Not an analysis lock call.",
                        )),
                    };
                    if let Err(e) = &result {
                        if e.status() >= 500 {
                            log.error(
                                "analysis_failed",
                                json!({ "code": e.code(), "detail": e.log_detail() }),
                            );
                        }
                    }
                    outcome_of(result)
                }
                .boxed_local()
                .shared();
                *self.inflight.borrow_mut() = Some(fut.clone());
                fut
            }
        };
        let (status, body, retry) = shared.await;
        self.inflight.borrow_mut().take();
        web::json_text(status, body, retry.as_deref())
    }
}
