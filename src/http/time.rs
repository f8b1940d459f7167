//! How the API writes and reads instants: RFC 3339 UTC strings out; RFC 3339 or Unix seconds in.
//! The database stores Unix seconds (or milliseconds where noted); only the API converts.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Unix milliseconds now, from the wall clock: for times that are display data (when a message
/// was posted, a file uploaded), not deadlines. Code whose behaviour depends on time takes a
/// clock instead (`auth::Clock`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix seconds as RFC 3339 (`2026-01-02T03:04:05Z`).
pub fn rfc3339(unix_secs: i64) -> String {
    rfc3339_ms(unix_secs.saturating_mul(1000))
}

/// Unix milliseconds as RFC 3339 with milliseconds when they are not zero.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_ms.to_string())
}

/// Parses `2026-01-02T03:04:05Z` (any offset) or plain Unix seconds into Unix milliseconds.
pub fn parse_instant_ms(text: &str) -> Option<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_500), "1970-01-01T00:00:01.5Z");
        assert_eq!(parse_instant_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(parse_instant_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_instant_ms("86400"), Some(86_400_000));
        assert_eq!(parse_instant_ms("yesterday"), None);
    }
}
