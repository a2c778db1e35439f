//! The launch spec: what MCP server to start and with which environment.
//!
//! `CATWALK_LAUNCH` holds JSON, one of
//! - the runtime form, a [`launch_spec::LaunchSpec`]:
//!   `{"runtime": "npm", "package": "@scope/name", "version"?: "1.2.3", "args"?: [...]}`
//!   → `npx -y -- @scope/name@1.2.3 args…`, or
//!   `{"runtime": "python", "package": "name", "version"?: "1.2.3", "args"?: [...]}`
//!   → `uvx -- name@1.2.3 args…`. The package must match its registry's name grammar and
//!   the version the version grammar (no URLs, paths, `git+…`, `npm:` aliases, ranges or
//!   leading `-`), and `--` ends the launcher's options: see `launch_spec::spec`. This is
//!   the form deployments use.
//! - `{"argv": ["node", "server.js", …]}` → exactly that (tests and local use: whoever can
//!   set the runner's environment can run anything anyway).
//!
//! The result is an argv handed to `exec` — never a shell string. The child's environment
//! is the runner's minus every runner setting (`CATWALK_*`, `PORT`): the credentials the
//! deployment set arrive untouched, the upstream secret never does. With [`ChildUser`] the
//! child also runs under its own uid / gid, so it cannot read the runner's
//! `/proc/<pid>/environ` (where the upstream secret is) either.

use std::path::PathBuf;

use launch_spec::LaunchSpec;
use serde::Deserialize;
use serde_json::Value;

/// Settings that belong to the runner and must not reach the MCP server.
pub const RUNNER_ENV_PREFIX: &str = "CATWALK_";
const RUNNER_ENV_EXACT: &[&str] = &["PORT"];
/// Longest argv element and count we accept; a launch spec is small by nature.
const MAX_ARG_LEN: usize = 4096;
const MAX_ARGS: usize = 64;

/// The `argv` form: nothing else beside it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArgvForm {
    argv: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub argv: Vec<String>,
}

pub fn parse(json: &str) -> Result<Launch, String> {
    let not_a_spec = |e: serde_json::Error| format!("CATWALK_LAUNCH is not a launch spec: {e}");
    let value: Value = serde_json::from_str(json).map_err(not_a_spec)?;
    let argv = match value.get("argv") {
        Some(_) => {
            serde_json::from_value::<ArgvForm>(value)
                .map_err(|_| "give either argv alone, or runtime + package (+ version, args)")?
                .argv
        }
        None => serde_json::from_value::<LaunchSpec>(value)
            .map_err(not_a_spec)?
            .argv()
            .map_err(|e| format!("CATWALK_LAUNCH refused: {e}"))?,
    };
    if argv.first().is_none_or(String::is_empty) {
        return Err("argv must name a program".to_string());
    }
    if argv.len() > MAX_ARGS
        || argv
            .iter()
            .any(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
    {
        return Err(format!("argv must have at most {MAX_ARGS} elements of at most {MAX_ARG_LEN} bytes, without NUL"));
    }
    Ok(Launch { argv })
}

/// The identity every MCP server runs under, when it is not the runner's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildUser {
    pub uid: u32,
    pub gid: u32,
    /// The child's `HOME` and working directory.
    pub home: Option<PathBuf>,
}

impl ChildUser {
    /// `CATWALK_CHILD_UID`, `CATWALK_CHILD_GID`, `CATWALK_CHILD_HOME`: both ids or neither.
    pub fn from_env(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let id = |name: &str| -> Result<Option<u32>, String> {
            get(name)
                .map(|v| match v.trim().parse::<u32>() {
                    Ok(0) => Err(format!(
                        "{name} must not be 0 (root): the point is a different user"
                    )),
                    Ok(n) => Ok(n),
                    Err(_) => Err(format!("{name} must be a numeric id")),
                })
                .transpose()
        };
        let home = get("CATWALK_CHILD_HOME").map(PathBuf::from);
        match (id("CATWALK_CHILD_UID")?, id("CATWALK_CHILD_GID")?) {
            (Some(uid), Some(gid)) => Ok(Some(Self { uid, gid, home })),
            (None, None) if home.is_none() => Ok(None),
            (None, None) => {
                Err("CATWALK_CHILD_HOME needs CATWALK_CHILD_UID and CATWALK_CHILD_GID".into())
            }
            _ => Err("set both CATWALK_CHILD_UID and CATWALK_CHILD_GID, or neither".into()),
        }
    }

    /// A process running as `euid` / `egid` can start children as this user: it is root,
    /// or already is this user.
    pub fn check_switch(&self, euid: u32, egid: u32) -> Result<(), String> {
        if euid == 0 || (euid == self.uid && egid == self.gid) {
            Ok(())
        } else {
            Err(format!(
                "CATWALK_CHILD_UID={} is set but the runner runs as uid {euid}, not root, so it \
                 cannot start the MCP server as another user; run the runner as root or unset \
                 CATWALK_CHILD_UID / CATWALK_CHILD_GID",
                self.uid
            ))
        }
    }
}

pub fn is_runner_setting(name: &str) -> bool {
    name.starts_with(RUNNER_ENV_PREFIX) || RUNNER_ENV_EXACT.contains(&name)
}

/// The child's environment: everything but the runner's own settings.
pub fn child_env(all: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    all.filter(|(k, _)| !is_runner_setting(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_become_argv_with_the_version_pinned() {
        let l = parse(r#"{"runtime":"npm","package":"@modelcontextprotocol/server-everything","version":"2026.8.31","args":["stdio"]}"#).unwrap();
        assert_eq!(
            l.argv,
            [
                "npx",
                "-y",
                "--",
                "@modelcontextprotocol/server-everything@2026.8.31",
                "stdio"
            ]
        );
        let p = parse(r#"{"runtime":"python","package":"mcp-server-fetch"}"#).unwrap();
        assert_eq!(p.argv, ["uvx", "--", "mcp-server-fetch"]);
        let a = parse(r#"{"argv":["node","server.js"]}"#).unwrap();
        assert_eq!(a.argv, ["node", "server.js"]);
    }

    #[test]
    fn a_hostile_package_is_refused_not_run() {
        for hostile in [
            "x; rm -rf / $(id) `whoami` && echo pwned",
            "-c",
            "https://evil.example/x.tgz",
            "npm:other@1",
            "github:x/y",
            "file:..",
            "git+ssh://git@github.com/x/y.git",
            "../x",
        ] {
            for runtime in ["npm", "python"] {
                let spec = serde_json::json!({"runtime": runtime, "package": hostile});
                let err = parse(&spec.to_string()).unwrap_err();
                assert!(err.contains("package name"), "{runtime} {hostile}: {err}");
            }
        }
        let version = serde_json::json!({"runtime": "npm", "package": "x", "version": "^1.0"});
        assert!(parse(&version.to_string()).unwrap_err().contains("version"));
    }

    #[test]
    fn shell_metacharacters_in_args_stay_inside_one_argument() {
        let hostile = "x; rm -rf / $(id) `whoami` && echo pwned";
        let l = parse(
            &serde_json::json!({"runtime": "npm", "package": "x", "args": [hostile, "-c"]})
                .to_string(),
        )
        .unwrap();
        assert_eq!(l.argv, ["npx", "-y", "--", "x", hostile, "-c"]);
    }

    #[test]
    fn malformed_specs_are_refused_with_a_reason() {
        for bad in [
            "not json",
            r#"{"runtime":"npm"}"#,
            r#"{"runtime":"ruby","package":"x"}"#,
            r#"{"runtime":"npm","package":""}"#,
            r#"{"argv":[]}"#,
            r#"{"argv":[""]}"#,
            r#"{"argv":["a"],"runtime":"npm","package":"x"}"#,
            r#"{"runtime":"npm","package":"x","shell":"sh -c"}"#,
            r#"{"argv":["a\u0000b"]}"#,
            r#"{"runtime":"npm","package":"x","args":["a\u0000b"]}"#,
            r#"[]"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_child_user_needs_both_ids_and_never_root() {
        assert_eq!(ChildUser::from_env(&vars(&[])), Ok(None));
        assert_eq!(
            ChildUser::from_env(&vars(&[
                ("CATWALK_CHILD_UID", "10001"),
                ("CATWALK_CHILD_GID", "10001"),
                ("CATWALK_CHILD_HOME", "/home/mcp")
            ])),
            Ok(Some(ChildUser {
                uid: 10001,
                gid: 10001,
                home: Some("/home/mcp".into())
            }))
        );
        for (bad, names) in [
            (vec![("CATWALK_CHILD_UID", "10001")], "CATWALK_CHILD_GID"),
            (vec![("CATWALK_CHILD_GID", "10001")], "CATWALK_CHILD_UID"),
            (
                vec![("CATWALK_CHILD_HOME", "/home/mcp")],
                "CATWALK_CHILD_UID",
            ),
            (
                vec![("CATWALK_CHILD_UID", "0"), ("CATWALK_CHILD_GID", "1")],
                "root",
            ),
            (
                vec![("CATWALK_CHILD_UID", "mcp"), ("CATWALK_CHILD_GID", "1")],
                "numeric",
            ),
        ] {
            let err = ChildUser::from_env(&vars(&bad)).unwrap_err();
            assert!(err.contains(names), "{bad:?}: {err}");
        }
    }

    #[test]
    fn only_root_or_the_user_itself_can_start_the_child_as_that_user() {
        let user = ChildUser {
            uid: 65534,
            gid: 65534,
            home: None,
        };
        assert!(user.check_switch(0, 0).is_ok());
        assert!(user.check_switch(65534, 65534).is_ok());
        let err = user.check_switch(1000, 1000).unwrap_err();
        assert!(err.contains("not root") && err.contains("CATWALK_CHILD_UID"));
        assert!(user.check_switch(65534, 1000).is_err());
    }

    #[test]
    fn runner_settings_never_reach_the_child() {
        let env = vec![
            ("CATWALK_UPSTREAM_SECRET".to_string(), "s".to_string()),
            ("PORT".to_string(), "8080".to_string()),
            ("GITHUB_TOKEN".to_string(), "ghp_x".to_string()),
            ("PATH".to_string(), "/usr/bin".to_string()),
        ];
        let names: Vec<String> = child_env(env.into_iter())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(names, ["GITHUB_TOKEN", "PATH"]);
    }
}
