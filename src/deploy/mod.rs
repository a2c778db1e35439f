//! Deployments, the pure parts: request validation against the analysis plan (or a
//! registry entry, `from_registry`), the status
//! machine, the row and its typed stored config, whose Fly account, access tokens, the
//! sealed secrets record, the Fly request bodies and client, and the client configuration
//! snippets handed out with a connection URL.

pub mod account;
pub mod client_config;
pub mod fly;
pub mod fly_client;
pub mod from_registry;
pub mod readiness;
pub mod request;
pub mod row;
pub mod secrets;
pub mod state;
pub mod stored;
pub mod token;
