//! Payment codes in a memo, valid or mistyped.
//!
//! Like [`crate::domain::code::find_in_text`], the memo is read with every separator squeezed
//! out, so `QD-3CF PSA` and `qd.3cfpsa` are found. A window that starts with the school prefix
//! and whose check symbol is right is [`Found::Valid`]. A window whose check symbol is wrong, or
//! that holds one look-alike the alphabet never uses (0, O, 1, I, L), is [`Found::WrongCheck`]
//! with the valid codes one substitution or one adjacent swap away: suggestions for a person,
//! never a match, since one typo can never turn into another valid code. A window one symbol
//! short, or one long with two equal neighbours, is [`Found::WrongCheck`] too, with the valid
//! codes one dropped symbol put back, or one doubled symbol typed once, away.
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
    // A symbol dropped or typed twice: a word one symbol shorter or longer than a code, between
    // separators, all its symbols in the alphabet (one slip per code: not also a look-alike).
    // Such a word is read only so: not also as a code-long window inside it.
    let separated = |i: usize| i == 0 || i >= sq.len() || sep_before[i];
    let mut slips: Vec<std::ops::Range<usize>> = Vec::new();
    for (wlen, slip) in [(len - 1, Slip::Dropped), (len + 1, Slip::Doubled)] {
        if sq.len() < wlen {
            continue;
        }
        for start in 0..=sq.len() - wlen {
            let window = &sq[start..start + wlen];
            let end = start + wlen;
            if !window.starts_with(p)
                || !separated(start)
                || !separated(end)
                || window[p.len()..].iter().any(|&b| value_of(b).is_none())
            {
                continue;
            }
            // Not inside (nor around) a valid code.
            let i = valid_starts.partition_point(|&s| s + len <= start);
            if valid_starts.get(i).is_some_and(|&s| s < end) {
                continue;
            }
            if !seen_wrong.insert(window) {
                continue;
            }
            // Only a word that one slip turns into a valid code is taken for a code.
            let corrected = slip_corrections(window, p.len(), slip);
            if corrected.is_empty() {
                continue;
            }
            slips.push(start..end);
            hits.push(Hit {
                found: Found::WrongCheck {
                    corrected,
                    text: String::from_utf8_lossy(window).into_owned(),
                },
                at: start,
                aligned: true,
            });
        }
    }
    for start in 0..=sq.len() - len {
        let window = &sq[start..start + len];
        let end = start + len;
        if !window.starts_with(p)
            || !boundary(start)
            || !boundary(end)
            || overlaps_valid(start)
            || slips.iter().any(|r| r.start < end && start < r.end)
        {
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

#[derive(Debug, Clone, Copy)]
enum Slip {
    /// One symbol left out: the window is one short.
    Dropped,
    /// One symbol typed twice: the window is one long, with two equal neighbours.
    Doubled,
}

/// The valid codes one dropped symbol (put back anywhere after the prefix) or one doubled
/// symbol (typed once) away from `symbols`, sorted and without duplicates.
fn slip_corrections(symbols: &[u8], prefix_len: usize, slip: Slip) -> Vec<PaymentCode> {
    let mut out = Vec::new();
    match slip {
        Slip::Dropped => {
            for at in prefix_len..=symbols.len() {
                for &c in ALPHABET {
                    let mut fixed = Vec::with_capacity(symbols.len() + 1);
                    fixed.extend_from_slice(&symbols[..at]);
                    fixed.push(c);
                    fixed.extend_from_slice(&symbols[at..]);
                    push_valid(&mut out, &fixed);
                }
            }
        }
        Slip::Doubled => {
            for at in prefix_len..symbols.len().saturating_sub(1) {
                if symbols[at] == symbols[at + 1] {
                    let mut fixed = symbols.to_vec();
                    fixed.remove(at);
                    push_valid(&mut out, &fixed);
                }
            }
        }
    }
    out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    out.dedup();
    out
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
        for cut in 0..s.len() - 1 {
            assert!(
                find(&format!("HOC PHI {}", &s[..cut]), &qd()).is_empty(),
                "{cut}"
            );
        }
        // One symbol short reads as a dropped symbol: never valid, the code among its fixes.
        let hits = wrong(&find(&format!("HOC PHI {}", &s[..s.len() - 1]), &qd()));
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert!(hits[0].1.contains(&c.to_string()));
    }

    /// Rule 7's slips beyond a substitution: a symbol left out, a symbol typed twice. The code
    /// meant is among the corrections, each correction is valid, and nothing is Valid.
    #[test]
    fn dropped_and_doubled_symbols_are_corrected() {
        for n in [7u64, 1234, 98_765, 4_000_000] {
            let c = code(n);
            let s = c.as_str();
            for at in 2..s.len() {
                let dropped = format!("{}{}", &s[..at], &s[at + 1..]);
                let doubled = format!("{}{}", &s[..=at], &s[at..]);
                for (typed, memo) in [
                    (&dropped, format!("HP {dropped} Nguyen Van An")),
                    (
                        &doubled,
                        format!("hoc phi {} thang 9", doubled.to_lowercase()),
                    ),
                ] {
                    let hits = find(&memo, &qd());
                    // The last symbol doubled leaves the code whole in front: read as it is.
                    if !valid(&hits).is_empty() {
                        assert_eq!(valid(&hits), vec![c.to_string()], "{memo}");
                        assert!(typed.ends_with(&s[s.len() - 1..].repeat(2)), "{memo}");
                        continue;
                    }
                    let w = wrong(&hits);
                    assert_eq!(w.len(), 1, "{memo}: {w:?}");
                    assert_eq!(&w[0].0, typed);
                    assert!(w[0].1.contains(&c.to_string()), "{memo}: {w:?}");
                    for f in &w[0].1 {
                        assert!(PaymentCode::from_canonical(f).is_ok());
                    }
                }
            }
        }
        // Glued to other letters, neither is a code.
        let c = code(1234);
        let s = c.as_str();
        assert!(find(&format!("X{}", &s[..s.len() - 1]), &qd()).is_empty());
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
