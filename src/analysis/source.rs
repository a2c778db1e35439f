//! What a user may ask us to analyze or deploy, parsed strictly before anything is sent
//! anywhere ("parse, don't validate"): a GitHub repository URL, or an npm / PyPI package.
//!
//! - [`RepoUrl`]: only `https://github.com/<owner>/<repo>` with optional `.git`, trailing
//!   slash and `/tree/<ref>[/<subdir>]`. Other hosts, userinfo, ports, IP literals, other
//!   schemes, percent-encoding, queries, fragments, dot segments and anything over 512
//!   characters are refused with a message saying what is accepted.
//! - [`PackageSpec`]: `npm:<name>[@version]` (npm's rules: ≤ 214 chars, lowercase,
//!   URL-safe, optional `@scope/`) or `pypi:<name>[@version]` (PEP 508 names, normalized
//!   per PEP 503). Versions are exact versions or tags of a plain character set.

use std::fmt;

pub const MAX_URL_LEN: usize = 512;
const MAX_REF: usize = 200;

/// Serializable so a parsed request crosses to the `AnalysisLock` object as it is, never
/// parsed from text twice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepoUrl {
    pub owner: String,
    pub repo: String,
    pub git_ref: Option<String>,
    pub subdir: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    Npm,
    Pypi,
}

impl Registry {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::Pypi => "pypi",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageSpec {
    pub registry: Registry,
    /// npm: as given (already lowercase); PyPI: PEP 503-normalized.
    pub name: String,
    pub version: Option<String>,
}

/// Why an input was refused; the message is safe to show (it never echoes the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub &'static str);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

const REPO_HELP: &str = "Only https://github.com/<owner>/<repo> URLs are accepted (optionally ending in .git, or /tree/<ref>[/<subdirectory>]).";

fn github_owner_ok(s: &str) -> bool {
    (1..=39).contains(&s.len())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn github_repo_ok(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn path_segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+'))
}

impl RepoUrl {
    pub fn parse(input: &str) -> Result<Self, SourceError> {
        let err = SourceError(REPO_HELP);
        let s = input.trim();
        if s.len() > MAX_URL_LEN {
            return Err(SourceError(
                "The repository URL is longer than 512 characters.",
            ));
        }
        // Byte-level checks first: no encoding tricks, whitespace, controls, queries, fragments.
        if s.bytes()
            .any(|b| !b.is_ascii_graphic() || matches!(b, b'%' | b'?' | b'#' | b'\\'))
        {
            return Err(err);
        }
        let rest = s.strip_prefix("https://github.com/").ok_or(err.clone())?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let parts: Vec<&str> = rest.split('/').collect();
        let (owner, repo) = match parts.as_slice() {
            [o, r, ..] => (*o, r.strip_suffix(".git").unwrap_or(r)),
            _ => return Err(err),
        };
        if !github_owner_ok(owner) || !github_repo_ok(repo) {
            return Err(err);
        }
        let (git_ref, subdir) = match &parts[2..] {
            [] => (None, None),
            ["tree", r, sub @ ..] if !parts[1].ends_with(".git") => {
                if r.is_empty() || r.len() > MAX_REF || !path_segment_ok(r) || r.starts_with('-') {
                    return Err(err);
                }
                if sub.iter().any(|seg| !path_segment_ok(seg)) {
                    return Err(err);
                }
                let subdir = (!sub.is_empty()).then(|| sub.join("/"));
                (Some((*r).to_string()), subdir)
            }
            _ => return Err(err),
        };
        Ok(Self {
            owner: owner.to_string(),
            repo: repo.to_string(),
            git_ref,
            subdir,
        })
    }

    /// The cache key part: lowercased owner/repo (GitHub is case-insensitive there), ref and
    /// subdirectory kept as given (they are case-sensitive).
    pub fn normalized(&self) -> String {
        let mut key = format!(
            "github:{}/{}",
            self.owner.to_ascii_lowercase(),
            self.repo.to_ascii_lowercase()
        );
        if let Some(r) = &self.git_ref {
            key.push('@');
            key.push_str(r);
        }
        if let Some(d) = &self.subdir {
            key.push(':');
            key.push_str(d);
        }
        key
    }
}

// The package and version grammars are shared with the runner (which checks them again
// before anything runs): one definition in `crates/launch-spec`.
pub use launch_spec::{npm_name_ok, pypi_name_ok, pypi_normalize, version_ok};

impl PackageSpec {
    pub fn parse(input: &str) -> Result<Self, SourceError> {
        let s = input.trim();
        if s.len() > MAX_URL_LEN || s.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(SourceError(
                "A package is npm:<name>[@version] or pypi:<name>[@version].",
            ));
        }
        let (registry, rest) = if let Some(r) = s.strip_prefix("npm:") {
            (Registry::Npm, r)
        } else if let Some(r) = s.strip_prefix("pypi:") {
            (Registry::Pypi, r)
        } else {
            return Err(SourceError(
                "A package is npm:<name>[@version] or pypi:<name>[@version].",
            ));
        };
        // The version separator is the last '@' that is not the scope's leading one.
        let split = rest.get(1..).and_then(|t| t.rfind('@')).map(|i| i + 1);
        let (name, version) = match split.and_then(|i| Some((rest.get(..i)?, rest.get(i + 1..)?))) {
            Some((n, v)) => (n, Some(v)),
            None => (rest, None),
        };
        if let Some(v) = version {
            if !version_ok(v) {
                return Err(SourceError("The version may use only letters, digits and . - + ! _ (at most 64 characters)."));
            }
        }
        let name = match registry {
            Registry::Npm if npm_name_ok(name) => name.to_string(),
            Registry::Npm => {
                return Err(SourceError("Not a valid npm package name (lowercase, URL-safe, at most 214 characters, optional @scope/)."))
            }
            Registry::Pypi if pypi_name_ok(name) => pypi_normalize(name),
            Registry::Pypi => return Err(SourceError("Not a valid PyPI project name (letters, digits, . _ -; starting and ending with a letter or digit).")),
        };
        Ok(Self {
            registry,
            name,
            version: version.map(str::to_string),
        })
    }

    pub fn normalized(&self) -> String {
        match &self.version {
            Some(v) => format!("{}:{}@{}", self.registry.as_str(), self.name, v),
            None => format!("{}:{}", self.registry.as_str(), self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_urls_in_their_accepted_forms_parse() {
        let cases = [
            (
                "https://github.com/modelcontextprotocol/servers",
                "github:modelcontextprotocol/servers",
            ),
            ("https://github.com/Owner/Repo.git", "github:owner/repo"),
            ("https://github.com/owner/repo/", "github:owner/repo"),
            (
                "https://github.com/o/r/tree/main/src/everything",
                "github:o/r@main:src/everything",
            ),
            ("https://github.com/o/r/tree/v1.2.3", "github:o/r@v1.2.3"),
            (
                "  https://github.com/o/my.repo_name  ",
                "github:o/my.repo_name",
            ),
        ];
        for (url, key) in cases {
            assert_eq!(
                RepoUrl::parse(url).map(|r| r.normalized()),
                Ok(key.to_string()),
                "{url}"
            );
        }
    }

    #[test]
    fn every_hostile_or_foreign_url_is_refused() {
        let long = format!("https://github.com/o/{}", "r".repeat(600));
        let hostile = [
            "http://github.com/o/r",
            "https://gitlab.com/o/r",
            "https://github.com.evil.com/o/r",
            "https://evil.com/github.com/o/r",
            "https://user:pw@github.com/o/r",
            "https://github.com@evil.com/o/r",
            "https://github.com:443/o/r",
            "https://140.82.112.3/o/r",
            "https://[::1]/o/r",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://github.com/o",
            "https://github.com/",
            "https://github.com/o/r/blob/main/x",
            "https://github.com/o/r/tree/../../x",
            "https://github.com/o/r/tree/main/../secrets",
            "https://github.com/o/r/tree/main/./x",
            "https://github.com/%2e%2e/r",
            "https://github.com/o/r%2F..%2F..",
            "https://github.com/o/r?x=1",
            "https://github.com/o/r#frag",
            "https://github.com/o/r\\..\\x",
            "https://github.com/o/r;id",
            "https://github.com/o/$(id)",
            "https://github.com/o/r`id`",
            "https://github.com/-o/r",
            "https://github.com/o--o/r",
            "https://github.com/o/..",
            "https://github.com/o/r\n/x",
            "https://github.com/o/r x",
            "https://github.com/o/r.git/tree/main",
            "https://github.com/o/r/tree/-rf",
            long.as_str(),
        ];
        for url in hostile {
            let e = RepoUrl::parse(url).unwrap_err();
            assert!(
                !e.0.contains("evil") && !e.0.contains("passwd"),
                "{url}: the message must not echo input"
            );
        }
    }

    #[test]
    fn package_specs_parse_with_scopes_versions_and_pep503_names() {
        let ok = [
            (
                "npm:@modelcontextprotocol/server-everything",
                "npm:@modelcontextprotocol/server-everything",
            ),
            (
                "npm:@modelcontextprotocol/server-everything@2026.8.31",
                "npm:@modelcontextprotocol/server-everything@2026.8.31",
            ),
            ("npm:mcp-server-x@latest", "npm:mcp-server-x@latest"),
            ("pypi:mcp-server-fetch", "pypi:mcp-server-fetch"),
            ("pypi:Mcp_Server.Fetch@1.0.0", "pypi:mcp-server-fetch@1.0.0"),
            ("pypi:a", "pypi:a"),
        ];
        for (input, key) in ok {
            assert_eq!(
                PackageSpec::parse(input).map(|p| p.normalized()),
                Ok(key.to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn hostile_package_names_never_parse() {
        let bad = [
            "npm:",
            "npm:UpperCase",
            "npm:x; rm -rf /",
            "npm:$(id)",
            "npm:`id`",
            "npm:a b",
            "npm:../../etc/passwd",
            "npm:.hidden",
            "npm:_private",
            "npm:@scope",
            "npm:@/x",
            "npm:@scope/",
            "npm:node_modules",
            "npm:x@1.0.0; id",
            "npm:x@",
            "npm:x@../../",
            "npm:http://evil.com/x.tgz",
            "npm:git+ssh://git@github.com/o/r",
            "npm:file:../x",
            "pypi:-x",
            "pypi:x-",
            "pypi:x y",
            "pypi:x;id",
            "pypi:x[extra]",
            "pypi:x==1.0",
            "pypi:x @ https://evil.com/x.whl",
            "cargo:serde",
            "x",
            "npm:x\r\nHost: evil",
            "npm:-c",
            "npm:--call=id",
            "npm:@-x/y",
            "npm:@x/-y",
            "npm:x@-1",
            "npm:x@https://evil.example/x.tgz",
            "npm:x@npm:other@1",
            "npm:x@github:x/y",
            "npm:x@file:../x",
            "npm:x@git+https://evil/x",
            "npm:x@^1.0.0",
        ];
        for input in bad {
            assert!(PackageSpec::parse(input).is_err(), "{input:?} parsed");
        }
        assert!(PackageSpec::parse(&format!("npm:{}", "a".repeat(215))).is_err());
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let alphabet: Vec<char> = "@/:.-_%?#\\ \n\tazAZ09é😀npm:pypi:https://github.com/tree"
            .chars()
            .collect();
        let mut rnd = [0u8; 4096];
        for _ in 0..200 {
            getrandom::getrandom(&mut rnd).unwrap();
            for chunk in rnd.chunks(32) {
                let s: String = chunk
                    .iter()
                    .map(|b| alphabet[*b as usize % alphabet.len()])
                    .collect();
                let _ = RepoUrl::parse(&s);
                let _ = PackageSpec::parse(&s);
                let _ = PackageSpec::parse(&format!("npm:{s}"));
                let _ = RepoUrl::parse(&format!("https://github.com/{s}"));
            }
        }
    }

    #[test]
    fn pep503_normalization_folds_separators_and_case() {
        assert_eq!(pypi_normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(pypi_normalize("FRIENDLY__bard"), "friendly-bard");
        assert_eq!(pypi_normalize("friendly.-_bard"), "friendly-bard");
    }
}
