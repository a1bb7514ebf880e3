//! Payment codes: the short reference a parent puts in a bank-transfer memo.
//!
//! Layout: `PREFIX BODY CHECK`, e.g. `QD` + `7K3MX` + a check symbol.
//! - Alphabet: `23456789ABCDEFGHJKMNPQRSTUVWXYZ`, 31 symbols: digits and upper-case letters
//!   without the look-alikes 0/O, 1/I/L. Banks upper-case memos, so case never matters.
//! - PREFIX: 2 to 4 symbols chosen per school, so a code names its school.
//! - BODY: 5 symbols, the school's invoice number scrambled by a bijection so that consecutive
//!   invoices do not get codes one symbol apart (31^5 ≈ 28.6 million invoices per school).
//! - CHECK: one symbol such that Σ (position × value) ≡ 0 (mod 31), positions counted from 1.
//!
//! Because 31 is prime and every weight is between 1 and 10, changing any one symbol changes the
//! sum by (weight × difference) ≢ 0 (mod 31), and swapping two symbols changes it by
//! (weight difference × value difference) ≢ 0: one typo or one swap never yields another valid code.

use serde::Serialize;
use std::collections::HashSet;
use std::fmt;

pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const BASE: u64 = 31;
pub const BODY_LEN: usize = 5;
/// 31^5: how many distinct bodies exist.
pub const BODY_SPACE: u64 = 28_629_151;
// Any multiplier not divisible by 31 is a bijection modulo 31^5.
const SCRAMBLE_MUL: u64 = 17_711_297;
const SCRAMBLE_ADD: u64 = 1_234_567;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a payment code has {min} to {max} characters")]
    BadLength { min: usize, max: usize },
    #[error(
        "contains a character that payment codes never use (only 2-9 and A-Z without I, L, O)"
    )]
    BadCharacter,
    #[error("the check character does not match: the code is mistyped")]
    WrongCheck,
    #[error("a school prefix has 2 to 4 characters from 2-9 and A-Z without I, L, O")]
    BadPrefix,
    #[error("the school has used every payment code")]
    Exhausted,
}

fn value_of(symbol: u8) -> Option<u8> {
    ALPHABET.iter().position(|&c| c == symbol).map(|i| i as u8)
}

fn check_sum(symbols: &[u8]) -> u64 {
    symbols
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u64 + 1) * u64::from(value_of(s).unwrap_or(0)))
        .sum::<u64>()
        % BASE
}

/// Removes what banks and people insert into codes: spaces, dashes, dots, underscores; upper-cases.
fn canonical(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '_' | '\t'))
        .flat_map(|c| c.to_uppercase())
        .collect()
}

/// A school's code prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SchoolPrefix(String);

impl SchoolPrefix {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let t = canonical(text);
        if !(2..=4).contains(&t.len()) || !t.bytes().all(|b| value_of(b).is_some()) {
            return Err(CodeError::BadPrefix);
        }
        Ok(Self(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment code whose check character is right. Holding one means it is well formed; whether
/// an invoice carries it is for the store to say.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PaymentCode(String);

impl PaymentCode {
    pub const MIN_LEN: usize = 2 + BODY_LEN + 1;
    pub const MAX_LEN: usize = 4 + BODY_LEN + 1;

    /// The code of a school's `number`-th invoice (0-based).
    pub fn generate(prefix: &SchoolPrefix, number: u64) -> Result<Self, CodeError> {
        if number >= BODY_SPACE {
            return Err(CodeError::Exhausted);
        }
        let mut n = (number * SCRAMBLE_MUL + SCRAMBLE_ADD) % BODY_SPACE;
        let mut body = [0u8; BODY_LEN];
        for slot in body.iter_mut().rev() {
            *slot = ALPHABET[(n % BASE) as usize];
            n /= BASE;
        }
        let mut symbols: Vec<u8> = prefix.0.bytes().chain(body).collect();
        let len = symbols.len() as u64 + 1;
        let s = check_sum(&symbols);
        // Solve s + len × c ≡ 0 (mod 31) for c; 31 is prime so len has an inverse.
        let c = ((BASE - s) % BASE * mod_inverse(len)) % BASE;
        symbols.push(ALPHABET[c as usize]);
        Ok(Self(String::from_utf8(symbols).expect("alphabet is ASCII")))
    }

    /// Reads a code as a person or a bank may have written it (`lqd-7k3mx q`).
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let t = canonical(text);
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&t.len()) {
            return Err(CodeError::BadLength {
                min: Self::MIN_LEN,
                max: Self::MAX_LEN,
            });
        }
        Self::from_canonical(&t)
    }

    /// `t` is already upper-case with separators removed.
    pub fn from_canonical(t: &str) -> Result<Self, CodeError> {
        if !t.bytes().all(|b| value_of(b).is_some()) {
            return Err(CodeError::BadCharacter);
        }
        if check_sum(t.as_bytes()) != 0 {
            return Err(CodeError::WrongCheck);
        }
        Ok(Self(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most payment codes read from one payment's texts. A transfer naming more names no single
/// invoice, and keeping only the first of so many still says "many", never "one".
pub const MAX_CODES_READ: usize = 16;

/// The payment codes of `prefix` in `texts` (a sender's order reference, then the memo), each
/// once, in the order they appear, at most [`MAX_CODES_READ`].
pub fn codes_in<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    prefix: &SchoolPrefix,
) -> Vec<PaymentCode> {
    let mut seen = std::collections::HashSet::new();
    let mut codes = Vec::new();
    for text in texts {
        for c in find_in_text(text, prefix) {
            if codes.len() == MAX_CODES_READ {
                return codes;
            }
            if seen.insert(c.clone()) {
                codes.push(c);
            }
        }
    }
    codes
}

/// Every well-formed code of `prefix` anywhere in a transfer memo, however the bank spaced,
/// dotted or cased it ("qd-3cf psa", "MBVCB.123.QD3CFPSA.CT tu"). Candidates only: whether an
/// invoice carries one is for the caller to check, and more than one is ambiguous.
pub fn find_in_text(text: &str, prefix: &SchoolPrefix) -> Vec<PaymentCode> {
    let squeezed: Vec<u8> = text
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let p = prefix.0.as_bytes();
    let len = p.len() + BODY_LEN + 1;
    let mut out: Vec<PaymentCode> = Vec::new();
    // A set, not a scan of `out`: a long memo may hold thousands of codes, and this runs for
    // every notification, so it must stay linear in the memo's length.
    let mut seen: HashSet<PaymentCode> = HashSet::new();
    for start in 0..squeezed.len().saturating_sub(len - 1) {
        let window = &squeezed[start..start + len];
        if window.starts_with(p) {
            if let Ok(code) = std::str::from_utf8(window)
                .map_err(|_| CodeError::BadCharacter)
                .and_then(PaymentCode::from_canonical)
            {
                if seen.insert(code.clone()) {
                    out.push(code);
                }
            }
        }
    }
    out
}

fn mod_inverse(a: u64) -> u64 {
    // Fermat: a^(p-2) mod p for prime p.
    let (mut result, mut base, mut exp) = (1u64, a % BASE, BASE - 2);
    while exp > 0 {
        if exp & 1 == 1 {
            result = result * base % BASE;
        }
        base = base * base % BASE;
        exp >>= 1;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn prefix(s: &str) -> SchoolPrefix {
        SchoolPrefix::parse(s).unwrap()
    }

    #[test]
    fn alphabet_has_no_look_alikes() {
        for c in b"01ILO" {
            assert!(!ALPHABET.contains(c));
        }
        assert_eq!(BASE.pow(BODY_LEN as u32), BODY_SPACE);
    }

    #[test]
    fn generated_codes_parse_and_survive_memo_noise() {
        let code = PaymentCode::generate(&prefix("QDN"), 42).unwrap();
        assert_eq!(code.as_str().len(), 9);
        assert!(code.as_str().starts_with("QDN"));
        let noisy = format!(
            "{}-{} {}",
            &code.as_str()[..3],
            &code.as_str()[3..6],
            &code.as_str()[6..]
        )
        .to_lowercase();
        assert_eq!(PaymentCode::parse(&noisy).unwrap(), code);
    }

    #[test]
    fn rejects_malformed_codes() {
        assert_eq!(
            PaymentCode::parse("AB12"),
            Err(CodeError::BadLength { min: 8, max: 10 })
        );
        assert_eq!(
            PaymentCode::parse("QDN0K3MXQ"),
            Err(CodeError::BadCharacter)
        );
        let good = PaymentCode::generate(&prefix("QDN"), 7).unwrap();
        let mut bad = good.as_str().as_bytes().to_vec();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'2' { b'3' } else { b'2' };
        assert_eq!(
            PaymentCode::parse(std::str::from_utf8(&bad).unwrap()),
            Err(CodeError::WrongCheck)
        );
    }

    #[test]
    fn prefixes_are_validated() {
        assert!(SchoolPrefix::parse("qdn").is_ok());
        assert_eq!(SchoolPrefix::parse("L"), Err(CodeError::BadPrefix));
        assert_eq!(SchoolPrefix::parse("QDNXY"), Err(CodeError::BadPrefix));
        assert_eq!(SchoolPrefix::parse("L0"), Err(CodeError::BadPrefix));
    }

    #[test]
    fn finds_codes_in_bank_memos() {
        let p = prefix("QD");
        let code = PaymentCode::generate(&p, 0).unwrap();
        let c = code.as_str();
        let memos = [
            format!("MBVCB.3278126542.{c} NGUYEN VAN BO chuyen tien"),
            format!("CT DEN:0912 {}-{} {}", &c[..2], &c[2..5], &c[5..]).to_lowercase(),
            c.to_string(),
        ];
        for m in &memos {
            assert_eq!(find_in_text(m, &p), vec![code.clone()], "{m}");
        }
        assert!(find_in_text("hoc phi thang 9", &p).is_empty());
        let mut typo = c.as_bytes().to_vec();
        typo[4] = if typo[4] == b'9' { b'8' } else { b'9' };
        assert!(
            find_in_text(std::str::from_utf8(&typo).unwrap(), &p).is_empty(),
            "a typo is not a code"
        );
    }

    #[test]
    fn many_codes_in_one_memo_are_each_found_once_in_memo_order() {
        let p = prefix("QD");
        let codes: Vec<PaymentCode> = (0..2_000)
            .map(|n| PaymentCode::generate(&p, n).unwrap())
            .collect();
        let mut memo: Vec<&str> = codes.iter().map(PaymentCode::as_str).collect();
        memo.extend(codes.iter().rev().map(PaymentCode::as_str));
        // Separators are squeezed out: a 1 (never in a code) keeps windows from spanning two.
        assert_eq!(find_in_text(&memo.join(" 1 "), &p), codes);
    }

    #[test]
    fn codes_of_a_payment_are_read_once_in_order_and_capped() {
        let p = prefix("QD");
        let codes: Vec<PaymentCode> = (0..40)
            .map(|n| PaymentCode::generate(&p, n).unwrap())
            .collect();
        // The order reference names the third code; the memo repeats it among the first two.
        let memo = format!("{} 1 {} 1 {}", codes[0], codes[2], codes[1]);
        assert_eq!(
            codes_in([codes[2].as_str(), memo.as_str()], &p),
            vec![codes[2].clone(), codes[0].clone(), codes[1].clone()]
        );
        let many: Vec<&str> = codes.iter().map(PaymentCode::as_str).collect();
        let read = codes_in([many.join(" 1 ").as_str()], &p);
        assert_eq!(read.len(), MAX_CODES_READ);
        assert_eq!(read, codes[..MAX_CODES_READ]);
    }

    #[test]
    fn consecutive_numbers_give_distinct_codes() {
        let p = prefix("TH");
        let codes: HashSet<_> = (0..20_000)
            .map(|n| PaymentCode::generate(&p, n).unwrap())
            .collect();
        assert_eq!(codes.len(), 20_000);
        assert_eq!(
            PaymentCode::generate(&p, BODY_SPACE),
            Err(CodeError::Exhausted)
        );
    }

    fn arb_code() -> impl Strategy<Value = PaymentCode> {
        let prefix = proptest::collection::vec(0usize..31, 2..=4).prop_map(|v| {
            v.into_iter()
                .map(|i| ALPHABET[i] as char)
                .collect::<String>()
        });
        (prefix, 0..BODY_SPACE).prop_map(|(p, n)| PaymentCode::generate(&prefix_of(&p), n).unwrap())
    }

    fn prefix_of(s: &str) -> SchoolPrefix {
        SchoolPrefix::parse(s).unwrap()
    }

    proptest! {
        /// The property the check character exists for: no single substitution of any symbol,
        /// in any position, produces another valid code.
        #[test]
        fn one_typo_never_makes_another_valid_code(code in arb_code()) {
            let bytes = code.as_str().as_bytes();
            for pos in 0..bytes.len() {
                for &sym in ALPHABET.iter() {
                    if sym == bytes[pos] { continue; }
                    let mut typo = bytes.to_vec();
                    typo[pos] = sym;
                    let typo = String::from_utf8(typo).unwrap();
                    prop_assert_eq!(PaymentCode::parse(&typo), Err(CodeError::WrongCheck), "{}", typo);
                }
            }
        }

        #[test]
        fn swapping_two_symbols_never_makes_another_valid_code(code in arb_code()) {
            let bytes = code.as_str().as_bytes();
            for i in 0..bytes.len() {
                for j in i + 1..bytes.len() {
                    if bytes[i] == bytes[j] { continue; }
                    let mut swapped = bytes.to_vec();
                    swapped.swap(i, j);
                    let swapped = String::from_utf8(swapped).unwrap();
                    prop_assert!(PaymentCode::parse(&swapped).is_err(), "{}", swapped);
                }
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = PaymentCode::parse(&s);
        }
    }
}
