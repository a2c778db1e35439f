//! Records on disk: one JSON file per machine, `{state_dir}/{app}/{id}.json`, holding
//! `{"app", "machine"}`. A process does not survive a restart of this service, so a
//! machine that was running comes back `stopped` (and starts again on the next request if
//! it autostarts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use catwalk_runner::clock::now_ms;
use serde_json::{json, Value};

use crate::fleet::Live;
use crate::model::{event, Machine};

fn path_for(state_dir: &Path, app: &str, id: &str) -> PathBuf {
    state_dir.join(app).join(format!("{id}.json"))
}

/// Writes the record through a temporary file, so a crash mid-write leaves the old record
/// rather than a truncated one. Best effort: the live table stays the truth while we run.
pub fn save(state_dir: &Path, live: &Live) {
    let path = path_for(state_dir, &live.app, &live.record.id);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension("json.tmp");
    if let Ok(text) = serde_json::to_vec_pretty(&json!({"app": live.app, "machine": live.record})) {
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

/// Every record under `state_dir`; files that do not parse are skipped, not fatal.
pub fn load(state_dir: &Path) -> HashMap<String, Live> {
    let mut out = HashMap::new();
    let Ok(apps) = std::fs::read_dir(state_dir) else {
        return out;
    };
    for file in apps
        .flatten()
        .filter_map(|a| std::fs::read_dir(a.path()).ok())
        .flatten()
        .flatten()
    {
        let Ok(text) = std::fs::read(file.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&text) else {
            continue;
        };
        let (Some(app), Ok(mut record)) = (
            v["app"].as_str(),
            serde_json::from_value::<Machine>(v["machine"].clone()),
        ) else {
            continue;
        };
        if !matches!(
            record.state.as_str(),
            "created" | "stopped" | "destroyed" | "failed"
        ) {
            record.state = "stopped".into();
            record.events.insert(0, event("exit", "stopped", now_ms()));
        }
        out.insert(record.id.clone(), Live::new(record, app));
    }
    out
}
