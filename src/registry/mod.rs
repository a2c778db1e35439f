//! The official MCP registry as a source of servers: [`fetch`] asks it (cached, its
//! failures classified), [`entry`] reads its answers into our normalized entries and says
//! which packages we can run, [`form`] turns a runnable package into what a person fills
//! in and, with their values, into a launch. [`detail`] is the analysis-shaped answer of
//! `GET /api/registry/servers/{name}`.

pub mod entry;
pub mod fetch;
pub mod form;

use serde_json::{json, Value};

use crate::registry::entry::{refusal, Entry, Status};
use crate::registry::form::Form;
use crate::time::rfc3339;

/// The first package of the entry we can run, if any (the registry lists them in the
/// publisher's order of preference).
pub fn runnable(doc: &Value) -> Option<&Value> {
    doc["server"]["packages"]
        .as_array()?
        .iter()
        .take(16)
        .find(|p| refusal(p).is_none())
}

/// Why an entry cannot be deployed here, in words a person can act on.
pub fn why_not(entry: &Entry) -> String {
    if entry.status == Status::Deleted {
        return "It was deleted from the registry.".into();
    }
    if let Some(p) = entry.packages.iter().find_map(|p| p.reason.clone()) {
        return p;
    }
    if !entry.remotes.is_empty() {
        return "It is only offered as a hosted server: connect your client to its URL directly."
            .into();
    }
    "It names no package to run.".into()
}

/// `GET /api/registry/servers/{name}`: the entry, and — when it can run here — the shape
/// `POST /api/analyze` answers with, plus its arguments and their inputs.
pub fn detail(doc: &Value, entry: &Entry, cached: bool, now_ms: i64) -> Value {
    let form = (entry.status != Status::Deleted)
        .then(|| runnable(doc))
        .flatten()
        .map(Form::of);
    let mut warnings: Vec<String> = Vec::new();
    if entry.status == Status::Deprecated {
        warnings.push("Its publisher marked this server deprecated.".into());
    }
    let (deployable, reason) = match &form {
        Some(_) => (true, None),
        None => (false, Some(why_not(entry))),
    };
    match form {
        Some(f) => {
            warnings.extend(f.warnings.iter().cloned());
            json!({
                "server": entry,
                "deployable": deployable,
                "reason": reason,
                "package": f.package,
                "registry": f.registry,
                "version": f.version,
                "runtime": f.runtime,
                "transport": "stdio",
                "args": f.fixed_args(),
                "arguments": f.slots,
                "inputs": f.inputs,
                "env_vars": f.env_vars,
                "tools": [], "resources": [], "prompts": [],
                "warnings": warnings,
                "analyzer": ["registry"],
                "cached": cached,
                "analyzed_at": rfc3339(now_ms),
            })
        }
        None => json!({
            "server": entry,
            "deployable": deployable,
            "reason": reason,
            "package": null, "registry": null, "version": null, "runtime": null, "transport": null,
            "args": [], "arguments": [], "inputs": [], "env_vars": [],
            "tools": [], "resources": [], "prompts": [],
            "warnings": warnings,
            "analyzer": ["registry"],
            "cached": cached,
            "analyzed_at": rfc3339(now_ms),
        }),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::Value;

    pub fn load(name: &str) -> Value {
        let text = match name {
            "weather" => include_str!("../../tests/fixtures/registry/weather.json"),
            "files" => include_str!("../../tests/fixtures/registry/files.json"),
            "oci-only" => include_str!("../../tests/fixtures/registry/oci-only.json"),
            "remote-only" => include_str!("../../tests/fixtures/registry/remote-only.json"),
            "deleted" => include_str!("../../tests/fixtures/registry/deleted.json"),
            "argv-echo" => include_str!("../../tests/fixtures/registry/argv-echo.json"),
            "list-page1" => include_str!("../../tests/fixtures/registry/list-page1.json"),
            "list-page2" => include_str!("../../tests/fixtures/registry/list-page2.json"),
            other => panic!("no fixture {other}"),
        };
        serde_json::from_str(text).expect("fixture is JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::entry::{read, read_list, Status};
    use super::fixtures::load;
    use super::form::{arguments, check_environment, check_value, Form, Format, Given};
    use super::*;

    fn given(pairs: &[(&str, &[&str])]) -> Given {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn an_npm_entry_is_normalized_and_only_https_urls_survive() {
        let e = read(&load("weather")).unwrap();
        assert_eq!(e.name, "io.github.acme/weather");
        assert_eq!(e.title.as_deref(), Some("Acme Weather"));
        assert_eq!((e.status, e.deployable), (Status::Active, true));
        assert_eq!(e.icons.len(), 1, "the http icon is dropped");
        assert_eq!(e.icons[0].sizes, ["48x48", "96x96"]);
        assert_eq!(
            e.repository.as_ref().unwrap().source.as_deref(),
            Some("github")
        );
        assert_eq!(e.published_at.as_deref(), Some("2026-09-01T10:00:00Z"));
        let p = &e.packages[0];
        assert_eq!(
            (
                p.registry_type.as_str(),
                p.identifier.as_str(),
                p.version.as_deref(),
                p.transport.as_str()
            ),
            ("npm", "@acme/weather-mcp", Some("2.1.0"), "stdio")
        );
        assert!(p.deployable && p.reason.is_none());
    }

    #[test]
    fn packages_we_cannot_run_say_why_and_remotes_are_listed_with_their_url() {
        let e = read(&load("oci-only")).unwrap();
        assert!(!e.deployable);
        let reasons: Vec<&str> = e
            .packages
            .iter()
            .map(|p| p.reason.as_deref().unwrap())
            .collect();
        assert!(reasons[0].contains("container image"), "{reasons:?}");
        assert!(reasons[1].contains("MCP bundle"), "{reasons:?}");
        assert!(reasons[2].contains("streamable-http"), "{reasons:?}");
        assert!(reasons[3].contains("npx itself"), "{reasons:?}");
        assert!(
            reasons[4].contains("other than the public npm"),
            "{reasons:?}"
        );
        assert!(why_not(&e).contains("container image"));
        let r = read(&load("remote-only")).unwrap();
        assert!(!r.deployable && r.packages.is_empty());
        assert_eq!(r.remotes[0].url, "https://mcp.example.com/mcp");
        assert_eq!(r.remotes[0].kind, "streamable-http");
        assert!(!r.remotes[0].deployable && r.remotes[0].reason.contains("hosted"));
        assert!(why_not(&r).contains("hosted"));
        let d = read(&load("deleted")).unwrap();
        assert_eq!((d.status, d.deployable), (Status::Deleted, false));
        assert!(why_not(&d).contains("deleted"));
    }

    #[test]
    fn hostile_packages_are_never_runnable() {
        for (field, value) in [
            ("identifier", serde_json::json!("-c")),
            ("identifier", serde_json::json!("x; rm -rf /")),
            ("version", serde_json::json!("https://evil.example/x.tgz")),
            ("version", serde_json::json!("^1.2.0")),
            (
                "registryBaseUrl",
                serde_json::json!("http://registry.npmjs.org"),
            ),
        ] {
            let mut doc = load("weather");
            doc["server"]["packages"][0][field] = value.clone();
            assert!(runnable(&doc).is_none(), "{field}={value}");
        }
        let mut doc = load("weather");
        doc["server"]["packages"][0]["environmentVariables"][0]["name"] = "NODE_OPTIONS".into();
        assert!(refusal(&doc["server"]["packages"][0])
            .unwrap()
            .contains("NODE_OPTIONS"));
        let mut doc = load("weather");
        doc["server"]["packages"][0]["packageArguments"] =
            serde_json::json!([{"type": "named", "name": "--token", "isSecret": true}]);
        assert!(refusal(&doc["server"]["packages"][0])
            .unwrap()
            .contains("secret"));
        let mut doc = load("weather");
        doc["server"]["packages"][0]["runtimeArguments"] =
            serde_json::json!([{"type": "named", "name": "-y"}]);
        assert!(
            runnable(&doc).is_some(),
            "npx's own -y is what we pass anyway"
        );
    }

    #[test]
    fn names_and_lists_that_are_not_the_registrys_shape_are_refused() {
        for bad in ["noslash", "a/b/c", "../..", "a b/c", "/x", "x/"] {
            let mut doc = load("weather");
            doc["server"]["name"] = bad.into();
            assert!(read(&doc).is_none(), "{bad}");
        }
        assert!(read_list(&serde_json::json!({"servers": "x"})).is_none());
        assert!(read_list(&serde_json::json!([1, 2])).is_none());
        let (items, next) = read_list(&load("list-page1")).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(next.as_deref(), Some("io.github.acme/containers:1.0.0"));
        let (items, next) = read_list(&load("list-page2")).unwrap();
        assert_eq!((items.len(), next), (3, None));
    }

    #[test]
    fn arguments_become_slots_and_inputs_and_fill_into_argv_in_order() {
        let doc = load("files");
        let form = Form::of(runnable(&doc).unwrap());
        assert_eq!(
            (form.runtime, form.package.as_str()),
            ("python", "acme-files-mcp")
        );
        let keys: Vec<&str> = form.inputs.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["mode", "port", "label", "root_dir"]);
        assert_eq!(form.fixed_args(), ["serve", "--log-level", "info"]);
        // The env var whose value has parts to fill is asked for whole, and is secret
        // because one of its parts is.
        assert_eq!(form.env_vars[0].name, "FILES_DB_URL");
        assert!(form.env_vars[0].secret);
        assert_eq!(
            form.env_vars[0].placeholder.as_deref(),
            Some("postgres://{user}@{host}/files")
        );
        let argv = arguments(
            &form,
            &given(&[("root_dir", &["/data/a", "/data/b; rm -rf ~"])]),
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "serve",
                "--mode",
                "ro",
                "--log-level",
                "info",
                "--port",
                "8080",
                "/data/a",
                "/data/b; rm -rf ~"
            ]
        );
        let argv = arguments(
            &form,
            &given(&[
                ("root_dir", &["/srv"]),
                ("mode", &["rw"]),
                ("port", &["9000"]),
                ("label", &["$(id)"]),
            ]),
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "serve",
                "--mode",
                "rw",
                "--log-level",
                "info",
                "--port",
                "9000",
                "--label",
                "$(id)",
                "/srv"
            ]
        );
    }

    #[test]
    fn every_bad_argument_is_named_at_once() {
        let doc = load("files");
        let form = Form::of(runnable(&doc).unwrap());
        let errors = arguments(
            &form,
            &given(&[
                ("mode", &["rx"]),
                ("port", &["eighty"]),
                ("nope", &["1"]),
                ("label", &["a", "b"]),
            ]),
        )
        .unwrap_err();
        let mut fields: Vec<(String, String)> =
            errors.into_iter().map(|e| (e.field, e.message)).collect();
        fields.sort();
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "arguments.label",
                "arguments.mode",
                "arguments.nope",
                "arguments.port",
                "arguments.root_dir"
            ]
        );
        assert!(fields[1].1.contains("one of: ro, rw"), "{fields:?}");
        assert!(fields[3].1.contains("number"));
        assert!(fields[4].1.contains("required"));
        let ctl = arguments(&form, &given(&[("root_dir", &["a\nb"])])).unwrap_err();
        assert!(ctl[0].message.contains("control"));
    }

    #[test]
    fn refusals_name_hostile_keys_and_long_choice_lists_within_the_contracts_bounds() {
        let doc = load("files");
        let form = Form::of(runnable(&doc).unwrap());
        let long_key = format!("k\u{1b}[31m{}", "x".repeat(5000));
        let errors = arguments(
            &form,
            &given(&[
                (long_key.as_str(), &["1"]),
                ("\u{0}\u{7}", &["1"]),
                ("root_dir", &["/srv"]),
            ]),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(
            fields.contains(&"arguments"),
            "nothing printable names the parent: {fields:?}"
        );
        let named = errors.iter().find(|e| e.field != "arguments").unwrap();
        assert!(named.field.len() <= 200 && !named.field.chars().any(char::is_control));
        assert!(named.field.starts_with("arguments.k[31m"));

        // A hundred choices of a kilobyte each: the message stays a sentence.
        let choices: Vec<String> = (0..100)
            .map(|i| format!("{i}{}", "c".repeat(1023)))
            .collect();
        let why = check_value("other", &choices, Format::String).unwrap_err();
        assert!(why.len() <= 300, "{} bytes", why.len());
        assert!(
            why.starts_with("must be one of: 0cc") && why.ends_with("(100 in all)"),
            "{why}"
        );
        let short = ["ro".to_string(), "rw".to_string()];
        assert_eq!(
            check_value("rx", &short, Format::String).unwrap_err(),
            "must be one of: ro, rw"
        );
    }

    #[test]
    fn variables_get_defaults_fixed_values_and_their_declared_checks() {
        let doc = load("weather");
        let form = Form::of(runnable(&doc).unwrap());
        let names: Vec<&str> = form.env_vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["ACME_API_KEY", "ACME_UNITS", "ACME_TIMEOUT"]);
        assert_eq!(
            form.fixed_env,
            [("ACME_USER_AGENT".to_string(), "catwalk/1".to_string())]
        );
        check_environment(
            &form,
            &[("ACME_API_KEY".into(), "k\nwith a newline".into())],
        )
        .unwrap();
        let errors = check_environment(
            &form,
            &[
                ("ACME_UNITS".into(), "kelvin".into()),
                ("ACME_TIMEOUT".into(), "soon".into()),
                ("ACME_API_KEY".into(), "fine".into()),
            ],
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["credentials.ACME_UNITS", "credentials.ACME_TIMEOUT"]
        );
    }

    #[test]
    fn the_detail_is_the_analysis_shape_or_says_why_not() {
        let doc = load("weather");
        let e = read(&doc).unwrap();
        let d = detail(&doc, &e, false, 0);
        assert_eq!(d["deployable"], true);
        assert_eq!(d["package"], "@acme/weather-mcp");
        assert_eq!(
            (d["registry"].as_str(), d["runtime"].as_str()),
            (Some("npm"), Some("npm"))
        );
        assert_eq!(d["version"], "2.1.0");
        assert_eq!(d["env_vars"][0]["secret"], true);
        assert_eq!(
            d["env_vars"][1]["choices"],
            serde_json::json!(["metric", "imperial"])
        );
        assert_eq!(d["analyzer"], serde_json::json!(["registry"]));
        assert_eq!(d["server"]["name"], "io.github.acme/weather");
        let files = load("files");
        let d = detail(&files, &read(&files).unwrap(), true, 0);
        assert!(d["warnings"][0].as_str().unwrap().contains("deprecated"));
        assert_eq!(d["arguments"][3]["template"], "{port}");
        assert_eq!(d["inputs"][3]["repeated"], true);
        for name in ["oci-only", "remote-only", "deleted"] {
            let doc = load(name);
            let d = detail(&doc, &read(&doc).unwrap(), false, 0);
            assert_eq!(d["deployable"], false, "{name}");
            assert!(
                d["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{name}"
            );
            assert!(d["package"].is_null());
        }
    }
}
