//! What the token, registration and revocation endpoints answer: RFC 6749 §5.1 token
//! responses and the §5.2 error form (`{"error", "error_description"}`), never the API's
//! own error shape, because OAuth clients parse these.

use serde_json::{json, Value};

use crate::oauth::metadata::SCOPE;
use crate::oauth::secret::ACCESS_TTL_MS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    pub fn body(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }
}

/// A successful token response: a new access token, and the refresh token that replaces
/// the one presented (if any).
pub fn tokens(access: &str, refresh: &str) -> Value {
    json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL_MS / 1000,
        "refresh_token": refresh,
        "scope": SCOPE,
    })
}
