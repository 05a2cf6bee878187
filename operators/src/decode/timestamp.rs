//! The one timestamp layout producers overwhelmingly send, read without
//! arrow-cast's general parser: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
//!
//! arrow-cast's parser builds a parser state and goes through chrono for
//! every value: about 8% of the decoder's time on the demo's events. This
//! reads only that exact layout and returns `None` for anything else
//! (offsets, a space for `T`, leap seconds, out-of-range fields), so the
//! caller falls back to arrow-cast and the result is always what arrow-cast
//! gives.

/// Milliseconds since the epoch of a UTC RFC 3339 timestamp in the layout
/// above, truncated to the millisecond as `timestamp_millis` does.
pub(super) fn rfc3339_utc_millis(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' {
        return None;
    }
    if s[16] != b':' || *s.last()? != b'Z' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])?;
    let minute = digits(&s[14..16])?;
    let second = digits(&s[17..19])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let millis = match &s[19..s.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(fraction)?;
            let mut ms = 0;
            for k in 0..3 {
                ms = ms * 10 + fraction.get(k).map_or(0, |d| i64::from(d - b'0'));
            }
            ms
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000 + millis)
}

/// ASCII digits as a number; `None` if any byte is not a digit.
fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use arrow::compute::kernels::cast_utils::string_to_datetime;
    use proptest::prelude::*;

    use super::rfc3339_utc_millis;

    fn arrow_cast(s: &str) -> Option<i64> {
        string_to_datetime(&chrono::Utc, s)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    #[test]
    fn reads_the_common_layout_as_arrow_cast_does() {
        for s in [
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:00:00.001Z",
            "1969-12-31T23:59:59.999Z",
            "2026-12-03T12:18:20.291Z",
            "2024-02-29T23:59:59.5Z",
            "2000-02-29T00:00:00.123456789Z",
            "1900-03-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            assert_eq!(rfc3339_utc_millis(s.as_bytes()), arrow_cast(s), "{s}");
            assert!(rfc3339_utc_millis(s.as_bytes()).is_some(), "{s}");
        }
    }

    #[test]
    fn leaves_every_other_layout_to_arrow_cast() {
        for s in [
            "2023-02-29T00:00:00Z",            // not a leap year
            "1900-02-29T00:00:00Z",            // nor is 1900
            "2026-13-01T00:00:00Z",            // month 13
            "2026-04-31T00:00:00Z",            // April has 30 days
            "2026-12-03T24:00:00Z",            // hour 24
            "2016-12-31T23:59:60Z",            // leap second
            "2026-12-03 12:18:20Z",            // space for T
            "2026-12-03T12:18:20+01:00",       // an offset
            "2026-12-03T12:18:20",             // no zone
            "2026-12-03T12:18:20.Z",           // empty fraction
            "2026-12-03T12:18:20.1234567890Z", // ten digits
            "2026-12-03t12:18:20z",            // lower case
            "+2026-12-03T12:18:20Z",
            "2026-12-03T12:18:2xZ",
        ] {
            assert_eq!(rfc3339_utc_millis(s.as_bytes()), None, "{s}");
        }
    }

    proptest! {
        /// Whatever the fast path accepts, arrow-cast accepts with the
        /// same value; what it declines, arrow-cast still reads.
        #[test]
        fn agrees_with_arrow_cast(
            y in 0i64..=9999, m in 0i64..=13, d in 0i64..=32,
            h in 0i64..=24, mi in 0i64..=60, s in 0i64..=60,
            frac in proptest::option::of("[0-9]{1,9}"),
        ) {
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}Z",
                frac.map(|f| format!(".{f}")).unwrap_or_default()
            );
            let fast = rfc3339_utc_millis(text.as_bytes());
            if let Some(ms) = fast {
                prop_assert_eq!(Some(ms), arrow_cast(&text), "{}", text);
            }
            let valid = (1..=12).contains(&m) && d >= 1 && d <= super::days_in_month(y, m)
                && h < 24 && mi < 60 && s < 60;
            prop_assert_eq!(fast.is_some(), valid, "{}", text);
        }
    }
}
