//! Durable Object classes exported by the Worker (each needs a `wrangler.toml` binding
//! and a migration).

pub mod analysis_lock;
pub mod deployer;
pub mod mcp_gateway;
