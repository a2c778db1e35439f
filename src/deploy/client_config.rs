//! Ready-to-paste snippets for the clients people use, each in that client's real format:
//! Claude Desktop (`mcpServers` through `mcp-remote`, since its config file speaks stdio),
//! the Claude Code CLI (`claude mcp add --transport http`), Cursor (`mcpServers` with `url`
//! and `headers`) and VS Code (`servers` with `type: "http"`).

use serde_json::{json, Value};

/// `name` must already be a safe deployment name; the token is embedded because these
/// snippets are shown once, with the token, and never stored.
pub fn snippets(name: &str, url: &str, token: &str) -> Value {
    let auth = format!("Bearer {token}");
    json!({
        "claude_desktop": {
            "mcpServers": {
                name: {
                    "command": "npx",
                    "args": ["-y", "mcp-remote", url, "--header", format!("Authorization:{auth}")]
                }
            }
        },
        "claude_code": format!("claude mcp add --transport http {name} {url} --header \"Authorization: {auth}\""),
        "cursor": { "mcpServers": { name: { "url": url, "headers": { "Authorization": auth } } } },
        "vscode": { "servers": { name: { "type": "http", "url": url, "headers": { "Authorization": auth } } } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_gets_the_url_and_the_bearer_header_in_its_own_shape() {
        let s = snippets("weather", "https://edge.example/api/mcp/dep_1", "cwk_abc");
        assert_eq!(
            s["cursor"]["mcpServers"]["weather"]["url"],
            "https://edge.example/api/mcp/dep_1"
        );
        assert_eq!(s["vscode"]["servers"]["weather"]["type"], "http");
        assert_eq!(
            s["vscode"]["servers"]["weather"]["headers"]["Authorization"],
            "Bearer cwk_abc"
        );
        assert!(s["claude_code"].as_str().unwrap().starts_with(
            "claude mcp add --transport http weather https://edge.example/api/mcp/dep_1"
        ));
        assert_eq!(
            s["claude_desktop"]["mcpServers"]["weather"]["args"][2],
            "https://edge.example/api/mcp/dep_1"
        );
    }
}
