//! The names and versions we accept for a package, checked before a registry is asked and
//! again before a machine runs anything.
//!
//! - npm: validate-npm-package-name's rules for new packages (≤ 214 characters, lowercase,
//!   URL-safe, optional `@scope/`), plus one of ours: no name or scope starts with `-`, so
//!   a name can never be read as an option (`npx -y -c <cmd>` runs `<cmd>` in a shell).
//! - PyPI: PEP 508 names (letters, digits, `.`, `_`, `-`, alphanumeric at both ends),
//!   compared after PEP 503 normalisation.
//! - Versions: an exact version or a tag of a plain character set, starting alphanumeric
//!   (so no ranges such as `^1.0`, no URLs, no paths, no leading `-`).

pub const MAX_NPM_NAME: usize = 214;
pub const MAX_PYPI_NAME: usize = 128;
pub const MAX_VERSION: usize = 64;

/// An exact version or tag: `1.2.3`, `2026.8.31`, `1.0.0-beta.1+build`, `1!2.0`, `latest`.
pub fn version_ok(v: &str) -> bool {
    (1..=MAX_VERSION).contains(&v.len())
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'!' | b'_'))
}

/// One part of an npm name: the whole unscoped name, or the scope or the name of a scoped one.
pub fn npm_part_ok(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('.')
        && !p.starts_with('_')
        && !p.starts_with('-')
        && p.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_' | b'~')
        })
}

/// npm's package-name rules (validate-npm-package-name, for new packages), no leading `-`.
pub fn npm_name_ok(name: &str) -> bool {
    if name.is_empty()
        || name.len() > MAX_NPM_NAME
        || matches!(name, "node_modules" | "favicon.ico")
    {
        return false;
    }
    match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, pkg)) => npm_part_ok(scope) && npm_part_ok(pkg),
            None => false,
        },
        None => npm_part_ok(name),
    }
}

/// PEP 508 name: letters, digits, `.`, `_`, `-`, starting and ending alphanumeric.
pub fn pypi_name_ok(name: &str) -> bool {
    let b = name.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= MAX_PYPI_NAME
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        }
        _ => false,
    }
}

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn pypi_normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_names_follow_the_registry_rules() {
        for ok in [
            "left-pad",
            "@modelcontextprotocol/server-everything",
            "a.b_c~d",
            "x1",
        ] {
            assert!(npm_name_ok(ok), "{ok}");
        }
        let too_long = "a".repeat(MAX_NPM_NAME + 1);
        for bad in [
            "",
            "Upper",
            ".hidden",
            "_private",
            "node_modules",
            "@scope",
            "@scope/",
            "@/x",
            "a/b",
            "a b",
            too_long.as_str(),
        ] {
            assert!(!npm_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn an_npm_name_or_scope_starting_with_a_dash_is_refused() {
        for bad in ["-c", "--call", "-y", "@-x/y", "@x/-y", "-"] {
            assert!(!npm_name_ok(bad), "{bad}");
        }
        assert!(npm_name_ok("a-b"));
        assert!(npm_name_ok("@a-b/c-d"));
    }

    #[test]
    fn pypi_names_are_pep_508_and_compare_normalized() {
        for ok in ["mcp-server-time", "Friendly.Bard", "a", "a_1"] {
            assert!(pypi_name_ok(ok), "{ok}");
        }
        for bad in ["", "-c", "x-", "_x", "a b", "a/b", "a@1", "../x"] {
            assert!(!pypi_name_ok(bad), "{bad}");
        }
        assert!(!pypi_name_ok(&"a".repeat(MAX_PYPI_NAME + 1)));
        assert_eq!(pypi_normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(pypi_normalize("FRIENDLY__bard"), "friendly-bard");
        assert_eq!(pypi_normalize("friendly.-_bard"), "friendly-bard");
    }

    #[test]
    fn versions_are_exact_versions_or_plain_tags() {
        for ok in [
            "1.2.3",
            "2026.8.31",
            "1.0.0-beta.1+build.5",
            "1!2.0",
            "latest",
        ] {
            assert!(version_ok(ok), "{ok}");
        }
        for bad in [
            "", "^1.0", "~1", ">=1", "-1", "1 || 2", "1.0/x", "a:b", "v@1",
        ] {
            assert!(!version_ok(bad), "{bad}");
        }
        assert!(!version_ok(&"1".repeat(MAX_VERSION + 1)));
    }
}
