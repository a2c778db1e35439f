//! Who is calling: people by a signed JWT (`jwt`), as a bearer token or the dashboard's
//! session cookie (`session`), the frontend's server by a shared secret (`sync`), and the
//! user record either one resolves to (`users`).

pub mod jwt;
pub mod recent;
pub mod session;
pub mod sync;
pub mod users;
