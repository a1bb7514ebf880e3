//! Reconciliation against the ledger: the engine (`crate::recon`) decides, this module loads what
//! it needs and writes what it decided, under the school's ledger lock. A payment the engine
//! cannot allocate on its own goes to the review queue (`exceptions`) with ranked suggestions;
//! an accountant matches it or dismisses suggestions, and a dismissed pair is never suggested
//! again.

use super::book::{catch_up, written, Transfers};
use super::ledger::{insert_allocations, load_payment, lock_ledger};
use super::{now, paginate, rows_per_insert, values_rows, Page, Store, Tx};
use crate::audit::{self, Chain, Entry};
use crate::coverage::{Unit, ALLOCATIONS, DECISIONS, DISMISSED_PAIRS, REFUNDS};
use crate::domain::code::SchoolPrefix;
use crate::domain::ledger::AllocationMethod;
use crate::domain::money::Vnd;
use crate::error::{Error, Result};
use crate::plan::intake::{decide_credit, open_claims, OpenReview};
use crate::plan::queue::{self, views, ExceptionKind, ExceptionStatus, LedgerIssue};
use crate::recon::duplicates::{self, Arrival, Booked, Twin, DUPLICATE_WINDOW_DAYS};
use crate::recon::Index;
use crate::store::org::School;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::{BTreeSet, HashMap, HashSet};
use utoipa::ToSchema;

pub use crate::plan::queue::{SuggestedAllocation, SuggestionView};

/// A payment waiting for an accountant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Exception {
    pub id: i64,
    pub school_id: i64,
    pub payment_id: i64,
    pub kind: ExceptionKind,
    /// Why it is here, in words.
    pub reason: String,
    pub suggestions: Vec<SuggestionView>,
    /// open | matched | dismissed | refund
    pub status: ExceptionStatus,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    #[schema(value_type = i64)]
    pub amount: Vnd,
    pub memo: Option<String>,
    pub received_at: String,
}

/// What reconciling a payment did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reconciled {
    /// Allocated automatically: the rule that decided and its evidence.
    Allocated {
        allocations: Vec<SuggestedAllocation>,
        rule: Option<String>,
        evidence: String,
    },
    /// Put in the review queue.
    Review { exception_id: i64 },
    /// Nothing to do: no credit left, or a reversal.
    Nothing,
}

const EXCEPTION_COLS: &str = "e.id, e.school_id, e.payment_id, e.kind, e.reason, e.suggestions, e.status, e.created_at, e.resolved_at,
    e.resolved_by, e.resolution, p.amount, p.memo, p.received_at";

fn exception_row(r: &AnyRow) -> Result<Exception> {
    let suggestions: String = r.try_get("suggestions")?;
    Ok(Exception {
        id: r.try_get("id")?,
        school_id: r.try_get("school_id")?,
        payment_id: r.try_get("payment_id")?,
        kind: ExceptionKind::from_db(&r.try_get::<String, _>("kind")?)
            .ok_or_else(|| Error::Internal("stored exception kind".into()))?,
        reason: r.try_get("reason")?,
        suggestions: serde_json::from_str(&suggestions)
            .map_err(|e| Error::Internal(format!("stored suggestions: {e}")))?,
        status: ExceptionStatus::from_db(&r.try_get::<String, _>("status")?)
            .ok_or_else(|| Error::Internal("stored exception status".into()))?,
        created_at: r.try_get("created_at")?,
        resolved_at: r.try_get("resolved_at")?,
        resolved_by: r.try_get("resolved_by")?,
        resolution: r.try_get("resolution")?,
        amount: Vnd::new(r.try_get("amount")?).map_err(|e| Error::Internal(e.to_string()))?,
        memo: r.try_get("memo")?,
        received_at: r.try_get("received_at")?,
    })
}

async fn open_exception_id(tx: &mut Tx, payment_id: i64) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM exceptions WHERE payment_id = $1 AND status = 'open'")
            .bind(payment_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

async fn close_exception(
    tx: &mut Tx,
    id: i64,
    status: &str,
    actor: &str,
    resolution: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE exceptions SET status = $1, resolved_at = $2, resolved_by = $3, resolution = $4 WHERE id = $5",
    )
    .bind(status)
    .bind(now())
    .bind(actor)
    .bind(resolution)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Runs the engine on a payment's unallocated credit: allocates it when the memo leaves no
    /// doubt, otherwise opens (or refreshes) its exception with ranked suggestions.
    pub async fn reconcile_payment(
        &self,
        actor: &str,
        school: &School,
        payment_id: i64,
    ) -> Result<Reconciled> {
        self.warm_book(school).await?;
        let slot = self.books.slot(school.id);
        let mut book = slot.lock().await;
        let result = async {
            let mut tx = self.begin().await?;
            lock_ledger(&mut tx, school.id).await?;
            catch_up(&mut tx, school, &mut book).await?;
            let Some(b) = book.as_mut() else {
                return Err(Error::Internal("the school's book was not read".into()));
            };
            let todo = to_reconcile(&mut tx, school, &[payment_id]).await?;
            let outcome = reconcile_in(&mut tx, &mut b.index, actor, school, &todo)
                .await?
                .pop()
                .unwrap_or(Reconciled::Nothing);
            written(&mut tx, school.id, b).await?;
            tx.commit().await?;
            Ok(outcome)
        }
        .await;
        if result.is_err() {
            *book = None;
        }
        result
    }

    /// Payments with credit that nobody will see: neither allocated nor in the review queue
    /// (open, dismissed, refunded or matched). Every write path allocates or opens an exception
    /// in the transaction that records a payment, so this is always empty; `feerecon verify`
    /// and `GET /readyz?deep=1` check it.
    pub async fn unaccounted_payments(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT p.id, p.school_id FROM payments p
             WHERE p.amount > 0
               AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.payment_id = p.id)
               AND NOT EXISTS (SELECT 1 FROM exceptions e WHERE e.payment_id = p.id)
               AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses_payment_id = p.id)
               AND p.amount > CAST(COALESCE((SELECT SUM(f.amount) FROM refunds f WHERE f.payment_id = p.id), 0) AS BIGINT)
             ORDER BY p.id LIMIT 1000",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("school_id")?)))
            .collect()
    }

    /// Puts every unaccounted payment through the engine (allocated, or into the queue), as
    /// recording it would have: repairs a database written before the engine decided in the
    /// recording transaction. How many went through.
    pub async fn sweep_unaccounted(&self) -> Result<usize> {
        let mut swept = 0;
        loop {
            let found = self.unaccounted_payments().await?;
            if found.is_empty() {
                return Ok(swept);
            }
            let before = swept;
            for (payment_id, school_id) in found {
                let school = self.school_by_id(school_id).await?;
                if !matches!(
                    self.reconcile_payment("sweep", &school, payment_id).await?,
                    Reconciled::Nothing
                ) {
                    swept += 1;
                }
            }
            if swept == before {
                return Ok(swept);
            }
        }
    }

    pub async fn list_exceptions(
        &self,
        school_id: i64,
        status: Option<&str>,
        page: Page,
    ) -> Result<(Vec<Exception>, Option<String>)> {
        let rows = sqlx::query(&format!(
            "SELECT {EXCEPTION_COLS} FROM exceptions e JOIN payments p ON p.id = e.payment_id
             WHERE e.school_id = $1 AND ($2 IS NULL OR e.status = $2) AND e.id > $3 ORDER BY e.id LIMIT $4"
        ))
        .bind(school_id)
        .bind(status)
        .bind(page.after)
        .bind(page.limit + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(exception_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page, |e| e.id))
    }

    pub async fn exception(&self, school_id: i64, id: i64) -> Result<Exception> {
        let row = sqlx::query(&format!(
            "SELECT {EXCEPTION_COLS} FROM exceptions e JOIN payments p ON p.id = e.payment_id WHERE e.id = $1 AND e.school_id = $2"
        ))
        .bind(id)
        .bind(school_id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| Error::not_found("exception_not_found", "exception"))?;
        exception_row(&row)
    }

    /// An accountant's match: the payment's credit goes to `allocations` (one invoice, or a
    /// split across one family's invoices), and the exception closes.
    pub async fn match_exception(
        &self,
        actor: &str,
        school: &School,
        id: i64,
        allocations: &[(i64, Vnd)],
        note: &str,
    ) -> Result<Exception> {
        if allocations.is_empty() {
            return Err(Error::invalid(
                "invalid_allocation",
                "a match names at least one invoice",
            ));
        }
        let mut tx = self.begin().await?;
        lock_ledger(&mut tx, school.id).await?;
        let payment_id = open_exception_payment(&mut tx, school.id, id).await?;
        let pay = load_payment(&mut tx, payment_id, Some(school.id)).await?;
        let ids: Vec<i64> = allocations.iter().map(|(i, _)| *i).collect();
        let open = super::ledger::open_invoices(&mut tx, &ids).await?;
        let balance = |i: i64| {
            open.get(&i)
                .filter(|o| o.school_id == school.id)
                .map(|o| o.open)
        };
        crate::plan::intake::check_allocations(allocations, &balance, pay.unallocated_credit)
            .map_err(|r| super::record::refusal_error(&r))?;
        // A split stays within one family: the same student or siblings (same family_key).
        let families: BTreeSet<String> = sqlx::query_scalar::<_, String>(&format!(
            "SELECT COALESCE(s.family_key, 'student:' || CAST(s.id AS TEXT)) FROM invoices i JOIN students s ON s.id = i.student_id WHERE i.id IN ({})",
            (1..=ids.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .bind_all(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        if families.len() > 1 {
            return Err(Error::invalid(
                "not_same_family",
                "one payment is split only across invoices of one student or of siblings (same family_key)",
            ));
        }
        insert_allocations(&mut tx, school.id, payment_id, allocations, "manual", actor).await?;
        close_exception(&mut tx, id, "matched", actor, note).await?;
        audit::record_covering(
            &mut tx,
            &Chain::School(school.id),
            Entry {
                actor,
                action: "exception.match",
                entity: "exception",
                entity_id: Some(id),
                details: json!({"payment_id": payment_id, "allocations": allocations.iter().map(|(i, a)| json!([i, a])).collect::<Vec<_>>(), "note": note}),
            },
            &[Unit::new(ALLOCATIONS, payment_id), Unit::new(DECISIONS, payment_id)],
        )
        .await?;
        tx.commit().await?;
        self.exception(school.id, id).await
    }

    /// An accountant's decision that the money goes back to the payer (a duplicate, a transfer
    /// for another school): `amount` of its credit is marked for refund and the exception closes.
    pub async fn refund_exception(
        &self,
        actor: &str,
        school: &School,
        id: i64,
        amount: Vnd,
        reason: &str,
    ) -> Result<Exception> {
        let mut tx = self.begin().await?;
        lock_ledger(&mut tx, school.id).await?;
        let payment_id = open_exception_payment(&mut tx, school.id, id).await?;
        super::ledger::refund_in(&mut tx, actor, school, payment_id, amount, reason).await?;
        close_exception(&mut tx, id, "refund", actor, reason).await?;
        audit::record_covering(
            &mut tx,
            &Chain::School(school.id),
            Entry {
                actor,
                action: "exception.refund",
                entity: "exception",
                entity_id: Some(id),
                details: json!({"payment_id": payment_id, "amount": amount, "reason": reason}),
            },
            &[
                Unit::new(REFUNDS, payment_id),
                Unit::new(DECISIONS, payment_id),
            ],
        )
        .await?;
        tx.commit().await?;
        self.exception(school.id, id).await
    }

    /// An accountant's dismissal: the listed invoices (or every suggested one) are never
    /// suggested for this payment again, and the exception closes. The money stays as credit.
    pub async fn dismiss_exception(
        &self,
        actor: &str,
        school: &School,
        id: i64,
        invoice_ids: Option<&[i64]>,
        reason: &str,
    ) -> Result<Exception> {
        let current = self.exception(school.id, id).await?;
        let mut tx = self.begin().await?;
        lock_ledger(&mut tx, school.id).await?;
        let payment_id = open_exception_payment(&mut tx, school.id, id).await?;
        let suggested: BTreeSet<i64> = current
            .suggestions
            .iter()
            .flat_map(|s| s.allocations.iter().map(|a| a.invoice_id))
            .collect();
        let pairs: BTreeSet<i64> = match invoice_ids {
            Some(ids) => {
                if let Some(bad) = ids.iter().find(|i| !suggested.contains(i)) {
                    return Err(Error::invalid(
                        "not_suggested",
                        format!("invoice {bad} is not among this exception's suggestions"),
                    ));
                }
                ids.iter().copied().collect()
            }
            None => suggested,
        };
        for invoice_id in &pairs {
            sqlx::query(
                "INSERT INTO dismissed_pairs (payment_id, invoice_id, school_id, reason, dismissed_at, dismissed_by)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (payment_id, invoice_id) DO NOTHING",
            )
            .bind(payment_id)
            .bind(*invoice_id)
            .bind(school.id)
            .bind(reason)
            .bind(now())
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        }
        close_exception(&mut tx, id, "dismissed", actor, reason).await?;
        audit::record_covering(
            &mut tx,
            &Chain::School(school.id),
            Entry {
                actor,
                action: "exception.dismiss",
                entity: "exception",
                entity_id: Some(id),
                details: json!({"payment_id": payment_id, "invoice_ids": pairs, "reason": reason}),
            },
            &[
                Unit::new(DISMISSED_PAIRS, payment_id),
                Unit::new(DECISIONS, payment_id),
            ],
        )
        .await?;
        tx.commit().await?;
        self.exception(school.id, id).await
    }
}

/// A payment's credit, as the engine reads it.
pub(super) struct ToReconcile {
    pub id: i64,
    /// The payment's whole amount and when it arrived: a repeat of another transfer is told by them.
    pub amount: Vnd,
    pub received_at: DateTime<Utc>,
    pub credit: Vnd,
    pub memo: Option<String>,
    pub payer_name: Option<String>,
}

/// Loads what the engine needs of each payment; `None` where there is nothing to reconcile (no
/// credit left, a reversal or a reversed payment).
pub(super) async fn to_reconcile(
    tx: &mut Tx,
    school: &School,
    payment_ids: &[i64],
) -> Result<Vec<Option<ToReconcile>>> {
    let mut out = Vec::with_capacity(payment_ids.len());
    for &id in payment_ids {
        let pay = load_payment(tx, id, Some(school.id)).await?;
        let received_at = parse_time(&pay.received_at)?;
        out.push(
            (!pay.amount.is_negative()
                && pay.reversed_by_payment_id.is_none()
                && pay.unallocated_credit.dong() > 0)
                .then_some(ToReconcile {
                    id,
                    amount: pay.amount,
                    received_at,
                    credit: pay.unallocated_credit,
                    memo: pay.memo,
                    payer_name: pay.payer_name,
                }),
        );
    }
    Ok(out)
}

/// The exceptions still open of `school_ids`, with the invoices of their top suggestion, for
/// the engine's rule `period_in_review`.
pub(super) async fn open_reviews(
    tx: &mut Tx,
    school_ids: &BTreeSet<i64>,
) -> Result<Vec<OpenReview>> {
    let mut out = Vec::new();
    let ids: Vec<i64> = school_ids.iter().copied().collect();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT school_id, payment_id, claims, CASE WHEN claims IS NULL THEN suggestions END AS suggestions
             FROM exceptions WHERE status = 'open' AND school_id IN ({}) ORDER BY payment_id",
            list.join(",")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut **tx).await? {
            let claims: Option<String> = r.try_get("claims")?;
            let suggestions: Option<String> = r.try_get("suggestions")?;
            out.push(open_review(
                r.try_get("school_id")?,
                r.try_get("payment_id")?,
                claims.as_deref(),
                suggestions.as_deref(),
            ));
        }
    }
    Ok(out)
}

/// An open review as stored: its claims, or for a review opened before claims were stored, the
/// invoices of its top suggestion.
pub(super) fn open_review(
    school_id: i64,
    payment_id: i64,
    claims: Option<&str>,
    suggestions: Option<&str>,
) -> OpenReview {
    let top = match claims.and_then(queue::parse_claims) {
        Some(top) => top,
        None => {
            let views: Vec<SuggestionView> = suggestions
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            queue::top_invoices(&views)
        }
    };
    OpenReview {
        school_id,
        payment_id,
        top,
    }
}

/// (payment id → something) for every payment of `ids`, from `sql` selecting `payment_id` and
/// `value` with `payment_id IN (…)` as its last condition.
async fn by_payment(tx: &mut Tx, sql: &str, ids: &[i64]) -> Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let full = format!("{sql} ({})", list.join(","));
        let mut q = sqlx::query(&full);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut **tx).await? {
            out.push((r.try_get("payment_id")?, r.try_get("value")?));
        }
    }
    Ok(out)
}

/// Runs the engine on each payment in turn, inside the caller's transaction (which holds the
/// school's ledger lock), against the school's book, the same decision a notification gets;
/// what it decides is written in a few statements whatever the number of payments.
pub(super) async fn reconcile_in(
    tx: &mut Tx,
    index: &mut Index,
    actor: &str,
    school: &School,
    payments: &[Option<ToReconcile>],
) -> Result<Vec<Reconciled>> {
    let todo: Vec<&ToReconcile> = payments.iter().flatten().collect();
    if todo.is_empty() {
        return Ok(payments.iter().map(|_| Reconciled::Nothing).collect());
    }
    let prefix =
        SchoolPrefix::parse(&school.payment_prefix).map_err(|e| Error::Internal(e.to_string()))?;
    let ids: Vec<i64> = todo.iter().map(|p| p.id).collect();
    let mut dismissed: HashMap<i64, HashSet<i64>> = HashMap::new();
    for (payment_id, invoice_id) in by_payment(
        tx,
        "SELECT payment_id, invoice_id AS value FROM dismissed_pairs WHERE payment_id IN",
        &ids,
    )
    .await?
    {
        dismissed.entry(payment_id).or_default().insert(invoice_id);
    }
    let open_exceptions: HashMap<i64, i64> = by_payment(
        tx,
        "SELECT payment_id, id AS value FROM exceptions WHERE status = 'open' AND payment_id IN",
        &ids,
    )
    .await?
    .into_iter()
    .collect();

    let mut allocations: Vec<(i64, i64, Vnd, AllocationMethod, Option<String>)> = Vec::new();
    let mut entries: Vec<(i64, &'static str, &'static str, serde_json::Value)> = Vec::new();
    let mut to_close: Vec<(i64, String)> = Vec::new();
    let mut reviews: Vec<(i64, ExceptionKind, String, Vec<SuggestionView>)> = Vec::new();
    let mut decided: HashMap<i64, Reconciled> = HashMap::new();
    let none = HashSet::new();
    // What each payment still in review claims by its month written (rule `period_in_review`),
    // as it stands after each decision of this run.
    let mut in_review = open_reviews(tx, &BTreeSet::from([school.id])).await?;
    for p in &todo {
        let memo = p.memo.clone().unwrap_or_default();
        let gone = dismissed.get(&p.id).unwrap_or(&none);
        index.set_claims(open_claims(&in_review, school.id, Some(p.id)));
        in_review.retain(|r| r.payment_id != p.id);
        let d = decide_credit(
            index,
            p.credit,
            &memo,
            None,
            p.payer_name.as_deref(),
            &|id| gone.contains(&id),
        );
        match d.review {
            None => {
                let evidence = d.evidence.clone().unwrap_or_default();
                for (invoice_id, amount) in &d.allocations {
                    allocations.push((p.id, *invoice_id, *amount, d.method, d.rule.clone()));
                }
                if let Some(id) = open_exceptions.get(&p.id) {
                    to_close.push((*id, evidence.clone()));
                }
                entries.push((p.id, "payment.reconcile", "payment", json!({"allocations": d.allocations.iter().map(|(i, a)| json!([i, a])).collect::<Vec<_>>(), "rule": d.rule, "evidence": evidence})));
                decided.insert(
                    p.id,
                    Reconciled::Allocated {
                        allocations: views(&d.allocations, index),
                        rule: d.rule,
                        evidence,
                    },
                );
            }
            Some(r) => {
                in_review.push(OpenReview {
                    school_id: school.id,
                    payment_id: p.id,
                    top: r
                        .suggestions
                        .first()
                        .map(|v| v.allocations.iter().map(|a| a.invoice_id).collect())
                        .unwrap_or_default(),
                });
                reviews.push((p.id, r.kind, r.reason, r.suggestions))
            }
        }
    }
    index.set_claims([]);
    // A transfer in review that repeats one already booked is a refund candidate.
    if !reviews.is_empty() {
        let arriving: Vec<&ToReconcile> = reviews
            .iter()
            .filter_map(|(id, ..)| todo.iter().find(|p| p.id == *id).copied())
            .collect();
        let found = twins(tx, school, &prefix, &arriving, index, None).await?;
        for (payment_id, kind, reason, _) in reviews.iter_mut() {
            if let Some(twin) = found.get(payment_id) {
                *kind = ExceptionKind::Ledger(LedgerIssue::Duplicate);
                *reason = twin.reason();
            }
        }
    }

    // Allocations of every automatic match, in multi-row statements.
    let at = now();
    for chunk in allocations.chunks(rows_per_insert(tx)) {
        let sql = format!(
            "INSERT INTO allocations (school_id, payment_id, invoice_id, amount, method, created_at, created_by, rule) VALUES {}",
            values_rows(tx, chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for (payment_id, invoice_id, amount, method, rule) in chunk {
            q = q
                .bind(school.id)
                .bind(*payment_id)
                .bind(*invoice_id)
                .bind(amount.dong())
                .bind(method.as_str())
                .bind(&at)
                .bind(actor)
                .bind(rule);
        }
        q.execute(&mut **tx).await?;
    }
    for (id, evidence) in &to_close {
        close_exception(tx, *id, "matched", actor, evidence).await?;
    }
    // Reviews: refresh the exceptions already open, open the others in multi-row statements.
    let mut fresh = Vec::new();
    for (payment_id, kind, reason, shown) in &reviews {
        let stored = StoredSuggestions::of(shown)?;
        match open_exceptions.get(payment_id) {
            Some(id) => {
                refresh_exception(tx, *id, &kind.as_str(), reason, &stored).await?;
                decided.insert(*payment_id, Reconciled::Review { exception_id: *id });
            }
            None => fresh.push((*payment_id, kind.as_str(), reason.as_str(), stored)),
        }
    }
    for chunk in fresh.chunks(rows_per_insert(tx)) {
        let sql = format!(
            "INSERT INTO exceptions (school_id, payment_id, kind, reason, suggestions, status, created_at, claims) VALUES {} RETURNING id, payment_id",
            values_rows(tx, chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for (payment_id, kind, reason, stored) in chunk {
            q = q
                .bind(school.id)
                .bind(*payment_id)
                .bind(kind)
                .bind(*reason)
                .bind(&stored.json)
                .bind("open")
                .bind(&at)
                .bind(&stored.claims);
        }
        for r in q.fetch_all(&mut **tx).await? {
            decided.insert(
                r.try_get("payment_id")?,
                Reconciled::Review {
                    exception_id: r.try_get("id")?,
                },
            );
        }
    }
    for (payment_id, kind, _, shown) in &reviews {
        if let Some(Reconciled::Review { exception_id }) = decided.get(payment_id) {
            entries.push((
                *exception_id,
                "exception.open",
                "exception",
                json!({"payment_id": payment_id, "kind": kind, "suggestions": shown.len()}),
            ));
        }
    }
    // Each automatic match commits to its payment's allocations and decisions as written.
    let units = |payment_id: i64| {
        [
            Unit::new(ALLOCATIONS, payment_id),
            Unit::new(DECISIONS, payment_id),
        ]
    };
    let matched: Vec<Unit> = entries
        .iter()
        .filter(|e| e.1 == "payment.reconcile")
        .flat_map(|e| units(e.0))
        .collect();
    if !matched.is_empty() {
        let digests = crate::coverage::digests(tx, &matched).await?;
        for e in entries.iter_mut().filter(|e| e.1 == "payment.reconcile") {
            crate::coverage::attach(&mut e.3, crate::coverage::rows_for(&digests, &units(e.0)));
        }
    }
    audit::record_many(
        tx,
        entries
            .into_iter()
            .map(|(entity_id, action, entity, details)| {
                (
                    Chain::School(school.id),
                    Entry {
                        actor,
                        action,
                        entity,
                        entity_id: Some(entity_id),
                        details,
                    },
                )
            })
            .collect(),
    )
    .await?;
    Ok(payments
        .iter()
        .map(|p| {
            p.as_ref()
                .and_then(|p| decided.remove(&p.id))
                .unwrap_or(Reconciled::Nothing)
        })
        .collect())
}

/// A review's suggestions as an `exceptions` row keeps them: the JSON the accountant is shown,
/// and beside it the invoices the review claims ([`queue::claims_text`]).
pub(super) struct StoredSuggestions {
    pub json: String,
    pub claims: String,
}

impl StoredSuggestions {
    pub(super) fn of(shown: &[SuggestionView]) -> Result<Self> {
        Ok(Self {
            json: serde_json::to_string(shown).map_err(|e| Error::Internal(e.to_string()))?,
            claims: queue::claims_text(shown),
        })
    }
}

/// Gives the open exception `id` a new kind, reason and suggestions.
async fn refresh_exception(
    tx: &mut Tx,
    id: i64,
    kind: &str,
    reason: &str,
    stored: &StoredSuggestions,
) -> Result<()> {
    sqlx::query(
        "UPDATE exceptions SET kind = $1, reason = $2, suggestions = $3, claims = $4 WHERE id = $5",
    )
    .bind(kind)
    .bind(reason)
    .bind(&stored.json)
    .bind(&stored.claims)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Opens the payment's exception, or refreshes the one already open, and audits it.
pub(super) async fn open_exception(
    tx: &mut Tx,
    actor: &str,
    school: &School,
    payment_id: i64,
    kind: &str,
    reason: &str,
    shown: &[SuggestionView],
) -> Result<i64> {
    let stored = StoredSuggestions::of(shown)?;
    let id = match open_exception_id(tx, payment_id).await? {
        Some(id) => {
            refresh_exception(tx, id, kind, reason, &stored).await?;
            id
        }
        None => {
            sqlx::query_scalar(
                "INSERT INTO exceptions (school_id, payment_id, kind, reason, suggestions, status, created_at, claims)
                 VALUES ($1, $2, $3, $4, $5, 'open', $6, $7) RETURNING id",
            )
            .bind(school.id)
            .bind(payment_id)
            .bind(kind)
            .bind(reason)
            .bind(&stored.json)
            .bind(now())
            .bind(&stored.claims)
            .fetch_one(&mut **tx)
            .await?
        }
    };
    audit::record(
        tx,
        &Chain::School(school.id),
        Entry {
            actor,
            action: "exception.open",
            entity: "exception",
            entity_id: Some(id),
            details: json!({"payment_id": payment_id, "kind": kind, "suggestions": shown.len()}),
        },
    )
    .await?;
    Ok(id)
}

/// The payment of an exception that is still open; a closed one stays closed.
async fn open_exception_payment(tx: &mut Tx, school_id: i64, id: i64) -> Result<i64> {
    let row =
        sqlx::query("SELECT payment_id, status FROM exceptions WHERE id = $1 AND school_id = $2")
            .bind(id)
            .bind(school_id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| Error::not_found("exception_not_found", "exception"))?;
    let status: String = row.try_get("status")?;
    if status != "open" {
        return Err(Error::conflict(
            "exception_closed",
            format!("this exception is already {status}"),
        ));
    }
    Ok(row.try_get("payment_id")?)
}

/// Binds every value of a list, in order.
trait BindAll<'q> {
    fn bind_all(self, values: &'q [i64]) -> Self;
}

impl<'q, O> BindAll<'q>
    for sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>
{
    fn bind_all(mut self, values: &'q [i64]) -> Self {
        for v in values {
            self = self.bind(*v);
        }
        self
    }
}

fn parse_time(stored: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(stored)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Internal(format!("stored time: {e}")))
}

/// For each payment of `arriving` (all in review) that repeats a payment already booked, the
/// booked one (rules in [`crate::recon::duplicates`]). `open` indexes the school's open
/// invoices: a code named that is not among them is of a closed invoice.
pub(super) async fn twins(
    tx: &mut Tx,
    school: &School,
    prefix: &SchoolPrefix,
    arriving: &[&ToReconcile],
    open: &Index,
    kept: Option<(&mut Option<Transfers>, i64)>,
) -> Result<HashMap<i64, Twin>> {
    // Invoices named by code, with the payments that pay them.
    let named: Vec<Vec<String>> = arriving
        .iter()
        .map(|p| {
            crate::domain::code::find_in_text(p.memo.as_deref().unwrap_or(""), prefix)
                .into_iter()
                .map(|c| c.as_str().to_string())
                .collect()
        })
        .collect();
    let all_codes: BTreeSet<&String> = named.iter().flatten().collect();
    // code → (invoice id, payments paying it); the payments found either way, by id.
    let mut paid_by: HashMap<String, i64> = HashMap::new();
    let mut booked: HashMap<i64, Booked> = HashMap::new();
    let codes: Vec<&String> = all_codes.into_iter().collect();
    for chunk in codes.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT i.id AS invoice_id, i.payment_code, a.payment_id, p.received_at
             FROM invoices i JOIN allocations a ON a.invoice_id = i.id JOIN payments p ON p.id = a.payment_id
             WHERE i.school_id = $1 AND i.payment_code IN ({})
             GROUP BY i.id, i.payment_code, a.payment_id, p.received_at HAVING SUM(a.amount) > 0",
            list.join(",")
        );
        let mut q = sqlx::query(&sql).bind(school.id);
        for c in chunk {
            q = q.bind(c.as_str());
        }
        for r in q.fetch_all(&mut **tx).await? {
            let invoice_id: i64 = r.try_get("invoice_id")?;
            let payment_id: i64 = r.try_get("payment_id")?;
            let at: String = r.try_get("received_at")?;
            paid_by.insert(r.try_get("payment_code")?, invoice_id);
            booked_entry(&mut booked, payment_id, &at)?
                .invoice_ids
                .push(invoice_id);
        }
    }
    // Transfers that may be repeated: near in time, allocated from the memo or by hand (a
    // repeat of a payment allocated by its code names the same code, found above).
    let window = chrono::Duration::days(DUPLICATE_WINDOW_DAYS);
    let repeatable: Vec<&&ToReconcile> = arriving
        .iter()
        .filter(|p| duplicates::memo_key(p.memo.as_deref().unwrap_or("")).is_some())
        .collect();
    // A payment being decided is never its own or another arrival's twin (new payments are in
    // no kept ledger).
    let arriving_ids: BTreeSet<i64> = arriving.iter().map(|p| p.id).collect();
    let read: duplicates::Ledger;
    let transfers: Option<&duplicates::Ledger> = match (
        repeatable.iter().map(|p| p.received_at).min(),
        repeatable.iter().map(|p| p.received_at).max(),
    ) {
        (Some(lo), Some(hi)) => {
            let from = lo - window;
            match kept {
                // Kept by the book and current: what was read before, and what batches added.
                Some((slot, seq)) => {
                    let current = matches!(slot, Some(t) if t.at_seq == seq && t.from <= from);
                    if !current {
                        let ledger =
                            duplicates::Ledger::new(memo_allocated(tx, school, from, None).await?);
                        *slot = Some(Transfers {
                            ledger,
                            from,
                            at_seq: seq,
                        });
                    } else if let Some(t) = slot.as_mut() {
                        // Older than any arrival can repeat: let them go, now and then.
                        if from - t.from > chrono::Duration::days(1) {
                            let ledger = std::mem::take(&mut t.ledger);
                            t.ledger = ledger.since(from);
                            t.from = from;
                        }
                    }
                    slot.as_ref().map(|t| &t.ledger)
                }
                None => {
                    let amounts: BTreeSet<i64> =
                        repeatable.iter().map(|p| p.amount.dong()).collect();
                    let mut booked =
                        memo_allocated(tx, school, from, Some((hi + window, amounts))).await?;
                    booked.retain(|b| !arriving_ids.contains(&b.payment_id));
                    read = duplicates::Ledger::new(booked);
                    Some(&read)
                }
            }
        }
        _ => None,
    };
    for id in &arriving_ids {
        booked.remove(id);
    }
    if booked.is_empty() && transfers.map_or(true, |t| t.is_empty()) {
        return Ok(HashMap::new());
    }
    let mut booked: Vec<Booked> = booked.into_values().collect();
    booked.sort_by_key(|b| b.payment_id);
    let coded = duplicates::Ledger::new(booked);
    let mut out = HashMap::new();
    for (p, codes) in arriving.iter().zip(&named) {
        let closed: Vec<(i64, String)> = codes
            .iter()
            .filter_map(|c| paid_by.get(c).map(|invoice_id| (*invoice_id, c.clone())))
            .filter(|(invoice_id, _)| open.open(*invoice_id).map_or(true, |o| o <= Vnd::ZERO))
            .collect();
        let arrival = Arrival {
            payment_id: p.id,
            received_at: p.received_at,
            amount: p.amount,
            memo: p.memo.as_deref().unwrap_or(""),
            payer_name: p.payer_name.as_deref(),
            closed_named: &closed,
        };
        let twin = coded
            .same_invoice(&arrival)
            .or_else(|| transfers.and_then(|t| t.same_transfer(&arrival)));
        if let Some(twin) = twin {
            out.insert(p.id, twin);
        }
    }
    Ok(out)
}

/// The school's payments allocated after `from` other than by a payment code and received from
/// `from` on (up to a time and of some amounts only, when given): the transfers the duplicate
/// rules compare memos with. The partial index on allocations not made by a code finds them
/// without reading the window's payments.
async fn memo_allocated(
    tx: &mut Tx,
    school: &School,
    from: DateTime<Utc>,
    only: Option<(DateTime<Utc>, BTreeSet<i64>)>,
) -> Result<Vec<Booked>> {
    let base = "SELECT p.id, p.received_at, p.amount, p.memo, p.payer_name FROM payments p
                WHERE p.id IN (SELECT a.payment_id FROM allocations a
                               WHERE a.school_id = $1 AND a.method <> 'payment_code' AND a.created_at >= $2)
                  AND p.received_at >= $2";
    let mut rows = Vec::new();
    match only {
        None => {
            rows = sqlx::query(base)
                .bind(school.id)
                .bind(super::format_time(from))
                .fetch_all(&mut **tx)
                .await?;
        }
        Some((to, amounts)) => {
            // Of the arriving amounts only (a repeat has the same amount), 500 at a time.
            let amounts: Vec<i64> = amounts.into_iter().collect();
            for chunk in amounts.chunks(500) {
                let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 4)).collect();
                let sql = format!(
                    "{base} AND p.received_at <= $3 AND p.amount IN ({})",
                    list.join(",")
                );
                let mut q = sqlx::query(&sql)
                    .bind(school.id)
                    .bind(super::format_time(from))
                    .bind(super::format_time(to));
                for a in chunk {
                    q = q.bind(*a);
                }
                rows.extend(q.fetch_all(&mut **tx).await?);
            }
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let amount: i64 = r.try_get("amount")?;
        let at: String = r.try_get("received_at")?;
        out.push(Booked {
            payment_id: r.try_get("id")?,
            received_at: parse_time(&at)?,
            amount: Vnd::new(amount).map_err(|e| Error::Internal(e.to_string()))?,
            memo: r.try_get::<Option<String>, _>("memo")?.unwrap_or_default(),
            payer_name: r.try_get("payer_name")?,
            invoice_ids: vec![],
            allocated: true,
        });
    }
    Ok(out)
}

/// The allocated payment `id` (received at `at`) among `booked`, added bare on first sight; what
/// each query learns of it is filled in by that query.
fn booked_entry<'a>(
    booked: &'a mut HashMap<i64, Booked>,
    id: i64,
    at: &str,
) -> Result<&'a mut Booked> {
    Ok(match booked.entry(id) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(Booked {
            payment_id: id,
            received_at: parse_time(at)?,
            amount: Vnd::ZERO,
            memo: String::new(),
            payer_name: None,
            invoice_ids: vec![],
            allocated: true,
        }),
    })
}
