//! Integration tests against a real `wrangler dev` stack (see `edge_tests::stack`). One
//! stack is shared by the whole binary; modules are grouped by what they cover.

mod analyze;
mod auth;
mod browser;
mod conformance;
mod contract;
mod deploy_faults;
mod deployments;
mod edge;
mod gateway;
mod health;
mod oauth;
mod readiness;
mod registry;
mod security;
mod session;
mod soak;
mod storage;
mod support;
