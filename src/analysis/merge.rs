//! Merges what the readers found into one plan. The manifests are the ground truth for the
//! package (server.json, then package.json / pyproject.toml, then README snippets); the LLM
//! may add descriptions, variables and tools, but a package it names that the manifests
//! contradict is dropped with a warning. With no key, the manifest readers alone decide.

use serde::Serialize;

use crate::analysis::llm::{LlmFindings, Named};
use crate::analysis::plan::{EnvVar, Findings, PackageRef};
use crate::analysis::source::{version_ok, Registry};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub package: String,
    pub registry: Registry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub runtime: &'static str,
    pub args: Vec<String>,
    pub env_vars: Vec<EnvVar>,
    pub tools: Vec<Named>,
    pub resources: Vec<Named>,
    pub prompts: Vec<Named>,
    pub transport: &'static str,
    pub warnings: Vec<String>,
    pub analyzer: Vec<&'static str>,
}

/// Reader outputs in order of authority.
#[derive(Debug, Default)]
pub struct Inputs {
    /// The package the user named (`npm:x`), when the source is a package: it wins outright.
    pub requested: Option<PackageRef>,
    pub server_json: Option<Findings>,
    pub package_manifest: Option<Findings>,
    /// smithery.yaml: variables only (its package comes from the other manifests).
    pub smithery: Option<Findings>,
    pub readme: Option<Findings>,
    pub registry_used: bool,
    pub llm: Option<LlmFindings>,
}

pub fn merge(inputs: Inputs) -> Result<Plan, String> {
    let mut warnings = Vec::new();
    let mut analyzer = Vec::new();
    let manifests: Vec<&Findings> = [
        &inputs.server_json,
        &inputs.package_manifest,
        &inputs.readme,
    ]
    .into_iter()
    .flatten()
    .collect();
    if !manifests.is_empty() {
        analyzer.push("manifest");
    }
    if inputs.registry_used {
        analyzer.push("registry");
    }
    for f in &manifests {
        warnings.extend(f.warnings.iter().cloned());
    }
    let grounded: Option<PackageRef> = inputs
        .requested
        .clone()
        .or_else(|| manifests.iter().find_map(|f| f.packages.first().cloned()));

    let llm_package = inputs
        .llm
        .as_ref()
        .and_then(|l| l.findings.packages.first().cloned());
    if let Some(l) = &inputs.llm {
        analyzer.push("llm");
        warnings.extend(l.findings.warnings.iter().cloned());
    }
    let mut chosen = match (grounded, llm_package) {
        (Some(g), Some(l)) if g.registry != l.registry || g.name != l.name => {
            warnings.push(format!(
                "The LLM suggested the package {}, which the manifests contradict; ignored.",
                l.name
            ));
            g
        }
        (Some(g), _) => g,
        (None, Some(l)) => {
            warnings.push(
                "Only the LLM named the package; it is checked against the registry before use."
                    .into(),
            );
            l
        }
        (None, None) => {
            return Err("No npm or PyPI package could be determined from the repository.".into())
        }
    };
    // A version from a repository is only a hint: anything but a plain version or tag (a
    // URL, a path, `npm:other@1`, `github:x/y`, a range) would make npx/uvx install
    // something other than the package the plan names. The pipeline then confirms the
    // version on the registry before the plan carries it.
    if chosen.version.as_deref().is_some_and(|v| !version_ok(v)) {
        warnings.push(
            "The repository declares a version that is not a published version number or tag; it was ignored and the latest published version is used."
                .into(),
        );
        chosen.version = None;
    }
    // Arguments: the requested/first manifest's, else what a README snippet or LLM gave.
    if chosen.args.is_empty() {
        chosen.args = manifests
            .iter()
            .flat_map(|f| f.packages.iter())
            .find(|p| p.registry == chosen.registry && p.name == chosen.name && !p.args.is_empty())
            .map(|p| p.args.clone())
            .unwrap_or_default();
    }

    let mut env = Findings::default();
    for f in manifests
        .iter()
        .copied()
        .chain(inputs.llm.as_ref().map(|l| &l.findings))
    {
        for v in &f.env_vars {
            env.add_env(v.clone());
        }
    }
    Ok(Plan {
        runtime: match chosen.registry {
            Registry::Npm => "npm",
            Registry::Pypi => "python",
        },
        package: chosen.name,
        registry: chosen.registry,
        version: chosen.version,
        args: chosen.args,
        env_vars: env.env_vars,
        tools: inputs
            .llm
            .as_ref()
            .map(|l| l.tools.clone())
            .unwrap_or_default(),
        resources: inputs
            .llm
            .as_ref()
            .map(|l| l.resources.clone())
            .unwrap_or_default(),
        prompts: inputs.llm.map(|l| l.prompts).unwrap_or_default(),
        transport: "stdio",
        warnings,
        analyzer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{llm, manifest, readme};
    use serde_json::json;

    fn pkg(name: &str) -> PackageRef {
        PackageRef {
            registry: Registry::Npm,
            name: name.into(),
            version: None,
            args: vec![],
        }
    }

    #[test]
    fn without_an_llm_the_manifests_make_a_usable_plan() {
        let readme = readme::read(
            "```json\n{\"mcpServers\": {\"w\": {\"command\": \"npx\", \"args\": [\"-y\", \"@acme/w\", \"stdio\"], \"env\": {\"ACME_TOKEN\": \"<token>\"}}}}\n```",
        );
        let manifest = manifest::package_json(&json!({"name": "@acme/w", "version": "1.0.0", "bin": "x.js", "dependencies": {"@modelcontextprotocol/sdk": "1"}}).to_string());
        let plan = merge(Inputs {
            package_manifest: Some(manifest),
            readme: Some(readme),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (plan.package.as_str(), plan.runtime, plan.version.as_deref()),
            ("@acme/w", "npm", Some("1.0.0"))
        );
        assert_eq!(
            plan.args,
            ["stdio"],
            "arguments from the README snippet of the same package"
        );
        assert_eq!(plan.env_vars[0].name, "ACME_TOKEN");
        assert!(plan.env_vars[0].required && plan.env_vars[0].secret);
        assert_eq!(plan.analyzer, ["manifest"]);
    }

    #[test]
    fn an_llm_package_that_contradicts_the_manifests_is_dropped() {
        let manifest =
            manifest::package_json(&json!({"name": "@acme/real", "bin": "x"}).to_string());
        let llm = llm::parse_answer(r#"{"package": {"registry": "npm", "name": "@evil/invented"}, "env_vars": [{"name": "EXTRA_KEY", "description": "from the LLM", "required": true}], "tools": [{"name": "forecast"}]}"#).unwrap();
        let plan = merge(Inputs {
            package_manifest: Some(manifest),
            llm: Some(llm),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plan.package, "@acme/real");
        assert!(plan.warnings.iter().any(|w| w.contains("@evil/invented")));
        assert_eq!(
            plan.env_vars[0].description.as_deref(),
            Some("from the LLM"),
            "the LLM may add variables"
        );
        assert_eq!(plan.tools[0].name, "forecast");
        assert_eq!(plan.analyzer, ["manifest", "llm"]);
    }

    #[test]
    fn a_manifest_version_that_is_not_a_plain_version_never_reaches_the_plan() {
        for hostile in [
            "https://evil.example/x.tgz",
            "npm:other@1",
            "github:x/y",
            "file:../x",
            "git+ssh://git@evil.example/x.git",
            "-c",
            "^1.2.0",
            "1.0.0 || 2",
        ] {
            let manifest = manifest::package_json(
                &json!({"name": "@acme/real", "version": hostile, "bin": "x"}).to_string(),
            );
            let plan = merge(Inputs {
                package_manifest: Some(manifest),
                ..Default::default()
            })
            .unwrap();
            assert_eq!(plan.package, "@acme/real");
            assert_eq!(plan.version, None, "{hostile} reached the plan");
            assert!(
                plan.warnings
                    .iter()
                    .any(|w| w.contains("not a published version")),
                "{hostile}: {:?}",
                plan.warnings
            );
        }
        let readme = readme::read(
            "```json\n{\"mcpServers\": {\"w\": {\"command\": \"npx\", \"args\": [\"-y\", \"@acme/w@file:../../x\"]}}}\n```",
        );
        let plan = merge(Inputs {
            readme: Some(readme),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (plan.package.as_str(), plan.version),
            ("@acme/w", None),
            "a README snippet's version obeys the same grammar"
        );
    }

    #[test]
    fn a_requested_package_wins_and_nothing_at_all_is_an_error() {
        let plan = merge(Inputs {
            requested: Some(pkg("@acme/asked")),
            readme: Some(readme::read("")),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plan.package, "@acme/asked");
        assert!(merge(Inputs::default()).is_err());
        let llm_only = llm::parse_answer(r#"{"package": {"registry": "pypi", "name": "Some_Server"}, "env_vars": [], "tools": []}"#).unwrap();
        let plan = merge(Inputs {
            llm: Some(llm_only),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (plan.package.as_str(), plan.runtime),
            ("some-server", "python")
        );
        assert!(plan.warnings.iter().any(|w| w.contains("Only the LLM")));
    }
}
