//! Typed configuration: every `[vars]` entry and secret the Worker reads, parsed once per
//! request from a plain lookup function (so it is tested natively), with the names of what
//! is missing or malformed collected for `/api/health` instead of failing later and vaguely.
//!
//! The table of settings lives in the README ("Configuration"); keep the two in step.

use crate::crypto::keyring::KeyRing;
use crate::crypto::secret::Secret;
use url::Url;

/// HS256 keys shorter than this are refused: a guessable signing key is no key.
pub const MIN_AUTH_SECRET_LEN: usize = 32;
/// `AUTH_JWT_MAX_LIFETIME_SECS` when unset: a session token lives at most one day.
pub const DEFAULT_JWT_MAX_LIFETIME_SECS: u32 = 86_400;
/// The range `AUTH_JWT_MAX_LIFETIME_SECS` may take: one minute to 30 days.
pub const JWT_MAX_LIFETIME_RANGE: (u32, u32) = (60, 2_592_000);

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub secret: Secret,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// `AUTH_EMAILS_VERIFIED`: the operator vouches that the identity provider verifies every
    /// email it puts in a token, so a token's `email` counts as verified without the
    /// `email_verified` claim. Off by default: an unverified email never links accounts.
    pub emails_verified: bool,
    /// `AUTH_JWT_MAX_LIFETIME_SECS`: the longest `exp - iat` accepted, and the oldest `iat`
    /// (plus the clock leeway), so a leaked token is not good for longer than this.
    pub max_lifetime_secs: u32,
}

/// `ENVIRONMENT`: where this Worker runs. Production (the default, and what an unknown
/// value falls back to) requires `AUTH_JWT_ISSUER` and `AUTH_JWT_AUDIENCE`, so a token
/// minted with the same key for another application or audience is not accepted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Production,
    Development,
}

/// The settings without which no session JWT is accepted, in the order they are reported.
const AUTH_SETTINGS: &[&str] = &["AUTH_SECRET", "AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"];

#[derive(Debug, Clone)]
pub struct FlyConfig {
    pub api_base: Url,
    pub app: Option<String>,
    pub token: Option<Secret>,
    /// Where machine ingress is reached; `https://{app}.fly.dev` unless set.
    pub ingress_base: Option<Url>,
    pub runner_image: String,
    /// Guest memory per machine (`FLY_MACHINE_MEMORY_MB`, a multiple of 256).
    pub memory_mb: u32,
    /// How long a new machine may take to reach `started` (`FLY_START_TIMEOUT_SECS`).
    pub start_timeout_secs: u32,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Deployments one person may hold at once (`MAX_DEPLOYMENTS_PER_USER`).
    pub deployments_per_user: u32,
    /// MCP requests per minute one deployment serves (`MCP_RATE_LIMIT`).
    pub mcp_requests_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub api_base: Url,
    pub model: String,
    pub api_key: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct UpstreamBases {
    pub github_api: Url,
    pub github_raw: Url,
    pub npm_registry: Url,
    pub pypi: Url,
    pub mcp_registry: Url,
}

/// How people sign in to the dashboard.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// `DEV_SIGN_IN=true`: `POST /api/auth/dev-sign-in` exists (any email, no password).
    /// Honoured only with `ENVIRONMENT=development`; in production it is reported invalid
    /// and stays off.
    pub dev: bool,
    /// `AUTH_LOGIN_URL`: where the dashboard sends a person to sign in with the operator's
    /// identity provider (which then hands the session JWT to `POST /api/auth/session`).
    pub login_url: Option<Url>,
    /// `OAUTH_LOOPBACK_CLIENTS=true`: OAuth clients whose metadata document is served on a
    /// loopback host (local test fakes) are accepted. Development only, like `dev`.
    pub oauth_loopback_clients: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub sign_in: SignIn,
    /// `None` while a setting it needs is missing or invalid ([`Config::auth_missing`]).
    pub auth: Option<AuthConfig>,
    pub auth_sync_secret: Option<Secret>,
    pub encryption_keys: Option<KeyRing>,
    pub allowed_origins: Vec<String>,
    pub public_base_url: Option<Url>,
    pub fly: FlyConfig,
    pub llm: LlmConfig,
    pub upstreams: UpstreamBases,
    pub limits: Limits,
    /// Required settings that are absent or empty (names only).
    pub missing: Vec<&'static str>,
    /// Settings that are present but unusable, with a reason that never echoes the value.
    pub invalid: Vec<(&'static str, String)>,
}

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    missing: Vec<&'static str>,
    invalid: Vec<(&'static str, String)>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required(&mut self, name: &'static str) -> Option<String> {
        let v = self.get(name);
        if v.is_none() {
            self.missing.push(name);
        }
        v
    }

    /// A required secret that must also be long enough to resist guessing.
    fn shared_secret(&mut self, name: &'static str) -> Option<Secret> {
        let value = self.required(name)?;
        if value.len() < MIN_AUTH_SECRET_LEN {
            self.invalid.push((
                name,
                format!("must be at least {MIN_AUTH_SECRET_LEN} characters"),
            ));
            return None;
        }
        Some(Secret::new(value))
    }

    fn base_url(&mut self, name: &'static str, default: &str) -> Url {
        let raw = self.get(name).unwrap_or_else(|| default.to_string());
        match parse_base_url(&raw) {
            Ok(url) => url,
            Err(why) => {
                self.invalid.push((name, why));
                // The default is a constant of ours and always parses.
                parse_base_url(default)
                    .unwrap_or_else(|_| Url::parse("http://invalid.").expect("literal URL"))
            }
        }
    }

    /// A whole number within `range`, else `default` (and the setting named as invalid).
    fn number(&mut self, name: &'static str, default: u32, range: (u32, u32)) -> u32 {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.parse::<u32>() {
            Ok(n) if (range.0..=range.1).contains(&n) => n,
            _ => {
                self.invalid.push((
                    name,
                    format!("must be a whole number from {} to {}", range.0, range.1),
                ));
                default
            }
        }
    }

    /// `true` or `false` (any case), else `default` (and the setting named as invalid).
    fn flag(&mut self, name: &'static str, default: bool) -> bool {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                self.invalid
                    .push((name, "must be true or false".to_string()));
                default
            }
        }
    }

    fn environment(&mut self) -> Environment {
        let Some(raw) = self.get("ENVIRONMENT") else {
            return Environment::Production;
        };
        match raw.to_ascii_lowercase().as_str() {
            "production" => Environment::Production,
            "development" => Environment::Development,
            _ => {
                self.invalid.push((
                    "ENVIRONMENT",
                    "must be production or development".to_string(),
                ));
                Environment::Production
            }
        }
    }

    fn optional_base_url(&mut self, name: &'static str) -> Option<Url> {
        let raw = self.get(name)?;
        match parse_base_url(&raw) {
            Ok(url) => Some(url),
            Err(why) => {
                self.invalid.push((name, why));
                None
            }
        }
    }
}

/// A base URL must be http(s), carry no credentials, query or fragment; it is normalised to
/// end without a slash so paths can be appended as `{base}/v1/...`.
pub fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| "not a URL".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".to_string());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".to_string());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not contain a query or fragment".to_string());
    }
    if url.host_str().is_none() {
        return Err("must name a host".to_string());
    }
    Ok(url)
}

/// Joins a base URL and an absolute path without doubling or dropping the slash.
pub fn join(base: &Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

impl Config {
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(lookup: F) -> Self {
        let mut r = Reader {
            lookup: &lookup,
            missing: Vec::new(),
            invalid: Vec::new(),
        };

        let environment = r.environment();
        let auth_secret = r.shared_secret("AUTH_SECRET");
        let (issuer, audience) = match environment {
            Environment::Production => (
                r.required("AUTH_JWT_ISSUER"),
                r.required("AUTH_JWT_AUDIENCE"),
            ),
            Environment::Development => (r.get("AUTH_JWT_ISSUER"), r.get("AUTH_JWT_AUDIENCE")),
        };
        // In production an unpinned issuer or audience leaves auth unconfigured (every
        // signed-in route answers 503 not_configured) rather than accepting any token
        // signed with the key: fail closed, and health names what to set.
        let pinned =
            environment == Environment::Development || (issuer.is_some() && audience.is_some());
        let emails_verified = r.flag("AUTH_EMAILS_VERIFIED", false);
        let dev_sign_in = r.flag("DEV_SIGN_IN", false);
        if dev_sign_in && environment == Environment::Production {
            r.invalid.push((
                "DEV_SIGN_IN",
                "only allowed with ENVIRONMENT=development".to_string(),
            ));
        }
        let loopback_clients = r.flag("OAUTH_LOOPBACK_CLIENTS", false);
        if loopback_clients && environment == Environment::Production {
            r.invalid.push((
                "OAUTH_LOOPBACK_CLIENTS",
                "only allowed with ENVIRONMENT=development".to_string(),
            ));
        }
        let sign_in = SignIn {
            dev: dev_sign_in && environment == Environment::Development,
            login_url: r.optional_base_url("AUTH_LOGIN_URL"),
            oauth_loopback_clients: loopback_clients && environment == Environment::Development,
        };
        let max_lifetime_secs = r.number(
            "AUTH_JWT_MAX_LIFETIME_SECS",
            DEFAULT_JWT_MAX_LIFETIME_SECS,
            JWT_MAX_LIFETIME_RANGE,
        );
        let auth = auth_secret.filter(|_| pinned).map(|secret| AuthConfig {
            secret,
            issuer,
            audience,
            emails_verified,
            max_lifetime_secs,
        });
        let auth_sync_secret = r.shared_secret("AUTH_SYNC_SECRET");
        let encryption_keys =
            r.required("ENCRYPTION_KEYS")
                .and_then(|raw| match KeyRing::parse(&raw) {
                    Ok(ring) => Some(ring),
                    Err(why) => {
                        r.invalid.push(("ENCRYPTION_KEYS", why));
                        None
                    }
                });

        let allowed_origins = r
            .get("ALLOWED_ORIGINS")
            .map(|raw| parse_origins(&raw, &mut r.invalid))
            .unwrap_or_default();
        let public_base_url = r.optional_base_url("PUBLIC_BASE_URL");

        let fly = FlyConfig {
            api_base: r.base_url("FLY_API_BASE", "https://api.machines.dev"),
            app: r.required("FLY_APP"),
            token: r.required("FLY_API_TOKEN").map(Secret::new),
            ingress_base: r.optional_base_url("FLY_INGRESS_BASE"),
            runner_image: r
                .get("FLY_RUNNER_IMAGE")
                .unwrap_or_else(|| "registry.fly.io/catwalk-runner:latest".to_string()),
            memory_mb: r.number("FLY_MACHINE_MEMORY_MB", 512, (256, 16384)) / 256 * 256,
            start_timeout_secs: r.number("FLY_START_TIMEOUT_SECS", 300, (10, 900)),
        };
        let limits = Limits {
            deployments_per_user: r.number("MAX_DEPLOYMENTS_PER_USER", 10, (1, 1000)),
            mcp_requests_per_minute: r.number("MCP_RATE_LIMIT", 600, (1, 1_000_000)),
        };
        let llm = LlmConfig {
            api_base: r.base_url("LLM_API_BASE", "https://openrouter.ai/api/v1"),
            model: r
                .get("LLM_MODEL")
                .unwrap_or_else(|| "openai/gpt-4.1-mini".to_string()),
            api_key: r.get("LLM_API_KEY").map(Secret::new),
        };
        let upstreams = UpstreamBases {
            github_api: r.base_url("GITHUB_API_BASE", "https://api.github.com"),
            github_raw: r.base_url("GITHUB_RAW_BASE", "https://raw.githubusercontent.com"),
            npm_registry: r.base_url("NPM_REGISTRY_BASE", "https://registry.npmjs.org"),
            pypi: r.base_url("PYPI_BASE", "https://pypi.org"),
            mcp_registry: r.base_url(
                "MCP_REGISTRY_BASE",
                "https://registry.modelcontextprotocol.io",
            ),
        };

        Config {
            environment,
            sign_in,
            auth,
            auth_sync_secret,
            encryption_keys,
            allowed_origins,
            public_base_url,
            fly,
            llm,
            upstreams,
            limits,
            missing: r.missing,
            invalid: r.invalid,
        }
    }

    /// The names of the settings that keep [`Config::auth`] unset, for `not_configured`.
    pub fn auth_missing(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = AUTH_SETTINGS
            .iter()
            .copied()
            .filter(|n| self.missing.contains(n) || self.invalid.iter().any(|(i, _)| i == n))
            .collect();
        if names.is_empty() && self.auth.is_none() {
            names.push("AUTH_SECRET");
        }
        names
    }

    pub fn is_healthy(&self) -> bool {
        self.missing.is_empty() && self.invalid.is_empty()
    }

    /// Every secret value this configuration holds, for the log redactor.
    pub fn secret_values(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(a) = &self.auth {
            out.push(a.secret.expose());
        }
        for s in [&self.auth_sync_secret, &self.fly.token, &self.llm.api_key]
            .into_iter()
            .flatten()
        {
            out.push(s.expose());
        }
        out
    }
}

/// `ALLOWED_ORIGINS`: comma-separated origins (`scheme://host[:port]`), compared exactly.
fn parse_origins(raw: &str, invalid: &mut Vec<(&'static str, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Url::parse(item) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.path() == "/"
                    && url.query().is_none() =>
            {
                out.push(url.origin().ascii_serialization());
            }
            _ => invalid.push((
                "ALLOWED_ORIGINS",
                format!(
                    "entry {:?} is not an origin like https://app.example.com",
                    item
                ),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    /// A complete production configuration (no `ENVIRONMENT`: production is the default).
    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AUTH_SECRET", "0123456789abcdef0123456789abcdef"),
            ("AUTH_JWT_ISSUER", "https://app.catwalk.example"),
            ("AUTH_JWT_AUDIENCE", "catwalk-edge"),
            ("AUTH_SYNC_SECRET", "fedcba9876543210fedcba9876543210"),
            ("ENCRYPTION_KEYS", KEY),
            ("FLY_API_TOKEN", "fo1_token"),
            ("FLY_APP", "catwalk-machines"),
        ]
    }

    #[test]
    fn a_complete_configuration_is_healthy_with_production_defaults() {
        let c = cfg(&complete());
        assert!(c.is_healthy(), "{:?} {:?}", c.missing, c.invalid);
        assert_eq!(c.fly.api_base.as_str(), "https://api.machines.dev/");
        assert_eq!(
            join(&c.fly.api_base, "/v1/apps"),
            "https://api.machines.dev/v1/apps"
        );
    }

    /// The settings the README's configuration table marks required (`yes`, or
    /// `in production` when `production`): vars and secrets only, not bindings.
    fn readme_required(production: bool) -> Vec<String> {
        let readme = include_str!("../README.md");
        let table = readme
            .split("## Configuration")
            .nth(1)
            .expect("README has a Configuration section");
        let mut names = Vec::new();
        for row in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (name, kind, required) = (cells[1], cells[2], cells[3]);
            let wanted = required == "yes" || (production && required == "in production");
            if !wanted || !matches!(kind, "var" | "secret") {
                continue;
            }
            names.extend(
                name.split(',')
                    .map(|n| n.trim().trim_matches('`').to_string()),
            );
        }
        names.sort();
        names
    }

    fn missing_sorted(c: &Config) -> Vec<String> {
        let mut names: Vec<String> = c.missing.iter().map(|n| n.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn an_empty_configuration_names_exactly_what_the_readme_calls_required() {
        let production = cfg(&[]);
        assert_eq!(missing_sorted(&production), readme_required(true));
        let development = cfg(&[("ENVIRONMENT", "development")]);
        assert_eq!(missing_sorted(&development), readme_required(false));
    }

    #[test]
    fn missing_settings_are_named_and_empty_counts_as_missing() {
        let c = cfg(&[("AUTH_SECRET", "  "), ("FLY_APP", "x")]);
        assert_eq!(
            c.missing,
            vec![
                "AUTH_SECRET",
                "AUTH_JWT_ISSUER",
                "AUTH_JWT_AUDIENCE",
                "AUTH_SYNC_SECRET",
                "ENCRYPTION_KEYS",
                "FLY_API_TOKEN"
            ]
        );
        assert!(c.auth.is_none());
    }

    #[test]
    fn a_short_auth_secret_is_invalid_not_silently_accepted() {
        let mut p = complete();
        p[0] = ("AUTH_SECRET", "short");
        let c = cfg(&p);
        assert!(c.auth.is_none());
        assert_eq!(c.invalid[0].0, "AUTH_SECRET");
        assert!(!c.invalid[0].1.contains("short"));
    }

    #[test]
    fn base_urls_with_credentials_or_odd_schemes_are_invalid() {
        for bad in [
            "ftp://x",
            "http://user:pw@x",
            "http://x/?a=b",
            "not a url",
            "file:///etc",
        ] {
            let mut p = complete();
            p.push(("FLY_API_BASE", bad));
            let c = cfg(&p);
            assert_eq!(c.invalid.len(), 1, "{bad}");
            assert_eq!(c.fly.api_base.as_str(), "https://api.machines.dev/");
        }
    }

    #[test]
    fn allowed_origins_are_normalised_and_garbage_is_reported() {
        let mut p = complete();
        p.push((
            "ALLOWED_ORIGINS",
            "https://App.Example.com, http://localhost:3000 ,*,https://x.com/path",
        ));
        let c = cfg(&p);
        assert_eq!(
            c.allowed_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(c.invalid.len(), 2);
    }

    #[test]
    fn emails_are_unverified_unless_the_operator_says_the_provider_verifies_them() {
        let c = cfg(&complete());
        assert!(c.auth.as_ref().is_some_and(|a| !a.emails_verified));
        for (raw, want) in [("true", true), (" TRUE ", true), ("false", false)] {
            let mut p = complete();
            p.push(("AUTH_EMAILS_VERIFIED", raw));
            let c = cfg(&p);
            assert!(c.is_healthy(), "{raw}: {:?}", c.invalid);
            assert_eq!(c.auth.map(|a| a.emails_verified), Some(want), "{raw}");
        }
        for raw in ["yes", "1", "on"] {
            let mut p = complete();
            p.push(("AUTH_EMAILS_VERIFIED", raw));
            let c = cfg(&p);
            assert_eq!(c.invalid.len(), 1, "{raw}");
            assert_eq!(c.invalid[0].0, "AUTH_EMAILS_VERIFIED");
            assert!(!c.invalid[0].1.contains(raw));
            assert_eq!(c.auth.map(|a| a.emails_verified), Some(false), "{raw}");
        }
    }

    #[test]
    fn the_jwt_lifetime_cap_defaults_to_a_day_and_is_range_checked() {
        let c = cfg(&complete());
        assert_eq!(c.auth.map(|a| a.max_lifetime_secs), Some(86_400));
        for (raw, want) in [("60", 60), ("3600", 3600), ("2592000", 2_592_000)] {
            let mut p = complete();
            p.push(("AUTH_JWT_MAX_LIFETIME_SECS", raw));
            let c = cfg(&p);
            assert!(c.is_healthy(), "{raw}: {:?}", c.invalid);
            assert_eq!(c.auth.map(|a| a.max_lifetime_secs), Some(want), "{raw}");
        }
        for raw in ["59", "2592001", "-1", "1d", "86400.5"] {
            let mut p = complete();
            p.push(("AUTH_JWT_MAX_LIFETIME_SECS", raw));
            let c = cfg(&p);
            let names: Vec<&str> = c.invalid.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, ["AUTH_JWT_MAX_LIFETIME_SECS"], "{raw}");
            assert_eq!(c.auth.map(|a| a.max_lifetime_secs), Some(86_400), "{raw}");
        }
    }

    fn without(names: &[&str]) -> Vec<(&'static str, &'static str)> {
        let mut p = complete();
        p.retain(|(k, _)| !names.contains(k));
        p
    }

    #[test]
    fn in_production_an_unpinned_issuer_or_audience_is_missing_and_no_token_is_accepted() {
        for blank in ["", "  "] {
            let mut p = without(&["AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"]);
            p.push(("AUTH_JWT_ISSUER", blank));
            let c = cfg(&p);
            assert_eq!(c.missing, ["AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"]);
            assert!(c.auth.is_none(), "JWTs would be accepted unpinned");
            assert_eq!(c.auth_missing(), ["AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"]);
        }
        let mut p = without(&["AUTH_JWT_AUDIENCE"]);
        p.push(("ENVIRONMENT", "production"));
        let c = cfg(&p);
        assert_eq!(c.missing, ["AUTH_JWT_AUDIENCE"]);
        assert!(c.auth.is_none());
    }

    #[test]
    fn in_development_issuer_and_audience_stay_optional() {
        let mut p = without(&["AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"]);
        p.push(("ENVIRONMENT", "Development"));
        let c = cfg(&p);
        assert!(c.is_healthy(), "{:?} {:?}", c.missing, c.invalid);
        assert_eq!(c.environment, Environment::Development);
        let auth = c.auth.expect("auth configured");
        assert_eq!((auth.issuer, auth.audience), (None, None));
    }

    #[test]
    fn an_unknown_environment_is_invalid_and_treated_as_production() {
        let mut p = without(&["AUTH_JWT_ISSUER"]);
        p.push(("ENVIRONMENT", "dev"));
        let c = cfg(&p);
        assert_eq!(c.environment, Environment::Production);
        assert_eq!(c.invalid.len(), 1);
        assert_eq!(c.invalid[0].0, "ENVIRONMENT");
        assert_eq!(c.missing, ["AUTH_JWT_ISSUER"]);
    }

    #[test]
    fn without_a_signing_key_auth_names_that_key() {
        let c = cfg(&without(&["AUTH_SECRET"]));
        assert_eq!(c.auth_missing(), ["AUTH_SECRET"]);
        let mut p = without(&["AUTH_SECRET"]);
        p.push(("AUTH_SECRET", "short"));
        assert_eq!(cfg(&p).auth_missing(), ["AUTH_SECRET"]);
    }

    #[test]
    fn dev_sign_in_exists_only_in_development_and_is_invalid_in_production() {
        let mut vars = complete();
        vars.push(("DEV_SIGN_IN", "true"));
        let prod = cfg(&vars);
        assert!(!prod.sign_in.dev);
        assert!(prod.invalid.iter().any(|(n, _)| *n == "DEV_SIGN_IN"));
        vars.push(("ENVIRONMENT", "development"));
        let dev = cfg(&vars);
        assert!(dev.sign_in.dev);
        assert!(!dev.invalid.iter().any(|(n, _)| *n == "DEV_SIGN_IN"));
        assert!(!cfg(&complete()).sign_in.dev, "off unless set");
    }

    #[test]
    fn loopback_oauth_clients_exist_only_in_development() {
        let mut vars = complete();
        vars.push(("OAUTH_LOOPBACK_CLIENTS", "true"));
        let prod = cfg(&vars);
        assert!(!prod.sign_in.oauth_loopback_clients);
        assert!(prod
            .invalid
            .iter()
            .any(|(n, _)| *n == "OAUTH_LOOPBACK_CLIENTS"));
        vars.push(("ENVIRONMENT", "development"));
        assert!(cfg(&vars).sign_in.oauth_loopback_clients);
    }

    #[test]
    fn wrangler_toml_ships_without_dev_sign_in() {
        let toml = include_str!("../wrangler.toml");
        assert!(
            !toml.contains("DEV_SIGN_IN"),
            "the production config must not enable it"
        );
    }

    #[test]
    fn secret_values_are_collected_for_redaction() {
        let c = cfg(&complete());
        let s = c.secret_values();
        assert!(s.contains(&"fo1_token"));
        assert!(s.contains(&"0123456789abcdef0123456789abcdef"));
    }
}
