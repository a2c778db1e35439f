//! A deployment's machine over its life: creation (run by the `Deployer` Durable Object's
//! alarm, after the 201), what a person does to it (stop, start, restart, credentials,
//! token rotation), and its end (delete, teardown, clean-up before a retry). Shared by the
//! routes, the `Deployer` object and the reconcile cron so each rule lives once.
//!
//! The rules run over the small traits in [`ports`] (rows, accounts, machines, readiness
//! probe) and are tested natively against fakes that fail on purpose (`tests`):
//! - plaintext credentials exist only while a request or alarm builds a machine config;
//! - a failed creation destroys whatever it made (no orphans);
//! - every status change is a compare-and-set through `Rows::transition`, the only way a
//!   status changes, which refuses edges `deploy::state` lacks; so a delete racing a
//!   creation always wins and the creator destroys the machine it finds itself owning no
//!   row for;
//! - a twin creation adopts the machine rather than duplicating it;
//! - teardown leaves the row in `deleting` when the platform fails, for a retry;
//! - an account that refuses our token is abandoned only when no machine was recorded.
//!
//! Modules: [`ports`] (the traits), [`provision`], [`operate`], [`retire`], [`create`]
//! (up to the 201), [`live`] (the production bindings).

pub mod create;
pub mod live;
pub mod operate;
pub mod ports;
pub mod provision;
pub mod retire;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use operate::{Acted, Action};
