//! Where and how to reach one deployment's runner: the ingress URL of its Fly app, the
//! machine Fly's proxy must pick, and the per-machine upstream secret. Pure data; the hop
//! itself (`send`, `get_json`) is implemented in `platform::machine`.

use serde::{Deserialize, Serialize};

/// Travels between the gateway object and the Worker in internal requests; never logged
/// (its `Debug` leaves the secret out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineLink {
    pub url: String,
    pub machine_id: String,
    pub secret: String,
}

impl std::fmt::Debug for MachineLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineLink")
            .field("url", &self.url)
            .field("machine_id", &self.machine_id)
            .finish()
    }
}
