//! Reading a memo against the index: the students it names (by student code or full name), the
//! weak evidence (given names, the sender's own name), the classes written and the signs that
//! the bank cut it.

use super::index::{bag_key, squeezed_key, squeezed_key_without, word_key, word_key_without};
use super::MAX_WEAK_CANDIDATES;
use super::{
    Evidence, Index, MemoLimit, BANK_MEMO_LIMITS, LIMIT_SLACK, MAX_NAME_WORDS, MAX_STUDENT_CODE_LEN,
};
use crate::recon::memo::{typed_chars, Memo};
use crate::recon::names;
use crate::recon::period;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;

type Rank = (u8, std::cmp::Reverse<usize>, u8);

fn rank(typo: bool, syllables: usize, ordered: bool) -> Rank {
    (
        u8::from(typo),
        std::cmp::Reverse(syllables),
        u8::from(!ordered),
    )
}

/// A student named by student code or full name.
#[derive(Debug, Clone)]
pub(super) struct Mention {
    pub(super) span: Range<usize>,
    /// See [`RawHit::rank`].
    rank: Rank,
    pub(super) students: Vec<usize>,
    pub(super) evidence: Evidence,
}

#[derive(Debug, Clone)]
struct RawHit {
    student: usize,
    span: Range<usize>,
    /// Lower is better: exact (or student code) before one typo, more words before fewer (a
    /// longer name covering a shorter one is the more specific reading), written order first.
    rank: Rank,
    evidence: Evidence,
}

#[derive(Debug, Default)]
pub(super) struct People {
    pub(super) mentions: Vec<Mention>,
    /// Students suggested on weak evidence only.
    pub(super) weak: Vec<(usize, Evidence)>,
    /// Of those, the ones read from a given name (or middle and given name) standing alone,
    /// not inside a longer name that matches nobody ("NGUYEN QUYNH UYEN" holds the given name
    /// "QUYNH" but names someone else).
    pub(super) alone: Vec<usize>,
    /// Classes named in the memo that exist in the school.
    pub(super) classes: Vec<String>,
    /// The same with where each stood.
    class_spans: Vec<(String, Range<usize>)>,
    /// Rule 5: there is a sign that the bank cut the memo where it matters (see
    /// [`BANK_MEMO_LIMITS`]).
    pub(super) maybe_cut: bool,
}

impl People {
    /// The classes written next to mention `m`: after it and before the next mention, else
    /// before it and after the previous one, else every class in the memo.
    pub(super) fn classes_near(&self, m: usize) -> Vec<&str> {
        let here = &self.mentions[m].span;
        let next = self
            .mentions
            .get(m + 1)
            .map_or(usize::MAX, |n| n.span.start);
        let prev = m.checked_sub(1).map_or(0, |p| self.mentions[p].span.end);
        let pick = |lo: usize, hi: usize| -> Vec<&str> {
            self.class_spans
                .iter()
                .filter(|(_, r)| r.start >= lo && r.end <= hi)
                .map(|(c, _)| c.as_str())
                .collect()
        };
        let after = pick(here.end, next);
        if !after.is_empty() {
            return after;
        }
        let before = pick(prev, here.start);
        if !before.is_empty() {
            return before;
        }
        self.classes.iter().map(String::as_str).collect()
    }
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Words right before a name that say the name is the pupil's: "HS", "con", "be", "hoc sinh".
const PUPIL_MARKERS: &[&str] = &["HS", "CON", "BE", "CHAU", "EM", "SINH", "CHO"];

/// Words that may stand between a name and its class: "lop 6A1".
const CLASS_WORDS: &[&str] = &["LOP", "L"];

/// `raw` is the memo as delivered, for its length.
pub(super) fn read_people(index: &Index, memo: &Memo, payer: Option<&str>, raw: &str) -> People {
    let words: Vec<&str> = memo.words().collect();
    let n = words.len();
    let keys: Vec<u64> = words.iter().map(|w| word_key(w)).collect();
    let known: Vec<bool> = words.iter().map(|w| index.known(w)).collect();
    // Keys of each word with one letter dropped, for words that may be a typo of a syllable:
    // outside every name, of a syllable's length, and not a memo word such as "CHUYEN" (which
    // is one letter away from "HUYEN").
    let typo_len = names::MIN_TYPO_LEN..=names::MAX_TYPO_LEN;
    let dropped: Vec<Vec<u64>> = words
        .iter()
        .enumerate()
        .map(|(j, w)| {
            if known[j] || memo.tokens[j].filler || !typo_len.contains(&w.len()) {
                Vec::new()
            } else {
                index.made_keys(w.len());
                let mut v: Vec<u64> = (0..w.len()).map(|skip| word_key_without(w, skip)).collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        })
        .collect();
    let mut hits: Vec<RawHit> = Vec::new();

    // Names side by side, any order.
    for k in 2..=MAX_NAME_WORDS.min(n) {
        for i in 0..=n - k {
            let span = i..i + k;
            let unknown: Vec<usize> = span.clone().filter(|&j| !known[j]).collect();
            let bag = bag_key(keys[span.clone()].iter().copied());
            let mut candidates: Vec<usize> = Vec::new();
            match unknown.as_slice() {
                [] => candidates.extend(index.keyed(&index.by_name, bag)),
                // One syllable outside every name: maybe a typo of one.
                [j] if !dropped[*j].is_empty() => {
                    candidates.extend(index.keyed(&index.by_name_typo, bag));
                    for &d in &dropped[*j] {
                        let variant = bag.wrapping_sub(keys[*j]).wrapping_add(d);
                        candidates.extend(index.keyed(&index.by_name, variant));
                        candidates.extend(index.keyed(&index.by_name_typo, variant));
                    }
                }
                _ => continue,
            }
            candidates.sort_unstable();
            candidates.dedup();
            // Namesakes are compared once: a popular name is carried by dozens of pupils.
            let mut compared: Vec<(&[String], Option<names::NameMatch>)> = Vec::new();
            for s in candidates {
                let name = index.students[s].name.as_slice();
                let found = match compared.iter().find(|(n, _)| *n == name) {
                    Some((_, m)) => m.clone(),
                    None => {
                        let m = names::compare_words(&words[span.clone()], name);
                        compared.push((name, m.clone()));
                        m
                    }
                };
                if let Some(m) = found {
                    // Out of written order, a name does not begin or end with a word of the
                    // memo's own phrases ("chuyen TIEN HUYNH QUOC" is no "Huynh Quoc Tien").
                    if !m.ordered && (memo.tokens[i].filler || memo.tokens[i + k - 1].filler) {
                        continue;
                    }
                    hits.push(RawHit {
                        student: s,
                        span: span.clone(),
                        rank: rank(m.typo.is_some(), k, m.ordered),
                        evidence: if m.typo.is_some() {
                            Evidence::NameOneTypo
                        } else {
                            Evidence::NameExact
                        },
                    });
                }
            }
        }
    }

    // Names run together ("NGUYENVANAN", "NGUYENVAN AN"): only over words outside every name,
    // and never longer than the longest name indexed run together (at most MAX_SQUEEZED_LEN)
    // and one letter for a typo, so each span costs a bounded number of keys.
    for i in 0..n {
        let mut joined = String::new();
        for j in i..n.min(i + MAX_NAME_WORDS) {
            // One letter more or less than a name: a typo.
            if joined.len() + words[j].len() > index.squeezed_len.1 + 1 {
                break;
            }
            joined.push_str(words[j]);
            let has_piece = (i..=j).any(|w| !known[w] && words[w].len() >= 5);
            if !has_piece || joined.len() + 1 < index.squeezed_len.0 {
                continue;
            }
            let mut candidates: Vec<usize> = Vec::new();
            let exact = squeezed_key(&joined);
            candidates.extend(index.keyed(&index.by_squeezed, exact));
            candidates.extend(index.keyed(&index.by_squeezed_typo, exact));
            for skip in 0..joined.len() {
                let variant = squeezed_key_without(&joined, skip);
                candidates.extend(index.keyed(&index.by_squeezed, variant));
                candidates.extend(index.keyed(&index.by_squeezed_typo, variant));
            }
            candidates.sort_unstable();
            candidates.dedup();
            for s in candidates {
                let Some(m) = names::compare_squeezed(&joined, &index.students[s].name) else {
                    continue;
                };
                // A "typo" that spells another name's syllable is probably that other name.
                if m.typo.as_deref().is_some_and(|t| index.known(t)) {
                    continue;
                }
                hits.push(RawHit {
                    student: s,
                    span: i..j + 1,
                    rank: rank(m.typo.is_some(), index.students[s].name.len(), true),
                    evidence: if m.typo.is_some() {
                        Evidence::NameOneTypo
                    } else {
                        Evidence::NameExact
                    },
                });
            }
        }
    }

    // Student codes: one word or two ("HS 250123"), read before the bank wrapping is removed
    // since a long number may be an ID. Their spans lie past the words so that they never
    // overlap a name.
    let folded: Vec<&str> = memo.folded.split(' ').filter(|w| !w.is_empty()).collect();
    for i in 0..folded.len() {
        let one = (folded[i].len() <= MAX_STUDENT_CODE_LEN).then(|| folded[i].to_string());
        let pair = folded
            .get(i + 1)
            .filter(|b| folded[i].len() + b.len() <= MAX_STUDENT_CODE_LEN)
            .map(|b| format!("{}{b}", folded[i]));
        for (text, len) in [(one, 1), (pair, 2)] {
            if let Some(&s) = text.and_then(|t| index.get(&index.by_student_code, &t)) {
                hits.push(RawHit {
                    student: s,
                    span: n + i..n + i + len,
                    rank: rank(false, MAX_NAME_WORDS, true),
                    evidence: Evidence::StudentCode,
                });
            }
        }
    }

    // The sender's own name is not the student's (rule 7): where the payer's name stands, and
    // the name before "CHUYEN TIEN" / "CHUYEN KHOAN" / "CK" at the start (the bank's default
    // memo). Any reading that touches those words is only weak evidence.
    let payer: Vec<String> = payer.map(names::name_tokens).unwrap_or_default();
    let mut sender: Vec<Range<usize>> = Vec::new();
    let p = payer.len();
    if p >= 2 && p <= n {
        // The payer's words in any order: windows whose order-free key is the name's, rolled
        // along the memo, then checked word by word (sorted, so a long name costs p log p, not
        // p² per window).
        let want = bag_key(payer.iter().map(|w| word_key(w)));
        let mut sorted: Vec<&str> = payer.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let mut key = bag_key(keys[..p].iter().copied());
        for i in 0..=n - p {
            if i > 0 {
                key = key.wrapping_sub(keys[i - 1]).wrapping_add(keys[i + p - 1]);
            }
            if key != want {
                continue;
            }
            let mut here: Vec<&str> = words[i..i + p].to_vec();
            here.sort_unstable();
            if here == sorted {
                sender.push(i..i + p);
            }
        }
    }
    let lead = words
        .iter()
        .take_while(|w| !matches!(**w, "CHUYEN" | "CK"))
        .count();
    let default_memo = matches!(
        words.get(lead..lead + 2),
        Some(["CHUYEN", "TIEN" | "KHOAN"])
    ) || words.get(lead) == Some(&"CK");
    if default_memo && (2..=MAX_NAME_WORDS).contains(&lead) {
        sender.push(0..lead);
    }
    // Classes that exist in the school, and where they stand.
    let class_spans: Vec<(String, Range<usize>)> = names::classes_in(&words)
        .into_iter()
        .filter(|(class, _)| index.get(&index.by_class, class).is_some())
        .collect();
    // Rule 6: a name with a pupil marker before it or its class after it is the pupil's, even
    // where the sender's name would stand ("TRAN MINH KHOA 8A1 chuyen tien").
    let pupil_side = |r: &Range<usize>| {
        let marked = r.start > 0
            && r.start <= n
            && words
                .get(r.start - 1)
                .is_some_and(|w| PUPIL_MARKERS.contains(w));
        let class_after = class_spans.iter().any(|(_, c)| {
            c.start == r.end
                || (c.start == r.end + 1
                    && words.get(r.end).is_some_and(|w| CLASS_WORDS.contains(w)))
        });
        marked || class_after
    };
    let is_payer = |h: &RawHit| sender.iter().any(|r| overlaps(r, &h.span)) && !pupil_side(&h.span);
    // Words that are the sender's name, or the name of a month ("thang tam"), never give a
    // pupil's given name either.
    let not_a_given_name: Vec<bool> = (0..n)
        .map(|j| {
            let month = j > 0 && words[j - 1] == "THANG" && period::is_month_word(words[j]);
            let after_muoi = j > 1
                && words[j - 2] == "THANG"
                && words[j - 1] == "MUOI"
                && matches!(words[j], "MOT" | "HAI");
            month || after_muoi || sender.iter().any(|r| r.contains(&j) && !pupil_side(r))
        })
        .collect();
    let mut people = People::default();
    let (payer_hits, mut hits): (Vec<RawHit>, Vec<RawHit>) = hits.into_iter().partition(is_payer);
    for h in payer_hits {
        people.weak.push((h.student, Evidence::PayerName));
    }

    // One mention per stretch of words; a better reading of the same words wins.
    hits.sort_by(|a, b| {
        (a.rank, a.span.start, a.span.end, a.student).cmp(&(
            b.rank,
            b.span.start,
            b.span.end,
            b.student,
        ))
    });
    for h in hits {
        if let Some(m) = people
            .mentions
            .iter_mut()
            .find(|m| m.span == h.span && m.rank == h.rank)
        {
            if !m.students.contains(&h.student) {
                m.students.push(h.student);
            }
            continue;
        }
        let over: Vec<usize> = (0..people.mentions.len())
            .filter(|&m| overlaps(&people.mentions[m].span, &h.span))
            .collect();
        if over.is_empty() {
            people.mentions.push(Mention {
                span: h.span,
                rank: h.rank,
                students: vec![h.student],
                evidence: h.evidence,
            });
        } else if over.iter().all(|&m| {
            people.mentions[m].students.contains(&h.student) || people.mentions[m].rank < h.rank
        }) {
            // The same student read differently, or a worse reading of someone else's name.
        } else {
            // An equally good reading of overlapping words names someone else: ambiguous.
            for m in over {
                if !people.mentions[m].students.contains(&h.student) {
                    people.mentions[m].students.push(h.student);
                }
            }
        }
    }
    people.mentions.sort_by_key(|m| m.span.start);

    for (class, span) in class_spans {
        if !people.classes.contains(&class) {
            people.classes.push(class.clone());
        }
        people.class_spans.push((class, span));
    }

    // Rule 8: cut only where there is a sign of it. The memo ends inside a word: its last
    // word is no syllable of any name but the beginning of one ("TUA" of "TUAN", "KH").
    let inside_word = n > 0 && {
        let w = words[n - 1];
        !memo.tokens[n - 1].filler
            && w.bytes().all(|b| b.is_ascii_alphabetic())
            && !index.known(w)
            && {
                index.probes.0.fetch_add(1, Relaxed);
                index.beginnings.contains(w)
            }
    };
    // Or a name, class or student code ends a memo as long as a bank's limit: if the bank cut
    // it there, it may be the beginning of another one ("NGUYEN VAN AN" of "NGUYEN VAN ANH",
    // "6A1" of "6A10"). Student codes' spans lie past the words, at `n` + their word of
    // `folded`.
    let last_typed = memo.at.last().copied();
    let ends_typed = |r: &Range<usize>| {
        if r.start >= n {
            last_typed.map_or(true, |a| a < r.end - n)
        } else {
            n > 0 && r.end == n
        }
    };
    let ends_delivered = |r: &Range<usize>| {
        if r.start >= n {
            r.end == n + folded.len()
        } else {
            ends_typed(r) && last_typed.is_some_and(|a| a + 1 == folded.len())
        }
    };
    let ending = |ends: &dyn Fn(&Range<usize>) -> bool| {
        people.mentions.iter().any(|m| ends(&m.span))
            || people.class_spans.iter().any(|(_, r)| ends(r))
    };
    let reaches = |len: usize, limit: usize| len <= limit && len + LIMIT_SLACK >= limit;
    // Lengths are counted only for a memo that a name or class ends.
    let typed = ending(&ends_typed).then(|| typed_chars(raw, memo));
    let delivered = ending(&ends_delivered).then(|| raw.chars().count());
    let at_limit = BANK_MEMO_LIMITS.iter().any(|&(_, limit)| match limit {
        MemoLimit::Typed(limit) => typed.is_some_and(|len| reaches(len, limit)),
        MemoLimit::Delivered(limit) => delivered.is_some_and(|len| reaches(len, limit)),
    });
    people.maybe_cut = inside_word || at_limit;
    // Cut inside the given name ("... be NGUYEN BAO V"): the students whose name begins with
    // the words before it, in any order, and whose given name begins with what is left.
    let mut cut_names: Vec<usize> = Vec::new();
    if inside_word {
        let stub = words[n - 1];
        for k in 2..MAX_NAME_WORDS.min(n) {
            let head = n - 1 - k..n - 1;
            if head.clone().any(|j| !known[j]) {
                break;
            }
            let bag = bag_key(keys[head.clone()].iter().copied());
            let found: Vec<usize> = index
                .keyed(&index.by_head, bag)
                .iter()
                .copied()
                .filter(|&s| {
                    let name = &index.students[s].name;
                    name.len() == k + 1
                        && name[k].starts_with(stub)
                        && names::compare_words(&words[head.clone()], &name[..k])
                            .is_some_and(|m| m.typo.is_none())
                })
                .collect();
            if !found.is_empty() && found.len() <= MAX_WEAK_CANDIDATES {
                cut_names = found;
            }
        }
    }

    // Weak evidence: middle and given name, or the given name alone, outside every mention.
    let named: HashSet<usize> = people
        .mentions
        .iter()
        .flat_map(|m| m.students.iter().copied())
        .collect();
    let free = |r: &Range<usize>| {
        !people.mentions.iter().any(|m| overlaps(&m.span, r))
            && !r
                .clone()
                .any(|j| not_a_given_name.get(j).copied().unwrap_or(false))
    };
    let in_class =
        |s: usize| people.classes.is_empty() || people.classes.contains(&index.students[s].class);
    // Words `from..to` stand alone: no syllable of a name (outside the memo's own words)
    // right before or after them.
    let syllable = |j: usize| !memo.tokens[j].filler && known[j];
    let alone =
        |from: usize, to: usize| !((from > 0 && syllable(from - 1)) || (to < n && syllable(to)));
    let mut weak: Vec<(usize, Evidence)> = Vec::new();
    for i in 0..n.saturating_sub(1) {
        if !free(&(i..i + 2)) || memo.tokens[i].filler && memo.tokens[i + 1].filler {
            continue;
        }
        let key = keys[i].wrapping_add(keys[i + 1]);
        for &s in index.keyed(&index.by_tail, key) {
            let name = &index.students[s].name;
            let tail = &name[name.len() - 2..];
            if names::compare_words(&words[i..i + 2], tail).is_some_and(|m| m.typo.is_none())
                && !named.contains(&s)
                && in_class(s)
            {
                weak.push((s, Evidence::PartialName));
                if alone(i, i + 2) {
                    people.alone.push(s);
                }
            }
        }
    }
    for (i, word) in words.iter().enumerate() {
        if !free(&(i..i + 1)) || memo.tokens[i].filler {
            continue;
        }
        let Some(list) = index.get(&index.by_given, *word) else {
            continue;
        };
        let listed: Vec<usize> = list.iter().copied().filter(|&s| in_class(s)).collect();
        if alone(i, i + 1) {
            people.alone.extend(listed.iter().copied());
        }
        if listed.len() <= MAX_WEAK_CANDIDATES {
            weak.extend(
                listed
                    .into_iter()
                    .filter(|s| !named.contains(s))
                    .map(|s| (s, Evidence::GivenNameOnly)),
            );
        }
    }
    for s in cut_names {
        if !named.contains(&s) {
            weak.insert(0, (s, Evidence::NameCut));
        }
    }
    for (s, e) in weak {
        if !people.weak.iter().any(|(w, _)| *w == s) {
            people.weak.push((s, e));
        }
    }
    people
}
