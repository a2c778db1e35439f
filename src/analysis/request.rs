//! The body of `POST /api/analyze`: `{"repo_url": …}` or `{"package": "npm:…"|"pypi:…"}`,
//! plus `refresh` (alias `force`, as Catwalk's frontend sends it) to bypass the cache.

use serde_json::Value;

use crate::analysis::source::{PackageSpec, RepoUrl, MAX_URL_LEN};
use crate::error::{AppError, AppResult};
use crate::http::input::Fields;

/// Bump when readers change what they produce, so old cache entries stop matching.
pub const ANALYZER_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    Repo(RepoUrl),
    Package(PackageSpec),
}

impl Source {
    pub fn normalized(&self) -> String {
        match self {
            Self::Repo(r) => r.normalized(),
            Self::Package(p) => p.normalized(),
        }
    }

    /// The KV key and D1 `source_key` of this source's analysis.
    pub fn cache_key(&self) -> String {
        format!("analysis:v{ANALYZER_VERSION}:{}", self.normalized())
    }
}

/// Parsed once from the body; crosses to the `AnalysisLock` object as this struct.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnalyzeRequest {
    pub source: Source,
    pub refresh: bool,
}

pub fn parse(body: &Value) -> AppResult<AnalyzeRequest> {
    let mut f = Fields::of(body)?;
    let repo = f.optional_str("repo_url", MAX_URL_LEN + 64);
    let package = f.optional_str("package", MAX_URL_LEN + 64);
    let refresh = f
        .optional_bool("refresh")
        .or(f.optional_bool("force"))
        .unwrap_or(false);
    let both = repo.is_some() && package.is_some();
    if both {
        f.fail("repo_url", "give repo_url or package, not both");
    } else if repo.is_none() && package.is_none() {
        f.fail(
            "repo_url",
            "give repo_url (https://github.com/owner/repo) or package (npm:name or pypi:name)",
        );
    }
    let (repo, package) = f.finish(|| (repo, package))?;
    let source = match (repo, package) {
        (Some(r), _) => Source::Repo(
            RepoUrl::parse(&r).map_err(|e| AppError::bad_request("invalid_source", e.0))?,
        ),
        (_, Some(p)) => Source::Package(
            PackageSpec::parse(&p).map_err(|e| AppError::bad_request("invalid_source", e.0))?,
        ),
        (None, None) => return Err(AppError::field("repo_url", "is required")),
    };
    Ok(AnalyzeRequest { source, refresh })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn either_source_parses_and_force_is_an_alias_of_refresh() {
        let r = parse(&json!({"repo_url": "https://github.com/Acme/W", "force": true})).unwrap();
        assert_eq!(r.source.cache_key(), "analysis:v2:github:acme/w");
        assert!(r.refresh);
        let p = parse(&json!({"package": "pypi:Mcp_Server_Fetch"})).unwrap();
        assert_eq!(p.source.cache_key(), "analysis:v2:pypi:mcp-server-fetch");
        assert!(!p.refresh);
    }

    #[test]
    fn bad_bodies_get_400_or_422() {
        let cases = [
            (json!({}), 422),
            (
                json!({"repo_url": "https://github.com/a/b", "package": "npm:x"}),
                422,
            ),
            (json!({"repo_url": 5}), 422),
            (json!({"package": "npm:x", "refresh": "yes"}), 422),
            (json!({"repo_url": "https://evil.com/a/b"}), 400),
            (json!({"package": "npm:$(id)"}), 400),
            (json!([1]), 400),
        ];
        for (body, status) in cases {
            assert_eq!(parse(&body).unwrap_err().status(), status, "{body}");
        }
    }
}
