//! `make token`: prints a session JWT for the local stack, signed with `AUTH_SECRET` from
//! the repository's `.dev.vars`, so the README's curl examples work.
//!
//! Usage: dev-token [--sub ID] [--email ADDRESS] [--ttl SECONDS] [--unverified]
//!
//! The token carries `iat` and `exp` (the Worker requires both) and `"email_verified": true`
//! unless `--unverified` is given. `--ttl` may not exceed the Worker's lifetime cap
//! (`AUTH_JWT_MAX_LIFETIME_SECS` in `.dev.vars`, else one day): such a token would be refused.

use dev_token as jwt;
use std::path::PathBuf;

/// The repository root, two levels above this crate.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Worker's default `AUTH_JWT_MAX_LIFETIME_SECS`.
const DEFAULT_MAX_LIFETIME_SECS: i64 = 86_400;
const USAGE: &str = "usage: dev-token [--sub ID] [--email ADDRESS] [--ttl SECONDS] [--unverified]";

fn dev_var(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn main() {
    let mut sub = "dev-user".to_string();
    let mut email = "dev@example.com".to_string();
    let mut ttl: i64 = DEFAULT_MAX_LIFETIME_SECS;
    let mut verified = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--unverified" {
            verified = false;
            continue;
        }
        match (a.as_str(), args.next()) {
            ("--sub", Some(v)) => sub = v,
            ("--email", Some(v)) => email = v,
            ("--ttl", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => ttl = n,
                _ => fail("--ttl takes a positive number of seconds"),
            },
            _ => fail(USAGE),
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
    let cap = dev_var(&text, "AUTH_JWT_MAX_LIFETIME_SECS")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(DEFAULT_MAX_LIFETIME_SECS);
    if ttl > cap {
        fail(&format!(
            "--ttl {ttl} exceeds the Worker's token lifetime cap of {cap} s (AUTH_JWT_MAX_LIFETIME_SECS)"
        ));
    }
    let mut claims = jwt::claims(&sub, Some(&email), ttl);
    if verified {
        claims["email_verified"] = serde_json::json!(true);
    }
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
