//! Deployments (pure pieces first): the status state machine, access tokens, and the
//! client configuration snippets handed out with a connection URL.

pub mod client_config;
pub mod fly;
pub mod state;
pub mod token;
