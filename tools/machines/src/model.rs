//! The machine record as the Fly Machines API shows it, and the pure rules about it: the
//! config fields we honour, metadata filters, image references, instance ids.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Fields of `config` we act on; everything else is stored and echoed back untouched.
#[derive(Debug, Clone, Default)]
pub struct Honoured {
    pub env: Vec<(String, String)>,
    pub autostop: bool,
    pub autostart: bool,
    pub restart_policy: String,
    pub max_retries: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub id: String,
    pub name: String,
    pub state: String,
    pub region: String,
    pub instance_id: String,
    pub private_ip: String,
    pub config: Value,
    pub image_ref: Value,
    pub created_at: String,
    pub updated_at: String,
    pub events: Vec<Value>,
    pub host_status: String,
}

fn str_map(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_string()))
                    .ok_or_else(|| format!("{k} must be a string"))
            })
            .collect(),
        Some(_) => Err("must be an object of strings".into()),
    }
}

/// Reads what we honour from a machine `config`, refusing bodies Fly would refuse.
pub fn honoured(config: &Value) -> Result<Honoured, String> {
    let obj = config.as_object().ok_or("config must be an object")?;
    match obj.get("image") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err("config.image is required".into()),
    }
    let env = str_map(obj.get("env")).map_err(|e| format!("config.env: {e}"))?;
    // Checked, not kept: list filters read metadata from the stored config.
    str_map(obj.get("metadata")).map_err(|e| format!("config.metadata: {e}"))?;
    let service = obj
        .get("services")
        .and_then(Value::as_array)
        .and_then(|s| s.first());
    // Fly encodes autostop as "off"/"stop"/"suspend" or false/true.
    let autostop = match service.and_then(|s| s.get("autostop")) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "stop" || s == "suspend",
        _ => false,
    };
    let autostart = service
        .and_then(|s| s.get("autostart"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let restart = obj.get("restart");
    let restart_policy = restart
        .and_then(|r| r.get("policy"))
        .and_then(Value::as_str)
        .unwrap_or("on-failure")
        .to_string();
    if !matches!(restart_policy.as_str(), "no" | "always" | "on-failure") {
        return Err("config.restart.policy must be no, always or on-failure".into());
    }
    let max_retries = restart
        .and_then(|r| r.get("max_retries"))
        .and_then(Value::as_u64)
        .unwrap_or(10) as u32;
    Ok(Honoured {
        env,
        autostop,
        autostart,
        restart_policy,
        max_retries,
    })
}

/// Whether `metadata.{key}=value` filters all match.
pub fn metadata_matches(config: &Value, filters: &[(String, String)]) -> bool {
    let meta = config.get("metadata").and_then(Value::as_object);
    filters
        .iter()
        .all(|(k, v)| meta.and_then(|m| m.get(k)).and_then(Value::as_str) == Some(v.as_str()))
}

pub fn event(kind: &str, status: &str, ts_ms: i64) -> Value {
    json!({"type": kind, "status": status, "source": "user", "timestamp": ts_ms})
}

/// Fly's image reference, derived from the image string.
pub fn image_ref(image: &str) -> Value {
    let (repo, tag) = image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .unwrap_or((image, "latest"));
    let (registry, repository) = repo
        .split_once('/')
        .filter(|(r, _)| r.contains('.'))
        .unwrap_or(("docker.io", repo));
    json!({"registry": registry, "repository": repository, "tag": tag, "digest": "", "labels": Map::new()})
}

/// 26 characters of Crockford base32, the shape of Fly's instance ids (ULIDs).
pub fn ulid_like(rnd: &[u8; 16]) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut n = u128::from_be_bytes(*rnd);
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n & 31) as usize];
        n >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_body_needs_an_image_and_string_env() {
        assert!(honoured(&json!({})).is_err());
        assert!(honoured(&json!({"image": "x", "env": {"A": 1}})).is_err());
        assert!(honoured(&json!({"image": "x", "restart": {"policy": "sometimes"}})).is_err());
        let h = honoured(&json!({"image": "x", "env": {"A": "1"}, "services": [{"autostop": "stop", "autostart": true}], "restart": {"policy": "no"}})).unwrap();
        assert!(h.autostop && h.autostart);
        assert_eq!(
            (h.env.len(), h.restart_policy.as_str(), h.max_retries),
            (1, "no", 10)
        );
        assert!(
            honoured(&json!({"image": "x", "services": [{"autostop": false}]}))
                .map(|h| !h.autostop)
                .unwrap()
        );
    }

    #[test]
    fn metadata_filters_must_all_match() {
        let c = json!({"metadata": {"deployment": "dep_1", "owner": "u"}});
        assert!(metadata_matches(
            &c,
            &[("deployment".into(), "dep_1".into())]
        ));
        assert!(!metadata_matches(
            &c,
            &[("deployment".into(), "dep_2".into())]
        ));
        assert!(!metadata_matches(
            &json!({}),
            &[("deployment".into(), "dep_1".into())]
        ));
    }

    #[test]
    fn image_refs_and_instance_ids_have_fly_shapes() {
        assert_eq!(
            image_ref("registry.fly.io/catwalk-runner:v3")["repository"],
            "catwalk-runner"
        );
        assert_eq!(image_ref("registry.fly.io/catwalk-runner:v3")["tag"], "v3");
        assert_eq!(image_ref("catwalk-runner")["tag"], "latest");
        assert_eq!(ulid_like(&[0xff; 16]).len(), 26);
    }
}
