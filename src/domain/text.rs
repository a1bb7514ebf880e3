//! Text fields as people type them: Vietnamese names in NFC, identifiers without surprises.

use std::borrow::Cow;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    #[error("{0} contains control characters")]
    Control(&'static str),
    #[error("{0} may contain only letters A-Z, digits and - _ . /")]
    NotAnIdentifier(&'static str),
}

/// Free text such as a name or a reason: trimmed, inner whitespace collapsed, composed to NFC so
/// that "Nguyễn" typed on a Mac and on Windows is the same string.
pub fn clean_text(text: &str, field: &'static str, max: usize) -> Result<String, TextError> {
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(TextError::Control(field));
    }
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let out: String = joined.nfc().collect();
    if out.is_empty() {
        return Err(TextError::Empty(field));
    }
    if out.chars().count() > max {
        return Err(TextError::TooLong(field, max));
    }
    Ok(out)
}

pub fn optional_text(
    text: Option<&str>,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, TextError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => clean_text(t, field, max).map(Some),
    }
}

/// Free text as a sender or bank writes it (a memo, a payer's name), which we must keep rather
/// than refuse: trimmed, empty as `None`, and, when it holds control characters (a NUL among
/// them, which PostgreSQL cannot store), each replaced by a space and the spaces collapsed.
pub fn sender_text(text: &str) -> Option<String> {
    let t = text.trim();
    let out = if t.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        t.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        t.to_string()
    };
    (!out.is_empty()).then_some(out)
}

/// Whether `text` holds a character no identifier may: a control character.
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// An identifier such as a school, item or student code: ASCII letters, digits and `-_./`,
/// upper-cased so that `hs001` and `HS001` are one student.
pub fn identifier(text: &str, field: &'static str, max: usize) -> Result<String, TextError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(TextError::Empty(field));
    }
    if t.len() > max {
        return Err(TextError::TooLong(field, max));
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
    {
        return Err(TextError::NotAnIdentifier(field));
    }
    Ok(t.to_ascii_uppercase())
}

/// Two writings of one bank account number: spaces, dots and dashes do not count.
pub fn same_account(a: &str, b: &str) -> bool {
    let digits = |s: &str| -> String { s.chars().filter(|c| c.is_ascii_alphanumeric()).collect() };
    digits(a).eq_ignore_ascii_case(&digits(b))
}

/// A cell for a CSV a person will open in a spreadsheet: one that starts with `=`, `+`, `-`, `@`,
/// a tab or a carriage return gets a leading `'`, so a spreadsheet shows it as text instead of
/// running it as a formula (OWASP, "CSV Injection"). A cell that is only a number (every amount
/// and count we write, negative ones too) is left as it is: it cannot hold a formula, and a
/// spreadsheet must still add it up.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    let risky = matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    );
    if risky && !is_plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// `-123` or `-0.25`: an optional minus, digits, at most one point with digits after it.
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && fraction.map_or(true, all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_composed_and_trimmed() {
        // "Nguyễn" decomposed (e + combining circumflex + combining tilde) becomes the composed form.
        let decomposed = "  Nguye\u{0302}\u{0303}n   Văn\tAn ";
        assert_eq!(
            clean_text(decomposed, "name", 100).unwrap(),
            "Nguyễn Văn An"
        );
        assert_eq!(
            clean_text("   ", "name", 100),
            Err(TextError::Empty("name"))
        );
        assert_eq!(
            clean_text("a\u{0}b", "name", 100),
            Err(TextError::Control("name"))
        );
        assert_eq!(
            clean_text("abcdef", "name", 5),
            Err(TextError::TooLong("name", 5))
        );
    }

    #[test]
    fn sender_text_keeps_what_it_can() {
        assert_eq!(
            sender_text("  QD3CFPSA  hoc phi "),
            Some("QD3CFPSA  hoc phi".into())
        );
        assert_eq!(
            sender_text("QD3CFPSA\u{0} hoc\u{7}phi\u{1b}"),
            Some("QD3CFPSA hoc phi".into())
        );
        assert_eq!(sender_text("\u{0}\u{0} "), None);
        assert_eq!(sender_text("   "), None);
        assert!(has_control("77\u{0}1") && has_control("a\tb") && !has_control("FT-77"));
    }

    proptest::proptest! {
        #[test]
        fn sender_text_never_holds_a_control_character(s in "\\PC*|[\\x00-\\x1f a-z]*") {
            if let Some(t) = sender_text(&s) {
                proptest::prop_assert!(!t.is_empty());
                proptest::prop_assert!(!t.chars().any(|c| c.is_control() && !c.is_whitespace()));
                proptest::prop_assert!(!t.contains('\0'));
            }
        }
    }

    #[test]
    fn identifiers_are_ascii_and_upper_case() {
        assert_eq!(
            identifier(" hs-001 ", "student_code", 32).unwrap(),
            "HS-001"
        );
        assert_eq!(
            identifier("Đ1", "student_code", 32),
            Err(TextError::NotAnIdentifier("student_code"))
        );
        assert_eq!(
            identifier("a b", "student_code", 32),
            Err(TextError::NotAnIdentifier("student_code"))
        );
    }

    #[test]
    fn spreadsheet_cells_never_start_a_formula() {
        for (cell, want) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+84 912 345 678", "'+84 912 345 678"),
            ("-1+2", "'-1+2"),
            ("-", "'-"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-1.", "'-1."),
            ("-.5", "'-.5"),
            // Numbers stay numbers, negative ones too.
            ("-1500000", "-1500000"),
            ("-0.25", "-0.25"),
            ("1500000", "1500000"),
            // Anything else is untouched.
            ("Vượt mức trần = đã duyệt", "Vượt mức trần = đã duyệt"),
            ("'=1", "'=1"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(cell), want, "{cell:?}");
        }
    }
}
