//! Whole-đồng money. VND has no minor unit in practice, so an amount is an `i64` count of đồng;
//! rates live in `rust_decimal` and every conversion back to đồng goes through [`round_dong`].

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest amount any single figure may carry: 1,000 billion đồng. Larger values are
/// typing errors or attacks, and staying far below `i64::MAX` keeps every sum overflow-free.
pub const MAX_DONG: i64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Vnd(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must not be negative")]
    Negative,
    #[error("must be at most {MAX_DONG} đồng")]
    TooLarge,
    #[error("must be a whole number of đồng")]
    Fractional,
    #[error("is not a number of đồng")]
    NotANumber,
}

impl Vnd {
    pub const ZERO: Vnd = Vnd(0);

    /// A signed amount (reductions and reversals are negative), bounded by [`MAX_DONG`].
    pub fn new(dong: i64) -> Result<Self, AmountError> {
        if dong.unsigned_abs() > MAX_DONG as u64 {
            return Err(AmountError::TooLarge);
        }
        Ok(Self(dong))
    }

    /// A non-negative amount, as every charge and payment is.
    pub fn non_negative(dong: i64) -> Result<Self, AmountError> {
        if dong < 0 {
            return Err(AmountError::Negative);
        }
        Self::new(dong)
    }

    /// Reads an amount as accountants type it: plain digits (`1500000`) or digits grouped by
    /// threes with `.`, `,` or spaces (`1.500.000`, `1,500,000`). Anything else, including a
    /// decimal part, is refused rather than guessed: `1.5` could be 1.5 or 1,500.
    pub fn parse_text(text: &str) -> Result<Self, AmountError> {
        let t = text.trim();
        let t = t
            .strip_suffix('₫')
            .or_else(|| t.strip_suffix("đ"))
            .or_else(|| t.strip_suffix("VND"))
            .unwrap_or(t)
            .trim();
        let (negative, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        if digits.is_empty() {
            return Err(AmountError::NotANumber);
        }
        let sep = digits.chars().find(|c| matches!(c, '.' | ',' | ' '));
        let plain: String = match sep {
            None => digits.to_string(),
            Some(sep) => {
                let groups: Vec<&str> = digits.split(sep).collect();
                let first_ok = (1..=3).contains(&groups[0].len());
                let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
                if !first_ok || !rest_ok {
                    return Err(if groups.len() == 2 && groups[1].len() < 3 {
                        AmountError::Fractional
                    } else {
                        AmountError::NotANumber
                    });
                }
                groups.concat()
            }
        };
        if !plain.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotANumber);
        }
        // Longer than 13 digits is over MAX_DONG anyway; this also keeps the parse from overflowing.
        if plain.len() > 13 {
            return Err(AmountError::TooLarge);
        }
        let value: i64 = plain.parse().map_err(|_| AmountError::NotANumber)?;
        Self::new(if negative { -value } else { value })
    }

    pub fn dong(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Sum that can never overflow for amounts built by this type (bounded by `MAX_DONG`
    /// and at most millions of terms), but checks anyway so a bug shows as an error.
    pub fn checked_add(self, other: Vnd) -> Option<Vnd> {
        self.0.checked_add(other.0).map(Vnd)
    }

    pub fn checked_sub(self, other: Vnd) -> Option<Vnd> {
        self.0.checked_sub(other.0).map(Vnd)
    }

    /// `1.500.000 ₫`: Vietnamese grouping with dots, as on a printed notice.
    pub fn formatted(self) -> String {
        let digits = self.0.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 4);
        if self.0 < 0 {
            out.push('-');
        }
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push('.');
            }
            out.push(ch);
        }
        out.push_str(" ₫");
        out
    }
}

impl std::ops::Neg for Vnd {
    type Output = Vnd;
    /// Bounded by `MAX_DONG` both ways, so negation cannot overflow.
    fn neg(self) -> Vnd {
        Vnd(-self.0)
    }
}

impl fmt::Display for Vnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.formatted())
    }
}

/// In the OpenAPI document: an integer within ±[`MAX_DONG`], as [`Vnd::new`] bounds it.
impl utoipa::PartialSchema for Vnd {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(-MAX_DONG))
            .maximum(Some(MAX_DONG))
            .description(Some(
                "Whole đồng, at most 1,000,000,000,000 either way (negative for reductions and reversals).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Vnd {}

impl<'de> Deserialize<'de> for Vnd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only JSON integers: 1500000.0 or "1500000" are refused, so no float ever becomes money.
        let raw = i64::deserialize(d)?;
        Vnd::new(raw).map_err(serde::de::Error::custom)
    }
}

/// The one rounding rule for money derived from a rate: round to whole đồng, half away from
/// zero (0.5 → 1, −0.5 → −1), exactly once. Callers apply caps or minimums after this.
pub fn round_dong(value: Decimal) -> Result<Vnd, AmountError> {
    let rounded = value.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let as_i64: i64 = rounded.try_into().map_err(|_| AmountError::TooLarge)?;
    Vnd::new(as_i64)
}

/// `percent`% of `amount`, rounded by [`round_dong`].
pub fn percent_of(amount: Vnd, percent: Decimal) -> Result<Vnd, AmountError> {
    let value = Decimal::from(amount.dong())
        .checked_mul(percent)
        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
        .ok_or(AmountError::TooLarge)?;
    round_dong(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    #[test]
    fn parses_what_accountants_type() {
        let ok = [
            ("1500000", 1_500_000),
            ("1.500.000", 1_500_000),
            ("1,500,000", 1_500_000),
            ("1 500 000", 1_500_000),
            ("  250000 ", 250_000),
            ("1.500.000 ₫", 1_500_000),
            ("750.000đ", 750_000),
            ("0", 0),
            ("-35.000", -35_000),
            ("999", 999),
        ];
        for (text, want) in ok {
            assert_eq!(Vnd::parse_text(text).map(Vnd::dong), Ok(want), "{text}");
        }
        let bad = [
            ("", AmountError::NotANumber),
            ("abc", AmountError::NotANumber),
            ("1.5", AmountError::Fractional),
            ("1500000.50", AmountError::Fractional),
            ("1.50", AmountError::Fractional),
            ("15.00.000", AmountError::NotANumber),
            ("1.500,000", AmountError::NotANumber),
            ("1e6", AmountError::NotANumber),
            ("99999999999999999999", AmountError::TooLarge),
            ("1000000000001", AmountError::TooLarge),
            ("+5", AmountError::NotANumber),
        ];
        for (text, want) in bad {
            assert_eq!(Vnd::parse_text(text), Err(want), "{text}");
        }
    }

    #[test]
    fn formats_with_dots_and_dong_sign() {
        assert_eq!(Vnd(1_500_000).formatted(), "1.500.000 ₫");
        assert_eq!(Vnd(0).formatted(), "0 ₫");
        assert_eq!(Vnd(999).formatted(), "999 ₫");
        assert_eq!(Vnd(1000).formatted(), "1.000 ₫");
        assert_eq!(Vnd(-35_000).formatted(), "-35.000 ₫");
    }

    #[test]
    fn rounds_half_away_from_zero_once() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let cases = [
            ("0.5", 1),
            ("1.5", 2),
            ("2.5", 3),
            ("2.4999", 2),
            ("-0.5", -1),
            ("-2.5", -3),
            ("16500.5", 16501),
        ];
        for (value, want) in cases {
            assert_eq!(round_dong(d(value)).unwrap().dong(), want, "{value}");
        }
        // 1.1% of 1,500,000 = 16,500 exactly; 70% of 1,234,567 = 864,196.9 → 864,197.
        assert_eq!(percent_of(Vnd(1_500_000), d("1.1")).unwrap().dong(), 16_500);
        assert_eq!(percent_of(Vnd(1_234_567), d("70")).unwrap().dong(), 864_197);
        assert_eq!(percent_of(Vnd(1_234_565), d("50")).unwrap().dong(), 617_283);
    }

    #[test]
    fn json_refuses_floats_and_strings() {
        assert!(serde_json::from_str::<Vnd>("1500000").is_ok());
        assert!(serde_json::from_str::<Vnd>("1500000.0").is_err());
        assert!(serde_json::from_str::<Vnd>("\"1500000\"").is_err());
        assert!(serde_json::from_str::<Vnd>("10000000000000").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(n in -MAX_DONG..=MAX_DONG) {
            let v = Vnd::new(n).unwrap();
            prop_assert_eq!(Vnd::parse_text(&v.formatted()), Ok(v));
        }

        #[test]
        fn percent_of_never_exceeds_the_amount(n in 0..=MAX_DONG, pct in 0u32..=100) {
            let v = Vnd::new(n).unwrap();
            let part = percent_of(v, Decimal::from(pct)).unwrap();
            prop_assert!(part.dong() >= 0 && part.dong() <= n);
        }
    }
}
