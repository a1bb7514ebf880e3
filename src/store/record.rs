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
use crate::domain::text::same_account;
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

/// A credit booked as a payment from the school's bank statement, nobody having notified it.
struct StatementCredit {
    payment_id: i64,
    school_id: i64,
    account_number: String,
    bank_ref: String,
    amount: i64,
    booked_at: chrono::DateTime<Utc>,
}

/// What `jobs` may already be: payments recorded under their provider references
/// ((provider, reference) → (id, school, amount)), and credits of their schools' accounts
/// booked from statements under the bank references that jobs from account watchers carry (a
/// notification coming after the statement is the same transfer). One round trip for a
/// notification batch: each look-up is a branch of one `UNION ALL`.
async fn recorded_before(
    tx: &mut Tx,
    jobs: &[&Job],
) -> Result<(
    HashMap<(String, String), (i64, i64, i64)>,
    Vec<StatementCredit>,
)> {
    let mut by_provider: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for j in jobs {
        if let Some(r) = &j.payment.provider_ref {
            by_provider
                .entry(j.payment.provider.as_str())
                .or_default()
                .insert(r.as_str());
        }
    }
    let by_provider: Vec<(&str, Vec<&str>)> = by_provider
        .into_iter()
        .map(|(p, refs)| (p, refs.into_iter().collect()))
        .collect();
    let watched: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| j.payment.credited_account.is_some() && j.payment.bank_ref.is_some())
        .collect();
    let schools: Vec<i64> = watched
        .iter()
        .map(|j| j.school.id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let bank_refs: Vec<String> = watched
        .iter()
        .filter_map(|j| j.payment.bank_ref.as_deref())
        .map(|r| r.trim().to_uppercase())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    enum Branch<'a> {
        Refs(&'a str, &'a [&'a str]),
        Credits(&'a [String]),
    }
    let mut branches: Vec<Branch> = Vec::new();
    for (provider, refs) in &by_provider {
        branches.extend(refs.chunks(500).map(|c| Branch::Refs(provider, c)));
    }
    branches.extend(bank_refs.chunks(500).map(Branch::Credits));

    let mut existing = HashMap::new();
    let mut credits = Vec::new();
    // Branches go together up to about 1,000 values per statement.
    let mut rest = branches.as_slice();
    while !rest.is_empty() {
        let mut values = 0;
        let mut take = 0;
        for b in rest {
            let n = match b {
                Branch::Refs(_, refs) => refs.len() + 1,
                Branch::Credits(refs) => refs.len() + schools.len(),
            };
            if take > 0 && values + n > 1_000 {
                break;
            }
            values += n;
            take += 1;
        }
        let (now, later) = rest.split_at(take);
        rest = later;
        let mut next = 0;
        let mut list = |n: usize| -> String {
            let l: Vec<String> = (0..n).map(|i| format!("${}", next + i + 1)).collect();
            next += n;
            l.join(",")
        };
        let mut sql = Vec::new();
        for b in now {
            sql.push(match b {
                Branch::Refs(_, refs) => {
                    let provider = list(1);
                    format!(
                        "SELECT 'ref' AS kind, id, school_id, amount, provider_ref AS reference, CAST(NULL AS TEXT) AS account_number,
                                CAST(NULL AS TEXT) AS booked_at, provider
                         FROM payments WHERE provider = {provider} AND provider_ref IN ({})",
                        list(refs.len())
                    )
                }
                Branch::Credits(refs) => {
                    let school_list = list(schools.len());
                    format!(
                        "SELECT 'statement' AS kind, l.payment_id AS id, l.school_id, l.amount, UPPER(l.bank_ref) AS reference,
                                a.account_number, l.booked_at, CAST(NULL AS TEXT) AS provider
                         FROM statement_lines l JOIN school_accounts a ON a.id = l.account_id
                         WHERE l.account_id IN (SELECT id FROM school_accounts WHERE school_id IN ({school_list}))
                           AND UPPER(l.bank_ref) IN ({}) AND l.matched_by = 'created' AND l.payment_id IS NOT NULL",
                        list(refs.len())
                    )
                }
            });
        }
        let sql = sql.join(" UNION ALL ");
        // Planned each time with the values at hand: a plan cached while the table was small
        // reads every payment of the provider instead of probing both key columns.
        let mut q = sqlx::query(&sql).persistent(false);
        for b in now {
            match b {
                Branch::Refs(provider, refs) => {
                    q = q.bind(*provider);
                    for r in *refs {
                        q = q.bind(*r);
                    }
                }
                Branch::Credits(refs) => {
                    for id in &schools {
                        q = q.bind(*id);
                    }
                    for r in *refs {
                        q = q.bind(r.as_str());
                    }
                }
            }
        }
        for row in q.fetch_all(&mut **tx).await? {
            let kind: String = row.try_get("kind")?;
            let (id, school_id, amount): (i64, i64, i64) = (
                row.try_get("id")?,
                row.try_get("school_id")?,
                row.try_get("amount")?,
            );
            let reference: String = row.try_get("reference")?;
            if kind == "ref" {
                existing.insert(
                    (row.try_get("provider")?, reference),
                    (id, school_id, amount),
                );
            } else {
                let at: String = row.try_get("booked_at")?;
                credits.push(StatementCredit {
                    payment_id: id,
                    school_id,
                    account_number: row.try_get("account_number")?,
                    bank_ref: reference,
                    amount,
                    booked_at: chrono::DateTime::parse_from_rfc3339(&at)
                        .map_err(|e| Error::Internal(format!("stored time: {e}")))?
                        .with_timezone(&Utc),
                });
            }
        }
    }
    Ok((existing, credits))
}

/// The statement credit that is `p`'s transfer: the same account, bank reference and school,
/// booked within the statement matching window (banks may reuse a reference over time).
fn same_transfer<'a>(
    credits: &'a [StatementCredit],
    p: &NewPayment,
    school_id: i64,
) -> Option<&'a StatementCredit> {
    let (account, bank_ref) = (p.credited_account.as_deref()?, p.bank_ref.as_deref()?);
    let window = chrono::Duration::hours(super::statements::MATCH_WINDOW_HOURS);
    credits.iter().find(|c| {
        c.school_id == school_id
            && same_account(&c.account_number, account)
            && c.bank_ref.eq_ignore_ascii_case(bank_ref.trim())
            && (c.booked_at - p.received_at).abs() <= window
    })
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
    let (existing, from_statements) = recorded_before(tx, &jobs).await?;
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
        } else if let Some(c) = same_transfer(&from_statements, p, school.id) {
            if c.amount == p.amount.dong() {
                Plan::Duplicate(c.payment_id)
            } else {
                Plan::Refused(Error::conflict(
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
    let postgres = !tx.backend_name().eq_ignore_ascii_case("sqlite");
    // On PostgreSQL one statement takes the receipt numbers, the audit chains' heads (one record
    // per payment on its school's chain) and the payments' ids; SQLite learns the ids as it
    // inserts.
    let (mut next_seq, prepared) = if postgres {
        let (seq, heads, ids) = reserve_postgres(tx, recorded_year, &counts).await?;
        (seq, Some((heads, ids)))
    } else {
        (take_receipts(tx, recorded_year, &counts).await?, None)
    };
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

    let results: Vec<Option<Result<Recorded>>> = plans
        .iter_mut()
        .enumerate()
        .map(|(idx, slot)| {
            let result = match slot.as_ref()? {
                Plan::Create { .. } => ids
                    .get(&idx)
                    .map(|id| Recorded::Created(*id))
                    .ok_or_else(|| Error::Internal("payment id missing".into())),
                Plan::Duplicate(id) => Ok(Recorded::Duplicate(*id)),
                Plan::DuplicateOf(first) => ids
                    .get(first)
                    .map(|id| Recorded::Duplicate(*id))
                    .ok_or_else(|| Error::Internal("payment id missing".into())),
                // Nothing is written for a refusal: its error moves into the result.
                Plan::Refused(_) => match slot.take() {
                    Some(Plan::Refused(e)) => Err(e),
                    _ => Err(Error::Internal("refusal missing".into())),
                },
            };
            Some(result)
        })
        .collect();

    // Each archived delivery says what became of its payment before it is written.
    for (idx, (item, result)) in items.iter_mut().zip(&results).enumerate() {
        if let Some(result) = result {
            settle(idx, result, &named[idx], item.event.as_mut());
        }
    }

    // One audit record per created payment, on its school's chain.
    let mut entries = Vec::with_capacity(creates.len());
    for (idx, receipt_no, _) in &creates {
        if let (Some(Plan::Create { allocations, fees }), Some(id), Some(job)) =
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
                            "receipt_no": receipt_no, "allocations": allocations.iter().map(|(i, a)| json!([i, a])).collect::<Vec<_>>(),
                            "fees": fees.iter().map(|f| json!({"amount": f.amount, "borne_by": f.borne_by, "needs_review": f.needs_review})).collect::<Vec<_>>()}),
                    },
                ));
        }
    }
    if entries.len() != creates.len() {
        return Err(Error::Internal("one audit record per payment".into()));
    }

    let events: Vec<&NewEvent> = items.iter().filter_map(|i| i.event.as_ref()).collect();

    match heads {
        Some(mut heads) => {
            // A big import goes in a few statements, so no parameter grows without bound.
            let statements = creates.len().div_ceil(PAYMENTS_PER_STATEMENT).max(1);
            for k in 0..statements {
                let range = k * PAYMENTS_PER_STATEMENT
                    ..((k + 1) * PAYMENTS_PER_STATEMENT).min(creates.len());
                let (fees, allocations) = lines_of(&creates[range.clone()], &plans, items, &ids);
                let rows = Rows {
                    creates: &creates[range.clone()],
                    items,
                    ids: &ids,
                    recorded_year,
                    recorded_at: &recorded_at,
                    fees: &fees,
                    allocations: &allocations,
                    events: if k + 1 == statements { &events } else { &[] },
                };
                write_postgres(tx, rows, &entries[range], &mut heads).await?;
            }
        }
        None => {
            let (fees, allocations) = lines_of(&creates, &plans, items, &ids);
            insert_fees_and_allocations(tx, &fees, &allocations, &recorded_at).await?;
            audit::record_many(tx, entries).await?;
            insert_events(tx, &events).await?;
        }
    }
    Ok(results)
}

/// Payments per write statement on PostgreSQL (with their fee lines, allocations and audit
/// records).
const PAYMENTS_PER_STATEMENT: usize = 2_000;

/// A fee line to write: (payment id, school id, line).
type FeeLine<'a> = (i64, i64, &'a super::ledger::FeeRow);
/// An allocation to write: (payment id, job, invoice id, amount, method).
type AllocationLine<'a> = (i64, &'a Job, i64, Vnd, &'static str);

/// The fee lines and allocations of the payments `creates` makes, in its order.
fn lines_of<'a>(
    creates: &[(usize, String, i64)],
    plans: &'a [Option<Plan>],
    items: &'a [BatchItem],
    ids: &HashMap<usize, i64>,
) -> (Vec<FeeLine<'a>>, Vec<AllocationLine<'a>>) {
    let (mut fee_lines, mut allocation_lines) = (Vec::new(), Vec::new());
    for (idx, ..) in creates {
        if let (Some(Plan::Create { allocations, fees }), Some(id), Some(job)) =
            (&plans[*idx], ids.get(idx), &items[*idx].job)
        {
            fee_lines.extend(fees.iter().map(|f| (*id, job.school.id, f)));
            allocation_lines.extend(
                allocations
                    .iter()
                    .map(|(inv, a)| (*id, job, *inv, *a, job.payment.method)),
            );
        }
    }
    (fee_lines, allocation_lines)
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
    for chunk in allocations.chunks(per_insert) {
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
                .bind(recorded_at)
                .bind(&job.actor);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Audit chain heads: chain key → (next sequence number, previous hash).
type Heads = HashMap<String, (i64, String)>;

/// PostgreSQL: takes `counts` receipt numbers per school, as many records on each school's audit
/// chain, and one payment id per receipt, in one statement. Returns each school's first receipt
/// sequence number, the chains' heads and the ids in ascending order.
async fn reserve_postgres(
    tx: &mut Tx,
    year: i32,
    counts: &BTreeMap<i64, i64>,
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
    let chains: Vec<ChainCount> = counts
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
    items: &'a [BatchItem],
    ids: &'a HashMap<usize, i64>,
    recorded_year: i32,
    recorded_at: &'a str,
    fees: &'a [FeeLine<'a>],
    allocations: &'a [AllocationLine<'a>],
    events: &'a [&'a NewEvent],
}

/// PostgreSQL: payments, fee lines, allocations, audit records, the chains' new heads and the
/// archived deliveries, in one statement. Each table's rows travel as one JSON parameter, so the
/// statement's text is the same for every batch and stays prepared on its connection.
async fn write_postgres(
    tx: &mut Tx,
    rows: Rows<'_>,
    entries: &[(Chain, Entry<'_>)],
    heads: &mut Heads,
) -> Result<()> {
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
        let (Some(job), Some(id)) = (&rows.items[*idx].job, rows.ids.get(idx)) else {
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
        .map(|(payment_id, job, invoice_id, amount, method)| Allocation {
            school_id: job.school.id,
            payment_id: *payment_id,
            invoice_id: *invoice_id,
            amount: amount.dong(),
            method,
            created_by: &job.actor,
        })
        .collect();
    let at = now();
    let audit = audit::link(entries, heads, &at)?;
    let new_heads: Vec<Head> = heads
        .iter()
        .map(|(chain, (_, head))| Head { chain, head })
        .collect();
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
    sqlx::query(
        "WITH p AS (
            INSERT INTO payments (id, school_id, channel, provider, provider_ref, payer_name, memo, amount, received_at, recorded_at,
                recorded_by, receipt_no, receipt_year, receipt_seq, bank_ref)
            SELECT x.id, x.school_id, x.channel, x.provider, x.provider_ref, x.payer_name, x.memo, x.amount, x.received_at, $7,
                x.recorded_by, x.receipt_no, $8::BIGINT, x.receipt_seq, x.bank_ref
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
            INSERT INTO allocations (school_id, payment_id, invoice_id, amount, method, created_at, created_by)
            SELECT x.school_id, x.payment_id, x.invoice_id, x.amount, x.method, $7, x.created_by
            FROM json_to_recordset($3::json) AS x(school_id BIGINT, payment_id BIGINT, invoice_id BIGINT, amount BIGINT,
                method TEXT, created_by TEXT)),
         a AS (
            INSERT INTO audit_log (chain, seq, school_id, at, actor, action, entity, entity_id, details, prev_hash, hash)
            SELECT * FROM json_to_recordset($4::json) AS x(chain TEXT, seq BIGINT, school_id BIGINT, at TEXT, actor TEXT,
                action TEXT, entity TEXT, entity_id BIGINT, details TEXT, prev_hash TEXT, hash TEXT)),
         h AS (
            UPDATE audit_chains c SET head = x.head
            FROM json_to_recordset($5::json) AS x(chain TEXT, head TEXT) WHERE c.chain = x.chain),
         e AS (
            INSERT INTO provider_events (provider, provider_account_id, school_id, received_at, method, query, headers, body,
                body_size, verified, txn_id, outcome, detail, payment_id, ack_status, request_sha256, request_size)
            SELECT x.provider, x.provider_account_id, x.school_id, $7, x.method, x.query, x.headers, decode(x.body, 'hex'),
                x.body_size, x.verified, x.txn_id, x.outcome, x.detail, x.payment_id, x.ack_status, x.request_sha256, x.request_size
            FROM json_to_recordset($6::json) AS x(provider TEXT, provider_account_id BIGINT, school_id BIGINT, method TEXT,
                query TEXT, headers TEXT, body TEXT, body_size BIGINT, verified BOOLEAN, txn_id TEXT, outcome TEXT, detail TEXT,
                payment_id BIGINT, ack_status BIGINT, request_sha256 TEXT, request_size BIGINT))
         SELECT 1",
    )
    .bind(json_text(&payments)?)
    .bind(json_text(&fees)?)
    .bind(json_text(&allocations)?)
    .bind(json_text(&audit)?)
    .bind(json_text(&new_heads)?)
    .bind(json_text(&events)?)
    .bind(rows.recorded_at)
    .bind(i64::from(rows.recorded_year))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn json_text<T: serde::Serialize>(rows: &T) -> Result<String> {
    serde_json::to_string(rows).map_err(|e| Error::Internal(format!("batch rows: {e}")))
}
