//! Recording payments, one or many at a time. A batch is one transaction with a fixed number of
//! statements whatever its size (locks, duplicates, balances, fee terms, receipt numbers, rows,
//! audit records, archived deliveries), so a burst of notifications costs a handful of round
//! trips instead of a dozen each. The cash desk records a batch of one.
//!
//! Everything that can refuse one payment (a duplicate with other details, an allocation over a
//! balance) is decided in memory before anything is written, so one refusal never aborts the
//! others.

use super::ledger::{check_allocations, fee_rows, open_invoices, schedules_for, terms_from};
use super::webhooks::{insert_events, NewEvent};
use super::{format_time, now, rows_per_insert, values_placeholders, Store, Tx};
use crate::audit::{self, Chain, Entry};
use crate::domain::fee::Channel;
use crate::domain::ledger::receipt_number;
use crate::domain::money::Vnd;
use crate::error::{Error, Result};
use crate::store::ledger::{vietnam, NewPayment, Recorded};
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

/// What a job's payment codes named, as found under the lock.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// How many invoices of the school the codes name.
    pub invoices: usize,
    /// The invoice, when exactly one: its code, id, what it still owed before this payment,
    /// and whether it is void.
    pub invoice: Option<(String, i64, Vnd, bool)>,
}

impl Named {
    /// The invoice the payment goes to: named alone, not void, still owing (id, owed).
    pub fn allocates(&self) -> Option<(i64, Vnd)> {
        match &self.invoice {
            Some((_, id, owed, false)) if owed.dong() > 0 => Some((*id, *owed)),
            _ => None,
        }
    }
}

/// Told, for each job (by item index), what recording did and what its codes named, with the
/// item's archived delivery when it has one, so the archive says what happened.
pub type Settle<'a> =
    dyn FnMut(usize, &Result<Recorded>, &Named, Option<&mut NewEvent>) + Send + 'a;

/// What became of each job, decided before anything is written.
enum Plan {
    Create {
        allocations: Vec<(i64, Vnd)>,
        fees: Vec<super::ledger::FeeRow>,
    },
    Duplicate(i64),
    /// The same transaction twice in one batch: the duplicate of item `usize`.
    DuplicateOf(usize),
    Refused(Error),
}

/// Locks the ledgers of `school_ids` (ascending, so concurrent batches never deadlock) until
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
        values_placeholders(counts.len(), 3)
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

/// Payments already recorded under the provider references of `jobs`:
/// (provider, reference) → (id, school, amount).
async fn recorded_refs(
    tx: &mut Tx,
    jobs: &[&Job],
) -> Result<HashMap<(String, String), (i64, i64, i64)>> {
    let mut by_provider: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for j in jobs {
        if let Some(r) = &j.payment.provider_ref {
            by_provider
                .entry(j.payment.provider.as_str())
                .or_default()
                .insert(r.as_str());
        }
    }
    let mut out = HashMap::new();
    for (provider, refs) in by_provider {
        let refs: Vec<&str> = refs.into_iter().collect();
        for chunk in refs.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT id, school_id, amount, provider_ref FROM payments WHERE provider = $1 AND provider_ref IN ({})",
                list.join(",")
            );
            // Planned each time with the values at hand: a plan cached while the table was
            // small reads every payment of the provider instead of probing both key columns.
            let mut q = sqlx::query(&sql).persistent(false).bind(provider);
            for r in chunk {
                q = q.bind(*r);
            }
            for row in q.fetch_all(&mut **tx).await? {
                out.insert(
                    (provider.to_string(), row.try_get("provider_ref")?),
                    (
                        row.try_get("id")?,
                        row.try_get("school_id")?,
                        row.try_get("amount")?,
                    ),
                );
            }
        }
    }
    Ok(out)
}

/// The invoices the jobs' payment codes name: code → (id, school, voided). Open ones join
/// `open`, so their balances move as the batch allocates.
async fn invoices_by_code(
    tx: &mut Tx,
    jobs: &[&Job],
    open: &mut HashMap<i64, super::ledger::OpenInvoice>,
) -> Result<HashMap<String, (i64, i64, bool)>> {
    let codes: Vec<&str> = jobs
        .iter()
        .flat_map(|j| j.payment.codes.iter().map(|c| c.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = HashMap::new();
    for chunk in codes.chunks(500) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT i.id, i.school_id, i.student_id, i.payment_code, i.voided_at,
                    i.total - CAST(COALESCE((SELECT SUM(a.amount) FROM allocations a WHERE a.invoice_id = i.id), 0) AS BIGINT) AS open
             FROM invoices i WHERE i.payment_code IN ({})",
            list.join(",")
        );
        let mut q = sqlx::query(&sql);
        for c in chunk {
            q = q.bind(*c);
        }
        for r in q.fetch_all(&mut **tx).await? {
            let id: i64 = r.try_get("id")?;
            let school_id: i64 = r.try_get("school_id")?;
            let voided = r.try_get::<Option<String>, _>("voided_at")?.is_some();
            if !voided {
                open.entry(id).or_insert(super::ledger::OpenInvoice {
                    open: Vnd::new(r.try_get("open")?)
                        .map_err(|e| Error::Internal(format!("stored balance: {e}")))?,
                    student_id: r.try_get("student_id")?,
                    school_id,
                });
            }
            out.insert(r.try_get("payment_code")?, (id, school_id, voided));
        }
    }
    Ok(out)
}

fn conflict(p: &NewPayment, r: &str) -> Error {
    Error::conflict(
        "provider_ref_conflict",
        format!(
            "{} reference {r} is already recorded with other details",
            p.provider
        ),
    )
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
        self.record_batch(&mut items, &mut |_, _, _, _| {})
            .await?
            .pop()
            .flatten()
            .unwrap_or_else(|| Err(Error::Internal("batch of one gave no result".into())))
    }

    /// Records every job of `items` and archives every event, in one transaction. `settle` is
    /// told each job's result (and what its codes named) before its event is written, so the
    /// archive says what happened. The outer error means nothing was written; the inner results
    /// are per job.
    pub async fn record_batch(
        &self,
        items: &mut [BatchItem],
        settle: &mut Settle<'_>,
    ) -> Result<Vec<Option<Result<Recorded>>>> {
        let mut tx = self.begin().await?;
        let results = record_batch_in(&mut tx, items, settle).await?;
        tx.commit().await?;
        Ok(results)
    }
}

/// [`Store::record_batch`] inside a transaction the caller commits.
pub(super) async fn record_batch_in(
    tx: &mut Tx,
    items: &mut [BatchItem],
    settle: &mut Settle<'_>,
) -> Result<Vec<Option<Result<Recorded>>>> {
    let jobs: Vec<&Job> = items.iter().filter_map(|i| i.job.as_ref()).collect();
    let school_ids: BTreeSet<i64> = jobs.iter().map(|j| j.school.id).collect();
    // Under the schools' locks, a concurrent or retried duplicate delivery, from any
    // instance, sees the first one once it commits and records nothing twice.
    lock_ledgers(tx, &school_ids).await?;
    let existing = recorded_refs(tx, &jobs).await?;
    let invoice_ids: Vec<i64> = jobs
        .iter()
        .flat_map(|j| j.payment.allocations.iter().map(|(i, _)| *i))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut open = open_invoices(tx, &invoice_ids).await?;
    let by_code = invoices_by_code(tx, &jobs, &mut open).await?;
    let cashless: BTreeSet<&str> = jobs
        .iter()
        .filter(|j| j.payment.channel != Channel::Cash)
        .map(|j| j.payment.provider.as_str())
        .collect();
    let schedules = schedules_for(tx, &cashless, &school_ids).await?;

    // Decide every job in order, against balances that earlier jobs of the batch reduced.
    let mut plans: Vec<Option<Plan>> = Vec::with_capacity(items.len());
    let mut named: Vec<Named> = Vec::with_capacity(items.len());
    let mut in_batch: HashMap<(String, String), (usize, i64, i64)> = HashMap::new();
    for (idx, item) in items.iter().enumerate() {
        let Some(job) = &item.job else {
            plans.push(None);
            named.push(Named::default());
            continue;
        };
        let (p, school) = (&job.payment, &job.school);
        let hits: Vec<(&str, i64, bool)> = p
            .codes
            .iter()
            .filter_map(|c| {
                by_code
                    .get(c.as_str())
                    .map(|(id, s, v)| (c.as_str(), *id, *v, *s))
            })
            .filter(|(.., s)| *s == school.id)
            .map(|(c, id, v, _)| (c, id, v))
            .collect();
        let balance_now = |id: i64| open.get(&id).map(|o| o.open).unwrap_or_default();
        let this = Named {
            invoices: hits.len(),
            invoice: match hits.as_slice() {
                [(c, id, voided)] => Some((c.to_string(), *id, balance_now(*id), *voided)),
                _ => None,
            },
        };
        let plan = if p.amount.dong() <= 0 {
            Plan::Refused(Error::invalid(
                "invalid_amount",
                "a payment is more than 0 đồng",
            ))
        } else if let Some((id, school_id, amount)) = p
            .provider_ref
            .as_ref()
            .and_then(|r| existing.get(&(p.provider.clone(), r.clone())))
        {
            if *school_id != school.id || *amount != p.amount.dong() {
                Plan::Refused(conflict(p, p.provider_ref.as_deref().unwrap_or_default()))
            } else {
                Plan::Duplicate(*id)
            }
        } else if let Some((first, school_id, amount)) = p
            .provider_ref
            .as_ref()
            .and_then(|r| in_batch.get(&(p.provider.clone(), r.clone())))
        {
            if *school_id != school.id || *amount != p.amount.dong() {
                Plan::Refused(conflict(p, p.provider_ref.as_deref().unwrap_or_default()))
            } else {
                Plan::DuplicateOf(*first)
            }
        } else {
            let balance = |id: i64| {
                open.get(&id)
                    .filter(|o| o.school_id == school.id)
                    .map(|o| o.open)
            };
            let mut requested = p.allocations.clone();
            if let Some((id, owed)) = this.allocates() {
                if !requested.iter().any(|(i, _)| *i == id) {
                    requested.push((id, p.amount.min(owed)));
                }
            }
            let allocations: Vec<(i64, Vnd)> = if p.up_to_balance {
                requested
                    .iter()
                    .filter_map(|(id, a)| balance(*id).map(|bal| (*id, (*a).min(bal))))
                    .filter(|(_, a)| a.dong() > 0)
                    .collect()
            } else {
                requested
            };
            let date = p
                .received_at
                .with_timezone(&vietnam())
                .format("%Y-%m-%d")
                .to_string();
            let checked = check_allocations(&allocations, &balance, p.amount).and_then(|_| {
                let terms = if p.channel == Channel::Cash {
                    None
                } else {
                    terms_from(&schedules, school.id, &p.provider, p.channel, &date)
                };
                fee_rows(p, terms, &date)
            });
            match checked {
                Err(e) => Plan::Refused(e),
                Ok(fees) => {
                    for (id, a) in &allocations {
                        if let Some(o) = open.get_mut(id) {
                            o.open = Vnd::new(o.open.dong() - a.dong()).unwrap_or_default();
                        }
                    }
                    if let Some(r) = &p.provider_ref {
                        in_batch.insert(
                            (p.provider.clone(), r.clone()),
                            (idx, school.id, p.amount.dong()),
                        );
                    }
                    Plan::Create { allocations, fees }
                }
            }
        };
        plans.push(Some(plan));
        named.push(this);
    }

    // Receipt numbers, in batch order per school.
    let recorded_year = Utc::now().with_timezone(&vietnam()).year();
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for (item, plan) in items.iter().zip(&plans) {
        if let (Some(job), Some(Plan::Create { .. })) = (&item.job, plan) {
            *counts.entry(job.school.id).or_default() += 1;
        }
    }
    let mut next_seq = take_receipts(tx, recorded_year, &counts).await?;
    // (item index, receipt number, sequence) of each payment to create.
    let mut creates: Vec<(usize, String, i64)> = Vec::new();
    for (idx, (item, plan)) in items.iter().zip(&plans).enumerate() {
        if let (Some(job), Some(Plan::Create { .. })) = (&item.job, plan) {
            let seq = next_seq.entry(job.school.id).or_insert(1);
            creates.push((
                idx,
                receipt_number(&job.school.payment_prefix, recorded_year, *seq),
                *seq,
            ));
            *seq += 1;
        }
    }

    let per_insert = rows_per_insert(tx);
    let recorded_at = now();
    let mut ids: HashMap<usize, i64> = HashMap::new();
    for chunk in creates.chunks(per_insert) {
        let sql = format!(
                "INSERT INTO payments (school_id, channel, provider, provider_ref, payer_name, memo, amount, received_at, recorded_at,
                    recorded_by, receipt_no, receipt_year, receipt_seq, bank_ref) VALUES {} RETURNING id, school_id, receipt_no",
                values_placeholders(chunk.len(), 14)
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
                .bind(&recorded_at)
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

    // Fee lines and allocations of every created payment.
    let mut fee_rows_all = Vec::new();
    let mut alloc_rows = Vec::new();
    for (idx, plan) in plans.iter().enumerate() {
        if let (Some(Plan::Create { allocations, fees }), Some(id), Some(job)) =
            (plan, ids.get(&idx), &items[idx].job)
        {
            fee_rows_all.extend(fees.iter().map(|f| (*id, job.school.id, f)));
            alloc_rows.extend(
                allocations
                    .iter()
                    .map(|(inv, a)| (*id, job, *inv, *a, job.payment.method)),
            );
        }
    }
    for chunk in fee_rows_all.chunks(per_insert) {
        let sql = format!(
                "INSERT INTO payment_fees (payment_id, school_id, charged_by, kind, basis, amount, borne_by, predicted_amount, reported_amount,
                    schedule_id, needs_review) VALUES {}",
                values_placeholders(chunk.len(), 11)
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
    for chunk in alloc_rows.chunks(per_insert) {
        let sql = format!(
                "INSERT INTO allocations (school_id, payment_id, invoice_id, amount, method, created_at, created_by) VALUES {}",
                values_placeholders(chunk.len(), 7)
            );
        let mut q = sqlx::query(&sql);
        for (id, job, invoice_id, amount, method) in chunk {
            q = q
                .bind(job.school.id)
                .bind(*id)
                .bind(*invoice_id)
                .bind(amount.dong())
                .bind(*method)
                .bind(&recorded_at)
                .bind(&job.actor);
        }
        q.execute(&mut **tx).await?;
    }

    // One audit record per created payment, on its school's chain.
    let receipts: HashMap<usize, &str> = creates
        .iter()
        .map(|(idx, no, _)| (*idx, no.as_str()))
        .collect();
    let mut entries = Vec::new();
    for (idx, plan) in plans.iter().enumerate() {
        if let (Some(Plan::Create { allocations, fees }), Some(id), Some(job)) =
            (plan, ids.get(&idx), &items[idx].job)
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
                            "receipt_no": receipts.get(&idx), "allocations": allocations.iter().map(|(i, a)| json!([i, a])).collect::<Vec<_>>(),
                            "fees": fees.iter().map(|f| json!({"amount": f.amount, "borne_by": f.borne_by, "needs_review": f.needs_review})).collect::<Vec<_>>()}),
                    },
                ));
        }
    }
    audit::record_many(tx, entries).await?;

    let results: Vec<Option<Result<Recorded>>> = plans
        .into_iter()
        .enumerate()
        .map(|(idx, plan)| {
            plan.map(|plan| match plan {
                Plan::Create { .. } => ids
                    .get(&idx)
                    .map(|id| Recorded::Created(*id))
                    .ok_or_else(|| Error::Internal("payment id missing".into())),
                Plan::Duplicate(id) => Ok(Recorded::Duplicate(id)),
                Plan::DuplicateOf(first) => ids
                    .get(&first)
                    .map(|id| Recorded::Duplicate(*id))
                    .ok_or_else(|| Error::Internal("payment id missing".into())),
                Plan::Refused(e) => Err(e),
            })
        })
        .collect();
    let mut events = Vec::new();
    for (idx, (item, result)) in items.iter_mut().zip(&results).enumerate() {
        if let Some(result) = result {
            settle(idx, result, &named[idx], item.event.as_mut());
        }
        if let Some(event) = &item.event {
            events.push(event);
        }
    }
    insert_events(tx, &events).await?;
    Ok(results)
}
