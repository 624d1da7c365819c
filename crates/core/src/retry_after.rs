//! The Retry-After header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date
//! in any of the three forms recipients must accept (IMF-fixdate, the
//! obsolete RFC 850 and asctime forms), parsed by the `httpdate` crate.

use std::time::UNIX_EPOCH;

use crate::UnixMillis;

/// When the server asked us to retry, as an absolute time; `None` when the
/// header does not parse (it is then ignored, and plain backoff applies).
/// Never overflows: a huge delay saturates (the caller caps it anyway).
pub fn parse(value: &str, now: UnixMillis) -> Option<UnixMillis> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than an i64 holds is still "a very long time".
        let secs: i64 = value.parse().unwrap_or(i64::MAX);
        return Some(now.saturating_add(secs.saturating_mul(1000)));
    }
    parse_http_date(value)
}

/// Parses an HTTP-date into Unix milliseconds (`None` before 1970 or unreadable).
pub fn parse_http_date(value: &str) -> Option<UnixMillis> {
    let at = httpdate::parse_http_date(value).ok()?;
    let ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_form_is_relative_to_now() {
        assert_eq!(parse("120", 1_000), Some(121_000));
        assert_eq!(parse(" 0 ", 5), Some(5));
        assert_eq!(parse("99999999999999999999999", 5), Some(i64::MAX));
        assert_eq!(parse("9223372036854775807", 5), Some(i64::MAX));
    }

    #[test]
    fn every_date_form_rfc_9110_names() {
        let want = Some(1_445_412_480_000);
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:28:00 GMT", 0),
            want,
            "IMF-fixdate"
        );
        assert_eq!(
            parse("Wednesday, 21-Oct-15 07:28:00 GMT", 0),
            want,
            "RFC 850"
        );
        assert_eq!(parse("Wed Oct 21 07:28:00 2015", 0), want, "asctime");
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT", 99), Some(0));
        assert_eq!(
            parse("Sun, 22 Nov 2026 06:00:00 GMT", 0),
            Some(1_795_327_200_000)
        );
        assert_eq!(
            parse("Fri, 31 Dec 9999 23:59:59 GMT", 0),
            Some(253_402_300_799_000)
        );
    }

    #[test]
    fn garbage_and_overflow_are_ignored_not_panics() {
        for bad in [
            "",
            "soon",
            "-5",
            "1.5",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 PST",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 99999999999999999 07:28:00 GMT",
            "Wed, 21 Oct 2015 99:28:00 GMT",
        ] {
            assert_eq!(parse(bad, 0), None, "{bad}");
        }
    }
}
