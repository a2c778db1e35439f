//! Owns "what a machine may be told to run": the grammars a package name and a version
//! must match, and the launch spec the Worker sends to the runner (`CATWALK_LAUNCH`),
//! turned into an exec argv in which nothing after the package can be read as an option
//! of `npx` or `uvx`.
//!
//! Pure (no I/O, no `worker`), so the Worker and the runner share one definition and it
//! is tested natively.
//!
//! - [`grammar`]: npm and PyPI package names (with PEP 503 normalisation) and versions;
//! - [`spec`]: [`LaunchSpec`], its validation and its argv.

pub mod grammar;
pub mod spec;

pub use grammar::{npm_name_ok, npm_part_ok, pypi_name_ok, pypi_normalize, version_ok};
pub use spec::{LaunchError, LaunchSpec, Runtime};
