//! Amounts as banks write them: whole đồng, thousands separators of either kind, a currency
//! marker, a zero fraction; anything else is refused with the reason.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AmountIssue {
    Fractional,
    NotANumber,
    TooLarge,
    Currency(String),
}

pub(super) fn amount_error(
    at: Position,
    column: &str,
    value: &str,
    issue: AmountIssue,
) -> StatementError {
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
pub(super) const FOREIGN_CURRENCIES: &[&str] = &[
    "USD", "EUR", "JPY", "AUD", "GBP", "CNY", "SGD", "CAD", "CHF", "HKD", "KRW", "THB", "NZD",
];

/// A signed amount as Vietnamese exports print it: `1.235.000`, `1,235,000`, `1235000`, with an
/// optional sign or accounting parentheses, a `VND`/`đ`/`₫` mark and a zero fraction (`,00`).
pub(super) fn parse_amount(cell: &str) -> Result<i64, AmountIssue> {
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

pub(super) fn strip_currency(t: &str) -> Result<&str, AmountIssue> {
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
pub(super) fn strip_zero_fraction(t: &str) -> Result<&str, AmountIssue> {
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
pub(super) fn parse_decimal_dong(t: &str) -> Result<i64, AmountIssue> {
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
