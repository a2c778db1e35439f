//! The service's settings, read once from the environment and checked at start.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `CATWALK_MACHINES_TOKEN` | required | the API token (the Worker's `FLY_API_TOKEN`) |
//! | `PORT` / `CATWALK_BIND` | 4280 / 127.0.0.1 | listen address (API and ingress) |
//! | `CATWALK_STATE_DIR` | `.state/machines` | where records persist |
//! | `CATWALK_IDLE_STOP_SECS` | 300 | idle time before an `autostop` machine stops |
//! | `CATWALK_MACHINE_PATH` | unset | directories (`:`-separated, made absolute) put in front of each machine's `PATH`, e.g. a project's `.tools/bin` holding `uvx` |
//! | `CATWALK_RUNNER_BIN` | `catwalk-runner` next to this binary | the runner each machine runs (`… serve`) |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MachinesConfig {
    pub token: String,
    pub bind: SocketAddr,
    pub state_dir: PathBuf,
    pub idle_stop: Duration,
    pub runner_bin: PathBuf,
    /// `CATWALK_MACHINE_PATH`, absolute.
    pub machine_path: Option<String>,
}

impl MachinesConfig {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let token = get("CATWALK_MACHINES_TOKEN")
            .filter(|t| !t.is_empty())
            .ok_or("CATWALK_MACHINES_TOKEN is required")?;
        let port: u16 = get("PORT")
            .map(|p| p.parse().map_err(|_| "PORT must be a number"))
            .transpose()?
            .unwrap_or(4280);
        let ip = get("CATWALK_BIND").unwrap_or_else(|| "127.0.0.1".into());
        let bind = format!("{ip}:{port}")
            .parse()
            .map_err(|_| format!("CATWALK_BIND {ip:?} is not an IP address"))?;
        let idle: u64 = get("CATWALK_IDLE_STOP_SECS")
            .map(|s| {
                s.parse()
                    .map_err(|_| "CATWALK_IDLE_STOP_SECS must be a number")
            })
            .transpose()?
            .unwrap_or(300);
        Ok(Self {
            token,
            bind,
            state_dir: get("CATWALK_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".state/machines")),
            idle_stop: Duration::from_secs(idle),
            runner_bin: runner_bin(get("CATWALK_RUNNER_BIN"))?,
            machine_path: get("CATWALK_MACHINE_PATH")
                .map(|p| absolute_path_list(&p))
                .transpose()?
                .filter(|p| !p.is_empty()),
        })
    }
}

/// The runner binary, checked now: a missing one would otherwise surface only as a 500 on
/// the first create, far from its cause. Next to this binary by default because cargo puts
/// both in the same target directory when it builds the workspace.
fn runner_bin(explicit: Option<String>) -> Result<PathBuf, String> {
    let path = match explicit.filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find own binary: {e}"))?
            .with_file_name("catwalk-runner"),
    };
    if !Path::new(&path).is_file() {
        return Err(format!(
            "no runner at {}: build it (cargo build -p catwalk-runner, same profile) or set CATWALK_RUNNER_BIN",
            path.display()
        ));
    }
    Ok(path)
}

/// `CATWALK_MACHINE_PATH` with every entry made absolute (a machine's runner, and its
/// child under another working directory, must find the same directories).
fn absolute_path_list(list: &str) -> Result<String, String> {
    list.split(':')
        .filter(|p| !p.is_empty())
        .map(|p| {
            std::path::absolute(p)
                .map(|a| a.display().to_string())
                .map_err(|e| format!("CATWALK_MACHINE_PATH entry {p:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_path_entries_are_made_absolute_and_empty_ones_dropped() {
        let list = absolute_path_list(".tools/bin::/opt/bin").unwrap_or_default();
        let entries: Vec<&str> = list.split(':').collect();
        assert_eq!(entries.len(), 2, "{list}");
        assert!(entries[0].starts_with('/') && entries[0].ends_with("/.tools/bin"));
        assert_eq!(entries[1], "/opt/bin");
    }

    #[test]
    fn a_missing_runner_binary_is_refused_at_start() {
        let err = runner_bin(Some("/nonexistent/catwalk-runner".into())).unwrap_err();
        assert!(err.contains("CATWALK_RUNNER_BIN"), "{err}");
    }
}
