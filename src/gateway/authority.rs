//! What the gateway object knows about its deployment and how it judges a request: the
//! access-token digest, the status, and how to reach the machine — loaded from D1 when
//! the object is cold or told to forget, then answered from memory. Pure: the object
//! (`durable::mcp_gateway`) feeds it rows and asks it for a [`Verdict`].

use serde::{Deserialize, Serialize};

use crate::deploy::state::Status;
use crate::deploy::token;
use crate::gateway::failure::Failure;
use crate::gateway::link::MachineLink;

/// A cached authority older than this is loaded again even if nobody said it changed: the
/// backstop for a writer whose `forget` was lost (writers forget synchronously; see
/// `docs/architecture.md`). Also how long a deleted deployment's row may linger here.
pub const MAX_AGE_MS: i64 = 60_000;

/// One deployment as the gateway sees it.
#[derive(Debug, Clone)]
pub struct Authority {
    pub owner_id: String,
    pub status: Status,
    pub token_digest: String,
    /// How to reach the runner, or why it cannot be reached yet (no machine recorded:
    /// `Deploying`; the upstream secret could not be opened: `Internal`).
    pub link: Result<MachineLink, Failure>,
}

/// The answer to one request, as it travels from the object back to the Worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Go ahead: the machine, and the runner's session id when the request named ours.
    Pass {
        link: MachineLink,
        #[serde(default)]
        upstream_session: Option<String>,
    },
    /// No such deployment (never existed, deleted, or being deleted).
    NotFound,
    /// The token is missing, malformed or not this deployment's.
    Unauthorized,
    /// Authenticated, but the request cannot be served: answered as this failure.
    Refused { failure: Failure },
    /// Authenticated, over the deployment's rate limit: retry after this many seconds.
    Limited { retry_after_secs: u32 },
}

impl Authority {
    /// Token first (an unauthenticated caller learns nothing about the status), then the
    /// status, then whether the machine is reachable.
    pub fn judge(&self, presented: &str) -> Verdict {
        if !token::matches(presented, &self.token_digest) {
            return Verdict::Unauthorized;
        }
        self.admit()
    }

    /// The verdict for a caller already authenticated (by the static token, or by an
    /// OAuth access token whose audience is this deployment): status, then machine.
    pub fn admit(&self) -> Verdict {
        let failure = match self.status {
            Status::Running => None,
            Status::Stopped => Some(Failure::Stopped),
            Status::Failed => Some(Failure::Failed),
            Status::Pending | Status::Deploying => Some(Failure::Deploying),
            Status::Deleting => return Verdict::NotFound,
        };
        if let Some(failure) = failure {
            return Verdict::Refused { failure };
        }
        match &self.link {
            Ok(link) => Verdict::Pass {
                link: link.clone(),
                upstream_session: None,
            },
            Err(failure) => Verdict::Refused { failure: *failure },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> MachineLink {
        MachineLink {
            url: "https://app.fly.dev/mcp".into(),
            machine_id: "m1".into(),
            secret: "s".into(),
        }
    }

    fn authority(status: Status, link: Result<MachineLink, Failure>) -> (Authority, String) {
        let (token, digest) = token::mint().expect("mint");
        (
            Authority {
                owner_id: "usr_1".into(),
                status,
                token_digest: digest,
                link,
            },
            token,
        )
    }

    #[test]
    fn a_running_deployment_passes_only_its_own_token() {
        let (a, token) = authority(Status::Running, Ok(link()));
        assert_eq!(
            a.judge(&token),
            Verdict::Pass {
                link: link(),
                upstream_session: None
            }
        );
        let (_, other) = token::mint().expect("mint");
        assert_eq!(a.judge(&other), Verdict::Unauthorized);
        assert_eq!(a.judge(""), Verdict::Unauthorized);
        assert_eq!(a.judge(&token[..token.len() - 1]), Verdict::Unauthorized);
    }

    #[test]
    fn the_status_is_told_only_to_a_caller_with_the_token() {
        for (status, expected) in [
            (Status::Stopped, Failure::Stopped),
            (Status::Failed, Failure::Failed),
            (Status::Pending, Failure::Deploying),
            (Status::Deploying, Failure::Deploying),
        ] {
            let (a, token) = authority(status, Ok(link()));
            assert_eq!(a.judge(&token), Verdict::Refused { failure: expected });
            assert_eq!(a.judge("cwk_wrong"), Verdict::Unauthorized);
        }
        let (a, token) = authority(Status::Deleting, Ok(link()));
        assert_eq!(a.judge(&token), Verdict::NotFound);
    }

    #[test]
    fn a_running_row_without_a_usable_machine_is_refused_with_the_reason() {
        let (a, token) = authority(Status::Running, Err(Failure::Internal));
        assert_eq!(
            a.judge(&token),
            Verdict::Refused {
                failure: Failure::Internal
            }
        );
    }

    #[test]
    fn verdicts_cross_the_object_boundary_intact() {
        let v = Verdict::Pass {
            link: link(),
            upstream_session: Some("u1".into()),
        };
        let text = serde_json::to_string(&v).expect("json");
        assert_eq!(serde_json::from_str::<Verdict>(&text).expect("back"), v);
        let r: Verdict =
            serde_json::from_str(r#"{"verdict":"refused","failure":"stopped"}"#).expect("refused");
        assert_eq!(
            r,
            Verdict::Refused {
                failure: Failure::Stopped
            }
        );
    }
}
