//! Deployments, the pure parts: request validation against the analysis plan, the status
//! machine, access tokens, the sealed secrets record, the Fly request bodies and client,
//! and the client configuration snippets handed out with a connection URL.

pub mod client_config;
pub mod fly;
pub mod fly_client;
pub mod readiness;
pub mod request;
pub mod secrets;
pub mod state;
pub mod token;
