//! Wall-clock time in the one representation we store (ms since the Unix epoch) and the
//! one we show (RFC 3339, UTC).

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, in milliseconds since the epoch. Inside the Worker this is the runtime's clock
/// (which only advances across I/O, by design of the platform).
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        worker::Date::now().as_millis() as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub fn rfc3339(ms: i64) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_render_as_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_800_000_000_123), "2027-01-15T08:00:00.123Z");
    }
}
