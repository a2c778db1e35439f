//! The MCP gateway's pure rules (no `worker` types): where a client's access token is,
//! what a request is (era, session, initialize, tool name), which headers cross to the
//! machine and back, how the gateway object judges a request (`authority`) and keeps its
//! sessions (`sessions`) and rate bucket (`rate`), how every internal failure becomes one
//! JSON-RPC error, how a lost session is re-initialized (`recovery`), timing and the usage
//! summary. `proxy` (the Worker's side) and `durable::mcp_gateway` (the
//! per-deployment object) apply them.

pub mod authority;
pub mod failure;
pub mod link;
pub mod rate;
pub mod recovery;
pub mod request;
pub mod sessions;
pub mod timing;
pub mod usage;
