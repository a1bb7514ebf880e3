//! Amounts a parent wrote in a memo, as parents write them: `1.500.000`, `1,500,000`,
//! `1500000`, `1.500.000đ`, `1500000 VND`, `1tr5`, `1tr`, `1.5tr`, `1,5 trieu`, `1 trieu 5`,
//! `1 triệu 500 nghìn`, `1500k`, `500 nghin`.
//!
//! Read for one purpose: the share of each child a parent states when paying for siblings
//! together (rule `siblings_by_name`). A share that is misread never allocates anything by
//! itself (the shares must add up to the amount received), so the reading leans towards
//! reading nothing:
//! - a plain number is an amount only with 4 to 9 digits, no leading zero, and a whole number
//!   of hundreds of đồng (`935000`, not `381823`): account, phone, trace and student numbers
//!   are longer, start with a zero or end otherwise;
//! - groups are of three digits after one to three, joined by one `.` or `,` (the same one
//!   throughout) with no space: `1.500.000`, never `9. 100.000` nor `15.11.2025`;
//! - a number joined to another by `/`, `-`, `:` or `.` that is not such a group (a date
//!   `15/11/2025`, a year range `2025-2026`, a time `10:11`) is never an amount;
//! - digits glued to letters are an amount only with a unit (`1tr5`, `1500k`, `1500000d`):
//!   a class (`6A10`), a code (`QD5R9NFQ`) or a month (`T11`) never is;
//! - nothing under 1,000 đồng is an amount.
//!
//! Word positions are those of [`crate::recon::memo::fold`]'s words, so that an amount can be
//! placed beside the names read there.

use crate::domain::money::Vnd;
use crate::recon::period::{prepare, runs, Run};
use std::ops::Range;

/// The least amount read: below it a number is a month, a count or a class.
pub const MIN_AMOUNT: i64 = 1_000;
/// The largest amount read (a plain number has at most 9 digits).
pub const MAX_AMOUNT: i64 = 999_999_999;

/// An amount written in a memo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub amount: Vnd,
    /// The words it takes, as indices of the memo's folded words.
    pub words: Range<usize>,
}

const MILLION: &[&[u8]] = &[b"TR", b"TRIEU"];
const THOUSAND: &[&[u8]] = &[b"K", b"NGHIN", b"NGAN"];
const DONG: &[&[u8]] = &[b"D", b"VND", b"DONG"];

fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

fn value(s: &[u8]) -> i64 {
    s.iter()
        .fold(0i64, |n, d| n.saturating_mul(10) + i64::from(d - b'0'))
}

/// The digits after a million (`1tr5`, `1.25tr`): the leading digits of the thousands.
fn fraction(s: &[u8]) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    if !is_digits(s) || s.len() > 3 {
        return None;
    }
    let mut v = value(s);
    for _ in s.len()..3 {
        v *= 10;
    }
    Some(v * 1_000)
}

/// `s` as digits followed by one of `units`: (the digits, the unit).
fn split_unit<'a>(s: &'a [u8], units: &[&[u8]]) -> Option<(&'a [u8], &'a [u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let (d, rest) = s.split_at(digits);
    (!d.is_empty() && units.contains(&rest)).then_some((d, rest))
}

struct Reader<'a> {
    s: &'a [u8],
    runs: Vec<Run<'a>>,
}

impl Reader<'_> {
    fn text(&self, k: usize) -> Option<&[u8]> {
        self.runs.get(k).map(|r| r.text)
    }

    /// The one separator between run `k` and the next, when nothing else (no space) is there.
    fn joint(&self, k: usize) -> Option<u8> {
        let (a, b) = (self.runs.get(k)?, self.runs.get(k + 1)?);
        Some(self.s[a.end]).filter(|&c| b.start == a.end + 1 && c != b' ')
    }

    /// Run `k + 1` follows run `k` after spaces only.
    fn spaced(&self, k: usize) -> bool {
        self.runs
            .get(k)
            .is_some_and(|r| r.gap.is_empty() && k + 1 < self.runs.len())
    }

    /// The next run is one of `words`, after spaces only.
    fn then_word(&self, k: usize, words: &[&[u8]]) -> bool {
        self.spaced(k) && self.text(k + 1).is_some_and(|t| words.contains(&t))
    }

    /// Run `k` is joined to a number before it (`15/11`, `2025-2026`, `10:11`).
    fn joined_before(&self, k: usize) -> bool {
        k > 0
            && self.joint(k - 1).is_some()
            && self
                .text(k - 1)
                .is_some_and(|t| t.iter().any(u8::is_ascii_digit))
    }

    /// Run `k` is joined to a number after it.
    fn joined_after(&self, k: usize) -> bool {
        self.joint(k).is_some() && self.text(k + 1).is_some_and(|t| t[0].is_ascii_digit())
    }

    /// An amount starting at run `k`: (đồng, the last run it takes).
    fn read_at(&self, k: usize) -> Option<(i64, usize)> {
        if self.joined_before(k) {
            return None;
        }
        let t = self.text(k)?;
        if !t[0].is_ascii_digit() {
            return None;
        }
        // 1tr5, 1trieu, 1TR25
        if let Some(at) = t.iter().position(|b| !b.is_ascii_digit()) {
            let (d, rest) = t.split_at(at);
            let unit = rest.iter().take_while(|b| !b.is_ascii_digit()).count();
            let (u, after) = rest.split_at(unit);
            if d.len() <= 3 && MILLION.contains(&u) && !self.joined_after(k) {
                return Some((value(d) * 1_000_000 + fraction(after)?, k));
            }
            // 1500k, 1500000d
            if let Some((d, u)) = split_unit(t, THOUSAND).or_else(|| split_unit(t, DONG)) {
                if self.joined_after(k) || d[0] == b'0' {
                    return None;
                }
                let dong = if THOUSAND.contains(&u) {
                    (d.len() <= 6).then(|| value(d) * 1_000)?
                } else {
                    plain(d)?
                };
                return Some((dong, k));
            }
            return None;
        }
        // 1.500.000 / 1,500,000, maybe 1.500.000d, 1.500k
        if t.len() <= 3 && t[0] != b'0' {
            if let Some(sep @ (b'.' | b',')) = self.joint(k) {
                let mut digits = t.to_vec();
                let mut last = k;
                let mut unit: &[u8] = b"";
                while self.joint(last) == Some(sep) {
                    let Some(next) = self.text(last + 1) else {
                        break;
                    };
                    let (d, u) = if is_digits(next) {
                        (next, &b""[..])
                    } else if let Some(du) =
                        split_unit(next, THOUSAND).or_else(|| split_unit(next, DONG))
                    {
                        du
                    } else {
                        (next, &b"?"[..])
                    };
                    if d.len() != 3 || u == b"?" {
                        break;
                    }
                    digits.extend_from_slice(d);
                    last += 1;
                    unit = u;
                    if !u.is_empty() {
                        break;
                    }
                }
                if last > k {
                    if self.joined_after(last) {
                        return None;
                    }
                    let mut dong = value(&digits);
                    if THOUSAND.contains(&unit) {
                        dong *= 1_000;
                    } else if unit.is_empty() && self.then_word(last, THOUSAND) {
                        dong *= 1_000;
                        last += 1;
                    } else if unit.is_empty() && self.then_word(last, DONG) {
                        last += 1;
                    }
                    return Some((dong, last));
                }
                // 1.5tr, 1,25 trieu
                let next = self.text(k + 1)?;
                let (frac, end) = match split_unit(next, MILLION) {
                    Some((d, _)) => (d, k + 1),
                    None if is_digits(next) && self.then_word(k + 1, MILLION) => (next, k + 2),
                    None => return None,
                };
                if self.joined_after(end) {
                    return None;
                }
                return Some((value(t) * 1_000_000 + fraction(frac)?, end));
            }
        }
        if self.joined_after(k) {
            return None;
        }
        // 1 trieu 5, 2 trieu, 1 trieu 500 nghin
        if t.len() <= 3 && t[0] != b'0' && self.then_word(k, MILLION) {
            let mut dong = value(t) * 1_000_000;
            let mut last = k + 1;
            if let Some(d) = self.text(k + 2).filter(|d| is_digits(d) && d.len() <= 3) {
                if self.spaced(k + 1) && !self.joined_after(k + 2) {
                    if self.then_word(k + 2, THOUSAND) {
                        dong += value(d) * 1_000;
                        last = k + 3;
                    } else {
                        dong += fraction(d)?;
                        last = k + 2;
                    }
                }
            }
            return Some((dong, last));
        }
        // 500 nghin, 1500 k
        if t.len() <= 6 && t[0] != b'0' && self.then_word(k, THOUSAND) {
            return Some((value(t) * 1_000, k + 1));
        }
        // 1500000, 1500000 VND
        let dong = plain(t)?;
        let last = if self.then_word(k, DONG) { k + 1 } else { k };
        Some((dong, last))
    }
}

/// A number written without separators: 4 to 9 digits, no leading zero, whole hundreds.
fn plain(d: &[u8]) -> Option<i64> {
    let ok = is_digits(d) && (4..=9).contains(&d.len()) && d[0] != b'0';
    let v = value(d);
    (ok && v % 100 == 0).then_some(v)
}

/// The amounts written in a memo, in memo order.
pub fn read(memo: &str) -> Vec<Written> {
    let s = prepare(memo);
    let reader = Reader {
        runs: runs(&s),
        s: &s,
    };
    let mut out = Vec::new();
    let mut k = 0;
    while k < reader.runs.len() {
        match reader.read_at(k) {
            Some((dong, last)) => {
                if (MIN_AMOUNT..=MAX_AMOUNT).contains(&dong) {
                    if let Ok(amount) = Vnd::new(dong) {
                        out.push(Written {
                            amount,
                            words: k..last + 1,
                        });
                    }
                }
                k = last + 1;
            }
            None => k += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recon::memo;
    use proptest::prelude::*;

    fn amounts(memo: &str) -> Vec<i64> {
        read(memo).iter().map(|w| w.amount.dong()).collect()
    }

    #[test]
    fn amounts_as_parents_write_them() {
        let cases: &[(&str, &[i64])] = &[
            ("1.500.000", &[1_500_000]),
            ("1,500,000", &[1_500_000]),
            ("1500000", &[1_500_000]),
            ("1.500.000đ", &[1_500_000]),
            ("1.500.000 đ", &[1_500_000]),
            ("1500000 VND", &[1_500_000]),
            ("1500000vnd", &[1_500_000]),
            ("1tr5", &[1_500_000]),
            ("1TR5", &[1_500_000]),
            ("1tr", &[1_000_000]),
            ("1tr25", &[1_250_000]),
            ("1tr05", &[1_050_000]),
            ("1.5tr", &[1_500_000]),
            ("1,5tr", &[1_500_000]),
            ("1,5 trieu", &[1_500_000]),
            ("1.5 triệu", &[1_500_000]),
            ("1 trieu 5", &[1_500_000]),
            ("1 triệu 2", &[1_200_000]),
            ("2 trieu", &[2_000_000]),
            ("1 trieu 500 nghin", &[1_500_000]),
            ("1 triệu 50 nghìn", &[1_050_000]),
            ("1500k", &[1_500_000]),
            ("1500K", &[1_500_000]),
            ("1.500k", &[1_500_000]),
            ("500 nghin", &[500_000]),
            ("935000", &[935_000]),
            ("2.271.800", &[2_271_800]),
            ("5k", &[5_000]),
            // A separator then a space: two numbers, not one.
            ("thang 9. 100.000", &[100_000]),
            (
                "HP T11 Nguyen Van An 1.500.000 Nguyen Thi Binh 1.200.000",
                &[1_500_000, 1_200_000],
            ),
            ("An 1tr5 Binh 1tr2", &[1_500_000, 1_200_000]),
            ("An: 1tr5, Binh: 1tr2.", &[1_500_000, 1_200_000]),
            ("An 1.500.000, Binh 1.200.000", &[1_500_000, 1_200_000]),
        ];
        for (memo, want) in cases {
            assert_eq!(amounts(memo), *want, "{memo}");
        }
    }

    #[test]
    fn numbers_that_are_not_amounts() {
        let cases: &[&str] = &[
            // classes, months, codes, student codes
            "6A10",
            "lop 9A2",
            "T11",
            "thang 11",
            "HPT11",
            "QD5R9NFQ",
            "HS0001",
            "HS 250123",
            // dates, year ranges, times
            "15/11/2025",
            "15.11.2025",
            "01/11",
            "11/2025",
            "T11/2025",
            "2025-2026",
            "nam hoc 2025 2026",
            "10:11:12",
            "GD 123456-090125",
            // accounts, phones, traces
            "0071000123456",
            "0912345678",
            "Trace 381823",
            "1012345678",
            "FT25252123456789",
            // not three-digit groups, or a space after the separator
            "1.50.000",
            "1.5",
            "1 500 000",
            // too small
            "500",
            "999 d",
        ];
        for memo in cases {
            assert_eq!(amounts(memo), Vec::<i64>::new(), "{memo}");
        }
    }

    #[test]
    fn words_are_the_folded_words() {
        let memo = "CK: An 6A1 1.500.000đ, Binh 1tr2 - 1 trieu 5";
        let words: Vec<String> = memo::fold(memo).split(' ').map(str::to_string).collect();
        let read: Vec<String> = read(memo)
            .into_iter()
            .map(|w| words[w.words].join(" "))
            .collect();
        assert_eq!(read, ["1 500 000D", "1TR2", "1 TRIEU 5"]);
    }

    proptest! {
        /// The runs read are the folded words, whatever the text, so that positions agree.
        #[test]
        fn runs_are_folded_words(s in "\\PC{0,80}") {
            let prepared = prepare(&s);
            let runs: Vec<String> = runs(&prepared)
                .iter()
                .map(|r| String::from_utf8_lossy(r.text).into_owned())
                .collect();
            let folded = memo::fold(&s);
            let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
            prop_assert_eq!(runs, words);
        }

        #[test]
        fn read_never_panics(s in "\\PC{0,120}") {
            let n = memo::fold(&s).split(' ').filter(|w| !w.is_empty()).count();
            for w in read(&s) {
                prop_assert!(w.words.end <= n);
                prop_assert!(w.amount.dong() >= MIN_AMOUNT);
            }
        }

        /// An amount written in the usual ways reads back as itself.
        #[test]
        fn amounts_read_back(thousands in 1i64..999_999) {
            let dong = thousands * 1_000;
            let grouped = |sep: char| {
                let digits = dong.to_string();
                let mut out = String::new();
                for (i, c) in digits.chars().enumerate() {
                    if i > 0 && (digits.len() - i) % 3 == 0 {
                        out.push(sep);
                    }
                    out.push(c);
                }
                out
            };
            for memo in [dong.to_string(), grouped('.'), grouped(','), format!("{thousands}k")] {
                prop_assert_eq!(amounts(&format!("HP T11 An {memo} Binh")), vec![dong], "{}", memo);
            }
        }
    }
}
