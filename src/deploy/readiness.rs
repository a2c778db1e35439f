//! Whether a deployment's MCP server answers: the runner's `/health` (`starting` 503,
//! `ready` 200, `failed` 503 with a short reason) read while a machine is provisioned, and
//! the words a person sees when it failed — the runner's reason plus the last lines of the
//! server's stderr from the runner's (already masked) `/logs`, bounded. A deployment is
//! `running` only once its runner said `ready` (see `lifecycle::provision`; the poll is
//! `lifecycle::live::FetchProbe`).

use serde_json::Value;

/// Lines of the server's stderr quoted in a failure message.
pub const TAIL_LINES: usize = 8;
/// Longest quoted line (characters) and longest whole message (bytes).
const MAX_LINE_CHARS: usize = 240;
pub const MAX_MESSAGE_BYTES: usize = 2000;
/// Between two looks at `/health` while a runner prepares its server.
pub const POLL_MS: u64 = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Starting,
    Ready,
    /// The runner gave up; its short reason (never stderr text, never a secret).
    Failed(String),
}

/// Reads a `/health` answer. A runner image from before readiness existed answers
/// `{"status": "ok"}` once it listens: that is all it can say, so it counts as ready.
/// Anything else unexpected (a proxy error page) counts as still starting, and the
/// caller's deadline decides.
pub fn parse_health(status: u16, body: &Value) -> Readiness {
    match (status, body["status"].as_str()) {
        (200, Some("ready" | "ok")) => Readiness::Ready,
        (_, Some("failed")) => Readiness::Failed(
            body["reason"]
                .as_str()
                .map(|r| bounded(r, MAX_LINE_CHARS))
                .unwrap_or_else(|| "the server could not be started".to_string()),
        ),
        _ => Readiness::Starting,
    }
}

fn bounded(s: &str, max_chars: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() <= max_chars {
        return clean.to_string();
    }
    let mut out: String = clean.chars().take(max_chars).collect();
    out.push('…');
    out
}

/// The last non-empty stderr lines from a `/logs` answer (`{"lines": [{"ts", "line"}]}`),
/// oldest first, each bounded.
pub fn stderr_tail(logs: &Value, n: usize) -> Vec<String> {
    let lines: Vec<String> = logs["lines"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["line"].as_str().or_else(|| l.as_str()))
                .map(|l| bounded(l, MAX_LINE_CHARS))
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let skip = lines.len().saturating_sub(n);
    lines.into_iter().skip(skip).collect()
}

/// "The MCP server did not start: {reason}." plus its last stderr lines, at most
/// [`MAX_MESSAGE_BYTES`] (the oldest quoted lines go first when it is too long).
pub fn failure_message(reason: &str, tail: &[String]) -> String {
    let head = format!(
        "The MCP server did not start: {}.",
        reason.trim_end_matches('.')
    );
    let mut lines: Vec<&str> = tail.iter().map(String::as_str).collect();
    loop {
        let msg = if lines.is_empty() {
            head.clone()
        } else {
            format!("{head} Its last output:\n{}", lines.join("\n"))
        };
        if msg.len() <= MAX_MESSAGE_BYTES || lines.is_empty() {
            let mut msg = msg;
            if msg.len() > MAX_MESSAGE_BYTES {
                let mut cut = MAX_MESSAGE_BYTES;
                while !msg.is_char_boundary(cut) {
                    cut -= 1;
                }
                msg.truncate(cut);
            }
            return msg;
        }
        lines.remove(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_answers_map_to_readiness() {
        assert_eq!(
            parse_health(200, &json!({"status": "ready"})),
            Readiness::Ready
        );
        assert_eq!(
            parse_health(503, &json!({"status": "starting"})),
            Readiness::Starting
        );
        assert_eq!(
            parse_health(
                503,
                &json!({"status": "failed", "reason": "the server exited (status 1)"})
            ),
            Readiness::Failed("the server exited (status 1)".into())
        );
        // An old runner image's plain "ok" is all it can say; a proxy error page is not.
        assert_eq!(
            parse_health(200, &json!({"status": "ok"})),
            Readiness::Ready
        );
        assert_eq!(parse_health(502, &Value::Null), Readiness::Starting);
        assert_eq!(
            parse_health(503, &json!({"status": "ok"})),
            Readiness::Starting
        );
    }

    #[test]
    fn a_failure_message_quotes_the_tail_within_its_bound() {
        let logs = json!({"lines": [
            {"ts": "t", "line": "[probe] npm warn exec"},
            {"ts": "t", "line": ""},
            {"ts": "t", "line": "[probe] Error: ACME_TOKEN is required\u{1b}[0m"},
        ], "dropped": 0});
        let tail = stderr_tail(&logs, TAIL_LINES);
        assert_eq!(tail.len(), 2);
        let m = failure_message("the server exited (status 1)", &tail);
        assert!(m.starts_with("The MCP server did not start: the server exited (status 1)."));
        assert!(m.contains("ACME_TOKEN is required"));
        assert!(!m.contains('\u{1b}'), "control characters are dropped");

        let noisy: Vec<String> = (0..50)
            .map(|i| format!("line {i} {}", "é".repeat(300)))
            .collect();
        let m = failure_message("x", &noisy);
        assert!(m.len() <= MAX_MESSAGE_BYTES, "{}", m.len());
        assert!(m.contains("line 49"), "the newest lines are kept");
        assert_eq!(stderr_tail(&json!({}), 3), Vec::<String>::new());
    }
}
