//! Subject requests: everything held about a student, and its erasure. What is theirs: the
//! student row, their invoices, the payments allocated to them, their parent links, and the
//! payments, archived deliveries and statement lines that are those payments' or that name
//! them (their name, code or an invoice's payment code, found folded: see
//! `domain::pseudonym::Mentions`).
//!
//! Erasure replaces the personal columns (never an amount, a key or a time) by the student's
//! pseudonym, in one transaction with its audit record; the database allows these rows no other
//! change (migrations 0015 and 0017). Their parent links are revoked and lose their label and
//! guardian's contact, except a family link that still serves a brother or sister.

use super::invoices::{Invoice, InvoiceFilter};
use super::ledger::Payment;
use super::parents::ParentLink;
use super::processing::{LogEntry, LogFilter};
use super::students::Student;
use super::webhooks::ProviderEvent;
use super::{format_time, Page, Store};
use crate::audit::{self, Chain, Entry};
use crate::domain::pseudonym::Mentions;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeSet;
use utoipa::ToSchema;

/// The columns an erasure rewrites. None is committed to by the audit chain's coverage
/// digests (checked below), so the chain verifies after an erasure.
pub const REDACTED: &[(&str, &str)] = &[
    ("students", "full_name"),
    ("students", "student_code"),
    ("students", "family_key"),
    ("payments", "payer_name"),
    ("payments", "memo"),
    ("provider_events", "body"),
    ("provider_events", "query"),
    ("statement_lines", "memo"),
    ("statement_lines", "counterparty"),
    ("parent_links", "label"),
    ("parent_links", "contact"),
];

/// A bank statement's line, as held.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldStatementLine {
    pub id: i64,
    pub statement_id: i64,
    pub booked_at: String,
    #[schema(value_type = i64)]
    pub amount: i64,
    pub direction: String,
    pub bank_ref: Option<String>,
    pub memo: String,
    pub counterparty: Option<String>,
    pub payment_id: Option<i64>,
}

/// Everything held about a student.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonalData {
    pub student: Student,
    /// When their personal data was erased; absent while it is held.
    pub erased_at: Option<String>,
    /// Their invoices, with lines.
    pub invoices: Vec<Invoice>,
    /// Payments allocated to their invoices, and payments whose payer name or memo names them.
    pub payments: Vec<Payment>,
    /// Links issued for them or their family (labels and guardians' contacts; never tokens).
    pub parent_links: Vec<ParentLink>,
    /// Archived deliveries of those payments, or whose body or query names them.
    pub deliveries: Vec<ProviderEvent>,
    /// Bank statement lines of those payments, or whose memo or counterparty names them.
    pub statement_lines: Vec<HeldStatementLine>,
    /// Who read their data (the processing log), oldest first.
    pub reads: Vec<LogEntry>,
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Erasure {
    pub student_id: i64,
    /// What their name, code, payer names, memos and archived bodies now read.
    pub pseudonym: String,
    pub erased_at: String,
    /// The student was erased before: nothing was changed this time.
    pub already_erased: bool,
    /// Rows redacted now.
    pub payments: u64,
    pub deliveries: u64,
    pub statement_lines: u64,
    /// Parent links revoked, their label and guardian's contact removed.
    pub parent_links: u64,
}

/// Which rows are the student's or name them.
struct Targets {
    payments: BTreeSet<i64>,
    deliveries: BTreeSet<i64>,
    lines: BTreeSet<i64>,
}

async fn mentions_of(
    conn: &mut sqlx::AnyConnection,
    school_id: i64,
    student: &Student,
) -> Result<Mentions> {
    let codes: Vec<String> = sqlx::query_scalar(
        "SELECT payment_code FROM invoices WHERE school_id = $1 AND student_id = $2",
    )
    .bind(school_id)
    .bind(student.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut terms = vec![student.full_name.as_str(), student.student_code.as_str()];
    terms.extend(codes.iter().map(String::as_str));
    Ok(Mentions::new(terms))
}

/// Scans the school's payments, archive and statement lines. A subject request is rare and
/// answered within days; a school's rows are read once, in full.
async fn targets(
    conn: &mut sqlx::AnyConnection,
    school_id: i64,
    student_id: i64,
    mentions: &Mentions,
) -> Result<Targets> {
    let mut payments: BTreeSet<i64> = sqlx::query_scalar(
        "SELECT DISTINCT a.payment_id FROM allocations a JOIN invoices i ON i.id = a.invoice_id
         WHERE i.school_id = $1 AND i.student_id = $2",
    )
    .bind(school_id)
    .bind(student_id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    for r in sqlx::query("SELECT id, payer_name, memo FROM payments WHERE school_id = $1")
        .bind(school_id)
        .fetch_all(&mut *conn)
        .await?
    {
        let names = [
            r.try_get::<Option<String>, _>("payer_name")?,
            r.try_get::<Option<String>, _>("memo")?,
        ];
        if names.iter().flatten().any(|t| mentions.in_text(t)) {
            payments.insert(r.try_get("id")?);
        }
    }
    let mut deliveries = BTreeSet::new();
    for r in
        sqlx::query("SELECT id, payment_id, query, body FROM provider_events WHERE school_id = $1")
            .bind(school_id)
            .fetch_all(&mut *conn)
            .await?
    {
        let paid: Option<i64> = r.try_get("payment_id")?;
        let query: String = r.try_get("query")?;
        let body: Vec<u8> = r.try_get("body")?;
        if paid.is_some_and(|p| payments.contains(&p))
            || mentions.in_text(&query)
            || mentions.in_text(&String::from_utf8_lossy(&body))
        {
            deliveries.insert(r.try_get("id")?);
        }
    }
    let mut lines = BTreeSet::new();
    for r in sqlx::query(
        "SELECT id, payment_id, memo, counterparty FROM statement_lines WHERE school_id = $1",
    )
    .bind(school_id)
    .fetch_all(&mut *conn)
    .await?
    {
        let paid: Option<i64> = r.try_get("payment_id")?;
        let memo: String = r.try_get("memo")?;
        let counterparty: Option<String> = r.try_get("counterparty")?;
        if paid.is_some_and(|p| payments.contains(&p))
            || mentions.in_text(&memo)
            || counterparty.is_some_and(|c| mentions.in_text(&c))
        {
            lines.insert(r.try_get("id")?);
        }
    }
    Ok(Targets {
        payments,
        deliveries,
        lines,
    })
}

/// `UPDATE … WHERE id IN (…)` over `ids` in chunks; the rows changed.
async fn update_ids(
    conn: &mut sqlx::AnyConnection,
    sql_head: &str,
    binds: &[String],
    ids: &BTreeSet<i64>,
) -> Result<u64> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    let mut n = 0;
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (0..chunk.len())
            .map(|i| format!("${}", binds.len() + 1 + i))
            .collect();
        let sql = format!("{sql_head} AND id IN ({})", marks.join(", "));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b.as_str());
        }
        for id in chunk {
            q = q.bind(*id);
        }
        n += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(n)
}

impl Store {
    /// Everything held about student `student_id` of `school_id`.
    pub async fn personal_data(
        &self,
        school_id: i64,
        student_id: i64,
        now: DateTime<Utc>,
    ) -> Result<PersonalData> {
        let student = self.student_in_school(school_id, student_id).await?;
        let erased_at: Option<String> =
            sqlx::query_scalar("SELECT erased_at FROM students WHERE id = $1")
                .bind(student_id)
                .fetch_one(self.reader())
                .await?;
        let mut conn = self.reader().acquire().await?;
        let mentions = mentions_of(&mut conn, school_id, &student).await?;
        let t = targets(&mut conn, school_id, student_id, &mentions).await?;
        drop(conn);

        let mut invoices = Vec::new();
        let mut page = Page {
            after: 0,
            limit: Page::MAX_LIMIT,
        };
        let filter = InvoiceFilter {
            student_id: Some(student_id),
            ..Default::default()
        };
        loop {
            let (items, next) = self.list_invoices(school_id, &filter, page).await?;
            for i in items {
                invoices.push(self.invoice_in_school(school_id, i.id).await?);
            }
            match next.and_then(|n| n.parse().ok()) {
                Some(after) => page.after = after,
                None => break,
            }
        }
        let mut payments = Vec::with_capacity(t.payments.len());
        for id in &t.payments {
            payments.push(self.payment(*id).await?);
        }
        let mut parent_links = Vec::new();
        let mut page = Page {
            after: 0,
            limit: Page::MAX_LIMIT,
        };
        loop {
            let (items, next) = self
                .list_parent_links(school_id, Some(student_id), page, now)
                .await?;
            parent_links.extend(items);
            match next.and_then(|n| n.parse().ok()) {
                Some(after) => page.after = after,
                None => break,
            }
        }
        let ids: Vec<i64> = t.deliveries.iter().copied().collect();
        let deliveries = self.provider_events_by_id(&ids).await?;
        let mut statement_lines = Vec::with_capacity(t.lines.len());
        for id in &t.lines {
            let r = sqlx::query(
                "SELECT id, statement_id, booked_at, amount, direction, bank_ref, memo, counterparty, payment_id FROM statement_lines WHERE id = $1",
            )
            .bind(*id)
            .fetch_one(self.reader())
            .await?;
            statement_lines.push(HeldStatementLine {
                id: r.try_get("id")?,
                statement_id: r.try_get("statement_id")?,
                booked_at: r.try_get("booked_at")?,
                amount: r.try_get("amount")?,
                direction: r.try_get("direction")?,
                bank_ref: r.try_get("bank_ref")?,
                memo: r.try_get("memo")?,
                counterparty: r.try_get("counterparty")?,
                payment_id: r.try_get("payment_id")?,
            });
        }
        let mut reads = Vec::new();
        let log = LogFilter {
            student_id: Some(student_id),
            actor: None,
            from: DateTime::UNIX_EPOCH,
            to: now + chrono::Duration::days(1),
        };
        let mut page = Page {
            after: 0,
            limit: Page::MAX_LIMIT,
        };
        loop {
            let (items, next) = self.processing_log(&log, page).await?;
            reads.extend(items);
            match next.and_then(|n| n.parse().ok()) {
                Some(after) => page.after = after,
                None => break,
            }
        }
        Ok(PersonalData {
            student,
            erased_at,
            invoices,
            payments,
            parent_links,
            deliveries,
            statement_lines,
            reads,
        })
    }

    /// Erases student `student_id` of `school_id`: see the module's documentation. A second
    /// erasure changes nothing and says so.
    pub async fn erase_student(
        &self,
        actor: &str,
        school_id: i64,
        student_id: i64,
        pseudonym: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Erasure> {
        let at = format_time(now);
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT id, school_id, student_code, full_name, class_name, family_key, created_at, updated_at, erased_at
             FROM students WHERE id = $1 AND school_id = $2",
        )
        .bind(student_id)
        .bind(school_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::not_found("student_not_found", "student"))?;
        if let Some(erased_at) = row.try_get::<Option<String>, _>("erased_at")? {
            return Ok(Erasure {
                student_id,
                pseudonym: pseudonym.to_string(),
                erased_at,
                already_erased: true,
                payments: 0,
                deliveries: 0,
                statement_lines: 0,
                parent_links: 0,
            });
        }
        let student = Student {
            id: student_id,
            school_id,
            student_code: row.try_get("student_code")?,
            full_name: row.try_get("full_name")?,
            class_name: row.try_get("class_name")?,
            family_key: row.try_get("family_key")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        };
        let mentions = mentions_of(&mut tx, school_id, &student).await?;
        let t = targets(&mut tx, school_id, student_id, &mentions).await?;
        let p = pseudonym.to_string();
        let payments = update_ids(
            &mut tx,
            "UPDATE payments SET payer_name = CASE WHEN payer_name IS NULL THEN NULL ELSE $1 END,
                memo = CASE WHEN memo IS NULL THEN NULL ELSE $1 END
             WHERE (payer_name IS NOT NULL OR memo IS NOT NULL) AND (payer_name <> $1 OR memo <> $1)",
            std::slice::from_ref(&p),
            &t.payments,
        )
        .await?;
        let mut deliveries = 0;
        for chunk in t.deliveries.iter().collect::<Vec<_>>().chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", 4 + i)).collect();
            let sql = format!(
                "UPDATE provider_events SET body = $1, query = '', redacted_at = $2, redacted_as = $3
                 WHERE redacted_at IS NULL AND id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql)
                .bind(p.as_bytes().to_vec())
                .bind(&at)
                .bind(&p);
            for id in chunk {
                q = q.bind(**id);
            }
            deliveries += q.execute(&mut *tx).await?.rows_affected();
        }
        let statement_lines = update_ids(
            &mut tx,
            "UPDATE statement_lines SET memo = $1,
                counterparty = CASE WHEN counterparty IS NULL THEN NULL ELSE $1 END
             WHERE (memo <> $1 OR counterparty <> $1)",
            std::slice::from_ref(&p),
            &t.lines,
        )
        .await?;
        // Their own links, and their family's when no other child of the school is left in it
        // (read before their family key goes).
        let links: BTreeSet<i64> = sqlx::query_scalar(
            "SELECT id FROM parent_links
             WHERE school_id = $1 AND redacted_at IS NULL
               AND (student_id = $2
                    OR (family_key = $3 AND NOT EXISTS (
                        SELECT 1 FROM students o WHERE o.school_id = $1 AND o.family_key = $3
                          AND o.id <> $2 AND o.erased_at IS NULL)))",
        )
        .bind(school_id)
        .bind(student_id)
        .bind(&student.family_key)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let parent_links = update_ids(
            &mut tx,
            "UPDATE parent_links SET label = $1, contact = NULL, redacted_at = $2,
                revoked_at = COALESCE(revoked_at, $2), revoked_by = COALESCE(revoked_by, $3)
             WHERE redacted_at IS NULL",
            &[p.clone(), at.clone(), actor.to_string()],
            &links,
        )
        .await?;
        sqlx::query(
            "UPDATE students SET full_name = $1, student_code = $1, family_key = NULL, erased_at = $2, updated_at = $2
             WHERE id = $3 AND school_id = $4",
        )
        .bind(&p)
        .bind(&at)
        .bind(student_id)
        .bind(school_id)
        .execute(&mut *tx)
        .await?;
        // Counts and the pseudonym only: the record outlives the data it is about.
        audit::record(
            &mut tx,
            &Chain::School(school_id),
            Entry {
                actor,
                action: "student.erase",
                entity: "student",
                entity_id: Some(student_id),
                details: json!({"reason": reason, "pseudonym": p, "payments": payments,
                    "deliveries": deliveries, "statement_lines": statement_lines,
                    "parent_links": links}),
            },
        )
        .await?;
        tx.commit().await?;
        // The engine's cached book holds names to read memos by: read it again.
        *self.books.slot(school_id).lock().await = None;
        Ok(Erasure {
            student_id,
            pseudonym: p,
            erased_at: at,
            already_erased: false,
            payments,
            deliveries,
            statement_lines,
            parent_links,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn erasure_rewrites_no_column_the_audit_chain_commits_to() {
        for c in crate::coverage::REGISTRY {
            for (table, column) in super::REDACTED {
                let named = c.columns.iter().any(|e| {
                    e.split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_')
                        .any(|w| w == *column)
                });
                assert!(!(c.table == *table && named), "{table}.{column} is covered");
            }
        }
    }
}
