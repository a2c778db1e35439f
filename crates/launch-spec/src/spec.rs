//! The launch spec: which package a machine runs, from which registry, at which version,
//! with which arguments; JSON `{"runtime": "npm"|"python", "package": …, "version"?: …,
//! "args"?: […]}` (the runtime form of the runner's `CATWALK_LAUNCH`).
//!
//! [`LaunchSpec::argv`] validates first, then builds an argv for `exec` (never a shell):
//!
//! | runtime | argv |
//! | --- | --- |
//! | `npm` | `npx -y -- <package>[@<version>] <args…>` |
//! | `python` | `uvx -- <package>[@<version>] <args…>` |
//!
//! `--` ends the option parsing of npx and uvx, and the package grammar refuses a leading
//! `-` on top of it, so neither the package nor an argument can become an option of the
//! launcher (`npx -y -c <cmd>` would run `<cmd>` in a shell; `uvx --from <url>` would
//! install from anywhere). The arguments follow the package: both launchers hand every
//! word after it to the command unparsed. Verified (npm 11.19, uv 0.13.9):
//! - `npx -y -- @modelcontextprotocol/server-everything stdio` and
//!   `npx -y -- @modelcontextprotocol/server-everything@2026.8.31 stdio`, in an empty
//!   directory with an empty npm cache: fetched from the registry (the pinned version
//!   installed), answered `initialize` on stdio; the same from a directory whose
//!   `node_modules` has the package.
//! - `npx -y -c 'echo X'` prints `X` (a shell ran); `npx -y -- -c 'echo X'` does not (npm
//!   looks for a package named `-c`: `notarget`).
//! - `npx -y -- semver@7.6.0 -c 'echo X'`: the `-c` reaches `semver`, no shell runs.
//! - `uvx -- mcp-server-time` and `uvx -- mcp-server-time@2026.10.19` run the package's
//!   command (the pinned version installed) and answer `initialize` on stdio; uvx needs no
//!   command name when the package is named after its command, as for the plain form.
//! - `uvx -- --from x` / `uvx -- -c x`: refused by uv ("Expected package name starting
//!   with an alphanumeric character"); `uvx -- mcp-server-time --from evil`: `--from`
//!   reaches the server, not uvx.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::grammar::{npm_name_ok, pypi_name_ok, version_ok};

/// Most arguments after the package, and the longest one; a launch spec is small by nature.
pub const MAX_ARGS: usize = 60;
pub const MAX_ARG_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// An npm package, run with `npx`.
    Npm,
    /// A PyPI package, run with `uvx`.
    Python,
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Runtime::Npm => "npm",
            Runtime::Python => "python",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchSpec {
    pub runtime: Runtime,
    pub package: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// Why a launch spec is refused; the message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    Package { runtime: Runtime, package: String },
    Version(String),
    Args,
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::Package { runtime, package } => {
                write!(f, "{package:?} is not a valid {runtime} package name")
            }
            LaunchError::Version(v) => write!(
                f,
                "{v:?} is not a valid version (an exact version or a plain tag)"
            ),
            LaunchError::Args => write!(
                f,
                "args must be at most {MAX_ARGS} strings of at most {MAX_ARG_LEN} bytes, without NUL"
            ),
        }
    }
}

impl std::error::Error for LaunchError {}

impl LaunchSpec {
    /// The package matches its runtime's grammar, the version (if any) the version
    /// grammar, and the arguments are few, short and free of NUL.
    pub fn validate(&self) -> Result<(), LaunchError> {
        let name_ok = match self.runtime {
            Runtime::Npm => npm_name_ok(&self.package),
            Runtime::Python => pypi_name_ok(&self.package),
        };
        if !name_ok {
            return Err(LaunchError::Package {
                runtime: self.runtime,
                package: self.package.clone(),
            });
        }
        if let Some(v) = self.version.as_deref().filter(|v| !version_ok(v)) {
            return Err(LaunchError::Version(v.to_string()));
        }
        if self.args.len() > MAX_ARGS
            || self
                .args
                .iter()
                .any(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
        {
            return Err(LaunchError::Args);
        }
        Ok(())
    }

    /// The exec argv (see the module docs), for a spec that passes [`Self::validate`].
    pub fn argv(&self) -> Result<Vec<String>, LaunchError> {
        self.validate()?;
        let target = match &self.version {
            Some(v) => format!("{}@{v}", self.package),
            None => self.package.clone(),
        };
        let launcher: &[&str] = match self.runtime {
            Runtime::Npm => &["npx", "-y", "--"],
            Runtime::Python => &["uvx", "--"],
        };
        let mut argv: Vec<String> = launcher.iter().map(|s| s.to_string()).collect();
        argv.push(target);
        argv.extend(self.args.iter().cloned());
        Ok(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(runtime: Runtime, package: &str, version: Option<&str>) -> LaunchSpec {
        LaunchSpec {
            runtime,
            package: package.to_string(),
            version: version.map(str::to_string),
            args: Vec::new(),
        }
    }

    #[test]
    fn npm_argv_ends_npx_options_before_the_package() {
        let mut s = spec(
            Runtime::Npm,
            "@modelcontextprotocol/server-everything",
            Some("2026.8.31"),
        );
        s.args = vec!["stdio".into(), "-c".into(), "--from=x".into()];
        assert_eq!(
            s.argv().unwrap(),
            [
                "npx",
                "-y",
                "--",
                "@modelcontextprotocol/server-everything@2026.8.31",
                "stdio",
                "-c",
                "--from=x"
            ]
        );
        assert_eq!(
            spec(Runtime::Npm, "left-pad", None).argv().unwrap(),
            ["npx", "-y", "--", "left-pad"]
        );
    }

    #[test]
    fn python_argv_ends_uvx_options_before_the_package() {
        assert_eq!(
            spec(Runtime::Python, "mcp-server-time", Some("2026.10.19"))
                .argv()
                .unwrap(),
            ["uvx", "--", "mcp-server-time@2026.10.19"]
        );
        let mut s = spec(Runtime::Python, "mcp-server-fetch", None);
        s.args = vec!["--ignore-robots-txt".into()];
        assert_eq!(
            s.argv().unwrap(),
            ["uvx", "--", "mcp-server-fetch", "--ignore-robots-txt"]
        );
    }

    #[test]
    fn hostile_packages_are_refused_for_both_runtimes() {
        for hostile in [
            "https://evil.example/x.tgz",
            "npm:other@1",
            "github:x/y",
            "file:..",
            "git+ssh://git@github.com/x/y.git",
            "../x",
            "./x",
            "/abs/path",
            "x@1.0.0",
            "-c",
            "--from",
            "-y",
            "@-x/y",
            "x; rm -rf / $(id)",
            "x y",
            "",
        ] {
            for runtime in [Runtime::Npm, Runtime::Python] {
                let s = spec(runtime, hostile, None);
                assert!(
                    matches!(s.validate(), Err(LaunchError::Package { .. })),
                    "{runtime} {hostile:?}"
                );
                assert!(s.argv().is_err(), "{runtime} {hostile:?}");
            }
        }
    }

    #[test]
    fn the_npx_shell_option_is_refused_as_a_package() {
        let err = spec(Runtime::Npm, "-c", None).argv().unwrap_err();
        assert!(err.to_string().contains("\"-c\""), "{err}");
    }

    #[test]
    fn hostile_versions_are_refused() {
        for v in [
            "^1.0",
            "~1.2",
            ">=1",
            "1 || 2",
            "",
            "-c",
            "https://evil.example/x.tgz",
            "file:../x",
            "github:x/y",
            "1.0.0 --from x",
            "latest/../x",
        ] {
            let s = spec(Runtime::Npm, "left-pad", Some(v));
            assert_eq!(s.validate(), Err(LaunchError::Version(v.into())), "{v:?}");
            let p = spec(Runtime::Python, "mcp-server-time", Some(v));
            assert!(p.argv().is_err(), "{v:?}");
        }
    }

    #[test]
    fn arguments_are_bounded_and_free_of_nul() {
        let mut s = spec(Runtime::Npm, "left-pad", None);
        s.args = vec!["a\0b".into()];
        assert_eq!(s.validate(), Err(LaunchError::Args));
        s.args = vec!["a".repeat(MAX_ARG_LEN + 1)];
        assert_eq!(s.validate(), Err(LaunchError::Args));
        s.args = vec!["a".into(); MAX_ARGS + 1];
        assert_eq!(s.validate(), Err(LaunchError::Args));
        s.args = vec!["x; rm -rf / $(id) `whoami`".into(); MAX_ARGS];
        assert!(s.validate().is_ok());
    }

    #[test]
    fn json_round_trips_in_the_runner_shape() {
        let json = r#"{"runtime":"npm","package":"@acme/w","version":"1.0.0","args":["stdio"]}"#;
        let s: LaunchSpec = serde_json::from_str(json).unwrap();
        assert_eq!(s.runtime, Runtime::Npm);
        assert_eq!(s.version.as_deref(), Some("1.0.0"));
        assert_eq!(serde_json::to_string(&s).unwrap(), json);

        let minimal = r#"{"runtime":"python","package":"mcp-server-time"}"#;
        let p: LaunchSpec = serde_json::from_str(minimal).unwrap();
        assert_eq!(p, spec(Runtime::Python, "mcp-server-time", None));
        assert_eq!(serde_json::to_string(&p).unwrap(), minimal);
        // The Worker sends `"args": []`; an empty list is the same spec.
        let with_empty: LaunchSpec =
            serde_json::from_str(r#"{"runtime":"python","package":"mcp-server-time","args":[]}"#)
                .unwrap();
        assert_eq!(with_empty, p);

        for bad in [
            r#"{"runtime":"ruby","package":"x"}"#,
            r#"{"runtime":"npm"}"#,
            r#"{"runtime":"npm","package":"x","shell":"sh -c"}"#,
            r#"{"runtime":"NPM","package":"x"}"#,
        ] {
            assert!(serde_json::from_str::<LaunchSpec>(bad).is_err(), "{bad}");
        }
    }
}
