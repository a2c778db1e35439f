//! A deployment's secrets, sealed as two records so each reader opens only what it needs:
//! the server's environment (`credentials`, opened to build or update the machine) and the
//! per-machine upstream secret (`upstream_secrets`, opened by the gateway on every request
//! to authenticate to the runner). Associated data binds each ciphertext to the deployment
//! id, the record's kind and the key id, so a ciphertext copied to another deployment, or
//! from one record kind to the other, fails to open.

use serde::{Deserialize, Serialize};

use crate::crypto::keyring::KeyRing;
use crate::crypto::vault::{aad, open, seal, Sealed};
use crate::error::{AppError, AppResult};

/// Both secrets of a deployment, in memory only while a machine config is built.
#[derive(PartialEq, Eq)]
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

#[derive(Serialize, Deserialize)]
struct EnvDoc {
    env: Vec<(String, String)>,
}

fn aad_for<'a>(deployment_id: &'a str, record: &'a str) -> impl Fn(&str) -> String + 'a {
    move |kid| aad("credentials", deployment_id, record, kid)
}

pub fn seal_env(
    ring: &KeyRing,
    deployment_id: &str,
    env: &[(String, String)],
) -> AppResult<Sealed> {
    let plain = serde_json::to_vec(&EnvDoc { env: env.to_vec() })
        .map_err(|e| AppError::internal(format!("secrets: encode: {e}")))?;
    seal(ring, aad_for(deployment_id, "env"), &plain)
}

pub fn open_env(
    ring: &KeyRing,
    deployment_id: &str,
    sealed: &Sealed,
) -> AppResult<Vec<(String, String)>> {
    let plain = open(ring, sealed, aad_for(deployment_id, "env"))?;
    serde_json::from_slice::<EnvDoc>(&plain)
        .map(|d| d.env)
        .map_err(|_| AppError::internal("secrets: a record opened but is not an environment"))
}

fn seal_text(ring: &KeyRing, deployment_id: &str, kind: &str, text: &str) -> AppResult<Sealed> {
    seal(ring, aad_for(deployment_id, kind), text.as_bytes())
}

fn open_text(
    ring: &KeyRing,
    deployment_id: &str,
    kind: &str,
    sealed: &Sealed,
) -> AppResult<String> {
    let plain = open(ring, sealed, aad_for(deployment_id, kind))?;
    String::from_utf8(plain)
        .map_err(|_| AppError::internal(format!("secrets: {kind} is not UTF-8")))
}

pub fn seal_upstream(ring: &KeyRing, deployment_id: &str, secret: &str) -> AppResult<Sealed> {
    seal_text(ring, deployment_id, "upstream", secret)
}

pub fn open_upstream(ring: &KeyRing, deployment_id: &str, sealed: &Sealed) -> AppResult<String> {
    open_text(ring, deployment_id, "upstream", sealed)
}

/// The owner's own Fly token, recorded with a deployment made in their account.
pub fn seal_fly_token(ring: &KeyRing, deployment_id: &str, token: &str) -> AppResult<Sealed> {
    seal_text(ring, deployment_id, "fly_token", token)
}

pub fn open_fly_token(ring: &KeyRing, deployment_id: &str, sealed: &Sealed) -> AppResult<String> {
    open_text(ring, deployment_id, "fly_token", sealed)
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

    fn env() -> Vec<(String, String)> {
        vec![("ACME_TOKEN".into(), "canary-7f3a".into())]
    }

    #[test]
    fn a_record_opens_only_for_its_own_deployment_and_kind() {
        let ring = KeyRing::parse(K1).unwrap();
        let s = seal_env(&ring, "dep_a", &env()).unwrap();
        assert!(!s.ciphertext.contains("canary"));
        assert_eq!(open_env(&ring, "dep_a", &s).unwrap(), env());
        assert!(open_env(&ring, "dep_b", &s).is_err(), "swapped row");
        assert!(open_upstream(&ring, "dep_a", &s).is_err(), "swapped kind");
        let u = seal_upstream(&ring, "dep_a", "upstream-0123").unwrap();
        assert_eq!(open_upstream(&ring, "dep_a", &u).unwrap(), "upstream-0123");
        assert!(open_env(&ring, "dep_a", &u).is_err());
        let f = seal_fly_token(&ring, "dep_a", "fo1_own").unwrap();
        assert_eq!(open_fly_token(&ring, "dep_a", &f).unwrap(), "fo1_own");
        assert!(
            open_upstream(&ring, "dep_a", &f).is_err(),
            "a token is not an upstream secret"
        );
        assert!(open_fly_token(&ring, "dep_b", &f).is_err());
    }

    #[test]
    fn old_key_records_open_and_are_stale_after_rotation() {
        let old = seal_env(&KeyRing::parse(K1).unwrap(), "dep_a", &env()).unwrap();
        let ring = KeyRing::parse(&format!("{K2},{K1}")).unwrap();
        assert!(is_stale(&ring, &old));
        assert_eq!(open_env(&ring, "dep_a", &old).unwrap(), env());
        let fresh = seal_env(&ring, "dep_a", &env()).unwrap();
        assert!(!is_stale(&ring, &fresh));
    }

    #[test]
    fn debug_output_names_variables_but_not_values() {
        let s = Secrets {
            env: env(),
            upstream_secret: "u".repeat(64),
        };
        let d = format!("{s:?}");
        assert!(d.contains("ACME_TOKEN") && !d.contains("canary") && !d.contains("uuuu"));
    }
}
