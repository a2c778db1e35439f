//! The bare lower-bound Worker (`bench/bare-worker`) under its own `wrangler dev`, for
//! `make bench-gateway`: plain JavaScript doing only what a gateway of our shape must do,
//! so the benchmark can print what no Worker beats on the machine it runs on.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::guard::Guarded;
use crate::stack::{spawn_dev, workerd_cpu_secs, write_dev_vars, DevArgs};
use crate::{free_port, repo_root};

pub struct BareWorker {
    pub base_url: String,
    process: Guarded,
    _dir: tempfile::TempDir,
}

/// Where the bare Worker sends `/mcp`: the machine's ingress URL, pin and secret, and the
/// token `/mcp-do`'s object accepts.
pub struct BareTarget<'a> {
    pub ingress_url: &'a str,
    pub machine_id: &'a str,
    pub secret: &'a str,
    pub token: &'a str,
}

impl BareWorker {
    pub fn start(target: &BareTarget<'_>) -> BareWorker {
        let dir = tempfile::Builder::new()
            .prefix("catwalk-bare-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let config = repo_root().join("bench/bare-worker/wrangler.toml");
        write_dev_vars(
            dir.path(),
            [
                ("RUNNER", target.ingress_url),
                ("MACHINE", target.machine_id),
                ("SECRET", target.secret),
                ("TOKEN", target.token),
            ],
        );
        let text = std::fs::read_to_string(&config).expect("read the bare wrangler.toml");
        let main = repo_root().join("bench/bare-worker/index.js");
        let text = text.replace(
            "main = \"index.js\"",
            &format!("main = {:?}", main.display().to_string()),
        );
        let copy = dir.path().join("wrangler.toml");
        std::fs::write(&copy, text).expect("write wrangler.toml");
        let log = dir.path().join("wrangler.log");
        let process = spawn_dev(
            &DevArgs {
                config: &copy,
                port,
                inspector: free_port(),
                persist: &dir.path().join("state"),
                log: &log,
            },
            &[],
            &[],
        );
        let worker = BareWorker {
            base_url: format!("http://127.0.0.1:{port}"),
            process,
            _dir: dir,
        };
        worker.wait_ready(&log);
        worker
    }

    fn wait_ready(&self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = self.base_url.trim_start_matches("http://").to_string();
        loop {
            let up = std::net::TcpStream::connect(&addr).is_ok()
                && std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .contains("Ready on");
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "bare wrangler dev not ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// CPU seconds its `workerd` has used so far.
    pub fn workerd_cpu_secs(&self) -> f64 {
        workerd_cpu_secs(self.process.pgid())
    }
}
