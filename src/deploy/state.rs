//! The deployment status machine, enforced here and by the D1 CHECK over the same names:
//! pending → deploying → running | failed; running ⇄ stopped; running | stopped → failed
//! (the reconcile cron found the machine gone or failed); failed → deploying (retry);
//! any → deleting (then the row is gone). Everything else is an illegal transition.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Deploying,
    Running,
    Stopped,
    Failed,
    Deleting,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Self::Pending,
        Self::Deploying,
        Self::Running,
        Self::Stopped,
        Self::Failed,
        Self::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Deploying => "deploying",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Pending, Deploying)
                | (Deploying, Running)
                | (Deploying, Failed)
                | (Running, Stopped)
                | (Stopped, Running)
                | (Running, Failed)
                | (Stopped, Failed)
                | (Failed, Deploying)
                | (_, Deleting)
        ) && self != Deleting
    }

    /// The transition, or a 409 that names both states.
    pub fn transition(self, next: Status) -> Result<Status, AppError> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(AppError::Conflict {
                code: "illegal_transition",
                message: format!(
                    "A {} deployment cannot become {}.",
                    self.as_str(),
                    next.as_str()
                ),
            })
        }
    }
}

/// Stored and shown as its name; any other text is an error where it is read (the store
/// boundary), never a value that travels on.
impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Status::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown status {name:?}")))
    }
}

/// Whether every `from` may become `to`: a compare-and-set that lists an edge the state
/// machine does not have is a bug in its caller, refused before anything is written.
pub fn check_change(from: &[Status], to: Status) -> Result<(), AppError> {
    match from.iter().find(|f| !f.can_become(to)) {
        None if !from.is_empty() => Ok(()),
        None => Err(AppError::internal("a status change from no state")),
        Some(f) => Err(AppError::internal(format!(
            "illegal status change {} -> {}",
            f.as_str(),
            to.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_paths_are_allowed() {
        use Status::*;
        for (a, b) in [
            (Pending, Deploying),
            (Deploying, Running),
            (Deploying, Failed),
            (Running, Stopped),
            (Stopped, Running),
            (Failed, Deploying),
            (Running, Deleting),
            (Pending, Deleting),
            (Failed, Deleting),
        ] {
            assert!(a.transition(b).is_ok(), "{a:?} -> {b:?}");
        }
    }

    #[test]
    fn everything_else_is_a_409() {
        use Status::*;
        let allowed = |a: Status, b: Status| a.can_become(b);
        let mut refused = 0;
        for a in Status::ALL {
            for b in Status::ALL {
                if !allowed(a, b) {
                    assert_eq!(a.transition(b).unwrap_err().status(), 409);
                    refused += 1;
                }
            }
        }
        assert!(
            !Pending.can_become(Running)
                && !Stopped.can_become(Pending)
                && !Deleting.can_become(Running)
        );
        assert!(
            !Deleting.can_become(Deleting),
            "deleting ends in the row's removal"
        );
        // 8 named edges + 5 states that may start deleting are allowed; the other 23 are not.
        assert_eq!(refused, 36 - 13);
    }

    #[test]
    fn names_match_the_d1_check() {
        let schema = include_str!("../../migrations/0001_initial.sql");
        for s in Status::ALL {
            assert!(schema.contains(&format!("'{}'", s.as_str())), "{s:?}");
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("exploded"), None);
    }

    #[test]
    fn a_status_reads_from_its_name_and_an_unknown_name_is_an_error() {
        let s: Status = serde_json::from_str("\"stopped\"").unwrap();
        assert_eq!(s, Status::Stopped);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"stopped\"");
        assert!(serde_json::from_str::<Status>("\"exploded\"").is_err());
    }

    #[test]
    fn a_change_listing_an_edge_the_machine_lacks_is_refused() {
        use Status::*;
        assert!(check_change(&[Running, Stopped], Failed).is_ok());
        assert!(
            check_change(&[Pending, Deploying], Failed).is_err(),
            "pending cannot fail"
        );
        assert!(check_change(&[Running, Stopped, Failed], Deleting).is_ok());
        assert!(check_change(&[Deleting], Deleting).is_err());
        assert!(check_change(&[Pending], Running).is_err());
        assert!(check_change(&[], Running).is_err());
    }
}
