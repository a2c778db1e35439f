//! A real local stack: the Worker built by `scripts/build.sh`, served by `wrangler dev`
//! (workerd with local D1, KV and Durable Objects) on a free loopback port, with its state
//! in a fresh temporary directory and the D1 migrations applied there first.
//!
//! Tests share one stack per test binary ([`Stack::shared`]); a test that needs different
//! settings starts its own ([`Stack::start`]). The stack's configuration is a copy of the
//! repository's `wrangler.toml` with absolute paths and no build step, and its secrets are a
//! generated `.dev.vars` beside that copy, so the developer's own `.dev.vars` is never read.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::guard::Guarded;
use crate::{free_port, jwt, random_hex, repo_root};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default, Clone)]
pub struct StackOptions {
    /// Settings to add or replace.
    pub vars: Vec<(String, String)>,
    /// Settings to leave out entirely.
    pub omit: Vec<String>,
    /// Edits the derived wrangler.toml (e.g. a lower rate limit for one test's stack).
    pub patch: Option<fn(&mut toml::Table)>,
    /// More variables in `wrangler dev`'s own environment (e.g. `NODE_EXTRA_CA_CERTS`, a
    /// test CA that miniflare then hands to workerd as a trusted certificate).
    pub env: Vec<(String, String)>,
}

pub struct Stack {
    pub base_url: String,
    /// wrangler dev's V8 inspector (for CPU profiles: `bench/profile.mjs`).
    pub inspector_port: u16,
    pub vars: BTreeMap<String, String>,
    // Declared before `dir` so the processes are gone before their directory is removed.
    process: Mutex<Guarded>,
    dir: tempfile::TempDir,
}

const DIR_PREFIX: &str = "catwalk-stack-";
const OWNER_FILE: &str = "owner.pid";

/// Removes stack directories left by earlier test processes that have exited. A shared
/// stack lives in a static, which Rust never drops, so its directory outlives the run;
/// each directory records its owner's pid so the next run can tell.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_ours {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        // SAFETY: signal 0 only checks whether the pid exists.
        let alive = owner.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn wrangler_bin() -> PathBuf {
    repo_root().join("node_modules/.bin/wrangler")
}

/// Builds the Worker once per test process; cheap when the build is fresh.
pub fn ensure_built() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let out = Command::new(repo_root().join("scripts/build.sh"))
            .current_dir(repo_root())
            .output()
            .expect("run scripts/build.sh");
        assert!(
            out.status.success(),
            "worker build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// The stacks' encryption key (id `t1`): fixed, so tests can seal values the Worker opens.
pub fn test_encryption_key() -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(3) ^ 0x5a)
}

fn default_vars() -> BTreeMap<String, String> {
    let key = STANDARD.encode(test_encryption_key());
    [
        ("AUTH_SECRET", random_hex(32)),
        ("AUTH_SYNC_SECRET", random_hex(32)),
        ("ENCRYPTION_KEYS", format!("t1:{key}")),
        ("FLY_API_TOKEN", format!("test_{}", random_hex(16))),
        ("FLY_APP", "catwalk-test".to_string()),
        // wrangler.toml says production, where unpinned JWT issuer/audience refuse tokens.
        ("ENVIRONMENT", "development".to_string()),
        (
            "ALLOWED_ORIGINS",
            "http://localhost:3000,https://app.catwalk.test".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The repository's wrangler.toml with absolute paths and without the build step.
fn test_config(dir: &Path, patch: Option<fn(&mut toml::Table)>) -> String {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("wrangler.toml")).expect("read wrangler.toml");
    let mut doc: toml::Table = text.parse().expect("wrangler.toml parses");
    doc.insert(
        "main".into(),
        toml::Value::String(root.join("build/worker/shim.mjs").display().to_string()),
    );
    doc.remove("build");
    // The dashboard's static assets (issue 14), when the config serves them.
    if let Some(toml::Value::Table(assets)) = doc.get_mut("assets") {
        if let Some(toml::Value::String(d)) = assets.get("directory").cloned() {
            let abs = root.join(d).display().to_string();
            assets.insert("directory".into(), toml::Value::String(abs));
        }
    }
    if let Some(toml::Value::Array(dbs)) = doc.get_mut("d1_databases") {
        for db in dbs.iter_mut().filter_map(toml::Value::as_table_mut) {
            db.insert(
                "migrations_dir".into(),
                toml::Value::String(root.join("migrations").display().to_string()),
            );
        }
    }
    if let Some(p) = patch {
        p(&mut doc);
    }
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, toml::to_string(&doc).expect("serialise config")).expect("write config");
    path.display().to_string()
}

/// One raw HTTP/1.1 GET, used before any async runtime exists.
fn probe(port: u16, path: &str) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.starts_with("HTTP/1.1").then_some(buf)
}

impl Stack {
    /// The stack shared by every test of this binary, started on first use.
    pub fn shared() -> &'static Stack {
        static SHARED: OnceLock<Stack> = OnceLock::new();
        SHARED.get_or_init(|| Stack::start(StackOptions::default()))
    }

    pub fn start(options: StackOptions) -> Stack {
        ensure_built();
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale_dirs);
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
            .expect("write owner pid");
        let mut vars = default_vars();
        for name in &options.omit {
            vars.remove(name);
        }
        vars.extend(options.vars.iter().cloned());
        write_dev_vars(
            dir.path(),
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let config = test_config(dir.path(), options.patch);
        let persist = dir.path().join("state");

        let stack_log = dir.path().join("wrangler.log");
        let migrate = Self::wrangler_at(
            &config,
            &[
                "d1",
                "migrations",
                "apply",
                "DB",
                "--local",
                "--persist-to",
                &persist.display().to_string(),
            ],
        );
        assert!(
            migrate.status.success(),
            "migrations failed:\n{}{}",
            String::from_utf8_lossy(&migrate.stdout),
            String::from_utf8_lossy(&migrate.stderr)
        );

        let port = free_port();
        let inspector = free_port();
        let env: Vec<(&str, &str)> = options
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut process = spawn_dev(
            &DevArgs {
                config: Path::new(&config),
                port,
                inspector,
                persist: &persist,
                log: &stack_log,
            },
            &["--test-scheduled"],
            &env,
        );

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if probe(port, "/api/health").is_some() {
                break;
            }
            let log = std::fs::read_to_string(&stack_log).unwrap_or_default();
            assert!(process.is_running(), "wrangler dev exited early:\n{log}");
            assert!(
                Instant::now() < deadline,
                "wrangler dev not ready after {READY_TIMEOUT:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }

        Stack {
            base_url: format!("http://127.0.0.1:{port}"),
            vars,
            process: Mutex::new(process),
            inspector_port: inspector,
            dir,
        }
    }

    fn wrangler_at(config: &str, args: &[&str]) -> Output {
        Command::new(wrangler_bin())
            .args(args)
            .arg("--config")
            .arg(config)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("NO_COLOR", "1")
            .current_dir(repo_root())
            .output()
            .expect("run wrangler")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn persist_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs a wrangler CLI command against this stack's configuration.
    pub fn wrangler(&self, args: &[&str]) -> Output {
        Self::wrangler_at(
            &self.dir.path().join("wrangler.toml").display().to_string(),
            args,
        )
    }

    /// The SQLite file behind the stack's local D1 database (`DB`).
    pub fn d1_file(&self) -> PathBuf {
        let dir = self.persist_dir().join("v3/d1/miniflare-D1DatabaseObject");
        std::fs::read_dir(&dir)
            .expect("local D1 directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.extension().is_some_and(|x| x == "sqlite")
                    && p.file_stem().is_some_and(|s| s != "metadata")
            })
            .expect("local D1 database file")
    }

    /// Reads the local D1 database directly, read-only. The file is in WAL mode, so a
    /// reader never blocks the Worker's writes (a second `wrangler d1 execute` process
    /// would, and the Worker would then fail with SQLITE_BUSY).
    pub fn query(&self, sql: &str) -> Vec<Value> {
        let conn = rusqlite::Connection::open_with_flags(
            self.d1_file(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open local D1 read-only");
        rows(&conn, sql)
    }

    /// Writes to the local D1 database directly. Only for a stack that no other test is
    /// using at the same moment: a concurrent Worker write would meet a held write lock.
    pub fn seed(&self, sql: &str) {
        let conn = rusqlite::Connection::open(self.d1_file()).expect("open local D1");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn.execute_batch(sql).expect("seed SQL");
    }

    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).map(String::as_str).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET path` with a bearer token, as JSON (for benchmarks and polling loops).
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    /// One API call with a bearer token and an optional JSON body: (status, the body as
    /// JSON or `Null`, the raw body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value, String) {
        let mut r = client().request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, json, text)
    }

    /// Polls a deployment until it leaves `pending`/`deploying` (or fails the test after
    /// `limit` with its last form); its last GET form.
    pub async fn settled(&self, token: &str, id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let path = format!("/api/deployments/{id}");
            let (_, d, _) = self.call(reqwest::Method::GET, &path, token, None).await;
            if d["status"] != "deploying" && d["status"] != "pending" {
                return d;
            }
            assert!(Instant::now() < deadline, "never settled: {d}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// A valid session token for `sub`.
    pub fn token(&self, sub: &str, email: Option<&str>) -> String {
        jwt::session(self.var("AUTH_SECRET"), sub, email)
    }

    /// Everything wrangler dev (and so the Worker's console) has printed so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wrangler.log")).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (console output is written asynchronously).
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if logs.contains(needle) || Instant::now() > deadline {
                return logs;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// CPU seconds (user + system) the stack's `workerd` processes have used so far: the
    /// Worker, its Durable Objects and the runtime around them. For benchmarks: the
    /// difference over a phase, divided by its requests, is the CPU each request cost.
    pub fn workerd_cpu_secs(&self) -> f64 {
        match self.process.lock() {
            Ok(p) => workerd_cpu_secs(p.pgid()),
            Err(_) => 0.0,
        }
    }

    pub fn stop(&self) {
        if let Ok(mut p) = self.process.lock() {
            p.stop();
        }
    }
}

/// Runs a query and returns each row as a JSON object keyed by column name.
pub fn rows(conn: &rusqlite::Connection, sql: &str) -> Vec<Value> {
    use rusqlite::types::ValueRef;
    let mut stmt = conn.prepare(sql).expect("prepare query");
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let mut q = stmt.query([]).expect("run query");
    while let Some(row) = q.next().expect("next row") {
        let mut obj = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = match row.get_ref(i).expect("column") {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(f) => Value::from(f),
                ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => {
                    Value::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                }
            };
            obj.insert(name.clone(), v);
        }
        out.push(Value::Object(obj));
    }
    out
}

/// An HTTP client with a timeout, so a hung Worker fails a test instead of hanging it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A `wrangler.toml` patch helper: sets the `simple.limit` of the rate limiter binding
/// `name` (period 60 s), leaving the other limiters as the repository declares them.
pub fn set_rate_limit(doc: &mut toml::Table, name: &str, limit: i64) {
    let Some(toml::Value::Array(limiters)) = doc.get_mut("ratelimits") else {
        panic!("wrangler.toml declares no [[ratelimits]]");
    };
    let limiter = limiters
        .iter_mut()
        .filter_map(toml::Value::as_table_mut)
        .find(|t| t.get("name").and_then(toml::Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no rate limiter named {name}"));
    let simple: toml::Table = format!("limit = {limit}\nperiod = 60")
        .parse()
        .expect("limiter toml");
    limiter.insert("simple".into(), toml::Value::Table(simple));
}

/// CPU seconds (user + system) used so far by the `workerd` processes of the process group
/// `pgid` (a `wrangler dev` started through [`crate::guard::Guarded`]).
pub fn workerd_cpu_secs(pgid: i32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for e in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces, so split after `)`.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with("workerd") {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // After comm: state(0) ppid(1) pgrp(2) … utime(11) stime(12).
        if fields.get(2).and_then(|g| g.parse::<i32>().ok()) != Some(pgid) {
            continue;
        }
        for i in [11, 12] {
            ticks += fields
                .get(i)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    // /proc reports in USER_HZ, fixed at 100 on Linux.
    ticks as f64 / 100.0
}

/// Secret values for `wrangler dev` as a `.dev.vars` file in `dir` (next to its config), so
/// that they never appear in argv.
pub fn write_dev_vars<'a>(dir: &Path, vars: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let text: String = vars
        .into_iter()
        .map(|(k, v)| format!("{k}={}\n", serde_json::to_string(v).unwrap_or_default()))
        .collect();
    std::fs::write(dir.join(".dev.vars"), text).expect("write .dev.vars");
}

/// Where one `wrangler dev` listens, keeps its state and logs.
pub struct DevArgs<'a> {
    pub config: &'a Path,
    pub port: u16,
    pub inspector: u16,
    pub persist: &'a Path,
    pub log: &'a Path,
}

/// Starts `wrangler dev` on 127.0.0.1 (in the config's directory, where its `.dev.vars`
/// is; no metrics, no colours, plus `env`), guarded so it never outlives the caller.
pub fn spawn_dev(args: &DevArgs<'_>, extra: &[&str], env: &[(&str, &str)]) -> Guarded {
    let mut all = vec![("WRANGLER_SEND_METRICS", "false"), ("NO_COLOR", "1")];
    all.extend_from_slice(env);
    let (port, inspector) = (args.port.to_string(), args.inspector.to_string());
    let (config, persist) = (
        args.config.display().to_string(),
        args.persist.display().to_string(),
    );
    let mut argv = vec![
        "dev",
        "--config",
        &config,
        "--ip",
        "127.0.0.1",
        "--port",
        &port,
        "--inspector-port",
        &inspector,
        "--persist-to",
        &persist,
        "--show-interactive-dev-session=false",
    ];
    argv.extend_from_slice(extra);
    let dir = args.config.parent().unwrap_or(Path::new("."));
    Guarded::spawn(
        &wrangler_bin().display().to_string(),
        &argv,
        dir,
        &all,
        args.log,
    )
    .expect("spawn wrangler dev")
}
