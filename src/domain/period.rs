//! Billing periods (`2025-09`) and the Vietnamese school year they fall in (September to August).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: u16,
    month: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a period is written YYYY-MM, e.g. 2025-09, with a year from 2000 to 2099")]
pub struct PeriodError;

impl Period {
    pub fn parse(text: &str) -> Result<Self, PeriodError> {
        let t = text.trim();
        let b = t.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit) {
            return Err(PeriodError);
        }
        let year: u16 = t[..4].parse().map_err(|_| PeriodError)?;
        let month: u8 = t[5..].parse().map_err(|_| PeriodError)?;
        if !(2000..=2099).contains(&year) || !(1..=12).contains(&month) {
            return Err(PeriodError);
        }
        Ok(Self { year, month })
    }

    /// The school year a period belongs to, named by the year it starts: 2025-09 to 2026-08 is 2025.
    pub fn school_year(self) -> u16 {
        if self.month >= 9 {
            self.year
        } else {
            self.year - 1
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Period::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_school_years() {
        let cases = [
            ("2025-09", 2025),
            ("2026-05", 2025),
            ("2026-08", 2025),
            ("2026-09", 2026),
        ];
        for (text, year) in cases {
            let p = Period::parse(text).unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(p.school_year(), year, "{text}");
        }
        for bad in [
            "2025-13",
            "2025-00",
            "25-09",
            "2025/09",
            "2025-9",
            "1999-09",
            "２０２５-09",
            "",
        ] {
            assert_eq!(Period::parse(bad), Err(PeriodError), "{bad}");
        }
    }
}
