//! The chain covers the ledger: every write of a ledger row commits, in its audit record, to a
//! digest of the row's content, so verification finds a row inserted, changed or deleted
//! behind the service's back.
//!
//! A **unit** is what one digest covers: the rows of a table with one key (`payments` by id,
//! `allocations` by payment, `invoice_lines` by invoice, `day_closes` by school). Each record
//! that writes to a unit carries `"covers": {"<table>": {"<key>": "<digest>"}}` in its details,
//! the digest read back from the database in the same transaction after the write (or, where the
//! writer knows every value it wrote, computed from them with [`content`]); the latest
//! record (by time) that names a unit is what the unit must match.
//!
//! The digest covers only columns without personal data (no payer names, memos, free-text
//! reasons or labels), so an erasure that pseudonymises those leaves every digest, and so
//! every audit record, valid. A column with personal data is never added here.
//!
//! Adding a table is one line in [`REGISTRY`], and a `Unit` in the records that write it.

use crate::audit::{Problem, ProblemKind};
use crate::error::Result;
use crate::store::{Store, Tx};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A covered table. Every one has a `school_id` column (NULL for installation-wide rows),
/// which says whose chain a problem is reported on.
#[derive(Debug)]
pub struct Covered {
    pub table: &'static str,
    /// The integer column whose value names a unit.
    pub key: &'static str,
    /// Which rows are ledger rows (SQL condition); the others are not covered.
    pub filter: &'static str,
    /// The columns committed to, as SQL expressions both backends render alike (booleans as
    /// 0/1). Never a column with personal data.
    pub columns: &'static [&'static str],
}

macro_rules! covered {
    ($($name:ident = $table:literal by $key:literal where $filter:literal: [$($col:literal),+ $(,)?];)+) => {
        $(pub const $name: &Covered = &Covered { table: $table, key: $key, filter: $filter, columns: &[$($col),+] };)+
        /// Every covered table.
        pub const REGISTRY: &[&Covered] = &[$($name),+];
    };
}

covered! {
    PAYMENTS = "payments" by "id" where "1 = 1":
        ["school_id", "channel", "provider", "provider_ref", "bank_ref", "amount", "received_at", "recorded_at",
         "recorded_by", "receipt_no", "reverses_payment_id"];
    PAYMENT_FEES = "payment_fees" by "payment_id" where "1 = 1":
        ["school_id", "charged_by", "kind", "basis", "amount", "borne_by", "predicted_amount", "reported_amount",
         "schedule_id", "CASE WHEN needs_review THEN 1 ELSE 0 END"];
    ALLOCATIONS = "allocations" by "payment_id" where "1 = 1":
        ["school_id", "invoice_id", "amount", "method", "created_at", "created_by"];
    REFUNDS = "refunds" by "payment_id" where "1 = 1":
        ["school_id", "amount", "created_at", "created_by"];
    INVOICES = "invoices" by "id" where "1 = 1":
        ["school_id", "student_id", "payment_code", "external_ref", "period", "due_date", "total", "content_digest",
         "replaces_invoice_id", "import_batch_id", "issued_at", "issued_by", "voided_at", "voided_by"];
    INVOICE_LINES = "invoice_lines" by "invoice_id" where "1 = 1":
        ["school_id", "line_no", "kind", "fee_item_id", "description", "amount", "cap_per_period",
         "CASE WHEN above_cap THEN 1 ELSE 0 END", "reduction_percent", "policy_group", "reduces_line_no",
         "CASE WHEN billed_as_mandatory THEN 1 ELSE 0 END"];
    IMPORT_BATCHES = "import_batches" by "id" where "1 = 1":
        ["school_id", "file_sha256", "rows_read", "invoices_created", "invoices_unchanged", "created_at", "created_by"];
    FEE_SCHEDULES = "fee_schedules" by "id" where "1 = 1":
        ["provider", "channel", "school_id", "effective_from", "effective_to", "percent", "fixed_fee", "min_fee",
         "max_fee", "bearer", "created_at", "created_by"];
    // Manual decisions: the review queue's resolutions and the pairs dismissed for good (the
    // engine's open items are its working state, not the ledger).
    DECISIONS = "exceptions" by "payment_id" where "status <> 'open'":
        ["school_id", "status", "resolved_at", "resolved_by"];
    DISMISSED_PAIRS = "dismissed_pairs" by "payment_id" where "1 = 1":
        ["school_id", "invoice_id", "dismissed_at", "dismissed_by"];
    STATEMENTS = "statements" by "id" where "1 = 1":
        ["school_id", "account_id", "format", "file_sha256", "lines", "imported_at", "imported_by"];
    STATEMENT_LINES = "statement_lines" by "statement_id" where "1 = 1":
        ["school_id", "account_id", "line_key", "booked_at", "amount", "direction", "bank_ref", "payment_id", "matched_by"];
    DAY_CLOSES = "day_closes" by "school_id" where "1 = 1":
        ["day", "summary", "closed_at", "closed_by"];
    API_TOKENS = "api_tokens" by "id" where "1 = 1":
        ["token_hash", "role", "school_id", "department_id", "created_at", "created_by", "revoked_at",
         "CASE WHEN configured THEN 1 ELSE 0 END"];
    SCHOOL_ACCOUNTS = "school_accounts" by "id" where "1 = 1":
        ["school_id", "bank_bin", "account_number", "account_name", "state", "replaces_account_id", "created_at",
         "proposed_by", "approved_by", "approved_at", "rejected_by", "rejected_at", "retired_by", "retired_at"];
}

/// One unit a record commits to.
#[derive(Debug, Clone, Copy)]
pub struct Unit {
    pub covered: &'static Covered,
    pub key: i64,
}

impl Unit {
    pub fn new(covered: &'static Covered, key: i64) -> Self {
        Self { covered, key }
    }
}

const NULL: &str = "\u{2400}";
const SEP: &str = "\u{241f}";

/// `school_id` (or NULL) and the canonical content of a row, as one SQL text.
fn content_sql(c: &Covered) -> String {
    c.columns
        .iter()
        .map(|col| format!("COALESCE(CAST({col} AS TEXT), '{NULL}')"))
        .collect::<Vec<_>>()
        .join(&format!(" || '{SEP}' || "))
}

/// One cell of a row as written, for [`content`].
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    /// A boolean, rendered 0/1 as the `CASE` columns render it.
    Bool(bool),
}

/// A row's canonical content from the values just written, exactly as [`content_sql`] renders
/// it in the database: a writer that knows its rows commits to them without reading them back.
/// `cells` follow the order of the table's `columns`.
pub fn content(cells: &[Cell<'_>]) -> String {
    let mut out = String::new();
    for (k, cell) in cells.iter().enumerate() {
        if k > 0 {
            out.push_str(SEP);
        }
        match cell {
            Cell::Int(Some(v)) => out.push_str(&v.to_string()),
            Cell::Text(Some(t)) => out.push_str(t),
            Cell::Int(None) | Cell::Text(None) => out.push_str(NULL),
            Cell::Bool(b) => out.push(if *b { '1' } else { '0' }),
        }
    }
    out
}

/// Each unit's digest from the rows written to it ([`content`] of each; a unit with no rows
/// has an empty list): what [`digests`] would read back.
pub fn digests_of(
    rows: HashMap<(&'static str, i64), Vec<String>>,
) -> HashMap<(&'static str, i64), String> {
    rows.into_iter().map(|(k, r)| (k, digest(r))).collect()
}

/// The digest of a unit's rows (their canonical contents, in any order): 128 bits, hex.
fn digest(mut rows: Vec<String>) -> String {
    rows.sort_unstable();
    let mut h = Sha256::new();
    for r in &rows {
        h.update(r.as_bytes());
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..16])
}

/// Reads back `units` inside `tx` and returns what a record commits to:
/// `{"<table>": {"<key>": "<digest>"}}`.
pub async fn commit(tx: &mut Tx, units: &[Unit]) -> Result<serde_json::Value> {
    Ok(rows_for(&digests(tx, units).await?, units))
}

/// Each unit's digest, read back inside `tx`: one query for all the tables, however many units
/// (a round trip per table would cost every batch of deliveries several).
pub async fn digests(tx: &mut Tx, units: &[Unit]) -> Result<HashMap<(&'static str, i64), String>> {
    let mut by_table: BTreeMap<&'static str, (&'static Covered, Vec<i64>)> = BTreeMap::new();
    for u in units {
        let e = by_table
            .entry(u.covered.table)
            .or_insert((u.covered, Vec::new()));
        e.1.push(u.key);
    }
    let mut rows: HashMap<(&'static str, i64), Vec<String>> = HashMap::new();
    for (table, (_, keys)) in by_table.iter_mut() {
        keys.sort_unstable();
        keys.dedup();
        rows.extend(keys.iter().map(|k| ((*table, *k), Vec::new())));
    }
    // At most 500 keys of each table per statement, so no statement's parameters grow without
    // bound.
    const CHUNK: usize = 500;
    let rounds = by_table
        .values()
        .map(|(_, keys)| keys.len().div_ceil(CHUNK))
        .max()
        .unwrap_or(0);
    let tables: Vec<&'static str> = by_table.keys().copied().collect();
    for round in 0..rounds {
        let mut parts = Vec::new();
        let mut binds: Vec<i64> = Vec::new();
        for (t, (c, keys)) in by_table.values().enumerate() {
            let chunk = keys.chunks(CHUNK).nth(round).unwrap_or_default();
            if chunk.is_empty() {
                continue;
            }
            let list = (binds.len() + 1..=binds.len() + chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(",");
            binds.extend_from_slice(chunk);
            parts.push(format!(
                "SELECT {t} AS t, {key} AS k, {content} AS c FROM {table} WHERE {key} IN ({list}) AND ({filter})",
                key = c.key,
                content = content_sql(c),
                table = c.table,
                filter = c.filter
            ));
        }
        let sql = parts.join(" UNION ALL ");
        let mut q = sqlx::query(&sql);
        for k in &binds {
            q = q.bind(*k);
        }
        for r in q.fetch_all(&mut **tx).await? {
            let t: i32 = r.try_get("t")?;
            let table = usize::try_from(t)
                .ok()
                .and_then(|t| tables.get(t))
                .ok_or_else(|| crate::error::Error::Internal("coverage: unknown table".into()))?;
            let k: i64 = r.try_get("k")?;
            rows.entry((table, k)).or_default().push(r.try_get("c")?);
        }
    }
    Ok(rows.into_iter().map(|(k, r)| (k, digest(r))).collect())
}

/// The part of `digests` that `units` name, as a record's `covers`.
pub fn rows_for(
    digests: &HashMap<(&'static str, i64), String>,
    units: &[Unit],
) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for u in units {
        if let Some(d) = digests.get(&(u.covered.table, u.key)) {
            let t = out
                .entry(u.covered.table)
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let serde_json::Value::Object(m) = t {
                m.insert(u.key.to_string(), serde_json::Value::String(d.clone()));
            }
        }
    }
    serde_json::Value::Object(out)
}

/// Once per installation: a record on the `system` chain committing to every ledger row that
/// exists, so rows written before coverage existed (before migration 0013) are covered from
/// here on. It vouches for the ledger as it is found, so it runs before anything else at the
/// first start after the upgrade. Returns the number of units covered when it wrote the record.
pub async fn baseline(store: &Store) -> Result<Option<usize>> {
    let done: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM audit_log WHERE chain = 'system' AND action = 'audit.coverage_baseline' LIMIT 1",
    )
    .fetch_optional(store.reader())
    .await?;
    if done.is_some() {
        return Ok(None);
    }
    let mut tx = store.begin().await?;
    let mut units = Vec::new();
    for c in REGISTRY {
        let keys: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT {key} FROM {table} WHERE {filter}",
            key = c.key,
            table = c.table,
            filter = c.filter
        ))
        .fetch_all(&mut *tx)
        .await?;
        units.extend(keys.into_iter().map(|k| Unit::new(c, k)));
    }
    crate::audit::record_covering(
        &mut tx,
        &crate::audit::Chain::System,
        crate::audit::Entry {
            actor: "startup",
            action: "audit.coverage_baseline",
            entity: "audit_log",
            entity_id: None,
            details: serde_json::json!({"units": units.len()}),
        },
        &units,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(units.len()))
}

/// Adds `rows` (from [`commit`]) to a record's details, as `covers`.
pub fn attach(details: &mut serde_json::Value, rows: serde_json::Value) {
    if let serde_json::Value::Object(m) = details {
        m.insert("covers".into(), rows);
    }
}

/// What the audit records commit to, gathered during verification.
#[derive(Default)]
pub struct Coverage {
    /// (table, key) → (time of the record, digest, chain): the latest commitment wins.
    committed: HashMap<(&'static str, i64), (String, String, String)>,
}

impl crate::audit::Collector for Coverage {
    fn record(&mut self, chain: &str, _seq: i64, at: &str, details: &str) {
        if !details.contains("\"covers\"") {
            return;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(details) else {
            return;
        };
        let Some(rows) = v.get("covers").and_then(|r| r.as_object()) else {
            return;
        };
        for (table, units) in rows {
            let Some(c) = REGISTRY.iter().find(|c| c.table == table) else {
                continue;
            };
            let Some(units) = units.as_object() else {
                continue;
            };
            for (k, d) in units {
                let (Ok(k), Some(d)) = (k.parse::<i64>(), d.as_str()) else {
                    continue;
                };
                let slot = self.committed.entry((c.table, k)).or_default();
                if at >= slot.0.as_str() {
                    *slot = (at.to_string(), d.to_string(), chain.to_string());
                }
            }
        }
    }
}

impl Coverage {
    /// Compares every covered table with what the records commit to. Problems come back with
    /// the chain they belong to (the school's, or `system`).
    pub async fn check(&self, store: &Store) -> Result<Vec<(String, Problem)>> {
        let mut problems = Vec::new();
        let empty = digest(Vec::new());
        for c in REGISTRY {
            let sql = format!(
                "SELECT {key} AS k, CAST(school_id AS TEXT) AS s, {content} AS c FROM {table} WHERE {filter} ORDER BY {key}",
                key = c.key,
                content = content_sql(c),
                table = c.table,
                filter = c.filter,
            );
            let mut seen: HashSet<i64> = HashSet::new();
            let mut stream = sqlx::query(&sql).fetch(store.reader());
            let flush = |k: i64,
                         s: Option<String>,
                         rows: Vec<String>,
                         problems: &mut Vec<(String, Problem)>| {
                let chain = s
                    .map(|s| format!("school:{s}"))
                    .unwrap_or_else(|| "system".into());
                let d = digest(rows);
                match self.committed.get(&(c.table, k)) {
                    None => problems.push((chain, Problem {
                        kind: ProblemKind::Uncovered,
                        seq: None,
                        message: format!("{} {} {k} has no audit record: it was written behind the service's back", c.table, c.key),
                    })),
                    Some((_, want, _)) if *want != d => problems.push((chain, Problem {
                        kind: ProblemKind::RowChanged,
                        seq: None,
                        message: format!("{} {} {k} differs from what its audit record committed to: it was changed behind the service's back", c.table, c.key),
                    })),
                    _ => {}
                }
            };
            let mut current: Option<(i64, Option<String>, Vec<String>)> = None;
            while let Some(r) = stream.try_next().await? {
                let k: i64 = r.try_get("k")?;
                let s: Option<String> = r.try_get("s")?;
                let content: String = r.try_get("c")?;
                match &mut current {
                    Some((ck, _, rows)) if *ck == k => rows.push(content),
                    _ => {
                        if let Some((ck, cs, rows)) = current.take() {
                            seen.insert(ck);
                            flush(ck, cs, rows, &mut problems);
                        }
                        current = Some((k, s, vec![content]));
                    }
                }
            }
            if let Some((ck, cs, rows)) = current.take() {
                seen.insert(ck);
                flush(ck, cs, rows, &mut problems);
            }
            for ((table, k), (_, d, chain)) in &self.committed {
                if *table == c.table && !seen.contains(k) && *d != empty {
                    problems.push((
                        chain.clone(),
                        Problem {
                            kind: ProblemKind::RowMissing,
                            seq: None,
                            message: format!("{table} {} {k} has an audit record but no rows: they were deleted behind the service's back", c.key),
                        },
                    ));
                }
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_digest_ignores_row_order_and_sees_every_column() {
        let a = digest(vec!["1␟x".into(), "2␟y".into()]);
        assert_eq!(a, digest(vec!["2␟y".into(), "1␟x".into()]));
        assert_ne!(a, digest(vec!["1␟x".into(), "2␟z".into()]));
        assert_ne!(a, digest(vec!["1␟x".into()]));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn every_covered_table_is_named_once() {
        let mut names: Vec<_> = REGISTRY.iter().map(|c| c.table).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        assert!(content_sql(PAYMENTS).contains("COALESCE(CAST(amount AS TEXT)"));
    }
}
