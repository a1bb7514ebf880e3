//! Payment codes in a memo, valid or mistyped.
//!
//! Like [`crate::domain::code::find_in_text`], the memo is read with every separator squeezed
//! out, so `QD-3CF PSA` and `qd.3cfpsa` are found. A window that starts with the school prefix
//! and whose check symbol is right is [`Found::Valid`]. A window whose check symbol is wrong, or
//! that holds one look-alike the alphabet never uses (0, O, 1, I, L), is [`Found::WrongCheck`]
//! with the valid codes one substitution or one adjacent swap away: suggestions for a person,
//! never a match, since one typo can never turn into another valid code.
//!
//! A mistyped window must stand on its own (start and end at a separator, or where letters
//! meet digits) so that words merely starting with the prefix are not taken for codes.

use crate::domain::code::{PaymentCode, SchoolPrefix, ALPHABET, BODY_LEN};
use crate::recon::memo::fold;
use std::collections::HashSet;

const BASE: u32 = 31;

/// A code-like window in a memo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Valid(PaymentCode),
    /// `text` as found (separators removed, upper-cased); `corrected` sorted, possibly empty.
    WrongCheck {
        text: String,
        corrected: Vec<PaymentCode>,
    },
}

/// A found code and where it stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub found: Found,
    /// Offset in the squeezed memo: gives the memo order.
    pub at: usize,
    /// The window starts at a separator (or where letters meet digits). A valid code glued to
    /// other letters is still a code (its check symbol says so), but a weaker sign.
    pub aligned: bool,
}

fn value_of(symbol: u8) -> Option<u32> {
    ALPHABET.iter().position(|&c| c == symbol).map(|i| i as u32)
}

/// Σ position × value (mod 31), positions from 1, over the symbols that are in the alphabet.
fn weighted_sum(symbols: &[u8]) -> u32 {
    symbols
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32 + 1) * value_of(s).unwrap_or(0))
        .sum::<u32>()
        % BASE
}

fn inverse(a: u32) -> u32 {
    // 31 is prime: a^29 is the inverse of a.
    let (mut result, mut base, mut exp) = (1u32, a % BASE, BASE - 2);
    while exp > 0 {
        if exp & 1 == 1 {
            result = result * base % BASE;
        }
        base = base * base % BASE;
        exp >>= 1;
    }
    result
}

/// The valid codes one substitution (outside the prefix) or one adjacent swap away from
/// `symbols`, sorted and without duplicates. With one look-alike in the window only that
/// position is replaced.
pub fn corrections(symbols: &[u8], prefix_len: usize) -> Vec<PaymentCode> {
    let foreign: Vec<usize> = (prefix_len..symbols.len())
        .filter(|&i| value_of(symbols[i]).is_none())
        .collect();
    let positions: Vec<usize> = match foreign.as_slice() {
        [] => (prefix_len..symbols.len()).collect(),
        [one] => vec![*one],
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for i in positions {
        let weight = i as u32 + 1;
        let here = value_of(symbols[i]).unwrap_or(0) * weight % BASE;
        let rest = (weighted_sum(symbols) + BASE - here) % BASE;
        // rest + weight × v ≡ 0 (mod 31)
        let v = (BASE - rest) % BASE * inverse(weight) % BASE;
        let mut fixed = symbols.to_vec();
        fixed[i] = ALPHABET[v as usize];
        push_valid(&mut out, &fixed);
    }
    if foreign.is_empty() {
        for i in prefix_len..symbols.len().saturating_sub(1) {
            if symbols[i] != symbols[i + 1] {
                let mut swapped = symbols.to_vec();
                swapped.swap(i, i + 1);
                push_valid(&mut out, &swapped);
            }
        }
    }
    out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    out.dedup();
    out
}

fn push_valid(out: &mut Vec<PaymentCode>, symbols: &[u8]) {
    if let Some(code) = std::str::from_utf8(symbols)
        .ok()
        .and_then(|t| PaymentCode::from_canonical(t).ok())
    {
        out.push(code);
    }
}

fn is_look_alike(b: u8) -> bool {
    matches!(b, b'0' | b'1' | b'I' | b'L' | b'O')
}

/// Every code-like window of `prefix` in `text` (raw or folded), in memo order. Valid codes are
/// reported once each; mistyped windows overlapping a valid code are not reported.
pub fn find(text: &str, prefix: &SchoolPrefix) -> Vec<Hit> {
    let folded = fold(text);
    // Squeezed symbols, each with "a separator stood just before me".
    let mut sq: Vec<u8> = Vec::with_capacity(folded.len());
    let mut sep_before: Vec<bool> = Vec::with_capacity(folded.len());
    let mut gap = true;
    for b in folded.bytes() {
        if b == b' ' {
            gap = true;
        } else {
            sq.push(b);
            sep_before.push(gap);
            gap = false;
        }
    }
    let p = prefix.as_str().as_bytes();
    let len = p.len() + BODY_LEN + 1;
    let boundary = |i: usize| -> bool {
        // A boundary before sq[i]: start, end, separator, or letters meeting digits.
        i == 0
            || i >= sq.len()
            || sep_before[i]
            || sq[i - 1].is_ascii_digit() != sq[i].is_ascii_digit()
    };
    let mut hits: Vec<Hit> = Vec::new();
    if sq.len() < len {
        return hits;
    }
    // Sets and a sorted list rather than scans of what was found: a memo may hold thousands of
    // code-like windows, and the search must stay linear in its length.
    let mut seen_valid: HashSet<PaymentCode> = HashSet::new();
    let mut seen_wrong: HashSet<&[u8]> = HashSet::new();
    // Starts of valid windows, ascending; every window has the same length.
    let mut valid_starts: Vec<usize> = Vec::new();
    for start in 0..=sq.len() - len {
        let window = &sq[start..start + len];
        if !window.starts_with(p) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(window) else {
            continue;
        };
        if let Ok(code) = PaymentCode::from_canonical(text) {
            valid_starts.push(start);
            if seen_valid.insert(code.clone()) {
                hits.push(Hit {
                    found: Found::Valid(code),
                    at: start,
                    aligned: boundary(start),
                });
            }
        }
    }
    let overlaps_valid = |start: usize| {
        // The first valid window that ends after `start`; it overlaps if it begins before
        // `start + len`.
        let i = valid_starts.partition_point(|&s| s + len <= start);
        valid_starts.get(i).is_some_and(|&s| s < start + len)
    };
    for start in 0..=sq.len() - len {
        let window = &sq[start..start + len];
        let end = start + len;
        if !window.starts_with(p) || !boundary(start) || !boundary(end) || overlaps_valid(start) {
            continue;
        }
        let body = &window[p.len()..];
        let foreign = body.iter().filter(|&&b| value_of(b).is_none()).count();
        if foreign > 1
            || body
                .iter()
                .any(|&b| value_of(b).is_none() && !is_look_alike(b))
        {
            continue;
        }
        if !seen_wrong.insert(window) {
            continue;
        }
        let text = String::from_utf8_lossy(window).into_owned();
        hits.push(Hit {
            found: Found::WrongCheck {
                corrected: corrections(window, p.len()),
                text,
            },
            at: start,
            aligned: true,
        });
    }
    hits.sort_by_key(|h| h.at);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn qd() -> SchoolPrefix {
        SchoolPrefix::parse("QD").unwrap()
    }

    fn code(n: u64) -> PaymentCode {
        PaymentCode::generate(&qd(), n).unwrap()
    }

    fn valid(hits: &[Hit]) -> Vec<String> {
        hits.iter()
            .filter_map(|h| match &h.found {
                Found::Valid(c) => Some(c.to_string()),
                Found::WrongCheck { .. } => None,
            })
            .collect()
    }

    fn wrong(hits: &[Hit]) -> Vec<(String, Vec<String>)> {
        hits.iter()
            .filter_map(|h| match &h.found {
                Found::WrongCheck { text, corrected } => Some((
                    text.clone(),
                    corrected.iter().map(|c| c.to_string()).collect(),
                )),
                Found::Valid(_) => None,
            })
            .collect()
    }

    /// The code with the symbol at `pos` replaced by the next one in the alphabet.
    fn typo(c: &PaymentCode, pos: usize) -> String {
        let mut b = c.as_str().as_bytes().to_vec();
        let v = value_of(b[pos]).unwrap() as usize;
        b[pos] = ALPHABET[(v + 1) % 31];
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn finds_codes_however_written() {
        let c = code(17);
        let s = c.as_str();
        let spaced = format!("{}-{} {}", &s[..2], &s[2..5], &s[5..]);
        let dotted = format!("{}.{}", &s[..2], &s[2..]).to_lowercase();
        let memos = [
            s.to_string(),
            format!("MBVCB.3278126542.012345.{s}.CT tu 0071000123456 NGUYEN VAN A"),
            format!("IBFT {spaced} Le Hoang Phuc"),
            format!("{dotted} hoc phi"),
            format!("HOCPHI{s}"),
            format!("ck {} thang 9", s.to_lowercase()),
        ];
        for m in &memos {
            let hits = find(m, &qd());
            assert_eq!(valid(&hits), vec![s.to_string()], "{m}");
            assert!(wrong(&hits).is_empty(), "{m}: {hits:?}");
        }
        let glued = find(&format!("HOCPHI{s}"), &qd());
        assert!(!glued[0].aligned);
    }

    #[test]
    fn several_codes_in_memo_order() {
        let (a, b) = (code(5), code(900));
        let hits = find(&format!("{b} va {a} {b}"), &qd());
        assert_eq!(valid(&hits), vec![b.to_string(), a.to_string()]);
    }

    #[test]
    fn a_mistyped_code_is_reported_with_its_correction() {
        let c = code(42);
        for pos in 2..c.as_str().len() {
            let t = typo(&c, pos);
            let hits = find(&format!("HP {t} NGUYEN VAN AN"), &qd());
            assert!(valid(&hits).is_empty(), "{t}");
            let w = wrong(&hits);
            assert_eq!(w.len(), 1, "{t}: {hits:?}");
            assert_eq!(w[0].0, t);
            assert!(w[0].1.contains(&c.to_string()), "{t}: {w:?}");
        }
    }

    #[test]
    fn a_swap_is_reported_with_its_correction() {
        let c = code(3);
        let mut b = c.as_str().as_bytes().to_vec();
        let i = (2..b.len() - 1).find(|&i| b[i] != b[i + 1]).unwrap();
        b.swap(i, i + 1);
        let t = String::from_utf8(b).unwrap();
        let w = wrong(&find(&t, &qd()));
        assert_eq!(w.len(), 1);
        assert!(w[0].1.contains(&c.to_string()));
    }

    #[test]
    fn look_alikes_are_never_valid() {
        let c = code(77);
        for (pos, look_alike) in [(3, '0'), (4, 'O'), (5, '1'), (6, 'I'), (7, 'L')] {
            let mut t: Vec<char> = c.as_str().chars().collect();
            t[pos] = look_alike;
            let t: String = t.into_iter().collect();
            let hits = find(&t, &qd());
            assert!(valid(&hits).is_empty(), "{t}");
            let w = wrong(&hits);
            assert_eq!(w.len(), 1, "{t}");
            // One look-alike: exactly one symbol fits there.
            assert_eq!(w[0].1.len(), 1, "{t}");
            assert_eq!(w[0].1[0].as_str().len(), t.len());
        }
    }

    #[test]
    fn words_are_not_codes() {
        let memos = [
            "hoc phi thang 9",
            "QDTHANHTOANHOCPHI",
            "NGUYEN VAN QUANG DUC",
            "QD 245/QD-UBND ngay 02/09/2025",
        ];
        for m in memos {
            let hits = find(m, &qd());
            assert!(valid(&hits).is_empty(), "{m}: {hits:?}");
        }
        // Glued into a longer word: no mistyped code is reported.
        let c = code(1);
        let t = typo(&c, 4);
        assert!(find(&format!("X{t}Y"), &qd()).is_empty());
        let glue = if t.ends_with(|c: char| c.is_ascii_digit()) {
            '7'
        } else {
            'Y'
        };
        assert!(find(&format!("{t}{glue}"), &qd()).is_empty());
    }

    #[test]
    fn truncated_codes_are_not_found() {
        let c = code(9);
        let s = c.as_str();
        for cut in 0..s.len() {
            assert!(
                find(&format!("HOC PHI {}", &s[..cut]), &qd()).is_empty(),
                "{cut}"
            );
        }
    }

    #[test]
    fn corrections_are_valid_and_near() {
        let c = code(1234);
        let t = typo(&c, 5);
        let fixes = corrections(t.as_bytes(), 2);
        assert!(fixes.contains(&c));
        for f in &fixes {
            let diff = f
                .as_str()
                .bytes()
                .zip(t.bytes())
                .filter(|(a, b)| a != b)
                .count();
            assert!(diff == 1 || diff == 2, "{f} vs {t}");
            assert!(f.as_str().starts_with("QD"));
        }
    }

    proptest! {
        /// A code with one symbol substituted is never found as Valid, however it is written.
        #[test]
        fn one_substitution_is_never_valid(n in 0u64..28_629_151, pos in 0usize..8, shift in 1usize..31, lower in any::<bool>()) {
            let c = code(n);
            let mut b = c.as_str().as_bytes().to_vec();
            let v = value_of(b[pos]).unwrap() as usize;
            b[pos] = ALPHABET[(v + shift) % 31];
            let mut t = String::from_utf8(b).unwrap();
            if lower { t = t.to_lowercase(); }
            let hits = find(&format!("hoc phi {t} nguyen van an"), &qd());
            let upper = t.to_uppercase();
            prop_assert!(!valid(&hits).contains(&upper), "{}", t);
            prop_assert!(!valid(&hits).contains(&c.to_string()), "{}", t);
        }

        #[test]
        fn find_never_panics(s in "\\PC{0,120}") {
            let _ = find(&s, &qd());
        }

        /// The sets and the sorted list give what plain scans of the hits gave.
        #[test]
        fn find_reports_each_code_once_and_no_typo_over_a_code(
            picks in proptest::collection::vec((0u64..40, 0usize..8, any::<bool>(), 0usize..4), 0..12),
        ) {
            let memo: String = picks.iter().map(|&(n, pos, typo_it, sep)| {
                let c = code(n);
                let t = if typo_it { typo(&c, 2 + pos % 6) } else { c.to_string() };
                format!("{t}{}", ["", " ", ".", "-"][sep])
            }).collect();
            let hits = find(&memo, &qd());
            let v = valid(&hits);
            let mut distinct = v.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(v.len(), distinct.len(), "{}", memo);
            let w = wrong(&hits);
            let mut texts: Vec<&String> = w.iter().map(|(t, _)| t).collect();
            texts.sort();
            texts.dedup();
            prop_assert_eq!(texts.len(), w.len(), "{}", memo);
            let len = code(0).as_str().len();
            for h in hits.iter().filter(|h| matches!(h.found, Found::WrongCheck { .. })) {
                for g in hits.iter().filter(|g| matches!(g.found, Found::Valid(_))) {
                    prop_assert!(h.at + len <= g.at || g.at + len <= h.at, "{}", memo);
                }
            }
            prop_assert!(hits.windows(2).all(|p| p[0].at <= p[1].at));
        }
    }
}
