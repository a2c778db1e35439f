//! A machine's environment: what of this host a machine inherits.
//!
//! A Fly Machine gets its image's environment plus its config's `env`; here the image is
//! this host, so each machine's runner starts with a named allow-list of this service's
//! environment ([`passed_through`]), then the machine's config `env` on top (it wins), then
//! `PORT` / `CATWALK_BIND`. The runner hands all of it but its own `CATWALK_*` settings to
//! the MCP server, so these reach `npx` / `uvx` too:
//!
//! | variables | why a machine needs them |
//! | --- | --- |
//! | `PATH` (with `CATWALK_MACHINE_PATH` in front), `HOME`, `LANG`, `TMPDIR`, `NODE_PATH` | find `node` / `npx` / `uvx` where this host has them; a home and temp dir for their caches |
//! | `SSL_CERT_FILE`, `SSL_CERT_DIR`, `NODE_EXTRA_CA_CERTS`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` | trust the same CAs as the host: behind a TLS-inspecting proxy (a corporate laptop, these dev machines) `uvx` fails with "invalid peer certificate: UnknownIssuer" without them |
//! | `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, `ALL_PROXY` (upper or lower case) | reach the registries the way the host does |
//! | `npm_config_*` / `NPM_CONFIG_*`, `UV_*`, `PIP_*` | the host's package-index settings: registry mirror, cafile, cache dir, native TLS |
//!
//! Nothing else of the host's environment (its tokens, this service's own settings) reaches
//! a machine. On Fly the image sets the equivalent (see `Dockerfile`).

/// Host variables a machine inherits by exact name (see the module docs).
const PASSED_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "TMPDIR",
    "NODE_PATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];
/// Host variables a machine inherits by prefix: package-index settings.
const PASSED_PREFIXES: &[&str] = &["npm_config_", "NPM_CONFIG_", "UV_", "PIP_"];

/// Whether a host variable is passed to every machine.
pub fn passed_through(name: &str) -> bool {
    PASSED_NAMES.contains(&name) || PASSED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The part of the host's environment a machine starts with: the allow-list, with
/// `machine_path` in front of `PATH`.
pub fn machine_env(
    host: impl Iterator<Item = (String, String)>,
    machine_path: Option<&str>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = host.filter(|(k, _)| passed_through(k)).collect();
    if let Some(front) = machine_path.filter(|p| !p.is_empty()) {
        match env.iter_mut().find(|(k, _)| k == "PATH") {
            Some((_, path)) if !path.is_empty() => *path = format!("{front}:{path}"),
            Some((_, path)) => *path = front.to_string(),
            None => env.push(("PATH".into(), front.to_string())),
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> impl Iterator<Item = (String, String)> {
        [
            ("PATH", "/usr/bin"),
            ("SSL_CERT_FILE", "/etc/proxy-ca.pem"),
            ("NODE_EXTRA_CA_CERTS", "/etc/proxy-ca.pem"),
            ("https_proxy", "http://proxy:3128"),
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("npm_config_cafile", "/etc/proxy-ca.pem"),
            ("NPM_CONFIG_REGISTRY", "https://mirror"),
            ("UV_NATIVE_TLS", "1"),
            ("PIP_INDEX_URL", "https://mirror/simple"),
            ("GITHUB_TOKEN", "ghp_host_secret"),
            ("CATWALK_MACHINES_TOKEN", "fm2_x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("Https_Proxy", "mixed case is not a convention"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
    }

    #[test]
    fn a_machine_inherits_the_hosts_tls_proxy_and_package_index_settings_only() {
        let env = machine_env(host(), None);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "SSL_CERT_FILE",
                "NODE_EXTRA_CA_CERTS",
                "https_proxy",
                "HTTPS_PROXY",
                "npm_config_cafile",
                "NPM_CONFIG_REGISTRY",
                "UV_NATIVE_TLS",
                "PIP_INDEX_URL"
            ]
        );
    }

    #[test]
    fn the_machine_path_goes_in_front_of_path() {
        let env = machine_env(host(), Some("/repo/.tools/bin"));
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        assert_eq!(path, Some("/repo/.tools/bin:/usr/bin"));
        let bare = machine_env(std::iter::empty(), Some("/x"));
        assert_eq!(bare, [("PATH".to_string(), "/x".to_string())]);
    }
}
