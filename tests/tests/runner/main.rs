//! The runner against a real MCP server (npm `server-everything` over stdio), driven by
//! the official Python and TypeScript SDK clients and by raw HTTP where the wire itself is
//! under test. See `runner/src/serve.rs` for the rules.

mod isolation;
mod limits;
mod machines;
mod raw;
mod ready;
mod sdk;
mod stateless;
mod wire;
