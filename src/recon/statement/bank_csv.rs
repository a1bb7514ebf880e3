//! CSV exports from internet banking: the header found after a preamble, columns by preset or
//! mapping, each row read into a line or refused with its line and column.

use super::*;

/// A validated mapping with what every row needs precomputed.
pub(super) struct Plan<'m> {
    m: &'m ColumnMapping,
    header_key: String,
    date_hint: String,
}

impl<'m> Plan<'m> {
    pub(super) fn new(m: &'m ColumnMapping) -> Result<Self, StatementError> {
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
pub(super) fn key(name: &str) -> String {
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
pub(super) struct Cols {
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

pub(super) fn resolve(header: &csv::StringRecord, m: &ColumnMapping) -> Result<Cols, Vec<String>> {
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
pub(super) struct Located<'t> {
    reader: csv::Reader<&'t [u8]>,
    lines: LineCounter<'t>,
    cols: Cols,
    /// The header's date cell: the header repeated at a page break is skipped by it.
    header_date: String,
    /// Non-empty rows before the header, with their line numbers.
    preamble: Vec<(usize, String)>,
}

pub(super) enum Miss {
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
pub(super) struct LineCounter<'t> {
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
pub(super) fn delimiters(text: &str) -> Vec<u8> {
    let first = text.lines().next().unwrap_or_default().trim_end();
    match first.strip_prefix("sep=").map(str::as_bytes) {
        Some(&[d]) => vec![d],
        _ => vec![b',', b';', b'\t'],
    }
}

pub(super) fn locate<'t>(text: &'t str, plan: &Plan<'_>) -> Result<Located<'t>, Miss> {
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

pub(super) fn csv_from_text(
    text: &str,
    mapping: &ColumnMapping,
    preset: Preset,
) -> Result<Statement, StatementError> {
    let plan = Plan::new(mapping)?;
    let located = locate(text, &plan).map_err(|miss| miss.into_error(mapping))?;
    read_body(located, &plan, Format::Csv(preset))
}

/// No layout named: the first preset whose header row is found.
pub(super) fn sniff_csv(text: &str) -> Result<Statement, StatementError> {
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

pub(super) fn read_body(
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

pub(super) const ACCOUNT_PHRASES: &[&[&str]] = &[
    &["SO", "TAI", "KHOAN"],
    &["ACCOUNT", "NUMBER"],
    &["ACCOUNT", "NO"],
    &["SO", "TK"],
];
pub(super) const CURRENCY_PHRASES: &[&[&str]] = &[&["LOAI", "TIEN"], &["CURRENCY"]];

/// The first of the next few words after a phrase that satisfies `accept`.
pub(super) fn after_phrase<'w>(
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
pub(super) fn preamble_account(
    preamble: &[(usize, String)],
) -> Result<Option<String>, StatementError> {
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
pub(super) const SUMMARY_WORDS: &[&str] = &[
    "TONG",
    "CONG",
    "TOTAL",
    "SO DU",
    "BALANCE",
    "DOANH SO",
    "PHAT SINH",
];

pub(super) fn is_summary(record: &csv::StringRecord) -> bool {
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
pub(super) fn csv_line(
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
