//! Protocol revisions and the transport headers that carry them.

/// Revisions that use the `initialize` handshake and `Mcp-Session-Id` sessions.
pub const HANDSHAKE_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// Revisions of the stateless era (no sessions, per-request `_meta`).
pub const STATELESS_VERSIONS: &[&str] = &["2026-07-28"];
/// What a server assumes when a request after `initialize` carries no version header.
pub const DEFAULT_VERSION: &str = "2025-03-26";
/// The first revision whose servers send an SSE priming event and may close with `retry:`.
pub const PRIMING_SINCE: &str = "2025-11-25";

pub const HEADER_SESSION_ID: &str = "mcp-session-id";
pub const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const HEADER_LAST_EVENT_ID: &str = "last-event-id";
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";
/// Prefix of the open-ended parameter headers; intermediaries must forward unknown ones.
pub const HEADER_PARAM_PREFIX: &str = "mcp-param-";

pub fn is_handshake(version: &str) -> bool {
    HANDSHAKE_VERSIONS.contains(&version)
}

pub fn is_stateless(version: &str) -> bool {
    STATELESS_VERSIONS.contains(&version)
}

/// Revision strings are dates, so they compare correctly as strings.
pub fn at_least(version: &str, min: &str) -> bool {
    version >= min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_are_disjoint_and_dates_compare_as_strings() {
        assert!(HANDSHAKE_VERSIONS.iter().all(|v| !is_stateless(v)));
        assert!(is_handshake(DEFAULT_VERSION));
        assert!(at_least("2025-11-25", PRIMING_SINCE));
        assert!(!at_least("2025-06-18", PRIMING_SINCE));
    }
}
