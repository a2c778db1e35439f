//! One registry answer read into our own shape: a normalized [`Entry`] (what a person
//! browses) and, for each package, whether we can run it and why not. Pure. The registry
//! is a third party: every string is bounded, every URL must be https, and a package is
//! deployable only when nothing about it could change what or where a machine installs.

use serde::Serialize;
use serde_json::Value;

use crate::analysis::plan::env_name_ok;
use crate::deploy::request::reserved;
use launch_spec::{npm_name_ok, pypi_name_ok, pypi_normalize, version_ok};

/// `_meta` key under which the official registry keeps its own metadata.
pub const OFFICIAL: &str = "io.modelcontextprotocol.registry/official";
const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 2000;
const MAX_URL: usize = 2048;
const MAX_ICONS: usize = 8;
const MAX_PACKAGES: usize = 16;
/// Arguments and variables one package may declare before we decline to run it.
pub const MAX_ARGUMENTS: usize = 32;
pub const MAX_VARIABLES: usize = 50;
const ICON_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/svg+xml",
    "image/webp",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Deprecated,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repository {
    pub url: String,
    pub source: Option<String>,
    pub subfolder: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Icon {
    pub src: String,
    pub mime_type: Option<String>,
    pub sizes: Vec<String>,
    pub theme: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageView {
    pub registry_type: String,
    pub identifier: String,
    pub version: Option<String>,
    pub transport: String,
    pub deployable: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remote {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub deployable: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub version: String,
    pub status: Status,
    pub published_at: Option<String>,
    pub updated_at: Option<String>,
    pub repository: Option<Repository>,
    pub website_url: Option<String>,
    pub icons: Vec<Icon>,
    pub deployable: bool,
    pub packages: Vec<PackageView>,
    pub remotes: Vec<Remote>,
}

/// The registry's pattern for a server name: `namespace/server`, at most 200 characters.
pub fn name_ok(name: &str) -> bool {
    crate::http::route::decode_registry_name(&name.replacen('/', "%2F", 1)).as_deref() == Some(name)
}

fn text(v: &Value, max: usize) -> Option<String> {
    let s = v.as_str()?.trim();
    let clean: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    (!clean.is_empty()).then_some(clean)
}

fn https(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let ok = s.len() <= MAX_URL
        && url::Url::parse(s).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
    ok.then(|| s.to_string())
}

/// A timestamp as the registry gives it, if it looks like one (RFC 3339, bounded).
fn timestamp(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let ok = (10..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'.' | b'+'));
    ok.then(|| s.to_string())
}

fn icons(v: &Value) -> Vec<Icon> {
    let mut out = Vec::new();
    for i in v.as_array().into_iter().flatten() {
        let Some(src) = https(&i["src"]) else {
            continue;
        };
        let mime_type = i["mimeType"]
            .as_str()
            .filter(|m| ICON_TYPES.contains(m))
            .map(str::to_string);
        let sizes = i["sizes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|s| {
                *s == "any"
                    || s.split_once('x').is_some_and(|(w, h)| {
                        (1..=5).contains(&w.len())
                            && (1..=5).contains(&h.len())
                            && w.bytes().chain(h.bytes()).all(|b| b.is_ascii_digit())
                    })
            })
            .take(8)
            .map(str::to_string)
            .collect();
        let theme = i["theme"]
            .as_str()
            .filter(|t| matches!(*t, "light" | "dark"))
            .map(str::to_string);
        out.push(Icon {
            src,
            mime_type,
            sizes,
            theme,
        });
        if out.len() == MAX_ICONS {
            break;
        }
    }
    out
}

fn repository(v: &Value) -> Option<Repository> {
    Some(Repository {
        url: https(&v["url"])?,
        source: text(&v["source"], 40),
        subfolder: text(&v["subfolder"], 200),
    })
}

/// The runtime a deployable package runs under, and its identifier as we will name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Npm,
    Pypi,
}

/// `registryBaseUrl` may only name the public registry our machines install from.
fn base_ok(kind: Kind, base: &Value) -> bool {
    let Some(b) = base.as_str() else {
        return base.is_null();
    };
    let b = b.trim_end_matches('/');
    match kind {
        Kind::Npm => b == "https://registry.npmjs.org",
        Kind::Pypi => b == "https://pypi.org",
    }
}

/// Does any argument (or a variable inside it) hold a secret? Arguments end up in the
/// machine's launch spec and our stored plan, which are not sealed; only environment
/// variables are.
fn secret_argument(args: &[Value]) -> bool {
    args.iter().any(|a| {
        a["isSecret"].as_bool() == Some(true)
            || a["variables"]
                .as_object()
                .is_some_and(|vars| vars.values().any(|v| v["isSecret"].as_bool() == Some(true)))
    })
}

/// Why a package cannot run here, or `None` when it can.
pub fn refusal(pkg: &Value) -> Option<String> {
    let kind = match pkg["registryType"].as_str() {
        Some("npm") => Kind::Npm,
        Some("pypi") => Kind::Pypi,
        Some("oci") => {
            return Some(
                "It is a container image (OCI); only npm and PyPI packages run here.".into(),
            )
        }
        Some("mcpb") => {
            return Some("It is an MCP bundle (mcpb); only npm and PyPI packages run here.".into())
        }
        Some("nuget") => {
            return Some(
                "It is a .NET (NuGet) package; only npm and PyPI packages run here.".into(),
            )
        }
        _ => {
            return Some(
                "Its package type is not one we run; only npm and PyPI packages run here.".into(),
            )
        }
    };
    let place = match kind {
        Kind::Npm => "npm",
        Kind::Pypi => "PyPI",
    };
    if !base_ok(kind, &pkg["registryBaseUrl"]) {
        return Some(format!(
            "It is published on a registry other than the public {place} registry, which our machines do not install from."
        ));
    }
    let id = pkg["identifier"].as_str().unwrap_or_default();
    let name_ok = match kind {
        Kind::Npm => npm_name_ok(id),
        Kind::Pypi => pypi_name_ok(id),
    };
    if !name_ok {
        return Some(format!(
            "Its identifier is not a valid {place} package name."
        ));
    }
    if !pkg["version"].is_null() && !pkg["version"].as_str().is_some_and(version_ok) {
        return Some("Its version is not a plain version.".into());
    }
    match pkg["transport"]["type"].as_str() {
        Some("stdio") => {}
        Some(t) if t.len() <= 40 => {
            return Some(format!(
                "Its package serves {t}, not stdio; only stdio packages run here."
            ))
        }
        _ => {
            return Some("Its package has no stdio transport; only stdio packages run here.".into())
        }
    }
    let runtime_args: Vec<&Value> = pkg["runtimeArguments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| !(a["type"] == "named" && matches!(a["name"].as_str(), Some("-y" | "--yes"))))
        .collect();
    if !runtime_args.is_empty() {
        let launcher = match kind {
            Kind::Npm => "npx",
            Kind::Pypi => "uvx",
        };
        return Some(format!(
            "It needs options for {launcher} itself, which we do not pass: they could change what is installed."
        ));
    }
    let args = pkg["packageArguments"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if args.len() > MAX_ARGUMENTS {
        return Some(format!("It declares more than {MAX_ARGUMENTS} arguments."));
    }
    if secret_argument(args) {
        return Some("It takes a secret on its command line; here secrets are only passed as environment variables, sealed.".into());
    }
    let vars = pkg["environmentVariables"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if vars.len() > MAX_VARIABLES {
        return Some(format!(
            "It declares more than {MAX_VARIABLES} environment variables."
        ));
    }
    for v in vars {
        let name = v["name"].as_str().unwrap_or_default();
        if !env_name_ok(name) {
            return Some("It declares an environment variable with an invalid name.".into());
        }
        if reserved(name) {
            return Some(format!(
                "It sets {name}, which the machine's runtime reserves."
            ));
        }
    }
    None
}

fn package_view(pkg: &Value) -> PackageView {
    let reason = refusal(pkg);
    let registry_type = text(&pkg["registryType"], 20).unwrap_or_else(|| "unknown".into());
    let mut identifier = text(&pkg["identifier"], 300).unwrap_or_default();
    if reason.is_none() && registry_type == "pypi" {
        identifier = pypi_normalize(&identifier);
    }
    PackageView {
        registry_type,
        identifier,
        version: text(&pkg["version"], 100),
        transport: text(&pkg["transport"]["type"], 40).unwrap_or_else(|| "unknown".into()),
        deployable: reason.is_none(),
        reason,
    }
}

fn remote(v: &Value) -> Option<Remote> {
    let url = v["url"].as_str().filter(|u| {
        u.len() <= MAX_URL && (u.starts_with("https://") || u.starts_with("http://"))
    })?;
    Some(Remote {
        kind: text(&v["type"], 40).unwrap_or_else(|| "unknown".into()),
        url: url.chars().filter(|c| !c.is_control()).collect(),
        deployable: false,
        reason: "It is already hosted by its publisher: connect your client to this URL directly."
            .into(),
    })
}

/// The registry's `ServerResponse` (`{"server": …, "_meta": …}`) as an [`Entry`], or
/// `None` when it lacks what every entry must have (a valid name and a version).
pub fn read(item: &Value) -> Option<Entry> {
    let s = &item["server"];
    let name = s["name"].as_str().filter(|n| name_ok(n))?.to_string();
    let version = s["version"]
        .as_str()
        .filter(|v| !v.is_empty() && v.len() <= 255 && !v.chars().any(char::is_control))?
        .to_string();
    let official = &item["_meta"][OFFICIAL];
    let status = match official["status"].as_str() {
        Some("deleted") => Status::Deleted,
        Some("deprecated") => Status::Deprecated,
        _ => Status::Active,
    };
    let packages: Vec<PackageView> = s["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .take(MAX_PACKAGES)
        .map(package_view)
        .collect();
    let remotes: Vec<Remote> = s["remotes"]
        .as_array()
        .into_iter()
        .flatten()
        .take(MAX_PACKAGES)
        .filter_map(remote)
        .collect();
    Some(Entry {
        name,
        title: text(&s["title"], MAX_TITLE),
        description: text(&s["description"], MAX_DESCRIPTION),
        version,
        status,
        published_at: timestamp(&official["publishedAt"]),
        updated_at: timestamp(&official["updatedAt"]),
        repository: repository(&s["repository"]),
        website_url: https(&s["websiteUrl"]),
        icons: icons(&s["icons"]),
        deployable: status != Status::Deleted && packages.iter().any(|p| p.deployable),
        packages,
        remotes,
    })
}

/// One page of the registry's list: its entries (those that cannot be read are left out)
/// and the cursor for the next page; `None` when the answer is not a server list at all.
pub fn read_list(doc: &Value) -> Option<(Vec<Entry>, Option<String>)> {
    let servers = doc["servers"].as_array()?;
    let entries = servers.iter().filter_map(read).collect();
    let next = doc["metadata"]["nextCursor"]
        .as_str()
        .filter(|c| !c.is_empty() && cursor_ok(c))
        .map(str::to_string);
    Some((entries, next))
}

/// A cursor we pass back and forth unchanged: opaque, but printable and bounded.
pub fn cursor_ok(c: &str) -> bool {
    (1..=512).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_graphic())
}
