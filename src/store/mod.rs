//! D1-backed stores: each implements a small trait from a logic module (or is a plain
//! function where no logic needs a fake), and maps D1 rows to domain types.

pub mod analysis_cache;
pub mod audit;
pub mod d1;
pub mod deployments;
pub mod memo;
pub mod oauth;
pub mod schema;
pub mod sealed;
pub mod settings;
pub mod usage;
pub mod users;
