//! Bulk invoice import from a spreadsheet (CSV, one row per invoice line), as pure code: the
//! file is parsed and checked against a snapshot of the school's data, and either every row is
//! good and a plan comes out, or every bad row is reported with its line number and reason.

use super::catalog::{check_cadence, FeeItem};
use super::invoice::{content_digest, draft, Draft, LineError, LineKind, LineRequest};
use super::money::Vnd;
use super::period::Period;
use super::text::{identifier, optional_text};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use utoipa::ToSchema;

/// Columns, in any order; `true` marks a required column. Unknown columns are refused so that a
/// misspelt optional column is not silently ignored.
pub const COLUMNS: &[(&str, bool)] = &[
    ("invoice_ref", true),
    ("student_code", true),
    ("student_name", false),
    ("class", false),
    ("family_key", false),
    ("period", true),
    ("due_date", true),
    ("item_code", true),
    ("line_type", false),
    ("amount", false),
    ("description", false),
    ("reduction_percent", false),
    ("policy_group", false),
    ("evidence_ref", false),
    ("cap_override_reason", false),
];

pub const MAX_ROWS: usize = 500_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// Line in the file, counting the header as line 1.
    pub line: u64,
    /// The column at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not UTF-8 text (line {line}); save it as \"CSV UTF-8\"")]
    Encoding { line: u64 },
    #[error("the header is wrong: {0}")]
    Header(String),
    #[error("the file has more than {MAX_ROWS} rows; split it")]
    TooManyRows,
    #[error("{} row problem(s); nothing was imported", .0.len())]
    Rows(Vec<RowError>),
}

/// One parsed row.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub invoice_ref: String,
    pub student_code: String,
    pub student_name: Option<String>,
    pub class: Option<String>,
    pub family_key: Option<String>,
    pub period: Period,
    pub due_date: NaiveDate,
    pub item_code: String,
    pub line_type: LineKind,
    pub amount: Option<Vnd>,
    pub description: Option<String>,
    pub reduction_percent: Option<Decimal>,
    pub policy_group: Option<String>,
    pub evidence_ref: Option<String>,
    pub cap_override_reason: Option<String>,
}

/// Accepts ISO dates and the day-first dates Vietnamese spreadsheets write.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(t, "%d/%m/%Y"))
        .ok()
        .filter(|d| (2000..=2099).contains(&chrono::Datelike::year(d)))
}

fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64
}

/// A parsed file: the good rows, and the problems of the others.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub errors: Vec<RowError>,
    /// Invoice references with a row that did not parse: their other rows are not checked
    /// further, so one typo does not also show up as a made-up problem of its invoice.
    pub broken_refs: HashSet<String>,
}

/// Parses the whole file; every problem of every row is reported. File-level problems (encoding,
/// header) stop at once.
pub fn parse_csv(bytes: &[u8]) -> Result<Parsed, ImportError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(ImportError::Encoding { line: 1 });
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(ImportError::Encoding {
                line: line_of_offset(bytes, e.valid_up_to()),
            })
        }
    };
    // Excel's "CSV UTF-8" starts with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ImportError::Empty);
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .clone();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let Some((known, _)) = COLUMNS.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) else {
            return Err(ImportError::Header(format!(
                "unknown column {:?}; the columns are {}",
                truncate(name, 40),
                COLUMNS
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if index.insert(known, i).is_some() {
            return Err(ImportError::Header(format!("column {known} appears twice")));
        }
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .filter(|(c, req)| *req && !index.contains_key(c))
        .map(|(c, _)| *c)
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Header(format!(
            "missing required column(s): {}",
            missing.join(", ")
        )));
    }

    let mut parsed = Parsed::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                parsed.errors.push(RowError {
                    line,
                    column: None,
                    message: "unreadable CSV row".into(),
                });
                continue;
            }
        }
        if parsed.rows.len() + parsed.errors.len() >= MAX_ROWS {
            return Err(ImportError::TooManyRows);
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if let Some(r) = index.get("invoice_ref").and_then(|&i| record.get(i)) {
            // Remember the reference now, in case the row turns out bad.
            if record.len() != header.len() || parse_row(line, &record, &index).is_err() {
                parsed.broken_refs.insert(r.trim().to_ascii_uppercase());
            }
        }
        if record.len() != header.len() {
            parsed.errors.push(RowError {
                line,
                column: None,
                message: format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    header.len()
                ),
            });
            continue;
        }
        match parse_row(line, &record, &index) {
            Ok(row) => parsed.rows.push(row),
            Err(mut e) => parsed.errors.append(&mut e),
        }
    }
    if parsed.rows.is_empty() && parsed.errors.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(parsed)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn parse_row(
    line: u64,
    record: &csv::StringRecord,
    index: &HashMap<&str, usize>,
) -> Result<Row, Vec<RowError>> {
    let mut errors = Vec::new();
    let get = |col: &str| index.get(col).and_then(|&i| record.get(i)).unwrap_or("");
    let mut err = |col: &str, message: String| {
        errors.push(RowError {
            line,
            column: Some(col.to_string()),
            message,
        });
    };

    let invoice_ref = identifier(get("invoice_ref"), "invoice_ref", 64)
        .map_err(|e| err("invoice_ref", e.to_string()))
        .ok();
    let student_code = identifier(get("student_code"), "student_code", 32)
        .map_err(|e| err("student_code", e.to_string()))
        .ok();
    let student_name = optional_text(Some(get("student_name")), "student_name", 200)
        .map_err(|e| err("student_name", e.to_string()))
        .ok();
    let class = optional_text(Some(get("class")), "class", 32)
        .map_err(|e| err("class", e.to_string()))
        .ok();
    let family_key = match get("family_key") {
        "" => Some(None),
        t => identifier(t, "family_key", 64)
            .map(Some)
            .map_err(|e| err("family_key", e.to_string()))
            .ok(),
    };
    let period = Period::parse(get("period"))
        .map_err(|e| err("period", e.to_string()))
        .ok();
    let due_date = parse_date(get("due_date"));
    if due_date.is_none() {
        err(
            "due_date",
            "a due date is written YYYY-MM-DD or DD/MM/YYYY".into(),
        );
    }
    let item_code = identifier(get("item_code"), "item_code", 32)
        .map_err(|e| err("item_code", e.to_string()))
        .ok();
    let line_type = match get("line_type").to_ascii_lowercase().as_str() {
        "" | "charge" => Some(LineKind::Charge),
        "reduction" => Some(LineKind::Reduction),
        _ => {
            err("line_type", "line_type is charge or reduction".into());
            None
        }
    };
    let amount = match get("amount") {
        "" => Some(None),
        t => Vnd::parse_text(t)
            .map(Some)
            .map_err(|e| err("amount", format!("amount {e}")))
            .ok(),
    };
    let reduction_percent = match get("reduction_percent").trim_end_matches('%').trim() {
        "" => Some(None),
        t => Decimal::from_str(&t.replace(',', "."))
            .map(Some)
            .map_err(|_| {
                err(
                    "reduction_percent",
                    "reduction_percent is a number such as 50 or 70".into(),
                )
            })
            .ok(),
    };
    let opt = |col: &'static str, max: usize, errs: &mut dyn FnMut(&str, String)| {
        optional_text(Some(get(col)), col, max)
            .map_err(|e| errs(col, e.to_string()))
            .ok()
            .flatten()
    };
    let description = opt("description", 500, &mut err);
    let policy_group = opt("policy_group", 500, &mut err);
    let evidence_ref = opt("evidence_ref", 500, &mut err);
    let cap_override_reason = opt("cap_override_reason", 500, &mut err);

    match line_type {
        Some(LineKind::Charge) => {
            if amount == Some(None) {
                err("amount", "a charge needs an amount".into());
            }
            if reduction_percent.is_some_and(|p| p.is_some()) {
                err(
                    "reduction_percent",
                    "a charge has no reduction_percent; put the reduction on a row of its own"
                        .into(),
                );
            }
        }
        Some(LineKind::Reduction) => {
            if reduction_percent == Some(None) {
                err(
                    "reduction_percent",
                    "a reduction needs reduction_percent".into(),
                );
            }
            if amount.is_some_and(|a| a.is_some()) {
                err(
                    "amount",
                    "a reduction's amount is computed from reduction_percent; leave amount empty"
                        .into(),
                );
            }
        }
        None => {}
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Every field parsed (errors is empty), so each is Some; `?` keeps this free of panics.
    let build = || {
        Some(Row {
            line,
            invoice_ref: invoice_ref?,
            student_code: student_code?,
            student_name: student_name?,
            class: class?,
            family_key: family_key?,
            period: period?,
            due_date: due_date?,
            item_code: item_code?,
            line_type: line_type?,
            amount: amount?,
            description,
            reduction_percent: reduction_percent?,
            policy_group,
            evidence_ref,
            cap_override_reason,
        })
    };
    build().ok_or_else(|| {
        vec![RowError {
            line,
            column: None,
            message: "unreadable row".into(),
        }]
    })
}

/// What the import needs to know of a student already on file.
#[derive(Debug, Clone)]
pub struct KnownStudent {
    pub id: i64,
    pub full_name: String,
    pub class_name: String,
    pub family_key: Option<String>,
}

/// A student the import creates or changes.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentUpsert {
    pub existing_id: Option<i64>,
    pub student_code: String,
    pub full_name: String,
    pub class_name: String,
    pub family_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PlannedInvoice {
    pub invoice_ref: String,
    pub student_code: String,
    pub period: Period,
    pub due_date: NaiveDate,
    pub draft: Draft,
    pub digest: String,
    pub rows: usize,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub students: Vec<StudentUpsert>,
    pub invoices: Vec<PlannedInvoice>,
    /// Invoices of the file already issued with identical content (a re-import).
    pub unchanged: usize,
    pub rows: usize,
}

/// The school's data the plan is checked against.
pub struct Snapshot<'a> {
    /// Catalog items the school may bill, by upper-case code.
    pub catalog: &'a HashMap<String, FeeItem>,
    pub students: &'a HashMap<String, KnownStudent>,
    /// Content digests of invoices already issued, by external reference.
    pub existing: &'a HashMap<String, String>,
    /// Periods already billed, by (student code, item id), from issued invoices not voided.
    pub billed: &'a HashMap<(String, i64), Vec<Period>>,
}

/// Groups rows into invoices and checks everything; all or nothing. The problems found while
/// parsing are reported together with those found here.
pub fn plan(parsed: Parsed, snap: &Snapshot<'_>) -> Result<Plan, ImportError> {
    let Parsed {
        rows,
        mut errors,
        broken_refs,
    } = parsed;
    let row_count = rows.len() + errors.len();
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| !broken_refs.contains(&r.invoice_ref))
        .collect();
    // Group by invoice_ref, keeping file order.
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<Row>> = HashMap::new();
    for row in rows {
        if !groups.contains_key(&row.invoice_ref) {
            order.push(row.invoice_ref.clone());
        }
        groups.entry(row.invoice_ref.clone()).or_default().push(row);
    }

    let mut students: HashMap<String, StudentUpsert> = HashMap::new();
    let mut billed_in_file: HashMap<(String, i64), Vec<Period>> = HashMap::new();
    let mut out = Plan {
        rows: row_count,
        ..Plan::default()
    };

    for invoice_ref in order {
        let group = groups.remove(&invoice_ref).unwrap_or_default();
        let first = &group[0];
        let mut group_ok = true;
        for r in &group[1..] {
            for (col, same) in [
                ("student_code", r.student_code == first.student_code),
                ("period", r.period == first.period),
                ("due_date", r.due_date == first.due_date),
            ] {
                if !same {
                    group_ok = false;
                    errors.push(RowError {
                        line: r.line,
                        column: Some(col.into()),
                        message: format!(
                            "differs from line {} of the same invoice_ref {}",
                            first.line, invoice_ref
                        ),
                    });
                }
            }
        }
        // Student: known, or created from this file's name and class.
        for r in &group {
            if let Err(message) = note_student(r, snap, &mut students) {
                group_ok = false;
                errors.push(RowError {
                    line: r.line,
                    column: Some("student_name".into()),
                    message,
                });
            }
        }
        let mut requests = Vec::with_capacity(group.len());
        for r in &group {
            let item = snap.catalog.get(&r.item_code);
            match (r.line_type, item) {
                (LineKind::Charge, None) => {
                    group_ok = false;
                    errors.push(RowError {
                        line: r.line,
                        column: Some("item_code".into()),
                        message: format!("item {} is not in the school's catalog", r.item_code),
                    });
                }
                (LineKind::Charge, Some(item)) => requests.push(LineRequest::Charge {
                    item: item.clone(),
                    amount: r.amount.unwrap_or_default(),
                    description: r.description.clone(),
                    cap_override_reason: r.cap_override_reason.clone(),
                    billed_as_mandatory: None,
                }),
                (LineKind::Reduction, _) => requests.push(LineRequest::Reduction {
                    item_code: r.item_code.clone(),
                    percent: r.reduction_percent.unwrap_or_default(),
                    policy_group: r.policy_group.clone().unwrap_or_default(),
                    evidence_ref: r.evidence_ref.clone().unwrap_or_default(),
                }),
            }
        }
        if !group_ok {
            continue;
        }
        let d = match draft(requests) {
            Ok(d) => d,
            Err(e) => {
                let line = line_error_index(&e)
                    .and_then(|i| group.get(i - 1))
                    .unwrap_or(first)
                    .line;
                errors.push(RowError {
                    line,
                    column: None,
                    message: format!("invoice {invoice_ref}: {}", strip_line(&e)),
                });
                continue;
            }
        };
        let digest = content_digest(
            &first.student_code,
            &first.period.to_string(),
            &first.due_date.to_string(),
            &d,
        );
        if let Some(existing) = snap.existing.get(&invoice_ref) {
            if *existing == digest {
                out.unchanged += 1;
            } else {
                errors.push(RowError {
                    line: first.line,
                    column: Some("invoice_ref".into()),
                    message: format!(
                        "invoice {invoice_ref} was already issued with different content; an issued invoice is never edited: void it and import the new one under another invoice_ref"
                    ),
                });
            }
            continue;
        }
        // Cadence against what is on file and what this file already bills.
        let mut cadence_ok = true;
        for (r, l) in group.iter().zip(&d.lines) {
            if l.kind != LineKind::Charge {
                continue;
            }
            let key = (first.student_code.clone(), l.fee_item_id);
            let mut history: Vec<Period> = snap.billed.get(&key).cloned().unwrap_or_default();
            history.extend(billed_in_file.get(&key).into_iter().flatten().copied());
            let item = &snap.catalog[&l.item_code];
            if let Err(e) = check_cadence(item, first.period, &history) {
                cadence_ok = false;
                errors.push(RowError {
                    line: r.line,
                    column: Some("item_code".into()),
                    message: e.to_string(),
                });
            }
        }
        if !cadence_ok {
            continue;
        }
        for l in d.lines.iter().filter(|l| l.kind == LineKind::Charge) {
            billed_in_file
                .entry((first.student_code.clone(), l.fee_item_id))
                .or_default()
                .push(first.period);
        }
        out.invoices.push(PlannedInvoice {
            invoice_ref,
            student_code: first.student_code.clone(),
            period: first.period,
            due_date: first.due_date,
            rows: group.len(),
            draft: d,
            digest,
        });
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(ImportError::Rows(errors));
    }
    out.students = changed_students(students, snap);
    Ok(out)
}

fn note_student(
    r: &Row,
    snap: &Snapshot<'_>,
    described: &mut HashMap<String, StudentUpsert>,
) -> Result<(), String> {
    let desired = match snap.students.get(&r.student_code) {
        Some(known) => StudentUpsert {
            existing_id: Some(known.id),
            student_code: r.student_code.clone(),
            full_name: r
                .student_name
                .clone()
                .unwrap_or_else(|| known.full_name.clone()),
            class_name: r.class.clone().unwrap_or_else(|| known.class_name.clone()),
            family_key: r.family_key.clone().or_else(|| known.family_key.clone()),
        },
        None => {
            let (Some(full_name), Some(class_name)) = (r.student_name.clone(), r.class.clone())
            else {
                return Err(format!(
                    "student {} is not on file: give student_name and class to create them",
                    r.student_code
                ));
            };
            StudentUpsert {
                existing_id: None,
                student_code: r.student_code.clone(),
                full_name,
                class_name,
                family_key: r.family_key.clone(),
            }
        }
    };
    match described.get(&r.student_code) {
        // Two rows of one file must describe a student the same way.
        Some(prev) if *prev != desired => Err(format!(
            "student {} is described differently on another line of this file",
            r.student_code
        )),
        Some(_) => Ok(()),
        None => {
            described.insert(r.student_code.clone(), desired);
            Ok(())
        }
    }
}

/// The students a plan must write: new ones, and known ones whose name, class or family changed.
fn changed_students(
    described: HashMap<String, StudentUpsert>,
    snap: &Snapshot<'_>,
) -> Vec<StudentUpsert> {
    let mut out: Vec<StudentUpsert> = described
        .into_values()
        .filter(|s| match snap.students.get(&s.student_code) {
            None => true,
            Some(k) => {
                k.full_name != s.full_name
                    || k.class_name != s.class_name
                    || k.family_key != s.family_key
            }
        })
        .collect();
    out.sort_by(|a, b| a.student_code.cmp(&b.student_code));
    out
}

fn line_error_index(e: &LineError) -> Option<usize> {
    match e {
        LineError::NotPositive { line }
        | LineError::DuplicateItem { line, .. }
        | LineError::AboveCap { line, .. }
        | LineError::BadPercent { line }
        | LineError::MissingEvidence { line }
        | LineError::NothingToReduce { line, .. }
        | LineError::OverReduced { line, .. }
        | LineError::TooLong { line, .. } => Some(*line),
        LineError::NoCharge | LineError::TooManyLines(_) => None,
    }
}

/// The draft numbers lines within the invoice; in a file the row's own line number says where.
fn strip_line(e: &LineError) -> String {
    let s = e.to_string();
    match s.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
        _ => s,
    }
}
