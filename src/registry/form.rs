//! A deployable registry package turned into what a person fills in and, with their
//! values, into a launch: the package's arguments become argv slots (fixed, or filled from
//! named inputs, `{template}` variables included) and its environment variables become the
//! credential form. Every value is checked against what the entry declares (required,
//! choices, format) and reaches the server as one argv element or one variable — never
//! through a shell. Pure.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::error::{nested_field, FieldError};
use launch_spec::pypi_normalize;

/// The longest value a person may give one input.
pub const MAX_VALUE: usize = 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    String,
    Number,
    Boolean,
    Filepath,
}

impl Format {
    pub fn is_string(&self) -> bool {
        *self == Format::String
    }
}

/// Something the person may (or must) give: an argument's value or a template variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Input {
    pub key: String,
    pub description: Option<String>,
    pub required: bool,
    pub secret: bool,
    pub default: Option<String>,
    pub choices: Vec<String>,
    pub format: Format,
    pub placeholder: Option<String>,
    pub repeated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgKind {
    Positional,
    Named,
}

/// One argument of the package, in order: `template` with `{key}` for each input it uses
/// (none: a fixed value; a named argument is `name` then the value, two argv elements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub kind: ArgKind,
    pub name: Option<String>,
    pub template: String,
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvField {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
    pub secret: bool,
    pub default: Option<String>,
    pub choices: Vec<String>,
    pub format: Format,
    pub placeholder: Option<String>,
}

/// A deployable package as a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `npm` or `python` (the launch spec's runtime names).
    pub runtime: &'static str,
    pub registry: &'static str,
    pub package: String,
    pub version: Option<String>,
    pub slots: Vec<Slot>,
    pub inputs: Vec<Input>,
    pub env_vars: Vec<EnvField>,
    /// Variables the entry sets itself (no person's value), passed sealed with the rest.
    pub fixed_env: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

fn text(v: &Value, max: usize) -> Option<String> {
    let s: String = v
        .as_str()?
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    (!s.is_empty()).then_some(s)
}

fn format_of(v: &Value) -> Format {
    match v["format"].as_str() {
        Some("number") => Format::Number,
        Some("boolean") => Format::Boolean,
        Some("filepath") => Format::Filepath,
        _ => Format::String,
    }
}

fn choices(v: &Value) -> Vec<String> {
    v["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| text(c, MAX_VALUE))
        .take(100)
        .collect()
}

/// A key a person's JSON can name plainly: letters, digits, `_`, `-`, `.`; at most 64.
fn key_of(raw: &str) -> Option<String> {
    let k = raw.trim_start_matches('-');
    let ok = (1..=64).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then(|| k.to_string())
}

fn input(key: String, v: &Value) -> Input {
    Input {
        key,
        description: text(&v["description"], 1000),
        required: v["isRequired"].as_bool() == Some(true),
        secret: v["isSecret"].as_bool() == Some(true),
        default: text(&v["default"], MAX_VALUE),
        choices: choices(v),
        format: format_of(v),
        placeholder: text(&v["placeholder"], 200),
        repeated: v["isRepeated"].as_bool() == Some(true),
    }
}

/// `{name}` references in a template, in order, once each.
fn references(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        let name = &after[..close];
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &after[close + 1..];
    }
    out
}

/// `template` with every `{key}` in `values` replaced (others left as they are, as the
/// registry's format says).
fn fill(template: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

impl Form {
    /// The form of a package [`super::entry::refusal`] accepted.
    pub fn of(pkg: &Value) -> Form {
        let (runtime, registry) = match pkg["registryType"].as_str() {
            Some("pypi") => ("python", "pypi"),
            _ => ("npm", "npm"),
        };
        let id = pkg["identifier"].as_str().unwrap_or_default();
        let package = if registry == "pypi" {
            pypi_normalize(id)
        } else {
            id.to_string()
        };
        let mut form = Form {
            runtime,
            registry,
            package,
            version: pkg["version"].as_str().map(str::to_string),
            slots: Vec::new(),
            inputs: Vec::new(),
            env_vars: Vec::new(),
            fixed_env: Vec::new(),
            warnings: Vec::new(),
        };
        for (i, a) in pkg["packageArguments"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            form.add_argument(i, a);
        }
        for v in pkg["environmentVariables"].as_array().into_iter().flatten() {
            form.add_env(v);
        }
        form
    }

    fn add_input(&mut self, input: Input) {
        if !self.inputs.iter().any(|i| i.key == input.key) {
            self.inputs.push(input);
        }
    }

    fn add_argument(&mut self, index: usize, a: &Value) {
        let kind = match a["type"].as_str() {
            Some("named") => ArgKind::Named,
            _ => ArgKind::Positional,
        };
        let name = match kind {
            ArgKind::Named => match text(&a["name"], 100).filter(|n| n.starts_with('-')) {
                Some(n) => Some(n),
                None => {
                    self.warnings.push(
                        "The entry has a named argument without a flag name; it is left out."
                            .into(),
                    );
                    return;
                }
            },
            ArgKind::Positional => None,
        };
        match text(&a["value"], crate::registry::form::MAX_VALUE * 4) {
            Some(template) => {
                let vars = a["variables"].as_object();
                let mut inputs = Vec::new();
                for r in references(&template) {
                    // A reference the entry does not define stays literal text.
                    let Some(def) = vars.and_then(|m| m.get(&r)) else {
                        continue;
                    };
                    let Some(key) = key_of(&r) else {
                        continue;
                    };
                    let mut i = input(key.clone(), def);
                    i.repeated = false;
                    self.add_input(i);
                    inputs.push(key);
                }
                self.slots.push(Slot {
                    kind,
                    name,
                    template,
                    inputs,
                });
            }
            None => {
                let hint = match kind {
                    ArgKind::Positional => a["valueHint"].as_str(),
                    ArgKind::Named => name.as_deref(),
                };
                let key = hint
                    .and_then(key_of)
                    .unwrap_or_else(|| format!("arg{}", index + 1));
                let key = if self.inputs.iter().any(|i| i.key == key) {
                    format!("{key}_{}", index + 1)
                } else {
                    key
                };
                self.add_input(input(key.clone(), a));
                self.slots.push(Slot {
                    kind,
                    name,
                    template: format!("{{{key}}}"),
                    inputs: vec![key],
                });
            }
        }
    }

    fn add_env(&mut self, v: &Value) {
        let Some(name) = v["name"].as_str().map(str::to_string) else {
            return;
        };
        let secret = v["isSecret"].as_bool() == Some(true);
        if let Some(template) = text(&v["value"], MAX_VALUE * 4) {
            let vars = v["variables"].as_object();
            let refs: Vec<String> = references(&template)
                .into_iter()
                .filter(|r| vars.is_some_and(|m| m.contains_key(r)))
                .collect();
            let defaults: Option<BTreeMap<String, String>> = refs
                .iter()
                .map(|r| {
                    let def = vars.and_then(|m| m.get(r))?;
                    Some((r.clone(), text(&def["default"], MAX_VALUE)?))
                })
                .collect();
            match defaults {
                // Fixed by the entry (its variables all have defaults): set, not asked.
                Some(values) => {
                    self.fixed_env.push((name, fill(&template, &values)));
                    return;
                }
                // A value with parts to fill: the person gives the whole value.
                None => {
                    let any_secret = refs.iter().any(|r| {
                        vars.and_then(|m| m.get(r))
                            .is_some_and(|d| d["isSecret"].as_bool() == Some(true))
                    });
                    self.env_vars.push(EnvField {
                        name,
                        description: text(&v["description"], 1000),
                        required: v["isRequired"].as_bool() == Some(true),
                        secret: secret || any_secret,
                        default: None,
                        choices: Vec::new(),
                        format: Format::String,
                        placeholder: Some(template),
                    });
                    return;
                }
            }
        }
        self.env_vars.push(EnvField {
            name,
            description: text(&v["description"], 1000),
            required: v["isRequired"].as_bool() == Some(true),
            secret,
            default: text(&v["default"], MAX_VALUE),
            choices: choices(v),
            format: format_of(v),
            placeholder: text(&v["placeholder"], 200),
        });
    }

    /// The fixed arguments alone (what the analysis shape calls `args`; informational).
    pub fn fixed_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.slots.iter().filter(|s| s.inputs.is_empty()) {
            out.extend(s.name.clone());
            out.push(s.template.clone());
        }
        out
    }
}

/// "must be one of: …" naming as many choices as fit a field message (300 characters in
/// the contract): an entry may declare a hundred choices of a kilobyte each.
fn one_of(choices: &[String]) -> String {
    const ROOM: usize = 240;
    let mut out = String::from("must be one of: ");
    for (i, c) in choices.iter().enumerate() {
        let shown: String = c.chars().take(40).collect();
        let ellipsis = if shown.len() < c.len() { "…" } else { "" };
        let sep = if i == 0 { "" } else { ", " };
        if out.len() + sep.len() + shown.len() + ellipsis.len() > ROOM {
            out.push_str(&format!("{sep}… ({} in all)", choices.len()));
            return out;
        }
        out.push_str(sep);
        out.push_str(&shown);
        out.push_str(ellipsis);
    }
    out
}

/// Whether `value` is acceptable for something declared with `choices` and `format`;
/// the reason when it is not (never echoing the value).
pub fn check_value(value: &str, choices: &[String], format: Format) -> Result<(), String> {
    if value.len() > MAX_VALUE {
        return Err(format!("must be at most {MAX_VALUE} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if !choices.is_empty() && !choices.iter().any(|c| c == value) {
        return Err(one_of(choices));
    }
    match format {
        Format::Number => {
            let plain = value
                .strip_prefix('-')
                .unwrap_or(value)
                .split_once('.')
                .map_or((value.trim_start_matches('-'), None), |(a, b)| (a, Some(b)));
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !(digits(plain.0) && plain.1.is_none_or(digits)) {
                return Err("must be a number".into());
            }
        }
        Format::Boolean if value != "true" && value != "false" => {
            return Err("must be true or false".into())
        }
        Format::Filepath | Format::String if value.is_empty() => {
            return Err("must not be empty".into())
        }
        _ => {}
    }
    Ok(())
}

/// What a person gave for each input: one string, or several for a repeated input.
pub type Given = BTreeMap<String, Vec<String>>;

/// The argv after the package, from the person's values; every problem is named at once
/// (`arguments.<key>`).
pub fn arguments(form: &Form, given: &Given) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    for key in given.keys() {
        if !form.inputs.iter().any(|i| i.key == *key) {
            errors.push(FieldError::new(
                nested_field("arguments", key),
                "is not an argument this server takes",
            ));
        }
    }
    // Each input's values: the person's, else its default; checked.
    let mut values: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in &form.inputs {
        let field = format!("arguments.{}", i.key);
        let got = match given.get(&i.key) {
            Some(v) if v.len() > 1 && !i.repeated => {
                errors.push(FieldError::new(&field, "takes one value, not a list"));
                continue;
            }
            Some(v) if !v.is_empty() => v.clone(),
            _ => i.default.clone().into_iter().collect(),
        };
        if got.is_empty() {
            if i.required {
                errors.push(FieldError::new(&field, "is required by this server"));
            }
            continue;
        }
        if got.len() > 32 {
            errors.push(FieldError::new(&field, "takes at most 32 values"));
            continue;
        }
        match got
            .iter()
            .map(|v| check_value(v, &i.choices, i.format))
            .find_map(Result::err)
        {
            Some(why) => errors.push(FieldError::new(&field, why)),
            None => {
                values.insert(i.key.as_str(), got);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut argv = Vec::new();
    for s in &form.slots {
        let emitted: Vec<String> = match s.inputs.as_slice() {
            [] => vec![s.template.clone()],
            // A bare value slot: each of its values (a repeated input repeats the slot).
            [only] if s.template == format!("{{{only}}}") => {
                values.get(only.as_str()).cloned().unwrap_or_default()
            }
            keys => {
                let mut filled = BTreeMap::new();
                for k in keys {
                    if let Some(v) = values.get(k.as_str()).and_then(|v| v.first()) {
                        filled.insert(k.clone(), v.clone());
                    }
                }
                // An optional part left empty leaves the whole argument out.
                if filled.len() == keys.len() {
                    vec![fill(&s.template, &filled)]
                } else {
                    Vec::new()
                }
            }
        };
        for value in emitted {
            argv.extend(s.name.clone());
            argv.push(value);
        }
    }
    Ok(argv)
}

/// Whether a variable's value is acceptable for its declared `choices` and `format`: an
/// empty one is left to the required check, and free text (`string`) may hold newlines
/// (a PEM key), so only its choices bind it.
pub fn check_variable(value: &str, choices: &[String], format: Format) -> Result<(), String> {
    match format {
        _ if value.is_empty() => Ok(()),
        Format::String if choices.is_empty() || choices.iter().any(|c| c == value) => Ok(()),
        Format::String => Err(one_of(choices)),
        _ => check_value(value, choices, format),
    }
}

/// The person's credentials checked against the declared fields (`choices`, `format`).
/// Defaults and fixed values are added later, from the launch (`Launch::complete`, which
/// checks a replaced set the same way).
pub fn check_environment(form: &Form, given: &[(String, String)]) -> Result<(), Vec<FieldError>> {
    let errors: Vec<FieldError> = given
        .iter()
        .filter_map(|(k, v)| {
            let f = form.env_vars.iter().find(|f| f.name == *k)?;
            let why = check_variable(v, &f.choices, f.format).err()?;
            Some(FieldError::new(format!("credentials.{k}"), why))
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
