//! The fee-item catalog: what a school may bill, on what legal basis, how often, up to what cap.
//!
//! Since 2025-26 public-school tuition is free (Resolution 217/2025/QH15); parents still pay
//! service collections whose maximum rates the province sets (HCMC: Resolution 18/2025/NQ-HĐND),
//! health insurance, uniforms, books, and private-school tuition.

use super::money::Vnd;
use super::period::Period;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Private-school tuition (public-school tuition is free since 2025-26).
    Tuition,
    Meals,
    Boarding,
    ForeignLanguage,
    Stem,
    DigitalSkills,
    Parking,
    HealthInsurance,
    Uniform,
    Books,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Billed per month, for at most [`MAX_MONTHS_PER_YEAR`] months of a school year.
    Monthly,
    /// Billed once per school year.
    Yearly,
    /// Billed once per student, ever.
    OneOff,
}

/// HCMC service collections are charged for the months of teaching, at most nine a year.
pub const MAX_MONTHS_PER_YEAR: usize = 9;

macro_rules! text_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn from_db(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(Category {
    Tuition => "tuition", Meals => "meals", Boarding => "boarding",
    ForeignLanguage => "foreign_language", Stem => "stem", DigitalSkills => "digital_skills",
    Parking => "parking", HealthInsurance => "health_insurance", Uniform => "uniform",
    Books => "books", Other => "other",
});
text_enum!(Cadence { Monthly => "monthly", Yearly => "yearly", OneOff => "one_off" });

/// A catalog item as the invoice rules need it.
#[derive(Debug, Clone)]
pub struct FeeItem {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub category: Category,
    pub mandatory: bool,
    pub cadence: Cadence,
    pub cap_per_period: Option<Vnd>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CadenceError {
    #[error("item {item} is already billed to this student for {period}")]
    AlreadyBilledForPeriod { item: String, period: String },
    #[error("item {item} is monthly and already billed for {MAX_MONTHS_PER_YEAR} months of school year {year}-{}", year + 1)]
    TooManyMonths { item: String, year: u16 },
    #[error("item {item} is yearly and already billed to this student in school year {year}-{}", year + 1)]
    AlreadyBilledThisYear { item: String, year: u16 },
    #[error("item {item} is one-off and already billed to this student")]
    AlreadyBilledOnce { item: String },
}

/// Whether billing `item` for `period` respects its cadence, given every period (from issued,
/// not voided, invoices) for which the same student was already billed that item.
pub fn check_cadence(
    item: &FeeItem,
    period: Period,
    billed: &[Period],
) -> Result<(), CadenceError> {
    let code = || item.code.clone();
    match item.cadence {
        Cadence::Monthly => {
            if billed.contains(&period) {
                return Err(CadenceError::AlreadyBilledForPeriod {
                    item: code(),
                    period: period.to_string(),
                });
            }
            let year = period.school_year();
            let mut months: Vec<Period> = billed
                .iter()
                .copied()
                .filter(|p| p.school_year() == year)
                .collect();
            months.sort();
            months.dedup();
            if months.len() >= MAX_MONTHS_PER_YEAR {
                return Err(CadenceError::TooManyMonths { item: code(), year });
            }
        }
        Cadence::Yearly => {
            let year = period.school_year();
            if billed.iter().any(|p| p.school_year() == year) {
                return Err(CadenceError::AlreadyBilledThisYear { item: code(), year });
            }
        }
        Cadence::OneOff => {
            if !billed.is_empty() {
                return Err(CadenceError::AlreadyBilledOnce { item: code() });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(cadence: Cadence) -> FeeItem {
        FeeItem {
            id: 1,
            code: "MEALS".into(),
            name: "Tiền ăn".into(),
            category: Category::Meals,
            mandatory: false,
            cadence,
            cap_per_period: None,
        }
    }

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    #[test]
    fn monthly_allows_nine_months_per_school_year() {
        let months: Vec<Period> = [
            "2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04",
        ]
        .iter()
        .map(|s| p(s))
        .collect();
        let monthly = item(Cadence::Monthly);
        assert_eq!(check_cadence(&monthly, p("2026-05"), &months), Ok(()));
        let mut nine = months.clone();
        nine.push(p("2026-05"));
        assert!(matches!(
            check_cadence(&monthly, p("2026-06"), &nine),
            Err(CadenceError::TooManyMonths { year: 2025, .. })
        ));
        // The next school year starts afresh.
        assert_eq!(check_cadence(&monthly, p("2026-09"), &nine), Ok(()));
        assert!(matches!(
            check_cadence(&monthly, p("2025-10"), &months),
            Err(CadenceError::AlreadyBilledForPeriod { .. })
        ));
    }

    #[test]
    fn yearly_and_one_off() {
        let yearly = item(Cadence::Yearly);
        assert_eq!(check_cadence(&yearly, p("2025-09"), &[]), Ok(()));
        assert!(check_cadence(&yearly, p("2026-03"), &[p("2025-09")]).is_err());
        assert_eq!(
            check_cadence(&yearly, p("2026-09"), &[p("2025-09")]),
            Ok(())
        );
        let once = item(Cadence::OneOff);
        assert_eq!(check_cadence(&once, p("2025-09"), &[]), Ok(()));
        assert!(check_cadence(&once, p("2030-09"), &[p("2025-09")]).is_err());
    }
}
