//! Refund candidates: a transfer the engine could not allocate that repeats one already booked.
//! Parents pay twice by mistake (the app's "repeat transfer", both parents paying, a retry after
//! a timeout); the money is theirs and goes back, so the review says so instead of "unmatched".
//!
//! # Rules
//!
//! Only a transfer in review is looked at: one the engine allocated is never a duplicate.
//!
//! 1. `same_invoice_paid_again`: a valid payment code in the memo names an invoice that is no
//!    longer open, and another payment was allocated to that invoice within
//!    [`DUPLICATE_WINDOW_DAYS`] of this one.
//! 2. `same_transfer_repeated`: another payment within the window has the same amount, the same
//!    memo once bank wrapping and filler words are removed (at least [`MIN_MEMO_WORDS`] words
//!    left, so "hoc phi" alone never decides), the same sender name when both are known, and
//!    was allocated from its memo or by hand (one allocated by a payment code is rule 1's: a
//!    repeat of it names the same code).
//!
//! The nearest in time wins; ties go to the lower payment id.

use crate::domain::money::Vnd;
use crate::recon::memo;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

/// Two payments further apart than this are not a duplicate.
pub const DUPLICATE_WINDOW_DAYS: i64 = 7;
/// A memo decides a repeat only with at least this many words beyond bank wrapping and filler.
pub const MIN_MEMO_WORDS: usize = 2;

/// A payment already booked and allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub payment_id: i64,
    pub received_at: DateTime<Utc>,
    pub amount: Vnd,
    pub memo: String,
    pub payer_name: Option<String>,
    /// Invoices it pays among those an arrival names (allocations that still stand).
    pub invoice_ids: Vec<i64>,
    /// It pays some invoice (allocations that still stand).
    pub allocated: bool,
}

/// The transfer in review.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub payment_id: i64,
    pub received_at: DateTime<Utc>,
    pub amount: Vnd,
    pub memo: &'a str,
    pub payer_name: Option<&'a str>,
    /// Invoices its valid codes name that are no longer open: (invoice id, code).
    pub closed_named: &'a [(i64, String)],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Twin {
    SameInvoice {
        payment_id: i64,
        received_at: DateTime<Utc>,
        code: String,
    },
    SameTransfer {
        payment_id: i64,
        received_at: DateTime<Utc>,
    },
}

impl Twin {
    pub fn payment_id(&self) -> i64 {
        match self {
            Twin::SameInvoice { payment_id, .. } | Twin::SameTransfer { payment_id, .. } => {
                *payment_id
            }
        }
    }

    /// The review's reason, in words.
    pub fn reason(&self) -> String {
        let day = |t: &DateTime<Utc>| {
            t.with_timezone(&crate::domain::time::vietnam())
                .format("%d/%m/%Y")
                .to_string()
        };
        match self {
            Twin::SameInvoice {
                payment_id,
                received_at,
                code,
            } => format!(
                "invoice {code} was already paid by payment {payment_id} on {}: a refund candidate",
                day(received_at)
            ),
            Twin::SameTransfer {
                payment_id,
                received_at,
            } => format!(
                "the same transfer (amount and memo) as payment {payment_id} on {}: a refund candidate",
                day(received_at)
            ),
        }
    }
}

/// The memo's identifying words, or `None` when too few remain to decide anything.
pub fn memo_key(raw: &str) -> Option<String> {
    let m = memo::normalise(raw);
    let words: Vec<&str> = m
        .tokens
        .iter()
        .filter(|t| !t.filler)
        .map(|t| t.text.as_str())
        .collect();
    (words.len() >= MIN_MEMO_WORDS).then(|| words.join(" "))
}

fn same_name(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => memo::fold(a) == memo::fold(b),
        _ => true,
    }
}

/// Booked payments, indexed by the invoices they pay and by (amount, memo words), so each
/// arrival is looked up, not compared with every booked payment.
#[derive(Debug, Default)]
pub struct Ledger {
    booked: Vec<Booked>,
    by_invoice: HashMap<i64, Vec<usize>>,
    by_transfer: HashMap<(i64, String), Vec<usize>>,
}

impl Ledger {
    pub fn new(booked: Vec<Booked>) -> Self {
        let mut ledger = Ledger::default();
        for b in booked {
            ledger.insert(b);
        }
        ledger
    }

    /// Adds one booked payment (kept across batches, a ledger grows as payments are allocated).
    pub fn insert(&mut self, b: Booked) {
        let i = self.booked.len();
        for id in &b.invoice_ids {
            self.by_invoice.entry(*id).or_default().push(i);
        }
        if let Some(key) = memo_key(&b.memo) {
            self.by_transfer
                .entry((b.amount.dong(), key))
                .or_default()
                .push(i);
        }
        self.booked.push(b);
    }

    /// The booked payments held.
    pub fn len(&self) -> usize {
        self.booked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.booked.is_empty()
    }

    /// The same ledger without the payments received before `t`.
    pub fn since(self, t: DateTime<Utc>) -> Self {
        Self::new(
            self.booked
                .into_iter()
                .filter(|b| b.received_at >= t)
                .collect(),
        )
    }

    /// The booked payment the arrival repeats, if any.
    pub fn twin_of(&self, arrival: &Arrival<'_>) -> Option<Twin> {
        self.same_invoice(arrival)
            .or_else(|| self.same_transfer(arrival))
    }

    fn near<'b>(&self, arrival: &'b Arrival<'_>) -> impl Fn(&&Booked) -> bool + 'b {
        let window = Duration::days(DUPLICATE_WINDOW_DAYS);
        move |b: &&Booked| {
            b.payment_id != arrival.payment_id
                && (b.received_at - arrival.received_at).abs() <= window
                && b.allocated
        }
    }

    /// Rule 1: a booked payment of an invoice the arrival's code names and that is closed.
    pub fn same_invoice(&self, arrival: &Arrival<'_>) -> Option<Twin> {
        let near = self.near(arrival);
        arrival
            .closed_named
            .iter()
            .flat_map(|(id, code)| {
                self.by_invoice
                    .get(id)
                    .into_iter()
                    .flatten()
                    .map(move |i| (&self.booked[*i], code))
            })
            .filter(|(b, _)| near(b))
            .min_by_key(|(b, _)| distance(b, arrival))
            .map(|(b, code)| Twin::SameInvoice {
                payment_id: b.payment_id,
                received_at: b.received_at,
                code: code.clone(),
            })
    }

    /// Rule 2: a booked transfer of the same amount, memo words and sender.
    pub fn same_transfer(&self, arrival: &Arrival<'_>) -> Option<Twin> {
        let key = memo_key(arrival.memo)?;
        self.by_transfer
            .get(&(arrival.amount.dong(), key))
            .into_iter()
            .flatten()
            .map(|i| &self.booked[*i])
            .filter(self.near(arrival))
            .filter(|b| same_name(b.payer_name.as_deref(), arrival.payer_name))
            .min_by_key(|b| distance(b, arrival))
            .map(|b| Twin::SameTransfer {
                payment_id: b.payment_id,
                received_at: b.received_at,
            })
    }
}

/// How far a booked payment is from the arrival: nearest in time first, then the lower id.
fn distance(b: &Booked, arrival: &Arrival<'_>) -> (Duration, i64) {
    ((b.received_at - arrival.received_at).abs(), b.payment_id)
}

/// The booked payment the arrival repeats, if any (one look-up; see [`Ledger`] for many).
pub fn twin_of(arrival: &Arrival<'_>, booked: &[Booked]) -> Option<Twin> {
    Ledger::new(booked.to_vec()).twin_of(arrival)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 9, day, hour, 0, 0).unwrap()
    }

    fn booked(id: i64, t: DateTime<Utc>, amount: i64, memo: &str, invoices: &[i64]) -> Booked {
        Booked {
            payment_id: id,
            received_at: t,
            amount: Vnd::new(amount).unwrap(),
            memo: memo.into(),
            payer_name: None,
            invoice_ids: invoices.to_vec(),
            allocated: !invoices.is_empty(),
        }
    }

    fn arrival<'a>(memo: &'a str, amount: i64, closed: &'a [(i64, String)]) -> Arrival<'a> {
        Arrival {
            payment_id: 99,
            received_at: at(10, 3),
            amount: Vnd::new(amount).unwrap(),
            memo,
            payer_name: None,
            closed_named: closed,
        }
    }

    #[test]
    fn same_invoice_paid_again() {
        let closed = vec![(7, "QD3CFPSA".to_string())];
        let earlier = [
            booked(1, at(2, 3), 1_235_000, "QD3CFPSA", &[7]),
            booked(2, at(9, 3), 1_235_000, "QD3CFPSA hoc phi", &[7]),
            booked(3, at(9, 4), 1_235_000, "other", &[8]),
        ];
        let twin = twin_of(&arrival("QD3CFPSA hoc phi", 1_235_000, &closed), &earlier).unwrap();
        assert_eq!(twin.payment_id(), 2, "the nearest in time");
        assert!(twin
            .reason()
            .contains("invoice QD3CFPSA was already paid by payment 2 on 09/09/2025"));
        // Outside the window, or an invoice the arrival does not name: no twin.
        let old = [booked(1, at(1, 3) - Duration::days(30), 1, "x", &[7])];
        assert_eq!(twin_of(&arrival("QD3CFPSA", 1, &closed), &old), None);
        assert_eq!(twin_of(&arrival("QD3CFPSA", 1, &[]), &earlier[..1]), None);
        // The arrival itself is never its own twin.
        let me = [booked(99, at(10, 3), 1, "x", &[7])];
        assert_eq!(twin_of(&arrival("QD3CFPSA", 1, &closed), &me), None);
    }

    #[test]
    fn same_transfer_repeated() {
        let memo = "MBVCB.3278126542.012345.NGUYEN VAN AN LOP 6A1 chuyen tien hoc phi";
        let earlier = [booked(
            4,
            at(10, 1),
            1_235_000,
            "IBFT Nguyễn Văn An lớp 6A1 chuyển tiền học phí",
            &[5],
        )];
        let twin = twin_of(&arrival(memo, 1_235_000, &[]), &earlier).unwrap();
        assert_eq!(twin.payment_id(), 4);
        assert!(twin.reason().contains("same transfer"));
        // Another amount, another memo, no allocation, or another sender: not a repeat.
        assert_eq!(twin_of(&arrival(memo, 1_235_001, &[]), &earlier), None);
        assert_eq!(
            twin_of(
                &arrival("NGUYEN VAN BINH LOP 6A1", 1_235_000, &[]),
                &earlier
            ),
            None
        );
        let unallocated = [booked(4, at(10, 1), 1_235_000, memo, &[])];
        assert_eq!(twin_of(&arrival(memo, 1_235_000, &[]), &unallocated), None);
        let mut from_bo = earlier[0].clone();
        from_bo.payer_name = Some("NGUYEN VAN BO".into());
        let mut a = arrival(memo, 1_235_000, &[]);
        a.payer_name = Some("TRAN THI MAI");
        assert_eq!(twin_of(&a, std::slice::from_ref(&from_bo)), None);
        a.payer_name = Some("Nguyễn Văn Bo");
        assert!(twin_of(&a, &[from_bo]).is_some());
    }

    #[test]
    fn filler_memos_never_decide() {
        for memo in [
            "hoc phi",
            "chuyen tien hoc phi",
            "MBVCB.123456.789 chuyen tien",
            "",
        ] {
            assert_eq!(memo_key(memo), None, "{memo}");
            let earlier = [booked(4, at(10, 1), 500_000, memo, &[5])];
            assert_eq!(
                twin_of(&arrival(memo, 500_000, &[]), &earlier),
                None,
                "{memo}"
            );
        }
    }

    proptest! {
        #[test]
        fn a_twin_is_always_near_allocated_and_another_payment(
            memos in proptest::collection::vec("[a-zA-Z ]{0,30}", 1..6),
            hours in proptest::collection::vec(0i64..24 * 20, 1..6),
            amounts in proptest::collection::vec(1i64..4, 1..6),
        ) {
            let booked: Vec<Booked> = memos.iter().zip(&hours).zip(&amounts).enumerate()
                .map(|(i, ((m, h), a))| booked(i as i64, at(1, 0) + Duration::hours(*h), *a, m, if i % 2 == 0 { &[1] } else { &[] }))
                .collect();
            let closed = vec![(1, "QD".to_string())];
            let a = arrival(&memos[0], amounts[0], &closed);
            if let Some(t) = twin_of(&a, &booked) {
                let b = booked.iter().find(|b| b.payment_id == t.payment_id()).unwrap();
                prop_assert!((b.received_at - a.received_at).abs() <= Duration::days(DUPLICATE_WINDOW_DAYS));
                prop_assert!(b.allocated);
                prop_assert_ne!(b.payment_id, a.payment_id);
            }
        }

        // The store keeps the memo-decided transfers of a school as one ledger across batches
        // and looks the codes named up in another: asking each in turn is asking one ledger
        // that holds both.
        #[test]
        fn a_ledger_grown_and_split_answers_as_one(
            memos in proptest::collection::vec("(an|binh|t11|lop 6a1| ){0,6}", 1..8),
            hours in proptest::collection::vec(0i64..24 * 20, 1..8),
            amounts in proptest::collection::vec(1i64..3, 1..8),
            cut in 0i64..24 * 20,
        ) {
            let booked: Vec<Booked> = memos.iter().zip(&hours).zip(&amounts).enumerate()
                .map(|(i, ((m, h), a))| booked(i as i64, at(1, 0) + Duration::hours(*h), *a, m, if i % 3 == 0 { &[1] } else { &[] }))
                .collect();
            let whole = Ledger::new(booked.clone());
            let (coded, memos_only): (Vec<Booked>, Vec<Booked>) =
                booked.iter().cloned().partition(|b| !b.invoice_ids.is_empty());
            let coded = Ledger::new(coded);
            let mut grown = Ledger::default();
            for b in memos_only.iter().chain(coded.booked.iter()) {
                grown.insert(Booked { invoice_ids: vec![], ..b.clone() });
            }
            let closed = vec![(1, "QD".to_string())];
            for memo in &memos {
                let a = arrival(memo, amounts[0], &closed);
                prop_assert_eq!(
                    whole.twin_of(&a),
                    coded.same_invoice(&a).or_else(|| grown.same_transfer(&a))
                );
                // Pruning keeps what is near enough to the arrivals from `cut` on.
                let since = at(1, 0) + Duration::hours(cut);
                let later = Arrival { received_at: since + Duration::days(DUPLICATE_WINDOW_DAYS), ..a };
                let pruned = Ledger::new(memos_only.clone()).since(since);
                prop_assert_eq!(
                    pruned.same_transfer(&later),
                    Ledger::new(memos_only.clone()).same_transfer(&later)
                );
            }
        }
    }
}
