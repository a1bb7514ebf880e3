//! Parent links: how long one lasts, and what its token looks like.
//!
//! A token is 32 random bytes in unpadded base64url (43 characters, 256 bits, well past the 128
//! OWASP ASVS 5.0 asks of a capability and the 120 of the W3C TAG's capability-URL guidance).
//! Its first characters are its prefix: shown in the accountant's list, so a printed notice can
//! be matched to its row, and the key failed attempts are counted by. The prefix is no secret;
//! the 220 bits after it are.

use super::time::{day_start, vietnam_date};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

/// Characters of a token.
pub const TOKEN_LEN: usize = 43;
/// Characters of its prefix.
pub const PREFIX_LEN: usize = 6;
/// The longest an expiry may be set ahead.
pub const MAX_DAYS_AHEAD: i64 = 400;

/// Whether `text` has a token's shape (43 base64url characters). Anything else is answered as a
/// wrong token, through the same look-up.
pub fn well_formed(text: &str) -> bool {
    text.len() == TOKEN_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The prefix failed attempts are counted by: a token's first characters, or, for text of
/// another shape, a fixed key of its own (so junk does not spend real links' budgets).
pub fn prefix(text: &str) -> &str {
    if well_formed(text) {
        &text[..PREFIX_LEN]
    } else {
        "~malformed"
    }
}

/// The last day a link issued on `today` works by default: 31 August, the end of the school
/// year (September to August) that `today` is in. From August on, the coming school year's:
/// the notices for September go home in August.
pub fn default_last_day(today: NaiveDate) -> NaiveDate {
    let year = if today.month() >= 8 {
        today.year() + 1
    } else {
        today.year()
    };
    NaiveDate::from_ymd_opt(year, 8, 31).unwrap_or(today)
}

/// Why a requested last day is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryError {
    Past,
    TooFar,
}

/// The last day a link works: `requested`, or the default; from today to `MAX_DAYS_AHEAD` on.
pub fn last_day(today: NaiveDate, requested: Option<NaiveDate>) -> Result<NaiveDate, ExpiryError> {
    let day = requested.unwrap_or_else(|| default_last_day(today));
    if day < today {
        return Err(ExpiryError::Past);
    }
    if day > today + Duration::days(MAX_DAYS_AHEAD) {
        return Err(ExpiryError::TooFar);
    }
    Ok(day)
}

/// The instant a link whose last day is `day` stops working: midnight after it, in Vietnam.
pub fn expires_at(day: NaiveDate) -> DateTime<Utc> {
    day_start(day + Duration::days(1))
}

/// Today in Vietnam.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    vietnam_date(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn a_link_lasts_to_the_end_of_the_school_year() {
        for (today, want) in [
            (d(2025, 9, 1), d(2026, 8, 31)),
            (d(2025, 12, 31), d(2026, 8, 31)),
            (d(2026, 1, 1), d(2026, 8, 31)),
            (d(2026, 7, 31), d(2026, 8, 31)),
            (d(2026, 8, 1), d(2027, 8, 31)),
            (d(2026, 8, 31), d(2027, 8, 31)),
        ] {
            assert_eq!(default_last_day(today), want, "today={today}");
        }
    }

    #[test]
    fn an_expiry_is_from_today_to_four_hundred_days_on() {
        let today = d(2026, 1, 10);
        assert_eq!(last_day(today, Some(today)), Ok(today));
        assert_eq!(last_day(today, Some(d(2026, 1, 9))), Err(ExpiryError::Past));
        assert_eq!(
            last_day(today, Some(today + Duration::days(401))),
            Err(ExpiryError::TooFar)
        );
        assert_eq!(last_day(today, None), Ok(d(2026, 8, 31)));
    }

    #[test]
    fn a_link_stops_at_midnight_in_vietnam() {
        assert_eq!(
            expires_at(d(2026, 8, 31)).to_rfc3339(),
            "2026-08-31T17:00:00+00:00"
        );
    }

    #[test]
    fn tokens_have_one_shape() {
        let t = "A".repeat(TOKEN_LEN);
        assert!(well_formed(&t) && prefix(&t) == "AAAAAA");
        assert!(!well_formed(&"A".repeat(42)) && !well_formed(&format!("{}=", "A".repeat(42))));
        assert_eq!(prefix("short"), "~malformed");
        assert!(!well_formed(&"é".repeat(22)));
    }
}
