//! The launch spec: what MCP server to start and with which environment.
//!
//! `CATWALK_LAUNCH` holds JSON, one of
//! - `{"runtime": "npm", "package": "@scope/name", "version"?: "1.2.3", "args"?: [...]}`
//!   → `npx -y @scope/name@1.2.3 args…`
//! - `{"runtime": "python", "package": "name", "version"?: "1.2.3", "args"?: [...]}`
//!   → `uvx name@1.2.3 args…`
//! - `{"argv": ["node", "server.js", …]}` → exactly that.
//!
//! The result is an argv handed to `exec` — never a shell string — so a package name full of
//! `;`, `$()`, backticks or spaces is one (failing) argument, nothing more. The child's
//! environment is the runner's minus every runner setting (`CATWALK_*`, `PORT`): the
//! credentials the deployment set arrive untouched, the upstream secret never does.

use serde::Deserialize;

/// Settings that belong to the runner and must not reach the MCP server.
pub const RUNNER_ENV_PREFIX: &str = "CATWALK_";
const RUNNER_ENV_EXACT: &[&str] = &["PORT"];
/// Longest argv element and count we accept; a launch spec is small by nature.
const MAX_ARG_LEN: usize = 4096;
const MAX_ARGS: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    runtime: Option<String>,
    package: Option<String>,
    version: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    argv: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub argv: Vec<String>,
}

pub fn parse(json: &str) -> Result<Launch, String> {
    let raw: Raw = serde_json::from_str(json)
        .map_err(|e| format!("CATWALK_LAUNCH is not a launch spec: {e}"))?;
    let argv = match (&raw.argv, raw.runtime.as_deref()) {
        (Some(argv), None)
            if raw.package.is_none() && raw.version.is_none() && raw.args.is_empty() =>
        {
            argv.clone()
        }
        (None, Some(runtime)) => {
            let package = raw
                .package
                .as_deref()
                .filter(|p| !p.is_empty())
                .ok_or("a runtime launch needs a package")?;
            let spec = match raw.version.as_deref() {
                Some(v) if !v.is_empty() => format!("{package}@{v}"),
                _ => package.to_string(),
            };
            let mut argv = match runtime {
                "npm" => vec!["npx".to_string(), "-y".to_string(), spec],
                "python" => vec!["uvx".to_string(), spec],
                other => return Err(format!("unknown runtime {other:?} (npm or python)")),
            };
            argv.extend(raw.args.iter().cloned());
            argv
        }
        _ => return Err("give either argv, or runtime + package (+ version, args)".to_string()),
    };
    if argv.is_empty() || argv[0].is_empty() {
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
                "@modelcontextprotocol/server-everything@2026.8.31",
                "stdio"
            ]
        );
        let p = parse(r#"{"runtime":"python","package":"mcp-server-fetch"}"#).unwrap();
        assert_eq!(p.argv, ["uvx", "mcp-server-fetch"]);
        let a = parse(r#"{"argv":["node","server.js"]}"#).unwrap();
        assert_eq!(a.argv, ["node", "server.js"]);
    }

    #[test]
    fn shell_metacharacters_stay_inside_one_argument() {
        let hostile = "x; rm -rf / $(id) `whoami` && echo pwned";
        let l =
            parse(&serde_json::json!({"runtime": "npm", "package": hostile}).to_string()).unwrap();
        assert_eq!(l.argv, ["npx", "-y", hostile]);
    }

    #[test]
    fn malformed_specs_are_refused_with_a_reason() {
        for bad in [
            "not json",
            r#"{"runtime":"npm"}"#,
            r#"{"runtime":"ruby","package":"x"}"#,
            r#"{"argv":[]}"#,
            r#"{"argv":[""]}"#,
            r#"{"argv":["a"],"runtime":"npm","package":"x"}"#,
            r#"{"runtime":"npm","package":"x","shell":"sh -c"}"#,
            r#"{"argv":["a\u0000b"]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
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
