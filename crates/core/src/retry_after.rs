//! The Retry-After header, in both its forms: delay-seconds and an HTTP-date
//! (IMF-fixdate, e.g. `Wed, 21 Oct 2015 07:28:00 GMT`).

use crate::UnixMillis;

/// When the server asked us to retry, as an absolute time; `None` when the
/// header does not parse (it is then ignored, and plain backoff applies).
pub fn parse(value: &str, now: UnixMillis) -> Option<UnixMillis> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = value.parse().ok()?;
        return Some(now.saturating_add(secs.saturating_mul(1000)));
    }
    parse_http_date(value)
}

/// Parses an IMF-fixdate into Unix milliseconds.
pub fn parse_http_date(value: &str) -> Option<UnixMillis> {
    // "Wed, 21 Oct 2015 07:28:00 GMT"
    let rest = value.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let s: i64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_form_is_relative_to_now() {
        assert_eq!(parse("120", 1_000), Some(121_000));
        assert_eq!(parse(" 0 ", 5), Some(5));
    }

    #[test]
    fn date_form_is_absolute() {
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:28:00 GMT", 0),
            Some(1_445_412_480_000)
        );
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT", 99), Some(0));
        assert_eq!(
            parse("Sun, 22 Nov 2026 06:00:00 GMT", 0),
            Some(1_795_327_200_000)
        );
    }

    #[test]
    fn garbage_is_ignored() {
        for bad in [
            "",
            "soon",
            "-5",
            "1.5",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 PST",
            "Wed, 32 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse(bad, 0), None, "{bad}");
        }
    }
}
