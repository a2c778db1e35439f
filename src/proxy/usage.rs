//! Usage counting off the hot path: counts pend in this isolate — (deployment, metric) →
//! n — and are written to D1 at most every [`FLUSH_MS`] (or past [`FLUSH_AT`] entries),
//! after the answer, so D1 is not written once per request. An isolate evicted before its
//! next flush loses at most those seconds of counts.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::json;
use worker::{Context, Env};

use crate::gateway::request::Message;
use crate::gateway::usage;
use crate::platform::env;
use crate::platform::log::Logger;
use crate::time::now_ms;

const FLUSH_MS: i64 = 5_000;
const FLUSH_AT: usize = 500;

type Batch = Vec<(String, String, u64)>;

struct Pending {
    counts: HashMap<(String, String), u64>,
    flushed_at: i64,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending {
        counts: HashMap::new(),
        flushed_at: 0,
    });
}

/// Counts one answered request (never delays it).
pub fn record(
    worker: &Context,
    worker_env: &Env,
    log: &Logger,
    id: &str,
    msg: &Message,
    status: u16,
    ms: i64,
) {
    let mut metrics = vec![
        "requests".to_string(),
        format!("latency:{}", usage::bucket(ms.max(0) as u64)),
    ];
    if status >= 400 {
        metrics.push("errors".to_string());
    }
    if let Some(tool) = &msg.tool {
        metrics.push(format!("tool:{tool}"));
    }
    let now = now_ms();
    let due = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        for m in metrics {
            *p.counts.entry((id.to_string(), m)).or_insert(0) += 1;
        }
        if now - p.flushed_at < FLUSH_MS && p.counts.len() < FLUSH_AT {
            return None;
        }
        Some(drain(&mut p, now))
    });
    let Some(batch) = due else { return };
    let worker_env = worker_env.clone();
    let log = log.clone();
    worker.wait_until(async move {
        let result = match env::db(&worker_env) {
            Ok(db) => crate::store::usage::record(&db, &batch, now_ms()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            log.warn("usage_record_failed", json!({ "detail": e.log_detail() }));
        }
    });
}

fn drain(p: &mut Pending, now: i64) -> Batch {
    p.flushed_at = now;
    p.counts.drain().map(|((d, m), n)| (d, m, n)).collect()
}

/// This isolate's unwritten counts, taken for writing now (the usage report writes them
/// before it reads; other isolates' arrive within [`FLUSH_MS`]).
pub fn take_pending() -> Batch {
    PENDING.with(|p| drain(&mut p.borrow_mut(), now_ms()))
}
