//! Every way the gateway itself fails a request, mapped in one place to an HTTP status and
//! a JSON-RPC error carrying the request's id, so a client always gets a message its SDK
//! can show instead of a bare proxy error.

use mcp_wire::jsonrpc::{error_response, INTERNAL_ERROR, SERVER_ERROR};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The deployment is stopped by its owner.
    Stopped,
    /// The deployment failed; its owner must restart it.
    Failed,
    /// The machine is still being created.
    Deploying,
    /// The machine could not be reached (connection refused, DNS, reset).
    Unreachable,
    /// The machine did not answer in time.
    Timeout,
    /// The machine answered something the gateway cannot use (e.g. refused our secret).
    BadUpstream,
    /// The session (ours) is unknown or has ended.
    UnknownSession,
    /// A fault of ours (storage, crypto).
    Internal,
}

impl Failure {
    pub fn status(&self) -> u16 {
        match self {
            Self::Stopped | Self::Failed | Self::Deploying => 503,
            Self::Unreachable | Self::BadUpstream => 502,
            Self::Timeout => 504,
            Self::UnknownSession => 404,
            Self::Internal => 500,
        }
    }

    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Deploying => Some(10),
            Self::Unreachable | Self::Timeout => Some(5),
            _ => None,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::Stopped => "This MCP server is stopped; its owner can start it again.",
            Self::Failed => "This MCP server failed to deploy or its machine was lost; its owner can restart it.",
            Self::Deploying => "This MCP server is still starting; retry shortly.",
            Self::Unreachable => "The MCP server's machine could not be reached.",
            Self::Timeout => "The MCP server's machine did not answer in time.",
            Self::BadUpstream => "The MCP server's machine answered unexpectedly.",
            Self::UnknownSession => "Unknown or expired session; initialize a new one.",
            Self::Internal => "The gateway failed to handle this request.",
        }
    }

    pub fn code(&self) -> i64 {
        match self {
            Self::Internal => INTERNAL_ERROR,
            _ => SERVER_ERROR,
        }
    }

    /// The JSON-RPC error body, with the request's id when there was one.
    pub fn body(&self, id: Option<&Value>) -> Value {
        error_response(id, self.code(), self.message(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failures_carry_the_request_id_and_a_status() {
        let b = Failure::Stopped.body(Some(&json!(3)));
        assert_eq!(b["id"], 3);
        assert_eq!(b["jsonrpc"], "2.0");
        assert!(b["error"]["message"].as_str().unwrap().contains("stopped"));
        assert_eq!(Failure::Timeout.status(), 504);
        assert_eq!(Failure::Deploying.retry_after(), Some(10));
        assert_eq!(Failure::UnknownSession.body(None)["id"], Value::Null);
    }
}
