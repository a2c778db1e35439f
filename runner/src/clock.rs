//! Wall-clock time as Unix milliseconds and RFC 3339 UTC text, without a date library:
//! the machines API stamps its records with it and `/logs` stamps every line.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-12-02T17:00:00Z` (seconds, as Fly's API writes them).
pub fn rfc3339(ms: i64) -> String {
    let (date, secs) = civil(ms);
    format!("{date}T{secs}Z")
}

/// `2026-12-02T17:00:00.123Z` (milliseconds, for log lines).
pub fn rfc3339_ms(ms: i64) -> String {
    let (date, secs) = civil(ms);
    format!("{date}T{secs}.{:03}Z", ms.rem_euclid(1000))
}

/// Days-from-civil in reverse: (`YYYY-MM-DD`, `hh:mm:ss`).
fn civil(ms: i64) -> (String, String) {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // 2026-12-02T17:00:00.123Z
        assert_eq!(rfc3339_ms(1_796_230_800_123), "2026-12-02T17:00:00.123Z");
        // A leap day.
        assert_eq!(rfc3339(1_709_208_000_000), "2024-02-29T12:00:00Z");
    }
}
