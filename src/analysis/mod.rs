//! Analysis: from a GitHub URL or a package name to a launch plan. Pure pieces, each
//! tested natively: [`source`] (the strict grammar every input passes before anything is
//! fetched), [`plan`] (what readers find), [`readme`] (client-config snippets),
//! [`manifest`] (package.json, pyproject.toml, the MCP registry's server.json), [`llm`]
//! (the request and the parsing of its answer), [`merge`] (manifests are ground truth),
//! [`registry`] (what npm's and PyPI's documents say) and [`tarball`] (files out of an npm
//! tarball). Still to come with the analysis route: the GitHub / registry / LLM clients over
//! `fetch`, smithery.yaml, the cached registry existence check and the KV + D1 cache.

pub mod llm;
pub mod manifest;
pub mod merge;
pub mod plan;
pub mod readme;
pub mod registry;
pub mod source;
pub mod tarball;
