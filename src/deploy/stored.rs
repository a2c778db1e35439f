//! `deployments.config`, typed: what a deployment keeps besides its columns — the launch
//! plan, the requested region, the Fly account its machine lives in (app and whose) and
//! the name as typed. Never secrets. Parsed once where the row is read (a text that is
//! not JSON is an error there); fields added over time are optional, and the legacy
//! rules for rows stored before them live here ([`StoredConfig::account_of`],
//! [`StoredConfig::display`]). The ingress URL derives from it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::deploy::account::{Account, Target};
use crate::deploy::request::Launch;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredConfig {
    /// `None` when the stored plan does not read as one (never run: see [`Self::launch`]).
    #[serde(default, deserialize_with = "lenient")]
    pub launch: Option<Launch>,
    #[serde(default, deserialize_with = "lenient")]
    pub region: Option<String>,
    /// The Fly app the machine lives in (absent on the oldest rows: the operator's).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub app: Option<String>,
    /// Whose account (absent on rows from before it was recorded: see [`Self::account_of`]).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub account: Option<Account>,
    /// The name as typed (absent on rows from before: the slug).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
}

/// A field of the wrong shape reads as absent, as the untyped reader always treated it.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

/// `deserialize_with` for the TEXT column that holds the JSON.
pub fn from_text<'de, D: Deserializer<'de>>(d: D) -> Result<StoredConfig, D::Error> {
    let text = String::deserialize(d)?;
    serde_json::from_str(&text)
        .map_err(|_| serde::de::Error::custom("deployments.config is not a JSON object"))
}

impl StoredConfig {
    /// A new deployment's config, in the account chosen for it.
    pub fn new(launch: Launch, region: Option<String>, target: &Target, display: &str) -> Self {
        Self {
            launch: Some(launch),
            region,
            app: Some(target.app.clone()),
            account: Some(target.account),
            display_name: Some(display.to_string()),
        }
    }

    /// The same deployment moved to another account (before it is created again there).
    pub fn rehomed(&self, target: &Target) -> Self {
        Self {
            app: Some(target.app.clone()),
            account: Some(target.account),
            ..self.clone()
        }
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// The plan to run, if it is one: a plan stored before the grammar was enforced is
    /// refused, never run.
    pub fn launch(&self) -> Option<&Launch> {
        self.launch.as_ref().filter(|l| l.launchable())
    }

    /// The name people see: as typed, else (older rows) the slug.
    pub fn display(&self, slug: &str) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| slug.to_string())
    }

    /// The recorded account: (kind, app). Rows stored before the kind was recorded count
    /// as the operator's when their app is the operator's (or absent).
    pub fn account_of(&self, config: &Config) -> (Account, Option<&str>) {
        let app = self.app.as_deref();
        let kind = self
            .account
            .unwrap_or(if app.is_none() || app == config.fly.app.as_deref() {
                Account::Operator
            } else {
                Account::User
            });
        (kind, app)
    }

    /// The runner's MCP endpoint behind the Fly proxy of the deployment's app: the app's
    /// own `https://{app}.fly.dev`, unless `FLY_INGRESS_BASE` names one ingress for every
    /// app (the local machines service, or a proxy of the operator's that routes by app
    /// and `fly-force-instance-id`).
    pub fn ingress_url(&self, config: &Config) -> String {
        let base = match (
            &config.fly.ingress_base,
            self.app.as_deref().or(config.fly.app.as_deref()),
        ) {
            (Some(b), _) => b.as_str().trim_end_matches('/').to_string(),
            (None, Some(a)) => format!("https://{a}.fly.dev"),
            (None, None) => "https://invalid.fly.dev".to_string(),
        };
        format!("{base}/mcp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn read(text: &str) -> StoredConfig {
        #[derive(Deserialize)]
        struct Row {
            #[serde(deserialize_with = "from_text")]
            config: StoredConfig,
        }
        serde_json::from_value::<Row>(serde_json::json!({ "config": text }))
            .expect("reads")
            .config
    }

    #[test]
    fn each_app_is_reached_at_its_own_fly_dev_unless_one_ingress_serves_all() {
        let prod = cfg(&[("FLY_APP", "catwalk-machines")]);
        assert_eq!(
            read(r#"{"app": "catwalk-machines"}"#).ingress_url(&prod),
            "https://catwalk-machines.fly.dev/mcp"
        );
        assert_eq!(
            read(r#"{"app": "personal"}"#).ingress_url(&prod),
            "https://personal.fly.dev/mcp"
        );
        assert_eq!(
            read("{}").ingress_url(&prod),
            "https://catwalk-machines.fly.dev/mcp"
        );
        let local = cfg(&[
            ("FLY_APP", "catwalk-test"),
            ("FLY_INGRESS_BASE", "http://127.0.0.1:4280/"),
        ]);
        assert_eq!(
            read(r#"{"app": "personal"}"#).ingress_url(&local),
            "http://127.0.0.1:4280/mcp"
        );
    }

    #[test]
    fn rows_from_before_each_field_still_read_by_the_legacy_rules() {
        let prod = cfg(&[("FLY_APP", "catwalk-machines")]);
        // No account kind: the operator's app (or none) is the operator's, another app
        // the owner's.
        let oldest = read(r#"{"launch": null, "region": null}"#);
        assert_eq!(oldest.account_of(&prod), (Account::Operator, None));
        assert_eq!(oldest.display("my-slug"), "my-slug");
        assert_eq!(
            read(r#"{"app": "catwalk-machines"}"#).account_of(&prod),
            (Account::Operator, Some("catwalk-machines"))
        );
        assert_eq!(
            read(r#"{"app": "personal"}"#).account_of(&prod),
            (Account::User, Some("personal"))
        );
        // A recorded kind wins; a malformed one reads as absent.
        assert_eq!(
            read(r#"{"app": "personal", "account": "operator"}"#).account_of(&prod),
            (Account::Operator, Some("personal"))
        );
        assert_eq!(
            read(r#"{"app": "personal", "account": 7, "display_name": 3}"#).account_of(&prod),
            (Account::User, Some("personal"))
        );
        assert_eq!(
            read(r#"{"display_name": "My Clock"}"#).display("my-clock"),
            "My Clock"
        );
        // A plan that does not read is no plan, never an error while listing.
        assert_eq!(read(r#"{"launch": {"nonsense": true}}"#).launch(), None);
    }

    #[test]
    fn a_config_that_is_not_json_is_an_error_where_the_row_is_read() {
        #[derive(Debug, Deserialize)]
        struct Row {
            #[serde(deserialize_with = "from_text")]
            _config: StoredConfig,
        }
        let r = serde_json::from_value::<Row>(serde_json::json!({ "_config": "not json" }));
        assert!(r.is_err());
    }

    #[test]
    fn a_new_config_writes_the_shape_docs_storage_md_names() {
        let launch: Launch = serde_json::from_value(serde_json::json!({
            "runtime": "npm", "package": "@modelcontextprotocol/server-everything",
            "args": [], "env_vars": []
        }))
        .unwrap_or_else(|e| panic!("a launch: {e}"));
        let target = Target::new(
            url::Url::parse("https://api.machines.dev").expect("url"),
            "personal".into(),
            crate::crypto::secret::Secret::new("t"),
            Account::User,
        );
        let c = StoredConfig::new(launch, Some("fra".into()), &target, "My Server");
        let v: Value = serde_json::from_str(&c.to_text()).expect("json");
        for key in ["launch", "region", "app", "account", "display_name"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["account"], "user");
        assert_eq!(read(&c.to_text()), c, "what is written reads back the same");
    }
}
