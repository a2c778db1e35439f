//! A loopback official MCP registry (its v0.1 wire format) from the fixtures of
//! `tests/fixtures/registry/`, written from the registry's OpenAPI and server.json schema.

use serde_json::{json, Value};

use crate::fake::{FakeServer, Reply};

/// The fixtures that are single entries (the others are list pages).
pub const ENTRIES: &[&str] = &[
    "weather",
    "files",
    "oci-only",
    "remote-only",
    "deleted",
    "argv-echo",
];

/// One fixture, parsed.
pub fn fixture(name: &str) -> Value {
    let path = crate::repo_root().join(format!("tests/fixtures/registry/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

/// The registry path of one server version (the name's slash encoded, as the API says).
pub fn version_path(name: &str, version: &str) -> String {
    format!(
        "/v0.1/servers/{}/versions/{}",
        name.replace('/', "%2F"),
        version.replace('+', "%2B")
    )
}

/// The registry's answers on `fake` under `/registry`: `list-page1` for any list query,
/// every fixture entry and each of `extra` by name (latest or its version), and the
/// registry's 404 for anything else. Returns the names it knows.
pub fn publish(fake: &FakeServer, extra: Vec<Value>) -> Vec<String> {
    fake.on(
        "GET",
        "/registry/v0.1/servers/*",
        Reply::json(404, &json!({"error": "Server not found"})),
    );
    fake.on(
        "GET",
        "/registry/v0.1/servers",
        Reply::json(200, &fixture("list-page1")),
    );
    let mut names = Vec::new();
    for entry in ENTRIES.iter().map(|f| fixture(f)).chain(extra) {
        let name = entry["server"]["name"].as_str().expect("name").to_string();
        let version = entry["server"]["version"].as_str().expect("version");
        for v in ["latest", version] {
            fake.on(
                "GET",
                &format!("/registry{}", version_path(&name, v)),
                Reply::json(200, &entry),
            );
        }
        names.push(name);
    }
    names
}
