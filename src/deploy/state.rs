//! The deployment status machine, enforced here and by the D1 CHECK over the same names:
//! pending → deploying → running | failed; running ⇄ stopped; running | stopped → failed
//! (the reconcile cron found the machine gone or failed); failed → deploying (retry);
//! any → deleting (then the row is gone). Everything else is an illegal transition.

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
}
