//! OAuth 2.1 for MCP clients: the Worker is the authorization server for every
//! deployment's MCP URL, which is a protected resource (see `docs/oauth.md`). The rules
//! here are pure; D1 lives in `store::oauth`, fetching client documents in
//! `platform::client_document`, and the handlers in `routes::oauth`.

pub mod client;
pub mod metadata;
pub mod reply;
pub mod request;
pub mod secret;
