//! Test kit for Catwalk Edge's integration tests:
//! - [`bare`]: the bare lower-bound Worker the gateway benchmark runs beside ours;
//! - [`stack`]: builds the Worker once and runs a real `wrangler dev` (workerd with local
//!   D1, KV and Durable Objects) on a free loopback port with its own state directory;
//! - [`guard`]: runs child process trees so that none outlives the test process, even on
//!   panic, Ctrl-C or SIGKILL;
//! - [`fake`]: programmable loopback HTTP servers standing in for upstreams we cannot reach
//!   (Fly, GitHub, the LLM), including their failures;
//! - [`jwt`]: HS256 tokens, well-formed or deliberately broken;
//! - [`npm`], [`registry`]: a loopback npm registry and official MCP registry;
//! - [`runner`]: a real `catwalk-runner serve` process in front of a real MCP server;
//! - [`soak`]: sessions calling through the gateway while faults are injected;
//! - [`clients`]: the official Python and TypeScript MCP SDKs as real clients;
//! - [`oauth`]: OAuth 2.1 for MCP clients: a test CA, a loopback HTTPS host for Client ID
//!   Metadata Documents, and the authorization flow on the wire.

pub mod bare;
pub mod clients;
pub mod fake;
pub mod guard;
pub mod npm;
pub mod oauth;
pub mod registry;
pub mod runner;
pub mod soak;
pub mod stack;

/// Session JWTs, valid or deliberately broken (the `dev-token` crate).
pub use dev_token as jwt;

use std::path::PathBuf;

/// The repository root (the workspace that holds `wrangler.toml`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Random lowercase hex, for secrets and unique test data.
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
