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

// ---------------------------------------------------------------------------------------------
// Amounts

#[derive(Debug, Clone, PartialEq, Eq)]
enum AmountIssue {
    Fractional,
    NotANumber,
    TooLarge,
    Currency(String),
}

fn amount_error(at: Position, column: &str, value: &str, issue: AmountIssue) -> StatementError {
    let reason = match issue {
        AmountIssue::Fractional => "is not a whole number of đồng",
        AmountIssue::NotANumber => {
            "is not an amount in đồng (write 1.235.000, 1,235,000 or 1235000)"
        }
        AmountIssue::TooLarge => "is larger than 1.000.000.000.000 đồng",
        AmountIssue::Currency(currency) => {
            return StatementError::Currency {
                at: Some(at),
                currency,
            }
        }
    };
    row_error(at, column, value, reason)
}

/// Currencies a Vietnamese bank account may be held in; other three-letter words next to an
/// amount are not read as currency codes.
const FOREIGN_CURRENCIES: &[&str] = &[
    "USD", "EUR", "JPY", "AUD", "GBP", "CNY", "SGD", "CAD", "CHF", "HKD", "KRW", "THB", "NZD",
];

/// A signed amount as Vietnamese exports print it: `1.235.000`, `1,235,000`, `1235000`, with an
/// optional sign or accounting parentheses, a `VND`/`đ`/`₫` mark and a zero fraction (`,00`).
fn parse_amount(cell: &str) -> Result<i64, AmountIssue> {
    // Excel writes thousands separators as no-break spaces in some locales.
    let spaced: Cow<'_, str> = if cell.contains(['\u{a0}', '\u{202f}']) {
        Cow::Owned(cell.replace(['\u{a0}', '\u{202f}'], " "))
    } else {
        Cow::Borrowed(cell)
    };
    let mut t = spaced.trim();
    let mut negative = false;
    if let Some(inner) = t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        negative = true;
        t = inner.trim();
    }
    t = strip_currency(t)?;
    if let Some(rest) = t.strip_prefix('-') {
        negative = !negative;
        t = rest.trim_start();
    } else if let Some(rest) = t.strip_prefix('+') {
        t = rest.trim_start();
    }
    if t.starts_with(['+', '-']) {
        return Err(AmountIssue::NotANumber);
    }
    let t = strip_zero_fraction(t)?;
    match Vnd::parse_text(t) {
        Ok(v) if negative => Ok(-v.dong()),
        Ok(v) => Ok(v.dong()),
        Err(AmountError::Fractional) => Err(AmountIssue::Fractional),
        Err(AmountError::TooLarge) => Err(AmountIssue::TooLarge),
        Err(_) => Err(AmountIssue::NotANumber),
    }
}

fn strip_currency(t: &str) -> Result<&str, AmountIssue> {
    for mark in ["VNĐ", "vnđ", "Vnđ", "đồng", "đ", "₫", "Đ"] {
        if let Some(rest) = t.strip_suffix(mark) {
            return Ok(rest.trim_end());
        }
        if let Some(rest) = t.strip_prefix(mark) {
            return Ok(rest.trim_start());
        }
    }
    let code_len = 3;
    let suffix = t
        .len()
        .checked_sub(code_len)
        .and_then(|i| Some((t.get(i..)?, t.get(..i)?)));
    let prefix = t
        .get(..code_len)
        .and_then(|c| Some((c, t.get(code_len..)?)));
    for (code, rest) in suffix.into_iter().chain(prefix) {
        if code.eq_ignore_ascii_case("VND") {
            return Ok(rest.trim());
        }
        let upper = code.to_ascii_uppercase();
        if FOREIGN_CURRENCIES.contains(&upper.as_str()) {
            return Err(AmountIssue::Currency(upper));
        }
    }
    Ok(t)
}

/// `1.235.000,00` → `1.235.000`: a one- or two-digit fraction is allowed only when it is zero
/// and its mark is not also the grouping mark.
fn strip_zero_fraction(t: &str) -> Result<&str, AmountIssue> {
    let Some(i) = t.rfind(['.', ',']) else {
        return Ok(t);
    };
    let (int, frac) = (&t[..i], &t[i + 1..]);
    if frac.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        // A group of three, or not a number at all: `Vnd::parse_text` decides.
        return Ok(t);
    }
    if frac.bytes().any(|b| b != b'0') {
        return Err(AmountIssue::Fractional);
    }
    let mark = &t[i..i + 1];
    if int.is_empty() || int.contains(mark) {
        return Err(AmountIssue::NotANumber);
    }
    Ok(int)
}

/// An XML decimal (`1235000`, `1235000.00`): whole đồng only.
fn parse_decimal_dong(t: &str) -> Result<i64, AmountIssue> {
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) {
        return Err(AmountIssue::NotANumber);
    }
    if frac.bytes().any(|b| b != b'0') {
        return Err(AmountIssue::Fractional);
    }
    let int = int.trim_start_matches('0');
    if int.len() > 13 {
        return Err(AmountIssue::TooLarge);
    }
    let value: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| AmountIssue::NotANumber)?
    };
    if value > MAX_DONG {
        return Err(AmountIssue::TooLarge);
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Dates

enum When {
    At(NaiveDateTime),
    Day(NaiveDate),
}

/// A date cell in `fmt`; a time after the date is accepted even when `fmt` has none, since
/// exports differ on that between screens of the same bank.
fn parse_when(text: &str, fmt: &str) -> Option<When> {
    if let Ok(at) = NaiveDateTime::parse_from_str(text, fmt) {
        return Some(When::At(at));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, fmt) {
        return Some(When::Day(day));
    }
    let (day, time) = text.split_once(char::is_whitespace)?;
    let day = NaiveDate::parse_from_str(day, fmt).ok()?;
    Some(When::At(day.and_time(parse_time(time.trim())?)))
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

/// camt.053 `Dt` (local calendar day) or `DtTm` (with an offset, or else local time).
fn parse_iso_when(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(day_start(day));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(local_to_utc)
}

/// `%d/%m/%Y` → `dd/mm/yyyy`, for messages read by accountants.
fn human_date_format(fmt: &str) -> String {
    [
        ("%d", "dd"),
        ("%m", "mm"),
        ("%Y", "yyyy"),
        ("%y", "yy"),
        ("%H", "HH"),
        ("%M", "MM"),
        ("%S", "SS"),
    ]
    .iter()
    .fold(fmt.to_owned(), |acc, (from, to)| acc.replace(from, to))
}

// ---------------------------------------------------------------------------------------------
// CSV

/// A validated mapping with what every row needs precomputed.
struct Plan<'m> {
    m: &'m ColumnMapping,
    header_key: String,
    date_hint: String,
}

impl<'m> Plan<'m> {
    fn new(m: &'m ColumnMapping) -> Result<Self, StatementError> {
        let bad = |msg: String| Err(StatementError::Mapping(msg));
        let blank = |s: &str| s.trim().is_empty();
        let names = [
            ("date", Some(&m.date)),
            ("time", m.time.as_ref()),
            ("credit", m.credit.as_ref()),
            ("debit", m.debit.as_ref()),
            ("amount", m.amount.as_ref()),
            ("reference", m.reference.as_ref()),
            ("memo", Some(&m.memo)),
            ("counterparty", m.counterparty.as_ref()),
            ("balance", m.balance.as_ref()),
            ("header_row_contains", Some(&m.header_row_contains)),
        ];
        for (field, name) in names {
            if name.is_some_and(|n| blank(n)) {
                return bad(format!("{field} must name a column"));
            }
        }
        match (&m.amount, &m.credit, &m.debit) {
            (Some(_), None, None) | (None, Some(_), _) | (None, _, Some(_)) => {}
            (None, None, None) => {
                return bad("name a signed amount column or credit/debit columns".to_owned())
            }
            _ => {
                return bad(
                    "name either a signed amount column or credit/debit columns, not both"
                        .to_owned(),
                )
            }
        }
        if blank(&m.date_format) || StrftimeItems::new(&m.date_format).parse().is_err() {
            return bad(format!(
                "date_format '{}' is not a strftime format such as %d/%m/%Y",
                clip(&m.date_format)
            ));
        }
        Ok(Plan {
            m,
            header_key: key(&m.header_row_contains),
            date_hint: human_date_format(&m.date_format),
        })
    }
}

/// A header name reduced for comparison: NFC, lower case, single spaces, no trailing note in
/// parentheses.
fn key(name: &str) -> String {
    let mut t = name.trim();
    if t.ends_with(')') {
        if let Some(open) = t.rfind('(').filter(|&i| i > 0) {
            t = t[..open].trim_end();
        }
    }
    let mut out = String::with_capacity(t.len());
    for word in t.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.nfc().flat_map(char::to_lowercase));
    }
    out
}

/// Column positions of a found header.
#[derive(Debug, Clone, Copy)]
struct Cols {
    date: usize,
    time: Option<usize>,
    credit: Option<usize>,
    debit: Option<usize>,
    amount: Option<usize>,
    reference: Option<usize>,
    memo: usize,
    counterparty: Option<usize>,
    balance: Option<usize>,
}

fn resolve(header: &csv::StringRecord, m: &ColumnMapping) -> Result<Cols, Vec<String>> {
    // Each header cell as a whole, and its first part before a translation (`Nợ/Debit`).
    let keys: Vec<(String, String)> = header
        .iter()
        .map(|cell| {
            let first = cell.split(['\n', '/']).next().unwrap_or(cell);
            (key(cell), key(first))
        })
        .collect();
    let pos = |name: &str| {
        let k = key(name);
        keys.iter()
            .position(|(full, first)| *full == k || *first == k)
    };
    let mut missing = Vec::new();
    let mut need = |name: &str| match pos(name) {
        Some(i) => i,
        None => {
            missing.push(name.to_owned());
            0
        }
    };
    let cols = Cols {
        date: need(&m.date),
        time: m.time.as_deref().map(&mut need),
        credit: m.credit.as_deref().map(&mut need),
        debit: m.debit.as_deref().map(&mut need),
        amount: m.amount.as_deref().map(&mut need),
        reference: m.reference.as_deref().map(&mut need),
        memo: need(&m.memo),
        counterparty: m.counterparty.as_deref().map(&mut need),
        balance: m.balance.as_deref().map(&mut need),
    };
    if missing.is_empty() {
        Ok(cols)
    } else {
        Err(missing)
    }
}

/// A header row found, with the reader positioned on the first row after it.
struct Located<'t> {
    reader: csv::Reader<&'t [u8]>,
    lines: LineCounter<'t>,
    cols: Cols,
    /// The header's date cell: the header repeated at a page break is skipped by it.
    header_date: String,
    /// Non-empty rows before the header, with their line numbers.
    preamble: Vec<(usize, String)>,
}

enum Miss {
    NoHeader,
    Incomplete { line: usize, missing: Vec<String> },
}

impl Miss {
    fn into_error(self, m: &ColumnMapping) -> StatementError {
        match self {
            Miss::NoHeader => format_error(
                None,
                format!(
                    "no header row with a column '{}' in the first {MAX_PREAMBLE_ROWS} lines",
                    m.header_row_contains
                ),
            ),
            Miss::Incomplete { line, missing } => format_error(
                Some(Position::Line(line)),
                format!(
                    "the header row has no column {}",
                    missing
                        .iter()
                        .map(|c| format!("'{c}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
}

/// Physical line numbers of records. The csv crate's own line count lags by one after a CRLF
/// terminator, so lines are counted here from the record's byte offset, incrementally so a long
/// file is scanned once.
struct LineCounter<'t> {
    text: &'t [u8],
    byte: usize,
    line: usize,
}

impl<'t> LineCounter<'t> {
    fn new(text: &'t str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            byte: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, record: &csv::StringRecord) -> usize {
        let offset = record
            .position()
            .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
        let mut start = offset.min(self.text.len());
        // The offset may point at the previous terminator or at skipped empty lines.
        while self
            .text
            .get(start)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            start += 1;
        }
        if start < self.byte {
            self.byte = 0;
            self.line = 1;
        }
        self.line += self.text[self.byte..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.byte = start;
        self.line
    }
}

/// Banks and spreadsheets write `,`, `;` or tabs; Excel may announce it with a `sep=` line.
fn delimiters(text: &str) -> Vec<u8> {
    let first = text.lines().next().unwrap_or_default().trim_end();
    match first.strip_prefix("sep=").map(str::as_bytes) {
        Some(&[d]) => vec![d],
        _ => vec![b',', b';', b'\t'],
    }
}

fn locate<'t>(text: &'t str, plan: &Plan<'_>) -> Result<Located<'t>, Miss> {
    let mut best: Option<(usize, Vec<String>)> = None;
    for delimiter in delimiters(text) {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let mut record = csv::StringRecord::new();
        let mut preamble = Vec::new();
        let mut lines = LineCounter::new(text);
        for _ in 0..MAX_PREAMBLE_ROWS {
            if !matches!(reader.read_record(&mut record), Ok(true)) {
                break;
            }
            let line = lines.line_of(&record);
            if record.iter().any(|c| key(c).contains(&plan.header_key)) {
                match resolve(&record, plan.m) {
                    Ok(cols) => {
                        let header_date = record.get(cols.date).unwrap_or_default().trim();
                        return Ok(Located {
                            header_date: header_date.to_owned(),
                            reader,
                            lines,
                            cols,
                            preamble,
                        });
                    }
                    Err(missing) => {
                        let better = match &best {
                            None => true,
                            Some((_, m)) => missing.len() < m.len(),
                        };
                        if better {
                            best = Some((line, missing));
                        }
                    }
                }
            }
            let cells: Vec<&str> = record
                .iter()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            if !cells.is_empty() {
                preamble.push((line, cells.join(" ")));
            }
        }
    }
    Err(match best {
        Some((line, missing)) => Miss::Incomplete { line, missing },
        None => Miss::NoHeader,
    })
}

fn csv_from_text(
    text: &str,
    mapping: &ColumnMapping,
    preset: Preset,
) -> Result<Statement, StatementError> {
    let plan = Plan::new(mapping)?;
    let located = locate(text, &plan).map_err(|miss| miss.into_error(mapping))?;
    read_body(located, &plan, Format::Csv(preset))
}

/// No layout named: the first preset whose header row is found.
fn sniff_csv(text: &str) -> Result<Statement, StatementError> {
    let mut tried = Vec::new();
    for preset in [Preset::Vietcombank, Preset::Techcombank] {
        let mapping = preset.mapping();
        let plan = Plan::new(&mapping)?;
        if let Ok(located) = locate(text, &plan) {
            return read_body(located, &plan, Format::Csv(preset));
        }
        let columns = [
            Some(&mapping.date),
            mapping.debit.as_ref(),
            mapping.credit.as_ref(),
            Some(&mapping.memo),
        ];
        let columns: Vec<&str> = columns.into_iter().flatten().map(String::as_str).collect();
        tried.push(format!("{preset:?} ({})", columns.join(", ")));
    }
    Err(format_error(
        None,
        format!(
            "not camt.053 XML and no header row of a known layout ({}) in the first {MAX_PREAMBLE_ROWS} lines; choose the bank or give a column mapping",
            tried.join("; ")
        ),
    ))
}

fn read_body(
    mut located: Located<'_>,
    plan: &Plan<'_>,
    format: Format,
) -> Result<Statement, StatementError> {
    let account = preamble_account(&located.preamble)?;
    let mut record = csv::StringRecord::new();
    let mut lines = Vec::new();
    loop {
        match located.reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let at = e
                    .position()
                    .map(|p| Position::Line(usize::try_from(p.line()).unwrap_or(usize::MAX)));
                return Err(format_error(at, format!("unreadable CSV: {e}")));
            }
        }
        let at = Position::Line(located.lines.line_of(&record));
        if let Some(line) = csv_line(&record, at, plan, &located.cols, &located.header_date)? {
            lines.push(line);
        }
    }
    if lines.is_empty() {
        return Err(StatementError::Empty);
    }
    Ok(Statement {
        account,
        currency: "VND".to_owned(),
        lines,
        format,
    })
}

const ACCOUNT_PHRASES: &[&[&str]] = &[
    &["SO", "TAI", "KHOAN"],
    &["ACCOUNT", "NUMBER"],
    &["ACCOUNT", "NO"],
    &["SO", "TK"],
];
const CURRENCY_PHRASES: &[&[&str]] = &[&["LOAI", "TIEN"], &["CURRENCY"]];

/// The first of the next few words after a phrase that satisfies `accept`.
fn after_phrase<'w>(
    words: &[&'w str],
    phrases: &[&[&str]],
    accept: impl Fn(&str) -> bool,
) -> Option<&'w str> {
    (0..words.len()).find_map(|start| {
        let rest = &words[start..];
        let phrase = phrases.iter().find(|p| rest.starts_with(p))?;
        rest[phrase.len()..]
            .iter()
            .take(4)
            .find(|w| accept(w))
            .copied()
    })
}

/// The account number printed in the preamble, refusing a preamble that names a foreign
/// currency (`Loại tiền: USD`).
fn preamble_account(preamble: &[(usize, String)]) -> Result<Option<String>, StatementError> {
    let mut account = None;
    for (line, text) in preamble {
        let folded = fold(text);
        let words: Vec<&str> = folded.split(' ').collect();
        if account.is_none() {
            let is_account = |w: &str| w.len() >= 6 && w.bytes().all(|b| b.is_ascii_digit());
            account = after_phrase(&words, ACCOUNT_PHRASES, is_account).map(str::to_owned);
        }
        let is_foreign = |w: &str| FOREIGN_CURRENCIES.contains(&w);
        if let Some(code) = after_phrase(&words, CURRENCY_PHRASES, is_foreign) {
            return Err(StatementError::Currency {
                at: Some(Position::Line(*line)),
                currency: code.to_owned(),
            });
        }
    }
    Ok(account)
}

/// Words that start totals and balance rows printed inside the table.
const SUMMARY_WORDS: &[&str] = &[
    "TONG",
    "CONG",
    "TOTAL",
    "SO DU",
    "BALANCE",
    "DOANH SO",
    "PHAT SINH",
];

fn is_summary(record: &csv::StringRecord) -> bool {
    record
        .iter()
        .map(str::trim)
        .find(|c| !c.is_empty())
        .is_some_and(|first| {
            let folded = fold(first);
            SUMMARY_WORDS.iter().any(|w| {
                folded
                    .strip_prefix(w)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            })
        })
}

/// One data row: a line, `None` for rows that are not transactions (blank, totals, a repeated
/// header, signatures), or the row's first problem.
fn csv_line(
    record: &csv::StringRecord,
    at: Position,
    plan: &Plan<'_>,
    cols: &Cols,
    header_date: &str,
) -> Result<Option<StatementLine>, StatementError> {
    let m = plan.m;
    let cell = |i: usize| record.get(i).map_or("", str::trim);
    let filled = |i: Option<usize>| i.map(cell).filter(|c| !c.is_empty() && *c != "-");
    if record.iter().all(|c| c.trim().is_empty()) {
        return Ok(None);
    }
    let date_text = cell(cols.date);
    if date_text == header_date {
        return Ok(None);
    }
    let has_amount = [cols.credit, cols.debit, cols.amount]
        .into_iter()
        .any(|i| filled(i).is_some());
    let when = match parse_when(date_text, &m.date_format) {
        Some(when) => when,
        None if !has_amount || is_summary(record) => return Ok(None),
        None if date_text.is_empty() => {
            return Err(row_error(
                at,
                &m.date,
                date_text,
                "is empty; every transaction line needs a date",
            ))
        }
        None => {
            return Err(row_error(
                at,
                &m.date,
                date_text,
                format!("is not a date in the format {}", plan.date_hint),
            ))
        }
    };
    let booked_at = match when {
        When::At(at) => local_to_utc(at),
        When::Day(day) => match filled(cols.time) {
            None => day_start(day),
            Some(t) => {
                let time = parse_time(t).ok_or_else(|| {
                    row_error(
                        at,
                        m.time.as_deref().unwrap_or_default(),
                        t,
                        "is not a time of day (HH:MM:SS)",
                    )
                })?;
                local_to_utc(day.and_time(time))
            }
        },
    };

    let (dong, direction) = match cols.amount {
        Some(i) => {
            let name = m.amount.as_deref().unwrap_or_default();
            let text = cell(i);
            let value = parse_amount(text).map_err(|e| amount_error(at, name, text, e))?;
            match value {
                0 => return Err(row_error(at, name, text, "is zero")),
                v if v > 0 => (v, Direction::Credit),
                v => (-v, Direction::Debit),
            }
        }
        None => {
            let side = |i: Option<usize>, name: &Option<String>, dir| {
                let name = name.as_deref().unwrap_or_default();
                let Some(text) = filled(i) else {
                    return Ok(None);
                };
                let value = parse_amount(text).map_err(|e| amount_error(at, name, text, e))?;
                // Some banks print debits negative in the debit column; a negative credit has
                // no such reading.
                if value < 0 && dir == Direction::Credit {
                    return Err(row_error(at, name, text, "is negative in a credit column"));
                }
                Ok((value != 0).then_some((value.abs(), dir)))
            };
            let credit = side(cols.credit, &m.credit, Direction::Credit)?;
            let debit = side(cols.debit, &m.debit, Direction::Debit)?;
            let both = [m.debit.as_deref(), m.credit.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("/");
            match (credit, debit) {
                (Some(c), None) => c,
                (None, Some(d)) => d,
                (None, None) => {
                    return Err(row_error(at, &both, "", "has no amount in either column"))
                }
                (Some(_), Some(_)) => {
                    return Err(row_error(at, &both, "", "has amounts in both columns"))
                }
            }
        }
    };
    let amount = Vnd::new(dong).map_err(|_| amount_error(at, "", "", AmountIssue::TooLarge))?;

    let balance_after = match filled(cols.balance) {
        None => None,
        Some(text) => {
            let name = m.balance.as_deref().unwrap_or_default();
            let value = parse_amount(text).map_err(|e| amount_error(at, name, text, e))?;
            Some(Vnd::new(value).map_err(|_| amount_error(at, name, text, AmountIssue::TooLarge))?)
        }
    };
    Ok(Some(StatementLine {
        line_no: at.number(),
        booked_at,
        amount,
        direction,
        bank_ref: filled(cols.reference).map(str::to_owned),
        memo: cell(cols.memo).to_owned(),
        counterparty: filled(cols.counterparty).map(str::to_owned),
        balance_after,
    }))
}

// ---------------------------------------------------------------------------------------------
// camt.053

/// The elements the parser looks at; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Document,
    BkToCstmrStmt,
    Stmt,
    Acct,
    Id,
    Iban,
    Othr,
    Ccy,
    Ntry,
    Amt,
    CdtDbtInd,
    BookgDt,
    ValDt,
    Dt,
    DtTm,
    AcctSvcrRef,
    NtryDtls,
    TxDtls,
    Refs,
    EndToEndId,
    TxId,
    RmtInf,
    Ustrd,
    RltdPties,
    Dbtr,
    Cdtr,
    DbtrAcct,
    CdtrAcct,
    Pty,
    Nm,
    AddtlNtryInf,
    AddtlTxInf,
    Other,
}

fn tag(local_name: &[u8]) -> Tag {
    match local_name {
        b"Document" => Tag::Document,
        b"BkToCstmrStmt" => Tag::BkToCstmrStmt,
        b"Stmt" => Tag::Stmt,
        b"Acct" => Tag::Acct,
        b"Id" => Tag::Id,
        b"IBAN" => Tag::Iban,
        b"Othr" => Tag::Othr,
        b"Ccy" => Tag::Ccy,
        b"Ntry" => Tag::Ntry,
        b"Amt" => Tag::Amt,
        b"CdtDbtInd" => Tag::CdtDbtInd,
        b"BookgDt" => Tag::BookgDt,
        b"ValDt" => Tag::ValDt,
        b"Dt" => Tag::Dt,
        b"DtTm" => Tag::DtTm,
        b"AcctSvcrRef" => Tag::AcctSvcrRef,
        b"NtryDtls" => Tag::NtryDtls,
        b"TxDtls" => Tag::TxDtls,
        b"Refs" => Tag::Refs,
        b"EndToEndId" => Tag::EndToEndId,
        b"TxId" => Tag::TxId,
        b"RmtInf" => Tag::RmtInf,
        b"Ustrd" => Tag::Ustrd,
        b"RltdPties" => Tag::RltdPties,
        b"Dbtr" => Tag::Dbtr,
        b"Cdtr" => Tag::Cdtr,
        b"DbtrAcct" => Tag::DbtrAcct,
        b"CdtrAcct" => Tag::CdtrAcct,
        b"Pty" => Tag::Pty,
        b"Nm" => Tag::Nm,
        b"AddtlNtryInf" => Tag::AddtlNtryInf,
        b"AddtlTxInf" => Tag::AddtlTxInf,
        _ => Tag::Other,
    }
}

const STMT_PATH: [Tag; 3] = [Tag::Document, Tag::BkToCstmrStmt, Tag::Stmt];

/// What one `Ntry` said, before it is checked.
#[derive(Default)]
struct Draft {
    ccy: Option<String>,
    amount: Option<String>,
    cdt_dbt: Option<String>,
    booked: Option<String>,
    valued: Option<String>,
    ntry_ref: Option<String>,
    tx_svcr_ref: Option<String>,
    end_to_end: Option<String>,
    tx_id: Option<String>,
    ustrd: Vec<String>,
    addtl_ntry: Option<String>,
    addtl_tx: Option<String>,
    debtor_name: Option<String>,
    debtor_account: Option<String>,
    creditor_name: Option<String>,
    creditor_account: Option<String>,
}

/// Keeps the first non-empty value: several `TxDtls` may repeat a field.
fn set_first(slot: &mut Option<String>, text: &str) {
    if slot.is_none() && !text.is_empty() {
        *slot = Some(text.to_owned());
    }
}

impl Draft {
    /// `rest` is the path below `Ntry`, ending at the element just closed.
    fn take(&mut self, rest: &[Tag], text: &str) {
        use Tag::*;
        match rest {
            [Amt] => self.amount = Some(text.to_owned()),
            [CdtDbtInd] => set_first(&mut self.cdt_dbt, text),
            [BookgDt, Dt | DtTm] => set_first(&mut self.booked, text),
            [ValDt, Dt | DtTm] => set_first(&mut self.valued, text),
            [AcctSvcrRef] => set_first(&mut self.ntry_ref, text),
            [AddtlNtryInf] => set_first(&mut self.addtl_ntry, text),
            [NtryDtls, TxDtls, tx @ ..] => match tx {
                [Refs, AcctSvcrRef] => set_first(&mut self.tx_svcr_ref, text),
                [Refs, EndToEndId] if !text.eq_ignore_ascii_case("NOTPROVIDED") => {
                    set_first(&mut self.end_to_end, text)
                }
                [Refs, TxId] => set_first(&mut self.tx_id, text),
                [RmtInf, Ustrd] if !text.is_empty() => self.ustrd.push(text.to_owned()),
                [RltdPties, Dbtr, Nm] | [RltdPties, Dbtr, Pty, Nm] => {
                    set_first(&mut self.debtor_name, text)
                }
                [RltdPties, DbtrAcct, Id, Iban] | [RltdPties, DbtrAcct, Id, Othr, Id] => {
                    set_first(&mut self.debtor_account, text)
                }
                [RltdPties, Cdtr, Nm] | [RltdPties, Cdtr, Pty, Nm] => {
                    set_first(&mut self.creditor_name, text)
                }
                [RltdPties, CdtrAcct, Id, Iban] | [RltdPties, CdtrAcct, Id, Othr, Id] => {
                    set_first(&mut self.creditor_account, text)
                }
                [AddtlTxInf] => set_first(&mut self.addtl_tx, text),
                _ => {}
            },
            _ => {}
        }
    }

    fn finish(self, entry: usize) -> Result<StatementLine, StatementError> {
        let at = Position::Entry(entry);
        match self.ccy.as_deref() {
            Some(c) if c.eq_ignore_ascii_case("VND") => {}
            Some(c) => {
                return Err(StatementError::Currency {
                    at: Some(at),
                    currency: clip(c),
                })
            }
            None => return Err(row_error(at, "Amt", "", "has no Ccy attribute")),
        }
        let amount_text = self.amount.as_deref().unwrap_or_default();
        let dong =
            parse_decimal_dong(amount_text).map_err(|e| amount_error(at, "Amt", amount_text, e))?;
        if dong == 0 {
            return Err(row_error(at, "Amt", amount_text, "is zero"));
        }
        let amount = Vnd::new(dong)
            .map_err(|_| amount_error(at, "Amt", amount_text, AmountIssue::TooLarge))?;
        let direction = match self.cdt_dbt.as_deref() {
            Some("CRDT") => Direction::Credit,
            Some("DBIT") => Direction::Debit,
            other => {
                return Err(row_error(
                    at,
                    "CdtDbtInd",
                    other.unwrap_or_default(),
                    "is not CRDT or DBIT",
                ))
            }
        };
        // Pending entries may carry only a value date.
        let (column, date_text) = match (&self.booked, &self.valued) {
            (Some(b), _) => ("BookgDt", b.as_str()),
            (None, Some(v)) => ("ValDt", v.as_str()),
            (None, None) => return Err(row_error(at, "BookgDt", "", "is missing")),
        };
        let booked_at = parse_iso_when(date_text)
            .ok_or_else(|| row_error(at, column, date_text, "is not an ISO date or date-time"))?;
        let memo = if self.ustrd.is_empty() {
            self.addtl_tx.or(self.addtl_ntry).unwrap_or_default()
        } else {
            self.ustrd.join(" ")
        };
        // The other party: who paid in for a credit, who was paid for a debit.
        let counterparty = match direction {
            Direction::Credit => self.debtor_name.or(self.debtor_account),
            Direction::Debit => self.creditor_name.or(self.creditor_account),
        };
        Ok(StatementLine {
            line_no: entry,
            booked_at,
            amount,
            direction,
            bank_ref: self
                .ntry_ref
                .or(self.tx_svcr_ref)
                .or(self.end_to_end)
                .or(self.tx_id),
            memo,
            counterparty,
            balance_after: None,
        })
    }
}

#[derive(Default)]
struct Camt {
    account: Option<String>,
    stmt_account: Option<String>,
    lines: Vec<StatementLine>,
    entries: usize,
    draft: Option<Draft>,
}

impl Camt {
    fn start(
        &mut self,
        path: &[Tag],
        tag: Tag,
        element: &BytesStart<'_>,
    ) -> Result<(), StatementError> {
        if path.is_empty() {
            return check_root(tag, element);
        }
        if path == &STMT_PATH[..2] && tag == Tag::Stmt {
            self.stmt_account = None;
        } else if path == &STMT_PATH[..] && tag == Tag::Ntry {
            self.entries += 1;
            self.draft = Some(Draft::default());
        } else if tag == Tag::Amt && path.strip_prefix(&STMT_PATH[..]) == Some(&[Tag::Ntry][..]) {
            if let Some(draft) = self.draft.as_mut() {
                draft.ccy = attribute(element, b"Ccy")?;
            }
        }
        Ok(())
    }

    /// `path` still ends with the element being closed.
    fn end(&mut self, path: &[Tag], text: &str) -> Result<(), StatementError> {
        use Tag::*;
        let Some(rel) = path.strip_prefix(&STMT_PATH[..]) else {
            return Ok(());
        };
        let text = text.trim();
        match rel {
            [] => {
                if let Some(account) = self.stmt_account.take() {
                    match &self.account {
                        None => self.account = Some(account),
                        Some(a) if *a == account => {}
                        Some(a) => {
                            return Err(format_error(
                                None,
                                format!(
                                    "the file holds statements of two accounts ({a} and {}); upload one account's statement",
                                    clip(&account)
                                ),
                            ))
                        }
                    }
                }
            }
            [Acct, Id, Iban] | [Acct, Id, Othr, Id] => set_first(&mut self.stmt_account, text),
            [Acct, Ccy] if !text.eq_ignore_ascii_case("VND") => {
                return Err(StatementError::Currency {
                    at: None,
                    currency: clip(text),
                })
            }
            [Ntry] => {
                if let Some(draft) = self.draft.take() {
                    self.lines.push(draft.finish(self.entries)?);
                }
            }
            [Ntry, rest @ ..] => {
                if let Some(draft) = self.draft.as_mut() {
                    draft.take(rest, text);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn attribute(element: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, StatementError> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| format_error(None, format!("malformed XML attribute: {e}")))?;
        if attr.key.as_ref() == name {
            let value = attr
                .unescape_value()
                .map_err(|e| format_error(None, format!("malformed XML attribute: {e}")))?;
            return Ok(Some(value.trim().to_owned()));
        }
    }
    Ok(None)
}

/// The root must be a camt.053 `Document` of a supported version.
fn check_root(tag: Tag, element: &BytesStart<'_>) -> Result<(), StatementError> {
    if tag != Tag::Document {
        let name = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
        return Err(format_error(
            None,
            format!(
                "not a camt.053 statement: the root element is <{}>",
                clip(&name)
            ),
        ));
    }
    let mut version = None;
    for attr in element.attributes() {
        let attr = attr.map_err(|e| format_error(None, format!("malformed XML attribute: {e}")))?;
        let key = attr.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            let value = attr
                .unescape_value()
                .map_err(|e| format_error(None, format!("malformed XML attribute: {e}")))?;
            if let Some(v) = value.strip_prefix(CAMT053_NS) {
                version = Some(v.to_owned());
            }
        }
    }
    match version {
        None => Err(format_error(
            None,
            format!("not a camt.053 statement: the Document has no {CAMT053_NS}xx namespace"),
        )),
        Some(v)
            if v.parse::<u32>()
                .is_ok_and(|n| CAMT053_VERSIONS.contains(&n)) =>
        {
            Ok(())
        }
        Some(v) => Err(format_error(
            None,
            format!(
                "camt.053 version 001.{} is not supported; export version 001.02 to 001.08",
                clip(&v)
            ),
        )),
    }
}

fn camt_from_text(text: &str) -> Result<Statement, StatementError> {
    let mut reader = Reader::from_str(text);
    let xml_error = |pos: u64, detail: &dyn fmt::Display| {
        let offset = usize::try_from(pos).unwrap_or(usize::MAX);
        format_error(
            Some(Position::Line(line_at(text.as_bytes(), offset))),
            format!("malformed XML: {detail}"),
        )
    };
    let mut camt = Camt::default();
    let mut path: Vec<Tag> = Vec::with_capacity(16);
    // The text of the innermost open element; cleared whenever an element opens or closes.
    let mut content = String::new();
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error(reader.error_position(), &e))?;
        match event {
            Event::DocType(_) => {
                let pos = reader.buffer_position();
                let offset = usize::try_from(pos).unwrap_or(usize::MAX);
                return Err(format_error(
                    Some(Position::Line(line_at(text.as_bytes(), offset))),
                    "a DOCTYPE declaration is not allowed in a camt.053 statement",
                ));
            }
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding() {
                    let utf8 = [b"utf-8".as_slice(), b"utf8", b"us-ascii", b"ascii"]
                        .iter()
                        .any(|e| encoding.eq_ignore_ascii_case(e));
                    if !utf8 && !text.is_ascii() {
                        return Err(StatementError::Encoding {
                            at: Some(Position::Line(1)),
                            detail: format!(
                                "it declares encoding {}",
                                clip(&String::from_utf8_lossy(&encoding))
                            ),
                        });
                    }
                }
            }
            Event::Start(element) => {
                if seen_root && path.is_empty() {
                    return Err(format_error(None, "malformed XML: a second root element"));
                }
                let t = tag(element.local_name().as_ref());
                camt.start(&path, t, &element)?;
                seen_root = true;
                path.push(t);
                if path.len() > MAX_XML_DEPTH {
                    return Err(format_error(
                        None,
                        format!("elements are nested deeper than {MAX_XML_DEPTH} levels"),
                    ));
                }
                content.clear();
            }
            Event::Empty(element) => {
                if seen_root && path.is_empty() {
                    return Err(format_error(None, "malformed XML: a second root element"));
                }
                let t = tag(element.local_name().as_ref());
                camt.start(&path, t, &element)?;
                seen_root = true;
                path.push(t);
                camt.end(&path, "")?;
                path.pop();
                content.clear();
            }
            Event::End(_) => {
                camt.end(&path, &content)?;
                path.pop();
                content.clear();
            }
            Event::Text(t) if !path.is_empty() => {
                let unescaped = t
                    .unescape()
                    .map_err(|e| xml_error(reader.buffer_position(), &e))?;
                content.push_str(&unescaped);
            }
            Event::CData(c) if !path.is_empty() => {
                let decoded = c
                    .decode()
                    .map_err(|e| xml_error(reader.buffer_position(), &e))?;
                content.push_str(&decoded);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(format_error(
            None,
            "not a camt.053 statement: no XML element",
        ));
    }
    if !path.is_empty() {
        return Err(format_error(
            Some(Position::Line(line_at(text.as_bytes(), text.len()))),
            "malformed XML: the file ends before the Document is closed",
        ));
    }
    if camt.lines.is_empty() {
        return Err(StatementError::Empty);
    }
    Ok(Statement {
        account: camt.account,
        currency: "VND".to_owned(),
        lines: camt.lines,
        format: Format::Camt053,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VCB: &[u8] = include_bytes!("../../fixtures/statements/vietcombank-2025-09.csv");
    const TCB: &[u8] = include_bytes!("../../fixtures/statements/techcombank-2025-09.csv");
    const CUSTOM: &[u8] = include_bytes!("../../fixtures/statements/custom-semicolon.csv");
    const CAMT: &[u8] = include_bytes!("../../fixtures/statements/camt053-vcb.xml");
    const BAD_ENCODING: &[u8] = include_bytes!("../../fixtures/statements/bad-encoding.csv");
    const BAD_AMOUNT: &[u8] = include_bytes!("../../fixtures/statements/bad-amount.csv");
    const USD: &[u8] = include_bytes!("../../fixtures/statements/usd.xml");

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn vnd(n: i64) -> Vnd {
        Vnd::new(n).unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        line_no: usize,
        at: &str,
        dong: i64,
        direction: Direction,
        bank_ref: &str,
        memo: &str,
        counterparty: Option<&str>,
        balance: Option<i64>,
    ) -> StatementLine {
        StatementLine {
            line_no,
            booked_at: utc(at),
            amount: vnd(dong),
            direction,
            bank_ref: Some(bank_ref.to_owned()),
            memo: memo.to_owned(),
            counterparty: counterparty.map(str::to_owned),
            balance_after: balance.map(vnd),
        }
    }

    use Direction::{Credit, Debit};

    fn vcb_lines() -> Vec<StatementLine> {
        vec![
            line(9, "2025-09-02T17:00:00Z", 1_235_000, Credit, "5213 - 12345",
                "MBVCB.3278126542.QD3CFPSA NGUYEN VAN BO chuyen tien hoc phi.CT tu 0011004123456 NGUYEN VAN BO toi 0071000123456 TRUONG THCS LE QUY DON",
                None, Some(53_575_000)),
            line(10, "2025-09-02T17:00:00Z", 2_450_000, Credit, "5213 - 12388",
                "IBFT QDPHYRXY TRAN THI MAI NOP TIEN AN THANG 9 LOP 6A1", None, Some(56_025_000)),
            line(11, "2025-09-03T17:00:00Z", 850_000, Credit, "5214 - 30411",
                "QDAQGU4C Le Hoang Nam 7A2 tien tieng Anh T9", None, Some(56_875_000)),
            line(12, "2025-09-03T17:00:00Z", 22_000, Debit, "5214 - 30502",
                "Thu phi duy tri dich vu VCB Digibank thang 08/2025", None, Some(56_853_000)),
            line(13, "2025-09-04T17:00:00Z", 3_700_000, Credit, "5215 - 08817",
                "NGUYEN THI HOA chuyen tien hoc phi con Tran Minh Khoa lop 6A1", None, Some(60_553_000)),
            line(14, "2025-09-07T17:00:00Z", 500_000, Credit, "5218 - 11203",
                "CHUYEN TIEN QDAQGU4C BHYT", None, Some(61_053_000)),
            line(15, "2025-09-08T17:00:00Z", 1_850_000, Credit, "5219 - 20931",
                "MBVCB.3290175522.qdphyrxy tran thi mai tien ban tru.CT tu 0011004987654 TRAN THI MAI toi 0071000123456 TRUONG THCS LE QUY DON",
                None, Some(62_903_000)),
        ]
    }

    fn custom_mapping() -> ColumnMapping {
        ColumnMapping {
            date: "Ngày hạch toán".into(),
            time: Some("Giờ".into()),
            credit: None,
            debit: None,
            amount: Some("Số tiền".into()),
            reference: Some("Số bút toán".into()),
            memo: "Nội dung".into(),
            counterparty: Some("Người chuyển".into()),
            balance: Some("Số dư".into()),
            date_format: "%Y-%m-%d".into(),
            header_row_contains: "Ngày hạch toán".into(),
        }
    }

    fn code(result: Result<Statement, StatementError>) -> &'static str {
        result.map(|s| panic!("parsed: {s:?}")).unwrap_err().code()
    }

    #[test]
    fn vietcombank_export_parses_line_by_line() {
        let s = parse_csv(VCB, &Preset::Vietcombank.mapping()).unwrap();
        assert_eq!(s.format, Format::Csv(Preset::Vietcombank));
        assert_eq!(s.account.as_deref(), Some("0071000123456"));
        assert_eq!(s.currency, "VND");
        assert_eq!(s.lines, vcb_lines());
    }

    #[test]
    fn techcombank_export_parses_with_times_and_partners() {
        let s = parse(TCB, Some("techcombank"), None).unwrap();
        assert_eq!(s.format, Format::Csv(Preset::Techcombank));
        assert_eq!(s.account.as_deref(), Some("19036123456019"));
        let nvb = Some("NGUYEN VAN BO - 0011004123456 - Vietcombank");
        let want = vec![
            line(
                9,
                "2025-09-05T01:15:22Z",
                1_235_000,
                Credit,
                "FT25248103982741",
                "MBVCB.3278126542.QD3CFPSA NGUYEN VAN BO chuyen tien hoc phi",
                nvb,
                Some(21_235_000),
            ),
            line(
                10,
                "2025-09-05T04:42:07Z",
                2_450_000,
                Credit,
                "FT25248560031298",
                "QDPHYRXY TRAN THI MAI NOP TIEN AN THANG 9",
                Some("TRAN THI MAI - 19034455667011 - Techcombank"),
                Some(23_685_000),
            ),
            line(
                11,
                "2025-09-08T12:03:55Z",
                850_000,
                Credit,
                "FT25251207718845",
                "QDAQGU4C LE HOANG NAM 7A2 TIEN TIENG ANH T9",
                Some("LE VAN TUAN - 0451000222333 - Vietcombank"),
                Some(24_535_000),
            ),
            // 06:12 local on the 9th is still the 8th in UTC.
            line(
                12,
                "2025-09-08T23:12:00Z",
                11_000,
                Debit,
                "FT25252000193476",
                "Phi quan ly tai khoan thang 08/2025",
                None,
                Some(24_524_000),
            ),
            line(
                13,
                "2025-09-09T07:30:12Z",
                3_700_000,
                Credit,
                "FT25252844120567",
                "PHAM THI LAN chuyen tien hoc phi Pham Gia Bao lop 6A1",
                Some("PHAM THI LAN - 1023456789 - BIDV"),
                Some(28_224_000),
            ),
            line(
                14,
                "2025-09-10T00:58:40Z",
                600_000,
                Credit,
                "FT25253041872516",
                "MBVCB.3295512208.QD3CFPSA NGUYEN VAN BO bo sung tien ban tru",
                nvb,
                Some(28_824_000),
            ),
        ];
        assert_eq!(s.lines, want);
    }

    #[test]
    fn custom_mapping_reads_a_signed_semicolon_export_and_keeps_duplicates() {
        let json = r#"{"date":"Ngày hạch toán","time":"Giờ","amount":"Số tiền",
            "reference":"Số bút toán","memo":"Nội dung","counterparty":"Người chuyển",
            "balance":"Số dư","date_format":"%Y-%m-%d","header_row_contains":"Ngày hạch toán"}"#;
        let mapping: ColumnMapping = serde_json::from_str(json).unwrap();
        assert_eq!(mapping, custom_mapping());
        let s = parse(CUSTOM, None, Some(&mapping)).unwrap();
        assert_eq!(s.format, Format::Csv(Preset::Custom));
        assert_eq!(s.account.as_deref(), Some("112233445566"));
        let lvt = Some("LE VAN TUAN");
        let tien_anh = "QDAQGU4C LE HOANG NAM 7A2 TIEN TIENG ANH";
        let want = vec![
            line(
                7,
                "2025-09-03T02:05:11Z",
                1_235_000,
                Credit,
                "TT2509030001",
                "QD3CFPSA NGUYEN VAN BO chuyen tien hoc phi",
                Some("NGUYEN VAN BO"),
                Some(11_235_000),
            ),
            line(
                8,
                "2025-09-03T14:47:30Z",
                2_450_000,
                Credit,
                "TT2509030187",
                "QDPHYRXY TRAN THI MAI NOP TIEN AN THANG 9",
                Some("TRAN THI MAI"),
                Some(13_685_000),
            ),
            line(
                9,
                "2025-09-04T03:00:00Z",
                22_000,
                Debit,
                "PHI2509040002",
                "Phi SMS Banking thang 08/2025",
                None,
                Some(13_663_000),
            ),
            line(
                10,
                "2025-09-05T08:20:45Z",
                850_000,
                Credit,
                "TT2509050044",
                tien_anh,
                lvt,
                Some(14_513_000),
            ),
            line(
                11,
                "2025-09-05T08:20:45Z",
                850_000,
                Credit,
                "TT2509050044",
                tien_anh,
                lvt,
                Some(14_513_000),
            ),
        ];
        assert_eq!(s.lines, want);
    }

    #[test]
    fn camt053_carries_the_same_transactions_as_the_csv() {
        let s = parse_camt053(CAMT).unwrap();
        assert_eq!(s.format, Format::Camt053);
        assert_eq!(s.account.as_deref(), Some("0071000123456"));
        let senders = [
            Some("NGUYEN VAN BO"),
            Some("TRAN THI MAI"),
            Some("LE VAN TUAN"),
            None,
            Some("NGUYEN THI HOA"),
            Some("DO MINH TRIET"),
            Some("TRAN THI MAI"),
        ];
        let want: Vec<StatementLine> = vcb_lines()
            .into_iter()
            .zip(senders)
            .enumerate()
            .map(|(i, (l, sender))| StatementLine {
                line_no: i + 1,
                counterparty: sender.map(str::to_owned),
                balance_after: None,
                ..l
            })
            .collect();
        assert_eq!(s.lines, want);
    }

    #[test]
    fn sniffing_finds_each_layout() {
        let format = |b: &[u8]| parse(b, None, None).unwrap().format;
        assert_eq!(format(VCB), Format::Csv(Preset::Vietcombank));
        assert_eq!(format(TCB), Format::Csv(Preset::Techcombank));
        assert_eq!(format(CAMT), Format::Camt053);
        assert_eq!(parse(VCB, Some(" VCB "), None).unwrap().lines, vcb_lines());
        assert_eq!(parse(CAMT, Some("camt.053"), None).unwrap().lines.len(), 7);
        let err = parse(CUSTOM, None, None).unwrap_err();
        assert_eq!(err.code(), "statement_format");
        assert!(err.to_string().contains("give a column mapping"), "{err}");
        assert_eq!(
            code(parse(VCB, Some("techcombank"), None)),
            "statement_format"
        );
        assert_eq!(code(parse(VCB, Some("mt940"), None)), "statement_format");
        assert_eq!(code(parse(VCB, Some("custom"), None)), "statement_mapping");
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(
            String::from_utf8(VCB.to_vec())
                .unwrap()
                .replace('\n', "\r\n")
                .bytes(),
        );
        assert_eq!(parse(&bytes, None, None).unwrap().lines, vcb_lines());

        // Empty lines and a memo over two lines still give physical line numbers.
        let text = String::from_utf8(VCB.to_vec()).unwrap();
        let spaced = text
            .replacen("STT,", "\r\n\r\nSTT,", 1)
            .replacen("hoc phi.CT", "hoc phi.\r\nCT", 1)
            .replace('\n', "\r\n")
            .replace("\r\r", "\r");
        let lines = parse(spaced.as_bytes(), None, None).unwrap().lines;
        let numbers: Vec<usize> = lines.iter().map(|l| l.line_no).collect();
        assert_eq!(numbers, [11, 13, 14, 15, 16, 17, 18]);
        assert!(lines[0].memo.contains("hoc phi.\r\nCT tu"));
    }

    #[test]
    fn other_encodings_are_refused_with_advice() {
        let err = parse(BAD_ENCODING, None, None).unwrap_err();
        assert_eq!(err.code(), "statement_encoding");
        assert_eq!(err.position(), Some(Position::Line(1)));
        assert!(
            err.to_string()
                .contains("export the statement as CSV UTF-8"),
            "{err}"
        );

        let text = String::from_utf8(VCB.to_vec()).unwrap();
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(code(parse(&utf16, None, None)), "statement_encoding");
        let no_bom: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(code(parse(&no_bom, None, None)), "statement_encoding");
        let mut latin_memo = VCB.to_vec();
        latin_memo.extend(b"8,10/09/2025,5220 - 1,,100.000,,\"Nguy\xEAn\"\n");
        let err = parse(&latin_memo, None, None).unwrap_err();
        assert_eq!(err.position(), Some(Position::Line(18)), "{err}");
    }

    #[test]
    fn a_fractional_amount_names_line_and_column() {
        let err = parse(BAD_AMOUNT, None, None).unwrap_err();
        assert_eq!(err.code(), "statement_row");
        assert_eq!(err.column(), Some("Số tiền ghi có"));
        assert_eq!(
            err.to_string(),
            "line 11, column Số tiền ghi có: '850.000,50' is not a whole number of đồng"
        );
    }

    #[test]
    fn foreign_currencies_are_refused() {
        let err = parse(USD, None, None).unwrap_err();
        assert_eq!(err.code(), "statement_currency");
        assert_eq!(
            err.to_string(),
            "the statement is in USD; only VND statements can be reconciled"
        );

        let usd_csv = String::from_utf8(VCB.to_vec())
            .unwrap()
            .replace("Loại tiền: VND", "Loại tiền: USD");
        let err = parse(usd_csv.as_bytes(), None, None).unwrap_err();
        assert_eq!(
            (err.code(), err.position()),
            ("statement_currency", Some(Position::Line(5)))
        );

        let usd_cell = String::from_utf8(VCB.to_vec())
            .unwrap()
            .replace(",850.000,", ",850 USD,");
        let err = parse(usd_cell.as_bytes(), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 11: the statement is in USD; only VND statements can be reconciled"
        );
    }

    fn camt(entries: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<Stmt><Acct><Id><IBAN>VN00BFTV0071000123456</IBAN></Id></Acct>{entries}</Stmt>
</BkToCstmrStmt></Document>"#
        )
    }

    #[test]
    fn camt_variants_of_dates_references_memos_and_parties() {
        let xml = camt(
            r#"<Ntry><Amt Ccy="VND">500000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
            <BookgDt><DtTm>2025-09-05T08:15:22+07:00</DtTm></BookgDt>
            <NtryDtls><TxDtls><Refs><EndToEndId>E2E-1</EndToEndId><TxId>TX-1</TxId></Refs>
            <RltdPties><Dbtr><Nm>LE THI B</Nm></Dbtr></RltdPties>
            <RmtInf><Ustrd>QD3CFPSA</Ustrd><Ustrd>LE THI B &amp; con</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
            <Ntry><Amt Ccy="VND">1000</Amt><CdtDbtInd>DBIT</CdtDbtInd>
            <BookgDt><DtTm>2025-09-05T08:15:22.123</DtTm></BookgDt>
            <NtryDtls><TxDtls><Refs><TxId>TX-2</TxId></Refs>
            <RltdPties><Cdtr><Pty><Nm>VCB</Nm></Pty></Cdtr></RltdPties></TxDtls></NtryDtls>
            <AddtlNtryInf><![CDATA[Phi SMS <thang 8>]]></AddtlNtryInf></Ntry>
            <Ntry><Amt Ccy="VND">7</Amt><CdtDbtInd>CRDT</CdtDbtInd><ValDt><Dt>2025-09-06</Dt></ValDt>
            <NtryDtls><TxDtls><RltdPties><DbtrAcct><Id><Othr><Id>0011</Id></Othr></Id></DbtrAcct></RltdPties></TxDtls></NtryDtls></Ntry>"#,
        );
        let s = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(s.account.as_deref(), Some("VN00BFTV0071000123456"));
        let mut want = line(
            1,
            "2025-09-05T01:15:22Z",
            500_000,
            Credit,
            "E2E-1",
            "QD3CFPSA LE THI B & con",
            Some("LE THI B"),
            None,
        );
        assert_eq!(s.lines[0], want);
        want = line(
            2,
            "2025-09-05T01:15:22.123Z",
            1000,
            Debit,
            "TX-2",
            "Phi SMS <thang 8>",
            Some("VCB"),
            None,
        );
        assert_eq!(s.lines[1], want);
        let third = &s.lines[2];
        assert_eq!(
            (
                third.booked_at,
                third.bank_ref.as_deref(),
                third.memo.as_str()
            ),
            (utc("2025-09-05T17:00:00Z"), None, "")
        );
        assert_eq!(third.counterparty.as_deref(), Some("0011"));
    }

    #[test]
    fn camt_refusals() {
        let bad = |entries: &str| {
            parse_camt053(camt(entries).as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(r#"<Ntry><Amt Ccy="VND">10</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>"#),
            "entry 1 (Ntry), column BookgDt: '' is missing"
        );
        assert_eq!(
            bad(
                r#"<Ntry><Amt Ccy="VND">10.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2025-09-01</Dt></BookgDt></Ntry>"#
            ),
            "entry 1 (Ntry), column Amt: '10.50' is not a whole number of đồng"
        );
        assert_eq!(
            bad(r#"<Ntry><Amt Ccy="EUR">10</Amt></Ntry>"#),
            "entry 1 (Ntry): the statement is in EUR; only VND statements can be reconciled"
        );
        assert_eq!(
            bad(r#"<Ntry><Amt Ccy="VND">10</Amt><CdtDbtInd>RVSL</CdtDbtInd></Ntry>"#),
            "entry 1 (Ntry), column CdtDbtInd: 'RVSL' is not CRDT or DBIT"
        );
        assert_eq!(
            bad(
                r#"<Ntry><Amt Ccy="VND">10</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2025-02-30</Dt></BookgDt></Ntry>"#
            ),
            "entry 1 (Ntry), column BookgDt: '2025-02-30' is not an ISO date or date-time"
        );
        assert_eq!(code(parse_camt053(camt("").as_bytes())), "statement_empty");

        let xxe = format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE Document [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n{}",
            camt("<Ntry><AddtlNtryInf>&x;</AddtlNtryInf></Ntry>").lines().skip(1).collect::<Vec<_>>().join("\n")
        );
        let err = parse(xxe.as_bytes(), None, None).unwrap_err();
        assert_eq!(err.code(), "statement_format");
        assert!(err.to_string().contains("DOCTYPE"), "{err}");
        let entity = camt(r#"<Ntry><AddtlNtryInf>&x;</AddtlNtryInf></Ntry>"#);
        assert_eq!(code(parse_camt053(entity.as_bytes())), "statement_format");

        let v9 = camt("").replace("camt.053.001.02", "camt.053.001.09");
        let err = parse_camt053(v9.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("001.09 is not supported"), "{err}");
        let camt052 = camt("").replace("camt.053.001.02", "camt.052.001.02");
        assert_eq!(code(parse_camt053(camt052.as_bytes())), "statement_format");
        assert_eq!(
            code(parse_camt053(b"<html><body/></html>")),
            "statement_format"
        );

        let truncated = &CAMT[..CAMT.len() / 2];
        assert_eq!(code(parse_camt053(truncated)), "statement_format");
        let mismatched =
            String::from_utf8(CAMT.to_vec())
                .unwrap()
                .replacen("</Amt>", "</Amount>", 1);
        let err = parse_camt053(mismatched.as_bytes()).unwrap_err();
        assert_eq!(
            (err.code(), err.position()),
            ("statement_format", Some(Position::Line(22))),
            "{err}"
        );

        let two = String::from_utf8(CAMT.to_vec()).unwrap().replacen(
            "</Stmt>",
            "</Stmt><Stmt><Acct><Id><Othr><Id>999</Id></Othr></Id></Acct></Stmt>",
            1,
        );
        assert_eq!(code(parse_camt053(two.as_bytes())), "statement_format");
    }

    fn vcb_with(rows: &str) -> Vec<u8> {
        let head: String = String::from_utf8(VCB.to_vec())
            .unwrap()
            .lines()
            .take(8)
            .map(|l| format!("{l}\n"))
            .collect();
        format!("{head}{rows}").into_bytes()
    }

    #[test]
    fn csv_row_refusals_name_line_and_column() {
        let err = |rows: &str| parse(&vcb_with(rows), None, None).unwrap_err().to_string();
        assert_eq!(
            err("1,31/09/2025,R1,,100.000,,memo\n"),
            "line 9, column Ngày giao dịch: '31/09/2025' is not a date in the format dd/mm/yyyy"
        );
        assert_eq!(
            err("1,,R1,,100.000,,memo\n"),
            "line 9, column Ngày giao dịch: '' is empty; every transaction line needs a date"
        );
        assert_eq!(
            err("1,01/09/2025,R1,5.000,100.000,,memo\n"),
            "line 9, column Số tiền ghi nợ/Số tiền ghi có: '' has amounts in both columns"
        );
        assert_eq!(
            err("1,01/09/2025,R1,0,,,memo\n"),
            "line 9, column Số tiền ghi nợ/Số tiền ghi có: '' has no amount in either column"
        );
        assert_eq!(
            err("1,01/09/2025,R1,,-100.000,,memo\n"),
            "line 9, column Số tiền ghi có: '-100.000' is negative in a credit column"
        );
        assert_eq!(
            err("1,01/09/2025,R1,,\"1,5\",,memo\n"),
            "line 9, column Số tiền ghi có: '1,5' is not a whole number of đồng"
        );
        assert_eq!(
            err("1,01/09/2025,R1,,12.34.567,,memo\n"),
            "line 9, column Số tiền ghi có: '12.34.567' is not an amount in đồng (write 1.235.000, 1,235,000 or 1235000)"
        );
        assert_eq!(code(parse(&vcb_with(""), None, None)), "statement_empty");
        assert_eq!(
            code(parse(&vcb_with("Tổng số,,,0,0,,\n"), None, None)),
            "statement_empty"
        );
        assert_eq!(code(parse(b" \n", None, None)), "statement_empty");
        assert_eq!(code(parse(b"", None, None)), "statement_empty");
    }

    #[test]
    fn csv_skips_blank_rows_repeated_headers_and_accepts_debits_printed_negative() {
        let header = "STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả\n";
        let rows = format!(
            ",,,,,,\n1,01/09/2025,R1,-5.000,,,phi\n{header}2,01/09/2025 13:45,R2,,+7.000 VND,,\"a, b\"\nNgười lập biểu,,,,,,\n"
        );
        let s = parse(&vcb_with(&rows), None, None).unwrap();
        assert_eq!(s.lines.len(), 2);
        assert_eq!(
            (s.lines[0].line_no, s.lines[0].amount, s.lines[0].direction),
            (10, vnd(5000), Debit)
        );
        assert_eq!(
            (s.lines[1].line_no, s.lines[1].booked_at),
            (12, utc("2025-09-01T06:45:00Z"))
        );
        assert_eq!(
            (s.lines[1].bank_ref.as_deref(), s.lines[1].memo.as_str()),
            (Some("R2"), "a, b")
        );
    }

    #[test]
    fn header_problems_are_format_errors() {
        let no_memo = String::from_utf8(VCB.to_vec())
            .unwrap()
            .replace(",Mô tả", ",Nội dung");
        let err = parse(no_memo.as_bytes(), Some("vietcombank"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 8: the header row has no column 'Mô tả'"
        );
        let bilingual = String::from_utf8(TCB.to_vec())
            .unwrap()
            .replace("Nợ,Có,Số dư", "\"Nợ\nDebit\",Có/Credit,Số dư (VND)");
        assert_eq!(
            parse(bilingual.as_bytes(), None, None).unwrap().lines.len(),
            6
        );
    }

    #[test]
    fn mappings_are_validated() {
        let mut m = custom_mapping();
        m.credit = Some("Có".into());
        assert_eq!(code(parse(CUSTOM, None, Some(&m))), "statement_mapping");
        let mut m = custom_mapping();
        m.amount = None;
        assert_eq!(code(parse(CUSTOM, None, Some(&m))), "statement_mapping");
        let mut m = custom_mapping();
        m.date_format = "%Q".into();
        assert_eq!(code(parse_csv(CUSTOM, &m)), "statement_mapping");
        let mut m = custom_mapping();
        m.memo = " ".into();
        assert_eq!(code(parse_csv(CUSTOM, &m)), "statement_mapping");
        assert_eq!(Preset::from_name("TCB"), Some(Preset::Techcombank));
        assert_eq!(Preset::from_name("acb"), None);
        assert!(Plan::new(&Preset::Custom.mapping()).is_ok());
    }

    #[test]
    fn amounts_as_vietnamese_exports_write_them() {
        let ok = [
            ("1.235.000", 1_235_000),
            ("1,235,000", 1_235_000),
            ("1235000", 1_235_000),
            ("1 235 000", 1_235_000),
            ("1\u{a0}235\u{a0}000", 1_235_000),
            ("1.235.000 VND", 1_235_000),
            ("1.235.000 vnd", 1_235_000),
            ("1.235.000 VNĐ", 1_235_000),
            ("1.235.000đ", 1_235_000),
            ("VND 1.235.000", 1_235_000),
            ("+1.235.000", 1_235_000),
            ("-1.235.000", -1_235_000),
            ("(22.000)", -22_000),
            ("1.235.000,00", 1_235_000),
            ("1,235,000.00", 1_235_000),
            ("1235000.0", 1_235_000),
            ("1.000", 1000),
            ("0", 0),
        ];
        for (text, want) in ok {
            assert_eq!(parse_amount(text), Ok(want), "{text}");
        }
        let bad = [
            ("1.5", AmountIssue::Fractional),
            ("1.235.000,50", AmountIssue::Fractional),
            ("1,235,000.05", AmountIssue::Fractional),
            ("1.000.00", AmountIssue::NotANumber),
            ("12.34.567", AmountIssue::NotANumber),
            ("1.235,000", AmountIssue::NotANumber),
            ("--5", AmountIssue::NotANumber),
            ("+-5", AmountIssue::NotANumber),
            ("abc", AmountIssue::NotANumber),
            ("", AmountIssue::NotANumber),
            ("1e6", AmountIssue::NotANumber),
            ("99999999999999999999", AmountIssue::TooLarge),
            ("100 usd", AmountIssue::Currency("USD".into())),
            ("EUR 100", AmountIssue::Currency("EUR".into())),
        ];
        for (text, want) in bad {
            assert_eq!(parse_amount(text), Err(want), "{text}");
        }
        assert_eq!(parse_decimal_dong("0001235000.000"), Ok(1_235_000));
        assert_eq!(parse_decimal_dong("1e3"), Err(AmountIssue::NotANumber));
        assert_eq!(
            parse_decimal_dong("10000000000000"),
            Err(AmountIssue::TooLarge)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..1024),
            hint in proptest::option::of(prop_oneof![
                Just("camt053"), Just("vietcombank"), Just("techcombank"), Just("custom"), Just("?")
            ]),
        ) {
            let _ = parse(&bytes, hint, Some(&custom_mapping()));
            let _ = parse(&bytes, None, None);
        }

        #[test]
        fn parse_never_panics_on_text(text in "\\PC{0,512}") {
            let _ = parse(text.as_bytes(), None, None);
        }

        #[test]
        fn parse_never_panics_on_rows_after_a_header(rows in "[0-9.,;+\\-/: ()\"A-Za-zđĐ₫\n\r]{0,400}") {
            let _ = parse(&vcb_with(&rows), None, None);
            let tcb_head = "Ngày giao dịch,Đối tác,Diễn giải,Nợ,Có,Số dư,Mã giao dịch\n";
            let _ = parse(format!("{tcb_head}{rows}").as_bytes(), None, None);
            let custom_head = "Ngày hạch toán;Giờ;Số bút toán;Số tiền;Người chuyển;Nội dung;Số dư\n";
            let _ = parse(format!("{custom_head}{rows}").as_bytes(), None, Some(&custom_mapping()));
        }

        #[test]
        fn parse_never_panics_inside_a_camt_entry(inner in "[<>/&;=\"a-zA-Z0-9 .:+\\-]{0,300}") {
            let xml = camt(&format!("<Ntry><Amt Ccy=\"VND\">{inner}</Amt>{inner}</Ntry>"));
            let _ = parse(xml.as_bytes(), None, None);
        }

        #[test]
        fn grouped_amounts_read_back(n in 1i64..=MAX_DONG) {
            let dotted = vnd(n).formatted();
            prop_assert_eq!(parse_amount(&dotted), Ok(n));
            let commas = dotted.replace('.', ",").replace(" ₫", ".00");
            prop_assert_eq!(parse_amount(&commas), Ok(n));
        }
    }
}
