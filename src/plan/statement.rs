//! The three-way check of a bank statement: which notified payment each credit line settles.
//! Pure: the store loads the lines and the payments not yet on a statement, this decides.
//!
//! In booking order, each credit line is tied:
//! 1. for a pulled transaction, to the payment its notification recorded (the same sender
//!    key); a differing amount is flagged;
//! 2. to a payment with the same bank reference and the same amount (or the amount net of the
//!    payment's recorded fee, which confirms the fee);
//! 3. to a payment with the same bank reference whose amount differs by at most
//!    [`MAX_REFERENCE_DIFFERENCE_PERCENT`] within the window: the same transfer, flagged as a
//!    fee kept on the way (less arrived) or another amount;
//! 4. to the nearest payment in time, within the window, of the same amount (or net of its
//!    fee), with no reference to tell.
//!
//! A credit tied to nothing was never notified: it becomes a payment. A watcher's notification
//! of this account left untied long enough before the statement's last line is flagged.

use crate::domain::ledger::{StatementMatch, PLAIN_TRANSFER};
use crate::domain::money::Vnd;
use crate::plan::queue::LedgerIssue;
use crate::recon::statement::{Direction, StatementLine};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeSet, HashMap};

/// A notification and its statement line are at most this far apart in time.
pub const MATCH_WINDOW_HOURS: i64 = 48;
/// A credit with a notification's bank reference is tied to it, and reviewed, when the amounts
/// differ by at most this share of the notified amount (a fee kept on the way); beyond, it is
/// another transfer.
pub const MAX_REFERENCE_DIFFERENCE_PERCENT: i64 = 5;
/// A watched-account notification with no statement line this long after it is flagged.
pub const SETTLEMENT_WINDOW_HOURS: i64 = 24;

/// A payment that may be the one a credit line settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub amount: i64,
    pub fees: i64,
    pub received_at: DateTime<Utc>,
    pub bank_ref: Option<String>,
    pub provider: String,
    pub provider_ref: Option<String>,
}

/// A line to tie: the line, and for a pulled one the payment its notification recorded
/// (id, amount).
#[derive(Debug, Clone, Copy)]
pub struct ToTie<'a> {
    pub line: &'a StatementLine,
    pub notified: Option<(i64, i64)>,
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ties {
    /// line index → (payment, how).
    pub matched: HashMap<usize, (i64, StatementMatch)>,
    /// Payments tied with something to look at: (payment, what, why in words).
    pub differing: Vec<(i64, LedgerIssue, String)>,
    pub by_reference: usize,
    pub by_amount: usize,
    /// Tied to a payment net of its recorded fee: the fee is confirmed.
    pub fee_confirmed: usize,
    /// Watched-account notifications the bank never settled within the window.
    pub unsettled: Vec<i64>,
}

/// Ties `lines` (in booking order) to `candidates`; `account_number` is the statement's
/// account, whose watchers' notifications carry it in their reference.
pub fn tie(lines: &[ToTie<'_>], candidates: &[Candidate], account_number: &str) -> Ties {
    let window = Duration::hours(MATCH_WINDOW_HOURS);
    let mut ties = Ties::default();
    let mut taken: BTreeSet<i64> = BTreeSet::new();
    for (i, t) in lines.iter().enumerate() {
        if t.line.direction != Direction::Credit {
            continue;
        }
        if let Some((id, amount)) = t.notified {
            if amount != t.line.amount.dong() {
                ties.differing.push((
                    id,
                    LedgerIssue::CreditedAmountDiffers,
                    format!(
                        "the sender's transaction list says {} for this transaction; its notification said {}",
                        t.line.amount,
                        Vnd::new(amount).unwrap_or(Vnd::ZERO)
                    ),
                ));
            }
            ties.by_reference += 1;
            taken.insert(id);
            ties.matched
                .insert(i, (id, StatementMatch::MatchedReference));
        }
    }
    for (i, t) in lines.iter().enumerate() {
        let l = t.line;
        if l.direction != Direction::Credit || ties.matched.contains_key(&i) {
            continue;
        }
        let same_ref = |c: &&Candidate| {
            !taken.contains(&c.id)
                && l.bank_ref.as_deref().is_some_and(|r| {
                    c.bank_ref
                        .as_deref()
                        .is_some_and(|b| b.eq_ignore_ascii_case(r.trim()))
                })
        };
        let by_ref = candidates
            .iter()
            .filter(same_ref)
            .find(|c| c.amount == l.amount.dong() || c.amount - c.fees == l.amount.dong());
        let by_ref_differing = || {
            candidates.iter().filter(same_ref).find(|c| {
                (c.received_at - l.booked_at).abs() <= window
                    && (c.amount - l.amount.dong()).abs() * 100
                        <= c.amount * MAX_REFERENCE_DIFFERENCE_PERCENT
            })
        };
        let found = match by_ref
            .map(|c| (c, true))
            .or_else(|| by_ref_differing().map(|c| (c, false)))
        {
            Some((c, true)) => Some((c, StatementMatch::MatchedReference)),
            Some((c, false)) => {
                let (credited, notified) = (l.amount, Vnd::new(c.amount).unwrap_or(Vnd::ZERO));
                ties.differing.push(if c.amount > l.amount.dong() {
                    (
                        c.id,
                        LedgerIssue::FeeMismatch,
                        format!(
                            "the bank credited {credited} for a payment of {notified}: {} was kept on the way, and the payment records {} of fees",
                            Vnd::new(c.amount - l.amount.dong()).unwrap_or(Vnd::ZERO),
                            Vnd::new(c.fees).unwrap_or(Vnd::ZERO)
                        ),
                    )
                } else {
                    (
                        c.id,
                        LedgerIssue::CreditedAmountDiffers,
                        format!("the bank credited {credited}; the notification said {notified}"),
                    )
                });
                Some((c, StatementMatch::MatchedReference))
            }
            None => candidates
                .iter()
                .filter(|c| {
                    !taken.contains(&c.id)
                        && (c.amount == l.amount.dong()
                            || (c.fees > 0 && c.amount - c.fees == l.amount.dong()))
                        && (c.received_at - l.booked_at).abs() <= window
                })
                .min_by_key(|c| ((c.received_at - l.booked_at).abs(), c.id))
                .map(|c| (c, StatementMatch::MatchedAmount)),
        };
        if let Some((c, how)) = found {
            if c.fees > 0 && c.amount - c.fees == l.amount.dong() {
                ties.fee_confirmed += 1;
            }
            match how {
                StatementMatch::MatchedReference => ties.by_reference += 1,
                _ => ties.by_amount += 1,
            }
            taken.insert(c.id);
            ties.matched.insert(i, (c.id, how));
        }
    }
    // Notifications of this account that the bank never settled within the window.
    let last = lines
        .iter()
        .filter(|t| t.line.direction == Direction::Credit)
        .map(|t| t.line.booked_at)
        .max();
    if let Some(last) = last {
        let cutoff = last - Duration::hours(SETTLEMENT_WINDOW_HOURS);
        // A watcher's notification carries this account in its reference (`account:txn`).
        let watched = format!("{account_number}:");
        ties.unsettled = candidates
            .iter()
            .filter(|c| !taken.contains(&c.id) && c.received_at <= cutoff)
            .filter(|c| {
                c.provider != PLAIN_TRANSFER
                    && c.provider_ref
                        .as_deref()
                        .is_some_and(|r| r.starts_with(&watched))
            })
            .map(|c| c.id)
            .collect();
    }
    ties
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 9, 10, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    fn line(no: usize, h: i64, amount: i64, bank_ref: Option<&str>) -> StatementLine {
        StatementLine {
            line_no: no,
            booked_at: at(h),
            amount: Vnd::new(amount).unwrap(),
            direction: Direction::Credit,
            bank_ref: bank_ref.map(str::to_string),
            memo: String::new(),
            counterparty: None,
            balance_after: None,
        }
    }

    fn candidate(id: i64, h: i64, amount: i64, fees: i64, bank_ref: Option<&str>) -> Candidate {
        Candidate {
            id,
            amount,
            fees,
            received_at: at(h),
            bank_ref: bank_ref.map(str::to_string),
            provider: "sepay".into(),
            provider_ref: Some(format!("0071:{id}")),
        }
    }

    #[test]
    fn credits_are_tied_by_reference_then_by_amount_and_time() {
        let lines = [
            line(1, 1, 500_000, Some("FT1")),
            line(2, 2, 498_900, Some("FT2")),
            line(3, 3, 300_000, None),
            line(4, 4, 470_000, Some("FT4")),
            line(5, 5, 777_000, None),
        ];
        let candidates = [
            candidate(10, 1, 500_000, 0, Some("ft1")),
            candidate(11, 2, 500_000, 1_100, Some("FT2")),
            candidate(12, 40, 300_000, 0, None),
            candidate(13, 3, 300_000, 0, None),
            candidate(14, 4, 480_000, 0, Some("FT4")),
            candidate(15, -100, 90_000, 0, Some("FT9")),
        ];
        let to_tie: Vec<ToTie> = lines
            .iter()
            .map(|l| ToTie {
                line: l,
                notified: None,
            })
            .collect();
        let ties = tie(&to_tie, &candidates, "0071");
        assert_eq!(ties.matched[&0], (10, StatementMatch::MatchedReference));
        assert_eq!(ties.matched[&1], (11, StatementMatch::MatchedReference));
        assert_eq!(ties.fee_confirmed, 1, "credited net of the recorded fee");
        assert_eq!(
            ties.matched[&2],
            (13, StatementMatch::MatchedAmount),
            "the nearest in time"
        );
        assert_eq!(ties.matched[&3].0, 14);
        assert_eq!(ties.differing[0].1, LedgerIssue::FeeMismatch);
        assert!(
            !ties.matched.contains_key(&4),
            "never notified: it becomes a payment"
        );
        assert_eq!(
            ties.unsettled,
            vec![15],
            "a watcher's notification the bank never booked"
        );
    }
}
