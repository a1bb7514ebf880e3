//! Which open invoices a transfer pays: automatically when the memo leaves no doubt, otherwise a
//! review with ranked suggestions and the evidence for each.
//!
//! # Rules
//!
//! The bar is zero wrong automatic allocations: whenever a rule below does not clearly apply,
//! the decision is a review. Every rule is tested under the same name in `tests`.
//!
//! 1. `code_names_one_invoice`: a valid payment code (in the memo or the order reference) that
//!    names exactly one open invoice is allocated automatically: the amount when below the
//!    balance (a partial payment), the balance when above (the rest stays on the payment as
//!    credit; allocations never exceed the amount nor a balance).
//! 2. `codes_of_one_family`: several valid codes of invoices of one student or of siblings
//!    (one `family_key`) are allocated in memo order, each up to its balance, when the amount
//!    covers them all; otherwise review ([`ReviewReason::Ambiguous`]).
//! 3. `code_against_name`: a code whose student is not the student the memo names is a review
//!    ([`ReviewReason::CodeNameConflict`]); so are valid codes mixed with codes of closed,
//!    dismissed or foreign invoices.
//! 4. `mistyped_code_never_auto`: a code with a wrong check character is never allocated
//!    automatically; its corrections (one symbol or one adjacent swap away) are suggested.
//! 5. `name_or_student_code`: without a code, exactly one student named by student code or full
//!    name (exact, or one typo in one syllable, in any order, spaced or run together) is
//!    allocated automatically when the amount equals that student's total open balance (all
//!    open invoices) or the balance of exactly one of them, and no other student is named as
//!    well. Namesakes are told apart only by the class written in the memo; a class that
//!    belongs to none of the named students is a review ([`ReviewReason::ClassMismatch`]).
//! 6. `siblings_by_name`: two or more students of one family named in the memo are allocated
//!    automatically when the amount equals the sum of their open balances.
//! 7. `sender_is_not_the_student`: a name that is the sender's own (equal to `payer_name`, or
//!    the bank's default memo `<NAME> CHUYEN TIEN` at the start) never names the student.
//!    A name, class or student code that ends a memo of [`TRUNCATION_RISK_LEN`] characters or
//!    more may have been cut by the bank and is reviewed ([`ReviewReason::MaybeTruncated`]).
//! 8. `weak_evidence_never_auto`: a given name alone, a middle and given name, a class or an
//!    amount are evidence for suggestions only.
//! 9. `dismissed_pairs`: an invoice the accountant dismissed for this payment is never
//!    suggested nor allocated, and a payment whose best reading involves one is reviewed.
//! 10. `long_memos_are_cut`: only the first [`MAX_MEMO_CHARS`] characters of a memo (and of an
//!     order reference) are read; a payment whose memo was longer is reviewed
//!     ([`ReviewReason::MemoCut`]), with what the part read suggests, since what was left
//!     unread may name another student or code.
//!
//! # Limits
//!
//! Reading a memo costs time linear in its length, and the cut above bounds that length: a
//! memo's reading runs under the school's ledger lock, so one huge memo must not hold up the
//! school's other deliveries. The engine looks up at most a fixed number of keys per memo word
//! (counted by [`Index::probes`]):
//! - a word is expanded into typo keys (one per letter left out) only when it has
//!   [`names::MIN_TYPO_LEN`] to [`names::MAX_TYPO_LEN`] letters: no Vietnamese syllable is
//!   longer, and a longer word cannot be one typo away from a syllable;
//! - names run together are looked for over at most [`MAX_NAME_WORDS`] neighbouring words and
//!   [`MAX_SQUEEZED_LEN`] letters (plus one, for a typo);
//! - a word (or a pair of words) is looked up as a student code only when it has at most
//!   [`MAX_STUDENT_CODE_LEN`] letters and digits;
//! - payment codes are windows of the code's fixed length ([`PaymentCode::MAX_LEN`] at most);
//! - the sender's name is looked for with a key rolled along the memo, not compared with every
//!   stretch of words.
//!
//! A few steps still compare the readings found with one another (overlapping names, the
//! classes near each name); the cut bounds them.
//!
//! Deterministic: hash maps are only looked up, never iterated into a result; ties are broken by
//! memo order, then period, then invoice id.

use crate::domain::code::{PaymentCode, SchoolPrefix};
use crate::domain::money::Vnd;
use crate::recon::codes::{self, Found};
use crate::recon::memo::{self, Memo};
use crate::recon::names;
use serde::Serialize;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A review lists at most this many suggestions.
pub const MAX_SUGGESTIONS: usize = 5;
/// Names longer than this many syllables are not looked for.
pub const MAX_NAME_WORDS: usize = 6;
/// A given name alone is suggested only when at most this many students carry it (in the named
/// class when the memo names one): beyond that it is noise for the accountant.
pub const MAX_WEAK_CANDIDATES: usize = 12;
/// Banks cut memos at 70 to 140 characters: in a memo at least this long, a name or class that
/// ends it may be cut short, so it does not decide alone.
pub const TRUNCATION_RISK_LEN: usize = 70;
/// Memos are read up to this many characters. Real ones are far shorter: VietQR's purpose field
/// holds 25 characters and banking apps take 70 to 210; five times the longest leaves room for
/// bank wrapping while bounding what one memo can cost (see "Limits" above).
pub const MAX_MEMO_CHARS: usize = 1_000;
/// A name run together ("NGUYENVANAN") is looked for only up to this many letters:
/// [`MAX_NAME_WORDS`] syllables of at most [`names::MAX_SYLLABLE_LEN`] letters. Longer names are
/// still found written with spaces.
pub const MAX_SQUEEZED_LEN: usize = MAX_NAME_WORDS * names::MAX_SYLLABLE_LEN;
/// Student codes have at most this many characters: the import and the students API refuse
/// longer ones (`identifier(…, "student_code", 32)` in `src/domain/import.rs` and
/// `src/http/students.rs`). Longer memo words are never looked up as one.
pub const MAX_STUDENT_CODE_LEN: usize = 32;
/// A suggestion scoring this much is [`Strength::Strong`] (e.g. code valid; name + amount).
pub const STRONG_SCORE: i32 = 100;
/// A suggestion scoring this much is [`Strength::Medium`] (e.g. name alone).
pub const MEDIUM_SCORE: i32 = 60;

/// An invoice still owed, as the index needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    pub invoice_id: i64,
    pub code: PaymentCode,
    pub student_id: i64,
    pub student_code: String,
    pub student_name: String,
    pub class_name: String,
    pub family_key: Option<String>,
    /// Still owed; invoices with nothing owed are left out of the index.
    pub open: Vnd,
    /// `2025-09`: orders a student's invoices, oldest first.
    pub period: String,
}

/// A transfer notification.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub amount: Vnd,
    pub memo: &'a str,
    /// The reference the payer's app carried back (VNPay `vnp_TxnRef`, a VietQR template...).
    pub order_ref: Option<&'a str>,
    /// The sender's account name, when the bank tells it.
    pub payer_name: Option<&'a str>,
}

/// Why a suggestion (or an automatic allocation) was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    CodeValid,
    CodeWrongCheck,
    CodeNotOpen,
    OrderRef,
    StudentCode,
    NameExact,
    NameOneTypo,
    PartialName,
    GivenNameOnly,
    PayerName,
    SiblingsNamed,
    ClassMatches,
    ClassDiffers,
    AmountEqualsBalance,
    AmountEqualsStudentTotal,
    AmountEqualsSiblingsTotal,
    AmountBelowBalance,
    AmountAboveBalance,
}

impl Evidence {
    pub fn words(&self) -> &'static str {
        match self {
            Evidence::CodeValid => "code valid",
            Evidence::CodeWrongCheck => "code mistyped (wrong check character)",
            Evidence::CodeNotOpen => "code valid but its invoice is not open",
            Evidence::OrderRef => "code in the order reference",
            Evidence::StudentCode => "student code matches",
            Evidence::NameExact => "name matches",
            Evidence::NameOneTypo => "name matches with one typo",
            Evidence::PartialName => "middle and given name match",
            Evidence::GivenNameOnly => "given name only",
            Evidence::PayerName => "the sender's own name matches",
            Evidence::SiblingsNamed => "siblings named together",
            Evidence::ClassMatches => "class matches",
            Evidence::ClassDiffers => "name matches, class differs",
            Evidence::AmountEqualsBalance => "amount equals the balance",
            Evidence::AmountEqualsStudentTotal => "amount equals the student's total balance",
            Evidence::AmountEqualsSiblingsTotal => "amount equals the siblings' total balance",
            Evidence::AmountBelowBalance => "amount below the balance",
            Evidence::AmountAboveBalance => "amount above the balance",
        }
    }

    /// Weight in a suggestion's score; see [`STRONG_SCORE`] and [`MEDIUM_SCORE`].
    fn score(self) -> i32 {
        match self {
            Evidence::CodeValid => 100,
            Evidence::StudentCode => 80,
            Evidence::NameExact => 70,
            Evidence::CodeWrongCheck => 50,
            Evidence::NameOneTypo => 50,
            Evidence::PartialName => 30,
            Evidence::AmountEqualsBalance
            | Evidence::AmountEqualsStudentTotal
            | Evidence::AmountEqualsSiblingsTotal => 30,
            Evidence::GivenNameOnly | Evidence::ClassMatches => 15,
            Evidence::OrderRef | Evidence::PayerName | Evidence::SiblingsNamed => 10,
            Evidence::CodeNotOpen | Evidence::AmountBelowBalance => 0,
            Evidence::AmountAboveBalance => -10,
            Evidence::ClassDiffers => -40,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    Strong,
    Medium,
    Weak,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// (invoice id, amount), in allocation order.
    pub allocations: Vec<(i64, Vnd)>,
    pub evidence: Vec<Evidence>,
    pub strength: Strength,
}

impl Suggestion {
    /// "code valid, amount equals the balance".
    pub fn describe(&self) -> String {
        self.evidence
            .iter()
            .map(Evidence::words)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn score(&self) -> i32 {
        self.evidence.iter().map(|e| e.score()).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// Nothing in the memo points to an open invoice.
    Unmatched,
    /// Only weak evidence: a given name, a class, an amount.
    OnlyWeakEvidence,
    /// More than one reading (namesakes, several students, codes not of one family).
    Ambiguous,
    WrongCheckCharacter,
    /// The student is clear but the amount is not their balance.
    AmountMismatch,
    /// The class in the memo is not the named student's.
    ClassMismatch,
    /// A valid code whose invoice is not open (already paid, cancelled, another school).
    CodeNotOpen,
    /// The code's student is not the student the memo names.
    CodeNameConflict,
    /// The best reading involves an invoice the accountant dismissed for this payment.
    Dismissed,
    /// The name or class that decides ends a memo long enough to have been cut by the bank.
    MaybeTruncated,
    /// Zero or negative amount.
    NotAPayment,
    /// The memo (or order reference) was longer than [`MAX_MEMO_CHARS`] and only its beginning
    /// was read: cut by us, not by the bank.
    MemoCut,
}

impl ReviewReason {
    pub fn words(&self) -> &'static str {
        match self {
            ReviewReason::Unmatched => "nothing in the memo points to an open invoice",
            ReviewReason::OnlyWeakEvidence => "only weak evidence (given name, class or amount)",
            ReviewReason::Ambiguous => "more than one possible reading",
            ReviewReason::WrongCheckCharacter => "payment code mistyped",
            ReviewReason::AmountMismatch => "the student is clear, the amount is not the balance",
            ReviewReason::ClassMismatch => "the class in the memo is not the student's",
            ReviewReason::CodeNotOpen => "the code's invoice is not open",
            ReviewReason::CodeNameConflict => "the code and the name point to different students",
            ReviewReason::Dismissed => "the likely invoice was dismissed for this payment",
            ReviewReason::MaybeTruncated => "the memo may have been cut inside the name or class",
            ReviewReason::NotAPayment => "the amount is not positive",
            ReviewReason::MemoCut => {
                "the memo is longer than 1,000 characters: only its first 1,000 were read"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Auto {
        allocations: Vec<(i64, Vnd)>,
        evidence: Vec<Evidence>,
    },
    Review {
        reason: ReviewReason,
        /// Ranked, best first, at most [`MAX_SUGGESTIONS`].
        suggestions: Vec<Suggestion>,
    },
}

impl Decision {
    pub fn is_auto(&self) -> bool {
        matches!(self, Decision::Auto { .. })
    }
}

// ---------------------------------------------------------------------------------------------
// Index

#[derive(Debug, Clone)]
struct Inv {
    id: i64,
    code: PaymentCode,
    student: usize,
    open: Vnd,
}

#[derive(Debug, Clone)]
struct Student {
    name: Vec<String>,
    class: String,
    family: Option<String>,
    /// Oldest period first, then invoice id.
    invoices: Vec<usize>,
}

/// A school's open invoices, arranged for lookups by code, student code, name, class and
/// family, so that deciding a payment never scans all invoices.
#[derive(Debug, Clone)]
pub struct Index {
    prefix: SchoolPrefix,
    invoices: Vec<Inv>,
    students: Vec<Student>,
    by_id: HashMap<i64, usize>,
    by_code: HashMap<String, usize>,
    by_student_code: HashMap<String, usize>,
    /// Order-free key of all syllables.
    by_name: KeyMap,
    /// The same with one syllable (≥ 3 letters) missing one letter.
    by_name_typo: KeyMap,
    /// The name run together, in written order.
    by_squeezed: KeyMap,
    by_squeezed_typo: KeyMap,
    /// Shortest and longest squeezed name.
    squeezed_len: (usize, usize),
    /// Order-free key of middle and given name.
    by_tail: KeyMap,
    by_given: HashMap<String, Vec<usize>>,
    by_class: HashMap<String, Vec<usize>>,
    by_family: HashMap<String, Vec<usize>>,
    /// Every syllable of every name: a memo word outside it may be a typo, one inside is not.
    vocabulary: HashSet<String>,
    probes: Probes,
}

/// How many hash look-ups reading memos made, and typo keys it made from memo words (a key
/// costs as much to make as to look up, and a word of n letters gives n of them): what a memo
/// costs, counted rather than timed, so that tests can bound it. Always compiled: one relaxed
/// atomic add beside each look-up, which hashes its key anyway. Atomic rather than a `Cell` so
/// that an `Index` stays `Sync` (the store holds one across awaits).
#[derive(Debug, Default)]
struct Probes(AtomicU64);

impl Clone for Probes {
    fn clone(&self) -> Self {
        Probes(AtomicU64::new(self.0.load(Relaxed)))
    }
}

/// The name keys are already well-mixed 64-bit hashes: hashing them again would only cost time.
#[derive(Debug, Clone, Copy, Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with this hasher; any other input still hashes soundly.
        self.0 = fnv(bytes.iter().copied()) ^ self.0.rotate_left(5);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap = HashMap<u64, Vec<usize>, std::hash::BuildHasherDefault<KeyHasher>>;

fn fnv(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Spreads a word's hash so that sums of word keys make a good order-free key.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn word_key(w: &str) -> u64 {
    mix(fnv(w.bytes()))
}

/// Key of `w` with the byte at `skip` left out.
fn word_key_without(w: &str, skip: usize) -> u64 {
    mix(fnv(w
        .bytes()
        .enumerate()
        .filter(|&(i, _)| i != skip)
        .map(|(_, b)| b)))
}

fn squeezed_key(w: &str) -> u64 {
    mix(fnv(w.bytes()))
}

fn squeezed_key_without(w: &str, skip: usize) -> u64 {
    mix(fnv(w
        .bytes()
        .enumerate()
        .filter(|&(i, _)| i != skip)
        .map(|(_, b)| b)))
}

fn bag_key(keys: impl Iterator<Item = u64>) -> u64 {
    keys.fold(0u64, u64::wrapping_add)
}

fn push_once(map: &mut KeyMap, key: u64, s: usize) {
    let list = map.entry(key).or_default();
    if list.last() != Some(&s) {
        list.push(s);
    }
}

fn canonical_class(class: &str) -> String {
    names::canonical_class(class).unwrap_or_else(|| memo::fold(class).replace(' ', ""))
}

fn squeeze_id(text: &str) -> String {
    memo::fold(text).replace(' ', "")
}

impl Index {
    /// Builds a school's index. Invoices with nothing owed are left out; a student's name, class
    /// and family are taken from their first invoice.
    pub fn build(prefix: &SchoolPrefix, invoices: Vec<OpenInvoice>) -> Index {
        let mut grouped: BTreeMap<i64, Vec<OpenInvoice>> = BTreeMap::new();
        for inv in invoices.into_iter().filter(|i| i.open > Vnd::ZERO) {
            grouped.entry(inv.student_id).or_default().push(inv);
        }
        let mut index = Index {
            prefix: prefix.clone(),
            invoices: Vec::new(),
            students: Vec::with_capacity(grouped.len()),
            by_id: HashMap::new(),
            by_code: HashMap::new(),
            by_student_code: HashMap::new(),
            by_name: KeyMap::default(),
            by_name_typo: KeyMap::default(),
            by_squeezed: KeyMap::default(),
            by_squeezed_typo: KeyMap::default(),
            squeezed_len: (usize::MAX, 0),
            by_tail: KeyMap::default(),
            by_given: HashMap::new(),
            by_class: HashMap::new(),
            by_family: HashMap::new(),
            vocabulary: HashSet::new(),
            probes: Probes::default(),
        };
        for (_, mut invs) in grouped {
            invs.sort_by(|a, b| (&a.period, a.invoice_id).cmp(&(&b.period, b.invoice_id)));
            let s = index.students.len();
            let first = &invs[0];
            let name = names::name_tokens(&first.student_name);
            let class = canonical_class(&first.class_name);
            let family = first
                .family_key
                .as_deref()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string);
            let student_code = squeeze_id(&first.student_code);
            if !student_code.is_empty() {
                index.by_student_code.insert(student_code, s);
            }
            index.index_name(s, &name);
            index.by_class.entry(class.clone()).or_default().push(s);
            if let Some(f) = &family {
                index.by_family.entry(f.clone()).or_default().push(s);
            }
            let mut ids = Vec::with_capacity(invs.len());
            for inv in invs {
                let i = index.invoices.len();
                index.by_id.insert(inv.invoice_id, i);
                index.by_code.insert(inv.code.as_str().to_string(), i);
                index.invoices.push(Inv {
                    id: inv.invoice_id,
                    code: inv.code,
                    student: s,
                    open: inv.open,
                });
                ids.push(i);
            }
            index.students.push(Student {
                name,
                class,
                family,
                invoices: ids,
            });
        }
        index
    }

    fn index_name(&mut self, s: usize, name: &[String]) {
        let k = name.len();
        if k < 2 {
            return;
        }
        let keys: Vec<u64> = name.iter().map(|w| word_key(w)).collect();
        let bag = bag_key(keys.iter().copied());
        push_once(&mut self.by_name, bag, s);
        for (w, &key) in name.iter().zip(&keys) {
            self.vocabulary.insert(w.clone());
            if (names::MIN_TYPO_LEN..=names::MAX_TYPO_LEN).contains(&w.len()) {
                for skip in 0..w.len() {
                    let variant = bag
                        .wrapping_sub(key)
                        .wrapping_add(word_key_without(w, skip));
                    push_once(&mut self.by_name_typo, variant, s);
                }
            }
        }
        let squeezed = name.concat();
        if squeezed.len() <= MAX_SQUEEZED_LEN {
            push_once(&mut self.by_squeezed, squeezed_key(&squeezed), s);
            for skip in 0..squeezed.len() {
                push_once(
                    &mut self.by_squeezed_typo,
                    squeezed_key_without(&squeezed, skip),
                    s,
                );
            }
            self.squeezed_len = (
                self.squeezed_len.0.min(squeezed.len()),
                self.squeezed_len.1.max(squeezed.len()),
            );
        }
        push_once(&mut self.by_tail, keys[k - 2].wrapping_add(keys[k - 1]), s);
        let given = self.by_given.entry(name[k - 1].clone()).or_default();
        if given.last() != Some(&s) {
            given.push(s);
        }
    }

    pub fn prefix(&self) -> &SchoolPrefix {
        &self.prefix
    }

    /// Hash look-ups and typo keys made so far reading memos against this index: what memos
    /// cost, counted rather than timed (see "Limits" in the module docs).
    pub fn probes(&self) -> u64 {
        self.probes.0.load(Relaxed)
    }

    /// `map.get(key)`, counted.
    fn get<'m, K, Q, V, S>(&self, map: &'m HashMap<K, V, S>, key: &Q) -> Option<&'m V>
    where
        K: Borrow<Q> + Hash + Eq,
        Q: Hash + Eq + ?Sized,
        S: BuildHasher,
    {
        self.probes.0.fetch_add(1, Relaxed);
        map.get(key)
    }

    /// The students under a name key, counted.
    fn keyed<'m>(&self, map: &'m KeyMap, key: u64) -> &'m [usize] {
        self.get(map, &key).map_or(&[], Vec::as_slice)
    }

    /// Counts `n` typo keys made from a memo word.
    fn made_keys(&self, n: usize) {
        self.probes.0.fetch_add(n as u64, Relaxed);
    }

    /// `w` is a syllable of some name, counted.
    fn known(&self, w: &str) -> bool {
        self.probes.0.fetch_add(1, Relaxed);
        self.vocabulary.contains(w)
    }

    /// How many open invoices the index holds.
    pub fn len(&self) -> usize {
        self.invoices.iter().filter(|i| i.open > Vnd::ZERO).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An invoice's payment code (`None` if the index never held it).
    pub fn code(&self, invoice_id: i64) -> Option<&PaymentCode> {
        self.by_id.get(&invoice_id).map(|&i| &self.invoices[i].code)
    }

    /// What is still owed on an invoice (`None` if the index never held it).
    pub fn open(&self, invoice_id: i64) -> Option<Vnd> {
        self.by_id.get(&invoice_id).map(|&i| self.invoices[i].open)
    }

    /// Records an allocation made since the index was built, so that later payments of the same
    /// batch see the new balance; an invoice owed nothing more drops out of every match.
    pub fn settle(&mut self, invoice_id: i64, amount: Vnd) -> bool {
        let Some(&i) = self.by_id.get(&invoice_id) else {
            return false;
        };
        let inv = &mut self.invoices[i];
        inv.open = inv
            .open
            .checked_sub(amount)
            .filter(|v| *v > Vnd::ZERO)
            .unwrap_or(Vnd::ZERO);
        true
    }

    fn open_invoices(&self, s: usize) -> impl Iterator<Item = usize> + '_ {
        self.students[s]
            .invoices
            .iter()
            .copied()
            .filter(|&i| self.invoices[i].open > Vnd::ZERO)
    }

    fn total(&self, s: usize) -> i64 {
        self.open_invoices(s)
            .map(|i| self.invoices[i].open.dong())
            .sum()
    }

    fn same_family(&self, students: &[usize]) -> bool {
        let Some(&first) = students.first() else {
            return false;
        };
        students.iter().all(|&s| s == first)
            || students.iter().all(|&s| {
                self.students[s].family.is_some()
                    && self.students[s].family == self.students[first].family
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a memo against the index

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
struct Mention {
    span: Range<usize>,
    /// See [`RawHit::rank`].
    rank: Rank,
    students: Vec<usize>,
    evidence: Evidence,
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
struct People {
    mentions: Vec<Mention>,
    /// Students suggested on weak evidence only.
    weak: Vec<(usize, Evidence)>,
    /// Classes named in the memo that exist in the school.
    classes: Vec<String>,
    /// The same with where each stood.
    class_spans: Vec<(String, Range<usize>)>,
    /// A name, class or student code ends the memo: if the bank cut the memo there, it may be
    /// the beginning of another one ("NGUYEN VAN AN" of "NGUYEN VAN ANH", "6A1" of "6A10").
    at_end: bool,
}

impl People {
    /// The classes written next to mention `m`: after it and before the next mention, else
    /// before it and after the previous one, else every class in the memo.
    fn classes_near(&self, m: usize) -> Vec<&str> {
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

fn read_people(index: &Index, memo: &Memo, payer: Option<&str>) -> People {
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
            for s in candidates {
                if let Some(m) = names::compare_words(&words[span.clone()], &index.students[s].name)
                {
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
    let is_payer = |h: &RawHit| sender.iter().any(|r| overlaps(r, &h.span));
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

    // Classes that exist in the school.
    for (class, span) in names::classes_in(&words) {
        if index.get(&index.by_class, &class).is_some() {
            if !people.classes.contains(&class) {
                people.classes.push(class.clone());
            }
            people.class_spans.push((class, span));
        }
    }

    let last_word = folded.last().copied();
    let ends_memo = |r: &Range<usize>| {
        (n > 0 && r.end == n && last_word == Some(words[n - 1])) || r.end == n + folded.len()
    };
    people.at_end = people.mentions.iter().any(|m| ends_memo(&m.span))
        || people.class_spans.iter().any(|(_, r)| ends_memo(r));

    // Weak evidence: middle and given name, or the given name alone, outside every mention.
    let named: HashSet<usize> = people
        .mentions
        .iter()
        .flat_map(|m| m.students.iter().copied())
        .collect();
    let free = |r: &Range<usize>| !people.mentions.iter().any(|m| overlaps(&m.span, r));
    let in_class =
        |s: usize| people.classes.is_empty() || people.classes.contains(&index.students[s].class);
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
        if listed.len() <= MAX_WEAK_CANDIDATES {
            weak.extend(
                listed
                    .into_iter()
                    .filter(|s| !named.contains(s))
                    .map(|s| (s, Evidence::GivenNameOnly)),
            );
        }
    }
    for (s, e) in weak {
        if !people.weak.iter().any(|(w, _)| *w == s) {
            people.weak.push((s, e));
        }
    }
    people
}

// ---------------------------------------------------------------------------------------------
// Deciding

struct Ctx<'a> {
    index: &'a Index,
    amount: Vnd,
    dismissed: &'a dyn Fn(i64) -> bool,
    classes: Vec<String>,
}

impl Ctx<'_> {
    fn usable(&self, i: usize) -> bool {
        let inv = &self.index.invoices[i];
        inv.open > Vnd::ZERO && !(self.dismissed)(inv.id)
    }

    /// Open invoices of a student, none dismissed; `None` if any is dismissed.
    fn all_usable(&self, s: usize) -> Option<Vec<usize>> {
        let all: Vec<usize> = self.index.open_invoices(s).collect();
        all.iter().all(|&i| self.usable(i)).then_some(all)
    }

    fn class_evidence(&self, s: usize) -> Option<Evidence> {
        if self.classes.is_empty() {
            None
        } else if self.classes.contains(&self.index.students[s].class) {
            Some(Evidence::ClassMatches)
        } else {
            Some(Evidence::ClassDiffers)
        }
    }

    fn amount_evidence(&self, total: i64) -> Evidence {
        match self.amount.dong().cmp(&total) {
            std::cmp::Ordering::Equal => Evidence::AmountEqualsBalance,
            std::cmp::Ordering::Less => Evidence::AmountBelowBalance,
            std::cmp::Ordering::Greater => Evidence::AmountAboveBalance,
        }
    }

    /// One invoice: allocate the amount, at most its balance.
    fn invoice_suggestion(&self, i: usize, mut evidence: Vec<Evidence>) -> Suggestion {
        let inv = &self.index.invoices[i];
        evidence.push(self.amount_evidence(inv.open.dong()));
        if let Some(c) = self.class_evidence(inv.student) {
            evidence.push(c);
        }
        suggestion(vec![(inv.id, self.amount.min(inv.open))], evidence)
    }

    /// A student: everything owed when the amount is their total, the one invoice whose balance
    /// is the amount, or else oldest first up to the amount.
    fn student_suggestion(&self, s: usize, mut evidence: Vec<Evidence>) -> Option<Suggestion> {
        let open: Vec<usize> = self
            .index
            .open_invoices(s)
            .filter(|&i| self.usable(i))
            .collect();
        if open.is_empty() {
            return None;
        }
        let total: i64 = open
            .iter()
            .map(|&i| self.index.invoices[i].open.dong())
            .sum();
        let exact: Vec<usize> = open
            .iter()
            .copied()
            .filter(|&i| self.index.invoices[i].open == self.amount)
            .collect();
        let chosen: Vec<usize> = if self.amount.dong() == total {
            evidence.push(if open.len() > 1 {
                Evidence::AmountEqualsStudentTotal
            } else {
                Evidence::AmountEqualsBalance
            });
            open
        } else if exact.len() == 1 {
            evidence.push(Evidence::AmountEqualsBalance);
            exact
        } else {
            evidence.push(self.amount_evidence(total));
            open
        };
        if let Some(c) = self.class_evidence(s) {
            evidence.push(c);
        }
        Some(suggestion(self.fill(&chosen), evidence))
    }

    /// Allocates the amount over invoices in order, each up to its balance.
    fn fill(&self, invoices: &[usize]) -> Vec<(i64, Vnd)> {
        let mut left = self.amount;
        let mut out = Vec::new();
        for &i in invoices {
            if left <= Vnd::ZERO {
                break;
            }
            let inv = &self.index.invoices[i];
            let part = left.min(inv.open);
            out.push((inv.id, part));
            left = left.checked_sub(part).unwrap_or(Vnd::ZERO);
        }
        out
    }

    /// Several students at once (siblings): all their open invoices, mention order.
    fn students_suggestion(
        &self,
        students: &[usize],
        mut evidence: Vec<Evidence>,
    ) -> Option<Suggestion> {
        let mut invoices = Vec::new();
        for &s in students {
            invoices.extend(self.all_usable(s)?);
        }
        let total: i64 = invoices
            .iter()
            .map(|&i| self.index.invoices[i].open.dong())
            .sum();
        if invoices.is_empty() {
            return None;
        }
        evidence.push(if self.amount.dong() == total {
            Evidence::AmountEqualsSiblingsTotal
        } else {
            self.amount_evidence(total)
        });
        Some(suggestion(self.fill(&invoices), evidence))
    }
}

fn suggestion(allocations: Vec<(i64, Vnd)>, mut evidence: Vec<Evidence>) -> Suggestion {
    evidence.dedup();
    let mut s = Suggestion {
        allocations,
        evidence,
        strength: Strength::Weak,
    };
    let score = s.score();
    s.strength = if score >= STRONG_SCORE {
        Strength::Strong
    } else if score >= MEDIUM_SCORE {
        Strength::Medium
    } else {
        Strength::Weak
    };
    s
}

fn review(reason: ReviewReason, mut suggestions: Vec<Suggestion>) -> Decision {
    // Best first; equal scores in the order found (memo order), which is deterministic.
    suggestions.retain(|s| !s.allocations.is_empty());
    let mut ranked: Vec<(usize, Suggestion)> = suggestions.into_iter().enumerate().collect();
    ranked.sort_by(|(ia, a), (ib, b)| b.score().cmp(&a.score()).then(ia.cmp(ib)));
    let mut out: Vec<Suggestion> = Vec::new();
    for (_, s) in ranked {
        if !out.iter().any(|o| o.allocations == s.allocations) {
            out.push(s);
        }
        if out.len() == MAX_SUGGESTIONS {
            break;
        }
    }
    Decision::Review {
        reason,
        suggestions: out,
    }
}

fn auto(allocations: Vec<(i64, Vnd)>, mut evidence: Vec<Evidence>) -> Decision {
    evidence.dedup();
    if allocations.is_empty() || allocations.iter().any(|(_, a)| *a <= Vnd::ZERO) {
        return review(ReviewReason::Unmatched, Vec::new());
    }
    Decision::Auto {
        allocations,
        evidence,
    }
}

/// What to do with one incoming transfer. `dismissed(invoice_id)` says the accountant rejected
/// that invoice for this payment.
pub fn decide(index: &Index, incoming: &Incoming, dismissed: &dyn Fn(i64) -> bool) -> Decision {
    if incoming.amount <= Vnd::ZERO {
        return review(ReviewReason::NotAPayment, Vec::new());
    }
    // Rule 10: read the beginning only, and say so.
    let (memo, memo_cut) = memo::head(incoming.memo, MAX_MEMO_CHARS);
    let order_ref = incoming.order_ref.map(|r| memo::head(r, MAX_MEMO_CHARS));
    let read = Incoming {
        memo,
        order_ref: order_ref.map(|(r, _)| r),
        ..*incoming
    };
    let decision = decide_read(index, &read, dismissed);
    if !memo_cut && !order_ref.is_some_and(|(_, cut)| cut) {
        return decision;
    }
    match decision {
        Decision::Auto {
            allocations,
            evidence,
        } => review(
            ReviewReason::MemoCut,
            vec![suggestion(allocations, evidence)],
        ),
        Decision::Review { suggestions, .. } => review(ReviewReason::MemoCut, suggestions),
    }
}

/// [`decide`] on a memo and order reference already cut to [`MAX_MEMO_CHARS`].
fn decide_read(index: &Index, incoming: &Incoming, dismissed: &dyn Fn(i64) -> bool) -> Decision {
    let memo = memo::normalise(incoming.memo);
    let people = read_people(index, &memo, incoming.payer_name);
    let ctx = Ctx {
        index,
        amount: incoming.amount,
        dismissed,
        classes: people.classes.clone(),
    };

    // Codes: the order reference first (the payer's app put it there), then memo order.
    let mut found: Vec<(codes::Hit, bool)> = Vec::new();
    if let Some(r) = incoming.order_ref {
        found.extend(codes::find(r, &index.prefix).into_iter().map(|h| (h, true)));
    }
    found.extend(
        codes::find(&memo.folded, &index.prefix)
            .into_iter()
            .map(|h| (h, false)),
    );
    let mut coded: Vec<(usize, bool)> = Vec::new();
    let mut dismissed_codes = 0;
    let mut closed_codes = 0;
    let mut mistyped: Vec<Vec<usize>> = Vec::new();
    for (hit, from_ref) in &found {
        match &hit.found {
            Found::Valid(code) => match index.get(&index.by_code, code.as_str()) {
                Some(&i) if index.invoices[i].open > Vnd::ZERO => {
                    if (ctx.dismissed)(index.invoices[i].id) {
                        dismissed_codes += 1;
                    } else if !coded.iter().any(|(c, _)| *c == i) {
                        coded.push((i, *from_ref));
                    }
                }
                _ if hit.aligned || *from_ref => closed_codes += 1,
                _ => {}
            },
            Found::WrongCheck { text, corrected } => {
                let open: Vec<usize> = corrected
                    .iter()
                    .filter_map(|c| index.get(&index.by_code, c.as_str()).copied())
                    .filter(|&i| ctx.usable(i))
                    .collect();
                // Letters only and no open invoice nearby: a word, not a mistyped code.
                if !open.is_empty() || text.bytes().any(|b| b.is_ascii_digit()) {
                    mistyped.push(open);
                }
            }
        }
    }
    let coded_students: Vec<usize> = coded
        .iter()
        .map(|&(i, _)| index.invoices[i].student)
        .collect();

    // Suggestions from everything read, for any review.
    let named = |m: &Mention| -> Vec<Evidence> { vec![m.evidence] };
    let mut suggestions: Vec<Suggestion> = Vec::new();
    for &(i, from_ref) in &coded {
        let mut ev = vec![Evidence::CodeValid];
        if from_ref {
            ev.push(Evidence::OrderRef);
        }
        suggestions.push(ctx.invoice_suggestion(i, ev));
    }
    for open in &mistyped {
        for &i in open {
            let mut ev = vec![Evidence::CodeWrongCheck];
            let s = index.invoices[i].student;
            if let Some(m) = people.mentions.iter().find(|m| m.students.contains(&s)) {
                ev.push(m.evidence);
            }
            suggestions.push(ctx.invoice_suggestion(i, ev));
        }
    }
    let mut mentioned: Vec<usize> = Vec::new();
    for m in &people.mentions {
        for &s in &m.students {
            suggestions.extend(ctx.student_suggestion(s, named(m)));
            if !mentioned.contains(&s) {
                mentioned.push(s);
            }
        }
    }
    if mentioned.len() >= 2 && index.same_family(&mentioned) {
        suggestions.extend(ctx.students_suggestion(&mentioned, vec![Evidence::SiblingsNamed]));
    }
    for &s in &mentioned {
        if let Some(f) = &index.students[s].family {
            let family: Vec<usize> = index.get(&index.by_family, f).cloned().unwrap_or_default();
            let total: i64 = family.iter().map(|&m| index.total(m)).sum();
            if family.len() > 1 && total == incoming.amount.dong() {
                suggestions.extend(ctx.students_suggestion(&family, vec![]));
            }
        }
    }
    for &(s, e) in &people.weak {
        suggestions.extend(ctx.student_suggestion(s, vec![e]));
    }

    // Rule 4: a mistyped code is never allocated automatically.
    if !mistyped.is_empty() {
        return review(ReviewReason::WrongCheckCharacter, suggestions);
    }

    // Rules 1 to 3: valid codes.
    if !coded.is_empty() {
        if dismissed_codes > 0 || closed_codes > 0 {
            return review(ReviewReason::Ambiguous, suggestions);
        }
        let conflict = people
            .mentions
            .iter()
            .any(|m| !m.students.iter().any(|s| coded_students.contains(s)));
        if conflict {
            return review(ReviewReason::CodeNameConflict, suggestions);
        }
        let mut evidence = vec![Evidence::CodeValid];
        if coded.iter().any(|&(_, r)| r) {
            evidence.push(Evidence::OrderRef);
        }
        let invoices: Vec<usize> = coded.iter().map(|&(i, _)| i).collect();
        let total: i64 = invoices
            .iter()
            .map(|&i| index.invoices[i].open.dong())
            .sum();
        if invoices.len() == 1 {
            evidence.push(ctx.amount_evidence(total));
            return auto(ctx.fill(&invoices), evidence);
        }
        if index.same_family(&coded_students) && incoming.amount.dong() >= total {
            evidence.push(if incoming.amount.dong() == total {
                Evidence::AmountEqualsSiblingsTotal
            } else {
                Evidence::AmountAboveBalance
            });
            return auto(ctx.fill(&invoices), evidence);
        }
        suggestions.push(suggestion(ctx.fill(&invoices), evidence));
        return review(ReviewReason::Ambiguous, suggestions);
    }
    if dismissed_codes > 0 {
        return review(ReviewReason::Dismissed, suggestions);
    }
    if closed_codes > 0 {
        return review(ReviewReason::CodeNotOpen, suggestions);
    }

    // Rules 5 and 6: student codes and names.
    if people.mentions.is_empty() {
        let reason = if people.weak.is_empty() {
            ReviewReason::Unmatched
        } else {
            ReviewReason::OnlyWeakEvidence
        };
        return review(reason, suggestions);
    }
    if people.at_end && incoming.memo.chars().count() >= TRUNCATION_RISK_LEN {
        return review(ReviewReason::MaybeTruncated, suggestions);
    }
    let mut students: Vec<usize> = Vec::new();
    let mut evidence: Vec<Evidence> = Vec::new();
    for (k, m) in people.mentions.iter().enumerate() {
        let chosen: Vec<usize> = if m.students.len() == 1 {
            m.students.clone()
        } else {
            // Namesakes: only the class written next to the name tells them apart.
            let near = people.classes_near(k);
            m.students
                .iter()
                .copied()
                .filter(|&s| near.contains(&index.students[s].class.as_str()))
                .collect()
        };
        let [s] = chosen.as_slice() else {
            return review(ReviewReason::Ambiguous, suggestions);
        };
        if !students.contains(s) {
            students.push(*s);
        }
        evidence.push(m.evidence);
    }
    evidence.sort();
    if students.len() > 1 && !index.same_family(&students) {
        return review(ReviewReason::Ambiguous, suggestions);
    }
    let foreign_class = ctx
        .classes
        .iter()
        .any(|c| !students.iter().any(|&s| index.students[s].class == *c));
    if foreign_class {
        return review(ReviewReason::ClassMismatch, suggestions);
    }
    if !ctx.classes.is_empty() {
        evidence.push(Evidence::ClassMatches);
    }
    let mut invoices: Vec<usize> = Vec::new();
    for &s in &students {
        match ctx.all_usable(s) {
            Some(list) => invoices.extend(list),
            None => return review(ReviewReason::Dismissed, suggestions),
        }
    }
    let total: i64 = invoices
        .iter()
        .map(|&i| index.invoices[i].open.dong())
        .sum();
    if incoming.amount.dong() == total {
        if students.len() > 1 {
            evidence.insert(0, Evidence::SiblingsNamed);
            evidence.push(Evidence::AmountEqualsSiblingsTotal);
        } else if invoices.len() > 1 {
            evidence.push(Evidence::AmountEqualsStudentTotal);
        } else {
            evidence.push(Evidence::AmountEqualsBalance);
        }
        return auto(ctx.fill(&invoices), evidence);
    }
    if let [s] = students.as_slice() {
        let exact: Vec<usize> = index
            .open_invoices(*s)
            .filter(|&i| index.invoices[i].open == incoming.amount)
            .collect();
        if exact.len() == 1 {
            evidence.push(Evidence::AmountEqualsBalance);
            return auto(ctx.fill(&exact), evidence);
        }
    }
    review(ReviewReason::AmountMismatch, suggestions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn qd() -> SchoolPrefix {
        SchoolPrefix::parse("QD").unwrap()
    }

    fn code(invoice_id: i64) -> PaymentCode {
        PaymentCode::generate(&qd(), invoice_id as u64).unwrap()
    }

    fn vnd(d: i64) -> Vnd {
        Vnd::new(d).unwrap()
    }

    /// (invoice, student, student code, name, class, family, period, open)
    type Row = (
        i64,
        i64,
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
        i64,
    );
    const SCHOOL: &[Row] = &[
        (
            101,
            1,
            "HS0001",
            "Nguyễn Văn An",
            "6A1",
            Some("F1"),
            "2025-09",
            935_000,
        ),
        (
            102,
            1,
            "HS0001",
            "Nguyễn Văn An",
            "6A1",
            Some("F1"),
            "2025-10",
            300_000,
        ),
        (
            201,
            2,
            "HS0002",
            "Nguyễn Văn An",
            "8A3",
            None,
            "2025-09",
            935_000,
        ),
        (
            301,
            3,
            "HS0003",
            "Trần Thị Bích Ngọc",
            "7A2",
            None,
            "2025-09",
            1_566_800,
        ),
        (
            401,
            4,
            "HS0004",
            "Nguyễn Minh Khôi",
            "8A3",
            Some("F1"),
            "2025-09",
            935_000,
        ),
        (
            501,
            5,
            "HS0005",
            "Lê Hoàng Phúc",
            "9A1",
            None,
            "2025-09",
            1_250_000,
        ),
        (
            601,
            6,
            "HS0006",
            "Phạm Gia Huy",
            "6A2",
            None,
            "2025-09",
            935_000,
        ),
        (
            701,
            7,
            "HS0007",
            "Nguyễn Văn Bình",
            "9A2",
            None,
            "2025-09",
            450_000,
        ),
        (
            801,
            8,
            "HS0008",
            "Đặng Văn Nam",
            "7A1",
            None,
            "2025-09",
            500_000,
        ),
        (
            802,
            8,
            "HS0008",
            "Đặng Văn Nam",
            "7A1",
            None,
            "2025-10",
            500_000,
        ),
    ];

    fn invoices() -> Vec<OpenInvoice> {
        SCHOOL
            .iter()
            .map(
                |&(id, sid, sc, name, class, fam, period, open)| OpenInvoice {
                    invoice_id: id,
                    code: code(id),
                    student_id: sid,
                    student_code: sc.to_string(),
                    student_name: name.to_string(),
                    class_name: class.to_string(),
                    family_key: fam.map(str::to_string),
                    open: vnd(open),
                    period: period.to_string(),
                },
            )
            .collect()
    }

    fn index() -> Index {
        Index::build(&qd(), invoices())
    }

    fn run(index: &Index, amount: i64, memo: &str) -> Decision {
        run_with(index, amount, memo, None, None, &|_| false)
    }

    fn run_with(
        index: &Index,
        amount: i64,
        memo: &str,
        order_ref: Option<&str>,
        payer_name: Option<&str>,
        dismissed: &dyn Fn(i64) -> bool,
    ) -> Decision {
        let incoming = Incoming {
            amount: vnd(amount),
            memo,
            order_ref,
            payer_name,
        };
        decide(index, &incoming, dismissed)
    }

    fn allocs(pairs: &[(i64, i64)]) -> Vec<(i64, Vnd)> {
        pairs.iter().map(|&(i, a)| (i, vnd(a))).collect()
    }

    #[track_caller]
    fn assert_auto(d: &Decision, want: &[(i64, i64)]) {
        match d {
            Decision::Auto { allocations, .. } => assert_eq!(allocations, &allocs(want)),
            other => panic!("expected auto {want:?}, got {other:?}"),
        }
    }

    #[track_caller]
    fn assert_review(d: &Decision, want: ReviewReason) -> Vec<Suggestion> {
        match d {
            Decision::Review {
                reason,
                suggestions,
            } => {
                assert_eq!(*reason, want, "{suggestions:?}");
                assert!(suggestions.len() <= MAX_SUGGESTIONS);
                suggestions.clone()
            }
            other => panic!("expected review {want:?}, got {other:?}"),
        }
    }

    #[test]
    fn code_names_one_invoice() {
        let ix = index();
        let c = code(301);
        assert_auto(
            &run(
                &ix,
                1_566_800,
                &format!("MBVCB.123.456.{c}.CT tu 1234567 X"),
            ),
            &[(301, 1_566_800)],
        );
        // Partial: the amount. Over: the balance, the rest stays as credit.
        assert_auto(&run(&ix, 1_000_000, c.as_str()), &[(301, 1_000_000)]);
        assert_auto(&run(&ix, 2_000_000, c.as_str()), &[(301, 1_566_800)]);
        let s = c.as_str().to_lowercase();
        assert_auto(
            &run(
                &ix,
                1_566_800,
                &format!("hp {}-{} {}", &s[..2], &s[2..5], &s[5..]),
            ),
            &[(301, 1_566_800)],
        );
        let d = run_with(
            &ix,
            1_566_800,
            "thanh toan hoc phi",
            Some(c.as_str()),
            None,
            &|_| false,
        );
        assert_auto(&d, &[(301, 1_566_800)]);
        let Decision::Auto { evidence, .. } = d else {
            unreachable!()
        };
        assert_eq!(
            evidence,
            vec![
                Evidence::CodeValid,
                Evidence::OrderRef,
                Evidence::AmountEqualsBalance
            ]
        );
        assert_eq!(evidence[0].words(), "code valid");
        // The code's own student named alongside: fine, even with a namesake in the school.
        assert_auto(
            &run(&ix, 935_000, &format!("{} NGUYEN VAN AN", code(201))),
            &[(201, 935_000)],
        );
    }

    #[test]
    fn codes_of_one_family() {
        let ix = index();
        let memo = format!("{} va {}", code(401), code(101));
        assert_auto(
            &run(&ix, 1_870_000, &memo),
            &[(401, 935_000), (101, 935_000)],
        );
        assert_auto(
            &run(&ix, 2_000_000, &memo),
            &[(401, 935_000), (101, 935_000)],
        );
        let s = assert_review(&run(&ix, 1_000_000, &memo), ReviewReason::Ambiguous);
        assert!(!s.is_empty());
        let other = format!("{} {}", code(101), code(301));
        assert_review(&run(&ix, 2_501_800, &other), ReviewReason::Ambiguous);
    }

    #[test]
    fn code_against_name() {
        let ix = index();
        let memo = format!("{} TRAN THI BICH NGOC", code(101));
        assert_review(&run(&ix, 935_000, &memo), ReviewReason::CodeNameConflict);
        let mut ix = index();
        ix.settle(601, vnd(935_000));
        assert_eq!(ix.open(601), Some(Vnd::ZERO));
        let d = run(&ix, 935_000, &format!("{} PHAM GIA HUY", code(601)));
        assert_review(&d, ReviewReason::CodeNotOpen);
        // A valid code mixed with a closed one.
        let d = run(&ix, 935_000, &format!("{} {}", code(601), code(201)));
        assert_review(&d, ReviewReason::Ambiguous);
    }

    #[test]
    fn mistyped_code_never_auto() {
        let ix = index();
        let c = code(301);
        let mut b = c.as_str().as_bytes().to_vec();
        b[4] = if b[4] == b'9' { b'8' } else { b'9' };
        let typo = String::from_utf8(b).unwrap();
        let d = run(&ix, 1_566_800, &format!("{typo} TRAN THI BICH NGOC 7A2"));
        let s = assert_review(&d, ReviewReason::WrongCheckCharacter);
        assert_eq!(s[0].allocations, allocs(&[(301, 1_566_800)]));
        assert_eq!(s[0].strength, Strength::Strong);
        assert!(s[0].evidence.contains(&Evidence::CodeWrongCheck));
        // Look-alike O for a symbol.
        let mut b = c.as_str().as_bytes().to_vec();
        b[3] = b'O';
        let d = run(&ix, 1_566_800, std::str::from_utf8(&b).unwrap());
        let s = assert_review(&d, ReviewReason::WrongCheckCharacter);
        assert!(s.iter().all(|s| s.allocations.len() == 1));
    }

    #[test]
    fn name_or_student_code() {
        let ix = index();
        assert_auto(
            &run(&ix, 1_566_800, "HOC PHI TRAN THI BICH NGOC 7A2"),
            &[(301, 1_566_800)],
        );
        assert_auto(
            &run(&ix, 1_566_800, "Học phí Trần Thị Bích Ngọc"),
            &[(301, 1_566_800)],
        );
        assert_auto(
            &run(&ix, 1_566_800, "NGOC TRAN THI BICH"),
            &[(301, 1_566_800)],
        );
        let s = assert_review(
            &run(&ix, 1_000_000, "TRAN THI BICH NGOC"),
            ReviewReason::AmountMismatch,
        );
        assert_eq!(s[0].allocations, allocs(&[(301, 1_000_000)]));
        assert!(s[0].evidence.contains(&Evidence::AmountBelowBalance));
        let s = assert_review(
            &run(&ix, 935_000, "PHAM GIA HUY 6A1"),
            ReviewReason::ClassMismatch,
        );
        assert!(s[0].evidence.contains(&Evidence::ClassDiffers));
        assert_eq!(
            Evidence::ClassDiffers.words(),
            "name matches, class differs"
        );
        // One typo, run together, student code.
        assert_auto(&run(&ix, 935_000, "NGUYN MINH KHOI"), &[(401, 935_000)]);
        assert_auto(&run(&ix, 1_250_000, "LEHOANGPHUC 9A1"), &[(501, 1_250_000)]);
        assert_auto(&run(&ix, 1_250_000, "LEHOANGPHCU"), &[(501, 1_250_000)]);
        assert_auto(&run(&ix, 1_250_000, "hs0005 hoc phi"), &[(501, 1_250_000)]);
        // Namesakes: only the class tells them apart.
        assert_review(&run(&ix, 935_000, "NGUYEN VAN AN"), ReviewReason::Ambiguous);
        assert_auto(
            &run(&ix, 935_000, "NGUYEN VAN AN LOP 8A3"),
            &[(201, 935_000)],
        );
        // All open invoices of the student, or exactly one of them.
        assert_auto(
            &run(&ix, 1_235_000, "NGUYEN VAN AN 6A1"),
            &[(101, 935_000), (102, 300_000)],
        );
        assert_auto(&run(&ix, 300_000, "NGUYEN VAN AN 6A1"), &[(102, 300_000)]);
        // Two invoices of the same balance: which month is not clear.
        assert_review(
            &run(&ix, 500_000, "DANG VAN NAM"),
            ReviewReason::AmountMismatch,
        );
        assert_auto(
            &run(&ix, 1_000_000, "DANG VAN NAM"),
            &[(801, 500_000), (802, 500_000)],
        );
        // A "typo" that spells another student's syllable is another name, not a typo.
        assert!(!run(&ix, 500_000, "DANG VAN BINH").is_auto());
        // Cut by the bank? "NGUYEN VAN AN 6A1" may be the start of "... 6A10".
        let long = "MBVCB.3278126542.012345.HOC PHI THANG 9 NAM HOC 2025 CHO CON NGUYEN VAN AN 6A1";
        assert_review(&run(&ix, 1_235_000, long), ReviewReason::MaybeTruncated);
        assert_auto(
            &run(&ix, 1_235_000, &format!("{long} CK")),
            &[(101, 935_000), (102, 300_000)],
        );
        // Two students of different families.
        assert_review(
            &run(&ix, 2_185_000, "LE HOANG PHUC PHAM GIA HUY"),
            ReviewReason::Ambiguous,
        );
    }

    #[test]
    fn siblings_by_name() {
        let ix = index();
        let memo = "HP NGUYEN VAN AN 6A1 VA NGUYEN MINH KHOI 8A3";
        assert_auto(
            &run(&ix, 2_170_000, memo),
            &[(101, 935_000), (102, 300_000), (401, 935_000)],
        );
        let s = assert_review(&run(&ix, 1_870_000, memo), ReviewReason::AmountMismatch);
        assert!(!s.is_empty());
        // One sibling named, the amount of both: suggested, not automatic.
        let s = assert_review(
            &run(&ix, 2_170_000, "NGUYEN MINH KHOI"),
            ReviewReason::AmountMismatch,
        );
        assert!(s
            .iter()
            .any(|s| s.evidence.contains(&Evidence::AmountEqualsSiblingsTotal)));
    }

    #[test]
    fn sender_is_not_the_student() {
        let ix = index();
        let s = assert_review(
            &run(&ix, 450_000, "NGUYEN VAN BINH chuyen tien"),
            ReviewReason::OnlyWeakEvidence,
        );
        assert!(s[0].evidence.contains(&Evidence::PayerName));
        let d = run_with(
            &ix,
            450_000,
            "NGUYEN VAN BINH HOC PHI",
            None,
            Some("Nguyen Van Binh"),
            &|_| false,
        );
        assert!(!d.is_auto());
        // In any order, anywhere in the memo.
        let d = run_with(
            &ix,
            450_000,
            "HOC PHI BINH NGUYEN VAN",
            None,
            Some("Nguyen Van Binh"),
            &|_| false,
        );
        assert!(!d.is_auto());
        let d = run(
            &ix,
            1_250_000,
            "NGUYEN VAN BINH chuyen tien hoc phi cho con LE HOANG PHUC",
        );
        assert_auto(&d, &[(501, 1_250_000)]);
    }

    #[test]
    fn weak_evidence_never_auto() {
        let ix = index();
        let s = assert_review(
            &run(&ix, 935_000, "HOC PHI BE HUY 6A2"),
            ReviewReason::OnlyWeakEvidence,
        );
        assert_eq!(s[0].allocations, allocs(&[(601, 935_000)]));
        assert!(s[0].evidence.contains(&Evidence::GivenNameOnly));
        let s = assert_review(
            &run(&ix, 935_000, "MINH KHOI 8A3"),
            ReviewReason::OnlyWeakEvidence,
        );
        assert_eq!(s[0].allocations, allocs(&[(401, 935_000)]));
        assert_eq!(s[0].evidence[0], Evidence::PartialName);
        assert_review(&run(&ix, 935_000, "LUONG THANG 9"), ReviewReason::Unmatched);
        assert_review(
            &run(&ix, 0, "TRAN THI BICH NGOC"),
            ReviewReason::NotAPayment,
        );
    }

    #[test]
    fn dismissed_pairs() {
        let ix = index();
        let not_301 = |id: i64| id == 301;
        let d = run_with(&ix, 1_566_800, code(301).as_str(), None, None, &not_301);
        let s = assert_review(&d, ReviewReason::Dismissed);
        assert!(s
            .iter()
            .all(|s| s.allocations.iter().all(|(i, _)| *i != 301)));
        let d = run_with(&ix, 1_566_800, "TRAN THI BICH NGOC", None, None, &not_301);
        let s = assert_review(&d, ReviewReason::Dismissed);
        assert!(s.is_empty());
        let not_102 = |id: i64| id == 102;
        let d = run_with(&ix, 1_235_000, "NGUYEN VAN AN 6A1", None, None, &not_102);
        let s = assert_review(&d, ReviewReason::Dismissed);
        assert!(s
            .iter()
            .all(|s| s.allocations.iter().all(|(i, _)| *i != 102)));
    }

    #[test]
    fn deterministic_whatever_the_input_order() {
        let mut reversed = invoices();
        reversed.reverse();
        let (a, b) = (index(), Index::build(&qd(), reversed));
        for memo in [
            "NGUYEN VAN AN",
            "HUY",
            "HOC PHI BE AN",
            "NGUYEN",
            "DANG VAN NAM",
        ] {
            for amount in [300_000, 935_000, 1_000_000] {
                assert_eq!(run(&a, amount, memo), run(&b, amount, memo), "{memo}");
            }
        }
    }

    #[test]
    fn suggestions_are_ranked() {
        let ix = index();
        let d = run(&ix, 935_000, "NGUYEN VAN AN");
        let s = assert_review(&d, ReviewReason::Ambiguous);
        assert!(s.len() >= 2);
        assert!(s.windows(2).all(|w| w[0].score() >= w[1].score()));
        assert!(s[0].describe().contains("name matches"));
    }

    #[test]
    fn long_memos_are_cut() {
        let ix = index();
        let c = code(301);
        // Exactly at the limit: read whole, decided as ever.
        let at_limit = format!("{c} {}", "X".repeat(MAX_MEMO_CHARS - c.as_str().len() - 1));
        assert_eq!(at_limit.chars().count(), MAX_MEMO_CHARS);
        assert_auto(&run(&ix, 1_566_800, &at_limit), &[(301, 1_566_800)]);
        // One character more: what was read is suggested, nothing is allocated.
        let over = format!("{at_limit}X");
        let s = assert_review(&run(&ix, 1_566_800, &over), ReviewReason::MemoCut);
        assert_eq!(s[0].allocations, allocs(&[(301, 1_566_800)]));
        assert_eq!(s[0].strength, Strength::Strong);
        assert!(s[0].evidence.contains(&Evidence::CodeValid));
        // A name as well, and a cut among multi-byte characters.
        let named = format!("TRAN THI BICH NGOC {}", "ễ".repeat(2 * MAX_MEMO_CHARS));
        let s = assert_review(&run(&ix, 1_566_800, &named), ReviewReason::MemoCut);
        assert!(s[0].evidence.contains(&Evidence::NameExact));
        // An order reference is read up to the same limit.
        let long_ref = format!("{c}{}", "9".repeat(MAX_MEMO_CHARS));
        let d = run_with(&ix, 1_566_800, "", Some(&long_ref), None, &|_| false);
        assert_review(&d, ReviewReason::MemoCut);
        // Huge memos are reviewed, not a panic.
        for memo in huge_memos(100_000) {
            assert_review(&run(&ix, 935_000, &memo), ReviewReason::MemoCut);
        }
        assert_eq!(
            MAX_MEMO_CHARS, 1_000,
            "ReviewReason::MemoCut's words name the limit"
        );
        assert!(ReviewReason::MemoCut.words().contains("1,000"));
    }

    /// Memos of `len` characters shaped to make reading them costly: one word (a name run
    /// together), many words (names, typos, classes, student codes), digits, code-like text.
    fn huge_memos(len: usize) -> Vec<String> {
        let typo = {
            let mut b = code(401).as_str().as_bytes().to_vec();
            b[4] = if b[4] == b'9' { b'8' } else { b'9' };
            String::from_utf8(b).unwrap()
        };
        let pieces = [
            "NGUYENVANAN".to_string(),
            "NGUYEN VAN AN NGUYN MINH KHOI LEHOANGPHCU 6A1 HS0001 HUY ".to_string(),
            // Every word a typo candidate beside known syllables: the most keys per word.
            "NGUYN VAN AN KHOII ".to_string(),
            "0123456789".to_string(),
            format!("{}{}", code(301), code(101)),
            format!("{typo} QD "),
        ];
        pieces
            .iter()
            .map(|p| p.chars().cycle().take(len).collect())
            .collect()
    }

    fn probes_for(ix: &Index, memo: &str) -> u64 {
        let before = ix.probes();
        let _ = run(ix, 935_000, memo);
        ix.probes() - before
    }

    /// What reading a memo costs does not grow with its length past the cut, nor with the
    /// length of a word that cannot be a syllable or code.
    #[test]
    fn huge_memos_cost_bounded_probes() {
        let ix = index();
        for (small, big) in huge_memos(10_000).iter().zip(huge_memos(100_000)) {
            let (a, b) = (probes_for(&ix, small), probes_for(&ix, &big));
            assert_eq!(a, b, "{}", &small[..20]);
            assert!(b <= PROBE_BOUND, "{b} probes for {}", &small[..20]);
        }
        // Within the limit: one word longer than any syllable or code costs the same whatever
        // its length.
        for piece in ["NGUYENVANAN", "0123456789", "QD3CFPSA"] {
            let word = |len: usize| -> String { piece.chars().cycle().take(len).collect() };
            let a = probes_for(&ix, &word(50));
            let b = probes_for(&ix, &word(MAX_MEMO_CHARS));
            assert!(b <= a, "{piece}: {a} then {b}");
        }
    }

    /// What any memo may cost against the test school, from the limits in the module docs: at
    /// most `MAX_MEMO_CHARS / 2` words (a letter and a separator each), each costing a
    /// vocabulary look-up, `MAX_TYPO_LEN` typo keys, 5 name spans of at most
    /// `1 + 2 × MAX_TYPO_LEN` keys, `MAX_NAME_WORDS` run-together spans of at most `2 + 2 × 16`
    /// keys (the school's longest name run together has 15 letters, and one for a typo) and a
    /// few typo checks, two student-code look-ups and three more (class, middle and given name,
    /// given name); and at most 11 code look-ups per two characters (a code window and its
    /// corrections). About 187,000; the costliest memos found cost about 20,000. It does not
    /// depend on the memo's length.
    const PROBE_BOUND: u64 = {
        let words = (MAX_MEMO_CHARS / 2) as u64;
        let spans = 5 * (1 + 2 * names::MAX_TYPO_LEN as u64);
        let squeezed = MAX_NAME_WORDS as u64 * (2 + 2 * 16 + 10);
        let typo_keys = names::MAX_TYPO_LEN as u64;
        words * (1 + typo_keys + spans + squeezed + 2 + 3) + words * 11
    };

    proptest! {
        #[test]
        fn decide_never_panics(memo in "\\PC{0,160}", amount in -1_000i64..3_000_000, pick in 0usize..10) {
            let ix = index();
            let memo = if pick < 3 { format!("{memo} {}", code(SCHOOL[pick].0)) } else { memo };
            let d = run(&ix, amount, &memo);
            if let Decision::Auto { allocations, .. } = d {
                let total: i64 = allocations.iter().map(|(_, a)| a.dong()).sum();
                prop_assert!(total <= amount);
                for (id, a) in allocations {
                    prop_assert!(a.dong() > 0 && Some(a) <= ix.open(id));
                }
            }
        }

        /// Memos of any length, made of the pieces that cost most, never cost more than the
        /// bound, and one longer than the limit is never allocated.
        #[test]
        fn any_memo_costs_bounded_probes(
            pieces in proptest::collection::vec(0usize..12, 1..40),
            repeat in 1usize..200,
        ) {
            const PIECES: [&str; 12] = [
                "NGUYEN", "NGUYN", "VAN", "AN", "KHOII", "LEHOANGPHCU", "6A1", "HS0001",
                "QD5R9NFQ", "0123456789", "CHUYEN TIEN", "TRANTHIBICHNGOC",
            ];
            let unit: Vec<&str> = pieces.iter().map(|&i| PIECES[i]).collect();
            let memo = vec![unit.join(" "); repeat].join(" ");
            let ix = index();
            let before = ix.probes();
            let d = run(&ix, 935_000, &memo);
            prop_assert!(ix.probes() - before <= PROBE_BOUND, "{} probes", ix.probes() - before);
            if memo.chars().count() > MAX_MEMO_CHARS {
                prop_assert!(!d.is_auto());
            }
        }

        #[test]
        fn mistyped_codes_are_never_auto(pick in 0usize..10, pos in 2usize..8, shift in 1usize..31) {
            let ix = index();
            let (id, _, _, _, _, _, _, open) = SCHOOL[pick];
            let mut b = code(id).as_str().as_bytes().to_vec();
            let alphabet = crate::domain::code::ALPHABET;
            let v = alphabet.iter().position(|&c| c == b[pos]).unwrap();
            b[pos] = alphabet[(v + shift) % 31];
            let memo = String::from_utf8(b).unwrap();
            prop_assert!(!run(&ix, open, &memo).is_auto(), "{}", memo);
        }
    }
}
