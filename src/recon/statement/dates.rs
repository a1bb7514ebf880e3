//! Dates and times as banks write them, read as Vietnam time.

use super::*;

pub(super) enum When {
    At(NaiveDateTime),
    Day(NaiveDate),
}

/// A date cell in `fmt`; a time after the date is accepted even when `fmt` has none, since
/// exports differ on that between screens of the same bank.
pub(super) fn parse_when(text: &str, fmt: &str) -> Option<When> {
    if let Ok(at) = NaiveDateTime::parse_from_str(text, fmt) {
        return Some(When::At(at));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, fmt) {
        return Some(When::Day(day));
    }
    let (day, time) = text.split_once(char::is_whitespace)?;
    let day = NaiveDate::parse_from_str(day, fmt).ok()?;
    Some(When::At(day.and_time(parse_time(time.trim())?)))
}

pub(super) fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

/// camt.053 `Dt` (local calendar day) or `DtTm` (with an offset, or else local time).
pub(super) fn parse_iso_when(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(day_start(day));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(local_to_utc)
}

/// `%d/%m/%Y` → `dd/mm/yyyy`, for messages read by accountants.
pub(super) fn human_date_format(fmt: &str) -> String {
    [
        ("%d", "dd"),
        ("%m", "mm"),
        ("%Y", "yyyy"),
        ("%y", "yy"),
        ("%H", "HH"),
        ("%M", "MM"),
        ("%S", "SS"),
    ]
    .iter()
    .fold(fmt.to_owned(), |acc, (from, to)| acc.replace(from, to))
}
