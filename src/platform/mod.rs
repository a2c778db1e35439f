//! Everything that touches the `worker` crate's runtime types: configuration from `Env`,
//! request bodies and responses, the log sink, and the conversions from the runtime's
//! errors into [`AppError`]. Logic modules never import from here.

pub mod client_document;
pub mod env;
pub mod log;
pub mod machine;
pub mod upstream;
pub mod web;

use crate::error::AppError;

impl From<worker::Error> for AppError {
    fn from(e: worker::Error) -> Self {
        AppError::internal(format!("worker: {e}"))
    }
}

impl From<worker::kv::KvError> for AppError {
    fn from(e: worker::kv::KvError) -> Self {
        AppError::internal(format!("kv: {e}"))
    }
}
