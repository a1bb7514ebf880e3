//! The payment ledger: every channel in one set of tables. Recording a payment is one
//! transaction: its gapless receipt number, its itemised fee lines, its allocations, its audit
//! record. Nothing here is updated in place: reversals, credit allocations and refunds are rows.

use super::{get_bool, now, paginate, values_placeholders, Page, Store, Tx};
use crate::audit::{self, Chain, Entry};
use crate::coverage::{Unit, ALLOCATIONS, PAYMENTS, PAYMENT_FEES, REFUNDS};
use crate::domain::fee::{Bearer, Channel, PartialTerms};
use crate::domain::ledger::{parent_outlay, receipt_number, school_net};
use crate::domain::money::Vnd;
use crate::error::{Error, Result};
use crate::plan::fees::ScheduleRow;
use crate::store::org::School;
use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;
use std::str::FromStr;
use utoipa::ToSchema;

pub use crate::domain::time::vietnam;

pub fn local_text(utc: &str) -> String {
    DateTime::parse_from_rfc3339(utc)
        .map(|t| {
            t.with_timezone(&vietnam())
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeLine {
    /// Who charged it, e.g. `vnpay`.
    pub charged_by: String,
    pub kind: String,
    /// How it was computed, in words.
    pub basis: String,
    #[schema(value_type = i64)]
    pub amount: Vnd,
    pub amount_formatted: String,
    pub borne_by: Bearer,
    /// What the schedule in force predicts.
    #[schema(value_type = Option<i64>)]
    pub predicted_amount: Option<Vnd>,
    /// What the sender reported, when it did.
    #[schema(value_type = Option<i64>)]
    pub reported_amount: Option<Vnd>,
    /// Reported and predicted differ, or no schedule was in force: an accountant should look.
    pub needs_review: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AllocationView {
    pub id: i64,
    pub invoice_id: i64,
    /// The invoice's student.
    pub student_id: i64,
    pub payment_code: String,
    /// Negative when it undoes an earlier allocation (a reversal).
    #[schema(value_type = i64)]
    pub amount: Vnd,
    pub method: crate::domain::ledger::AllocationMethod,
    /// For the engine's allocations: the rule that made them.
    pub rule: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payment {
    pub id: i64,
    pub school_id: i64,
    pub channel: Channel,
    /// `cash`, or the provider that carried the money (`vnpay`, `momo`, `sepay`, `bank`, …).
    pub provider: String,
    pub provider_ref: Option<String>,
    pub payer_name: Option<String>,
    pub memo: Option<String>,
    /// Whole đồng credited towards invoices; negative for a reversal.
    #[schema(value_type = i64)]
    pub amount: Vnd,
    pub amount_formatted: String,
    pub received_at: String,
    /// `received_at` in Asia/Ho_Chi_Minh.
    pub received_at_local: String,
    pub recorded_at: String,
    pub recorded_by: String,
    pub receipt_no: String,
    pub reverses_payment_id: Option<i64>,
    pub reversed_by_payment_id: Option<i64>,
    pub reversal_reason: Option<String>,
    pub fees: Vec<FeeLine>,
    /// Why there are no fee lines, when there are none.
    pub no_fees_reason: Option<String>,
    pub allocations: Vec<AllocationView>,
    #[schema(value_type = i64)]
    pub allocated: Vnd,
    #[schema(value_type = i64)]
    pub refunded: Vnd,
    /// Received but neither allocated nor refunded: for another invoice of the family or a refund.
    #[schema(value_type = i64)]
    pub unallocated_credit: Vnd,
    /// Amount plus the fees the parent bore.
    #[schema(value_type = i64)]
    pub parent_outlay: Vnd,
    /// Amount less the fees the school bore.
    #[schema(value_type = i64)]
    pub school_net: Vnd,
}

pub use crate::domain::ledger::PLAIN_TRANSFER;
pub use crate::plan::intake::{Allocate, NewPayment, Recorded};

#[derive(Debug, Default, Clone)]
pub struct PaymentFilter {
    pub channel: Option<Channel>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub with_credit: bool,
    /// Only payments with a fee line flagged for review.
    pub needs_review: bool,
    /// Only the payment under this provider reference.
    pub provider_ref: Option<String>,
    /// Only the payment whose provider reference ends in `:<txn_id>` (upper case).
    pub txn_id: Option<String>,
    /// Only payments under this bank reference (upper case).
    pub bank_ref: Option<String>,
}

const PAYMENT_COLS: &str = "p.id, p.school_id, p.channel, p.provider, p.provider_ref, p.payer_name, p.memo, p.amount, p.received_at,
    p.recorded_at, p.recorded_by, p.receipt_no, p.reverses_payment_id, p.reversal_reason,
    (SELECT r.id FROM payments r WHERE r.reverses_payment_id = p.id) AS reversed_by";

fn vnd(r: &AnyRow, col: &str) -> Result<Vnd> {
    Vnd::new(r.try_get(col)?).map_err(|e| Error::Internal(format!("stored {col}: {e}")))
}

fn opt_vnd(r: &AnyRow, col: &str) -> Result<Option<Vnd>> {
    r.try_get::<Option<i64>, _>(col)?
        .map(Vnd::new)
        .transpose()
        .map_err(|e| Error::Internal(format!("stored {col}: {e}")))
}

/// Locks the school's ledger until commit. Every write that moves money in a school takes it
/// first, so balance checks cannot race on PostgreSQL (SQLite has one writer anyway), while
/// other schools go on in parallel.
pub(crate) async fn lock_ledger(tx: &mut Tx, school_id: i64) -> Result<()> {
    sqlx::query("UPDATE counters SET value = value WHERE school_id = $1 AND name = 'invoice'")
        .bind(school_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The next receipt number of the school for `year`; gapless because a rolled-back transaction
/// gives its number back.
async fn next_receipt(tx: &mut Tx, school: &School, year: i32) -> Result<(String, i64)> {
    let name = format!("receipt:{year}");
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO counters (school_id, name, value) VALUES ($1, $2, 1)
         ON CONFLICT (school_id, name) DO UPDATE SET value = counters.value + 1 RETURNING value",
    )
    .bind(school.id)
    .bind(&name)
    .fetch_one(&mut **tx)
    .await?;
    Ok((receipt_number(&school.payment_prefix, year, seq), seq))
}

/// An invoice that can still be paid.
pub(super) struct OpenInvoice {
    pub open: Vnd,
    pub student_id: i64,
    pub school_id: i64,
}

/// Open balance (total − allocated) of each invoice of `invoice_ids` that is not void.
pub(super) async fn open_invoices(
    tx: &mut Tx,
    invoice_ids: &[i64],
) -> Result<HashMap<i64, OpenInvoice>> {
    let mut out = HashMap::new();
    for chunk in invoice_ids.chunks(500) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT i.id, i.school_id, i.total - CAST(COALESCE((SELECT SUM(a.amount) FROM allocations a WHERE a.invoice_id = i.id), 0) AS BIGINT) AS open,
                    i.student_id
             FROM invoices i WHERE i.voided_at IS NULL AND i.id IN ({list})"
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut **tx).await? {
            out.insert(
                r.try_get("id")?,
                OpenInvoice {
                    open: vnd(&r, "open")?,
                    student_id: r.try_get("student_id")?,
                    school_id: r.try_get("school_id")?,
                },
            );
        }
    }
    Ok(out)
}

/// Marks `amount` of a payment's credit for refund to the payer, inside the caller's transaction
/// (which holds the school's ledger lock).
pub(super) async fn refund_in(
    tx: &mut Tx,
    actor: &str,
    school: &School,
    payment_id: i64,
    amount: Vnd,
    reason: &str,
) -> Result<()> {
    let pay = load_payment(tx, payment_id, Some(school.id)).await?;
    if pay.amount.is_negative() || pay.reversed_by_payment_id.is_some() {
        return Err(Error::conflict(
            "payment_reversed",
            "a reversed payment or a reversal has no credit to refund",
        ));
    }
    if amount.dong() <= 0 {
        return Err(Error::invalid(
            "invalid_amount",
            "a refund is more than 0 đồng",
        ));
    }
    if amount > pay.unallocated_credit {
        return Err(Error::invalid(
            "refund_exceeds_credit",
            format!(
                "{amount} is more than the credit of {}",
                pay.unallocated_credit
            ),
        ));
    }
    sqlx::query("INSERT INTO refunds (school_id, payment_id, amount, reason, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(school.id)
        .bind(payment_id)
        .bind(amount.dong())
        .bind(reason)
        .bind(now())
        .bind(actor)
        .execute(&mut **tx)
        .await?;
    audit::record_covering(
        tx,
        &Chain::School(school.id),
        Entry {
            actor,
            action: "payment.refund_request",
            entity: "payment",
            entity_id: Some(payment_id),
            details: json!({"amount": amount, "reason": reason}),
        },
        &[Unit::new(REFUNDS, payment_id)],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_allocations(
    tx: &mut Tx,
    school_id: i64,
    payment_id: i64,
    allocs: &[(i64, Vnd)],
    method: &str,
    actor: &str,
) -> Result<()> {
    if allocs.is_empty() {
        return Ok(());
    }
    let at = now();
    let sql = format!(
        "INSERT INTO allocations (school_id, payment_id, invoice_id, amount, method, created_at, created_by) VALUES {}",
        values_placeholders(allocs.len(), 7)
    );
    let mut q = sqlx::query(&sql);
    for (invoice_id, amount) in allocs {
        q = q
            .bind(school_id)
            .bind(payment_id)
            .bind(*invoice_id)
            .bind(amount.dong())
            .bind(method)
            .bind(&at)
            .bind(actor);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Every schedule of `providers` that concerns `schools`, whatever its dates, in one query.
pub(super) async fn schedules_for(
    conn: &mut sqlx::AnyConnection,
    providers: &std::collections::BTreeSet<&str>,
    schools: &std::collections::BTreeSet<i64>,
) -> Result<Vec<ScheduleRow>> {
    if providers.is_empty() {
        return Ok(vec![]);
    }
    let p_list: Vec<String> = (1..=providers.len()).map(|i| format!("${i}")).collect();
    let s_list: Vec<String> = (0..schools.len())
        .map(|i| format!("${}", providers.len() + 1 + i))
        .collect();
    let school_clause = if schools.is_empty() {
        String::new()
    } else {
        format!(" OR school_id IN ({})", s_list.join(","))
    };
    let sql = format!(
        "SELECT id, school_id, provider, channel, effective_from, effective_to, percent, fixed_fee, min_fee, max_fee, bearer
         FROM fee_schedules WHERE provider IN ({}) AND (school_id IS NULL{school_clause})",
        p_list.join(",")
    );
    let mut q = sqlx::query(&sql);
    for p in providers {
        q = q.bind(*p);
    }
    for s in schools {
        q = q.bind(*s);
    }
    q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(ScheduleRow {
                id: r.try_get("id")?,
                school_id: r.try_get("school_id")?,
                provider: r.try_get("provider")?,
                channel: r.try_get("channel")?,
                effective_from: r.try_get("effective_from")?,
                effective_to: r.try_get("effective_to")?,
                terms: stored_terms(r)?,
            })
        })
        .collect()
}

pub(crate) fn stored_terms(r: &AnyRow) -> Result<PartialTerms> {
    let bad = |c: &str| Error::Internal(format!("stored fee schedule {c}"));
    Ok(PartialTerms {
        percent: r
            .try_get::<Option<String>, _>("percent")?
            .map(|p| Decimal::from_str(&p))
            .transpose()
            .map_err(|_| bad("percent"))?,
        fixed: opt_vnd(r, "fixed_fee")?,
        min: opt_vnd(r, "min_fee")?,
        max: opt_vnd(r, "max_fee")?,
        bearer: r
            .try_get::<Option<String>, _>("bearer")?
            .map(|b| Bearer::from_db(&b).ok_or_else(|| bad("bearer")))
            .transpose()?,
    })
}

impl Store {
    /// Allocates unallocated credit of a payment to another invoice of the same family.
    pub async fn allocate_credit(
        &self,
        actor: &str,
        school: &School,
        payment_id: i64,
        invoice_id: i64,
        amount: Vnd,
    ) -> Result<Payment> {
        let mut tx = self.begin().await?;
        lock_ledger(&mut tx, school.id).await?;
        let pay = self.payment_in_tx(&mut tx, school.id, payment_id).await?;
        if pay.amount.is_negative() || pay.reversed_by_payment_id.is_some() {
            return Err(Error::conflict(
                "payment_reversed",
                "a reversed payment or a reversal has no credit to allocate",
            ));
        }
        let open = open_invoices(&mut tx, &[invoice_id]).await?;
        let open = open.get(&invoice_id).filter(|o| o.school_id == school.id);
        crate::plan::intake::check_allocations(
            &[(invoice_id, amount)],
            &|_| open.map(|o| o.open),
            pay.unallocated_credit,
        )
        .map_err(|r| super::record::refusal_error(&r))?;
        // Credit stays within the family: the same student or a sibling (same family_key).
        let target_student = open.map(|o| o.student_id).unwrap_or_default();
        let family_ok: bool = if pay.allocations.is_empty() {
            true
        } else {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM students t WHERE t.id = $1 AND EXISTS (
                    SELECT 1 FROM allocations a JOIN invoices i ON i.id = a.invoice_id JOIN students s ON s.id = i.student_id
                    WHERE a.payment_id = $2 AND (s.id = t.id OR (s.family_key IS NOT NULL AND s.family_key = t.family_key)))",
            )
            .bind(target_student)
            .bind(payment_id)
            .fetch_one(&mut *tx)
            .await?;
            n > 0
        };
        if !family_ok {
            return Err(Error::invalid(
                "not_same_family",
                "credit goes to an invoice of the same student or a sibling (same family_key); otherwise refund it",
            ));
        }
        insert_allocations(
            &mut tx,
            school.id,
            payment_id,
            &[(invoice_id, amount)],
            "credit",
            actor,
        )
        .await?;
        audit::record_covering(
            &mut tx,
            &Chain::School(school.id),
            Entry {
                actor,
                action: "payment.allocate_credit",
                entity: "payment",
                entity_id: Some(payment_id),
                details: json!({"invoice_id": invoice_id, "amount": amount}),
            },
            &[Unit::new(ALLOCATIONS, payment_id)],
        )
        .await?;
        tx.commit().await?;
        self.payment(payment_id).await
    }

    /// Marks credit of a payment for refund to the payer.
    pub async fn request_refund(
        &self,
        actor: &str,
        school: &School,
        payment_id: i64,
        amount: Vnd,
        reason: &str,
    ) -> Result<Payment> {
        let mut tx = self.begin().await?;
        lock_ledger(&mut tx, school.id).await?;
        refund_in(&mut tx, actor, school, payment_id, amount, reason).await?;
        tx.commit().await?;
        self.payment(payment_id).await
    }

    /// Reverses a cash payment with a new entry of the opposite amount and its own receipt
    /// number; the original and its number stay as they were.
    pub async fn reverse_payment(
        &self,
        actor: &str,
        school: &School,
        payment_id: i64,
        reason: &str,
    ) -> Result<Payment> {
        let mut tx = self.begin().await?;
        let recorded_year = Utc::now().with_timezone(&vietnam()).year();
        lock_ledger(&mut tx, school.id).await?;
        let (receipt_no, seq) = next_receipt(&mut tx, school, recorded_year).await?;
        let pay = self.payment_in_tx(&mut tx, school.id, payment_id).await?;
        if pay.reverses_payment_id.is_some() {
            return Err(Error::conflict(
                "cannot_reverse_reversal",
                "this entry is itself a reversal",
            ));
        }
        if pay.reversed_by_payment_id.is_some() {
            return Err(Error::conflict(
                "already_reversed",
                format!("payment {payment_id} is already reversed"),
            ));
        }
        if pay.channel != Channel::Cash {
            return Err(Error::invalid("not_cash", "only cash payments are reversed here; cashless money goes back through its provider"));
        }
        if pay.refunded.dong() > 0 {
            return Err(Error::conflict(
                "payment_has_refunds",
                "part of this payment is marked for refund; settle that first",
            ));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO payments (school_id, channel, provider, provider_ref, payer_name, memo, amount, received_at, recorded_at,
                recorded_by, receipt_no, receipt_year, receipt_seq, reverses_payment_id, reversal_reason)
             VALUES ($1, 'cash', 'cash', NULL, $2, NULL, $3, $4, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(school.id)
        .bind(&pay.payer_name)
        .bind(-pay.amount.dong())
        .bind(now())
        .bind(actor)
        .bind(&receipt_no)
        .bind(recorded_year as i64)
        .bind(seq)
        .bind(payment_id)
        .bind(reason)
        .fetch_one(&mut *tx)
        .await?;
        // Undo what the payment paid on each invoice.
        let mut net: Vec<(i64, i64)> = Vec::new();
        for a in &pay.allocations {
            match net.iter_mut().find(|(i, _)| *i == a.invoice_id) {
                Some((_, n)) => *n += a.amount.dong(),
                None => net.push((a.invoice_id, a.amount.dong())),
            }
        }
        let undo: Vec<(i64, Vnd)> = net
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .map(|(i, n)| (i, Vnd::new(-n).unwrap_or_default()))
            .collect();
        insert_allocations(&mut tx, school.id, id, &undo, "reversal", actor).await?;
        audit::record_covering(
            &mut tx,
            &Chain::School(school.id),
            Entry {
                actor,
                action: "payment.reverse",
                entity: "payment",
                entity_id: Some(payment_id),
                details: json!({"reversal_id": id, "receipt_no": receipt_no, "reason": reason}),
            },
            &[
                Unit::new(PAYMENTS, id),
                Unit::new(ALLOCATIONS, id),
                Unit::new(PAYMENT_FEES, id),
            ],
        )
        .await?;
        tx.commit().await?;
        self.payment(id).await
    }

    async fn payment_in_tx(&self, tx: &mut Tx, school_id: i64, id: i64) -> Result<Payment> {
        load_payment(tx, id, Some(school_id)).await
    }

    /// One payment with its fee lines, allocations and credit.
    pub async fn payment(&self, id: i64) -> Result<Payment> {
        load_payment(&mut *self.reader().acquire().await?, id, None).await
    }

    pub async fn payment_in_school(&self, school_id: i64, id: i64) -> Result<Payment> {
        load_payment(&mut *self.reader().acquire().await?, id, Some(school_id)).await
    }

    pub async fn list_payments(
        &self,
        school_id: i64,
        f: &PaymentFilter,
        page: Page,
    ) -> Result<(Vec<Payment>, Option<String>)> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT p.id FROM payments p WHERE p.school_id = $1 AND p.id > $2 AND ($3 IS NULL OR p.channel = $3)
               AND ($4 IS NULL OR p.received_at >= $4) AND ($5 IS NULL OR p.received_at < $5)
               AND ($6 = 0 OR NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses_payment_id = p.id) AND p.amount > CAST(COALESCE((SELECT SUM(a.amount) FROM allocations a WHERE a.payment_id = p.id), 0) AS BIGINT)
                    + CAST(COALESCE((SELECT SUM(r.amount) FROM refunds r WHERE r.payment_id = p.id), 0) AS BIGINT))
               AND ($8 = 0 OR EXISTS (SELECT 1 FROM payment_fees f WHERE f.payment_id = p.id AND f.needs_review = $9))
               AND ($10 IS NULL OR p.provider_ref = $10)
               AND ($11 IS NULL OR UPPER(p.provider_ref) LIKE '%:' || $11)
               AND ($12 IS NULL OR UPPER(p.bank_ref) = $12)
             ORDER BY p.id LIMIT $7",
        )
        .bind(school_id)
        .bind(page.after)
        .bind(f.channel.map(|c| c.as_str()))
        .bind(&f.from)
        .bind(&f.to)
        .bind(i64::from(f.with_credit))
        .bind(page.limit + 1)
        .bind(i64::from(f.needs_review))
        .bind(true)
        .bind(&f.provider_ref)
        .bind(&f.txn_id)
        .bind(&f.bank_ref)
        .fetch_all(self.reader())
        .await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            items.push(self.payment(id).await?);
        }
        Ok(paginate(items, page, |p| p.id))
    }
}

/// A payment with its fee lines, allocations and refunds, on one connection (pooled or in a
/// transaction); with `school_id`, another school's payment is not found.
pub(super) async fn load_payment(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    school_id: Option<i64>,
) -> Result<Payment> {
    let row = sqlx::query(&format!("SELECT {PAYMENT_COLS} FROM payments p WHERE p.id = $1 AND ($2 IS NULL OR p.school_id = $2)"))
        .bind(id)
        .bind(school_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::not_found("payment_not_found", "payment"))?;
    let mut v = payment_row(&row)?;
    let fees = sqlx::query("SELECT * FROM payment_fees WHERE payment_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let allocs = sqlx::query(
        "SELECT a.id, a.invoice_id, i.student_id, i.payment_code, a.amount, a.method, a.rule, a.created_at, a.created_by FROM allocations a
         JOIN invoices i ON i.id = a.invoice_id WHERE a.payment_id = $1 ORDER BY a.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let refunded: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds WHERE payment_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    complete(&mut v, &fees, &allocs, refunded)?;
    Ok(v)
}

fn payment_row(r: &AnyRow) -> Result<Payment> {
    let amount = vnd(r, "amount")?;
    let received_at: String = r.try_get("received_at")?;
    Ok(Payment {
        id: r.try_get("id")?,
        school_id: r.try_get("school_id")?,
        channel: Channel::from_db(&r.try_get::<String, _>("channel")?)
            .ok_or_else(|| Error::Internal("stored channel".into()))?,
        provider: r.try_get("provider")?,
        provider_ref: r.try_get("provider_ref")?,
        payer_name: r.try_get("payer_name")?,
        memo: r.try_get("memo")?,
        amount,
        amount_formatted: amount.formatted(),
        received_at_local: local_text(&received_at),
        received_at,
        recorded_at: r.try_get("recorded_at")?,
        recorded_by: r.try_get("recorded_by")?,
        receipt_no: r.try_get("receipt_no")?,
        reverses_payment_id: r.try_get("reverses_payment_id")?,
        reversed_by_payment_id: r.try_get("reversed_by")?,
        reversal_reason: r.try_get("reversal_reason")?,
        fees: vec![],
        no_fees_reason: None,
        allocations: vec![],
        allocated: Vnd::ZERO,
        refunded: Vnd::ZERO,
        unallocated_credit: Vnd::ZERO,
        parent_outlay: amount,
        school_net: amount,
    })
}

fn complete(v: &mut Payment, fees: &[AnyRow], allocs: &[AnyRow], refunded: i64) -> Result<()> {
    for f in fees {
        let amount = vnd(f, "amount")?;
        v.fees.push(FeeLine {
            charged_by: f.try_get("charged_by")?,
            kind: f.try_get("kind")?,
            basis: f.try_get("basis")?,
            amount,
            amount_formatted: amount.formatted(),
            borne_by: Bearer::from_db(&f.try_get::<String, _>("borne_by")?)
                .ok_or_else(|| Error::Internal("stored bearer".into()))?,
            predicted_amount: opt_vnd(f, "predicted_amount")?,
            reported_amount: opt_vnd(f, "reported_amount")?,
            needs_review: get_bool(f, "needs_review")?,
        });
    }
    for a in allocs {
        v.allocations.push(AllocationView {
            id: a.try_get("id")?,
            invoice_id: a.try_get("invoice_id")?,
            student_id: a.try_get("student_id")?,
            payment_code: a.try_get("payment_code")?,
            amount: vnd(a, "amount")?,
            method: crate::domain::ledger::AllocationMethod::from_db(
                &a.try_get::<String, _>("method")?,
            )
            .ok_or_else(|| Error::Internal("stored allocation method".into()))?,
            rule: a.try_get("rule")?,
            created_at: a.try_get("created_at")?,
            created_by: a.try_get("created_by")?,
        });
    }
    let allocated: i64 = v.allocations.iter().map(|a| a.amount.dong()).sum();
    v.allocated = Vnd::new(allocated).map_err(|e| Error::Internal(e.to_string()))?;
    v.refunded = Vnd::new(refunded).map_err(|e| Error::Internal(e.to_string()))?;
    // A reversal gave the whole payment back: nothing is left to allocate or refund.
    v.unallocated_credit = if v.amount.is_negative() || v.reversed_by_payment_id.is_some() {
        Vnd::ZERO
    } else {
        Vnd::new(v.amount.dong() - allocated - refunded)
            .map_err(|e| Error::Internal(e.to_string()))?
    };
    let pairs: Vec<(Vnd, Bearer)> = v.fees.iter().map(|f| (f.amount, f.borne_by)).collect();
    v.parent_outlay = parent_outlay(v.amount, &pairs);
    v.school_net = school_net(v.amount, &pairs);
    if v.fees.is_empty() {
        v.no_fees_reason = Some(match v.channel {
            Channel::Cash => "cash at the school office: no transaction fee".into(),
            Channel::BankTransfer if v.provider == PLAIN_TRANSFER => {
                "plain transfer into the school's own account: no intermediary fee".into()
            }
            _ => "no fee recorded".into(),
        });
    }
    Ok(())
}

impl Store {
    /// Payments with an allocation to `invoice_id`, oldest first.
    pub async fn payments_of_invoice(&self, invoice_id: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT payment_id FROM allocations WHERE invoice_id = $1 ORDER BY payment_id",
        )
        .bind(invoice_id)
        .fetch_all(self.reader())
        .await?)
    }
}
