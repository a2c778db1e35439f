//! The MCP wire rules both ends of our transport need, in one pure crate (no I/O, no
//! runtime): the Worker's gateway and the runner depend on it and it is tested natively.
//!
//! - [`jsonrpc`]: classifying JSON-RPC 2.0 messages and building error responses;
//! - [`version`]: protocol revisions and the headers that carry them;
//! - [`session`]: `Mcp-Session-Id` syntax;
//! - [`sse`]: Server-Sent Events framing and an incremental parser;
//! - [`stateless`]: the 2026-07-28 request ladder (envelope, routing headers), status
//!   table and the result shapes a bridge to a handshake-era server builds.
//!
//! Spec: modelcontextprotocol `docs/specification/<rev>/basic/transports.mdx`.

pub mod jsonrpc;
pub mod session;
pub mod sse;
pub mod stateless;
pub mod version;
