//! `make token`: prints a session JWT for the local stack, signed with `AUTH_SECRET` from
//! the repository's `.dev.vars`, so the README's curl examples work.
//!
//! Usage: dev-token [--sub ID] [--email ADDRESS] [--ttl SECONDS]

use dev_token as jwt;
use std::path::PathBuf;

/// The repository root, two levels above this crate.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dev_var(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn main() {
    let mut sub = "dev-user".to_string();
    let mut email = "dev@example.com".to_string();
    let mut ttl: i64 = 24 * 3600;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        match (a.as_str(), value) {
            ("--sub", Some(v)) => sub = v,
            ("--email", Some(v)) => email = v,
            ("--ttl", Some(v)) => match v.parse() {
                Ok(n) => ttl = n,
                Err(_) => fail("--ttl takes a number of seconds"),
            },
            _ => fail("usage: dev-token [--sub ID] [--email ADDRESS] [--ttl SECONDS]"),
        }
    }
    let path = repo_root().join(".dev.vars");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        fail(&format!(
            "{} not found: run `make dev` once first",
            path.display()
        ))
    });
    let secret = dev_var(&text, "AUTH_SECRET")
        .unwrap_or_else(|| fail("AUTH_SECRET is not set in .dev.vars"));
    let claims = jwt::claims(&sub, Some(&email), ttl);
    println!(
        "{}",
        jwt::sign(
            &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
            &claims,
            &secret
        )
    );
}

fn fail(msg: &str) -> ! {
    eprintln!("dev-token: {msg}");
    std::process::exit(2)
}
