//! The review queue's vocabulary: why a payment waits for an accountant, and the suggestions it
//! waits with.

use crate::domain::money::Vnd;
use crate::recon::{Index, ReviewReason, Suggestion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the ledger itself finds wrong with a payment, beside what the engine could not decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerIssue {
    /// It repeats a transfer already booked: a refund candidate.
    Duplicate,
    /// Notified, but the bank statement shows no such credit.
    NoStatementLine,
    /// The bank credited less than was paid: a fee the payment does not record was kept.
    FeeMismatch,
    /// The bank (or the sender's transaction list) credited another amount than the
    /// notification said, under the same reference.
    CreditedAmountDiffers,
}

crate::domain::catalog::text_enum!(LedgerIssue {
    Duplicate => "duplicate", NoStatementLine => "no_statement_line", FeeMismatch => "fee_mismatch",
    CreditedAmountDiffers => "credited_amount_differs",
});

/// Why an exception is in the queue: the engine's reason, or the ledger's. Both are plain
/// snake_case words on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ExceptionKind {
    Review(ReviewReason),
    Ledger(LedgerIssue),
}

impl ExceptionKind {
    pub fn as_str(&self) -> String {
        match self {
            ExceptionKind::Review(r) => serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            ExceptionKind::Ledger(l) => l.as_str().to_string(),
        }
    }

    pub fn from_db(text: &str) -> Option<Self> {
        LedgerIssue::from_db(text)
            .map(ExceptionKind::Ledger)
            .or_else(|| {
                serde_json::from_value(serde_json::Value::String(text.to_string()))
                    .ok()
                    .map(ExceptionKind::Review)
            })
    }
}

/// Where an exception stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStatus {
    /// Waiting for an accountant.
    Open,
    /// Allocated, by the accountant or by reconciling again.
    Matched,
    /// The money stays as credit; the dismissed invoices are never suggested for it again.
    Dismissed,
    /// The money goes back to the payer.
    Refund,
}

crate::domain::catalog::text_enum!(ExceptionStatus {
    Open => "open", Matched => "matched", Dismissed => "dismissed", Refund => "refund",
});

/// One invoice of a suggestion, and what would go to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuggestedAllocation {
    pub invoice_id: i64,
    pub payment_code: String,
    #[schema(value_type = i64)]
    pub amount: Vnd,
}

/// A possible reading of the memo, with the evidence behind it in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuggestionView {
    pub allocations: Vec<SuggestedAllocation>,
    /// e.g. "name matches", "amount equals the balance".
    pub evidence: String,
    /// strong | medium | weak
    pub strength: String,
}

/// The invoices of a review's top suggestion: what an open review claims (rule
/// `period_in_review`).
pub fn top_invoices(views: &[SuggestionView]) -> Vec<i64> {
    views
        .first()
        .map(|v| v.allocations.iter().map(|a| a.invoice_id).collect())
        .unwrap_or_default()
}

/// [`top_invoices`] as stored beside the suggestions (`exceptions.claims`): the ids joined by
/// commas, so that reading every open review's claims, which each batch of deliveries does,
/// parses no JSON.
pub fn claims_text(views: &[SuggestionView]) -> String {
    top_invoices(views)
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What [`claims_text`] wrote; `None` if it is not that.
pub fn parse_claims(text: &str) -> Option<Vec<i64>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',').map(|id| id.parse().ok()).collect()
}

/// `allocations` as shown, with each invoice's payment code.
pub fn views(allocations: &[(i64, Vnd)], index: &Index) -> Vec<SuggestedAllocation> {
    allocations
        .iter()
        .map(|(id, amount)| SuggestedAllocation {
            invoice_id: *id,
            payment_code: index
                .code(*id)
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            amount: *amount,
        })
        .collect()
}

pub fn suggestion_view(s: &Suggestion, index: &Index) -> SuggestionView {
    SuggestionView {
        allocations: views(&s.allocations, index),
        evidence: s.describe(),
        strength: serde_json::to_value(s.strength)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_one_word_each_way() {
        for kind in [
            ExceptionKind::Ledger(LedgerIssue::Duplicate),
            ExceptionKind::Ledger(LedgerIssue::CreditedAmountDiffers),
            ExceptionKind::Review(ReviewReason::Unmatched),
            ExceptionKind::Review(ReviewReason::MaybeTruncated),
        ] {
            let text = kind.as_str();
            assert_eq!(ExceptionKind::from_db(&text), Some(kind), "{text}");
            assert_eq!(serde_json::to_value(kind).unwrap(), text.as_str());
        }
        assert_eq!(ExceptionKind::from_db("no_such_kind"), None);
    }
}

#[cfg(test)]
mod claims_tests {
    use super::*;

    fn view(ids: &[i64]) -> SuggestionView {
        SuggestionView {
            allocations: ids
                .iter()
                .map(|&invoice_id| SuggestedAllocation {
                    invoice_id,
                    payment_code: format!("QD{invoice_id}"),
                    amount: Vnd::new(1_000).unwrap(),
                })
                .collect(),
            evidence: "name matches".into(),
            strength: "strong".into(),
        }
    }

    #[test]
    fn claims_are_the_top_suggestions_invoices_and_read_back_as_written() {
        for views in [
            vec![],
            vec![view(&[])],
            vec![view(&[7])],
            vec![view(&[7, 12, 900_000_001]), view(&[3])],
        ] {
            let text = claims_text(&views);
            assert_eq!(parse_claims(&text), Some(top_invoices(&views)), "{text}");
        }
        assert_eq!(claims_text(&[view(&[7, 12]), view(&[3])]), "7,12");
        assert_eq!(parse_claims("7,x"), None);
        assert_eq!(parse_claims(",7"), None);
    }
}
