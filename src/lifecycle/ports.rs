//! The small traits the lifecycle runs over, so its rules (no orphans, compare-and-set,
//! adopt rather than duplicate) are tested natively against in-memory fakes that can fail
//! on purpose. `async fn` without `Send`, as all our bindings; no `worker` type appears.
//! Production: `lifecycle::live` (D1, the Fly Machines API over `fetch`, the runner's
//! `/health` through the machine ingress).

use serde_json::Value;

use crate::config::Config;
use crate::crypto::vault::Sealed;
use crate::deploy::account::Target;
use crate::deploy::fly_client::{Fly, FlyError, Machine};
use crate::deploy::row::Deployment;
use crate::deploy::secrets::Secrets;
use crate::deploy::state::Status;
use crate::deploy::stored::StoredConfig;
use crate::error::AppResult;
use crate::gateway::link::MachineLink;
use crate::outbound::Upstream;

/// An audit row that goes with a write: `action` about the deployment, by its owner.
pub struct Audit<'a> {
    pub action: &'a str,
    pub metadata: Value,
}

/// One status change: compare-and-set from any of `from` to `to`, `error` replacing
/// `error_message` (None clears it), and the audit row written when it took effect.
pub struct Change<'a> {
    pub from: &'a [Status],
    pub to: Status,
    pub error: Option<&'a str>,
    pub audit: Option<Audit<'a>>,
}

impl<'a> Change<'a> {
    pub fn new(from: &'a [Status], to: Status) -> Self {
        Self {
            from,
            to,
            error: None,
            audit: None,
        }
    }

    pub fn error(mut self, message: &'a str) -> Self {
        self.error = Some(message);
        self
    }

    pub fn audit(mut self, action: &'a str, metadata: Value) -> Self {
        self.audit = Some(Audit { action, metadata });
        self
    }
}

/// The deployment rows and their sealed records. Every write that changes what the MCP
/// gateway caches (status, machine, account, secrets, the row's existence) tells the
/// gateway before it returns — the implementation does it, so no caller can forget.
#[allow(async_fn_in_trait)]
pub trait Rows {
    async fn get(&self, id: &str) -> AppResult<Option<Deployment>>;
    /// The only way a status changes: refuses (as an internal error) a `from → to` the
    /// state machine lacks, then compare-and-sets; false when the row was in none of
    /// `from` (or is gone).
    async fn transition(&self, d: &Deployment, change: Change<'_>) -> AppResult<bool>;
    /// Records the machine while the row is `pending`/`deploying`; false otherwise.
    async fn set_machine(&self, id: &str, machine_id: &str) -> AppResult<bool>;
    /// Forgets the machine of a `failed` row; false otherwise.
    async fn clear_machine(&self, id: &str) -> AppResult<bool>;
    /// Removes a `deleting` row and its sealed records; false when it was not deleting.
    async fn remove(&self, id: &str) -> AppResult<bool>;
    /// Moves the deployment to another account: stored config and sealed token together.
    async fn set_account(
        &self,
        id: &str,
        config: &StoredConfig,
        token: Option<&Sealed>,
    ) -> AppResult<()>;
    /// Both secrets, opened (and re-sealed under the current key when an old one sealed
    /// them).
    async fn secrets(&self, id: &str) -> AppResult<Secrets>;
    /// Replaces the sealed environment.
    async fn put_env(&self, id: &str, sealed: &Sealed) -> AppResult<()>;
    /// The new access-token digest and (when given) upstream secret, together; false when
    /// the row is being deleted or is not `owner`'s.
    async fn rotate_secrets(
        &self,
        owner: &str,
        id: &str,
        token_hash: &str,
        upstream: Option<&Sealed>,
    ) -> AppResult<bool>;
    /// An audit row about the deployment; a lost one is logged, never fatal.
    async fn audit(&self, d: &Deployment, audit: Audit<'_>);
}

/// Which Fly account a deployment's machines live in.
#[allow(async_fn_in_trait)]
pub trait Accounts {
    /// The account it was created in (never the owner's *current* settings).
    async fn of(&self, d: &Deployment) -> AppResult<Target>;
    /// Where a new deployment of `owner_id` goes: their own account, else the operator's.
    async fn for_new(&self, owner_id: &str) -> AppResult<Target>;
    /// The operator's account (where a deployment whose row is gone was created).
    fn operator(&self) -> AppResult<Target>;
}

/// The machines of one Fly account.
#[allow(async_fn_in_trait)]
pub trait Machines {
    /// Creates the deployment's machine, or adopts the one a earlier try made.
    async fn create(&self, deployment_id: &str, body: &Value) -> Result<Machine, FlyError>;
    async fn wait_started(&self, machine_id: &str, timeout_secs: u32) -> Result<(), FlyError>;
    /// Every machine of the deployment (and `known`, should the list miss it).
    async fn destroy_all(&self, deployment_id: &str, known: Option<&str>) -> Result<(), FlyError>;
    async fn update(&self, machine_id: &str, config: &Value) -> Result<(), FlyError>;
    async fn stop(&self, machine_id: &str) -> Result<(), FlyError>;
    async fn start(&self, machine_id: &str) -> Result<(), FlyError>;
    async fn restart(&self, machine_id: &str) -> Result<(), FlyError>;
}

/// The machines platform: one [`Machines`] per account.
pub trait Platform {
    type Machines<'a>: Machines
    where
        Self: 'a;
    fn machines<'a>(&'a self, target: &'a Target) -> Self::Machines<'a>;
}

/// Whether the MCP server behind a started machine became ready.
#[allow(async_fn_in_trait)]
pub trait Probe {
    /// Ok once the runner says `ready`; else the message the person sees.
    async fn ready(&self, link: &MachineLink, timeout_secs: u32) -> Result<(), String>;
}

/// Everything the lifecycle runs over, borrowed for one request or alarm.
pub struct Ports<'a, R, A, P, Q> {
    pub rows: &'a R,
    pub accounts: &'a A,
    pub platform: &'a P,
    pub probe: &'a Q,
    pub config: &'a Config,
}

/// Production machines: the Fly client over any [`Upstream`].
pub struct FlyPlatform<U>(pub U);

impl<U: Upstream> Platform for FlyPlatform<U> {
    type Machines<'a>
        = Fly<'a, U>
    where
        Self: 'a;
    fn machines<'a>(&'a self, target: &'a Target) -> Fly<'a, U> {
        target.fly(&self.0)
    }
}

impl<U: Upstream> Machines for Fly<'_, U> {
    async fn create(&self, deployment_id: &str, body: &Value) -> Result<Machine, FlyError> {
        Fly::create(self, deployment_id, body).await
    }
    async fn wait_started(&self, machine_id: &str, timeout_secs: u32) -> Result<(), FlyError> {
        Fly::wait_started(self, machine_id, timeout_secs).await
    }
    async fn destroy_all(&self, deployment_id: &str, known: Option<&str>) -> Result<(), FlyError> {
        Fly::destroy_all(self, deployment_id, known).await
    }
    async fn update(&self, machine_id: &str, config: &Value) -> Result<(), FlyError> {
        Fly::update(self, machine_id, config).await.map(|_| ())
    }
    async fn stop(&self, machine_id: &str) -> Result<(), FlyError> {
        Fly::stop(self, machine_id).await
    }
    async fn start(&self, machine_id: &str) -> Result<(), FlyError> {
        Fly::start(self, machine_id).await
    }
    async fn restart(&self, machine_id: &str) -> Result<(), FlyError> {
        Fly::restart(self, machine_id).await
    }
}
