//! A deployment as stored, with its columns already parsed: the status is a [`Status`]
//! and the config a [`StoredConfig`], read once where the row leaves D1 (an unknown status
//! or a config that is not JSON fails there, not deep inside a request).

use serde::Deserialize;

use crate::deploy::request::Launch;
use crate::deploy::state::Status;
use crate::deploy::stored::{self, StoredConfig};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub owner_id: String,
    /// The slug (unique per owner); the name as typed is in `config`.
    pub name: String,
    pub source: String,
    pub package: String,
    pub runtime: String,
    pub status: Status,
    pub machine_id: Option<String>,
    #[serde(deserialize_with = "stored::from_text")]
    pub config: StoredConfig,
    pub error_message: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Deployment {
    /// The name people see: as they typed it (rows from before display names: the slug).
    pub fn display(&self) -> String {
        self.config.display(&self.name)
    }

    /// The plan its machine runs, or an internal error (a stored plan that fails the
    /// launch grammar is never run).
    pub fn launch(&self) -> AppResult<&Launch> {
        self.config.launch().ok_or_else(|| {
            AppError::internal(format!("deployment {}: no launchable plan", self.id))
        })
    }

    pub fn region(&self) -> Option<&str> {
        self.config.region.as_deref()
    }
}
