//! The lifecycle's invariants (see the module doc), natively over `fake`. Each test names
//! the line whose removal it catches.

use futures_util::FutureExt;
use serde_json::json;

use super::fake::{Fake, OPERATOR_APP};
use super::operate::{act, rotate_token, Acted, Action};
use super::ports::Ports;
use super::provision::provision;
use super::retire::{delete, prepare_retry, teardown};
use crate::config::Config;
use crate::deploy::account::Account;
use crate::deploy::fly_client::FlyError;
use crate::deploy::row::Deployment;
use crate::deploy::state::Status;
use crate::deploy::stored::StoredConfig;
use crate::log::Redactor;
use crate::platform::log::Logger;

const ID: &str = "dep_1";

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    f.now_or_never().expect("the fakes never pend")
}

fn config() -> Config {
    Config::from_lookup(|name| {
        match name {
            "FLY_APP" => Some(OPERATOR_APP),
            "FLY_API_TOKEN" => Some("operator-token"),
            "ENCRYPTION_KEYS" => Some("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            _ => None,
        }
        .map(str::to_string)
    })
}

fn log() -> Logger {
    Logger::new(Redactor::new([]), "test")
}

fn row(status: Status, machine: Option<&str>, app: &str) -> Deployment {
    let launch = serde_json::from_value(json!({
        "runtime": "npm", "package": "@modelcontextprotocol/server-everything"
    }))
    .expect("a launch");
    Deployment {
        id: ID.into(),
        owner_id: "usr_1".into(),
        name: "everything".into(),
        source: "npm:@modelcontextprotocol/server-everything".into(),
        package: "@modelcontextprotocol/server-everything".into(),
        runtime: "npm".into(),
        status,
        machine_id: machine.map(str::to_string),
        config: StoredConfig {
            launch: Some(launch),
            region: None,
            app: Some(app.into()),
            account: Some(if app == OPERATOR_APP {
                Account::Operator
            } else {
                Account::User
            }),
            display_name: Some("Everything".into()),
        },
        error_message: None,
        created_at: 0,
        updated_at: 0,
    }
}

fn ports<'a>(f: &'a Fake, config: &'a Config) -> Ports<'a, Fake, Fake, Fake, Fake> {
    Ports {
        rows: f,
        accounts: f,
        platform: f,
        probe: f,
        config,
    }
}

fn provision_once(f: &Fake) {
    let c = config();
    run(provision(&ports(f, &c), &mut log(), ID)).expect("provision answers");
}

fn status(f: &Fake) -> Option<Status> {
    f.row(ID).map(|d| d.status)
}

fn timeout() -> FlyError {
    FlyError::Transient {
        status: None,
        retry_after: None,
    }
}

#[test]
fn a_creation_runs_pending_to_running_and_records_its_one_machine() {
    let f = Fake::with_row(row(Status::Pending, None, OPERATOR_APP));
    provision_once(&f);
    let d = f.row(ID).expect("row");
    assert_eq!(d.status, Status::Running);
    let machines = f.machines_of(ID);
    assert_eq!(machines.len(), 1);
    assert_eq!(d.machine_id.as_deref(), Some(machines[0].id.as_str()));
    assert_eq!(f.actions(), ["deployment.running"]);
}

/// Catches: removing `let _ = machines.destroy_all(id, None)` in `provision`'s create
/// error arm (a create that timed out but went through would leave an orphan).
#[test]
fn a_failed_creation_destroys_whatever_it_made() {
    let f = Fake::with_row(row(Status::Deploying, None, OPERATOR_APP));
    f.faults.borrow_mut().create = Some(timeout());
    f.faults.borrow_mut().create_makes_anyway = true;
    provision_once(&f);
    assert!(f.machines_of(ID).is_empty(), "no orphan");
    let d = f.row(ID).expect("row");
    assert_eq!(d.status, Status::Failed);
    assert!(d
        .error_message
        .is_some_and(|m| m.starts_with("The machine could not be created")));
    assert_eq!(f.actions(), ["deployment.failed"]);
}

/// Catches: removing the `destroy_all(id, Some(&machine.id))` after `wait_started` fails.
#[test]
fn a_machine_that_never_starts_is_destroyed() {
    let f = Fake::with_row(row(Status::Deploying, None, OPERATOR_APP));
    f.faults.borrow_mut().wait_started = Some(FlyError::Broken("failed".into()));
    provision_once(&f);
    assert!(f.machines_of(ID).is_empty());
    assert_eq!(status(&f), Some(Status::Failed));
}

/// Catches: recording the machine outside the compare-and-set (`set_machine` ignoring the
/// status) or dropping the `Ok((m, false)) => settle_orphan(…)` arm.
#[test]
fn a_delete_racing_a_creation_wins_and_the_creator_destroys_its_machine() {
    let f = Fake::with_row(row(Status::Deploying, None, OPERATOR_APP));
    *f.after_create.borrow_mut() = Some(Box::new(|f: &Fake| f.start_deleting(ID)));
    provision_once(&f);
    assert!(f.machines_of(ID).is_empty(), "the creator destroyed it");
    let d = f
        .row(ID)
        .expect("the deleter removes the row, not the creator");
    assert_eq!(d.status, Status::Deleting, "the delete won");
    assert_eq!(d.machine_id, None, "never recorded on a deleting row");
}

/// Catches: dropping the final `settle_orphan` after the `deploying → running` change
/// found no row (the delete finished while the server was getting ready).
#[test]
fn a_creator_that_finds_its_row_gone_at_the_end_destroys_the_machine() {
    let f = Fake::with_row(row(Status::Deploying, None, OPERATOR_APP));
    *f.while_probing.borrow_mut() = Some(Box::new(|f: &Fake| {
        f.rows.borrow_mut().remove(ID);
    }));
    provision_once(&f);
    assert!(f.machines_of(ID).is_empty());
    assert!(f.actions().is_empty(), "no running audit for a gone row");
}

/// Catches: removing the `destroy_all` in the operator account when the row is missing.
#[test]
fn a_creation_whose_row_is_gone_leaves_nothing_behind() {
    let f = Fake::default();
    f.add_machine(OPERATOR_APP, ID);
    provision_once(&f);
    assert!(f.machines_of(ID).is_empty());
}

/// Catches: removing the early return for rows no longer `pending`/`deploying` (a second
/// alarm would create again), and a creation that destroys rather than adopts.
#[test]
fn a_twin_provision_adopts_rather_than_duplicates() {
    // An alarm evicted after it made and recorded the machine: the retry adopts it.
    let f = Fake::with_row(row(Status::Deploying, None, OPERATOR_APP));
    let earlier = f.add_machine(OPERATOR_APP, ID);
    f.rows.borrow_mut().get_mut(ID).expect("row").machine_id = Some(earlier.clone());
    provision_once(&f);
    assert_eq!(f.machines_of(ID).len(), 1);
    let d = f.row(ID).expect("row");
    assert_eq!(d.machine_id, Some(earlier));
    assert_eq!(d.status, Status::Running);
    // A second alarm after success makes no platform call at all.
    let creates = f.creates.get();
    provision_once(&f);
    assert_eq!(f.creates.get(), creates);
    assert_eq!(f.actions(), ["deployment.running"], "audited once");
}

/// Catches: destroying the machine when the server does not become ready (its logs are
/// how a person learns why), or marking it running anyway.
#[test]
fn a_server_that_never_becomes_ready_fails_and_keeps_its_machine_for_its_logs() {
    let f = Fake::with_row(row(Status::Deploying, None, OPERATOR_APP));
    f.faults.borrow_mut().not_ready = Some("The MCP server exited: sk-live-credential".into());
    let c = config();
    let mut l = log();
    run(provision(&ports(&f, &c), &mut l, ID)).expect("answers");
    let d = f.row(ID).expect("row");
    assert_eq!(d.status, Status::Failed);
    assert_eq!(f.machines_of(ID).len(), 1);
    assert!(d.machine_id.is_some());
    let message = d.error_message.expect("a message");
    assert!(
        !message.contains("sk-live-credential"),
        "the credential opened for the machine is masked in what the person sees"
    );
}

/// Catches: `set_machine` failing silently — the machine is destroyed and the row fails.
#[test]
fn a_machine_that_cannot_be_recorded_is_destroyed() {
    let f = Fake::with_row(row(Status::Deploying, None, OPERATOR_APP));
    f.faults.borrow_mut().set_machine_errors = true;
    provision_once(&f);
    assert!(f.machines_of(ID).is_empty());
    assert_eq!(status(&f), Some(Status::Failed));
}

/// Catches: `teardown` removing the row although the platform failed (`?` on
/// `destroy_in`), which would orphan the machine with no row left to retry from.
#[test]
fn teardown_leaves_the_row_deleting_when_the_platform_fails() {
    let f = Fake::with_row(row(Status::Running, Some("m9"), OPERATOR_APP));
    f.faults.borrow_mut().destroy = Some((OPERATOR_APP.into(), timeout()));
    let c = config();
    let l = log();
    let d = f.row(ID).expect("row");
    assert!(run(delete(&ports(&f, &c), &l, &d)).is_err());
    assert_eq!(status(&f), Some(Status::Deleting), "left for a retry");
    assert!(!f.actions().contains(&"deployment.deleted".to_string()));
    // The retry (the cron's) finishes the job once the platform answers.
    f.faults.borrow_mut().destroy = None;
    let d = f.row(ID).expect("row");
    run(teardown(&ports(&f, &c), &l, &d)).expect("teardown");
    assert_eq!(f.row(ID).map(|d| d.status), None);
}

/// Catches: dropping `&& d.machine_id.is_none()` from the refused-account rule.
#[test]
fn a_refusing_account_is_abandoned_only_when_no_machine_was_recorded() {
    let refused = FlyError::Refused {
        status: 401,
        code: None,
    };
    let c = config();
    let l = log();
    // Never recorded a machine there: nothing to leak, the row goes.
    let f = Fake::with_row(row(Status::Failed, None, "personal"));
    f.faults.borrow_mut().destroy = Some(("personal".into(), refused.clone()));
    let d = f.row(ID).expect("row");
    run(delete(&ports(&f, &c), &l, &d)).expect("deleted");
    assert!(f.row(ID).is_none());
    // A machine recorded there would be left running unseen: the row stays `deleting`.
    let f = Fake::with_row(row(Status::Running, Some("m1"), "personal"));
    f.faults.borrow_mut().destroy = Some(("personal".into(), refused));
    let d = f.row(ID).expect("row");
    assert!(run(delete(&ports(&f, &c), &l, &d)).is_err());
    assert_eq!(status(&f), Some(Status::Deleting));
}

/// Catches: a delete that removes the row without passing through `deleting` (the
/// gateway would serve a row mid-teardown), or auditing before the row is gone.
#[test]
fn delete_passes_through_deleting_then_removes_and_audits() {
    let f = Fake::with_row(row(Status::Running, None, OPERATOR_APP));
    let m = f.add_machine(OPERATOR_APP, ID);
    f.rows.borrow_mut().get_mut(ID).expect("row").machine_id = Some(m);
    let c = config();
    let d = f.row(ID).expect("row");
    run(delete(&ports(&f, &c), &log(), &d)).expect("deleted");
    assert_eq!(
        *f.changes.borrow(),
        [(ID.to_string(), Status::Running, Status::Deleting)]
    );
    assert!(f.row(ID).is_none());
    assert!(f.machines_of(ID).is_empty());
    assert_eq!(f.actions(), ["deployment.deleted"]);
}

/// Catches: a status change that skips the state machine (stopping a stopped deployment
/// must be a 409 before any platform call).
#[test]
fn an_action_the_state_machine_lacks_is_a_409_before_the_platform_is_touched() {
    let f = Fake::with_row(row(Status::Stopped, Some("m1"), OPERATOR_APP));
    let c = config();
    let d = f.row(ID).expect("row");
    let e = run(act(&ports(&f, &c), &log(), &d, Action::Stop)).expect_err("409");
    assert_eq!(e.status(), 409);
    assert!(f.changes.borrow().is_empty());
    let e = run(act(&ports(&f, &c), &log(), &d, Action::Restart))
        .map(|_| ())
        .expect_err("no machine m1 in the fake: the start reached the platform");
    assert_ne!(
        e.status(),
        409,
        "restarting a stopped deployment is allowed"
    );
}

/// Catches: `prepare_retry` skipping the destroy in the old account, or not moving the
/// deployment to the owner's current account.
#[test]
fn restarting_a_failed_deployment_cleans_the_old_account_and_moves_to_the_current_one() {
    let f = Fake::with_row(row(Status::Failed, None, "personal-old"));
    let m = f.add_machine("personal-old", ID);
    f.rows.borrow_mut().get_mut(ID).expect("row").machine_id = Some(m);
    f.own_app
        .borrow_mut()
        .insert("usr_1".into(), "personal-new".into());
    let c = config();
    let d = f.row(ID).expect("row");
    let acted = run(act(&ports(&f, &c), &log(), &d, Action::Restart)).expect("acted");
    assert_eq!(acted, Acted::Redeploy);
    assert!(
        f.machines_of(ID).is_empty(),
        "nothing left in the old account"
    );
    let d = f.row(ID).expect("row");
    assert_eq!(d.status, Status::Deploying);
    assert_eq!(d.machine_id, None);
    assert_eq!(d.config.app.as_deref(), Some("personal-new"));
    assert_eq!(d.config.account, Some(Account::User));
    assert_eq!(
        d.display(),
        "Everything",
        "the name as typed survives the move"
    );
    assert_eq!(f.actions(), ["deployment.redeployed"]);
    // Its creation then runs in the new account.
    provision_once(&f);
    assert_eq!(f.machines_of(ID)[0].app, "personal-new");
}

/// Catches: a retry that abandons an old account holding a recorded machine.
#[test]
fn a_retry_never_abandons_a_recorded_machine_in_a_refusing_account() {
    let f = Fake::with_row(row(Status::Failed, Some("m7"), "personal-old"));
    f.faults.borrow_mut().destroy = Some((
        "personal-old".into(),
        FlyError::Refused {
            status: 403,
            code: None,
        },
    ));
    let c = config();
    let d = f.row(ID).expect("row");
    assert!(run(prepare_retry(&ports(&f, &c), &log(), &d)).is_err());
    let d = f.row(ID).expect("row");
    assert_eq!(d.machine_id.as_deref(), Some("m7"));
    assert_eq!(d.config.app.as_deref(), Some("personal-old"));
}

/// Catches: a rotation that fails outright when the platform cannot take the new upstream
/// secret (the leaked access token must still stop working at once).
#[test]
fn a_rotation_the_platform_refuses_still_rotates_the_access_token() {
    let f = Fake::with_row(row(Status::Running, Some("m1"), OPERATOR_APP));
    f.faults.borrow_mut().update = Some(timeout());
    let c = config();
    let d = f.row(ID).expect("row");
    let rotated = run(rotate_token(&ports(&f, &c), &mut log(), &d)).expect("rotated");
    assert!(!rotated.upstream_rotated);
    assert!(rotated.access_token.starts_with("cwk_"));
    assert_eq!(f.actions(), ["deployment.token_rotated"]);
    // Mid-deletion nothing rotates.
    f.start_deleting(ID);
    let d = f.row(ID).expect("row");
    let e = run(rotate_token(&ports(&f, &c), &mut log(), &d))
        .map(|_| ())
        .expect_err("409");
    assert_eq!(e.status(), 409);
}
