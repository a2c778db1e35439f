//! Re-initializing a session the runner lost: what the runner's answers to the stored
//! `initialize` and to `notifications/initialized` mean, and when one more try is worth it.
//!
//! A fresh child can die between its start and the notification (the machine's servers
//! killed while a herd of sessions recovers after a restart). That session is lost, not
//! refused: a second child usually starts fine, so the gateway tries once more before the
//! client sees an error. A refusal (the runner is full, backing off, or cannot start the
//! server) is final: trying again at once would only add load to a struggling machine.

use mcp_wire::sse;
use serde_json::Value;

/// How many times a recovery runs the handshake before it gives up.
pub const TRIES: usize = 2;

/// Why a re-initialize gave no usable session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setback {
    /// The fresh child went away before the handshake finished; another may not.
    Lost(String),
    /// The runner said no, or could not be reached; final for this recovery.
    Refused(String),
}

impl Setback {
    pub fn worth_retrying(&self) -> bool {
        matches!(self, Self::Lost(_))
    }

    pub fn into_message(self) -> String {
        match self {
            Self::Lost(m) | Self::Refused(m) => m,
        }
    }
}

/// The runner's answer to the `initialize` it was sent, as JSON or as an SSE stream (the
/// stream is opened before the child answers, so a child that dies first ends it with a
/// JSON-RPC error and the status stays 200).
pub fn initialize_answer(body: &str) -> Result<(), Setback> {
    let messages: Vec<Value> = if body.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(body).into_iter().collect()
    } else {
        sse::Parser::default()
            .push(&format!("{body}\n\n"))
            .into_iter()
            .filter_map(|e| serde_json::from_str(&e.data).ok())
            .collect()
    };
    // Notifications and server requests may come before the response.
    let answer = messages
        .iter()
        .find(|m| m.get("result").is_some() || m.get("error").is_some());
    match answer {
        Some(m) if m.get("result").is_some() => Ok(()),
        Some(m) => Err(Setback::Lost(format!(
            "re-initialize answered with an error: {}",
            m["error"]["message"].as_str().unwrap_or("(no message)")
        ))),
        None => Err(Setback::Lost(
            "re-initialize ended without an answer".to_string(),
        )),
    }
}

/// A non-200 answer to the `initialize`, with the runner's own words when it gave them
/// (full, backing off, cannot start the server).
pub fn initialize_refused(status: u16, body: &str) -> Setback {
    let said = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    Setback::Refused(
        format!("re-initialize answered {status} {said}")
            .trim_end()
            .to_string(),
    )
}

/// The answer to `notifications/initialized`: 404 means the fresh session is already gone
/// (its child exited right after answering).
pub fn notification_answer(status: u16) -> Result<(), Setback> {
    let why = format!("initialized notification answered {status}");
    match status {
        200..=299 => Ok(()),
        404 => Err(Setback::Lost(why)),
        _ => Err(Setback::Refused(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_in_json_or_in_a_stream_is_a_session() {
        let result = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18"}}"#;
        assert_eq!(initialize_answer(result), Ok(()));
        let log = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#;
        let stream = format!(
            "event: message\nid: 1-1\ndata: {log}\n\nevent: message\nid: 1-2\ndata: {result}\n\n"
        );
        assert_eq!(initialize_answer(&stream), Ok(()));
        // A stream cut right after its last data line still counts.
        assert_eq!(initialize_answer(&format!("data: {result}")), Ok(()));
    }

    #[test]
    fn a_child_that_died_before_answering_is_a_lost_session_worth_one_more_try() {
        let died = r#"data: {"jsonrpc":"2.0","id":0,"error":{"code":-32603,"message":"The MCP server process exited; start a new session."}}"#;
        let s = initialize_answer(died).unwrap_err();
        assert!(s.worth_retrying());
        assert!(s.into_message().contains("process exited"));
        let empty = initialize_answer(": keepalive\n\n").unwrap_err();
        assert!(empty.worth_retrying());
        assert!(initialize_answer("").unwrap_err().worth_retrying());
    }

    #[test]
    fn refusals_are_final_and_say_the_runners_words() {
        let busy = r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32000,"message":"The MCP server keeps exiting at start; backing off."}}"#;
        let s = initialize_refused(503, busy);
        assert!(!s.worth_retrying());
        assert_eq!(
            s.into_message(),
            "re-initialize answered 503 The MCP server keeps exiting at start; backing off."
        );
        assert_eq!(
            initialize_refused(502, "<html>").into_message(),
            "re-initialize answered 502"
        );
    }

    #[test]
    fn only_a_vanished_session_makes_the_notification_worth_retrying() {
        assert_eq!(notification_answer(202), Ok(()));
        assert!(notification_answer(404).unwrap_err().worth_retrying());
        assert!(!notification_answer(503).unwrap_err().worth_retrying());
        assert!(!notification_answer(401).unwrap_err().worth_retrying());
    }
}
