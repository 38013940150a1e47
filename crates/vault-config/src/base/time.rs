//! UTC times as certificates hold them and people read them: a civil date
//! and time as seconds since the Unix epoch, RFC 3339 text, `SystemTime`.
//!
//! Seconds are `i64` so that any date X.509 can write (years 0000-9999,
//! before the epoch too) converts without overflow or panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). `month` is 1-12.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A UTC date and time, as a certificate's `Time` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: i64,
    pub(crate) day: i64,
    pub(crate) hour: i64,
    pub(crate) minute: i64,
    pub(crate) second: i64,
}

impl Civil {
    /// Seconds since the Unix epoch, or `None` for a date or time that does
    /// not exist (month 13, February 30, 24:00, a year outside 0-9999).
    pub(crate) fn unix(self) -> Option<i64> {
        let Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        } = self;
        let valid = (0..=9999).contains(&year)
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && (0..=23).contains(&hour)
            && (0..=59).contains(&minute)
            && (0..=59).contains(&second);
        valid.then(|| {
            days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        })
    }
}

/// RFC 3339 text of seconds since the Unix epoch: `2026-12-07T10:00:00Z`.
pub(crate) fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The `SystemTime` of seconds since the Unix epoch (before it too).
pub(crate) fn system_time(unix: i64) -> SystemTime {
    let offset = Duration::from_secs(unix.unsigned_abs());
    let t = if unix >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// Seconds since the Unix epoch of `t` (negative before it, saturating).
pub(crate) fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Civil {
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    #[test]
    fn civil_times_round_trip_through_unix_seconds() {
        assert_eq!(civil(1970, 1, 1, 0, 0, 0).unix(), Some(0));
        // `date -u -d 2026-12-07T10:00:00Z +%s`
        assert_eq!(civil(2026, 12, 7, 10, 0, 0).unix(), Some(1_796_637_600));
        assert_eq!(rfc3339(1_796_637_600), "2026-12-07T10:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            civil(2000, 2, 29, 23, 59, 59)
                .unix()
                .map(rfc3339)
                .as_deref(),
            Some("2000-02-29T23:59:59Z")
        );
        for day in [-800_000, -1, 0, 59, 10_957, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn dates_that_do_not_exist_are_refused() {
        assert_eq!(civil(2026, 2, 29, 0, 0, 0).unix(), None);
        assert_eq!(civil(2100, 2, 29, 0, 0, 0).unix(), None);
        assert_eq!(civil(2026, 13, 1, 0, 0, 0).unix(), None);
        assert_eq!(civil(2026, 4, 31, 0, 0, 0).unix(), None);
        assert_eq!(civil(2026, 1, 1, 24, 0, 0).unix(), None);
        assert_eq!(civil(10_000, 1, 1, 0, 0, 0).unix(), None);
    }

    #[test]
    fn system_times_on_both_sides_of_the_epoch() {
        assert_eq!(unix(system_time(1_796_637_600)), 1_796_637_600);
        assert_eq!(unix(system_time(-86_400)), -86_400);
    }
}
