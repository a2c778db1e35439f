//! The MCP gateway's pure rules (no `worker` types): where a client's access token is,
//! what a request is (era, session, initialize, tool name), which headers cross to the
//! machine and back, how every internal failure becomes one JSON-RPC error, and the usage
//! summary. `routes::mcp` and `durable::mcp_session` apply them.

pub mod failure;
pub mod request;
pub mod usage;
