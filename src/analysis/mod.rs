//! Analysis: from a GitHub URL or a package name to a launch plan. This first piece
//! is [`source`], the strict grammar every input passes before anything is fetched.

pub mod source;
