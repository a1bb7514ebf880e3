//! Ledger rules that need no database: what an invoice's status is, what a parent paid out and
//! what a school keeps, and receipt numbers.

use super::fee::Bearer;
use super::money::Vnd;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Nothing paid yet.
    Open,
    PartiallyPaid,
    Paid,
    /// More allocated than billed; the difference is for refund or another invoice.
    Overpaid,
    /// Voided with a reason; kept for history, never billed.
    Void,
}

super::catalog::text_enum!(InvoiceStatus {
    Open => "open", PartiallyPaid => "partially_paid", Paid => "paid", Overpaid => "overpaid", Void => "void",
});

/// The provider name of a plain bank transfer into the school's own account, with no
/// intermediary (found on a bank statement, or entered by hand).
pub const PLAIN_TRANSFER: &str = "bank";

/// How an allocation was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllocationMethod {
    /// At the cash desk, to the invoices the parent brought.
    CashDesk,
    /// By hand: an accountant's entry or match from the review queue.
    Manual,
    /// By the payment code in the memo (before the engine decided in the same transaction;
    /// kept for the rows written then).
    PaymentCode,
    /// By the reconciliation engine; the rule it applied is recorded beside.
    Recon,
    /// An accountant moved a payment's credit to another invoice of the family.
    Credit,
    /// Undoing what a reversed payment paid.
    Reversal,
}

super::catalog::text_enum!(AllocationMethod {
    CashDesk => "cash_desk", Manual => "manual", PaymentCode => "payment_code", Recon => "recon",
    Credit => "credit", Reversal => "reversal",
});

/// How a bank-statement (or pulled) line was tied to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatementMatch {
    /// To a notified payment with the same bank reference (or the watcher's transaction id).
    MatchedReference,
    /// To a notified payment of the same amount (or net of its fee), near in time.
    MatchedAmount,
    /// Nobody notified it: the line became a payment.
    Created,
    /// Money out of the account.
    Debit,
    /// The same line was imported before (this file or an earlier, overlapping one).
    AlreadyImported,
}

super::catalog::text_enum!(StatementMatch {
    MatchedReference => "matched_reference", MatchedAmount => "matched_amount",
    Created => "created", Debit => "debit", AlreadyImported => "already_imported",
});

/// The status follows from the allocations, so it can never be out of step with them.
pub fn invoice_status(voided: bool, total: Vnd, paid: Vnd) -> InvoiceStatus {
    if voided {
        InvoiceStatus::Void
    } else if paid > total {
        InvoiceStatus::Overpaid
    } else if paid == total {
        // Includes a fully exempted invoice (total 0): nothing is owed.
        InvoiceStatus::Paid
    } else if paid == Vnd::ZERO {
        InvoiceStatus::Open
    } else {
        InvoiceStatus::PartiallyPaid
    }
}

/// What a payment cost the parent: the amount plus every fee the parent bore.
pub fn parent_outlay(amount: Vnd, fees: &[(Vnd, Bearer)]) -> Vnd {
    sum_where(amount, fees, Bearer::Parent, 1)
}

/// What the school keeps: the amount less every fee the school bore.
pub fn school_net(amount: Vnd, fees: &[(Vnd, Bearer)]) -> Vnd {
    sum_where(amount, fees, Bearer::School, -1)
}

fn sum_where(amount: Vnd, fees: &[(Vnd, Bearer)], who: Bearer, sign: i64) -> Vnd {
    let extra: i64 = fees
        .iter()
        .filter(|(_, b)| *b == who)
        .map(|(f, _)| f.dong())
        .sum();
    Vnd::new(amount.dong() + sign * extra).unwrap_or(amount)
}

/// `QD-2025-000123`: school prefix, calendar year, gapless sequence within the year.
pub fn receipt_number(prefix: &str, year: i32, seq: i64) -> String {
    format!("{prefix}-{year}-{seq:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(n: i64) -> Vnd {
        Vnd::new(n).unwrap()
    }

    #[test]
    fn status_follows_allocations() {
        let cases = [
            (false, 1000, 0, InvoiceStatus::Open),
            (false, 1000, 1, InvoiceStatus::PartiallyPaid),
            (false, 1000, 999, InvoiceStatus::PartiallyPaid),
            (false, 1000, 1000, InvoiceStatus::Paid),
            (false, 1000, 1001, InvoiceStatus::Overpaid),
            (false, 0, 0, InvoiceStatus::Paid),
            (true, 1000, 0, InvoiceStatus::Void),
        ];
        for (voided, total, paid, want) in cases {
            assert_eq!(
                invoice_status(voided, v(total), v(paid)),
                want,
                "{total}/{paid}"
            );
        }
        assert_eq!(receipt_number("QD", 2025, 42), "QD-2025-000042");
    }

    proptest! {
        #[test]
        fn outlay_and_net_add_up(amount in 1i64..=1_000_000_000, fees in proptest::collection::vec((0i64..=100_000, 0usize..3), 0..5)) {
            let bearers = [Bearer::School, Bearer::Parent, Bearer::Provider];
            let fees: Vec<(Vnd, Bearer)> = fees.into_iter().map(|(f, b)| (v(f), bearers[b])).collect();
            let parent: i64 = fees.iter().filter(|f| f.1 == Bearer::Parent).map(|f| f.0.dong()).sum();
            let school: i64 = fees.iter().filter(|f| f.1 == Bearer::School).map(|f| f.0.dong()).sum();
            prop_assert_eq!(parent_outlay(v(amount), &fees).dong(), amount + parent);
            prop_assert_eq!(school_net(v(amount), &fees).dong(), amount - school);
        }
    }
}
