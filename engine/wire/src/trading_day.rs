//! The trading day as the edges name it. OUCH and ITCH timestamps count
//! nanoseconds from midnight (UTC here), and every SoupBinTCP session of a
//! trading day — order entry, funding, market data — carries the same
//! name: the date of the journal's first command (`YYMMDD`) and the number
//! of end-of-day commands applied since (4 digits). Written once here so the
//! ports cannot disagree.

use crate::soupbin;

/// Nanoseconds in a day.
pub const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// Nanoseconds since midnight (UTC) of a Unix time in nanoseconds: the
/// timestamp field of OUCH and ITCH messages.
pub fn time_of_day_ns(unix_ns: u64) -> u64 {
    unix_ns % DAY_NS
}

/// The session name of trading day `day`: a 6-character prefix (the date
/// of the journal's first command, `YYMMDD`) and the day, 4 digits, right
/// justified in the SoupBinTCP session field.
///
/// ```
/// use wire::trading_day::session_name;
/// assert_eq!(&session_name("261122", 3), b"2611220003");
/// ```
pub fn session_name(prefix: &str, day: u64) -> [u8; soupbin::SESSION_BYTES] {
    let text = format!("{prefix:.6}{:04}", day % 10_000);
    soupbin::alpha_right_justified::<{ soupbin::SESSION_BYTES }>(&text)
        .unwrap_or([b' '; soupbin::SESSION_BYTES])
}

/// `YYMMDD` (UTC) of a Unix time in nanoseconds: the first part of the
/// SoupBinTCP session name.
pub fn yymmdd(timestamp_ns: u64) -> String {
    let days = (timestamp_ns / DAY_NS) as i64;
    // Civil date from days since 1970-01-01 (the proleptic Gregorian
    // calendar, in 400-year eras of 146 097 days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{:02}{month:02}{day:02}", year.rem_euclid(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_dates() {
        assert_eq!(yymmdd(0), "700101");
        // 2026-11-22T17:45:45Z.
        assert_eq!(yymmdd(1_795_369_545_000_000_000), "261122");
        // 2000-02-29 and 2024-12-31.
        assert_eq!(yymmdd(951_782_400_000_000_000), "000229");
        assert_eq!(yymmdd(1_735_603_200_000_000_000), "241231");
    }

    #[test]
    fn session_names_pad_and_wrap() {
        assert_eq!(&session_name("700101", 0), b"7001010000");
        assert_eq!(&session_name("261122", 12_345), b"2611222345");
        // A prefix longer than 6 is cut; a short one is right-justified.
        assert_eq!(&session_name("26112299", 1), b"2611220001");
        assert_eq!(&session_name("", 7), b"      0007");
    }

    #[test]
    fn time_of_day_wraps_at_midnight() {
        assert_eq!(time_of_day_ns(DAY_NS - 1), DAY_NS - 1);
        assert_eq!(time_of_day_ns(DAY_NS), 0);
        assert_eq!(time_of_day_ns(3 * DAY_NS + 42), 42);
    }
}
