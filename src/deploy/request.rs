//! What a deployment request may carry, checked before anything is stored: the name, the
//! region, where the server comes from (a repository or package to analyse, or an entry
//! of the MCP registry with its argument values), the credentials (names, sizes, reserved
//! names) and — against the plan — every required variable present and nothing the server
//! does not read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::analysis::plan::env_name_ok;
use crate::analysis::request::{parse as parse_source, AnalyzeRequest};
use crate::error::{nested_field, AppError, AppResult, FieldError};
use crate::http::input::Fields;
use crate::registry::entry::name_ok as registry_name_ok;
use crate::registry::fetch::version_ok as registry_version_ok;
use crate::registry::form::{check_variable, Format};
use crate::registry::form::{Given, MAX_VALUE};
use launch_spec::{LaunchSpec, Runtime};

pub const MAX_NAME: usize = 40;
pub const MAX_CREDENTIALS: usize = 50;
pub const MAX_VALUE_BYTES: usize = 8 * 1024;
pub const MAX_TOTAL_BYTES: usize = 32 * 1024;

/// Names the machine's runtime owns: the runner's settings, Fly's own variables, loader
/// hooks that would run code before the server does, and everything that decides where a
/// package comes from or which certificates are trusted (npm/uv/pip configuration,
/// proxies, CA bundles): a credential must never change what the machine installs.
const RESERVED: &[&str] = &[
    "PORT",
    "PATH",
    "HOME",
    "BASH_ENV",
    "ENV",
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_EXTRA_CA_CERTS",
    "NODE_TLS_REJECT_UNAUTHORIZED",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NO_PROXY",
];
const RESERVED_PREFIXES: &[&str] = &[
    "CATWALK_",
    "FLY_",
    "LD_",
    "DYLD_",
    "PYTHON",
    "NPM_CONFIG_",
    "UV_",
    "PIP_",
    "SSL_CERT_",
    "GIT_",
    "XDG_",
];
/// `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `FTP_PROXY`, … in any case.
const RESERVED_SUFFIXES: &[&str] = &["_PROXY"];

/// Compared case-insensitively: `npm_config_registry` is as dangerous as `NPM_CONFIG_REGISTRY`.
pub fn reserved(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    RESERVED.contains(&upper.as_str())
        || RESERVED_PREFIXES.iter().any(|p| upper.starts_with(p))
        || RESERVED_SUFFIXES.iter().any(|s| upper.ends_with(s))
}

/// Longest name as typed (characters).
pub const MAX_DISPLAY_NAME: usize = 80;

/// A deployment's name as typed ("My TickTick") and the slug derived from it
/// (`my-ticktick`): the slug is what must be unique per person and what machine names and
/// client config keys use (a key in JSON, a word on a shell command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentName {
    pub display: String,
    pub slug: String,
}

impl DeploymentName {
    /// 1–80 printable characters after trimming, no control characters; the slug keeps
    /// ASCII letters and digits (lowercased), turns every other run into one hyphen, starts
    /// with a letter (`mcp-` is put before a leading digit) and is at most 40 characters.
    pub fn parse(typed: &str) -> Result<Self, &'static str> {
        let display = typed.trim();
        let count = display.chars().count();
        if count == 0 || count > MAX_DISPLAY_NAME || display.chars().any(char::is_control) {
            return Err("must be 1-80 printable characters");
        }
        let mut slug = String::new();
        for c in display.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let mut slug = slug.trim_end_matches('-').to_string();
        if slug.is_empty() {
            return Err("must contain at least one letter or digit (a-z, 0-9)");
        }
        if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
            slug.insert_str(0, "mcp-");
        }
        slug.truncate(MAX_NAME);
        let slug = slug.trim_end_matches('-').to_string();
        debug_assert!(name_ok(&slug));
        Ok(Self {
            display: display.to_string(),
            slug,
        })
    }
}

/// A slug: lowercase letters, digits and inner hyphens, starting with a letter.
pub fn name_ok(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=MAX_NAME).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && !name.ends_with('-')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A Fly region code (`ord`, `fra`, `syd`, …).
pub fn region_ok(r: &str) -> bool {
    (3..=4).contains(&r.len()) && r.bytes().all(|c| c.is_ascii_lowercase())
}

/// Where a new deployment's server comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A repository or package: its analysis (usually cached) is the plan.
    Analyzed(AnalyzeRequest),
    /// An entry of the official MCP registry: the entry is the plan, no analysis.
    Registry(RegistryPick),
}

/// `{"registry": "<name>", "version"?: …, "arguments"?: {key: "v" | ["v", …]}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPick {
    pub name: String,
    /// The entry version asked for; after the entry is read, the one deployed.
    pub version: Option<String>,
    pub arguments: Given,
}

impl Origin {
    /// What the deployment row records as its source.
    pub fn normalized(&self) -> String {
        match self {
            Self::Analyzed(r) => r.source.normalized(),
            Self::Registry(p) => format!(
                "registry:{}@{}",
                p.name,
                p.version.as_deref().unwrap_or("latest")
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub name: DeploymentName,
    pub source: Origin,
    pub credentials: Vec<(String, String)>,
    pub region: Option<String>,
}

/// Most argument keys one request may give, and their values' total size.
const MAX_ARGUMENT_KEYS: usize = 64;
const MAX_ARGUMENT_BYTES: usize = 32 * 1024;

/// Reads `arguments` into `f`'s error list: an object of key → string or list of strings.
fn arguments_field(f: &mut Fields<'_>) -> Given {
    let mut out = Given::new();
    let obj = match f.get("arguments") {
        None | Some(Value::Null) => return out,
        Some(Value::Object(o)) => o,
        Some(_) => {
            f.fail(
                "arguments",
                "must be an object of name: \"value\" (or a list of values)",
            );
            return out;
        }
    };
    if obj.len() > MAX_ARGUMENT_KEYS {
        f.fail(
            "arguments",
            format!("at most {MAX_ARGUMENT_KEYS} arguments"),
        );
        return out;
    }
    let mut total = 0;
    for (k, v) in obj {
        let field = nested_field("arguments", k);
        let values: Option<Vec<String>> = match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) if items.len() <= 32 => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => None,
        };
        match values {
            Some(vals) if vals.iter().any(|s| s.len() > MAX_VALUE) => {
                f.fail(&field, format!("must be at most {MAX_VALUE} bytes"))
            }
            Some(vals) => {
                total += k.len() + vals.iter().map(String::len).sum::<usize>();
                out.insert(k.clone(), vals);
            }
            None => f.fail(&field, "must be a string or a list of at most 32 strings"),
        }
    }
    if total > MAX_ARGUMENT_BYTES {
        f.fail(
            "arguments",
            format!("must total at most {MAX_ARGUMENT_BYTES} bytes"),
        );
    }
    out
}

/// The registry source of a create body, when it names one (`registry`).
fn registry_pick(f: &mut Fields<'_>) -> Option<RegistryPick> {
    let has = |f: &Fields<'_>, k: &str| f.get(k).is_some_and(|v| !v.is_null());
    if !has(f, "registry") {
        for k in ["version", "arguments"] {
            if has(f, k) {
                f.fail(k, "is only taken with registry");
            }
        }
        return None;
    }
    if has(f, "repo_url") || has(f, "package") {
        f.fail("registry", "give one of repo_url, package or registry");
    }
    let name = f.required_str("registry", 256);
    if name.as_deref().is_some_and(|n| !registry_name_ok(n)) {
        f.fail(
            "registry",
            "must be a registry server name such as io.github.owner/server",
        );
    }
    let version = f.optional_str("version", 128);
    if version.as_deref().is_some_and(|v| !registry_version_ok(v)) {
        f.fail(
            "version",
            "must be a version such as 1.2.0 (letters, digits, . + - _)",
        );
    }
    let arguments = arguments_field(f);
    Some(RegistryPick {
        name: name.unwrap_or_default(),
        version,
        arguments,
    })
}

/// Reads `{"credentials": {NAME: "value"}}` into `f`'s error list; absent is empty.
pub fn credentials_field(f: &mut Fields<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let obj: &Map<String, Value> = match f.get("credentials") {
        None | Some(Value::Null) => return out,
        Some(Value::Object(o)) => o,
        Some(_) => {
            f.fail("credentials", "must be an object of NAME: \"value\"");
            return out;
        }
    };
    if obj.len() > MAX_CREDENTIALS {
        f.fail(
            "credentials",
            format!("at most {MAX_CREDENTIALS} variables"),
        );
        return out;
    }
    let mut total = 0;
    for (k, v) in obj {
        let field = nested_field("credentials", k);
        if !env_name_ok(k) {
            f.fail(
                &field,
                "must be a variable name of letters, digits and _ (not starting with a digit)",
            );
            continue;
        }
        if reserved(k) {
            f.fail(&field, "is reserved for the machine's runtime");
            continue;
        }
        match v {
            Value::String(s) if s.len() > MAX_VALUE_BYTES => {
                f.fail(&field, format!("must be at most {MAX_VALUE_BYTES} bytes"))
            }
            Value::String(s) if s.contains('\0') => {
                f.fail(&field, "must not contain NUL characters")
            }
            Value::String(s) => {
                total += k.len() + s.len();
                out.push((k.clone(), s.clone()));
            }
            _ => f.fail(&field, "must be a string"),
        }
    }
    if total > MAX_TOTAL_BYTES {
        f.fail(
            "credentials",
            format!("must total at most {MAX_TOTAL_BYTES} bytes"),
        );
    }
    out
}

pub fn parse_create(body: &Value) -> AppResult<CreateRequest> {
    let mut f = Fields::of(body)?;
    let typed = f.required_str("name", MAX_DISPLAY_NAME * 4);
    let name = match typed.as_deref().map(DeploymentName::parse) {
        Some(Ok(n)) => Some(n),
        Some(Err(why)) => {
            f.fail("name", why);
            None
        }
        None => None,
    };
    let region = f.optional_str("region", 16);
    if let Some(r) = &region {
        if !region_ok(r) {
            f.fail("region", "must be a Fly region code such as ord or fra");
        }
    }
    let credentials = credentials_field(&mut f);
    let pick = registry_pick(&mut f);
    let (name, region, credentials, pick) = f.finish(|| (name, region, credentials, pick))?;
    let source = match pick {
        Some(p) => Origin::Registry(p),
        None => Origin::Analyzed(parse_source(body)?),
    };
    Ok(CreateRequest {
        name: name.ok_or_else(|| AppError::field("name", "is required"))?,
        source,
        credentials,
        region,
    })
}

/// `PUT /api/deployments/{id}/credentials`: `{"credentials": {…}}`, the whole new set.
pub fn parse_credentials(body: &Value) -> AppResult<Vec<(String, String)>> {
    let mut f = Fields::of(body)?;
    if f.get("credentials").is_none() {
        f.fail("credentials", "is required");
    }
    let creds = credentials_field(&mut f);
    f.finish(|| creds)
}

/// The part of an analysis plan a deployment keeps (in `deployments.config`), enough to
/// rebuild its machine and re-validate credentials without analysing again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    pub runtime: String,
    pub package: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env_vars: Vec<Variable>,
    /// The server reads variables beyond the declared ones (then unknown names pass).
    #[serde(default)]
    pub arbitrary_env: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    /// The value a registry entry supplies when the person gives none (its `default`, or
    /// its fixed value). Not read from an analysis plan, whose `default` is a guess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The entry sets this variable itself (to `preset`); a person may not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed: bool,
    /// The registry entry's allowed values and format, checked again whenever the
    /// person's values are replaced (not read from an analysis plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default, skip_serializing_if = "Format::is_string")]
    pub format: Format,
}

impl Launch {
    /// From the analysis result JSON (`crate::analysis::merge::Plan` plus `analyzed_at`).
    /// The package and version obey the same grammar as typed input, whatever produced
    /// the plan, so nothing but a registry name and a plain version reaches npx / uvx.
    pub fn from_plan(plan: &Value) -> AppResult<Self> {
        serde_json::from_value::<Launch>(plan.clone())
            .ok()
            .filter(Launch::launchable)
            .ok_or_else(|| AppError::internal("analysis plan without a launchable package"))
    }

    pub fn launchable(&self) -> bool {
        self.spec().is_ok()
    }

    /// What the runner is told to run (`CATWALK_LAUNCH`), validated by the grammar the
    /// runner checks again.
    pub fn spec(&self) -> AppResult<LaunchSpec> {
        let runtime = match self.runtime.as_str() {
            "npm" => Runtime::Npm,
            "python" => Runtime::Python,
            _ => return Err(AppError::internal("launch plan with an unknown runtime")),
        };
        let spec = LaunchSpec {
            runtime,
            package: self.package.clone(),
            version: self.version.clone(),
            args: self.args.clone(),
        };
        spec.validate()
            .map_err(|e| AppError::internal(format!("launch plan refused: {e}")))?;
        Ok(spec)
    }

    /// The variables a machine gets from the person's: every preset the person left out
    /// added (so a replaced set keeps a registry entry's defaults and fixed values), a
    /// fixed variable given by the person refused, and each value held to its declared
    /// choices and format.
    pub fn complete(&self, creds: &[(String, String)]) -> AppResult<Vec<(String, String)>> {
        let fields: Vec<FieldError> = creds
            .iter()
            .filter_map(|(k, value)| {
                let v = self.env_vars.iter().find(|v| v.name == *k)?;
                let why = if v.fixed {
                    "is set by the registry entry".to_string()
                } else {
                    check_variable(value, &v.choices, v.format).err()?
                };
                Some(FieldError::new(format!("credentials.{k}"), why))
            })
            .collect();
        if !fields.is_empty() {
            return Err(AppError::Validation { fields });
        }
        let mut out = creds.to_vec();
        for v in &self.env_vars {
            if let (Some(p), false) = (&v.preset, creds.iter().any(|(k, _)| *k == v.name)) {
                out.push((v.name.clone(), p.clone()));
            }
        }
        Ok(out)
    }

    /// Required variables present and non-empty; unknown names refused (unless the plan
    /// says the server takes arbitrary variables). Every problem is named at once.
    pub fn check(&self, creds: &[(String, String)]) -> AppResult<()> {
        let mut fields = Vec::new();
        for v in self.env_vars.iter().filter(|v| v.required) {
            match creds.iter().find(|(k, _)| *k == v.name) {
                Some((_, value)) if !value.trim().is_empty() => {}
                Some(_) => fields.push(FieldError::new(
                    format!("credentials.{}", v.name),
                    "must not be empty",
                )),
                None => fields.push(FieldError::new(
                    format!("credentials.{}", v.name),
                    "is required by this server",
                )),
            }
        }
        if !self.arbitrary_env {
            for (k, _) in creds {
                if !self.env_vars.iter().any(|v| v.name == *k) {
                    fields.push(FieldError::new(
                        format!("credentials.{k}"),
                        "is not a variable this server reads",
                    ));
                }
            }
        }
        if fields.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation { fields })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn launch() -> Launch {
        Launch::from_plan(&json!({"package": "@acme/w", "registry": "npm", "runtime": "npm", "version": "1.0.0", "args": [],
            "env_vars": [{"name": "ACME_TOKEN", "required": true, "secret": true}, {"name": "ACME_REGION", "required": false, "secret": false}],
            "tools": [], "transport": "stdio"}))
        .unwrap()
    }

    fn field_names(e: AppError) -> Vec<String> {
        match e {
            AppError::Validation { fields } => fields.into_iter().map(|f| f.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_plan_naming_anything_but_a_package_and_a_plain_version_is_not_launchable() {
        for (runtime, package, version) in [
            ("npm", "-c", None),
            ("npm", "@acme/w", Some("https://evil.example/x.tgz")),
            ("npm", "@acme/w", Some("npm:other@1")),
            ("npm", "@acme/w", Some("github:x/y")),
            ("npm", "@acme/w", Some("file:../x")),
            ("npm", "@acme/w", Some("--foo")),
            ("npm", "x; rm -rf /", None),
            ("python", "x @ https://evil.example/x.whl", None),
            ("python", "mcp-server-time", Some("git+https://evil/x")),
            ("ruby", "x", None),
        ] {
            let plan =
                json!({"runtime": runtime, "package": package, "version": version, "args": []});
            assert!(
                Launch::from_plan(&plan).is_err(),
                "{runtime} {package} {version:?} was accepted"
            );
        }
        let ok = json!({"runtime": "python", "package": "mcp-server-time", "version": "2025.9.25"});
        assert!(Launch::from_plan(&ok).is_ok());
    }

    #[test]
    fn names_that_change_where_packages_come_from_are_reserved() {
        for name in [
            "npm_config_registry",
            "NPM_CONFIG_REGISTRY",
            "npm_config_userconfig",
            "UV_INDEX_URL",
            "uv_default_index",
            "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL",
            "NODE_PATH",
            "NODE_EXTRA_CA_CERTS",
            "NODE_TLS_REJECT_UNAUTHORIZED",
            "HTTPS_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "NO_PROXY",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "REQUESTS_CA_BUNDLE",
            "PYTHONWARNINGS",
            "PYTHONPATH",
            "GIT_SSH_COMMAND",
            "XDG_CONFIG_HOME",
            "LD_PRELOAD",
            "CATWALK_LAUNCH",
        ] {
            assert!(reserved(name), "{name} must be reserved");
        }
        for name in [
            "GITHUB_TOKEN",
            "NPM_TOKEN",
            "PROXY_URL",
            "NODE_ENV",
            "API_KEY",
        ] {
            assert!(!reserved(name), "{name} is an ordinary credential");
        }
    }

    #[test]
    fn a_registry_source_parses_and_mixing_sources_is_named() {
        let r = parse_create(
            &json!({"name": "w", "registry": "io.github.acme/weather", "version": "2.1.0",
            "arguments": {"greeting": "hi", "path": ["a", "b"]}}),
        )
        .unwrap();
        let Origin::Registry(p) = &r.source else {
            panic!("{:?}", r.source)
        };
        assert_eq!(
            (p.name.as_str(), p.version.as_deref()),
            ("io.github.acme/weather", Some("2.1.0"))
        );
        assert_eq!(p.arguments["path"], ["a", "b"]);
        assert_eq!(
            r.source.normalized(),
            "registry:io.github.acme/weather@2.1.0"
        );
        for (body, field) in [
            (
                json!({"name": "w", "registry": "io.github.acme/weather", "package": "npm:x"}),
                "registry",
            ),
            (json!({"name": "w", "registry": "../../etc"}), "registry"),
            (json!({"name": "w", "registry": 5}), "registry"),
            (
                json!({"name": "w", "registry": "a/b", "version": "1.0 && id"}),
                "version",
            ),
            (
                json!({"name": "w", "registry": "a/b", "arguments": ["x"]}),
                "arguments",
            ),
            (
                json!({"name": "w", "registry": "a/b", "arguments": {"k": 5}}),
                "arguments.k",
            ),
            (
                json!({"name": "w", "registry": "a/b", "arguments": {"k": "x".repeat(2000)}}),
                "arguments.k",
            ),
            (
                json!({"name": "w", "package": "npm:x", "version": "1.0.0"}),
                "version",
            ),
            (
                json!({"name": "w", "package": "npm:x", "arguments": {}}),
                "arguments",
            ),
        ] {
            assert!(
                field_names(parse_create(&body).unwrap_err()).contains(&field.to_string()),
                "{body}"
            );
        }
    }

    #[test]
    fn a_good_request_parses() {
        let r = parse_create(&json!({"name": "weather-2", "package": "npm:@acme/w", "credentials": {"ACME_TOKEN": "t"}, "region": "ord"})).unwrap();
        assert_eq!(r.name.slug, "weather-2");
        assert_eq!(r.name.display, "weather-2");
        assert_eq!(r.credentials, vec![("ACME_TOKEN".into(), "t".into())]);
        assert_eq!(r.region.as_deref(), Some("ord"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let e = parse_create(&json!({"name": "\u{7}bell", "package": "npm:x", "region": "../x",
            "credentials": {"1BAD": "v", "PORT": "1", "LD_PRELOAD": "/tmp/x.so", "OK": 5, "NUL": "a\u{0}b", "BIG": "x".repeat(MAX_VALUE_BYTES + 1)}}))
        .unwrap_err();
        let names = field_names(e);
        for want in [
            "name",
            "region",
            "credentials.1BAD",
            "credentials.PORT",
            "credentials.LD_PRELOAD",
            "credentials.OK",
            "credentials.NUL",
            "credentials.BIG",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        assert_eq!(
            field_names(parse_create(&json!({"package": "npm:x", "credentials": []})).unwrap_err()),
            vec!["name", "credentials"]
        );
    }

    #[test]
    fn names_are_kept_as_typed_and_slugged() {
        for (typed, slug) in [
            ("My TickTick", "my-ticktick"),
            ("  weather  ", "weather"),
            ("my-server-2", "my-server-2"),
            ("Café Notes!", "caf-notes"),
            ("2024 Taxes", "mcp-2024-taxes"),
            ("GitHub (work) — PRs", "github-work-prs"),
        ] {
            let n = DeploymentName::parse(typed).unwrap();
            assert_eq!((n.display.as_str(), n.slug.as_str()), (typed.trim(), slug));
            assert!(name_ok(&n.slug));
        }
        let long = DeploymentName::parse(&"Ab ".repeat(26)).unwrap();
        assert!(
            long.slug.len() <= MAX_NAME && name_ok(&long.slug),
            "{}",
            long.slug
        );
        for bad in ["", "   ", "日本語", "a\nb", "tab\there", &"x".repeat(81)] {
            assert!(DeploymentName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_slugs() {
        for ok in ["a", "weather", "my-server-2"] {
            assert!(name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a b",
            "ü",
            &"a".repeat(MAX_NAME + 1),
        ] {
            assert!(!name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn credentials_are_checked_against_the_plan() {
        let l = launch();
        assert!(l.check(&[("ACME_TOKEN".into(), "x".into())]).is_ok());
        assert_eq!(
            field_names(l.check(&[]).unwrap_err()),
            vec!["credentials.ACME_TOKEN"]
        );
        assert_eq!(
            field_names(
                l.check(&[
                    ("ACME_TOKEN".into(), " ".into()),
                    ("EXTRA".into(), "x".into())
                ])
                .unwrap_err()
            ),
            vec!["credentials.ACME_TOKEN", "credentials.EXTRA"]
        );
        let open = Launch {
            arbitrary_env: true,
            ..l
        };
        assert!(open
            .check(&[
                ("ACME_TOKEN".into(), "x".into()),
                ("EXTRA".into(), "y".into())
            ])
            .is_ok());
    }

    #[test]
    fn the_total_size_is_capped() {
        let creds: Map<String, Value> = (0..5)
            .map(|i| (format!("V{i}"), json!("x".repeat(MAX_VALUE_BYTES))))
            .collect();
        let e = parse_credentials(&json!({ "credentials": creds })).unwrap_err();
        assert_eq!(field_names(e), vec!["credentials"]);
    }
}
