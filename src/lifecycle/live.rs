//! The lifecycle's ports bound to the Worker: the rows in D1 (`store::deployments::
//! D1Deployments`), the account choice over the owner's settings ([`D1Accounts`]), the Fly
//! Machines API over `fetch`, the runner's `/health` through the machine ingress
//! ([`FetchProbe`]), and the `Deployer` object that runs a creation in its alarm.

use serde_json::json;
use worker::{D1Database, Env};

use crate::config::Config;
use crate::crypto::keyring;
use crate::crypto::secret::Secret;
use crate::deploy::account::{self, Account, Target};
use crate::deploy::readiness::{self, Readiness};
use crate::deploy::row::Deployment;
use crate::error::{AppError, AppResult};
use crate::gateway::link::MachineLink;
use crate::lifecycle::ports::{Accounts, FlyPlatform, Ports, Probe};
use crate::platform::env;
use crate::platform::log::Logger;
use crate::platform::upstream::FetchUpstream;
use crate::store::deployments::D1Deployments;
use crate::store::sealed::open_fly_token_of;
use crate::store::settings;
use crate::time::now_ms;

/// The accounts as D1 records them: the owner's settings and the sealed token recorded
/// with each deployment in an owner's own account.
pub struct D1Accounts<'a> {
    pub db: D1Database,
    pub config: &'a Config,
    pub log: Logger,
}

impl D1Accounts<'_> {
    /// The owner's own Fly token and app from settings, when both are set.
    async fn own(&self, owner_id: &str) -> AppResult<Option<Target>> {
        let Some(ring) = &self.config.encryption_keys else {
            return Ok(None);
        };
        let token = settings::secret(&self.db, ring, owner_id, settings::FLY_API_TOKEN).await?;
        let app = settings::value(&self.db, owner_id, settings::FLY_APP).await?;
        Ok(match (token, app) {
            (Some(token), Some(app)) => Some(Target::new(
                self.config.fly.api_base.clone(),
                app,
                Secret::new(token),
                Account::User,
            )),
            _ => None,
        })
    }
}

impl Accounts for D1Accounts<'_> {
    /// Always the account the deployment was created in: stop, start, credential updates,
    /// teardown, reconcile and re-provisioning all come here. For the owner's own account,
    /// their current token is used while their settings still name the same app (they may
    /// have rotated it), else the token recorded with the deployment.
    async fn of(&self, d: &Deployment) -> AppResult<Target> {
        let (kind, app) = d.config.account_of(self.config);
        match kind {
            Account::Operator => {
                let mut t = account::operator(self.config)?;
                if let Some(app) = app {
                    t.app = app.to_string();
                }
                Ok(t)
            }
            Account::User => {
                let app = app.ok_or_else(|| {
                    AppError::internal(format!("deployment {}: no recorded Fly app", d.id))
                })?;
                if let Some(current) = self.own(&d.owner_id).await? {
                    if current.app == app {
                        return Ok(current);
                    }
                }
                let ring = keyring::required(self.config.encryption_keys.as_ref())?;
                let token = open_fly_token_of(&self.db, ring, &self.log, &d.id).await?;
                Ok(Target::new(
                    self.config.fly.api_base.clone(),
                    app.to_string(),
                    Secret::new(token),
                    Account::User,
                ))
            }
        }
    }

    async fn for_new(&self, owner_id: &str) -> AppResult<Target> {
        match self.own(owner_id).await? {
            Some(t) => Ok(t),
            None => account::operator(self.config),
        }
    }

    fn operator(&self) -> AppResult<Target> {
        account::operator(self.config)
    }
}

/// Polls the runner's `/health` through the machine ingress.
pub struct FetchProbe;

impl Probe for FetchProbe {
    /// Until it is `ready` (Ok) or `failed`, or `timeout_secs` pass; the error is the
    /// message the person sees: the runner's reason and the server's last stderr lines
    /// (masked by the runner; the caller's redactor masks again).
    async fn ready(&self, link: &MachineLink, timeout_secs: u32) -> Result<(), String> {
        let deadline = now_ms() + i64::from(timeout_secs) * 1000;
        loop {
            let look = link
                .get_json("/health", std::time::Duration::from_secs(10))
                .await;
            if let Ok((status, body)) = &look {
                match readiness::parse_health(*status, body) {
                    Readiness::Ready => return Ok(()),
                    Readiness::Failed(reason) => {
                        let tail = match link
                            .get_json("/logs?lines=50", std::time::Duration::from_secs(10))
                            .await
                        {
                            Ok((200, logs)) => readiness::stderr_tail(&logs, readiness::TAIL_LINES),
                            _ => Vec::new(),
                        };
                        return Err(readiness::failure_message(&reason, &tail));
                    }
                    Readiness::Starting => {}
                }
            }
            if now_ms() >= deadline {
                return Err(format!(
                    "The MCP server did not become ready within {timeout_secs} seconds; restart to try again, or read its logs."
                ));
            }
            worker::Delay::from(std::time::Duration::from_millis(readiness::POLL_MS)).await;
        }
    }
}

/// The production ports, owned for one request or alarm.
pub struct Live<'a> {
    pub rows: D1Deployments<'a>,
    pub accounts: D1Accounts<'a>,
    pub platform: FlyPlatform<FetchUpstream>,
    pub probe: FetchProbe,
    pub config: &'a Config,
}

impl<'a> Live<'a> {
    pub fn new(worker_env: &'a Env, config: &'a Config, log: &Logger) -> AppResult<Self> {
        Ok(Self {
            rows: D1Deployments {
                env: worker_env,
                db: env::db(worker_env)?,
                config,
                log: log.clone(),
            },
            accounts: D1Accounts {
                db: env::db(worker_env)?,
                config,
                log: log.clone(),
            },
            platform: FlyPlatform(FetchUpstream::default()),
            probe: FetchProbe,
            config,
        })
    }

    #[allow(clippy::type_complexity)]
    pub fn ports(
        &self,
    ) -> Ports<'_, D1Deployments<'a>, D1Accounts<'a>, FlyPlatform<FetchUpstream>, FetchProbe> {
        Ports {
            rows: &self.rows,
            accounts: &self.accounts,
            platform: &self.platform,
            probe: &self.probe,
            config: self.config,
        }
    }
}

/// Asks the deployment's `Deployer` object to run `provision` in its alarm.
pub async fn schedule_provision(worker_env: &Env, deployment_id: &str) -> AppResult<()> {
    let mut answer = env::post_to_object(
        &env::deployers(worker_env)?,
        deployment_id,
        "/provision",
        Some(json!({ "deployment_id": deployment_id }).to_string()),
    )
    .await?;
    if answer.status_code() != 202 {
        let body = answer.text().await.unwrap_or_default();
        return Err(AppError::internal(format!(
            "deployer refused: {} {body}",
            answer.status_code()
        )));
    }
    Ok(())
}
