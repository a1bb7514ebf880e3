//! Recording payments, one or many at a time. A batch is one transaction with a fixed number of
//! statements whatever its size (the ledger locks; one read of what is already recorded,
//! `seen.rs`; receipt numbers; rows, exceptions, audit records and archived deliveries), so a
//! burst of notifications costs a handful of round trips instead of a dozen each. Fee terms are
//! read beside the transaction's start. The cash desk records a batch of one.
//!
//! What each payment becomes is decided by `plan::intake` from what is loaded here, before
//! anything is written; the reconciliation engine decides inside the same transaction, against
//! the school's book (`book.rs`), so no payment is ever written without either its
//! allocations or its exception.

use super::book::{catch_up_all, Book, KeptReviews, Transfers};
use super::recon::{twins, StoredSuggestions, ToReconcile};
use super::seen::{self, Seen};
use super::webhooks::{insert_events, NewEvent};
use super::{format_time, now, rows_per_insert, values_rows, Store, Tx};
use crate::audit::{self, Chain, Entry};
use crate::domain::ledger::{receipt_number, AllocationMethod};
use crate::domain::money::Vnd;
use crate::error::{Error, Result};
use crate::plan::fees::{FeeRow, ScheduleRow};
use crate::plan::intake::{
    self, Allocate, Create, Job as PlanJob, NewPayment, OpenReview, Planned, Recorded, Refusal,
    Snapshot,
};
use crate::plan::queue::{ExceptionKind, LedgerIssue};
use crate::recon::duplicates::Booked;
use crate::recon::Index;
use crate::store::ledger::vietnam;
use crate::store::org::School;
use chrono::{Datelike, Utc};
use serde_json::json;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A payment to record on behalf of `actor`.
#[derive(Debug, Clone)]
pub struct Job {
    pub actor: String,
    pub school: School,
    pub payment: NewPayment,
}

/// One entry of a batch: a payment, the archived delivery that carried it, or both.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub job: Option<Job>,
    pub event: Option<NewEvent>,
}

/// What recording did with one job.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub planned: Planned,
    /// The payment created or found.
    pub payment_id: Option<i64>,
    /// The exception opened for it, when the engine could not decide.
    pub exception_id: Option<i64>,
}

impl Outcome {
    /// The payment recorded, or why not, as the API answers it.
    pub fn recorded(&self) -> Result<Recorded> {
        match (&self.planned, self.payment_id) {
            (Planned::Create(_), Some(id)) => Ok(Recorded::Created(id)),
            (Planned::Duplicate(_) | Planned::DuplicateOf(_), Some(id)) => {
                Ok(Recorded::Duplicate(id))
            }
            (Planned::Refused(r), _) => Err(refusal_error(r)),
            _ => Err(Error::Internal("a recorded payment without its id".into())),
        }
    }
}

pub(crate) fn refusal_error(r: &Refusal) -> Error {
    if r.conflict {
        Error::conflict(r.code, r.message.clone())
    } else {
        Error::invalid(r.code, r.message.clone())
    }
}

/// PostgreSQL: locks the ledgers of `school_ids` (ascending, so concurrent batches never deadlock) until
/// commit, in one statement.
async fn lock_ledgers(tx: &mut Tx, school_ids: &BTreeSet<i64>) -> Result<()> {
    if school_ids.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (1..=school_ids.len())
        .map(|i| format!("(${i}, 'invoice', 0)"))
        .collect();
    let sql = format!(
        "INSERT INTO counters (school_id, name, value) VALUES {}
         ON CONFLICT (school_id, name) DO UPDATE SET value = counters.value",
        values.join(",")
    );
    let mut q = sqlx::query(&sql);
    for id in school_ids {
        q = q.bind(*id);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Takes `count` receipt numbers of `year` per school; returns each school's first sequence
/// number. Gapless: a rolled-back transaction gives its numbers back.
async fn take_receipts(
    tx: &mut Tx,
    year: i32,
    counts: &BTreeMap<i64, i64>,
) -> Result<HashMap<i64, i64>> {
    if counts.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "INSERT INTO counters (school_id, name, value) VALUES {}
         ON CONFLICT (school_id, name) DO UPDATE SET value = counters.value + excluded.value
         RETURNING school_id, value",
        values_rows(tx, counts.len(), 3)
    );
    let name = format!("receipt:{year}");
    let mut q = sqlx::query(&sql);
    for (school_id, n) in counts {
        q = q.bind(*school_id).bind(&name).bind(*n);
    }
    let mut first = HashMap::new();
    for r in q.fetch_all(&mut **tx).await? {
        let school_id: i64 = r.try_get("school_id")?;
        let last: i64 = r.try_get("value")?;
        first.insert(
            school_id,
            last - counts.get(&school_id).copied().unwrap_or(0) + 1,
        );
    }
    Ok(first)
}

/// The fee schedules that the cashless payments among `jobs` may fall under.
async fn schedules_of(conn: &mut sqlx::AnyConnection, jobs: &[&Job]) -> Result<Vec<ScheduleRow>> {
    let cashless: BTreeSet<&str> = jobs
        .iter()
        .filter(|j| j.payment.channel != crate::domain::fee::Channel::Cash)
        .map(|j| j.payment.provider.as_str())
        .collect();
    let schools: BTreeSet<i64> = jobs.iter().map(|j| j.school.id).collect();
    super::ledger::schedules_for(conn, &cashless, &schools).await
}

/// What [`record_batch_in`] reads before it decides, besides the books.
pub(super) struct Loaded {
    pub seen: Seen,
    pub schedules: Vec<ScheduleRow>,
}

impl Loaded {
    /// Reads, in the caller's transaction that holds the ledger locks, what `items` need to be
    /// decided against the books of `engine_schools`.
    pub(super) async fn read(
        tx: &mut Tx,
        items: &[BatchItem],
        engine_schools: &BTreeSet<i64>,
    ) -> Result<Loaded> {
        let jobs: Vec<&Job> = items.iter().filter_map(|i| i.job.as_ref()).collect();
        let seen = seen::read(tx, &jobs, &BTreeSet::new(), engine_schools).await?;
        let schedules = schedules_of(&mut *tx, &jobs).await?;
        Ok(Loaded { seen, schedules })
    }
}

impl Store {
    /// Records a payment of any channel, exactly once per (provider, provider reference).
    pub async fn record_payment(
        &self,
        actor: &str,
        school: &School,
        p: NewPayment,
    ) -> Result<Recorded> {
        let mut items = [BatchItem {
            job: Some(Job {
                actor: actor.to_string(),
                school: school.clone(),
                payment: p,
            }),
            event: None,
        }];
        self.record_batch(&mut items)
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| Error::Internal("batch of one gave no result".into()))?
            .recorded()
    }

    /// Records every job of `items` and archives every event, in one transaction; each event
    /// says what became of its job. The outer error means nothing was written.
    pub async fn record_batch(&self, items: &mut [BatchItem]) -> Result<Vec<Option<Outcome>>> {
        // The books the engine reads, read first outside the transaction if this instance has
        // none yet, so that reading a large school never holds the writer.
        let mut engine_schools: BTreeMap<i64, &School> = BTreeMap::new();
        for job in items.iter().filter_map(|i| i.job.as_ref()) {
            if matches!(job.payment.allocate, Allocate::Engine { .. }) {
                engine_schools.insert(job.school.id, &job.school);
            }
        }
        for school in engine_schools.values() {
            self.warm_book(school).await?;
        }
        let slots: Vec<(School, _)> = engine_schools
            .values()
            .map(|s| ((*s).clone(), self.books.slot(s.id)))
            .collect();
        let mut guards = Vec::with_capacity(slots.len());
        for (school, slot) in &slots {
            guards.push((school, slot.lock().await));
        }
        let engine: BTreeSet<i64> = engine_schools.keys().copied().collect();
        let result = async {
            let jobs: Vec<&Job> = items.iter().filter_map(|i| i.job.as_ref()).collect();
            // Fee schedules are not ledger state: read beside the transaction's start, which on
            // PostgreSQL saves the writer a round trip.
            let (tx, schedules) = tokio::join!(self.begin_writing(), async {
                let mut conn = self.reader().acquire().await?;
                schedules_of(&mut conn, &jobs).await
            });
            let (mut tx, schedules) = (tx?, schedules?);
            if self.backend() == super::Backend::Postgres {
                let schools: BTreeSet<i64> = jobs.iter().map(|j| j.school.id).collect();
                lock_ledgers(&mut tx, &schools).await?;
            }
            // The open reviews a book keeps are taken as current if the chain has not moved
            // since; the chain's position comes with the same statement, so they are checked
            // after it, and read when it moved.
            let kept_reviews: BTreeMap<i64, i64> = guards
                .iter()
                .filter_map(|(s, g)| match g.as_ref() {
                    Some(Book {
                        seq,
                        reviews: Some(r),
                        ..
                    }) if r.at_seq == *seq => Some((s.id, *seq)),
                    _ => None,
                })
                .collect();
            let to_read: BTreeSet<i64> = engine
                .iter()
                .filter(|id| !kept_reviews.contains_key(id))
                .copied()
                .collect();
            let mut seen = seen::read(&mut tx, &jobs, &engine, &to_read).await?;
            drop(jobs);
            let moved: BTreeSet<i64> = kept_reviews
                .iter()
                .filter(|(id, seq)| seen.chain_seqs.get(id) != Some(seq))
                .map(|(id, _)| *id)
                .collect();
            if !moved.is_empty() {
                let again = seen::read(&mut tx, &[], &BTreeSet::new(), &moved).await?;
                seen.open_reviews.extend(again.open_reviews);
            }
            for (s, g) in guards.iter() {
                if let (
                    Some(Book {
                        reviews: Some(r), ..
                    }),
                    false,
                ) = (
                    g.as_ref(),
                    moved.contains(&s.id) || !kept_reviews.contains_key(&s.id),
                ) {
                    seen.open_reviews.extend(r.list.iter().cloned());
                }
            }
            seen.open_reviews.sort_by_key(|r| r.payment_id);
            {
                let mut books: Vec<(&School, &mut Option<Book>)> =
                    guards.iter_mut().map(|(s, g)| (*s, &mut **g)).collect();
                catch_up_all(&mut tx, &mut books, &seen.chain_seqs).await?;
            }
            // Caught up, each book whose reviews were read keeps them at its position.
            for (s, g) in guards.iter_mut() {
                let current = kept_reviews.contains_key(&s.id) && !moved.contains(&s.id);
                if let (Some(b), false) = (g.as_mut(), current) {
                    b.reviews = Some(KeptReviews {
                        list: seen
                            .open_reviews
                            .iter()
                            .filter(|r| r.school_id == s.id)
                            .cloned()
                            .collect(),
                        at_seq: b.seq,
                    });
                }
            }
            let mut recorded = {
                let mut books: BTreeMap<i64, &mut Index> = BTreeMap::new();
                let mut kept: KeptTransfers<'_> = BTreeMap::new();
                for (s, g) in guards.iter_mut() {
                    if let Some(b) = g.as_mut() {
                        books.insert(s.id, &mut b.index);
                        kept.insert(s.id, (&mut b.transfers, b.seq));
                    }
                }
                record_batch_in(
                    &mut tx,
                    items,
                    &mut books,
                    &mut kept,
                    Loaded { seen, schedules },
                )
                .await?
            };
            // The books now hold what the batch wrote: their position is the chains' new
            // length (a school that got no record keeps the position it was caught up to), and
            // the transfers they keep, if current, what it allocated.
            for (school, book) in guards.iter_mut() {
                if let (Some(b), Some(n)) = (book.as_mut(), recorded.chain_lengths.get(&school.id))
                {
                    if let Some(r) = b.reviews.as_mut().filter(|r| r.at_seq == b.seq) {
                        r.list
                            .extend(recorded.reviews.remove(&school.id).unwrap_or_default());
                        r.at_seq = *n;
                    }
                    if let Some(t) = b.transfers.as_mut().filter(|t| t.at_seq == b.seq) {
                        for p in recorded.transfers.remove(&school.id).unwrap_or_default() {
                            if p.received_at >= t.from {
                                t.ledger.insert(p);
                            }
                        }
                        t.at_seq = *n;
                    }
                    b.seq = *n;
                }
            }
            tx.commit().await?;
            Ok(recorded.outcomes)
        }
        .await;
        if result.is_err() {
            // The books may hold what the transaction decided and did not commit: read again.
            for (_, book) in guards.iter_mut() {
                **book = None;
            }
        }
        result
    }
}

/// [`Store::record_batch`] inside a transaction the caller commits, which holds the ledger
/// locks of the jobs' schools; `books` holds, caught up, the book of each school whose jobs the
/// engine decides.
pub(super) async fn record_batch_in(
    tx: &mut Tx,
    items: &mut [BatchItem],
    books: &mut BTreeMap<i64, &mut Index>,
    kept: &mut KeptTransfers<'_>,
    loaded: Loaded,
) -> Result<BatchWritten> {
    let Loaded { seen, schedules } = loaded;
    let snapshot = Snapshot {
        booked: seen.booked,
        statement_credits: seen.statement_credits,
        balances: seen.balances,
        schedules,
        match_window: chrono::Duration::hours(super::statements::MATCH_WINDOW_HOURS),
        open_reviews: seen.open_reviews,
    };
    let plan_jobs: Vec<Option<PlanJob>> = items
        .iter()
        .map(|i| {
            i.job.as_ref().map(|j| PlanJob {
                school_id: j.school.id,
                payment: &j.payment,
            })
        })
        .collect();
    let mut plans = intake::plan(&plan_jobs, &snapshot, books);

    // Receipt numbers, in batch order per school.
    let recorded_year = Utc::now().with_timezone(&vietnam()).year();
    let creating = |idx: usize| matches!(plans[idx], Some(Planned::Create(_)));
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    let mut entry_counts: BTreeMap<i64, i64> = BTreeMap::new();
    for (idx, item) in items.iter().enumerate() {
        if let (Some(job), Some(Planned::Create(c))) = (&item.job, &plans[idx]) {
            *counts.entry(job.school.id).or_default() += 1;
            // A payment's record, and its exception's when it goes to review.
            *entry_counts.entry(job.school.id).or_default() += 1 + i64::from(c.review.is_some());
        }
    }
    let postgres = !tx.backend_name().eq_ignore_ascii_case("sqlite");
    let (mut next_seq, prepared) = if postgres {
        let (seq, heads, ids) = reserve_postgres(tx, recorded_year, &counts, &entry_counts).await?;
        (seq, Some((heads, ids)))
    } else {
        (take_receipts(tx, recorded_year, &counts).await?, None)
    };
    // (item index, receipt number, sequence) of each payment to create.
    let mut creates: Vec<(usize, String, i64)> = Vec::new();
    for (idx, item) in items.iter().enumerate() {
        if let (Some(job), true) = (&item.job, creating(idx)) {
            let seq = next_seq.entry(job.school.id).or_insert(1);
            creates.push((
                idx,
                receipt_number(&job.school.payment_prefix, recorded_year, *seq),
                *seq,
            ));
            *seq += 1;
        }
    }
    let recorded_at = now();
    let (ids, heads) = match prepared {
        Some((heads, reserved)) => {
            if reserved.len() != creates.len() {
                return Err(Error::Internal("payment ids not reserved".into()));
            }
            let ids: HashMap<usize, i64> = creates
                .iter()
                .zip(reserved)
                .map(|((idx, ..), id)| (*idx, id))
                .collect();
            (ids, Some(heads))
        }
        None => (
            insert_payments(tx, items, &creates, recorded_year, &recorded_at).await?,
            None,
        ),
    };

    // A review that one earlier in the batch claims against names its payment.
    intake::name_batch_claimants(&mut plans, &ids);
    // A payment in review that repeats one already booked is a refund candidate.
    refine_reviews(tx, items, &mut plans, &ids, books, kept).await?;

    // The payment each item became.
    let payment_of = |idx: usize, plan: &Planned| -> Option<i64> {
        match plan {
            Planned::Create(_) => ids.get(&idx).copied(),
            Planned::Duplicate(id) => Some(*id),
            Planned::DuplicateOf(first) => ids.get(first).copied(),
            Planned::Refused(_) => None,
        }
    };
    // Each archived delivery says what became of its payment.
    for (idx, item) in items.iter_mut().enumerate() {
        let (Some(event), Some(plan)) = (item.event.as_mut(), &plans[idx]) else {
            continue;
        };
        event.outcome = plan.delivery_outcome();
        event.detail = plan.detail();
        event.payment_id = payment_of(idx, plan);
        event.ack_status = event.acks.status(event.outcome);
        event.verified = true;
    }

    // One audit record per created payment, and one per exception it opens, on its school's
    // chain.
    let mut entries = Vec::with_capacity(creates.len());
    for (idx, receipt_no, _) in &creates {
        if let (Some(Planned::Create(c)), Some(id), Some(job)) =
            (&plans[*idx], ids.get(idx), &items[*idx].job)
        {
            let p = &job.payment;
            entries.push((
                Chain::School(job.school.id),
                Entry {
                    actor: &job.actor,
                    action: "payment.record",
                    entity: "payment",
                    entity_id: Some(*id),
                    details: json!({"channel": p.channel, "provider": p.provider, "provider_ref": p.provider_ref, "amount": p.amount,
                        "receipt_no": receipt_no, "allocations": c.allocations.iter().map(|(i, a)| json!([i, a])).collect::<Vec<_>>(),
                        "method": c.method, "rule": c.rule, "evidence": c.evidence,
                        "fees": c.fees.iter().map(|f| json!({"amount": f.amount, "borne_by": f.borne_by, "needs_review": f.needs_review})).collect::<Vec<_>>()}),
                },
            ));
            if let Some(r) = &c.review {
                entries.push((
                    Chain::School(job.school.id),
                    Entry {
                        actor: &job.actor,
                        action: "exception.open",
                        entity: "payment",
                        entity_id: Some(*id),
                        details: json!({"kind": r.kind, "suggestions": r.suggestions.len(), "earlier_payment": r.earlier_payment}),
                    },
                ));
            }
        }
    }

    let events: Vec<&NewEvent> = items.iter().filter_map(|i| i.event.as_ref()).collect();
    let written = Written {
        items,
        ids: &ids,
        recorded_year,
        recorded_at: &recorded_at,
    };
    // Each school's chain length once this batch's records are on it.
    let mut chain_lengths: BTreeMap<i64, i64> = BTreeMap::new();
    let exception_ids = match heads {
        Some(mut heads) => {
            for (school_id, n) in &entry_counts {
                if let Some((first, _)) = heads.get(&Chain::School(*school_id).key()) {
                    chain_lengths.insert(*school_id, first + n - 1);
                }
            }
            // A big import goes in a few statements, so no parameter grows without bound.
            let statements = creates.len().div_ceil(PAYMENTS_PER_STATEMENT).max(1);
            let mut exception_ids = HashMap::new();
            let mut first_entry = 0;
            for k in 0..statements {
                let range = k * PAYMENTS_PER_STATEMENT
                    ..((k + 1) * PAYMENTS_PER_STATEMENT).min(creates.len());
                let lines = lines_of(&creates[range.clone()], &plans, items, &ids);
                let n_entries: usize = creates[range.clone()]
                    .iter()
                    .map(|(idx, ..)| match &plans[*idx] {
                        Some(Planned::Create(c)) => 1 + usize::from(c.review.is_some()),
                        _ => 0,
                    })
                    .sum();
                let events = if k + 1 == statements {
                    &events[..]
                } else {
                    &[]
                };
                let rows = Rows::new(&creates[range], &lines, &written, events);
                exception_ids.extend(
                    write_postgres(
                        tx,
                        rows,
                        &mut entries[first_entry..first_entry + n_entries],
                        &mut heads,
                    )
                    .await?,
                );
                first_entry += n_entries;
            }
            exception_ids
        }
        None => {
            let lines = lines_of(&creates, &plans, items, &ids);
            let (fees, allocations, exceptions) = &lines;
            insert_fees_and_allocations(tx, fees, allocations, &recorded_at).await?;
            let exception_ids = insert_exceptions(tx, exceptions, &recorded_at).await?;
            cover_payments(&mut entries, &Rows::new(&creates, &lines, &written, &[]));
            let lengths = audit::record_many(tx, entries).await?;
            for school_id in entry_counts.keys() {
                if let Some(n) = lengths.get(&Chain::School(*school_id).key()) {
                    chain_lengths.insert(*school_id, *n);
                }
            }
            insert_events(tx, &events).await?;
            exception_ids
        }
    };
    let mut transfers: BTreeMap<i64, Vec<Booked>> = BTreeMap::new();
    let mut reviews: BTreeMap<i64, Vec<OpenReview>> = BTreeMap::new();
    for (idx, item) in items.iter().enumerate() {
        if let (Some(job), Some(Planned::Create(c)), Some(id)) =
            (&item.job, &plans[idx], ids.get(&idx))
        {
            if let Some(r) = &c.review {
                reviews.entry(job.school.id).or_default().push(OpenReview {
                    school_id: job.school.id,
                    payment_id: *id,
                    top: intake::review_claims(r),
                });
            }
            if c.allocations.is_empty() || c.method == AllocationMethod::PaymentCode {
                continue;
            }
            let p = &job.payment;
            transfers.entry(job.school.id).or_default().push(Booked {
                payment_id: *id,
                received_at: p.received_at,
                amount: p.amount,
                memo: p.memo.clone().unwrap_or_default(),
                payer_name: p.payer_name.clone(),
                invoice_ids: vec![],
                allocated: true,
            });
        }
    }
    let outcomes = plans
        .into_iter()
        .enumerate()
        .map(|(idx, plan)| {
            plan.map(|planned| {
                let payment_id = payment_of(idx, &planned);
                Outcome {
                    exception_id: payment_id.and_then(|p| exception_ids.get(&p).copied()),
                    payment_id,
                    planned,
                }
            })
        })
        .collect();
    Ok(BatchWritten {
        outcomes,
        chain_lengths,
        transfers,
        reviews,
    })
}

/// What [`record_batch_in`] did.
pub(super) struct BatchWritten {
    /// What became of each item's job.
    pub outcomes: Vec<Option<Outcome>>,
    /// school id → its chain's length after the batch, for each school it wrote records of.
    pub chain_lengths: BTreeMap<i64, i64>,
    /// school id → the payments the batch allocated other than by a payment code, as the
    /// duplicate rules read them.
    pub transfers: BTreeMap<i64, Vec<Booked>>,
    /// school id → the reviews the batch opened, as rule `period_in_review` reads them.
    pub reviews: BTreeMap<i64, Vec<OpenReview>>,
}

/// school id → the transfers its book keeps, and the book's position.
pub(super) type KeptTransfers<'a> = BTreeMap<i64, (&'a mut Option<Transfers>, i64)>;

/// Turns the reviews of payments that repeat a transfer already booked into refund candidates
/// (rules in [`crate::recon::duplicates`]).
async fn refine_reviews(
    tx: &mut Tx,
    items: &[BatchItem],
    plans: &mut [Option<Planned>],
    ids: &HashMap<usize, i64>,
    books: &BTreeMap<i64, &mut Index>,
    kept: &mut KeptTransfers<'_>,
) -> Result<()> {
    let mut by_school: BTreeMap<i64, (School, Vec<(usize, ToReconcile)>)> = BTreeMap::new();
    for (idx, item) in items.iter().enumerate() {
        let (
            Some(job),
            Some(Planned::Create(Create {
                review: Some(_), ..
            })),
            Some(id),
        ) = (&item.job, &plans[idx], ids.get(&idx))
        else {
            continue;
        };
        let p = &job.payment;
        by_school
            .entry(job.school.id)
            .or_insert_with(|| (job.school.clone(), Vec::new()))
            .1
            .push((
                idx,
                ToReconcile {
                    id: *id,
                    amount: p.amount,
                    received_at: p.received_at,
                    credit: p.amount,
                    memo: p.memo.clone(),
                    payer_name: p.payer_name.clone(),
                },
            ));
    }
    for (school_id, (school, arriving)) in by_school {
        let Some(index) = books.get(&school_id) else {
            continue;
        };
        let prefix = crate::domain::code::SchoolPrefix::parse(&school.payment_prefix)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let refs: Vec<&ToReconcile> = arriving.iter().map(|(_, p)| p).collect();
        let slot = kept.get_mut(&school_id).map(|(t, seq)| (&mut **t, *seq));
        let found = twins(tx, &school, &prefix, &refs, index, slot).await?;
        for (idx, p) in &arriving {
            if let (
                Some(twin),
                Some(Planned::Create(Create {
                    review: Some(r), ..
                })),
            ) = (found.get(&p.id), plans[*idx].as_mut())
            {
                r.kind = ExceptionKind::Ledger(LedgerIssue::Duplicate);
                r.reason = twin.reason();
            }
        }
    }
    Ok(())
}

/// Payments per write statement on PostgreSQL (with their fee lines, allocations, exceptions
/// and audit records).
const PAYMENTS_PER_STATEMENT: usize = 2_000;

/// A fee line to write: (payment id, school id, line).
type FeeLine<'a> = (i64, i64, &'a FeeRow);
/// An allocation to write: (payment id, job, invoice id, amount, method, rule).
type AllocationLine<'a> = (i64, &'a Job, i64, Vnd, &'static str, Option<&'a str>);
/// An exception to open: (payment id, school id, review).
type ExceptionLine<'a> = (i64, i64, &'a intake::Review);

/// The fee lines, allocations and exceptions of some payments.
type Lines<'a> = (
    Vec<FeeLine<'a>>,
    Vec<AllocationLine<'a>>,
    Vec<ExceptionLine<'a>>,
);

/// The fee lines, allocations and exceptions of the payments `creates` makes, in its order.
fn lines_of<'a>(
    creates: &[(usize, String, i64)],
    plans: &'a [Option<Planned>],
    items: &'a [BatchItem],
    ids: &HashMap<usize, i64>,
) -> Lines<'a> {
    let (mut fee_lines, mut allocation_lines, mut exception_lines) =
        (Vec::new(), Vec::new(), Vec::new());
    for (idx, ..) in creates {
        if let (Some(Planned::Create(c)), Some(id), Some(job)) =
            (&plans[*idx], ids.get(idx), &items[*idx].job)
        {
            fee_lines.extend(c.fees.iter().map(|f| (*id, job.school.id, f)));
            allocation_lines.extend(
                c.allocations
                    .iter()
                    .map(|(inv, a)| (*id, job, *inv, *a, c.method.as_str(), c.rule.as_deref())),
            );
            if let Some(r) = &c.review {
                exception_lines.push((*id, job.school.id, r));
            }
        }
    }
    (fee_lines, allocation_lines, exception_lines)
}

/// Inserts the payments of `creates`, in chunks; returns each item's new payment id.
async fn insert_payments(
    tx: &mut Tx,
    items: &[BatchItem],
    creates: &[(usize, String, i64)],
    recorded_year: i32,
    recorded_at: &str,
) -> Result<HashMap<usize, i64>> {
    let mut ids: HashMap<usize, i64> = HashMap::new();
    for chunk in creates.chunks(rows_per_insert(tx)) {
        let sql = format!(
                "INSERT INTO payments (school_id, channel, provider, provider_ref, payer_name, memo, amount, received_at, recorded_at,
                    recorded_by, receipt_no, receipt_year, receipt_seq, bank_ref) VALUES {} RETURNING id, school_id, receipt_no",
                values_rows(tx, chunk.len(), 14)
            );
        let mut q = sqlx::query(&sql);
        for (idx, receipt_no, seq) in chunk {
            let Some(job) = &items[*idx].job else {
                continue;
            };
            let p = &job.payment;
            q = q
                .bind(job.school.id)
                .bind(p.channel.as_str())
                .bind(&p.provider)
                .bind(&p.provider_ref)
                .bind(&p.payer_name)
                .bind(&p.memo)
                .bind(p.amount.dong())
                .bind(format_time(p.received_at))
                .bind(recorded_at)
                .bind(&job.actor)
                .bind(receipt_no)
                .bind(recorded_year as i64)
                .bind(*seq)
                .bind(&p.bank_ref);
        }
        // Rows come back by their receipt number, which is unique per school.
        let mut by_receipt: HashMap<(i64, String), i64> = HashMap::new();
        for r in q.fetch_all(&mut **tx).await? {
            by_receipt.insert(
                (r.try_get("school_id")?, r.try_get("receipt_no")?),
                r.try_get("id")?,
            );
        }
        for (idx, receipt_no, _) in chunk {
            let school_id = items[*idx].job.as_ref().map(|j| j.school.id);
            let id = school_id
                .and_then(|s| by_receipt.get(&(s, receipt_no.clone())))
                .ok_or_else(|| Error::Internal("inserted payment not returned".into()))?;
            ids.insert(*idx, *id);
        }
    }
    Ok(ids)
}

async fn insert_fees_and_allocations(
    tx: &mut Tx,
    fees: &[FeeLine<'_>],
    allocations: &[AllocationLine<'_>],
    recorded_at: &str,
) -> Result<()> {
    let per_insert = rows_per_insert(tx);
    for chunk in fees.chunks(per_insert) {
        let sql = format!(
                "INSERT INTO payment_fees (payment_id, school_id, charged_by, kind, basis, amount, borne_by, predicted_amount, reported_amount,
                    schedule_id, needs_review) VALUES {}",
                values_rows(tx, chunk.len(), 11)
            );
        let mut q = sqlx::query(&sql);
        for (id, school_id, f) in chunk {
            q = q
                .bind(*id)
                .bind(*school_id)
                .bind(&f.charged_by)
                .bind(f.kind)
                .bind(&f.basis)
                .bind(f.amount.dong())
                .bind(f.borne_by.as_str())
                .bind(f.predicted.map(Vnd::dong))
                .bind(f.reported.map(Vnd::dong))
                .bind(f.schedule_id)
                .bind(f.needs_review);
        }
        q.execute(&mut **tx).await?;
    }
    for chunk in allocations.chunks(per_insert) {
        let sql = format!(
                "INSERT INTO allocations (school_id, payment_id, invoice_id, amount, method, created_at, created_by, rule) VALUES {}",
                values_rows(tx, chunk.len(), 8)
            );
        let mut q = sqlx::query(&sql);
        for (id, job, invoice_id, amount, method, rule) in chunk {
            q = q
                .bind(job.school.id)
                .bind(*id)
                .bind(*invoice_id)
                .bind(amount.dong())
                .bind(*method)
                .bind(recorded_at)
                .bind(&job.actor)
                .bind(*rule);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// SQLite: opens the exceptions of `exceptions`; returns payment id → exception id.
async fn insert_exceptions(
    tx: &mut Tx,
    exceptions: &[ExceptionLine<'_>],
    at: &str,
) -> Result<HashMap<i64, i64>> {
    let mut out = HashMap::new();
    for chunk in exceptions.chunks(rows_per_insert(tx)) {
        let sql = format!(
            "INSERT INTO exceptions (school_id, payment_id, kind, reason, suggestions, status, created_at, claims) VALUES {} RETURNING id, payment_id",
            values_rows(tx, chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for (payment_id, school_id, r) in chunk {
            let stored = StoredSuggestions::of(&r.suggestions)?;
            q = q
                .bind(*school_id)
                .bind(*payment_id)
                .bind(r.kind.as_str())
                .bind(&r.reason)
                .bind(stored.json)
                .bind("open")
                .bind(at)
                .bind(stored.claims);
        }
        for row in q.fetch_all(&mut **tx).await? {
            out.insert(row.try_get("payment_id")?, row.try_get("id")?);
        }
    }
    Ok(out)
}

/// Audit chain heads: chain key → (next sequence number, previous hash).
type Heads = HashMap<String, (i64, String)>;

/// PostgreSQL: takes `counts` receipt numbers per school, `entries` records on each school's
/// audit chain, and one payment id per receipt, in one statement. Returns each school's first receipt
/// sequence number, the chains' heads and the ids in ascending order.
async fn reserve_postgres(
    tx: &mut Tx,
    year: i32,
    counts: &BTreeMap<i64, i64>,
    entries: &BTreeMap<i64, i64>,
) -> Result<(HashMap<i64, i64>, Heads, Vec<i64>)> {
    #[derive(serde::Serialize)]
    struct Counter<'a> {
        school_id: i64,
        name: &'a str,
        n: i64,
    }
    #[derive(serde::Serialize)]
    struct ChainCount {
        chain: String,
        n: i64,
    }
    let name = format!("receipt:{year}");
    let counters: Vec<Counter> = counts
        .iter()
        .map(|(school_id, n)| Counter {
            school_id: *school_id,
            name: &name,
            n: *n,
        })
        .collect();
    let chains: Vec<ChainCount> = entries
        .iter()
        .map(|(school_id, n)| ChainCount {
            chain: Chain::School(*school_id).key(),
            n: *n,
        })
        .collect();
    let total: i64 = counts.values().sum();
    if total == 0 {
        return Ok((HashMap::new(), Heads::new(), Vec::new()));
    }
    // Rows go in in key order, so concurrent batches lock them in the same order.
    let rows = sqlx::query(
        "WITH r AS (
            INSERT INTO counters (school_id, name, value)
            SELECT x.school_id, x.name, x.n FROM json_to_recordset($1::json) AS x(school_id BIGINT, name TEXT, n BIGINT)
            ORDER BY x.school_id
            ON CONFLICT (school_id, name) DO UPDATE SET value = counters.value + excluded.value
            RETURNING school_id, value),
         a AS (
            INSERT INTO audit_chains (chain, seq, head)
            SELECT x.chain, x.n, '' FROM json_to_recordset($2::json) AS x(chain TEXT, n BIGINT)
            ORDER BY x.chain
            ON CONFLICT (chain) DO UPDATE SET seq = audit_chains.seq + excluded.seq
            RETURNING chain, seq, head)
         SELECT 'receipt' AS kind, r.school_id AS id, r.value AS n, NULL::TEXT AS chain, NULL::TEXT AS head FROM r
         UNION ALL SELECT 'chain', NULL::BIGINT, a.seq, a.chain, a.head FROM a
         UNION ALL SELECT 'payment', nextval(pg_get_serial_sequence('payments', 'id')), NULL::BIGINT, NULL::TEXT, NULL::TEXT
            FROM generate_series(1, $3::BIGINT)",
    )
    .bind(json_text(&counters)?)
    .bind(json_text(&chains)?)
    .bind(total)
    .fetch_all(&mut **tx)
    .await?;
    let mut first = HashMap::new();
    let mut heads = Heads::new();
    let mut ids = Vec::with_capacity(total as usize);
    for r in rows {
        let kind: String = r.try_get("kind")?;
        match kind.as_str() {
            "receipt" => {
                let school_id: i64 = r.try_get("id")?;
                let last: i64 = r.try_get("n")?;
                let n = counts.get(&school_id).copied().unwrap_or(0);
                first.insert(school_id, last - n + 1);
            }
            "chain" => {
                let chain: String = r.try_get("chain")?;
                let last: i64 = r.try_get("n")?;
                let n = chains
                    .iter()
                    .find(|c| c.chain == chain)
                    .map(|c| c.n)
                    .unwrap_or(0);
                heads.insert(chain, (last - n + 1, r.try_get("head")?));
            }
            _ => ids.push(r.try_get("id")?),
        }
    }
    ids.sort_unstable();
    Ok((first, heads, ids))
}

/// Everything a batch writes once its payments have ids.
struct Rows<'a> {
    creates: &'a [(usize, String, i64)],
    written: &'a Written<'a>,
    fees: &'a [FeeLine<'a>],
    allocations: &'a [AllocationLine<'a>],
    exceptions: &'a [ExceptionLine<'a>],
    events: &'a [&'a NewEvent],
}

/// What every statement of a batch shares: its items, their payment ids, when it was recorded.
struct Written<'a> {
    items: &'a [BatchItem],
    ids: &'a HashMap<usize, i64>,
    recorded_year: i32,
    recorded_at: &'a str,
}

impl<'a> Rows<'a> {
    fn new(
        creates: &'a [(usize, String, i64)],
        lines: &'a Lines<'a>,
        written: &'a Written<'a>,
        events: &'a [&'a NewEvent],
    ) -> Self {
        Self {
            creates,
            written,
            fees: &lines.0,
            allocations: &lines.1,
            exceptions: &lines.2,
            events,
        }
    }
}

/// PostgreSQL: payments, fee lines, allocations, exceptions, audit records, the chains' new
/// heads and the archived deliveries, in one statement; returns payment id → exception id. Each table's rows travel as one JSON parameter, so the
/// statement's text is the same for every batch and stays prepared on its connection.
async fn write_postgres(
    tx: &mut Tx,
    rows: Rows<'_>,
    entries: &mut [(Chain, Entry<'_>)],
    heads: &mut Heads,
) -> Result<HashMap<i64, i64>> {
    #[derive(serde::Serialize)]
    struct Payment<'a> {
        id: i64,
        school_id: i64,
        channel: &'a str,
        provider: &'a str,
        provider_ref: Option<&'a str>,
        payer_name: Option<&'a str>,
        memo: Option<&'a str>,
        amount: i64,
        received_at: String,
        recorded_by: &'a str,
        receipt_no: &'a str,
        receipt_seq: i64,
        bank_ref: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Fee<'a> {
        payment_id: i64,
        school_id: i64,
        charged_by: &'a str,
        kind: &'a str,
        basis: &'a str,
        amount: i64,
        borne_by: &'a str,
        predicted_amount: Option<i64>,
        reported_amount: Option<i64>,
        schedule_id: Option<i64>,
        needs_review: bool,
    }
    #[derive(serde::Serialize)]
    struct Allocation<'a> {
        school_id: i64,
        payment_id: i64,
        invoice_id: i64,
        amount: i64,
        method: &'a str,
        created_by: &'a str,
        rule: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Exception<'a> {
        school_id: i64,
        payment_id: i64,
        kind: String,
        reason: &'a str,
        suggestions: String,
        claims: String,
    }
    #[derive(serde::Serialize)]
    struct Head<'a> {
        chain: &'a str,
        head: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Event<'a> {
        provider: &'a str,
        provider_account_id: Option<i64>,
        school_id: Option<i64>,
        method: &'a str,
        query: &'a str,
        headers: &'a str,
        body: String,
        body_size: i64,
        verified: bool,
        txn_id: Option<&'a str>,
        outcome: &'a str,
        detail: Option<&'a str>,
        payment_id: Option<i64>,
        ack_status: i64,
        request_sha256: Option<&'a str>,
        request_size: Option<i64>,
    }
    let mut payments = Vec::with_capacity(rows.creates.len());
    for (idx, receipt_no, seq) in rows.creates {
        let (Some(job), Some(id)) = (&rows.written.items[*idx].job, rows.written.ids.get(idx))
        else {
            return Err(Error::Internal("payment to create is missing".into()));
        };
        let p = &job.payment;
        payments.push(Payment {
            id: *id,
            school_id: job.school.id,
            channel: p.channel.as_str(),
            provider: &p.provider,
            provider_ref: p.provider_ref.as_deref(),
            payer_name: p.payer_name.as_deref(),
            memo: p.memo.as_deref(),
            amount: p.amount.dong(),
            received_at: format_time(p.received_at),
            recorded_by: &job.actor,
            receipt_no,
            receipt_seq: *seq,
            bank_ref: p.bank_ref.as_deref(),
        });
    }
    let fees: Vec<Fee> = rows
        .fees
        .iter()
        .map(|(payment_id, school_id, f)| Fee {
            payment_id: *payment_id,
            school_id: *school_id,
            charged_by: &f.charged_by,
            kind: f.kind,
            basis: &f.basis,
            amount: f.amount.dong(),
            borne_by: f.borne_by.as_str(),
            predicted_amount: f.predicted.map(Vnd::dong),
            reported_amount: f.reported.map(Vnd::dong),
            schedule_id: f.schedule_id,
            needs_review: f.needs_review,
        })
        .collect();
    let allocations: Vec<Allocation> = rows
        .allocations
        .iter()
        .map(
            |(payment_id, job, invoice_id, amount, method, rule)| Allocation {
                school_id: job.school.id,
                payment_id: *payment_id,
                invoice_id: *invoice_id,
                amount: amount.dong(),
                method,
                created_by: &job.actor,
                rule: *rule,
            },
        )
        .collect();
    let mut exceptions = Vec::with_capacity(rows.exceptions.len());
    for (payment_id, school_id, r) in rows.exceptions {
        let stored = StoredSuggestions::of(&r.suggestions)?;
        exceptions.push(Exception {
            school_id: *school_id,
            payment_id: *payment_id,
            kind: r.kind.as_str(),
            reason: &r.reason,
            suggestions: stored.json,
            claims: stored.claims,
        });
    }
    let events: Vec<Event> = rows
        .events
        .iter()
        .map(|e| Event {
            provider: e.provider.as_str(),
            provider_account_id: e.account.map(|a| a.0),
            school_id: e.account.map(|a| a.1),
            method: &e.method,
            query: &e.query,
            headers: &e.headers,
            body: hex::encode(&e.body),
            body_size: e.body_size as i64,
            verified: e.verified,
            txn_id: e.txn_id.as_deref(),
            outcome: e.outcome.as_str(),
            detail: e.detail.as_deref(),
            payment_id: e.payment_id,
            ack_status: i64::from(e.ack_status),
            request_sha256: e.request_digest.as_ref().map(|d| d.0.as_str()),
            request_size: e.request_digest.as_ref().map(|d| d.1 as i64),
        })
        .collect();
    // The records commit to the rows as written (known before they are), so they go in with
    // them, and the chains' heads move, in the same statement.
    cover_payments(entries, &rows);
    let at = now();
    let audit = audit::link(entries, heads, &at)?;
    let new_heads: Vec<Head> = heads
        .iter()
        .map(|(chain, (_, head))| Head { chain, head })
        .collect();
    let exception_ids = sqlx::query(
        "WITH p AS (
            INSERT INTO payments (id, school_id, channel, provider, provider_ref, payer_name, memo, amount, received_at, recorded_at,
                recorded_by, receipt_no, receipt_year, receipt_seq, bank_ref)
            SELECT x.id, x.school_id, x.channel, x.provider, x.provider_ref, x.payer_name, x.memo, x.amount, x.received_at, $5,
                x.recorded_by, x.receipt_no, $6::BIGINT, x.receipt_seq, x.bank_ref
            FROM json_to_recordset($1::json) AS x(id BIGINT, school_id BIGINT, channel TEXT, provider TEXT, provider_ref TEXT,
                payer_name TEXT, memo TEXT, amount BIGINT, received_at TEXT, recorded_by TEXT, receipt_no TEXT, receipt_seq BIGINT,
                bank_ref TEXT)),
         f AS (
            INSERT INTO payment_fees (payment_id, school_id, charged_by, kind, basis, amount, borne_by, predicted_amount,
                reported_amount, schedule_id, needs_review)
            SELECT * FROM json_to_recordset($2::json) AS x(payment_id BIGINT, school_id BIGINT, charged_by TEXT, kind TEXT,
                basis TEXT, amount BIGINT, borne_by TEXT, predicted_amount BIGINT, reported_amount BIGINT, schedule_id BIGINT,
                needs_review BOOLEAN)),
         l AS (
            INSERT INTO allocations (school_id, payment_id, invoice_id, amount, method, created_at, created_by, rule)
            SELECT x.school_id, x.payment_id, x.invoice_id, x.amount, x.method, $5, x.created_by, x.rule
            FROM json_to_recordset($3::json) AS x(school_id BIGINT, payment_id BIGINT, invoice_id BIGINT, amount BIGINT,
                method TEXT, created_by TEXT, rule TEXT)),
         x AS (
            INSERT INTO exceptions (school_id, payment_id, kind, reason, suggestions, status, created_at, claims)
            SELECT x.school_id, x.payment_id, x.kind, x.reason, x.suggestions, 'open', $5, x.claims
            FROM json_to_recordset($7::json) AS x(school_id BIGINT, payment_id BIGINT, kind TEXT, reason TEXT, suggestions TEXT,
                claims TEXT)
            RETURNING id, payment_id),
         e AS (
            INSERT INTO provider_events (provider, provider_account_id, school_id, received_at, method, query, headers, body,
                body_size, verified, txn_id, outcome, detail, payment_id, ack_status, request_sha256, request_size)
            SELECT x.provider, x.provider_account_id, x.school_id, $5, x.method, x.query, x.headers, decode(x.body, 'hex'),
                x.body_size, x.verified, x.txn_id, x.outcome, x.detail, x.payment_id, x.ack_status, x.request_sha256, x.request_size
            FROM json_to_recordset($4::json) AS x(provider TEXT, provider_account_id BIGINT, school_id BIGINT, method TEXT,
                query TEXT, headers TEXT, body TEXT, body_size BIGINT, verified BOOLEAN, txn_id TEXT, outcome TEXT, detail TEXT,
                payment_id BIGINT, ack_status BIGINT, request_sha256 TEXT, request_size BIGINT)),
         a AS (
            INSERT INTO audit_log (chain, seq, school_id, at, actor, action, entity, entity_id, details, prev_hash, hash, mac)
            SELECT * FROM json_to_recordset($8::json) AS x(chain TEXT, seq BIGINT, school_id BIGINT, at TEXT, actor TEXT,
                action TEXT, entity TEXT, entity_id BIGINT, details TEXT, prev_hash TEXT, hash TEXT, mac TEXT)),
         h AS (
            UPDATE audit_chains c SET head = x.head
            FROM json_to_recordset($9::json) AS x(chain TEXT, head TEXT) WHERE c.chain = x.chain)
         SELECT id, payment_id FROM x",
    )
    .bind(json_text(&payments)?)
    .bind(json_text(&fees)?)
    .bind(json_text(&allocations)?)
    .bind(json_text(&events)?)
    .bind(rows.written.recorded_at)
    .bind(i64::from(rows.written.recorded_year))
    .bind(json_text(&exceptions)?)
    .bind(json_text(&audit)?)
    .bind(json_text(&new_heads)?)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("payment_id")?, r.try_get("id")?)))
    .collect::<Result<HashMap<i64, i64>>>()?;
    Ok(exception_ids)
}

/// Each payment's record commits to the payment, its fee lines and its allocations (see
/// [`crate::coverage`]), computed from the rows as this batch wrote them: a read-back would cost
/// every batch a query over three tables. Cells in the order of each table's covered columns;
/// verification reads the same content back from the database.
fn cover_payments(entries: &mut [(Chain, Entry<'_>)], rows: &Rows<'_>) {
    use crate::coverage::{content, Cell, Unit, ALLOCATIONS, PAYMENTS, PAYMENT_FEES};
    let mut written: HashMap<(&'static str, i64), Vec<String>> = HashMap::new();
    for (idx, receipt_no, _) in rows.creates {
        let (Some(job), Some(&id)) = (&rows.written.items[*idx].job, rows.written.ids.get(idx))
        else {
            continue;
        };
        let p = &job.payment;
        let received_at = format_time(p.received_at);
        written.insert(
            (PAYMENTS.table, id),
            vec![content(&[
                Cell::Int(Some(job.school.id)),
                Cell::Text(Some(p.channel.as_str())),
                Cell::Text(Some(&p.provider)),
                Cell::Text(p.provider_ref.as_deref()),
                Cell::Text(p.bank_ref.as_deref()),
                Cell::Int(Some(p.amount.dong())),
                Cell::Text(Some(&received_at)),
                Cell::Text(Some(rows.written.recorded_at)),
                Cell::Text(Some(&job.actor)),
                Cell::Text(Some(receipt_no)),
                Cell::Int(None),
            ])],
        );
        written.insert((PAYMENT_FEES.table, id), Vec::new());
        written.insert((ALLOCATIONS.table, id), Vec::new());
    }
    for (id, school_id, f) in rows.fees {
        if let Some(lines) = written.get_mut(&(PAYMENT_FEES.table, *id)) {
            lines.push(content(&[
                Cell::Int(Some(*school_id)),
                Cell::Text(Some(&f.charged_by)),
                Cell::Text(Some(f.kind)),
                Cell::Text(Some(&f.basis)),
                Cell::Int(Some(f.amount.dong())),
                Cell::Text(Some(f.borne_by.as_str())),
                Cell::Int(f.predicted.map(Vnd::dong)),
                Cell::Int(f.reported.map(Vnd::dong)),
                Cell::Int(f.schedule_id),
                Cell::Bool(f.needs_review),
            ]));
        }
    }
    for (id, job, invoice_id, amount, method, _) in rows.allocations {
        if let Some(lines) = written.get_mut(&(ALLOCATIONS.table, *id)) {
            lines.push(content(&[
                Cell::Int(Some(job.school.id)),
                Cell::Int(Some(*invoice_id)),
                Cell::Int(Some(amount.dong())),
                Cell::Text(Some(method)),
                Cell::Text(Some(rows.written.recorded_at)),
                Cell::Text(Some(&job.actor)),
            ]));
        }
    }
    let digests = crate::coverage::digests_of(written);
    for (_, e) in entries
        .iter_mut()
        .filter(|(_, e)| e.action == "payment.record")
    {
        if let Some(id) = e.entity_id {
            let units = [
                Unit::new(PAYMENTS, id),
                Unit::new(PAYMENT_FEES, id),
                Unit::new(ALLOCATIONS, id),
            ];
            crate::coverage::attach(&mut e.details, crate::coverage::rows_for(&digests, &units));
        }
    }
}

fn json_text<T: serde::Serialize>(rows: &T) -> Result<String> {
    serde_json::to_string(rows).map_err(|e| Error::Internal(format!("batch rows: {e}")))
}
