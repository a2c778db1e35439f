//! Who is calling: people by a signed JWT (`jwt`), the frontend's server by a shared secret
//! (`sync`), and the user record either one resolves to (`users`).

pub mod jwt;
pub mod recent;
pub mod sync;
pub mod users;
