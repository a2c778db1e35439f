//! Cron triggers: `wrangler.toml` `[triggers] crons` lists the schedules below; each job is
//! its own module with a plain `run` function. An unknown schedule is logged, not guessed.

pub mod cache_cleanup;
pub mod reconcile;

use serde_json::json;
use worker::Env;

use crate::platform::log::Logger;

/// Every 30 minutes: delete expired analysis cache rows.
pub const CACHE_CLEANUP: &str = "*/30 * * * *";
/// Every 5 minutes: reconcile deployment status with reality.
pub const RECONCILE: &str = "*/5 * * * *";

pub async fn dispatch(cron: &str, env: &Env, log: &Logger) {
    let result = match cron {
        CACHE_CLEANUP => cache_cleanup::run(env, log).await,
        RECONCILE => reconcile::run(env, log).await,
        other => {
            log.warn("cron_unknown", json!({ "cron": other }));
            return;
        }
    };
    if let Err(e) = result {
        log.error(
            "cron_failed",
            json!({ "cron": cron, "code": e.code(), "detail": e.log_detail() }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_in_wrangler_toml_has_a_job_and_vice_versa() {
        let toml = include_str!("../../wrangler.toml");
        let line = toml
            .lines()
            .find(|l| l.trim_start().starts_with("crons"))
            .expect("crons line");
        for cron in [CACHE_CLEANUP, RECONCILE] {
            assert!(
                line.contains(&format!("\"{cron}\"")),
                "{cron} missing from wrangler.toml"
            );
        }
        assert_eq!(
            line.matches('"').count(),
            4,
            "an extra schedule has no job: {line}"
        );
    }
}
