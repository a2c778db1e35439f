//! A deployment's secrets as one sealed record (the `credentials` row): the server's
//! environment and the per-machine upstream secret the gateway presents to the runner.
//! Associated data binds the ciphertext to the deployment id and the key id, so a
//! ciphertext copied to another deployment's row fails to open.

use serde::{Deserialize, Serialize};

use crate::crypto::keyring::KeyRing;
use crate::crypto::vault::{aad, open, seal, Sealed};
use crate::error::{AppError, AppResult};

#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub struct Secrets {
    /// Name → value, in the order the user gave them.
    pub env: Vec<(String, String)>,
    pub upstream_secret: String,
}

impl std::fmt::Debug for Secrets {
    /// Names only: a stray `{:?}` must not print a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Secrets").field("env", &names).finish()
    }
}

fn aad_for(deployment_id: &str) -> impl Fn(&str) -> String + '_ {
    move |kid| aad("credentials", deployment_id, "env", kid)
}

pub fn seal_for(ring: &KeyRing, deployment_id: &str, secrets: &Secrets) -> AppResult<Sealed> {
    let plain = serde_json::to_vec(secrets)
        .map_err(|e| AppError::internal(format!("secrets: encode: {e}")))?;
    seal(ring, aad_for(deployment_id), &plain)
}

pub fn open_for(ring: &KeyRing, deployment_id: &str, sealed: &Sealed) -> AppResult<Secrets> {
    let plain = open(ring, sealed, aad_for(deployment_id))?;
    serde_json::from_slice(&plain)
        .map_err(|_| AppError::internal("secrets: a record opened but is not a secrets document"))
}

/// Whether the record should be sealed again under the ring's current key.
pub fn is_stale(ring: &KeyRing, sealed: &Sealed) -> bool {
    ring.current().0 != sealed.key_id
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    fn secrets() -> Secrets {
        Secrets {
            env: vec![("ACME_TOKEN".into(), "canary-7f3a".into())],
            upstream_secret: "u".repeat(64),
        }
    }

    #[test]
    fn a_record_opens_only_for_its_own_deployment() {
        let ring = KeyRing::parse(K1).unwrap();
        let s = seal_for(&ring, "dep_a", &secrets()).unwrap();
        assert!(!s.ciphertext.contains("canary"));
        assert_eq!(open_for(&ring, "dep_a", &s).unwrap(), secrets());
        assert!(open_for(&ring, "dep_b", &s).is_err(), "swapped row");
    }

    #[test]
    fn old_key_records_open_and_are_stale_after_rotation() {
        let old = seal_for(&KeyRing::parse(K1).unwrap(), "dep_a", &secrets()).unwrap();
        let ring = KeyRing::parse(&format!("{K2},{K1}")).unwrap();
        assert!(is_stale(&ring, &old));
        assert_eq!(open_for(&ring, "dep_a", &old).unwrap(), secrets());
        let fresh = seal_for(&ring, "dep_a", &secrets()).unwrap();
        assert!(!is_stale(&ring, &fresh));
    }

    #[test]
    fn debug_output_names_variables_but_not_values() {
        let d = format!("{:?}", secrets());
        assert!(d.contains("ACME_TOKEN") && !d.contains("canary") && !d.contains("uuuu"));
    }
}
