//! What a batch of payments becomes. One function decides every payment of a batch in order,
//! against what the store loaded and against what earlier payments of the batch did: the cash
//! desk, an accountant's hand entry, a sender's notification, a bank-statement or pulled line
//! all go through it, so the same transfer is decided the same way whatever brought it.
//!
//! For each payment, in order:
//! 1. a payment of 0 đồng or less is refused;
//! 2. a provider reference already recorded is that payment (a retry): the same school and
//!    amount is a duplicate, anything else a conflict, never an overwrite; the same within the
//!    batch likewise;
//! 3. a watcher's notification of a credit already booked from the account's statement (same
//!    account, bank reference and school, within the matching window) is that payment, or a
//!    conflict with another amount;
//! 4. its allocations: the invoices given (the cash desk, a hand entry), each at most its
//!    balance or refused; or the reconciliation engine's decision on its memo and order
//!    reference (allocated, or a review with ranked suggestions);
//! 5. its fee lines (`fees`).
//!
//! A refusal is decided before anything is written, so it never aborts the others.

use super::fees::{fee_rows, terms_from, FeeRow, ScheduleRow};
use super::queue::{suggestion_view, ExceptionKind, SuggestionView};
use crate::domain::fee::{Bearer, Channel};
use crate::domain::ledger::AllocationMethod;
use crate::domain::money::Vnd;
use crate::domain::provider::DeliveryOutcome;
use crate::domain::text::same_account;
use crate::recon::{decide, Decision, Incoming, Index};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A payment to record, parsed.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub channel: Channel,
    pub provider: String,
    pub provider_ref: Option<String>,
    /// The bank's own reference (`FT25253…`), when known: statements are matched by it. Banks
    /// may repeat it, so it is never a key.
    pub bank_ref: Option<String>,
    pub payer_name: Option<String>,
    pub memo: Option<String>,
    pub amount: Vnd,
    pub received_at: DateTime<Utc>,
    /// The fee the sender says it charged, when it says.
    pub reported_fee: Option<Vnd>,
    /// Where the money goes.
    pub allocate: Allocate,
    /// Who bore the reported fee, when the sender says (ZaloPay's user fee is the payer's).
    pub reported_fee_bearer: Option<Bearer>,
    /// The school's bank account the sender saw credited, when it watches one (SePay, Casso).
    /// A credit of that account already booked from its statement under the same bank
    /// reference is this transfer: it is not recorded twice.
    pub credited_account: Option<String>,
}

/// Where a payment's money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocate {
    /// To these invoices of the school, each at most what it still owes (more is refused).
    Given {
        allocations: Vec<(i64, Vnd)>,
        method: AllocationMethod,
    },
    /// Where the reconciliation engine reads it, from the memo and the sender's order
    /// reference (VNPay's `vnp_TxnRef`, SePay's `code`).
    Engine { order_ref: Option<String> },
}

/// What recording did, by payment id (`Store::payment` gives the full view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Created(i64),
    /// The same provider reference was recorded before; nothing was written.
    Duplicate(i64),
}

/// Why a payment is not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    /// It contradicts what is recorded (a reference reused with other details), rather than
    /// being invalid in itself.
    pub conflict: bool,
}

impl Refusal {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            conflict: false,
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            conflict: true,
        }
    }
}

/// A payment recorded before under a provider reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booked {
    pub id: i64,
    pub school_id: i64,
    pub amount: i64,
}

/// A credit booked as a payment from the school's bank statement, nobody having notified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementCredit {
    pub payment_id: i64,
    pub school_id: i64,
    pub account_number: String,
    pub bank_ref: String,
    pub amount: i64,
    pub booked_at: DateTime<Utc>,
}

/// What an invoice named by a given allocation still owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub school_id: i64,
    pub open: Vnd,
}

/// What the store loaded for a batch.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// (provider, provider reference) → the payment recorded under it.
    pub booked: HashMap<(String, String), Booked>,
    pub statement_credits: Vec<StatementCredit>,
    /// The invoices that given allocations name.
    pub balances: HashMap<i64, Balance>,
    pub schedules: Vec<ScheduleRow>,
    /// A notification and its statement line are at most this far apart.
    pub match_window: chrono::Duration,
    /// The exceptions still open of the schools the engine decides for: what they claim is not
    /// the engine's to allocate to a month written (rule `period_in_review`).
    pub open_reviews: Vec<OpenReview>,
}

/// An exception still open, as the engine's rule `period_in_review` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReview {
    pub school_id: i64,
    pub payment_id: i64,
    /// The invoices of its top suggestion.
    pub top: Vec<i64>,
}

/// The invoices a review claims (rule `period_in_review`): those of its top suggestion.
pub fn review_claims(review: &Review) -> Vec<i64> {
    super::queue::top_invoices(&review.suggestions)
}

/// (invoice, claiming payment) for each invoice that the open reviews of `school_id` claim
/// (their top suggestion's),
/// of payments `before` the given one when it is known (a payment never claims against
/// itself, nor a later one against it: the decision is the same whatever the order of
/// reconciling).
pub fn open_claims(
    reviews: &[OpenReview],
    school_id: i64,
    before: Option<i64>,
) -> Vec<(i64, Option<i64>)> {
    reviews
        .iter()
        .filter(|r| r.school_id == school_id && before.map_or(true, |b| r.payment_id < b))
        .flat_map(|r| r.top.iter().map(|&i| (i, Some(r.payment_id))))
        .collect()
}

/// One payment of the batch, with its school.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub school_id: i64,
    pub payment: &'a NewPayment,
}

/// What one payment of the batch becomes.
#[derive(Debug, Clone)]
pub enum Planned {
    Create(Create),
    /// Recorded before: this payment.
    Duplicate(i64),
    /// The same transaction twice in one batch: the duplicate of the job at this index.
    DuplicateOf(usize),
    Refused(Refusal),
}

/// A payment to write.
#[derive(Debug, Clone)]
pub struct Create {
    pub allocations: Vec<(i64, Vnd)>,
    pub method: AllocationMethod,
    /// For an engine decision: the rule that decided it and its evidence, in words.
    pub rule: Option<String>,
    pub evidence: Option<String>,
    pub fees: Vec<FeeRow>,
    /// For an engine decision it could not make: the exception to open.
    pub review: Option<Review>,
}

/// An exception to open for a payment.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub kind: ExceptionKind,
    /// Why, in words.
    pub reason: String,
    pub suggestions: Vec<SuggestionView>,
    /// The payment that already paid what the memo names, when the engine knows one.
    pub earlier_payment: Option<i64>,
    /// The job earlier in the same batch whose review claims what the memo names (rule
    /// `period_in_review`): it has no payment id yet; the store names it once recorded (see
    /// [`name_batch_claimants`]).
    pub earlier_in_batch: Option<usize>,
}

impl Review {
    /// Names the earlier payment that paid or claims what the memo names, in the reason too,
    /// so that the accountant sees which one.
    pub fn name_earlier(&mut self, payment: i64) {
        self.earlier_payment = Some(payment);
        self.earlier_in_batch = None;
        self.reason = format!("{} (payment {payment})", self.reason);
    }
}

/// How the engine carries a claim by job `idx` of the batch, whose payment has no id yet:
/// payment ids are positive, so a negative stand-in never names a real payment.
fn batch_claimant(idx: usize) -> i64 {
    -1 - i64::try_from(idx).unwrap_or(i64::MAX - 1)
}

/// The batch job a stand-in of [`batch_claimant`] names.
fn batch_job(claimant: i64) -> Option<usize> {
    (claimant < 0)
        .then(|| usize::try_from(-1 - claimant).ok())
        .flatten()
}

/// Once the batch's payments have ids (`ids`: job index → payment id), the reviews that a
/// review earlier in the batch claims against name its payment.
pub fn name_batch_claimants(plans: &mut [Option<Planned>], ids: &HashMap<usize, i64>) {
    for plan in plans.iter_mut() {
        if let Some(Planned::Create(Create {
            review: Some(r), ..
        })) = plan
        {
            if let Some(id) = r.earlier_in_batch.and_then(|j| ids.get(&j)) {
                r.name_earlier(*id);
            }
        }
    }
}

impl Planned {
    /// What the sender of a notification is told this came to.
    pub fn delivery_outcome(&self) -> DeliveryOutcome {
        match self {
            Planned::Create(_) => DeliveryOutcome::Recorded,
            Planned::Duplicate(_) | Planned::DuplicateOf(_) => DeliveryOutcome::Duplicate,
            Planned::Refused(r) if r.conflict => DeliveryOutcome::Conflict,
            Planned::Refused(_) => DeliveryOutcome::Rejected,
        }
    }

    /// What the archive says about it, in words.
    pub fn detail(&self) -> Option<String> {
        match self {
            Planned::Create(c) => Some(match (&c.review, &c.rule) {
                (Some(r), _) => format!("in the review queue: {}", r.reason),
                (None, Some(rule)) => format!(
                    "allocated to {} invoice(s) by {rule}: {}",
                    c.allocations.len(),
                    c.evidence.as_deref().unwrap_or_default()
                ),
                (None, None) if c.allocations.is_empty() => "recorded as credit".into(),
                (None, None) => format!("allocated to {} invoice(s)", c.allocations.len()),
            }),
            Planned::Refused(r) => Some(r.message.clone()),
            Planned::Duplicate(_) | Planned::DuplicateOf(_) => None,
        }
    }
}

/// The statement credit that is `p`'s transfer: the same account, bank reference and school,
/// booked within the matching window (banks may reuse a reference over time).
fn same_transfer<'a>(
    credits: &'a [StatementCredit],
    p: &NewPayment,
    school_id: i64,
    window: chrono::Duration,
) -> Option<&'a StatementCredit> {
    let (account, bank_ref) = (p.credited_account.as_deref()?, p.bank_ref.as_deref()?);
    credits.iter().find(|c| {
        c.school_id == school_id
            && same_account(&c.account_number, account)
            && c.bank_ref.eq_ignore_ascii_case(bank_ref.trim())
            && (c.booked_at - p.received_at).abs() <= window
    })
}

fn provider_conflict(p: &NewPayment, r: &str) -> Refusal {
    Refusal::conflict(
        "provider_ref_conflict",
        format!(
            "{} reference {r} is already recorded with other details",
            p.provider
        ),
    )
}

/// Checks requested allocations against the invoices' balances and `available`.
pub fn check_allocations(
    requested: &[(i64, Vnd)],
    balance: &dyn Fn(i64) -> Option<Vnd>,
    available: Vnd,
) -> Result<(), Refusal> {
    let mut seen = HashSet::new();
    let mut sum = 0i64;
    for (invoice_id, amount) in requested {
        if amount.dong() <= 0 {
            return Err(Refusal::invalid(
                "invalid_allocation",
                "each allocation is more than 0 đồng",
            ));
        }
        if !seen.insert(*invoice_id) {
            return Err(Refusal::invalid(
                "invalid_allocation",
                format!("invoice {invoice_id} appears twice"),
            ));
        }
        let Some(balance) = balance(*invoice_id) else {
            return Err(Refusal::invalid(
                "unknown_invoice",
                format!("invoice {invoice_id} is not an open invoice of this school"),
            ));
        };
        if *amount > balance {
            return Err(Refusal::invalid(
                "allocation_exceeds_balance",
                format!("{amount} is more than the {balance} still owed on invoice {invoice_id}"),
            ));
        }
        sum += amount.dong();
    }
    if sum > available.dong() {
        return Err(Refusal::invalid(
            "allocation_exceeds_payment",
            format!(
                "allocations add up to {}, more than the {available} available",
                Vnd::new(sum).unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// What the engine decides for a payment's credit, as written: allocations with the rule and
/// evidence, or the exception to open.
pub struct Decided {
    pub allocations: Vec<(i64, Vnd)>,
    /// By the payment code (a repeat of such a payment names the same code, so the duplicate
    /// check looks for it by code), or read from the memo.
    pub method: AllocationMethod,
    pub rule: Option<String>,
    pub evidence: Option<String>,
    pub review: Option<Review>,
}

/// Runs the engine on `credit` of a payment (`memo`, `order_ref`, `payer`) against `index`,
/// and records what it allocates in the index, so later payments see the new balances.
pub fn decide_credit(
    index: &mut Index,
    credit: Vnd,
    memo: &str,
    order_ref: Option<&str>,
    payer: Option<&str>,
    dismissed: &dyn Fn(i64) -> bool,
) -> Decided {
    let decision = decide(
        index,
        &Incoming {
            amount: credit,
            memo,
            order_ref,
            payer_name: payer,
        },
        dismissed,
    );
    match decision {
        Decision::Auto {
            rule,
            allocations,
            evidence,
            period,
        } => {
            for (invoice_id, amount) in &allocations {
                index.settle(*invoice_id, *amount);
            }
            let method = if evidence.contains(&crate::recon::Evidence::CodeValid) {
                AllocationMethod::PaymentCode
            } else {
                AllocationMethod::Recon
            };
            let mut words = evidence
                .iter()
                .map(|e| e.words())
                .collect::<Vec<_>>()
                .join(", ");
            if let Some(p) = period {
                words.push_str("; period ");
                words.push_str(&p);
            }
            Decided {
                allocations,
                method,
                rule: Some(rule.as_str().into()),
                evidence: Some(words),
                review: None,
            }
        }
        Decision::Review {
            reason,
            suggestions,
            earlier_payment,
        } => {
            let mut review = Review {
                kind: ExceptionKind::Review(reason),
                reason: reason.words().to_string(),
                suggestions: suggestions
                    .iter()
                    .map(|s| suggestion_view(s, index))
                    .collect(),
                earlier_payment: None,
                earlier_in_batch: None,
            };
            if let Some(p) = earlier_payment {
                match batch_job(p) {
                    Some(job) => review.earlier_in_batch = Some(job),
                    None => review.name_earlier(p),
                }
            }
            Decided {
                allocations: vec![],
                method: AllocationMethod::Recon,
                rule: None,
                evidence: None,
                review: Some(review),
            }
        }
    }
}

/// Decides every job of a batch in order (`None` items are deliveries that record nothing).
/// `books` holds the engine's index of each school whose jobs the engine decides, caught up
/// with the ledger; what the plan allocates is recorded in them as it goes.
pub fn plan(
    jobs: &[Option<Job<'_>>],
    snap: &Snapshot,
    books: &mut BTreeMap<i64, &mut Index>,
) -> Vec<Option<Planned>> {
    let mut balances = snap.balances.clone();
    for (school_id, index) in books.iter_mut() {
        index.set_claims(open_claims(&snap.open_reviews, *school_id, None));
    }
    let mut in_batch: HashMap<(&str, &str), (usize, i64, i64)> = HashMap::new();
    let mut out = Vec::with_capacity(jobs.len());
    for (idx, job) in jobs.iter().enumerate() {
        let Some(Job {
            school_id,
            payment: p,
        }) = job
        else {
            out.push(None);
            continue;
        };
        let school_id = *school_id;
        let reference = p.provider_ref.as_deref();
        let planned = if p.amount.dong() <= 0 {
            Planned::Refused(Refusal::invalid(
                "invalid_amount",
                "a payment is more than 0 đồng",
            ))
        } else if let Some(b) =
            reference.and_then(|r| snap.booked.get(&(p.provider.clone(), r.to_string())))
        {
            if b.school_id != school_id || b.amount != p.amount.dong() {
                Planned::Refused(provider_conflict(p, reference.unwrap_or_default()))
            } else {
                Planned::Duplicate(b.id)
            }
        } else if let Some((first, s, amount)) =
            reference.and_then(|r| in_batch.get(&(p.provider.as_str(), r)))
        {
            if *s != school_id || *amount != p.amount.dong() {
                Planned::Refused(provider_conflict(p, reference.unwrap_or_default()))
            } else {
                Planned::DuplicateOf(*first)
            }
        } else if let Some(c) =
            same_transfer(&snap.statement_credits, p, school_id, snap.match_window)
        {
            if c.amount == p.amount.dong() {
                Planned::Duplicate(c.payment_id)
            } else {
                Planned::Refused(Refusal::conflict(
                    "provider_ref_conflict",
                    format!(
                        "bank reference {} of this account is already booked from the bank statement (payment {}) with {}",
                        c.bank_ref,
                        c.payment_id,
                        Vnd::new(c.amount).unwrap_or(Vnd::ZERO)
                    ),
                ))
            }
        } else {
            match create(idx, p, school_id, snap, &mut balances, books) {
                Ok(c) => {
                    if let Some(r) = reference {
                        in_batch
                            .insert((p.provider.as_str(), r), (idx, school_id, p.amount.dong()));
                    }
                    Planned::Create(c)
                }
                Err(refusal) => Planned::Refused(refusal),
            }
        };
        out.push(Some(planned));
    }
    // The claims hold for this batch only: the next reads them again.
    for index in books.values_mut() {
        index.set_claims([]);
    }
    out
}

fn create(
    idx: usize,
    p: &NewPayment,
    school_id: i64,
    snap: &Snapshot,
    balances: &mut HashMap<i64, Balance>,
    books: &mut BTreeMap<i64, &mut Index>,
) -> Result<Create, Refusal> {
    let date = crate::domain::time::vietnam_date(p.received_at)
        .format("%Y-%m-%d")
        .to_string();
    let terms = (p.channel != Channel::Cash)
        .then(|| terms_from(&snap.schedules, school_id, &p.provider, p.channel, &date))
        .flatten();
    let fees = fee_rows(p, terms, &date)?;
    let created = match &p.allocate {
        Allocate::Given {
            allocations,
            method,
        } => {
            let balance = |id: i64| {
                balances
                    .get(&id)
                    .filter(|b| b.school_id == school_id)
                    .map(|b| b.open)
            };
            check_allocations(allocations, &balance, p.amount)?;
            for (id, amount) in allocations {
                if let Some(b) = balances.get_mut(id) {
                    b.open = b.open.checked_sub(*amount).unwrap_or(Vnd::ZERO);
                }
                if let Some(index) = books.get_mut(&school_id) {
                    index.settle(*id, *amount);
                }
            }
            // Money taken for no invoice waits in the queue, so no credit goes unseen.
            let review = allocations.is_empty().then(|| Review {
                kind: ExceptionKind::Review(crate::recon::ReviewReason::Unmatched),
                reason: "recorded for no invoice: allocate it to one, or refund it".into(),
                suggestions: vec![],
                earlier_payment: None,
                earlier_in_batch: None,
            });
            Create {
                allocations: allocations.clone(),
                method: *method,
                rule: None,
                evidence: None,
                fees,
                review,
            }
        }
        Allocate::Engine { order_ref } => {
            let Some(index) = books.get_mut(&school_id) else {
                // The store loads every school the engine decides for; without one the
                // payment is still recorded, as credit, and reconciling it later decides.
                return Ok(Create {
                    allocations: vec![],
                    method: AllocationMethod::Recon,
                    rule: None,
                    evidence: None,
                    fees,
                    review: None,
                });
            };
            let d = decide_credit(
                index,
                p.amount,
                p.memo.as_deref().unwrap_or(""),
                order_ref.as_deref(),
                p.payer_name.as_deref(),
                &|_| false,
            );
            // What it claims in review, later payments of the batch do not take; their
            // reviews name this one once it is recorded.
            if let Some(r) = &d.review {
                for invoice_id in review_claims(r) {
                    index.claim(invoice_id, Some(batch_claimant(idx)));
                }
            }
            for (id, amount) in &d.allocations {
                if let Some(b) = balances.get_mut(id) {
                    b.open = b.open.checked_sub(*amount).unwrap_or(Vnd::ZERO);
                }
            }
            Create {
                allocations: d.allocations,
                method: d.method,
                rule: d.rule,
                evidence: d.evidence,
                fees,
                review: d.review,
            }
        }
    };
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::code::{PaymentCode, SchoolPrefix};
    use crate::recon::OpenInvoice;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const SCHOOL: i64 = 1;

    fn vnd(d: i64) -> Vnd {
        Vnd::new(d).unwrap()
    }

    fn qd() -> SchoolPrefix {
        SchoolPrefix::parse("QD").unwrap()
    }

    fn code(id: i64) -> PaymentCode {
        PaymentCode::generate(&qd(), id as u64).unwrap()
    }

    /// A school of two pupils: Nguyễn Văn An (invoices 1 and 2) and Trần Thị Bích Ngọc (3).
    fn book() -> Index {
        let row =
            |id: i64, student: i64, name: &str, class: &str, period: &str, open: i64| OpenInvoice {
                invoice_id: id,
                code: code(id),
                student_id: student,
                student_code: format!("HS{student:04}"),
                student_name: name.into(),
                class_name: class.into(),
                family_key: None,
                open: vnd(open),
                period: period.into(),
                voided: false,
                paid_by: None,
            };
        Index::build(
            &qd(),
            vec![
                row(1, 1, "Nguyễn Văn An", "6A1", "2025-09", 935_000),
                row(2, 1, "Nguyễn Văn An", "6A1", "2025-10", 300_000),
                row(3, 2, "Trần Thị Bích Ngọc", "7A2", "2025-09", 1_566_800),
            ],
        )
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 9, 10, 1, 30, 0).unwrap()
    }

    fn transfer(reference: &str, amount: i64, memo: &str) -> NewPayment {
        NewPayment {
            channel: Channel::BankTransfer,
            provider: "sepay".into(),
            provider_ref: Some(reference.into()),
            bank_ref: Some(format!("FT{reference}")),
            payer_name: None,
            memo: Some(memo.into()),
            amount: vnd(amount),
            received_at: at(),
            reported_fee: None,
            allocate: Allocate::Engine { order_ref: None },
            reported_fee_bearer: None,
            credited_account: Some("6868123456789".into()),
        }
    }

    fn cash(amount: i64, allocations: &[(i64, i64)]) -> NewPayment {
        NewPayment {
            channel: Channel::Cash,
            provider: "cash".into(),
            provider_ref: None,
            bank_ref: None,
            payer_name: None,
            memo: None,
            amount: vnd(amount),
            received_at: at(),
            reported_fee: None,
            allocate: Allocate::Given {
                allocations: allocations.iter().map(|&(i, a)| (i, vnd(a))).collect(),
                method: AllocationMethod::CashDesk,
            },
            reported_fee_bearer: None,
            credited_account: None,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            balances: [(1, 935_000), (2, 300_000), (3, 1_566_800)]
                .into_iter()
                .map(|(id, open)| {
                    (
                        id,
                        Balance {
                            school_id: SCHOOL,
                            open: vnd(open),
                        },
                    )
                })
                .collect(),
            match_window: chrono::Duration::hours(48),
            ..Snapshot::default()
        }
    }

    fn run(payments: &[NewPayment], snap: &Snapshot, index: &mut Index) -> Vec<Planned> {
        let jobs: Vec<Option<Job>> = payments
            .iter()
            .map(|p| {
                Some(Job {
                    school_id: SCHOOL,
                    payment: p,
                })
            })
            .collect();
        let mut books = BTreeMap::from([(SCHOOL, index)]);
        plan(&jobs, snap, &mut books)
            .into_iter()
            .flatten()
            .collect()
    }

    fn created(p: &Planned) -> &Create {
        match p {
            Planned::Create(c) => c,
            other => panic!("not created: {other:?}"),
        }
    }

    #[test]
    fn a_retry_is_the_payment_recorded_before_and_another_amount_a_conflict() {
        let mut snap = snapshot();
        snap.booked.insert(
            ("sepay".into(), "A:1".into()),
            Booked {
                id: 77,
                school_id: SCHOOL,
                amount: 935_000,
            },
        );
        let mut index = book();
        let out = run(
            &[
                transfer("A:1", 935_000, &code(1).to_string()),
                transfer("A:1", 900_000, &code(1).to_string()),
            ],
            &snap,
            &mut index,
        );
        assert!(matches!(out[0], Planned::Duplicate(77)));
        assert!(matches!(&out[1], Planned::Refused(r) if r.conflict));
        assert_eq!(out[1].delivery_outcome(), DeliveryOutcome::Conflict);
        assert_eq!(
            index.open(1),
            Some(vnd(935_000)),
            "nothing decided, nothing moved"
        );
    }

    #[test]
    fn the_same_transfer_twice_in_a_batch_is_recorded_once() {
        let mut index = book();
        let memo = code(1).to_string();
        let out = run(
            &[
                transfer("A:2", 935_000, &memo),
                transfer("A:2", 935_000, &memo),
                transfer("A:2", 1, &memo),
            ],
            &snapshot(),
            &mut index,
        );
        assert_eq!(created(&out[0]).allocations, vec![(1, vnd(935_000))]);
        assert!(matches!(out[1], Planned::DuplicateOf(0)));
        assert!(matches!(&out[2], Planned::Refused(r) if r.conflict));
    }

    #[test]
    fn a_notification_of_a_credit_booked_from_the_statement_is_that_payment() {
        let mut snap = snapshot();
        snap.statement_credits.push(StatementCredit {
            payment_id: 9,
            school_id: SCHOOL,
            account_number: "6868 1234 56789".into(),
            bank_ref: "FTB:1".into(),
            amount: 935_000,
            booked_at: at() + chrono::Duration::hours(3),
        });
        let mut index = book();
        let same = transfer("B:1", 935_000, "x");
        let mut other_amount = transfer("B:1", 930_000, "x");
        other_amount.provider_ref = Some("B:2".into());
        let mut weeks_later = transfer("B:1", 935_000, "x");
        weeks_later.provider_ref = Some("B:3".into());
        weeks_later.received_at = at() + chrono::Duration::days(20);
        let out = run(&[same, other_amount, weeks_later], &snap, &mut index);
        assert!(matches!(out[0], Planned::Duplicate(9)));
        assert!(matches!(&out[1], Planned::Refused(r) if r.conflict));
        assert!(
            matches!(out[2], Planned::Create(_)),
            "a reference reused weeks later is new money"
        );
    }

    #[test]
    fn given_allocations_are_checked_against_balances_earlier_jobs_moved() {
        let mut index = book();
        let out = run(
            &[
                cash(900_000, &[(1, 900_000)]),
                cash(100_000, &[(1, 100_000)]),
                cash(35_000, &[(1, 35_000)]),
                cash(10_000, &[(99, 10_000)]),
                cash(10_000, &[(2, 5_000), (2, 5_000)]),
                cash(10_000, &[(2, 20_000)]),
            ],
            &snapshot(),
            &mut index,
        );
        assert_eq!(created(&out[0]).method, AllocationMethod::CashDesk);
        let code_of = |p: &Planned| match p {
            Planned::Refused(r) => r.code,
            _ => "created",
        };
        assert_eq!(
            out.iter().map(code_of).collect::<Vec<_>>(),
            vec![
                "created",
                "allocation_exceeds_balance",
                "created",
                "unknown_invoice",
                "invalid_allocation",
                "allocation_exceeds_payment"
            ]
        );
        assert_eq!(
            index.open(1).unwrap_or_default(),
            Vnd::ZERO,
            "the book sees what the cash desk paid"
        );
    }

    #[test]
    fn money_taken_for_no_invoice_waits_in_the_queue() {
        let mut index = book();
        let out = run(&[cash(50_000, &[])], &snapshot(), &mut index);
        let c = created(&out[0]);
        assert!(c.allocations.is_empty());
        assert!(c.review.is_some(), "credit nobody would see otherwise");
    }

    #[test]
    fn the_engine_decides_and_later_payments_see_its_allocations() {
        let mut index = book();
        let memo = format!("{} hoc phi", code(3));
        let out = run(
            &[
                transfer("C:1", 1_566_800, &memo),
                transfer("C:2", 1_566_800, &memo),
                transfer("C:3", 50_000, "chuyen tien"),
            ],
            &snapshot(),
            &mut index,
        );
        let first = created(&out[0]);
        assert_eq!(first.allocations, vec![(3, vnd(1_566_800))]);
        assert_eq!(first.method, AllocationMethod::PaymentCode);
        assert!(first.rule.is_some() && first.review.is_none());
        let again = created(&out[1]);
        assert!(again.allocations.is_empty(), "the invoice is paid now");
        assert!(again.review.is_some());
        let nothing = created(&out[2]);
        assert!(nothing.review.is_some() && nothing.allocations.is_empty());
        assert_eq!(out[0].delivery_outcome(), DeliveryOutcome::Recorded);
        assert!(out[2]
            .detail()
            .unwrap_or_default()
            .starts_with("in the review queue"));
    }

    /// A review names the earlier payment that claims (or paid) what the memo names, in its
    /// words too, so that the queue shows which one.
    #[test]
    fn a_review_names_the_earlier_payment() {
        let mut index = book();
        let snap = Snapshot {
            open_reviews: vec![OpenReview {
                school_id: SCHOOL,
                payment_id: 40,
                top: vec![1],
            }],
            ..snapshot()
        };
        let out = run(
            &[transfer("C:1", 935_000, "hoc phi T9 Nguyen Van An")],
            &snap,
            &mut index,
        );
        let review = created(&out[0]).review.clone().expect("review");
        assert_eq!(
            review.kind,
            ExceptionKind::Review(crate::recon::ReviewReason::PeriodInReview)
        );
        assert_eq!(review.earlier_payment, Some(40));
        assert!(review.reason.ends_with("(payment 40)"), "{}", review.reason);
        // Without a claim, the month written decides.
        let out = run(
            &[transfer("C:2", 935_000, "hoc phi T9 Nguyen Van An")],
            &snapshot(),
            &mut book(),
        );
        assert_eq!(created(&out[0]).allocations, vec![(1, vnd(935_000))]);
    }

    /// A review opened earlier in the same batch claims its month for the lines after it, and
    /// their reviews name its payment once the batch has ids.
    #[test]
    fn a_review_earlier_in_the_batch_is_named_once_recorded() {
        let mut index = book();
        let jobs = [
            transfer("C:1", 100_000, "nop tien hoc Nguyen Van An"),
            transfer("C:2", 935_000, "hoc phi T9 Nguyen Van An"),
        ];
        let mut plans: Vec<Option<Planned>> = run(&jobs, &snapshot(), &mut index)
            .into_iter()
            .map(Some)
            .collect();
        let first = plans[0].as_ref().map(created).expect("first");
        assert_eq!(review_claims(first.review.as_ref().expect("review")), [1]);
        let review = |plans: &[Option<Planned>]| {
            plans[1]
                .as_ref()
                .map(created)
                .and_then(|c| c.review.clone())
                .expect("review")
        };
        let second = review(&plans);
        assert_eq!(
            second.kind,
            ExceptionKind::Review(crate::recon::ReviewReason::PeriodInReview)
        );
        assert_eq!(
            (second.earlier_payment, second.earlier_in_batch),
            (None, Some(0))
        );
        assert!(!second.reason.contains("payment -"), "{}", second.reason);
        name_batch_claimants(&mut plans, &HashMap::from([(0, 501), (1, 502)]));
        let second = review(&plans);
        assert_eq!(
            (second.earlier_payment, second.earlier_in_batch),
            (Some(501), None)
        );
        assert!(
            second.reason.ends_with("(payment 501)"),
            "{}",
            second.reason
        );
    }

    #[test]
    fn fee_lines_follow_the_terms_in_force() {
        use crate::domain::fee::PartialTerms;
        let mut snap = snapshot();
        snap.schedules.push(ScheduleRow {
            id: 5,
            school_id: None,
            provider: "sepay".into(),
            channel: "bank_transfer".into(),
            effective_from: "2025-01-01".into(),
            effective_to: None,
            terms: PartialTerms {
                percent: Some(rust_decimal::Decimal::ZERO),
                fixed: Some(vnd(1_100)),
                bearer: Some(Bearer::School),
                ..PartialTerms::default()
            },
        });
        let mut index = book();
        let out = run(&[transfer("D:1", 300_000, "x")], &snap, &mut index);
        let c = created(&out[0]);
        assert_eq!(c.fees.len(), 1);
        assert_eq!(c.fees[0].amount, vnd(1_100));
        assert!(!c.fees[0].needs_review);
        let out = run(&[transfer("D:2", 300_000, "x")], &snapshot(), &mut index);
        assert!(created(&out[0]).fees[0].needs_review, "no terms in force");
        let out = run(&[cash(1, &[])], &snapshot(), &mut index);
        assert!(created(&out[0]).fees.is_empty(), "cash has no fee lines");
    }

    proptest! {
        /// However a batch is made, no payment allocates more than it brought, no invoice gets
        /// more than it owed, and a refusal moves nothing.
        #[test]
        fn never_over_allocates(
            jobs in proptest::collection::vec((1i64..2_000_000, 0usize..4, any::<bool>(), 0u8..3), 1..24)
        ) {
            let mut index = book();
            let owed = [(1i64, 935_000i64), (2, 300_000), (3, 1_566_800)];
            let payments: Vec<NewPayment> = jobs
                .iter()
                .enumerate()
                .map(|(n, &(amount, target, by_engine, reference))| {
                    if by_engine {
                        let memo = match target {
                            0 => code(1).to_string(),
                            1 => format!("{} {}", code(1), code(2)),
                            2 => "Nguyen Van An 6A1".to_string(),
                            _ => "Tran Thi Bich Ngoc".to_string(),
                        };
                        transfer(&format!("P:{}", if reference == 0 { n as u8 } else { reference }), amount, &memo)
                    } else {
                        let (id, _) = owed[target % owed.len()];
                        cash(amount, &[(id, amount.min(400_000))])
                    }
                })
                .collect();
            let out = run(&payments, &snapshot(), &mut index);
            let mut paid: HashMap<i64, i64> = HashMap::new();
            for (p, planned) in payments.iter().zip(&out) {
                if let Planned::Create(c) = planned {
                    let sum: i64 = c.allocations.iter().map(|(_, a)| a.dong()).sum();
                    prop_assert!(sum <= p.amount.dong());
                    for (id, a) in &c.allocations {
                        prop_assert!(a.dong() > 0);
                        *paid.entry(*id).or_default() += a.dong();
                    }
                }
            }
            for (id, total) in owed {
                prop_assert!(paid.get(&id).copied().unwrap_or(0) <= total, "invoice {id} over-allocated");
            }
        }
    }
}
