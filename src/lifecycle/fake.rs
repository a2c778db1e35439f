//! In-memory ports for the lifecycle's native tests: rows with the same compare-and-set
//! rules as the D1 store, machines per Fly app, accounts and a readiness probe — each able
//! to fail on purpose, and to run a hook mid-operation (a delete racing a creation).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde_json::Value;
use url::Url;

use crate::crypto::secret::Secret;
use crate::crypto::vault::Sealed;
use crate::deploy::account::{Account, Target};
use crate::deploy::fly_client::{FlyError, Machine};
use crate::deploy::row::Deployment;
use crate::deploy::secrets::Secrets;
use crate::deploy::state::{check_change, Status};
use crate::deploy::stored::StoredConfig;
use crate::error::AppResult;
use crate::gateway::link::MachineLink;
use crate::lifecycle::ports::{Accounts, Audit, Change, Machines, Platform, Probe, Rows};

pub const OPERATOR_APP: &str = "ops";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMachine {
    pub id: String,
    pub app: String,
    pub deployment: String,
    pub state: &'static str,
}

/// Failures to inject, each consumed or standing as noted.
#[derive(Default)]
pub struct Faults {
    /// `create` answers this; with `create_makes_anyway`, after making the machine (a
    /// timeout on a create that went through).
    pub create: Option<FlyError>,
    pub create_makes_anyway: bool,
    pub wait_started: Option<FlyError>,
    /// `destroy_all` in these apps answers this.
    pub destroy: Option<(String, FlyError)>,
    pub update: Option<FlyError>,
    pub set_machine_errors: bool,
    pub not_ready: Option<String>,
}

type Hook = Box<dyn Fn(&Fake)>;

#[derive(Default)]
pub struct Fake {
    pub rows: RefCell<HashMap<String, Deployment>>,
    pub secrets: RefCell<HashMap<String, Secrets>>,
    /// (deployment, action) in order.
    pub audits: RefCell<Vec<(String, String)>>,
    /// (deployment, from, to) of every change that took effect.
    pub changes: RefCell<Vec<(String, Status, Status)>>,
    pub machines: RefCell<Vec<FakeMachine>>,
    pub creates: Cell<u32>,
    pub next_machine: Cell<u32>,
    /// Owner → the app their settings name now (their own account).
    pub own_app: RefCell<HashMap<String, String>>,
    pub faults: RefCell<Faults>,
    /// Runs once right after `create` made a machine, or while the probe waits.
    pub after_create: RefCell<Option<Hook>>,
    pub while_probing: RefCell<Option<Hook>>,
}

fn target(app: &str, account: Account) -> Target {
    Target::new(
        Url::parse("http://fly.test").expect("a constant URL"),
        app.to_string(),
        Secret::new(format!("token-of-{app}")),
        account,
    )
}

impl Fake {
    pub fn with_row(d: Deployment) -> Self {
        let f = Fake::default();
        f.secrets.borrow_mut().insert(
            d.id.clone(),
            Secrets {
                env: vec![("API_KEY".into(), "sk-live-credential".into())],
                upstream_secret: "u".repeat(64),
            },
        );
        f.rows.borrow_mut().insert(d.id.clone(), d);
        f
    }

    pub fn row(&self, id: &str) -> Option<Deployment> {
        self.rows.borrow().get(id).cloned()
    }

    pub fn machines_of(&self, deployment: &str) -> Vec<FakeMachine> {
        self.machines
            .borrow()
            .iter()
            .filter(|m| m.deployment == deployment)
            .cloned()
            .collect()
    }

    pub fn add_machine(&self, app: &str, deployment: &str) -> String {
        let n = self.next_machine.get() + 1;
        self.next_machine.set(n);
        let id = format!("m{n}");
        self.machines.borrow_mut().push(FakeMachine {
            id: id.clone(),
            app: app.to_string(),
            deployment: deployment.to_string(),
            state: "created",
        });
        id
    }

    pub fn actions(&self) -> Vec<String> {
        self.audits
            .borrow()
            .iter()
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// What a racing DELETE's first step does: the row becomes `deleting`.
    pub fn start_deleting(&self, id: &str) {
        if let Some(d) = self.rows.borrow_mut().get_mut(id) {
            d.status = Status::Deleting;
        }
    }
}

impl Rows for Fake {
    async fn get(&self, id: &str) -> AppResult<Option<Deployment>> {
        Ok(self.row(id))
    }

    async fn transition(&self, d: &Deployment, change: Change<'_>) -> AppResult<bool> {
        check_change(change.from, change.to)?;
        let was = {
            let mut rows = self.rows.borrow_mut();
            match rows.get_mut(&d.id) {
                Some(row) if change.from.contains(&row.status) => {
                    let was = row.status;
                    row.status = change.to;
                    row.error_message = change.error.map(str::to_string);
                    was
                }
                _ => return Ok(false),
            }
        };
        self.changes
            .borrow_mut()
            .push((d.id.clone(), was, change.to));
        if let Some(a) = change.audit {
            self.audit(d, a).await;
        }
        Ok(true)
    }

    async fn set_machine(&self, id: &str, machine_id: &str) -> AppResult<bool> {
        if self.faults.borrow().set_machine_errors {
            return Err(crate::error::AppError::internal("D1 is down"));
        }
        let mut rows = self.rows.borrow_mut();
        match rows.get_mut(id) {
            Some(d) if matches!(d.status, Status::Pending | Status::Deploying) => {
                d.machine_id = Some(machine_id.to_string());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn clear_machine(&self, id: &str) -> AppResult<bool> {
        let mut rows = self.rows.borrow_mut();
        match rows.get_mut(id) {
            Some(d) if d.status == Status::Failed => {
                d.machine_id = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove(&self, id: &str) -> AppResult<bool> {
        let mut rows = self.rows.borrow_mut();
        if rows.get(id).is_some_and(|d| d.status == Status::Deleting) {
            rows.remove(id);
            self.secrets.borrow_mut().remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn set_account(
        &self,
        id: &str,
        config: &StoredConfig,
        _token: Option<&Sealed>,
    ) -> AppResult<()> {
        if let Some(d) = self.rows.borrow_mut().get_mut(id) {
            d.config = config.clone();
        }
        Ok(())
    }

    async fn secrets(&self, id: &str) -> AppResult<Secrets> {
        self.secrets
            .borrow()
            .get(id)
            .map(|s| Secrets {
                env: s.env.clone(),
                upstream_secret: s.upstream_secret.clone(),
            })
            .ok_or_else(|| crate::error::AppError::internal("a sealed record is missing"))
    }

    async fn put_env(&self, _id: &str, _sealed: &Sealed) -> AppResult<()> {
        Ok(())
    }

    async fn rotate_secrets(
        &self,
        owner: &str,
        id: &str,
        _token_hash: &str,
        _upstream: Option<&Sealed>,
    ) -> AppResult<bool> {
        Ok(self
            .row(id)
            .is_some_and(|d| d.owner_id == owner && d.status != Status::Deleting))
    }

    async fn audit(&self, d: &Deployment, a: Audit<'_>) {
        self.audits
            .borrow_mut()
            .push((d.id.clone(), a.action.to_string()));
    }
}

impl Accounts for Fake {
    async fn of(&self, d: &Deployment) -> AppResult<Target> {
        Ok(match d.config.app.as_deref() {
            Some(app) if app != OPERATOR_APP => target(app, Account::User),
            _ => target(OPERATOR_APP, Account::Operator),
        })
    }

    async fn for_new(&self, owner_id: &str) -> AppResult<Target> {
        Ok(match self.own_app.borrow().get(owner_id) {
            Some(app) => target(app, Account::User),
            None => target(OPERATOR_APP, Account::Operator),
        })
    }

    fn operator(&self) -> AppResult<Target> {
        Ok(target(OPERATOR_APP, Account::Operator))
    }
}

pub struct FakeMachines<'a> {
    fake: &'a Fake,
    app: String,
}

impl Platform for Fake {
    type Machines<'a> = FakeMachines<'a>;
    fn machines<'a>(&'a self, t: &'a Target) -> FakeMachines<'a> {
        FakeMachines {
            fake: self,
            app: t.app.clone(),
        }
    }
}

impl FakeMachines<'_> {
    fn state(&self, machine_id: &str, state: &'static str) -> Result<(), FlyError> {
        let mut all = self.fake.machines.borrow_mut();
        let m = all
            .iter_mut()
            .find(|m| m.id == machine_id && m.app == self.app)
            .ok_or(FlyError::NotFound)?;
        m.state = state;
        Ok(())
    }
}

impl Machines for FakeMachines<'_> {
    /// Like the Fly client: a machine of the deployment already there is adopted.
    async fn create(&self, deployment_id: &str, _body: &Value) -> Result<Machine, FlyError> {
        self.fake.creates.set(self.fake.creates.get() + 1);
        let fault = self.fake.faults.borrow_mut().create.take();
        if let Some(e) = fault {
            if self.fake.faults.borrow().create_makes_anyway {
                self.fake.add_machine(&self.app, deployment_id);
            }
            return Err(e);
        }
        let existing = self
            .fake
            .machines
            .borrow()
            .iter()
            .find(|m| m.deployment == deployment_id && m.app == self.app)
            .map(|m| m.id.clone());
        let id = existing.unwrap_or_else(|| self.fake.add_machine(&self.app, deployment_id));
        if let Some(hook) = self.fake.after_create.borrow_mut().take() {
            hook(self.fake);
        }
        Ok(Machine {
            id,
            state: "created".into(),
            region: None,
            deployment: Some(deployment_id.to_string()),
            updated_at: None,
        })
    }

    async fn wait_started(&self, machine_id: &str, _timeout_secs: u32) -> Result<(), FlyError> {
        if let Some(e) = self.fake.faults.borrow_mut().wait_started.take() {
            return Err(e);
        }
        self.state(machine_id, "started")
    }

    async fn destroy_all(&self, deployment_id: &str, known: Option<&str>) -> Result<(), FlyError> {
        if let Some((app, e)) = &self.fake.faults.borrow().destroy {
            if *app == self.app {
                return Err(e.clone());
            }
        }
        self.fake.machines.borrow_mut().retain(|m| {
            m.app != self.app || (m.deployment != deployment_id && Some(m.id.as_str()) != known)
        });
        Ok(())
    }

    async fn update(&self, _machine_id: &str, _config: &Value) -> Result<(), FlyError> {
        match self.fake.faults.borrow_mut().update.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn stop(&self, machine_id: &str) -> Result<(), FlyError> {
        self.state(machine_id, "stopped")
    }

    async fn start(&self, machine_id: &str) -> Result<(), FlyError> {
        self.state(machine_id, "started")
    }

    async fn restart(&self, machine_id: &str) -> Result<(), FlyError> {
        self.state(machine_id, "started")
    }
}

impl Probe for Fake {
    async fn ready(&self, _link: &MachineLink, _timeout_secs: u32) -> Result<(), String> {
        if let Some(hook) = self.while_probing.borrow_mut().take() {
            hook(self);
        }
        match self.faults.borrow_mut().not_ready.take() {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }
}
