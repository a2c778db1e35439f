//! Gathers what the readers read, from GitHub or a registry, through the [`Upstream`]
//! port (the Worker's `fetch` in production, an in-memory fake in tests), and turns
//! upstream answers into [`AppError`]s: missing or private → 404, rate limited or
//! unreachable → 503 with `Retry-After` when known, malformed → 502. Never "valid" by
//! default: a registry that cannot be asked is an error, not a pass.

use futures_util::future::join_all;
use serde_json::Value;
use url::Url;

use crate::analysis::merge::Inputs;
use crate::analysis::plan::{Findings, PackageRef};
use crate::analysis::registry::{npm_path, npm_release, pypi_path, pypi_release, RegistryError};
use crate::analysis::source::{PackageSpec, Registry, RepoUrl};
use crate::analysis::{manifest, readme, tarball};
use crate::config::join;
use crate::error::AppError;
use crate::outbound::{Fetched, Upstream, UpstreamError};

/// Caps per fetched file: manifests are small, READMEs can be long, tarballs hold code.
pub const MAX_MANIFEST: usize = 256 * 1024;
pub const MAX_DOCUMENT: usize = 8 * 1024 * 1024;
pub const MAX_TARBALL: usize = 16 * 1024 * 1024;
/// How much of a tarball is inflated while looking for its README and package.json.
pub const MAX_INFLATED: usize = 8 * 1024 * 1024;

/// What a collection produced: reader inputs for the merge and the README for the LLM.
#[derive(Debug, Default)]
pub struct Collected {
    pub inputs: Inputs,
    pub readme: Option<String>,
}

fn unavailable(service: &str, retry: Option<u32>) -> AppError {
    AppError::Unavailable {
        message: format!("{service} is unavailable or rate limited; try again later."),
        retry_after_secs: retry.or(Some(30)),
    }
}

fn transport(service: &'static str, e: UpstreamError) -> AppError {
    match e {
        UpstreamError::TooLarge => AppError::Upstream {
            service,
            detail: "response over the size cap".into(),
        },
        UpstreamError::Timeout | UpstreamError::Unreachable(_) => unavailable(service, None),
    }
}

/// Maps a non-success status; `None` for 2xx.
fn status_error(service: &'static str, f: &Fetched, not_found: &str) -> Option<AppError> {
    match f.status {
        200..=299 => None,
        404 | 410 | 451 => Some(AppError::not_found(not_found)),
        // GitHub answers 403 when rate limited (and for private repos with no token: then 404).
        403 | 429 => Some(unavailable(service, f.retry_after)),
        500..=599 => Some(unavailable(service, f.retry_after)),
        other => Some(AppError::Upstream {
            service,
            detail: format!("unexpected status {other}"),
        }),
    }
}

fn json(service: &'static str, f: &Fetched) -> Result<Value, AppError> {
    serde_json::from_slice(&f.body).map_err(|_| AppError::Upstream {
        service,
        detail: "malformed JSON".into(),
    })
}

fn text(f: &Fetched) -> String {
    String::from_utf8_lossy(&f.body).into_owned()
}

/// GETs a JSON document, mapping transport failures and non-2xx statuses.
async fn document<U: Upstream>(
    up: &U,
    url: &str,
    service: &'static str,
    not_found: &str,
) -> Result<Value, AppError> {
    let f = up
        .get(url, "application/json", MAX_DOCUMENT)
        .await
        .map_err(|e| transport(service, e))?;
    if let Some(e) = status_error(service, &f, not_found) {
        return Err(e);
    }
    json(service, &f)
}

const GITHUB: &str = "GitHub";

/// The files read from a repository, in order of authority where several name a package.
const REPO_FILES: &[&str] = &[
    "server.json",
    "package.json",
    "pyproject.toml",
    "smithery.yaml",
    "README.md",
];

pub async fn github<U: Upstream>(
    up: &U,
    api: &Url,
    raw: &Url,
    repo: &RepoUrl,
) -> Result<Collected, AppError> {
    let meta_url = join(api, &format!("/repos/{}/{}", repo.owner, repo.repo));
    let meta = up
        .get(&meta_url, "application/vnd.github+json", MAX_MANIFEST)
        .await
        .map_err(|e| transport(GITHUB, e))?;
    if let Some(e) = status_error(
        GITHUB,
        &meta,
        "The repository does not exist or is private.",
    ) {
        return Err(e);
    }
    let meta = json(GITHUB, &meta)?;
    let git_ref = match &repo.git_ref {
        Some(r) => r.clone(),
        None => meta["default_branch"]
            .as_str()
            .map(str::to_string)
            .ok_or(AppError::Upstream {
                service: GITHUB,
                detail: "no default_branch".into(),
            })?,
    };
    // The subdirectory's files win; the root's fill in (monorepos keep the README at the root).
    let dirs: Vec<String> = match &repo.subdir {
        Some(d) => vec![format!("{d}/"), String::new()],
        None => vec![String::new()],
    };
    let prefix = format!("/{}/{}/{}/", repo.owner, repo.repo, git_ref);
    let mut wanted: Vec<(usize, &str, String)> = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        for f in REPO_FILES {
            wanted.push((i, f, join(raw, &format!("{prefix}{d}{f}"))));
        }
    }
    let answers = join_all(wanted.iter().map(|(_, f, file_url)| {
        let cap = if *f == "README.md" {
            MAX_DOCUMENT
        } else {
            MAX_MANIFEST
        };
        up.get(file_url, "text/plain", cap)
    }))
    .await;
    let mut found: Vec<(usize, &str, String)> = Vec::new();
    for ((dir, file, _), answer) in wanted.iter().zip(answers) {
        match answer {
            Ok(f) if (200..300).contains(&f.status) => found.push((*dir, file, text(&f))),
            Ok(f) if f.status == 404 => {}
            Ok(f) => {
                return Err(status_error(GITHUB, &f, "A repository file is missing.")
                    .unwrap_or_else(|| unavailable(GITHUB, None)))
            }
            Err(UpstreamError::TooLarge) => {}
            Err(e) => return Err(transport(GITHUB, e)),
        }
    }
    let pick = |file: &str| {
        found
            .iter()
            .filter(|(_, f, _)| *f == file)
            .min_by_key(|(d, _, _)| *d)
            .map(|(_, _, t)| t.clone())
    };
    let mut c = Collected::default();
    c.inputs.server_json = pick("server.json").map(|t| manifest::server_json(&t));
    c.inputs.package_manifest = pick("package.json")
        .map(|t| manifest::package_json(&t))
        .filter(|f| !f.packages.is_empty())
        .or_else(|| pick("pyproject.toml").map(|t| manifest::pyproject_toml(&t)));
    c.inputs.smithery = pick("smithery.yaml").map(|t| manifest::smithery_yaml(&t));
    c.readme = pick("README.md");
    c.inputs.readme = c.readme.as_deref().map(readme::read);
    Ok(c)
}

const NPM: &str = "npm";
const PYPI: &str = "PyPI";

pub async fn package<U: Upstream>(
    up: &U,
    npm: &Url,
    pypi: &Url,
    spec: &PackageSpec,
) -> Result<Collected, AppError> {
    match spec.registry {
        Registry::Npm => npm_package(up, npm, spec).await,
        Registry::Pypi => pypi_package(up, pypi, spec).await,
    }
}

async fn npm_package<U: Upstream>(
    up: &U,
    registry: &Url,
    spec: &PackageSpec,
) -> Result<Collected, AppError> {
    let doc = document(
        up,
        &join(registry, &npm_path(&spec.name)),
        NPM,
        "The package does not exist on npm.",
    )
    .await?;
    let release = npm_release(&doc, spec.version.as_deref(), registry).map_err(|e| match e {
        RegistryError::NoSuchVersion => {
            AppError::not_found("That version of the package does not exist on npm.")
        }
        RegistryError::Malformed => AppError::Upstream {
            service: NPM,
            detail: "unexpected package document".into(),
        },
    })?;
    let mut readme_text = release.readme.clone();
    let mut manifest_text = Some(release.manifest.to_string());
    if readme_text.is_none() {
        if let Some(url) = &release.tarball {
            let tgz = up
                .get(url, "application/octet-stream", MAX_TARBALL)
                .await
                .map_err(|e| transport(NPM, e))?;
            if let Some(e) = status_error(NPM, &tgz, "The package tarball is missing.") {
                return Err(e);
            }
            let (r, m) =
                tarball::npm_readme_and_manifest(&tgz.body, MAX_INFLATED).map_err(|why| {
                    AppError::Upstream {
                        service: NPM,
                        detail: format!("tarball: {why}"),
                    }
                })?;
            readme_text = r;
            manifest_text = m.or(manifest_text);
        }
    }
    let mut c = Collected::default();
    c.inputs.requested = Some(PackageRef {
        registry: Registry::Npm,
        name: spec.name.clone(),
        version: Some(release.version),
        args: Vec::new(),
    });
    c.inputs.registry_used = true;
    c.inputs.package_manifest = manifest_text.map(|t| without_packages(manifest::package_json(&t)));
    c.inputs.readme = readme_text.as_deref().map(readme::read);
    c.readme = readme_text;
    Ok(c)
}

/// A registry manifest describes the requested package itself: its warnings count, its
/// package line is the requested one already.
fn without_packages(mut f: Findings) -> Findings {
    f.packages.clear();
    f
}

async fn pypi_package<U: Upstream>(
    up: &U,
    base: &Url,
    spec: &PackageSpec,
) -> Result<Collected, AppError> {
    let doc = document(
        up,
        &join(base, &pypi_path(&spec.name)),
        PYPI,
        "The project does not exist on PyPI.",
    )
    .await?;
    let release = pypi_release(&doc, spec.version.as_deref()).map_err(|e| match e {
        RegistryError::NoSuchVersion => {
            AppError::not_found("That version of the project does not exist on PyPI.")
        }
        RegistryError::Malformed => AppError::Upstream {
            service: PYPI,
            detail: "unexpected project document".into(),
        },
    })?;
    let mut c = Collected::default();
    c.inputs.requested = Some(PackageRef {
        registry: Registry::Pypi,
        name: spec.name.clone(),
        version: Some(release.version),
        args: Vec::new(),
    });
    c.inputs.registry_used = true;
    c.inputs.readme = release.readme.as_deref().map(readme::read);
    c.readme = release.readme;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::merge::merge;
    use crate::analysis::tarball::build::{entry, finish};
    use crate::outbound::memory::MemoryUpstream;
    use futures_executor::block_on;
    use serde_json::json;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    const API: &str = "https://api.github.test";
    const RAW: &str = "https://raw.github.test";

    fn repo(s: &str) -> RepoUrl {
        RepoUrl::parse(s).unwrap()
    }

    #[test]
    fn a_monorepo_subdirectory_wins_over_the_root_and_the_readme_comes_from_the_root() {
        let up = MemoryUpstream::default();
        up.ok(
            &format!("{API}/repos/acme/mono"),
            json!({"default_branch": "main"}).to_string(),
        );
        up.ok(
            &format!("{RAW}/acme/mono/main/package.json"),
            json!({"name": "acme-monorepo", "private": true}).to_string(),
        );
        up.ok(&format!("{RAW}/acme/mono/main/servers/weather/package.json"), json!({"name": "@acme/weather", "bin": "x", "dependencies": {"@modelcontextprotocol/sdk": "1"}}).to_string());
        up.ok(&format!("{RAW}/acme/mono/main/README.md"), "```json\n{\"mcpServers\": {\"w\": {\"command\": \"npx\", \"args\": [\"-y\", \"@acme/weather\"], \"env\": {\"WEATHER_KEY\": \"<key>\"}}}}\n```");
        let c = block_on(github(
            &up,
            &url(API),
            &url(RAW),
            &repo("https://github.com/acme/mono/tree/main/servers/weather"),
        ))
        .unwrap();
        let plan = merge(c.inputs).unwrap();
        assert_eq!(plan.package, "@acme/weather");
        assert_eq!(plan.env_vars[0].name, "WEATHER_KEY");
        assert!(c.readme.is_some());
    }

    #[test]
    fn github_failures_become_clear_errors() {
        let up = MemoryUpstream::default();
        let r = repo("https://github.com/acme/private");
        assert_eq!(
            block_on(github(&up, &url(API), &url(RAW), &r))
                .unwrap_err()
                .status(),
            404
        );
        up.status(&format!("{API}/repos/acme/private"), 403, Some(1200));
        let e = block_on(github(&up, &url(API), &url(RAW), &r)).unwrap_err();
        assert_eq!((e.status(), e.headers()[0].1.as_str()), (503, "1200"));
        up.fail(&format!("{API}/repos/acme/private"), UpstreamError::Timeout);
        assert_eq!(
            block_on(github(&up, &url(API), &url(RAW), &r))
                .unwrap_err()
                .status(),
            503
        );
        up.ok(&format!("{API}/repos/acme/private"), "<html>not json");
        assert_eq!(
            block_on(github(&up, &url(API), &url(RAW), &r))
                .unwrap_err()
                .status(),
            502
        );
    }

    #[test]
    fn an_npm_package_with_an_empty_readme_is_read_from_its_tarball() {
        let up = MemoryUpstream::default();
        let npm = url("https://registry.npm.test");
        let tgz = "https://registry.npm.test/@acme/w/-/w-1.0.0.tgz";
        up.ok("https://registry.npm.test/@acme%2fw", json!({"dist-tags": {"latest": "1.0.0"}, "readme": "",
            "versions": {"1.0.0": {"name": "@acme/w", "version": "1.0.0", "bin": "x", "dist": {"tarball": tgz}}}}).to_string());
        let mut tar = Vec::new();
        entry(&mut tar, "package/README.md", b'0', b"```json\n{\"x\": {\"command\": \"npx\", \"args\": [\"-y\", \"@acme/w\"], \"env\": {\"ACME_TOKEN\": \"\"}}}\n```");
        entry(&mut tar, "package/package.json", b'0', br#"{"name": "@acme/w", "bin": "x", "dependencies": {"@modelcontextprotocol/sdk": "1"}}"#);
        finish(&mut tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        up.ok(tgz, gz.finish().unwrap());
        let spec = PackageSpec::parse("npm:@acme/w").unwrap();
        let c = block_on(package(&up, &npm, &url("https://pypi.test"), &spec)).unwrap();
        let plan = merge(c.inputs).unwrap();
        assert_eq!(
            (plan.package.as_str(), plan.version.as_deref()),
            ("@acme/w", Some("1.0.0"))
        );
        assert_eq!(plan.env_vars[0].name, "ACME_TOKEN");
        assert_eq!(plan.analyzer, ["manifest", "registry"]);
        assert_eq!(up.calls.borrow().len(), 2);
    }

    #[test]
    fn registry_answers_decide_existence_and_never_default_to_valid() {
        let up = MemoryUpstream::default();
        let (npm, pypi) = (url("https://registry.npm.test"), url("https://pypi.test"));
        let missing = PackageSpec::parse("npm:nope").unwrap();
        assert_eq!(
            block_on(package(&up, &npm, &pypi, &missing))
                .unwrap_err()
                .status(),
            404
        );
        up.fail(
            "https://registry.npm.test/nope",
            UpstreamError::Unreachable("dns".into()),
        );
        assert_eq!(
            block_on(package(&up, &npm, &pypi, &missing))
                .unwrap_err()
                .status(),
            503
        );
        up.ok("https://pypi.test/pypi/mcp-server-fetch/json", json!({"info": {"version": "0.6.2", "description": "uvx mcp-server-fetch"}, "releases": {"0.6.2": []}}).to_string());
        let wrong = PackageSpec::parse("pypi:mcp-server-fetch@9.9").unwrap();
        assert_eq!(
            block_on(package(&up, &npm, &pypi, &wrong))
                .unwrap_err()
                .status(),
            404
        );
        let right = PackageSpec::parse("pypi:Mcp_Server_Fetch").unwrap();
        let plan = merge(block_on(package(&up, &npm, &pypi, &right)).unwrap().inputs).unwrap();
        assert_eq!(
            (plan.package.as_str(), plan.runtime, plan.version.as_deref()),
            ("mcp-server-fetch", "python", Some("0.6.2"))
        );
    }
}
