//! Students' names and classes as parents write them in memos.
//!
//! Vietnamese names are written family name first (Nguyễn, Trần, Lê…), then middle names (Văn,
//! Thị, Minh, Ngọc…), then the given name. Banks strip the diacritics, parents swap the order
//! ("An Nguyen Van"), run the syllables together ("NGUYENVANAN") or slip one key. What counts:
//! - exact: the name's syllables, diacritics ignored, in any order, side by side in the memo,
//!   or the whole name run together in its written order;
//! - one typo: the same with one syllable at Damerau–Levenshtein distance 1 (one letter
//!   inserted, dropped, replaced, or two neighbours swapped), only for syllables of three to
//!   eight letters on both sides (An/Anh, Vy/Vi are different names, not typos; a longer word is
//!   no Vietnamese syllable, see [`MAX_TYPO_LEN`]);
//! - the given name alone (or middle and given name) says little: half a class may be "Anh".
//!
//! Classes: `6A1`, `LOP 7A2`, `L6A1`, `lop 6/A1` all read as `6A1`.

use crate::recon::memo::fold;

/// The syllables of a name, folded: `Nguyễn Văn An` → `["NGUYEN", "VAN", "AN"]`.
pub fn name_tokens(name: &str) -> Vec<String> {
    fold(name)
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// A typo is only recognised in syllables at least this long, on both sides.
pub const MIN_TYPO_LEN: usize = 3;
/// The longest Vietnamese syllables have seven letters once the diacritics are gone
/// ("nghiêng": NGHIENG); no Vietnamese name syllable is longer.
pub const MAX_SYLLABLE_LEN: usize = 7;
/// A typo is only recognised in syllables at most this long, on both sides: the longest
/// syllable with one letter slipped in. Longer words are no mistyped syllable, and the engine
/// never expands them into typo keys (one per letter, so a long word would cost the square of
/// its length). A foreign name's long syllable is still matched exactly, only not with a typo.
pub const MAX_TYPO_LEN: usize = MAX_SYLLABLE_LEN + 1;

/// Damerau–Levenshtein distance (optimal string alignment) of `a` and `b` is at most 1.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => {
            let diffs: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            match diffs.as_slice() {
                [_] => true,
                [i, j] => *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i],
                _ => false,
            }
        }
        1 => {
            let p = short.iter().zip(long).take_while(|(x, y)| x == y).count();
            short[p..] == long[p + 1..]
        }
        _ => false,
    }
}

/// `typed` is one typo away from the name's `syllable` under the rules above.
pub fn is_one_typo(typed: &str, syllable: &str) -> bool {
    let typo_len = MIN_TYPO_LEN..=MAX_TYPO_LEN;
    typed != syllable
        && typo_len.contains(&typed.len())
        && typo_len.contains(&syllable.len())
        && within_one_edit(typed, syllable)
}

/// How well some memo words match a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameMatch {
    /// `None` for an exact match; the mistyped memo syllable otherwise.
    pub typo: Option<String>,
    /// The syllables stand in the name's written order.
    pub ordered: bool,
}

/// `words` (memo syllables side by side) against a name's syllables, order free.
pub fn compare_words(words: &[&str], name: &[String]) -> Option<NameMatch> {
    if words.len() != name.len() || name.is_empty() {
        return None;
    }
    let mut left: Vec<&str> = words.to_vec();
    let mut unmatched: Vec<&str> = Vec::new();
    for syllable in name {
        match left.iter().position(|w| *w == syllable.as_str()) {
            Some(i) => {
                left.swap_remove(i);
            }
            None => unmatched.push(syllable),
        }
    }
    let ordered = |typo: Option<&str>| {
        words
            .iter()
            .zip(name)
            .all(|(w, n)| *w == n.as_str() || (Some(*w) == typo && is_one_typo(w, n)))
    };
    match (left.as_slice(), unmatched.as_slice()) {
        ([], []) => Some(NameMatch {
            typo: None,
            ordered: ordered(None),
        }),
        ([typed], [syllable]) if is_one_typo(typed, syllable) => Some(NameMatch {
            typo: Some((*typed).to_string()),
            ordered: ordered(Some(typed)),
        }),
        _ => None,
    }
}

/// A name run together in one piece of the memo ("NGUYENVANAN"), in its written order, exact or
/// with one typo that falls inside one syllable.
pub fn compare_squeezed(squeezed: &str, name: &[String]) -> Option<NameMatch> {
    let whole: String = name.concat();
    if squeezed == whole {
        return Some(NameMatch {
            typo: None,
            ordered: true,
        });
    }
    if !within_one_edit(squeezed, &whole) {
        return None;
    }
    // Find the one syllable that, typed differently, accounts for the whole difference.
    let grow = squeezed.len() as isize - whole.len() as isize;
    let mut start = 0;
    for syllable in name {
        let end = start + syllable.len();
        let typed_end = end as isize + grow;
        if typed_end >= start as isize {
            let typed_end = typed_end as usize;
            let same_around = squeezed.get(..start) == whole.get(..start)
                && squeezed.get(typed_end..) == whole.get(end..);
            if let (true, Some(typed)) = (same_around, squeezed.get(start..typed_end)) {
                if is_one_typo(typed, syllable) {
                    return Some(NameMatch {
                        typo: Some(typed.to_string()),
                        ordered: true,
                    });
                }
            }
        }
        start = end;
    }
    None
}

/// The first place a name appears in memo words: side by side in any order, or run together
/// over one or more neighbouring words. Exact matches are preferred over typos. A plain scan,
/// for tests and one-off checks; the engine uses its index.
pub fn find_name(words: &[&str], name: &[String]) -> Option<(NameMatch, std::ops::Range<usize>)> {
    let mut typo = None;
    let k = name.len();
    for i in 0..words.len() {
        if i + k <= words.len() {
            if let Some(m) = compare_words(&words[i..i + k], name) {
                if m.typo.is_none() {
                    return Some((m, i..i + k));
                }
                typo = typo.or(Some((m, i..i + k)));
            }
        }
        let mut joined = String::new();
        for (j, word) in words.iter().enumerate().take(i + k).skip(i) {
            joined.push_str(word);
            if let Some(m) = compare_squeezed(&joined, name) {
                if m.typo.is_none() {
                    return Some((m, i..j + 1));
                }
                typo = typo.or(Some((m, i..j + 1)));
            }
        }
    }
    typo
}

/// A class name in canonical form: grade, letters, number (`6A1`, `10A10`, `7B`), from a memo
/// word such as `6A1`, `L6A1` or `LOP6A1`.
pub fn canonical_class(word: &str) -> Option<String> {
    let w = fold(word).replace(' ', "");
    let w = w
        .strip_prefix("LOP")
        .or_else(|| w.strip_prefix('L'))
        .unwrap_or(&w);
    let b = w.as_bytes();
    let grade_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let letters = b[grade_len..]
        .iter()
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    let number = &b[grade_len + letters..];
    if !(1..=2).contains(&grade_len)
        || !(1..=2).contains(&letters)
        || number.len() > 2
        || !number.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let grade: u32 = w[..grade_len].parse().ok()?;
    if !(1..=12).contains(&grade) {
        return None;
    }
    let num = &w[grade_len + letters..];
    let num = if num.is_empty() {
        String::new()
    } else {
        num.parse::<u32>().ok()?.to_string()
    };
    Some(format!(
        "{grade}{}{num}",
        &w[grade_len..grade_len + letters]
    ))
}

/// Every class named in memo words, with the range of words it took; `6 A1` and `LOP 6A1` too.
pub fn classes_in(words: &[&str]) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let pair = words.get(i + 1).and_then(|next| {
            let two = format!("{w}{next}");
            (w.bytes().all(|b| b.is_ascii_digit())
                && next.len() <= 3
                && next.bytes().any(|b| b.is_ascii_digit()))
            .then(|| canonical_class(&two))
            .flatten()
        });
        if let Some(c) = pair {
            out.push((c, i..i + 2));
            i += 2;
        } else if let Some(c) = canonical_class(w).filter(|_| w.bytes().any(|b| b.is_ascii_digit()))
        {
            out.push((c, i..i + 1));
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Vec<String> {
        name_tokens(s)
    }

    fn words(s: &str) -> Vec<String> {
        name_tokens(s)
    }

    fn find(memo: &str, name: &str) -> Option<(Option<String>, bool)> {
        let w = words(memo);
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        find_name(&w, &n(name)).map(|(m, _)| (m.typo, m.ordered))
    }

    #[test]
    fn edit_distance_one() {
        let yes = [
            ("NGUYEN", "NGUYEN"),
            ("NGUYEN", "NGUYN"),
            ("NGUYEN", "NGUYENN"),
            ("NGUYEN", "NGUYNE"),
            ("NGUYEN", "NGYUEN"),
            ("TRANG", "TRANH"),
            ("AN", "ANH"),
        ];
        for (a, b) in yes {
            assert!(within_one_edit(a, b), "{a} {b}");
            assert!(within_one_edit(b, a), "{b} {a}");
        }
        let no = [
            ("NGUYEN", "NGUEYNN"),
            ("AN", "ANHH"),
            ("TRANG", "TRUNH"),
            ("ABC", "CBA"),
        ];
        for (a, b) in no {
            assert!(!within_one_edit(a, b), "{a} {b}");
        }
        assert!(
            !is_one_typo("AN", "ANH"),
            "two-letter syllables are never typos"
        );
        assert!(is_one_typo("KHOII", "KHOI"));
        assert!(
            is_one_typo("NGHIENGG", "NGHIENG"),
            "the longest syllable, one letter more"
        );
        assert!(
            !is_one_typo("CHRISTOPHE", "CHRISTOPHER"),
            "no Vietnamese syllable is that long"
        );
    }

    #[test]
    fn names_in_memos() {
        // (memo, name, Some((typo, ordered)) or None)
        type Case = (
            &'static str,
            &'static str,
            Option<(Option<&'static str>, bool)>,
        );
        let cases: &[Case] = &[
            (
                "HOC PHI NGUYEN VAN AN 6A1",
                "Nguyễn Văn An",
                Some((None, true)),
            ),
            ("hoc phi Nguyễn Văn An", "Nguyễn Văn An", Some((None, true))),
            ("AN NGUYEN VAN 6A1", "Nguyễn Văn An", Some((None, false))),
            ("NGUYENVANAN 6A1", "Nguyễn Văn An", Some((None, true))),
            ("NGUYENVAN AN", "Nguyễn Văn An", Some((None, true))),
            ("NGUYEN VANAN", "Nguyễn Văn An", Some((None, true))),
            ("NGUYN VAN AN", "Nguyễn Văn An", Some((Some("NGUYN"), true))),
            ("NGUYEN VAN ANN", "Nguyễn Văn An", None),
            (
                "NGUYEN VAN KHOII",
                "Nguyễn Văn Khôi",
                Some((Some("KHOII"), true)),
            ),
            (
                "NGUYENVANKHIO",
                "Nguyễn Văn Khôi",
                Some((Some("KHIO"), true)),
            ),
            (
                "NGUYENVNAKHOI",
                "Nguyễn Văn Khôi",
                Some((Some("VNA"), true)),
            ),
            (
                "TRAN THI BICH NGOC",
                "Trần Thị Bích Ngọc",
                Some((None, true)),
            ),
            ("TRAN THI NGOC", "Trần Thị Bích Ngọc", None),
            ("NGUYEN AN", "Nguyễn Văn An", None),
            ("AN", "Nguyễn Văn An", None),
            ("NGUYEN VAN BINH CHUYEN TIEN", "Nguyễn Văn An", None),
            ("DANG DUC TRUONG", "Đặng Đức Trường", Some((None, true))),
            ("DANGDUCTRUONG", "Đặng Đức Trường", Some((None, true))),
            ("", "Nguyễn Văn An", None),
        ];
        for (memo, name, want) in cases {
            let want = want.map(|(t, o)| (t.map(str::to_string), o));
            assert_eq!(find(memo, name), want, "{memo} / {name}");
        }
    }

    #[test]
    fn classes() {
        let cases: &[(&str, &[&str])] = &[
            ("6A1", &["6A1"]),
            ("LOP 7A2", &["7A2"]),
            ("L6A1", &["6A1"]),
            ("LOP6A10", &["6A10"]),
            ("lop 6/A1", &["6A1"]),
            ("lop 06A01", &["6A1"]),
            ("9A10 va 6A1", &["9A10", "6A1"]),
            ("10A2", &["10A2"]),
            ("THANG 9 2025", &[]),
            ("NGUYEN VAN AN", &[]),
            ("FT25252", &[]),
            ("13A1", &[]),
        ];
        for (memo, want) in cases {
            let w = words(memo);
            let w: Vec<&str> = w.iter().map(String::as_str).collect();
            let got: Vec<String> = classes_in(&w).into_iter().map(|(c, _)| c).collect();
            assert_eq!(got, *want, "{memo}");
        }
        assert_eq!(canonical_class("6a1").as_deref(), Some("6A1"));
        assert_eq!(canonical_class("Lớp 8A3").as_deref(), Some("8A3"));
    }
}
