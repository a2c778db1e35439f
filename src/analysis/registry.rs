//! Reading the registries' answers: npm's package document (`GET {registry}/{name}`,
//! scoped names as `@scope%2fname`) and PyPI's JSON API (`GET {pypi}/pypi/{name}/json`).
//! Pure: the caller fetches, these functions decide what the answer says — which version
//! is meant, whether it exists, where its tarball is (only on the registry's own origin, so
//! a registry answer cannot point us anywhere else), and the README when the document has one.

use serde_json::Value;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmRelease {
    pub version: String,
    pub tarball: Option<String>,
    /// The document's README, when not empty (often it is; then read the tarball).
    pub readme: Option<String>,
    /// `versions[v]`, i.e. that version's package.json as the registry has it.
    pub manifest: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiRelease {
    pub version: String,
    pub readme: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The document does not have the shape the registry documents.
    Malformed,
    /// The requested version or tag does not exist.
    NoSuchVersion,
}

/// The path for a package document; scoped names keep `@` and encode the slash.
pub fn npm_path(name: &str) -> String {
    format!("/{}", name.replacen('/', "%2f", 1))
}

pub fn pypi_path(name: &str) -> String {
    format!("/pypi/{name}/json")
}

fn non_empty(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub fn npm_release(
    doc: &Value,
    wanted: Option<&str>,
    registry: &Url,
) -> Result<NpmRelease, RegistryError> {
    let versions = doc["versions"]
        .as_object()
        .ok_or(RegistryError::Malformed)?;
    let version = match wanted {
        Some(v) if versions.contains_key(v) => v.to_string(),
        Some(tag) => doc["dist-tags"][tag]
            .as_str()
            .map(str::to_string)
            .ok_or(RegistryError::NoSuchVersion)?,
        None => doc["dist-tags"]["latest"]
            .as_str()
            .map(str::to_string)
            .ok_or(RegistryError::Malformed)?,
    };
    let manifest = versions
        .get(&version)
        .cloned()
        .ok_or(RegistryError::NoSuchVersion)?;
    let tarball = manifest["dist"]["tarball"]
        .as_str()
        .and_then(|t| Url::parse(t).ok())
        .filter(|t| t.origin() == registry.origin())
        .map(|t| t.to_string());
    let readme = non_empty(&manifest["readme"]).or_else(|| non_empty(&doc["readme"]));
    Ok(NpmRelease {
        version,
        tarball,
        readme,
        manifest,
    })
}

pub fn pypi_release(doc: &Value, wanted: Option<&str>) -> Result<PypiRelease, RegistryError> {
    let info = doc["info"].as_object().ok_or(RegistryError::Malformed)?;
    let latest = info
        .get("version")
        .and_then(Value::as_str)
        .ok_or(RegistryError::Malformed)?;
    let version = match wanted {
        None => latest.to_string(),
        Some(v) => {
            let known = doc["releases"]
                .as_object()
                .is_some_and(|r| r.contains_key(v));
            if !known {
                return Err(RegistryError::NoSuchVersion);
            }
            v.to_string()
        }
    };
    Ok(PypiRelease {
        version,
        readme: info.get("description").and_then(non_empty),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Url {
        Url::parse("https://registry.npmjs.org").unwrap()
    }

    fn doc() -> Value {
        json!({
            "name": "@acme/w", "readme": "",
            "dist-tags": {"latest": "1.2.0", "next": "2.0.0-rc.1"},
            "versions": {
                "1.2.0": {"name": "@acme/w", "readme": "", "dist": {"tarball": "https://registry.npmjs.org/@acme/w/-/w-1.2.0.tgz"}},
                "2.0.0-rc.1": {"name": "@acme/w", "readme": "# W", "dist": {"tarball": "https://evil.example.com/w.tgz"}}
            }
        })
    }

    #[test]
    fn npm_versions_resolve_from_exact_versions_tags_or_latest() {
        let latest = npm_release(&doc(), None, &registry()).unwrap();
        assert_eq!(latest.version, "1.2.0");
        assert_eq!(
            latest.readme, None,
            "an empty readme means: read the tarball"
        );
        assert!(latest.tarball.unwrap().ends_with("w-1.2.0.tgz"));
        let next = npm_release(&doc(), Some("next"), &registry()).unwrap();
        assert_eq!(
            (next.version.as_str(), next.readme.as_deref()),
            ("2.0.0-rc.1", Some("# W"))
        );
        assert_eq!(
            next.tarball, None,
            "a tarball on another origin is never fetched"
        );
        assert_eq!(
            npm_release(&doc(), Some("9.9.9"), &registry()),
            Err(RegistryError::NoSuchVersion)
        );
        assert_eq!(
            npm_release(&json!({"error": "x"}), None, &registry()),
            Err(RegistryError::Malformed)
        );
        assert_eq!(npm_path("@acme/w"), "/@acme%2fw");
    }

    #[test]
    fn pypi_versions_must_exist_and_the_readme_is_the_description() {
        let d = json!({"info": {"version": "0.6.2", "description": "# Fetch\nuvx mcp-server-fetch"}, "releases": {"0.6.1": [], "0.6.2": []}});
        assert_eq!(pypi_release(&d, None).unwrap().version, "0.6.2");
        assert!(pypi_release(&d, Some("0.6.1"))
            .unwrap()
            .readme
            .unwrap()
            .starts_with("# Fetch"));
        assert_eq!(
            pypi_release(&d, Some("9")),
            Err(RegistryError::NoSuchVersion)
        );
        assert_eq!(
            pypi_release(&json!([]), None),
            Err(RegistryError::Malformed)
        );
    }
}
