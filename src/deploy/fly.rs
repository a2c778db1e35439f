//! The Fly Machines request bodies a deployment needs (pure): the launch spec the runner
//! reads, the machine `config` (image, env, guest, service with auto-stop/auto-start, HTTP
//! check on `/health`, restart policy, metadata naming the deployment) and the name that
//! makes a retried create findable instead of duplicated.
//!
//! Isolation this body relies on (docs/fly.md): the machines app lives in its own Fly
//! private network, so tenant code cannot reach the operator's other apps; the only
//! service is the runner's port behind Fly's proxy (no 6PN listener of ours), and the
//! runner needs the per-machine upstream secret on every request.

use launch_spec::LaunchSpec;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::deploy::request::Launch;
use crate::deploy::secrets::Secrets;
use crate::error::AppResult;

/// The runner's listen port inside the machine (`PORT`, the service's `internal_port`).
pub const RUNNER_PORT: u16 = 8080;
/// Metadata key that names the deployment on its machine (list filter after a retried create).
pub const METADATA_KEY: &str = "catwalk_deployment";

pub struct MachineSpec<'a> {
    pub deployment_id: &'a str,
    pub image: &'a str,
    pub region: Option<&'a str>,
    /// What the runner starts (`CATWALK_LAUNCH`, see `crates/launch-spec`).
    pub launch: &'a LaunchSpec,
    /// The MCP server's credentials: become its environment inside the machine.
    pub credentials: &'a [(String, String)],
    /// The per-machine secret the gateway presents to the runner.
    pub upstream_secret: &'a str,
    pub memory_mb: u32,
}

/// The machine name: stable per deployment, so a create retried after a timeout can be
/// found by name (and by metadata) rather than creating a twin.
pub fn machine_name(deployment_id: &str) -> String {
    format!("catwalk-{}", deployment_id.replace('_', "-"))
}

/// The create body for a deployment under this Worker's settings (image, memory); a plan
/// whose package or version fails the launch grammar is refused here too.
pub fn machine_body(
    config: &Config,
    deployment_id: &str,
    launch: &Launch,
    region: Option<&str>,
    secrets: &Secrets,
) -> AppResult<Value> {
    Ok(create_body(&MachineSpec {
        deployment_id,
        image: &config.fly.runner_image,
        region,
        launch: &launch.spec()?,
        credentials: &secrets.env,
        upstream_secret: &secrets.upstream_secret,
        memory_mb: config.fly.memory_mb,
    }))
}

pub fn create_body(spec: &MachineSpec<'_>) -> Value {
    let mut env = Map::new();
    for (k, v) in spec.credentials {
        env.insert(k.clone(), json!(v));
    }
    // Runner settings last: a credential can never override them.
    env.insert(
        "CATWALK_LAUNCH".into(),
        json!(json!(spec.launch).to_string()),
    );
    env.insert(
        "CATWALK_UPSTREAM_SECRET".into(),
        json!(spec.upstream_secret),
    );
    env.insert("PORT".into(), json!(RUNNER_PORT.to_string()));
    let mut body = json!({
        "name": machine_name(spec.deployment_id),
        "config": {
            "image": spec.image,
            "env": env,
            "metadata": { METADATA_KEY: spec.deployment_id },
            "guest": { "cpu_kind": "shared", "cpus": 1, "memory_mb": spec.memory_mb },
            "services": [{
                "protocol": "tcp",
                "internal_port": RUNNER_PORT,
                "ports": [{ "port": 443, "handlers": ["tls", "http"] }, { "port": 80, "handlers": ["http"], "force_https": true }],
                "autostop": "stop",
                "autostart": true,
                "min_machines_running": 0,
                "concurrency": { "type": "requests", "soft_limit": 50, "hard_limit": 100 }
            }],
            "checks": {
                "health": { "type": "http", "port": RUNNER_PORT, "path": "/health", "interval": "15s", "timeout": "5s", "grace_period": "10s", "method": "GET" }
            },
            "restart": { "policy": "on-failure", "max_retries": 5 }
        }
    });
    if let Some(r) = spec.region {
        body["region"] = json!(r);
    }
    body
}

/// The Cloudflare location hint nearest a Fly region, so a deployment's gateway object is
/// created close to its machine (the hot path's object hop and machine hop then share a
/// continent). Unknown regions get no hint (Cloudflare places the object near the caller).
pub fn location_hint(region: &str) -> Option<&'static str> {
    Some(match region {
        "sea" | "sjc" | "lax" | "den" | "phx" | "yvr" | "qro" => "wnam",
        "iad" | "ewr" | "bos" | "ord" | "atl" | "mia" | "dfw" | "yyz" | "yul" => "enam",
        "gru" | "gig" | "scl" | "eze" | "bog" => "sam",
        "lhr" | "ams" | "fra" | "cdg" | "mad" | "arn" => "weur",
        "waw" | "otp" => "eeur",
        "nrt" | "hkg" | "sin" | "bom" => "apac",
        "syd" => "oc",
        "jnb" => "afr",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fly_regions_map_to_the_nearest_location_hint() {
        assert_eq!(location_hint("ord"), Some("enam"));
        assert_eq!(location_hint("sjc"), Some("wnam"));
        assert_eq!(location_hint("fra"), Some("weur"));
        assert_eq!(location_hint("syd"), Some("oc"));
        assert_eq!(location_hint("nowhere"), None);
    }
    use launch_spec::Runtime;

    fn launch() -> LaunchSpec {
        LaunchSpec {
            runtime: Runtime::Npm,
            package: "@acme/w".into(),
            version: Some("1.0.0".into()),
            args: vec!["stdio".into()],
        }
    }

    fn spec<'a>(creds: &'a [(String, String)], launch: &'a LaunchSpec) -> MachineSpec<'a> {
        MachineSpec {
            deployment_id: "dep_0a1b",
            image: "registry.fly.io/catwalk-machines:runner-abc",
            region: Some("ord"),
            launch,
            credentials: creds,
            upstream_secret: "upstream-secret-xyz-0123456789",
            memory_mb: 512,
        }
    }

    #[test]
    fn the_create_body_has_what_the_runner_and_fly_need() {
        let creds = vec![("ACME_TOKEN".to_string(), "t0k".to_string())];
        let b = create_body(&spec(&creds, &launch()));
        assert_eq!(b["name"], "catwalk-dep-0a1b");
        assert_eq!(b["region"], "ord");
        let c = &b["config"];
        assert_eq!(c["metadata"][METADATA_KEY], "dep_0a1b");
        assert_eq!(c["env"]["ACME_TOKEN"], "t0k");
        assert_eq!(c["env"]["PORT"], "8080");
        let launch: Value =
            serde_json::from_str(c["env"]["CATWALK_LAUNCH"].as_str().unwrap()).unwrap();
        assert_eq!(
            launch,
            json!({"runtime": "npm", "package": "@acme/w", "version": "1.0.0", "args": ["stdio"]})
        );
        assert_eq!(c["services"][0]["internal_port"], 8080);
        assert_eq!(
            (
                c["services"][0]["autostop"].as_str(),
                c["services"][0]["autostart"].as_bool()
            ),
            (Some("stop"), Some(true))
        );
        assert_eq!(c["checks"]["health"]["path"], "/health");
        assert_eq!(c["guest"]["memory_mb"], 512);
    }

    #[test]
    fn a_credential_cannot_override_the_runner_settings() {
        let creds = vec![
            (
                "CATWALK_UPSTREAM_SECRET".to_string(),
                "attacker".to_string(),
            ),
            (
                "CATWALK_LAUNCH".to_string(),
                "{\"argv\":[\"sh\",\"-c\",\"id\"]}".to_string(),
            ),
            ("PORT".to_string(), "1".to_string()),
        ];
        let b = create_body(&spec(&creds, &launch()));
        assert_eq!(
            b["config"]["env"]["CATWALK_UPSTREAM_SECRET"],
            "upstream-secret-xyz-0123456789"
        );
        assert!(b["config"]["env"]["CATWALK_LAUNCH"]
            .as_str()
            .unwrap()
            .contains("@acme/w"));
        assert_eq!(b["config"]["env"]["PORT"], "8080");
    }
}
