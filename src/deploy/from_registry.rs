//! A registry entry and a person's values → the [`Launch`] a deployment keeps: the entry's
//! first runnable package, its arguments filled and checked, the person's variables
//! checked against the entry's `choices`/`format`, its variables' defaults and fixed
//! values kept as presets (`Launch::complete` adds them). No analysis: the entry is the
//! plan. Pure.

use serde_json::Value;

use crate::deploy::request::{Launch, RegistryPick, Variable};
use crate::error::{AppError, AppResult, FieldError};
use crate::registry::entry::{Entry, Status};
use crate::registry::form::{self, Form};
use crate::registry::{runnable, why_not};

pub fn launch(
    doc: &Value,
    entry: &Entry,
    pick: &RegistryPick,
    credentials: &[(String, String)],
) -> AppResult<Launch> {
    if entry.status == Status::Deleted {
        return Err(AppError::field(
            "registry",
            "was deleted from the registry; choose another version or server",
        ));
    }
    let Some(pkg) = runnable(doc) else {
        return Err(AppError::field(
            "registry",
            format!("cannot be deployed here. {}", why_not(entry)),
        ));
    };
    let form = Form::of(pkg);
    let mut fields: Vec<FieldError> = Vec::new();
    let args = form::arguments(&form, &pick.arguments).unwrap_or_else(|e| {
        fields.extend(e);
        Vec::new()
    });
    if let Err(e) = form::check_environment(&form, credentials) {
        fields.extend(e);
    }
    if !fields.is_empty() {
        return Err(AppError::Validation { fields });
    }
    let mut env_vars: Vec<Variable> = form
        .env_vars
        .iter()
        .map(|v| Variable {
            name: v.name.clone(),
            required: v.required && v.default.is_none(),
            secret: v.secret,
            preset: v.default.clone(),
            fixed: false,
            choices: v.choices.clone(),
            format: v.format,
        })
        .collect();
    env_vars.extend(form.fixed_env.iter().map(|(name, value)| Variable {
        name: name.clone(),
        required: false,
        secret: false,
        preset: Some(value.clone()),
        fixed: true,
        choices: Vec::new(),
        format: form::Format::String,
    }));
    let launch = Launch {
        runtime: form.runtime.to_string(),
        package: form.package.clone(),
        version: form.version.clone(),
        args,
        env_vars,
        arbitrary_env: false,
    };
    if !launch.launchable() {
        return Err(AppError::field(
            "arguments",
            "make a command line we do not run (too many values, or one too long)",
        ));
    }
    Ok(launch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::entry::read;
    use crate::registry::fixtures::load;
    use crate::registry::form::Given;

    fn pick(args: &[(&str, &[&str])]) -> RegistryPick {
        RegistryPick {
            name: "io.github.catwalk-test/argv-echo".into(),
            version: None,
            arguments: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect::<Given>(),
        }
    }

    #[test]
    fn an_entry_and_values_make_a_launch_whose_variables_check_like_any_plan() {
        let doc = load("argv-echo");
        let entry = read(&doc).unwrap();
        let creds = [("ECHO_TOKEN".to_string(), "s3cret".to_string())];
        let launch = launch(
            &doc,
            &entry,
            &pick(&[("greeting", &["hi; rm -rf ~"]), ("path", &["a", "b"])]),
            &creds,
        )
        .unwrap();
        let sealed = launch.complete(&creds).unwrap();
        assert_eq!(
            (
                launch.runtime.as_str(),
                launch.package.as_str(),
                launch.version.as_deref()
            ),
            ("npm", "catwalk-argv-echo", Some("1.0.0"))
        );
        assert_eq!(
            launch.args,
            [
                "stdio",
                "--greeting",
                "hi; rm -rf ~",
                "--mode",
                "careful",
                "a",
                "b"
            ]
        );
        assert_eq!(
            sealed,
            [
                ("ECHO_TOKEN".to_string(), "s3cret".to_string()),
                ("ECHO_REGION".to_string(), "eu".to_string())
            ]
        );
        launch.check(&sealed).unwrap();
        // The secret the entry requires is required here too.
        let bare = launch.complete(&[]).unwrap();
        assert!(launch.check(&bare).is_err());
        // A replaced set keeps the defaults, and a fixed value cannot be given.
        let mut weather = load("weather");
        weather["server"]["name"] = "io.github.catwalk-test/argv-echo".into();
        let w = super::launch(&weather, &read(&weather).unwrap(), &pick(&[]), &[]).unwrap();
        let set = w.complete(&[("ACME_API_KEY".into(), "k".into())]).unwrap();
        assert_eq!(
            set,
            [
                ("ACME_API_KEY".to_string(), "k".to_string()),
                ("ACME_UNITS".to_string(), "metric".to_string()),
                ("ACME_USER_AGENT".to_string(), "catwalk/1".to_string())
            ]
        );
        w.check(&set).unwrap();
        let e = w
            .complete(&[("ACME_USER_AGENT".into(), "mine".into())])
            .unwrap_err();
        assert_eq!(e.status(), 422);
        // A replaced set is held to the entry's choices and format as at create.
        let e = w
            .complete(&[
                ("ACME_UNITS".into(), "kelvin".into()),
                ("ACME_TIMEOUT".into(), "soon".into()),
                ("ACME_API_KEY".into(), "k\nwith a newline".into()),
            ])
            .unwrap_err();
        let AppError::Validation { fields } = e else {
            panic!("{e:?}")
        };
        let named: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            named,
            ["credentials.ACME_UNITS", "credentials.ACME_TIMEOUT"]
        );
        // What is stored round-trips with its presets, choices and format; an analysis plan's guesses do not
        // become presets.
        let stored: Launch = serde_json::from_value(serde_json::to_value(&w).unwrap()).unwrap();
        assert_eq!(stored, w);
        let plan = serde_json::json!({"runtime": "npm", "package": "x", "env_vars": [{"name": "A", "default": "guess"}]});
        let guessed = Launch::from_plan(&plan).unwrap();
        assert_eq!(guessed.env_vars[0].preset, None);
        assert!(guessed.env_vars[0].choices.is_empty());
    }

    #[test]
    fn entries_that_cannot_run_and_bad_values_are_422_naming_the_field() {
        for name in ["oci-only", "remote-only", "deleted"] {
            let doc = load(name);
            let e = launch(&doc, &read(&doc).unwrap(), &pick(&[]), &[]).unwrap_err();
            assert_eq!(e.status(), 422, "{name}");
            let AppError::Validation { fields } = e else {
                panic!("{name}")
            };
            assert_eq!(fields[0].field, "registry");
        }
        let doc = load("argv-echo");
        let e = launch(
            &doc,
            &read(&doc).unwrap(),
            &pick(&[("mode", &["reckless"]), ("retries", &["3; id"])]),
            &[("ECHO_REGION".into(), "mars".into())],
        )
        .unwrap_err();
        let AppError::Validation { fields } = e else {
            panic!()
        };
        let mut names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "arguments.greeting",
                "arguments.mode",
                "arguments.retries",
                "credentials.ECHO_REGION"
            ]
        );
    }
}
