//! Analysis: from a GitHub URL or a package name to a launch plan. Pure pieces, each
//! tested natively: [`source`] (the strict grammar every input passes before anything is
//! fetched), [`plan`] (what readers find), [`readme`] (client-config snippets),
//! [`manifest`] (package.json, pyproject.toml, smithery.yaml, the MCP registry's server.json), [`llm`]
//! (the request and the parsing of its answer), [`merge`] (manifests are ground truth),
//! [`registry`] (what npm's and PyPI's documents say), [`tarball`] (files out of an npm
//! tarball) and [`collect`] (GitHub and registry gathering over the `crate::outbound`
//! port, with its error mapping), [`exists`] (the memoized registry check), [`cache_keys`]
//! (whose plan is cached where) and [`request`] (the route's body). `crate::planner` runs
//! them over the Worker's bindings; the route is `crate::routes::analyze`; concurrent
//! duplicates are serialised by `crate::durable::analysis_lock`.

pub mod cache_keys;
pub mod collect;
pub mod exists;
pub mod llm;
pub mod manifest;
pub mod merge;
pub mod plan;
pub mod readme;
pub mod registry;
pub mod request;
pub mod source;
pub mod tarball;
