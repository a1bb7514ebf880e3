//! Field types of request bodies whose schema states the rule the handlers apply, so the OpenAPI
//! document promises exactly what is accepted.
//!
//! A text field holds at most `MAX` characters as sent, checked while the body is read (422
//! `invalid_body`); the handler then cleans it (`domain::text`) and answers its own code for what
//! else is wrong. The schema's `pattern` says that rest: [`Text`] is not blank and holds no
//! control character other than whitespace, [`OptionalText`] may be blank (it then counts as
//! absent), [`Code`] is ASCII letters, digits and `-_./`, with whitespace around it ignored.
//!
//! One thing JSON Schema cannot count is Unicode composition: text is stored composed (NFC), and
//! the few characters NFC writes as two or three (none of them Vietnamese) count as such against
//! `MAX` after cleaning.

use crate::domain::money::MAX_DONG;
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Whitespace as Rust's `char::is_whitespace` knows it, in JSON Schema (ECMA-262) regex syntax.
const WHITESPACE: &str =
    r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters that are not whitespace: refused in any text field.
const CONTROL: &str = r"\u0000-\u0008\u000e-\u001f\u007f-\u0084\u0086-\u009f";

fn text_pattern() -> String {
    format!("^[^{CONTROL}]*[^{CONTROL}{WHITESPACE}][^{CONTROL}]*$")
}

fn optional_text_pattern() -> String {
    format!("^[^{CONTROL}]*$")
}

fn code_pattern() -> String {
    format!("^[{WHITESPACE}]*[A-Za-z0-9._/-]+[{WHITESPACE}]*$")
}

fn optional_code_pattern() -> String {
    format!("^[{WHITESPACE}]*(?:[A-Za-z0-9._/-]+[{WHITESPACE}]*)?$")
}

/// `body`, with the whitespace `str::trim` removes allowed around it.
pub fn trimmed(body: &str) -> String {
    format!("^[{WHITESPACE}]*{body}[{WHITESPACE}]*$")
}

fn bounded<'de, D: Deserializer<'de>>(d: D, max: usize) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.chars().count() > max {
        return Err(serde::de::Error::custom(format!(
            "is longer than {max} characters"
        )));
    }
    Ok(s)
}

fn string_schema(max: usize, min: usize, pattern: String, description: String) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(description))
        .build()
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $min:expr, $pattern:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name<const MAX: usize>(String);

        impl<const MAX: usize> $name<MAX> {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl<const MAX: usize> std::ops::Deref for $name<MAX> {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl<'de, const MAX: usize> Deserialize<'de> for $name<MAX> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                bounded(d, MAX).map(Self)
            }
        }

        impl<const MAX: usize> PartialSchema for $name<MAX> {
            fn schema() -> RefOr<Schema> {
                string_schema(MAX, $min, $pattern, format!($what, MAX)).into()
            }
        }

        impl<const MAX: usize> ToSchema for $name<MAX> {
            fn name() -> Cow<'static, str> {
                Cow::Owned(format!(concat!($prefix, "{}"), MAX))
            }
        }
    };
}

text_type!(
    /// Free text such as a name or a reason: not blank, at most `MAX` characters.
    Text,
    "Text",
    1,
    text_pattern(),
    "Free text, not blank, at most {} characters; no control characters but whitespace. Stored trimmed, inner whitespace collapsed, composed (NFC)."
);

text_type!(
    /// Free text that may be left blank, which counts as absent.
    OptionalText,
    "OptionalText",
    0,
    optional_text_pattern(),
    "Free text, at most {} characters; no control characters but whitespace. Blank counts as absent."
);

text_type!(
    /// A reason stated in words, e.g. why an auditor opens a record or a student is erased:
    /// 10 to `MAX` characters as sent.
    Reason,
    "Reason",
    10,
    text_pattern(),
    "A reason in words: 10 to {} characters as sent, not blank; no control characters but whitespace. Stored trimmed, inner whitespace collapsed, composed (NFC)."
);

text_type!(
    /// A code such as a school, item or student code.
    Code,
    "Code",
    1,
    code_pattern(),
    "A code: ASCII letters, digits and - _ . / (whitespace around it is ignored), at most {} characters. Case does not matter: it is stored upper-cased."
);

text_type!(
    /// A code that may be left blank, which counts as absent.
    OptionalCode,
    "OptionalCode",
    0,
    optional_code_pattern(),
    "A code, or blank for none: ASCII letters, digits and - _ . / (whitespace around it is ignored), at most {} characters."
);

/// A string schema with a pattern, for fields a handler parses.
fn pattern_schema(pattern: String, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

macro_rules! schema_only {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {}
    };
}

schema_only!(
    /// A provider's name as `payments::provider_id` reads it.
    ProviderName => pattern_schema(
        trimmed("[A-Za-z0-9_]{2,32}"),
        "A provider: 2 to 32 letters, digits or _, e.g. `vnpay`, `momo`, `sepay`, `bank` (case does not matter).",
    )
);

schema_only!(
    /// A provider of a cashless payment: any provider name but `cash`.
    CashlessProvider => pattern_schema(
        trimmed(&format!("(?![Cc][Aa][Ss][Hh][{WHITESPACE}]*$)[A-Za-z0-9_]{{2,32}}")),
        "Who carried the money: 2 to 32 letters, digits or _ (`vnpay`, `momo`, `zalopay`, `sepay`, `casso`, `bank`, …), not `cash`; case does not matter.",
    )
);

schema_only!(
    /// A day, `YYYY-MM-DD`.
    Date => ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Date)))
        .description(Some("A day, `YYYY-MM-DD`."))
        .into()
);

schema_only!(
    /// A day of this century, `YYYY-MM-DD`, as invoices take due dates.
    CenturyDate => ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Date)))
        .pattern(Some("^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"))
        .description(Some("A day from 2000-01-01 to 2099-12-31, `YYYY-MM-DD`."))
        .into()
);

/// A payment-code symbol, either case: 2-9 and A-Z without I, L, O.
const SYMBOL: &str = "[2-9A-HJKMNP-Za-hjkmnp-z]";
/// What `domain::code` drops when it reads a code: spaces, tabs, dashes, dots, underscores.
const SEPARATOR: &str = r"[ \t._-]";

schema_only!(
    /// A school's payment-code prefix as `SchoolPrefix::parse` reads it.
    PaymentPrefix => pattern_schema(
        format!("^{SEPARATOR}*(?:{SYMBOL}{SEPARATOR}*){{2,4}}$"),
        "2 to 4 characters from 2-9 and A-Z without I, L, O (case, spaces, dashes and dots do not matter); starts every payment code of the school.",
    )
);

schema_only!(
    /// A payment code as `PaymentCode::parse` reads it; its check character is the handler's to
    /// verify.
    PaymentCodeText => pattern_schema(
        format!("^{SEPARATOR}*(?:{SYMBOL}{SEPARATOR}*){{8,10}}$"),
        "A payment code: 8 to 10 characters from 2-9 and A-Z without I, L, O, the last a check character (case, spaces, dashes and dots do not matter).",
    )
);

schema_only!(
    /// A billing period as `Period::parse` reads it.
    PeriodText => pattern_schema(
        trimmed("20[0-9]{2}-(0[1-9]|1[0-2])"),
        "A billing period `YYYY-MM`, from 2000-01 to 2099-12.",
    )
);

/// The schema of an internally tagged enum (`#[serde(tag = …)]`) whose variants each wrap a
/// struct: one object per variant, the struct's own with the tag added as a constant. (utoipa's
/// own is an `allOf` of the struct and the tag, which no object satisfies when the struct denies
/// unknown fields, as ours do.)
pub fn tagged<const N: usize>(tag: &str, variants: [(&str, RefOr<Schema>); N]) -> RefOr<Schema> {
    let mut one_of = utoipa::openapi::schema::OneOfBuilder::new();
    for (value, schema) in variants {
        let RefOr::T(Schema::Object(mut object)) = schema else {
            unreachable!("a tagged variant wraps a struct");
        };
        object.properties.insert(
            tag.to_string(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([value]))
                .into(),
        );
        object.required.insert(0, tag.to_string());
        one_of = one_of.item(object);
    }
    one_of.into()
}

schema_only!(
    /// A NAPAS bank BIN as a receiving account gives it.
    BankBin => pattern_schema(trimmed("[0-9]{6}"), "NAPAS bank BIN: 6 digits.")
);

schema_only!(
    /// A bank account number as the VietQR payload carries it.
    AccountNumber => pattern_schema(
        trimmed("[A-Za-z0-9]{1,19}"),
        "A bank account number: 1 to 19 letters or digits.",
    )
);

fn money(min: i64, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(min))
        .maximum(Some(MAX_DONG))
        .description(Some(description))
        .into()
}

/// Schema of an amount that must be more than 0 đồng (the handler or the store checks it).
pub struct PositiveVnd;

impl PartialSchema for PositiveVnd {
    fn schema() -> RefOr<Schema> {
        money(1, "Whole đồng, more than 0, at most 1,000,000,000,000.")
    }
}

impl ToSchema for PositiveVnd {}

/// Schema of an amount of 0 đồng or more.
pub struct NonNegativeVnd;

impl PartialSchema for NonNegativeVnd {
    fn schema() -> RefOr<Schema> {
        money(0, "Whole đồng, 0 or more, at most 1,000,000,000,000.")
    }
}

impl ToSchema for NonNegativeVnd {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text::{clean_text, identifier, optional_text};

    /// What each pattern accepts, read as JSON Schema reads it, is what the rule accepts.
    #[test]
    fn text_rules_and_schemas_agree() {
        let samples = [
            "Nguyễn Văn An",
            "  An  ",
            "",
            "   ",
            "\u{a0}\u{3000}",
            "a\u{0}b",
            "a\u{1f}",
            "a\u{85}b",
            "\u{85}",
            "\u{feff}",
            "a\tb\nc",
            "\u{7f}",
            "\u{9f}x",
            "HS-001",
            " hs.01/2_3 ",
            "Đ1",
            "a b",
            "\u{2028}X\u{2029}",
        ];
        for s in samples {
            let text_ok = clean_text(s, "f", 500).is_ok();
            let optional_ok = optional_text(Some(s), "f", 500).is_ok();
            let code_ok = identifier(s, "f", 500).is_ok();
            assert_eq!(text_like(s), text_ok, "text {s:?}");
            assert_eq!(optional_like(s), optional_ok, "optional {s:?}");
            assert_eq!(code_like(s), code_ok, "code {s:?}");
        }
    }

    /// Whether `c` is in `class`, one of the constants above (single characters and ranges, as
    /// the patterns write them).
    fn in_class(c: char, class: &str) -> bool {
        let mut chars: Vec<char> = Vec::new();
        let mut rest = class;
        while !rest.is_empty() {
            let (c, next) = if let Some(r) = rest.strip_prefix(r"\u") {
                let (hex, r) = r.split_at(4);
                (
                    char::from_u32(u32::from_str_radix(hex, 16).expect("hex")).expect("char"),
                    r,
                )
            } else if let Some(r) = rest.strip_prefix(r"\t") {
                ('\t', r)
            } else if let Some(r) = rest.strip_prefix(r"\n") {
                ('\n', r)
            } else if let Some(r) = rest.strip_prefix(r"\f") {
                ('\u{c}', r)
            } else if let Some(r) = rest.strip_prefix(r"\r") {
                ('\r', r)
            } else {
                let c = rest.chars().next().expect("char");
                (c, &rest[c.len_utf8()..])
            };
            chars.push(c);
            rest = next;
        }
        let mut i = 0;
        while i < chars.len() {
            if i + 2 < chars.len() && chars[i + 1] == '-' {
                if (chars[i]..=chars[i + 2]).contains(&c) {
                    return true;
                }
                i += 3;
            } else {
                if chars[i] == c {
                    return true;
                }
                i += 1;
            }
        }
        false
    }

    fn text_like(s: &str) -> bool {
        !s.chars().any(|c| in_class(c, CONTROL))
            && s.chars()
                .any(|c| !in_class(c, CONTROL) && !in_class(c, WHITESPACE))
    }

    fn optional_like(s: &str) -> bool {
        !s.chars().any(|c| in_class(c, CONTROL))
    }

    fn code_like(s: &str) -> bool {
        let t = s.trim_matches(|c| in_class(c, WHITESPACE));
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
    }

    #[test]
    fn whitespace_and_control_classes_are_rusts() {
        for u in 0..=0x3000u32 {
            let Some(c) = char::from_u32(u) else { continue };
            assert_eq!(in_class(c, WHITESPACE), c.is_whitespace(), "{u:#x}");
            assert_eq!(
                in_class(c, CONTROL),
                c.is_control() && !c.is_whitespace(),
                "{u:#x}"
            );
        }
        for u in 0x3001..=0x10ffffu32 {
            let Some(c) = char::from_u32(u) else { continue };
            assert!(!c.is_whitespace() && !c.is_control(), "{u:#x}");
        }
    }
}
