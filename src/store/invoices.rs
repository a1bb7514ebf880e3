//! Invoices and their lines: issue one, import many, read, list, void.

use super::{chunk_size, get_bool, now, paginate, values_placeholders, Backend, Page, Store, Tx};
use crate::audit::{self, Chain, Entry};
use crate::coverage::{Unit, IMPORT_BATCHES, INVOICES, INVOICE_LINES};
use crate::domain::catalog::check_cadence;
use crate::domain::code::{PaymentCode, SchoolPrefix};
use crate::domain::import::{self, Plan, Snapshot};
use crate::domain::invoice::{content_digest, draft, Draft, LineKind, LineRequest};
use crate::domain::ledger::invoice_status;
pub use crate::domain::ledger::InvoiceStatus;
use crate::domain::money::Vnd;
use crate::domain::period::Period;
use crate::error::{Error, Result};
use crate::store::org::School;
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceLine {
    pub line_no: i64,
    pub kind: LineKind,
    pub fee_item_id: i64,
    pub item_code: String,
    pub description: String,
    /// Whole đồng; negative for a reduction.
    #[schema(value_type = i64)]
    pub amount: Vnd,
    /// The amount as printed: `1.500.000 ₫`.
    pub amount_formatted: String,
    #[schema(value_type = Option<i64>)]
    pub cap_per_period: Option<Vnd>,
    /// Billed above the item's cap, with the reason below; auditors list these.
    pub above_cap: bool,
    pub cap_override_reason: Option<String>,
    /// For a reduction: the percent of the reduced line, as a decimal string.
    pub reduction_percent: Option<String>,
    pub policy_group: Option<String>,
    pub evidence_ref: Option<String>,
    pub reduces_line_no: Option<i64>,
    /// Whether the notice presents the line as mandatory.
    pub billed_as_mandatory: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invoice {
    pub id: i64,
    pub school_id: i64,
    pub student_id: i64,
    pub student_code: String,
    pub student_name: String,
    pub class_name: String,
    /// What the parent writes in the transfer memo.
    pub payment_code: String,
    /// The school's own reference (e.g. from an import file).
    pub external_ref: Option<String>,
    pub period: String,
    pub due_date: String,
    pub status: InvoiceStatus,
    #[schema(value_type = i64)]
    pub total: Vnd,
    pub total_formatted: String,
    /// Sum of the allocations to this invoice.
    #[schema(value_type = i64)]
    pub paid: Vnd,
    /// Total less paid (negative when overpaid).
    #[schema(value_type = i64)]
    pub outstanding: Vnd,
    pub outstanding_formatted: String,
    pub has_line_above_cap: bool,
    pub replaces_invoice_id: Option<i64>,
    pub issued_at: String,
    pub issued_by: String,
    pub voided_at: Option<String>,
    pub voided_by: Option<String>,
    pub void_reason: Option<String>,
    /// Present when one invoice is fetched; omitted in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<InvoiceLine>>,
}

/// A request to issue one invoice, parsed.
pub struct NewInvoice {
    pub student_id: i64,
    pub period: Period,
    pub due_date: NaiveDate,
    pub external_ref: Option<String>,
    pub replaces_invoice_id: Option<i64>,
    pub lines: Vec<LineRequest>,
}

#[derive(Debug, Default, Clone)]
pub struct InvoiceFilter {
    pub status: Option<InvoiceStatus>,
    pub period: Option<String>,
    pub class_name: Option<String>,
    pub student_id: Option<i64>,
    pub above_cap: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportSummary {
    pub batch_id: Option<i64>,
    pub rows: usize,
    pub invoices_created: usize,
    /// Invoices of the file that were already issued with the same content (a re-import).
    pub invoices_unchanged: usize,
    pub students_created: usize,
    pub students_updated: usize,
    pub file_sha256: String,
}

/// Where an import is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum ImportProgress {
    Parsed { rows: u64 },
    Written { invoices: u64, of: u64 },
}

const INVOICE_COLS: &str = "i.id, i.school_id, i.student_id, s.student_code, s.full_name, s.class_name, i.payment_code, i.external_ref,
    i.period, i.due_date, i.total, i.replaces_invoice_id, i.issued_at, i.issued_by, i.voided_at, i.voided_by, i.void_reason,
    EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = i.id AND l.above_cap = $1) AS any_above_cap,
    CAST(COALESCE((SELECT SUM(a.amount) FROM allocations a WHERE a.invoice_id = i.id), 0) AS BIGINT) AS paid";

/// The status as SQL, the same rule as `domain::ledger::invoice_status`, for filtering.
const STATUS_SQL: &str = "CASE WHEN i.voided_at IS NOT NULL THEN 'void' ELSE (SELECT CASE WHEN p.paid > i.total THEN 'overpaid'
    WHEN p.paid = i.total THEN 'paid' WHEN p.paid = 0 THEN 'open' ELSE 'partially_paid' END
    FROM (SELECT CAST(COALESCE(SUM(a.amount), 0) AS BIGINT) AS paid FROM allocations a WHERE a.invoice_id = i.id) p) END";

fn invoice(r: &AnyRow) -> Result<Invoice> {
    let voided_at: Option<String> = r.try_get("voided_at")?;
    let total =
        Vnd::new(r.try_get("total")?).map_err(|e| Error::Internal(format!("stored total: {e}")))?;
    let paid =
        Vnd::new(r.try_get("paid")?).map_err(|e| Error::Internal(format!("stored paid: {e}")))?;
    let outstanding =
        Vnd::new(total.dong() - paid.dong()).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Invoice {
        id: r.try_get("id")?,
        school_id: r.try_get("school_id")?,
        student_id: r.try_get("student_id")?,
        student_code: r.try_get("student_code")?,
        student_name: r.try_get("full_name")?,
        class_name: r.try_get("class_name")?,
        payment_code: r.try_get("payment_code")?,
        external_ref: r.try_get("external_ref")?,
        period: r.try_get("period")?,
        due_date: r.try_get("due_date")?,
        status: invoice_status(voided_at.is_some(), total, paid),
        total,
        total_formatted: total.formatted(),
        paid,
        outstanding,
        outstanding_formatted: outstanding.formatted(),
        has_line_above_cap: get_bool(r, "any_above_cap")?,
        replaces_invoice_id: r.try_get("replaces_invoice_id")?,
        issued_at: r.try_get("issued_at")?,
        issued_by: r.try_get("issued_by")?,
        voided_at,
        voided_by: r.try_get("voided_by")?,
        void_reason: r.try_get("void_reason")?,
        lines: None,
    })
}

fn line(r: &AnyRow) -> Result<InvoiceLine> {
    let amount = Vnd::new(r.try_get("amount")?)
        .map_err(|e| Error::Internal(format!("stored amount: {e}")))?;
    Ok(InvoiceLine {
        line_no: r.try_get("line_no")?,
        kind: LineKind::from_db(&r.try_get::<String, _>("kind")?)
            .ok_or_else(|| Error::Internal("stored line kind".into()))?,
        fee_item_id: r.try_get("fee_item_id")?,
        item_code: r.try_get("code")?,
        description: r.try_get("description")?,
        amount,
        amount_formatted: amount.formatted(),
        cap_per_period: r
            .try_get::<Option<i64>, _>("cap_per_period")?
            .map(Vnd::new)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?,
        above_cap: get_bool(r, "above_cap")?,
        cap_override_reason: r.try_get("cap_override_reason")?,
        reduction_percent: r.try_get("reduction_percent")?,
        policy_group: r.try_get("policy_group")?,
        evidence_ref: r.try_get("evidence_ref")?,
        reduces_line_no: r.try_get("reduces_line_no")?,
        billed_as_mandatory: get_bool(r, "billed_as_mandatory")?,
    })
}

/// Takes the next `n` invoice numbers of the school. Incrementing the counter row also locks it
/// until commit, which serialises invoice issuing within one school (cadence checks must not race)
/// while other schools go on in parallel.
async fn reserve_numbers(tx: &mut Tx, school_id: i64, n: i64) -> Result<i64> {
    let next: i64 = sqlx::query_scalar("UPDATE counters SET value = value + $1 WHERE school_id = $2 AND name = 'invoice' RETURNING value")
        .bind(n)
        .bind(school_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(next - n)
}

/// Periods already billed per (student code, item), from issued invoices not voided.
async fn billed_periods(
    tx: &mut Tx,
    school_id: i64,
    student_id: Option<i64>,
) -> Result<HashMap<(String, i64), Vec<Period>>> {
    let rows = sqlx::query(
        "SELECT s.student_code, l.fee_item_id, i.period FROM invoice_lines l
           JOIN invoices i ON i.id = l.invoice_id JOIN students s ON s.id = i.student_id
         WHERE i.school_id = $1 AND i.voided_at IS NULL AND l.kind = 'charge' AND ($2 IS NULL OR i.student_id = $2)",
    )
    .bind(school_id)
    .bind(student_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut out: HashMap<(String, i64), Vec<Period>> = HashMap::new();
    for r in rows {
        let period = Period::parse(&r.try_get::<String, _>("period")?)
            .map_err(|e| Error::Internal(e.to_string()))?;
        out.entry((r.try_get("student_code")?, r.try_get("fee_item_id")?))
            .or_default()
            .push(period);
    }
    Ok(out)
}

struct InvoiceInsert<'a> {
    student_id: i64,
    code: String,
    external_ref: Option<&'a str>,
    period: String,
    due_date: String,
    draft: &'a Draft,
    digest: &'a str,
    replaces: Option<i64>,
}

/// Inserts invoices and their lines; returns the new ids in input order.
async fn insert_invoices(
    tx: &mut Tx,
    backend: Backend,
    school_id: i64,
    actor: &str,
    batch_id: Option<i64>,
    invoices: &[InvoiceInsert<'_>],
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<Vec<i64>> {
    let at = now();
    let mut ids = Vec::with_capacity(invoices.len());
    let total = invoices.len() as u64;
    for chunk in invoices.chunks(chunk_size(backend)) {
        let sql = format!(
            "INSERT INTO invoices (school_id, student_id, payment_code, external_ref, period, due_date, total, content_digest,
                replaces_invoice_id, import_batch_id, issued_at, issued_by) VALUES {} RETURNING id, payment_code",
            values_placeholders(chunk.len(), 12)
        );
        let mut q = sqlx::query(&sql);
        for inv in chunk {
            q = q
                .bind(school_id)
                .bind(inv.student_id)
                .bind(&inv.code)
                .bind(inv.external_ref)
                .bind(&inv.period)
                .bind(&inv.due_date)
                .bind(inv.draft.total.dong())
                .bind(inv.digest)
                .bind(inv.replaces)
                .bind(batch_id)
                .bind(&at)
                .bind(actor);
        }
        // RETURNING order is not promised for multi-row inserts; map back by the unique code.
        let rows = q.fetch_all(&mut **tx).await?;
        let mut by_code: HashMap<String, i64> = HashMap::with_capacity(rows.len());
        for r in rows {
            by_code.insert(r.try_get("payment_code")?, r.try_get("id")?);
        }
        let chunk_ids = chunk
            .iter()
            .map(|inv| {
                by_code
                    .get(&inv.code)
                    .copied()
                    .ok_or_else(|| Error::Internal("inserted invoice not returned".into()))
            })
            .collect::<Result<Vec<i64>>>()?;

        let lines: Vec<(i64, &crate::domain::invoice::DraftLine)> = chunk
            .iter()
            .zip(&chunk_ids)
            .flat_map(|(inv, id)| inv.draft.lines.iter().map(move |l| (*id, l)))
            .collect();
        for lchunk in lines.chunks(chunk_size(backend)) {
            let sql = format!(
                "INSERT INTO invoice_lines (invoice_id, school_id, line_no, kind, fee_item_id, description, amount, cap_per_period,
                    above_cap, cap_override_reason, reduction_percent, policy_group, evidence_ref, reduces_line_no, billed_as_mandatory) VALUES {}",
                values_placeholders(lchunk.len(), 15)
            );
            let mut q = sqlx::query(&sql);
            for (invoice_id, l) in lchunk {
                q = q
                    .bind(*invoice_id)
                    .bind(school_id)
                    .bind(l.line_no)
                    .bind(l.kind.as_str())
                    .bind(l.fee_item_id)
                    .bind(&l.description)
                    .bind(l.amount.dong())
                    .bind(l.cap_per_period.map(Vnd::dong))
                    .bind(l.above_cap)
                    .bind(&l.cap_override_reason)
                    .bind(l.reduction_percent.map(|p| p.to_string()))
                    .bind(&l.policy_group)
                    .bind(&l.evidence_ref)
                    .bind(l.reduces_line_no)
                    .bind(l.billed_as_mandatory);
            }
            q.execute(&mut **tx).await?;
        }
        ids.extend(chunk_ids);
        progress(ImportProgress::Written {
            invoices: ids.len() as u64,
            of: total,
        });
    }
    Ok(ids)
}

fn prefix_of(school: &School) -> Result<SchoolPrefix> {
    SchoolPrefix::parse(&school.payment_prefix)
        .map_err(|e| Error::Internal(format!("stored prefix: {e}")))
}

fn code_for(prefix: &SchoolPrefix, number: i64) -> Result<String> {
    PaymentCode::generate(prefix, number as u64)
        .map(|c| c.as_str().to_string())
        .map_err(|e| Error::conflict("payment_codes_exhausted", e.to_string()))
}

impl Store {
    /// Issues one invoice. With an `external_ref` already used, the same content answers the
    /// existing invoice (`created = false`, a safe retry) and different content is a conflict.
    pub async fn create_invoice(
        &self,
        actor: &str,
        school: &School,
        req: NewInvoice,
    ) -> Result<(Invoice, bool)> {
        // Read before the transaction: catalog items are never edited, and a transaction that
        // waited for a second pooled connection could starve the pool.
        let catalog = self.school_catalog(school.id, school.department_id).await?;
        let mut tx = self.begin().await?;
        let number = reserve_numbers(&mut tx, school.id, 1).await?;
        let student_code: Option<String> = sqlx::query_scalar(
            "SELECT student_code FROM students WHERE id = $1 AND school_id = $2",
        )
        .bind(req.student_id)
        .bind(school.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(student_code) = student_code else {
            return Err(Error::invalid(
                "unknown_student",
                format!("there is no student {} in this school", req.student_id),
            ));
        };
        let d = draft(req.lines).map_err(|e| Error::invalid("invalid_lines", e.to_string()))?;
        let period = req.period.to_string();
        let due = req.due_date.to_string();
        let digest = content_digest(&student_code, &period, &due, &d);

        if let Some(ext) = &req.external_ref {
            let existing = sqlx::query("SELECT id, content_digest FROM invoices WHERE school_id = $1 AND external_ref = $2")
                .bind(school.id)
                .bind(ext)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(r) = existing {
                let id: i64 = r.try_get("id")?;
                if r.try_get::<String, _>("content_digest")? == digest {
                    drop(tx);
                    return Ok((self.invoice_in_school(school.id, id).await?, false));
                }
                return Err(Error::conflict(
                    "invoice_ref_conflict",
                    format!("invoice {ext} was already issued with different content; an issued invoice is never edited: void it and reissue"),
                ));
            }
        }
        if let Some(old) = req.replaces_invoice_id {
            let r = sqlx::query(
                "SELECT student_id, voided_at FROM invoices WHERE id = $1 AND school_id = $2",
            )
            .bind(old)
            .bind(school.id)
            .fetch_optional(&mut *tx)
            .await?;
            match r {
                None => {
                    return Err(Error::invalid(
                        "unknown_invoice",
                        format!("there is no invoice {old} in this school to replace"),
                    ))
                }
                Some(r) => {
                    if r.try_get::<i64, _>("student_id")? != req.student_id {
                        return Err(Error::invalid(
                            "replaces_other_student",
                            "a reissued invoice is for the same student",
                        ));
                    }
                    if r.try_get::<Option<String>, _>("voided_at")?.is_none() {
                        return Err(Error::invalid(
                            "replaces_open_invoice",
                            format!("invoice {old} is not void: void it first, with a reason"),
                        ));
                    }
                }
            }
        }
        let billed = billed_periods(&mut tx, school.id, Some(req.student_id)).await?;
        for l in d.lines.iter().filter(|l| l.kind == LineKind::Charge) {
            let history = billed
                .get(&(student_code.clone(), l.fee_item_id))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if let Some(item) = catalog.get(&l.item_code) {
                check_cadence(item, req.period, history)
                    .map_err(|e| Error::invalid("cadence_exceeded", e.to_string()))?;
            }
        }
        let code = code_for(&prefix_of(school)?, number)?;
        let ids = insert_invoices(
            &mut tx,
            self.backend(),
            school.id,
            actor,
            None,
            &[InvoiceInsert {
                student_id: req.student_id,
                code: code.clone(),
                external_ref: req.external_ref.as_deref(),
                period,
                due_date: due,
                draft: &d,
                digest: &digest,
                replaces: req.replaces_invoice_id,
            }],
            &|_| {},
        )
        .await?;
        let above: Vec<i64> = d
            .lines
            .iter()
            .filter(|l| l.above_cap)
            .map(|l| l.line_no)
            .collect();
        let units: Vec<Unit> = ids
            .iter()
            .flat_map(|id| [Unit::new(INVOICES, *id), Unit::new(INVOICE_LINES, *id)])
            .collect();
        audit::record_covering(
            &mut tx,
            &Chain::School(school.id),
            Entry {
                actor,
                action: "invoice.issue",
                entity: "invoice",
                entity_id: Some(ids[0]),
                details: json!({"payment_code": code, "total": d.total, "lines": d.lines.len(),
                                "above_cap_lines": above, "replaces_invoice_id": req.replaces_invoice_id}),
            },
            &units,
        )
        .await?;
        tx.commit().await?;
        Ok((self.invoice_in_school(school.id, ids[0]).await?, true))
    }

    /// Imports a CSV file of invoice lines, all or nothing.
    pub async fn import_invoices(
        &self,
        actor: &str,
        school: &School,
        file: &[u8],
        progress: &(dyn Fn(ImportProgress) + Send + Sync),
    ) -> Result<ImportSummary> {
        let file_sha256 = hex::encode(Sha256::digest(file));
        let parsed = import::parse_csv(file)?;
        let row_count = parsed.rows.len() + parsed.errors.len();
        progress(ImportProgress::Parsed {
            rows: row_count as u64,
        });

        let catalog = self.school_catalog(school.id, school.department_id).await?;
        let mut tx = self.begin().await?;
        let first_number = reserve_numbers(&mut tx, school.id, 0).await?;
        let students = Store::known_students(&mut tx, school.id).await?;
        let existing: HashMap<String, String> = {
            let rows = sqlx::query("SELECT external_ref, content_digest FROM invoices WHERE school_id = $1 AND external_ref IS NOT NULL")
                .bind(school.id)
                .fetch_all(&mut *tx)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("external_ref")?, r.try_get("content_digest")?)))
                .collect::<Result<_>>()?
        };
        let billed = billed_periods(&mut tx, school.id, None).await?;
        let plan: Plan = import::plan(
            parsed,
            &Snapshot {
                catalog: &catalog,
                students: &students,
                existing: &existing,
                billed: &billed,
            },
        )?;

        let mut summary = ImportSummary {
            batch_id: None,
            rows: row_count,
            invoices_created: plan.invoices.len(),
            invoices_unchanged: plan.unchanged,
            students_created: plan
                .students
                .iter()
                .filter(|s| s.existing_id.is_none())
                .count(),
            students_updated: plan
                .students
                .iter()
                .filter(|s| s.existing_id.is_some())
                .count(),
            file_sha256,
        };
        if plan.invoices.is_empty() && plan.students.is_empty() {
            // A re-import of a file already on record: nothing to write, not even a batch.
            return Ok(summary);
        }

        let t = now();
        let mut student_ids: HashMap<String, i64> = students
            .iter()
            .map(|(code, s)| (code.clone(), s.id))
            .collect();
        for s in plan.students.iter().filter(|s| s.existing_id.is_some()) {
            sqlx::query("UPDATE students SET full_name = $1, class_name = $2, family_key = $3, updated_at = $4 WHERE id = $5")
                .bind(&s.full_name)
                .bind(&s.class_name)
                .bind(&s.family_key)
                .bind(&t)
                .bind(s.existing_id)
                .execute(&mut *tx)
                .await?;
        }
        let new_students: Vec<_> = plan
            .students
            .iter()
            .filter(|s| s.existing_id.is_none())
            .collect();
        for chunk in new_students.chunks(chunk_size(self.backend())) {
            let sql = format!(
                "INSERT INTO students (school_id, student_code, full_name, class_name, family_key, created_at, updated_at) VALUES {}
                 RETURNING id, student_code",
                values_placeholders(chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q
                    .bind(school.id)
                    .bind(&s.student_code)
                    .bind(&s.full_name)
                    .bind(&s.class_name)
                    .bind(&s.family_key)
                    .bind(&t)
                    .bind(&t);
            }
            for r in q.fetch_all(&mut *tx).await? {
                student_ids.insert(r.try_get("student_code")?, r.try_get("id")?);
            }
        }

        let batch_id: i64 = sqlx::query_scalar(
            "INSERT INTO import_batches (school_id, file_sha256, rows_read, invoices_created, invoices_unchanged, students_written, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(school.id)
        .bind(&summary.file_sha256)
        .bind(row_count as i64)
        .bind(plan.invoices.len() as i64)
        .bind(plan.unchanged as i64)
        .bind(plan.students.len() as i64)
        .bind(&t)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        summary.batch_id = Some(batch_id);

        let first_number = if plan.invoices.is_empty() {
            first_number
        } else {
            reserve_numbers(&mut tx, school.id, plan.invoices.len() as i64).await?
        };
        let prefix = prefix_of(school)?;
        let inserts = plan
            .invoices
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Ok(InvoiceInsert {
                    student_id: student_ids[&p.student_code],
                    code: code_for(&prefix, first_number + i as i64)?,
                    external_ref: Some(&p.invoice_ref),
                    period: p.period.to_string(),
                    due_date: p.due_date.to_string(),
                    draft: &p.draft,
                    digest: &p.digest,
                    replaces: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ids = insert_invoices(
            &mut tx,
            self.backend(),
            school.id,
            actor,
            Some(batch_id),
            &inserts,
            progress,
        )
        .await?;
        let above_cap = plan
            .invoices
            .iter()
            .flat_map(|p| p.draft.lines.iter())
            .filter(|l| l.above_cap)
            .count();
        let mut units = vec![Unit::new(IMPORT_BATCHES, batch_id)];
        units.extend(
            ids.iter()
                .flat_map(|id| [Unit::new(INVOICES, *id), Unit::new(INVOICE_LINES, *id)]),
        );
        audit::record_covering(
            &mut tx,
            &Chain::School(school.id),
            Entry {
                actor,
                action: "invoice.import",
                entity: "import_batch",
                entity_id: Some(batch_id),
                details: json!({"file_sha256": summary.file_sha256, "rows": row_count, "invoices_created": summary.invoices_created,
                                "invoices_unchanged": summary.invoices_unchanged, "students_created": summary.students_created,
                                "students_updated": summary.students_updated, "above_cap_lines": above_cap}),
            },
            &units,
        )
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    pub async fn invoice_in_school(&self, school_id: i64, id: i64) -> Result<Invoice> {
        let row = sqlx::query(&format!(
            "SELECT {INVOICE_COLS} FROM invoices i JOIN students s ON s.id = i.student_id WHERE i.id = $2 AND i.school_id = $3"
        ))
        .bind(true)
        .bind(id)
        .bind(school_id)
        .fetch_optional(self.reader())
        .await?;
        let mut inv = row
            .map(|r| invoice(&r))
            .transpose()?
            .ok_or(Error::not_found("invoice_not_found", "invoice"))?;
        let lines = sqlx::query(
            "SELECT l.line_no, l.kind, l.fee_item_id, f.code, l.description, l.amount, l.cap_per_period, l.above_cap,
                    l.cap_override_reason, l.reduction_percent, l.policy_group, l.evidence_ref, l.reduces_line_no, l.billed_as_mandatory
             FROM invoice_lines l JOIN fee_items f ON f.id = l.fee_item_id WHERE l.invoice_id = $1 ORDER BY l.line_no",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        inv.lines = Some(lines.iter().map(line).collect::<Result<_>>()?);
        Ok(inv)
    }

    /// The invoice carrying `code`, with its school id, whatever the school.
    /// The invoice behind a payment code, if it is in `scope`: (id, school id).
    pub async fn invoice_by_code_in_scope(
        &self,
        scope: crate::domain::access::Scope,
        code: &PaymentCode,
    ) -> Result<Option<(i64, i64)>> {
        let (school, department) = super::scope_binds(scope);
        let row = sqlx::query(
            "SELECT i.id, i.school_id FROM invoices i JOIN schools s ON s.id = i.school_id
             WHERE i.payment_code = $1 AND ($2 IS NULL OR s.id = $2) AND ($3 IS NULL OR s.department_id = $3)",
        )
        .bind(code.as_str())
        .bind(school)
        .bind(department)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("school_id")?)))
            .transpose()
    }

    pub async fn invoice_by_code(&self, code: &PaymentCode) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query("SELECT id, school_id FROM invoices WHERE payment_code = $1")
            .bind(code.as_str())
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("school_id")?)))
            .transpose()
    }

    pub async fn list_invoices(
        &self,
        school_id: i64,
        f: &InvoiceFilter,
        page: Page,
    ) -> Result<(Vec<Invoice>, Option<String>)> {
        let above = match f.above_cap {
            None => 0i64,
            Some(true) => 1,
            Some(false) => 2,
        };
        let rows = sqlx::query(&format!(
            "SELECT {INVOICE_COLS} FROM invoices i JOIN students s ON s.id = i.student_id
             WHERE i.school_id = $2 AND i.id > $3
               AND ($4 IS NULL OR i.period = $4) AND ($5 IS NULL OR s.class_name = $5) AND ($6 IS NULL OR i.student_id = $6)
               AND ($7 IS NULL OR ({STATUS_SQL}) = $7)
               AND ($8 = 0 OR ($8 = 1) = EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = i.id AND l.above_cap = $1))
             ORDER BY i.id LIMIT $9"
        ))
        .bind(true)
        .bind(school_id)
        .bind(page.after)
        .bind(&f.period)
        .bind(&f.class_name)
        .bind(f.student_id)
        .bind(f.status.map(|s| s.as_str()))
        .bind(above)
        .bind(page.limit + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(invoice).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page, |i| i.id))
    }

    pub async fn void_invoice(
        &self,
        actor: &str,
        school_id: i64,
        id: i64,
        reason: &str,
    ) -> Result<Invoice> {
        let mut tx = self.begin().await?;
        let voided_at: Option<Option<String>> =
            sqlx::query_scalar("SELECT voided_at FROM invoices WHERE id = $1 AND school_id = $2")
                .bind(id)
                .bind(school_id)
                .fetch_optional(&mut *tx)
                .await?;
        match voided_at {
            None => return Err(Error::not_found("invoice_not_found", "invoice")),
            Some(Some(_)) => {
                return Err(Error::conflict(
                    "invoice_already_void",
                    format!("invoice {id} is already void"),
                ))
            }
            Some(None) => {}
        }
        super::ledger::lock_ledger(&mut tx, school_id).await?;
        let paid: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM allocations WHERE invoice_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if paid != 0 {
            return Err(Error::conflict(
                "invoice_has_payments",
                "payments are allocated to this invoice; move them (reverse or reallocate) before voiding",
            ));
        }
        // The guard in WHERE makes a concurrent second void update nothing instead of overwriting.
        let updated = sqlx::query("UPDATE invoices SET voided_at = $1, voided_by = $2, void_reason = $3 WHERE id = $4 AND voided_at IS NULL")
            .bind(now())
            .bind(actor)
            .bind(reason)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() != 1 {
            return Err(Error::conflict(
                "invoice_already_void",
                format!("invoice {id} is already void"),
            ));
        }
        audit::record_covering(
            &mut tx,
            &Chain::School(school_id),
            Entry {
                actor,
                action: "invoice.void",
                entity: "invoice",
                entity_id: Some(id),
                details: json!({"reason": reason}),
            },
            &[Unit::new(INVOICES, id)],
        )
        .await?;
        tx.commit().await?;
        self.invoice_in_school(school_id, id).await
    }
}

impl Store {
    /// The invoice of `school_id` carrying `code`, with what is still owed: `(id, outstanding, voided)`.
    pub async fn invoice_balance_by_code(
        &self,
        school_id: i64,
        code: &PaymentCode,
    ) -> Result<Option<(i64, Vnd, bool)>> {
        let row = sqlx::query(
            "SELECT i.id, i.total - CAST(COALESCE((SELECT SUM(a.amount) FROM allocations a WHERE a.invoice_id = i.id), 0) AS BIGINT) AS open,
                    i.voided_at FROM invoices i WHERE i.school_id = $1 AND i.payment_code = $2",
        )
        .bind(school_id)
        .bind(code.as_str())
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            let open = Vnd::new(r.try_get("open")?).map_err(|e| Error::Internal(e.to_string()))?;
            Ok((
                r.try_get("id")?,
                open,
                r.try_get::<Option<String>, _>("voided_at")?.is_some(),
            ))
        })
        .transpose()
    }
}
