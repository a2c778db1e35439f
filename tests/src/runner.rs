//! A real `catwalk-runner serve` on a free loopback port, started under a guard, in front
//! of a real MCP server (by default the npm reference server `server-everything` over
//! stdio, installed by `npm ci`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::guard::Guarded;
use crate::{free_port, random_hex, repo_root};

/// Builds the runner and the local machines service once per test process (both land in
/// the same target directory, where the machines service finds the runner).
fn build_binaries() -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "catwalk-runner",
                "-p",
                "catwalk-machines",
            ])
            .current_dir(repo_root())
            .output()
            .expect("cargo build -p catwalk-runner -p catwalk-machines");
        assert!(
            out.status.success(),
            "runner build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("debug")
}

/// The `catwalk-runner` binary, built first.
pub fn binary() -> PathBuf {
    build_binaries().join("catwalk-runner")
}

/// The `catwalk-machines` binary (the local Fly Machines API), built first.
pub fn machines_binary() -> PathBuf {
    build_binaries().join("catwalk-machines")
}

pub fn server_everything() -> PathBuf {
    repo_root().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// The launch spec for server-everything over stdio.
pub fn everything_launch() -> String {
    serde_json::json!({"argv": ["node", server_everything().display().to_string(), "stdio"]})
        .to_string()
}

pub struct Runner {
    pub base_url: String,
    pub secret: String,
    process: Guarded,
    dir: tempfile::TempDir,
}

impl Runner {
    pub fn start(launch: &str, env: &[(&str, &str)]) -> Runner {
        let bin = binary();
        let dir = tempfile::Builder::new()
            .prefix("catwalk-runner-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let secret = random_hex(24);
        let port_s = port.to_string();
        let mut all: Vec<(&str, &str)> = vec![
            ("CATWALK_LAUNCH", launch),
            ("CATWALK_UPSTREAM_SECRET", &secret),
            ("CATWALK_BIND", "127.0.0.1"),
            ("PORT", &port_s),
        ];
        all.extend_from_slice(env);
        let log = dir.path().join("runner.log");
        let process = Guarded::spawn(
            &bin.display().to_string(),
            &["serve"],
            &repo_root(),
            &all,
            &log,
        )
        .expect("spawn runner");
        let runner = Runner {
            base_url: format!("http://127.0.0.1:{port}"),
            secret: secret.clone(),
            process,
            dir,
        };
        runner.wait_ready();
        runner
    }

    /// Runs `catwalk-runner serve` with settings it must refuse; returns its exit code and
    /// what it printed. Panics if it is still running after 10 s (it started instead).
    pub fn refused(launch: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("runner.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let port = free_port().to_string();
        let mut child = Command::new(binary())
            .arg("serve")
            .current_dir(repo_root())
            .env("CATWALK_LAUNCH", launch)
            .env("CATWALK_UPSTREAM_SECRET", random_hex(24))
            .env("CATWALK_BIND", "127.0.0.1")
            .env("PORT", &port)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn runner");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for runner") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the runner started instead of refusing:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.code(),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    pub fn everything(env: &[(&str, &str)]) -> Runner {
        Runner::start(&everything_launch(), env)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = self.base_url.trim_start_matches("http://").to_string();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "runner not listening:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("runner.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The runner process's pid (among the guard shell's children).
    pub fn pid(&self) -> Option<u32> {
        // The guard shell's children are the runner and, now and then, its own `sleep`.
        children(self.process.pid()).into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "catwalk-runner")
        })
    }

    /// Pids of the MCP server processes the runner started (one per session).
    pub fn session_processes(&self) -> Vec<u32> {
        self.pid().map(children).unwrap_or_default()
    }
}

/// Direct children of `pid`, from /proc.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
                })
                .flatten()
                .is_some_and(|ppid| ppid == pid.to_string())
        })
        .collect()
}

/// A real `catwalk-machines` (the local Fly Machines API) on a free port.
pub struct Machines {
    pub base_url: String,
    pub token: String,
    process: Guarded,
}

impl Machines {
    /// Starts the service with its records under `state_dir` (reuse a dir to test restarts).
    pub fn start(state_dir: &Path, idle_stop_secs: u64) -> Machines {
        Machines::start_with_env(state_dir, idle_stop_secs, &[])
    }

    /// Like [`Machines::start`], with more variables in the service's own environment (it
    /// also inherits the test process's): what a machine may or may not inherit from its host.
    pub fn start_with_env(
        state_dir: &Path,
        idle_stop_secs: u64,
        extra: &[(&str, &str)],
    ) -> Machines {
        let bin = machines_binary();
        let port = free_port();
        let token = format!("fm2_{}", random_hex(16));
        let (port_s, idle_s, dir_s) = (
            port.to_string(),
            idle_stop_secs.to_string(),
            state_dir.display().to_string(),
        );
        let mut env: Vec<(&str, &str)> = vec![
            ("CATWALK_MACHINES_TOKEN", &token),
            ("PORT", &port_s),
            ("CATWALK_STATE_DIR", &dir_s),
            ("CATWALK_IDLE_STOP_SECS", &idle_s),
        ];
        env.extend_from_slice(extra);
        let process = Guarded::spawn(
            &bin.display().to_string(),
            &[],
            &repo_root(),
            &env,
            &state_dir.with_extension("log"),
        )
        .expect("spawn machines");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "machines service not listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Machines {
            base_url: format!("http://127.0.0.1:{port}"),
            token,
            process,
        }
    }

    /// The Worker's variables that make this service its Fly: the Machines API and the
    /// ingress at its address, its token, the app `catwalk-test`.
    pub fn fly_vars(&self) -> Vec<(String, String)> {
        [
            ("FLY_API_BASE", self.base_url.as_str()),
            ("FLY_INGRESS_BASE", self.base_url.as_str()),
            ("FLY_API_TOKEN", self.token.as_str()),
            ("FLY_APP", "catwalk-test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/v1/apps/catwalk-test{path}", self.base_url)
    }

    /// One machine's record as the API shows it.
    /// `GET /machines{query}` of the local Fly API (`query` "" or `?metadata.…=…`).
    pub async fn machines(&self, query: &str) -> serde_json::Value {
        crate::stack::client()
            .get(self.api(&format!("/machines{query}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("list machines")
            .json()
            .await
            .expect("machines json")
    }

    pub async fn machine(&self, machine_id: &str) -> serde_json::Value {
        crate::stack::client()
            .get(self.api(&format!("/machines/{machine_id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get machine")
            .json()
            .await
            .expect("machine json")
    }

    /// Stops a machine behind the Worker's back (as Fly's auto-stop would) and waits up to
    /// `within` until it is `stopped`.
    pub async fn stop_machine(&self, machine_id: &str, within: Duration) {
        let stop = crate::stack::client()
            .post(self.api(&format!("/machines/{machine_id}/stop")))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("stop machine");
        assert_eq!(stop.status(), 200);
        let deadline = Instant::now() + within;
        loop {
            let m = self.machine(machine_id).await;
            if m["state"] == "stopped" {
                return;
            }
            assert!(Instant::now() < deadline, "never stopped: {m}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The service's own pid (the guard's shell starts it), for its memory.
    pub fn service_pid(&self) -> Option<u32> {
        children(self.process.pid()).into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim().starts_with("catwalk-machin"))
        })
    }

    pub fn stop(mut self) {
        self.process.stop();
    }
}

/// The npm name and pinned version of server-everything (package.json's devDependency).
pub const EVERYTHING_PACKAGE: &str = "@modelcontextprotocol/server-everything";
pub const EVERYTHING_VERSION: &str = "2026.8.31";

/// Serves server-everything's npm document on a fake registry (at `/npm/…`), the way the
/// analysis reads it: its README asks for a required `CANARY_TOKEN` and an optional
/// `EXTRA_REGION`. The deployed runner then starts it with `npx`, found in node_modules.
pub fn publish_everything(fake: &crate::fake::FakeServer) {
    let (name, version) = (EVERYTHING_PACKAGE, EVERYTHING_VERSION);
    let readme = format!(
        "# everything\n\n```json\n{{\"mcpServers\": {{\"everything\": {{\"command\": \"npx\", \"args\": [\"-y\", \"{name}\"], \"env\": {{\"CANARY_TOKEN\": \"<your token>\", \"EXTRA_REGION\": \"us\"}}}}}}}}\n```\n"
    );
    fake.on(
        "GET",
        &format!("/npm/{}", name.replacen('/', "%2f", 1)),
        crate::fake::Reply::json(
            200,
            &serde_json::json!({"name": name, "readme": readme, "dist-tags": {"latest": version},
                "versions": {version: {"name": name, "version": version}}}),
        ),
    );
}
