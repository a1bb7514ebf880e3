//! Bank statements as banks export them, parsed into normalised lines. Pure: bytes in, lines
//! out. The caller stores the lines, checks their dates against its clock and decides what a
//! line repeated within one file means.
//!
//! Two families of files:
//! - CSV exports from internet banking, laid out as a [`Preset`] or a custom [`ColumnMapping`];
//!   preamble rows before the header are skipped (and read for the account number);
//! - ISO 20022 camt.053 XML (`BkToCstmrStmt`, versions 001.02 to 001.08), read as a stream so a
//!   file of 100,000 entries needs little memory.
//!
//! Every refusal is a [`StatementError`] with a stable [`code`](StatementError::code) and a
//! message naming the line and column, fit for an HTTP 4xx answer.

use crate::domain::money::{AmountError, Vnd, MAX_DONG};
use crate::domain::time::{day_start, local_to_utc};
use crate::recon::memo::fold;
use chrono::format::StrftimeItems;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// Preamble rows searched for the header before giving up: bank exports have under a dozen.
const MAX_PREAMBLE_ROWS: usize = 100;
/// Values quoted in error messages are cut here, so a hostile cell cannot bloat a response.
const MAX_QUOTED_CHARS: usize = 60;
/// camt.053 nests about ten levels deep; anything far deeper is not a statement.
const MAX_XML_DEPTH: usize = 64;
const CAMT053_NS: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.";
const CAMT053_VERSIONS: std::ops::RangeInclusive<u32> = 2..=8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Credit,
    Debit,
}

/// A transaction read from a bank-account watcher's transaction list: a statement line known
/// by the watcher's own transaction id, the key its notifications carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The sender's transaction id, as its notifications carry it.
    pub txn_id: String,
    /// SePay's `code`: the payment code it extracted from the memo.
    pub order_ref: Option<String>,
    pub line: StatementLine,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    /// 1-based: the CSV line the row starts on (preamble and header included), or the index of
    /// the `Ntry` in a camt.053 file.
    pub line_no: usize,
    pub booked_at: DateTime<Utc>,
    /// Always positive; the sign is in `direction`.
    pub amount: Vnd,
    pub direction: Direction,
    pub bank_ref: Option<String>,
    pub memo: String,
    pub counterparty: Option<String>,
    pub balance_after: Option<Vnd>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub account: Option<String>,
    pub currency: String,
    /// In file order; a line repeated in the file is kept.
    pub lines: Vec<StatementLine>,
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv(Preset),
    Camt053,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Vietcombank,
    Techcombank,
    Custom,
}

/// Which CSV columns hold what, named as the header row prints them. Names match ignoring case,
/// extra spaces, Unicode composition, a trailing note in parentheses (`Số dư (VND)`) and a
/// translation after a line break or slash (`Nợ/Debit`). Every named column must exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    pub date: String,
    /// A separate time-of-day column; without one, a date-only cell means 00:00 local time.
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub credit: Option<String>,
    #[serde(default)]
    pub debit: Option<String>,
    /// A single signed column (negative = debit), instead of `credit`/`debit`.
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    pub memo: String,
    #[serde(default)]
    pub counterparty: Option<String>,
    #[serde(default)]
    pub balance: Option<String>,
    /// A chrono/strftime format such as `%d/%m/%Y`; a cell may also carry a time after the date.
    pub date_format: String,
    /// Text of a header cell: rows before the first row holding it are the bank's preamble.
    pub header_row_contains: String,
}

impl Preset {
    /// The preset's layout. `Custom` gives a template to edit: English headers, a signed amount.
    pub fn mapping(&self) -> ColumnMapping {
        let s = |t: &str| t.to_owned();
        match self {
            Preset::Vietcombank => ColumnMapping {
                date: s("Ngày giao dịch"),
                time: None,
                credit: Some(s("Số tiền ghi có")),
                debit: Some(s("Số tiền ghi nợ")),
                amount: None,
                reference: Some(s("Số tham chiếu")),
                memo: s("Mô tả"),
                counterparty: None,
                balance: Some(s("Số dư")),
                date_format: s("%d/%m/%Y"),
                header_row_contains: s("Ngày giao dịch"),
            },
            Preset::Techcombank => ColumnMapping {
                date: s("Ngày giao dịch"),
                time: None,
                credit: Some(s("Có")),
                debit: Some(s("Nợ")),
                amount: None,
                reference: Some(s("Mã giao dịch")),
                memo: s("Diễn giải"),
                counterparty: Some(s("Đối tác")),
                balance: Some(s("Số dư")),
                date_format: s("%d/%m/%Y"),
                header_row_contains: s("Ngày giao dịch"),
            },
            Preset::Custom => ColumnMapping {
                date: s("Date"),
                time: None,
                credit: None,
                debit: None,
                amount: Some(s("Amount")),
                reference: Some(s("Reference")),
                memo: s("Description"),
                counterparty: None,
                balance: Some(s("Balance")),
                date_format: s("%d/%m/%Y"),
                header_row_contains: s("Date"),
            },
        }
    }

    /// `vietcombank`/`vcb`, `techcombank`/`tcb`, `custom`, in any case.
    pub fn from_name(name: &str) -> Option<Preset> {
        match name.trim().to_ascii_lowercase().as_str() {
            "vietcombank" | "vcb" => Some(Preset::Vietcombank),
            "techcombank" | "tcb" => Some(Preset::Techcombank),
            "custom" => Some(Preset::Custom),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Preset::Vietcombank => "vietcombank",
            Preset::Techcombank => "techcombank",
            Preset::Custom => "custom",
        }
    }
}

/// Where in the file a problem is: a CSV line or a camt.053 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Line(usize),
    Entry(usize),
}

impl Position {
    pub fn number(self) -> usize {
        match self {
            Position::Line(n) | Position::Entry(n) => n,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Entry(n) => write!(f, "entry {n} (Ntry)"),
        }
    }
}

fn at_prefix(at: &Option<Position>) -> String {
    at.map(|p| format!("{p}: ")).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("{}the file is not UTF-8 text ({detail}); export the statement as CSV UTF-8 (or camt.053 XML) and upload it again", at_prefix(.at))]
    Encoding {
        at: Option<Position>,
        detail: String,
    },
    #[error("{}{message}", at_prefix(.at))]
    Format {
        at: Option<Position>,
        message: String,
    },
    #[error("{at}, column {column}: '{value}' {reason}")]
    Row {
        at: Position,
        column: String,
        value: String,
        reason: String,
    },
    #[error("{}the statement is in {currency}; only VND statements can be reconciled", at_prefix(.at))]
    Currency {
        at: Option<Position>,
        currency: String,
    },
    #[error("the statement has no transaction lines")]
    Empty,
    #[error("column mapping: {0}")]
    Mapping(String),
}

impl StatementError {
    /// Stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            StatementError::Encoding { .. } => "statement_encoding",
            StatementError::Format { .. } => "statement_format",
            StatementError::Row { .. } => "statement_row",
            StatementError::Currency { .. } => "statement_currency",
            StatementError::Empty => "statement_empty",
            StatementError::Mapping(_) => "statement_mapping",
        }
    }

    /// The CSV line or camt.053 entry number, when the problem has one.
    pub fn position(&self) -> Option<Position> {
        match self {
            StatementError::Encoding { at, .. }
            | StatementError::Format { at, .. }
            | StatementError::Currency { at, .. } => *at,
            StatementError::Row { at, .. } => Some(*at),
            StatementError::Empty | StatementError::Mapping(_) => None,
        }
    }

    pub fn column(&self) -> Option<&str> {
        match self {
            StatementError::Row { column, .. } => Some(column),
            _ => None,
        }
    }
}

fn format_error(at: Option<Position>, message: impl Into<String>) -> StatementError {
    StatementError::Format {
        at,
        message: message.into(),
    }
}

fn row_error(at: Position, column: &str, value: &str, reason: impl Into<String>) -> StatementError {
    StatementError::Row {
        at,
        column: column.to_owned(),
        value: clip(value),
        reason: reason.into(),
    }
}

fn clip(value: &str) -> String {
    let mut chars = value.chars();
    let mut out: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Parses a statement. `format_hint` is `camt053`, `vietcombank`, `techcombank` or `custom`
/// (case-insensitive); without one, XML is read as camt.053, CSV with `custom` if given, else
/// the presets are tried in turn by their header rows.
pub fn parse(
    bytes: &[u8],
    format_hint: Option<&str>,
    custom: Option<&ColumnMapping>,
) -> Result<Statement, StatementError> {
    let text = decode(bytes)?;
    let hint = format_hint
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase);
    match hint.as_deref() {
        Some("camt053" | "camt.053" | "camt") => camt_from_text(text),
        Some(name) => match Preset::from_name(name) {
            Some(Preset::Custom) => match custom {
                Some(mapping) => csv_from_text(text, mapping, Preset::Custom),
                None => Err(StatementError::Mapping(
                    "the custom format needs a column mapping".to_owned(),
                )),
            },
            Some(preset) => csv_from_text(text, &preset.mapping(), preset),
            None => Err(format_error(
                None,
                format!(
                    "unknown statement format '{}'; expected camt053, vietcombank, techcombank or custom",
                    clip(name)
                ),
            )),
        },
        None if text.trim_start().starts_with('<') => camt_from_text(text),
        None => match custom {
            Some(mapping) => csv_from_text(text, mapping, Preset::Custom),
            None => sniff_csv(text),
        },
    }
}

/// Parses a CSV export laid out as `mapping`. The statement's format names the preset when
/// `mapping` is one.
pub fn parse_csv(bytes: &[u8], mapping: &ColumnMapping) -> Result<Statement, StatementError> {
    let text = decode(bytes)?;
    let preset = [Preset::Vietcombank, Preset::Techcombank]
        .into_iter()
        .find(|p| p.mapping() == *mapping)
        .unwrap_or(Preset::Custom);
    csv_from_text(text, mapping, preset)
}

/// Parses an ISO 20022 camt.053 bank-to-customer statement (001.02 to 001.08).
pub fn parse_camt053(bytes: &[u8]) -> Result<Statement, StatementError> {
    camt_from_text(decode(bytes)?)
}

mod amounts;
mod bank_csv;
mod camt;
mod dates;
#[cfg(test)]
mod tests;

use amounts::*;
use bank_csv::*;
use camt::*;
use dates::*;

// ---------------------------------------------------------------------------------------------
// Encoding

/// UTF-8 only: guessing between Windows-1258, TCVN3 and VNI would silently garble names.
fn decode(bytes: &[u8]) -> Result<&str, StatementError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(StatementError::Encoding {
            at: Some(Position::Line(1)),
            detail: "it starts with a UTF-16 byte-order mark".to_owned(),
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(body).map_err(|e| {
        let good = e.valid_up_to();
        let byte = body.get(good).copied().unwrap_or_default();
        StatementError::Encoding {
            at: Some(Position::Line(line_at(body, good))),
            detail: format!(
                "byte 0x{byte:02X} is not UTF-8, as in Windows-1258 or legacy Excel exports"
            ),
        }
    })?;
    // Valid UTF-8 with NUL bytes is UTF-16 or UTF-32 without a byte-order mark.
    if let Some(nul) = text.find('\0') {
        return Err(StatementError::Encoding {
            at: Some(Position::Line(line_at(body, nul))),
            detail: "it contains NUL bytes, as UTF-16 text does".to_owned(),
        });
    }
    if text.trim().is_empty() {
        return Err(StatementError::Empty);
    }
    Ok(text)
}

/// The 1-based line holding byte `offset`.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
}
