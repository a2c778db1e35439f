//! HTTP edge rules shared by every route, free of `worker` types: body limits and JSON
//! decoding, typed field extraction, CORS, the hosts we answer for, and the route table.

pub mod body;
pub mod cors;
pub mod host;
pub mod input;
pub mod page;
pub mod route;
