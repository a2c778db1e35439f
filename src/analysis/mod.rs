//! Analysis: from a GitHub URL or a package name to a launch plan. Pure readers, each
//! tested natively: [`source`] (the strict grammar every input passes before anything is
//! fetched), [`plan`] (what readers find), [`readme`] (client-config snippets),
//! [`manifest`] (package.json and the MCP registry's server.json).

pub mod manifest;
pub mod plan;
pub mod readme;
pub mod source;
