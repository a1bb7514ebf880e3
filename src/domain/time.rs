//! Time in Vietnam: UTC+7 all year (no daylight saving since 1975), so a fixed offset is exact
//! and every local time maps to exactly one instant.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, Utc};

const OFFSET_HOURS: i64 = 7;

pub fn vietnam() -> FixedOffset {
    FixedOffset::east_opt((OFFSET_HOURS * 3600) as i32)
        .unwrap_or_else(|| unreachable!("UTC+7 is a valid offset"))
}

/// The instant of a Vietnamese local time.
pub fn local_to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    (local - Duration::hours(OFFSET_HOURS)).and_utc()
}

/// The Vietnamese calendar day of an instant.
pub fn vietnam_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&vietnam()).date_naive()
}

/// The instant a Vietnamese calendar day starts.
pub fn day_start(date: NaiveDate) -> DateTime<Utc> {
    local_to_utc(date.and_time(chrono::NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_days_start_at_17_utc_the_day_before() {
        let d = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
        assert_eq!(day_start(d).to_rfc3339(), "2025-08-31T17:00:00+00:00");
        let local = d.and_hms_opt(8, 30, 0).unwrap();
        assert_eq!(
            local_to_utc(local).with_timezone(&vietnam()).naive_local(),
            local
        );
    }
}
