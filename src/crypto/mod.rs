//! Key material and primitives that the vault and the token code share.

pub mod keyring;
pub mod secret;
pub mod vault;
