//! Which host names the Worker answers for: the DNS-rebinding defence the MCP transport
//! asks of servers (<https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#security-warning>).
//!
//! On Cloudflare a request reaches the Worker only through a hostname routed to it, so its
//! Host is ours. Under `wrangler dev` (`ENVIRONMENT=development`) the Worker listens on a
//! loopback port that any web page can reach by pointing its own name at 127.0.0.1; the
//! page then calls us with its Host and an Origin that matches it. There the Host must be a
//! loopback name or `PUBLIC_BASE_URL`'s host, and only then may the request's own origin
//! count as the dashboard's.

use url::Url;

use crate::config::Environment;

/// Whether a request whose URL names `host` is for us.
pub fn is_served(
    environment: Environment,
    host: Option<&str>,
    public_base_url: Option<&Url>,
) -> bool {
    match environment {
        Environment::Production => true,
        Environment::Development => host.is_some_and(|h| {
            is_loopback(h)
                || public_base_url
                    .and_then(Url::host_str)
                    .is_some_and(|p| p.eq_ignore_ascii_case(h))
        }),
    }
}

/// `localhost`, `*.localhost` (RFC 6761), or a loopback address (`[::1]` with or without
/// brackets).
fn is_loopback(host: &str) -> bool {
    let h = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_serves_loopback_names_and_the_public_host_only() {
        let public = Url::parse("https://catwalk.example.com").unwrap();
        let dev = Environment::Development;
        for host in [
            "127.0.0.1",
            "localhost",
            "LOCALHOST",
            "app.localhost",
            "[::1]",
            "127.0.0.2",
        ] {
            assert!(is_served(dev, Some(host), None), "{host}");
        }
        assert!(is_served(dev, Some("catwalk.example.com"), Some(&public)));
        for host in [
            "evil.example.com",
            "localhost.evil.example",
            "10.0.0.5",
            "0.0.0.0",
        ] {
            assert!(!is_served(dev, Some(host), Some(&public)), "{host}");
        }
        assert!(!is_served(dev, None, None));
    }

    #[test]
    fn production_leaves_host_routing_to_cloudflare() {
        assert!(is_served(
            Environment::Production,
            Some("evil.example.com"),
            None
        ));
        assert!(is_served(Environment::Production, None, None));
    }
}
