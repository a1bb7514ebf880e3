//! Text fields as people type them: Vietnamese names in NFC, identifiers without surprises.

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
}
