//! What an analysis produces: a launch plan (package, runtime, arguments, environment)
//! plus what is known of the server's tools, resources and prompts. Readers each produce a
//! [`Findings`]; the merge (a later step) turns them into one plan.

use serde::Serialize;

use crate::analysis::source::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub required: bool,
    pub secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A package one reader believes the server is published as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRef {
    pub registry: Registry,
    pub name: String,
    pub version: Option<String>,
    /// Extra launch arguments after the package.
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    pub packages: Vec<PackageRef>,
    pub env_vars: Vec<EnvVar>,
    pub warnings: Vec<String>,
}

/// Names that hold credentials by convention. Used only when a source does not say.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "_PAT",
        "ACCESS_KEY",
        "AUTH",
    ]
    .iter()
    .any(|m| n.contains(m))
}

/// An environment variable name we will pass to a machine: POSIX-portable and bounded.
pub fn env_name_ok(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl Findings {
    /// Adds an env var, keeping the first description seen and the strictest flags.
    pub fn add_env(&mut self, var: EnvVar) {
        if !env_name_ok(&var.name) {
            self.warnings
                .push("Ignored an environment variable with an invalid name.".to_string());
            return;
        }
        match self.env_vars.iter_mut().find(|v| v.name == var.name) {
            Some(existing) => {
                existing.required |= var.required;
                existing.secret |= var.secret;
                if existing.description.is_none() {
                    existing.description = var.description;
                }
                if existing.default.is_none() {
                    existing.default = var.default;
                }
            }
            None => self.env_vars.push(var),
        }
    }

    pub fn add_package(&mut self, p: PackageRef) {
        if !self
            .packages
            .iter()
            .any(|q| q.registry == p.registry && q.name == p.name)
        {
            self.packages.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_are_recognised_and_others_are_not() {
        for s in [
            "GITHUB_PERSONAL_ACCESS_TOKEN",
            "OPENAI_API_KEY",
            "DB_PASSWORD",
            "SLACK_BOT_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(looks_secret(s), "{s}");
        }
        for s in ["LOG_LEVEL", "PORT", "BASE_URL", "ALLOWED_DIRECTORIES"] {
            assert!(!looks_secret(s), "{s}");
        }
    }

    #[test]
    fn env_names_are_posix_and_merges_keep_the_strictest_flags() {
        assert!(env_name_ok("GITHUB_TOKEN") && env_name_ok("_X1"));
        for bad in ["", "1X", "A-B", "A B", "A=B", "$(id)", "PATH;rm"] {
            assert!(!env_name_ok(bad), "{bad}");
        }
        let mut f = Findings::default();
        f.add_env(EnvVar {
            name: "K".into(),
            description: None,
            required: false,
            secret: true,
            default: None,
        });
        f.add_env(EnvVar {
            name: "K".into(),
            description: Some("d".into()),
            required: true,
            secret: false,
            default: None,
        });
        f.add_env(EnvVar {
            name: "bad name".into(),
            description: None,
            required: true,
            secret: false,
            default: None,
        });
        assert_eq!(f.env_vars.len(), 1);
        let k = &f.env_vars[0];
        assert!(k.required && k.secret && k.description.as_deref() == Some("d"));
        assert_eq!(f.warnings.len(), 1);
    }
}
