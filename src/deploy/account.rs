//! Whose Fly account a deployment's machines live in: the operator's (`FLY_APP`,
//! `FLY_API_TOKEN`) or the owner's own (a token and app from their settings), chosen once
//! at creation and recorded with the deployment (`deployments.config.account`, the token
//! sealed in `machine_accounts`). Choosing and reading back the account over D1 is
//! `lifecycle::live::D1Accounts`; the rules are here.

use url::Url;

use crate::config::Config;
use crate::crypto::secret::Secret;
use crate::deploy::fly_client::Fly;
use crate::error::{AppError, AppResult};
use crate::outbound::Upstream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Account {
    Operator,
    User,
}

/// One Fly account, ready to call: API base, app and token.
pub struct Target {
    pub base: Url,
    pub app: String,
    token: Secret,
    pub account: Account,
}

impl Target {
    pub fn new(base: Url, app: String, token: Secret, account: Account) -> Self {
        Self {
            base,
            app,
            token,
            account,
        }
    }

    pub fn fly<'a, U: Upstream>(&'a self, up: &'a U) -> Fly<'a, U> {
        Fly {
            up,
            base: &self.base,
            app: &self.app,
            token: self.token.expose(),
        }
    }

    pub fn token(&self) -> &str {
        self.token.expose()
    }

    /// The same account and app (a token rotated meanwhile is still the same account).
    pub fn same_place(&self, other: &Target) -> bool {
        self.account == other.account && self.app == other.app
    }
}

/// The operator's Fly account (`FLY_APP`, `FLY_API_TOKEN`), or the 503 naming what is
/// missing.
pub fn operator(config: &Config) -> AppResult<Target> {
    match (&config.fly.app, &config.fly.token) {
        (Some(app), Some(token)) => Ok(Target::new(
            config.fly.api_base.clone(),
            app.clone(),
            token.clone(),
            Account::Operator,
        )),
        (app, token) => Err(AppError::NotConfigured {
            missing: [
                ("FLY_APP", app.is_none()),
                ("FLY_API_TOKEN", token.is_none()),
            ]
            .into_iter()
            .filter(|(_, absent)| *absent)
            .map(|(name, _)| name.to_string())
            .collect(),
        }),
    }
}
