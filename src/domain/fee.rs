//! Transaction fees: the terms a provider publishes or a school agrees, and the one rule that
//! turns them into a fee in whole đồng.
//!
//! **Rounding rule.** fee = amount × percent / 100 + fixed, computed exactly, rounded **once** to
//! whole đồng half away from zero; then raised to the minimum and lowered to the maximum.

use super::catalog::text_enum;
use super::money::{round_dong, AmountError, Vnd};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Cash,
    BankTransfer,
    Card,
    Ewallet,
}

text_enum!(Channel { Cash => "cash", BankTransfer => "bank_transfer", Card => "card", Ewallet => "ewallet" });

/// Who bears a fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bearer {
    /// Deducted from what the school receives.
    School,
    /// Paid by the parent on top of the amount.
    Parent,
    /// Waived by the provider.
    Provider,
}

text_enum!(Bearer { School => "school", Parent => "parent", Provider => "provider" });

/// Complete terms, as in force for one payment.
#[derive(Debug, Clone, PartialEq)]
pub struct FeeTerms {
    pub percent: Decimal,
    pub fixed: Vnd,
    pub min: Option<Vnd>,
    pub max: Option<Vnd>,
    pub bearer: Bearer,
}

/// Terms as stored: a school agreement may leave any of them to the provider's published ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartialTerms {
    pub percent: Option<Decimal>,
    pub fixed: Option<Vnd>,
    pub min: Option<Vnd>,
    pub max: Option<Vnd>,
    pub bearer: Option<Bearer>,
}

impl PartialTerms {
    /// The agreement's terms where it sets them, the published ones elsewhere; `None` when
    /// neither gives a percent and a bearer.
    pub fn over(&self, published: Option<&PartialTerms>) -> Option<FeeTerms> {
        let base = published.cloned().unwrap_or_default();
        let terms = FeeTerms {
            percent: self.percent.or(base.percent)?,
            fixed: self.fixed.or(base.fixed).unwrap_or(Vnd::ZERO),
            min: self.min.or(base.min),
            max: self.max.or(base.max),
            bearer: self.bearer.or(base.bearer)?,
        };
        // An agreed maximum below the published minimum (or the reverse) is no usable terms.
        match (terms.min, terms.max) {
            (Some(min), Some(max)) if min > max => None,
            _ => Some(terms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("percent is from 0 to 100 with at most 4 decimals")]
    Percent,
    #[error("fixed, minimum and maximum fees are 0 or more")]
    Negative,
    #[error("the minimum fee is above the maximum")]
    MinAboveMax,
}

impl PartialTerms {
    pub fn validate(&self) -> Result<(), TermsError> {
        if let Some(p) = self.percent {
            if p < Decimal::ZERO || p > Decimal::ONE_HUNDRED || p.normalize().scale() > 4 {
                return Err(TermsError::Percent);
            }
        }
        if [self.fixed, self.min, self.max]
            .iter()
            .flatten()
            .any(|v| v.is_negative())
        {
            return Err(TermsError::Negative);
        }
        if let (Some(min), Some(max)) = (self.min, self.max) {
            if min > max {
                return Err(TermsError::MinAboveMax);
            }
        }
        Ok(())
    }
}

/// A computed fee and how it was computed, in words a parent can check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeQuote {
    pub amount: Vnd,
    pub basis: String,
}

fn pct_text(p: Decimal) -> String {
    format!("{}%", p.normalize())
}

/// Applies `terms` to a payment of `amount`.
pub fn quote(amount: Vnd, terms: &FeeTerms) -> Result<FeeQuote, AmountError> {
    let raw = Decimal::from(amount.dong()) * terms.percent / Decimal::ONE_HUNDRED
        + Decimal::from(terms.fixed.dong());
    let rounded = round_dong(raw)?;
    let mut fee = rounded;
    let mut basis = if terms.percent.is_zero() {
        format!("fixed {}", terms.fixed)
    } else if terms.fixed == Vnd::ZERO {
        format!("{} of {}", pct_text(terms.percent), amount)
    } else {
        format!(
            "{} of {} + {}",
            pct_text(terms.percent),
            amount,
            terms.fixed
        )
    };
    if let Some(min) = terms.min.filter(|m| fee < *m) {
        fee = min;
        basis.push_str(&format!(", minimum {min}"));
    } else if let Some(max) = terms.max.filter(|m| fee > *m) {
        fee = max;
        basis.push_str(&format!(", maximum {max}"));
    }
    Ok(FeeQuote { amount: fee, basis })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn terms(pct: &str, fixed: i64, min: Option<i64>, max: Option<i64>) -> FeeTerms {
        FeeTerms {
            percent: Decimal::from_str(pct).unwrap(),
            fixed: Vnd::new(fixed).unwrap(),
            min: min.map(|m| Vnd::new(m).unwrap()),
            max: max.map(|m| Vnd::new(m).unwrap()),
            bearer: Bearer::Parent,
        }
    }

    #[test]
    fn the_rounding_rule_in_a_table() {
        // (amount, percent, fixed, min, max, fee, basis)
        type Case = (
            i64,
            &'static str,
            i64,
            Option<i64>,
            Option<i64>,
            i64,
            &'static str,
        );
        let cases: &[Case] = &[
            (
                1_500_000,
                "1.1",
                0,
                Some(2_000),
                None,
                16_500,
                "1.1% of 1.500.000 ₫",
            ),
            (
                100_000,
                "1.1",
                0,
                Some(2_000),
                None,
                2_000,
                "1.1% of 100.000 ₫, minimum 2.000 ₫",
            ),
            // 1.1% of 45 = 0.495 → 0: one rounding, then the minimum.
            (
                45,
                "1.1",
                0,
                Some(2_000),
                None,
                2_000,
                "1.1% of 45 ₫, minimum 2.000 ₫",
            ),
            // Half away from zero: 0.5% of 1,001 = 5.005 → 5; 1.65% of 100 = 1.65 → 2; 2.5 → 3.
            (1_001, "0.5", 0, None, None, 5, "0.5% of 1.001 ₫"),
            (100, "1.65", 0, None, None, 2, "1.65% of 100 ₫"),
            (500, "0.5", 0, None, None, 3, "0.5% of 500 ₫"),
            (
                935_000,
                "0.88",
                1_100,
                None,
                None,
                9_328,
                "0.88% of 935.000 ₫ + 1.100 ₫",
            ),
            (
                50_000_000,
                "2.2",
                0,
                None,
                Some(50_000),
                50_000,
                "2.2% of 50.000.000 ₫, maximum 50.000 ₫",
            ),
            (1_235_000, "0", 3_300, None, None, 3_300, "fixed 3.300 ₫"),
            (1_235_000, "0", 0, None, None, 0, "fixed 0 ₫"),
        ];
        for (amount, pct, fixed, min, max, fee, basis) in cases {
            let q = quote(Vnd::new(*amount).unwrap(), &terms(pct, *fixed, *min, *max)).unwrap();
            assert_eq!(
                (q.amount.dong(), q.basis.as_str()),
                (*fee, *basis),
                "{amount} at {pct}%"
            );
        }
    }

    #[test]
    fn agreements_inherit_what_they_leave_out() {
        let published = PartialTerms {
            percent: Some(Decimal::from_str("1.1").unwrap()),
            fixed: None,
            min: Some(Vnd::new(2_000).unwrap()),
            max: None,
            bearer: Some(Bearer::Parent),
        };
        let agreement = PartialTerms {
            bearer: Some(Bearer::School),
            ..Default::default()
        };
        let t = agreement.over(Some(&published)).unwrap();
        assert_eq!(
            (t.bearer, t.min, t.fixed),
            (Bearer::School, Some(Vnd::new(2_000).unwrap()), Vnd::ZERO)
        );
        assert_eq!(t.percent, Decimal::from_str("1.1").unwrap());
        assert!(agreement.over(None).is_none(), "no percent anywhere");
        let low_max = PartialTerms {
            max: Some(Vnd::new(1_000).unwrap()),
            ..Default::default()
        };
        assert!(
            low_max.over(Some(&published)).is_none(),
            "merged minimum above the maximum"
        );
        assert_eq!(
            PartialTerms {
                min: Some(Vnd::new(5).unwrap()),
                max: Some(Vnd::new(4).unwrap()),
                ..Default::default()
            }
            .validate(),
            Err(TermsError::MinAboveMax)
        );
        assert_eq!(
            PartialTerms {
                percent: Some(Decimal::from(101)),
                ..Default::default()
            }
            .validate(),
            Err(TermsError::Percent)
        );
    }

    proptest! {
        #[test]
        fn fee_respects_min_and_max(amount in 0i64..=10_000_000_000, bp in 0u32..=500, min in 0i64..=10_000, extra in 0i64..=100_000) {
            let t = terms(&format!("{}.{:02}", bp / 100, bp % 100), 0, Some(min), Some(min + extra));
            let q = quote(Vnd::new(amount).unwrap(), &t).unwrap();
            prop_assert!(q.amount.dong() >= min && q.amount.dong() <= min + extra);
        }
    }
}
