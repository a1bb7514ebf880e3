//! Which open invoices a transfer pays: automatically when the memo leaves no doubt, otherwise a
//! review with ranked suggestions and the evidence for each.
//!
//! # Rules
//!
//! The bar is zero wrong automatic allocations: whenever a rule below does not clearly apply,
//! the decision is a review. Every rule is tested under the same name in `tests`; an automatic
//! decision carries the [`Rule`] that made it.
//!
//! The index holds every invoice of the school whatever its state (open, paid with the payment
//! that paid it, voided), so that a memo naming a month already paid is recognised as such.
//!
//! 1. `code_names_one_invoice`: a valid payment code (in the memo or the order reference) that
//!    names exactly one open invoice is allocated automatically: the amount when below the
//!    balance (a partial payment), the balance when above (the rest stays on the payment as
//!    credit; allocations never exceed the amount nor a balance). The code decides whatever
//!    month the memo also names: it was printed on one invoice, and parents write the month
//!    they pay in.
//! 2. `codes_of_one_family`: several valid codes of invoices of one student or of siblings
//!    (one `family_key`) are allocated in memo order, each up to its balance, when the amount
//!    covers them all; otherwise review ([`ReviewReason::Ambiguous`]).
//! 3. `code_against_name`: a code whose student is not the student the memo names is a review
//!    ([`ReviewReason::CodeNameConflict`]); so are valid codes mixed with codes of closed,
//!    dismissed or foreign invoices. A valid code of a paid invoice is a review naming the
//!    payment that paid it ([`ReviewReason::CodeNotOpen`]).
//! 4. `mistyped_code_one_correction`: a code with a wrong check character whose corrections
//!    (one symbol, look-alike, adjacent swap, dropped or doubled symbol away; see [`codes`])
//!    include exactly one issued code, of an
//!    open invoice, is allocated when the amount equals that invoice's balance or the memo
//!    names its student (and no other); otherwise its corrections are suggested.
//! 5. `name_or_student_code`: without a code, exactly one student named by student code or full
//!    name (exact, or one typo in one syllable, in any order, spaced or run together) and no
//!    other. Namesakes are told apart only by the class written in the memo; a class that
//!    belongs to none of the named students is a review ([`ReviewReason::ClassMismatch`]).
//!    Then:
//!    - `period_decides` (rule [`Rule::PeriodStated`]): months written in the memo (see
//!      [`period`]) decide between the student's invoices. A month with no invoice of the
//!      student is a review ([`ReviewReason::PeriodNotInvoiced`]); a month already paid is a
//!      likely duplicate naming the earlier payment ([`ReviewReason::PeriodPaid`]), never
//!      moved to another month. A month an earlier payment still in review claims (its top suggestion;
//!      `period_in_review`, see [`Index::set_claims`]) is a review naming that payment
//!      ([`ReviewReason::PeriodInReview`]): once the accountant answers, the month's balance
//!      may no longer be what it is now. The amount is allocated to the months written, oldest first,
//!      whatever it is (a partial or fee-short transfer leaves the rest open, an overpayment
//!      leaves credit), unless it is exactly what another open invoice (or all of them) owes:
//!      then the month and the amount disagree ([`ReviewReason::PeriodAmountConflict`]).
//!    - `amount_decides` (rule [`Rule::AmountDecides`]): with no month written, the amount
//!      decides when it equals the student's total open balance or the balance of exactly one
//!      open invoice; several of that balance are a review ([`ReviewReason::EqualBalances`]).
//! 6. `siblings_by_name`: two or more students of one family named in the memo are allocated
//!    automatically when the amount equals what the months written owe for all of them (or,
//!    with no month written, the sum of their open balances).
//! 7. `sender_is_not_the_student`: a name that is the sender's own (equal to `payer_name`, or
//!    the bank's default memo `<NAME> CHUYEN TIEN` at the start) never names the student,
//!    unless a pupil marker ("HS", "con", "be", "hoc sinh") stands before it or its class after
//!    it: then it is the pupil's.
//! 8. `truncation_where_it_happened`: a memo is suspected cut ([`ReviewReason::MaybeTruncated`])
//!    only with a sign of it: it ends inside a word (a last word that is no syllable of any name
//!    but the beginning of one, "TUA" of "TUAN"), or a name or class ends a memo whose length
//!    reaches a bank's limit ([`BANK_MEMO_LIMITS`]). A long memo that ends in a whole name is
//!    not cut.
//! 9. `given_name_and_class`: a given name (or middle and given name) that only one student of
//!    the class written carries, with no full name in the memo, is allocated when the amount
//!    equals what the months written owe, or (no month written) the student's total or the
//!    balance of exactly one open invoice. Otherwise a given name alone, a class or an amount
//!    are evidence for suggestions only (`weak_evidence_never_auto`).
//! 10. `dismissed_pairs`: an invoice the accountant dismissed for this payment is never
//!     suggested nor allocated, and a payment whose best reading involves one is reviewed.
//! 11. `long_memos_are_cut`: only the first [`MAX_MEMO_CHARS`] characters of a memo (and of an
//!     order reference) are read; a payment whose memo was longer is reviewed
//!     ([`ReviewReason::MemoCut`]), with what the part read suggests, since what was left
//!     unread may name another student or code.
//! 12. `suggestions_are_ranked`: a review's suggestions come in the order an accountant would
//!     pick: by the evidence (the months written first, then an invoice whose balance is the
//!     amount, then the oldest open), then by how close the amount is to what the suggestion's
//!     invoices owe (`suggestions_are_ranked_by_amount_fit`: of namesakes, the one the amount
//!     fits), then in the order found; each says in words which period it is and why. Names
//!     several pupils carry, written together, are also read as the siblings among them
//!     (`suggestions_read_namesakes_as_siblings`), and a memo cut inside the given name suggests
//!     the pupils whose name begins so (`suggestions_read_a_name_cut_short`). Neither is ever
//!     allocated automatically.
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
use crate::recon::period::{self, Stated};
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
/// Where banks and apps cut a memo, in characters of the memo as delivered (bank wrapping
/// included): a memo whose length reaches one of these (within [`LIMIT_SLACK`]) and ends in a
/// name or class may have been cut there (rule 5). These are the limits we model; a bank that
/// cuts elsewhere is caught only by a memo ending inside a word.
///
/// VietQR's purpose field (25 characters) is not among them: what a QR carries is the school's
/// own text with the payment code, which rule 1 reads whole or not at all, while memos typed by
/// parents of 23 to 25 characters ending in a name are common and whole.
pub const BANK_MEMO_LIMITS: &[(&str, usize)] = &[
    // SMS banking and older apps.
    ("SMS banking, older apps", 70),
    // Content field of most mobile apps (Techcombank, MB, ACB, VietinBank).
    ("mobile apps", 140),
    // NAPAS 247 interbank content, and Vietcombank's MBVCB memos wrapped to it.
    ("NAPAS 247, Vietcombank", 210),
];
/// A cut memo may lose a trailing space or separator: this many characters below a limit still
/// reach it.
pub const LIMIT_SLACK: usize = 2;
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

/// An invoice of the school as the index needs it, whatever its state: open, paid (with what
/// paid it, so that a review can name the earlier payment) or voided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    pub invoice_id: i64,
    pub code: PaymentCode,
    pub student_id: i64,
    pub student_code: String,
    pub student_name: String,
    pub class_name: String,
    pub family_key: Option<String>,
    /// Still owed; nothing owed is a paid invoice.
    pub open: Vnd,
    /// `2025-09`: orders a student's invoices, oldest first, and is what a memo's month names.
    pub period: String,
    /// Cancelled: nothing is owed on it, and a memo naming its month names no invoice.
    pub voided: bool,
    /// The payment that last paid something to it, when known.
    pub paid_by: Option<i64>,
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
    /// The month written names this invoice.
    PeriodStated,
    /// The amount is what the months written owe together.
    AmountEqualsPeriodsTotal,
    /// A mistyped code whose only correction among issued codes is this invoice's.
    CodeCorrected,
    /// The given name is the only one of its kind in the class written.
    GivenNameInClass,
    /// No month or amount tells: the oldest open invoice first.
    OldestOpen,
    /// The memo ends inside the name: what is left is the beginning of this student's name.
    NameCut,
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
            Evidence::PeriodStated => "the month written",
            Evidence::AmountEqualsPeriodsTotal => "amount equals what the months written owe",
            Evidence::CodeCorrected => "code mistyped, its one correction is this invoice",
            Evidence::GivenNameInClass => "given name unique in the class written",
            Evidence::OldestOpen => "oldest open invoice",
            Evidence::NameCut => "the memo is cut inside the name: its beginning matches",
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
            Evidence::NameCut => 40,
            Evidence::PeriodStated => 40,
            Evidence::AmountEqualsBalance
            | Evidence::AmountEqualsStudentTotal
            | Evidence::AmountEqualsSiblingsTotal
            | Evidence::AmountEqualsPeriodsTotal => 30,
            Evidence::CodeCorrected => 20,
            Evidence::GivenNameInClass => 15,
            Evidence::OldestOpen => 1,
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
    /// Which period was read and why this one: "2025-11, read from \"T11\"".
    pub period: Option<String>,
    /// How far the amount is from what the suggested invoices owe, in đồng (`i64::MAX` when
    /// not known): among suggestions of equal evidence, the closer fit ranks first.
    #[serde(skip)]
    gap: i64,
}

impl Suggestion {
    /// "code valid, amount equals the balance; period 2025-11, read from \"T11\"".
    pub fn describe(&self) -> String {
        let words = self
            .evidence
            .iter()
            .map(Evidence::words)
            .collect::<Vec<_>>()
            .join(", ");
        match &self.period {
            Some(p) => format!("{words}; period {p}"),
            None => words,
        }
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
    /// The month written has no invoice of the student (none issued, or it was voided).
    PeriodNotInvoiced,
    /// The month written is already paid: a likely duplicate, or money to refund.
    PeriodPaid,
    /// The month written is what an earlier payment still in the review queue claims (its top
    /// suggestion): which of them pays it is the accountant's call.
    PeriodInReview,
    /// The month written and the amount point at different invoices of the student.
    PeriodAmountConflict,
    /// No month written, and several open invoices of the student have this balance.
    EqualBalances,
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
            ReviewReason::PeriodNotInvoiced => "the month written has no invoice of the student",
            ReviewReason::PeriodPaid => {
                "the month written is already paid: a likely duplicate or a refund"
            }
            ReviewReason::PeriodInReview => {
                "the month written is claimed by an earlier payment still in review"
            }
            ReviewReason::PeriodAmountConflict => {
                "the month written and the amount point at different invoices"
            }
            ReviewReason::EqualBalances => {
                "no month written and several open invoices have this balance"
            }
            ReviewReason::MemoCut => {
                "the memo is longer than 1,000 characters: only its first 1,000 were read"
            }
        }
    }
}

/// The rule (see the module docs) that allocated a payment automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    CodeNamesOneInvoice,
    CodesOfOneFamily,
    MistypedCodeOneCorrection,
    PeriodStated,
    AmountDecides,
    SiblingsByName,
    GivenNameAndClass,
}

impl Rule {
    pub fn as_str(&self) -> &'static str {
        match self {
            Rule::CodeNamesOneInvoice => "code_names_one_invoice",
            Rule::CodesOfOneFamily => "codes_of_one_family",
            Rule::MistypedCodeOneCorrection => "mistyped_code_one_correction",
            Rule::PeriodStated => "period_stated",
            Rule::AmountDecides => "amount_decides",
            Rule::SiblingsByName => "siblings_by_name",
            Rule::GivenNameAndClass => "given_name_and_class",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Auto {
        rule: Rule,
        allocations: Vec<(i64, Vnd)>,
        evidence: Vec<Evidence>,
        /// The period read, in words, when one decided.
        period: Option<String>,
    },
    Review {
        reason: ReviewReason,
        /// Ranked, best first, at most [`MAX_SUGGESTIONS`].
        suggestions: Vec<Suggestion>,
        /// The payment that already paid what the memo names ([`ReviewReason::PeriodPaid`],
        /// [`ReviewReason::CodeNotOpen`]), or that claims it in review
        /// ([`ReviewReason::PeriodInReview`]), when known.
        earlier_payment: Option<i64>,
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
    period: String,
    month: Option<period::Month>,
    voided: bool,
    paid_by: Option<i64>,
}

impl Inv {
    fn is_open(&self) -> bool {
        self.open > Vnd::ZERO && !self.voided
    }

    fn is_paid(&self) -> bool {
        self.open == Vnd::ZERO && !self.voided
    }
}

#[derive(Debug, Clone)]
struct Student {
    name: Vec<String>,
    class: String,
    family: Option<String>,
    /// Every invoice, whatever its state: oldest period first, then invoice id.
    invoices: Vec<usize>,
}

/// A school's invoices (open, paid and voided), arranged for lookups by code, student code, name, class and
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
    /// Order-free key of all syllables but the given name, for names of three or more: a memo
    /// cut inside the given name still names its beginning.
    by_head: KeyMap,
    by_given: HashMap<String, Vec<usize>>,
    by_class: HashMap<String, Vec<usize>>,
    by_family: HashMap<String, Vec<usize>>,
    /// Every syllable of every name: a memo word outside it may be a typo, one inside is not.
    vocabulary: HashSet<String>,
    /// Every strict beginning of those syllables: a memo ending in one may have been cut inside
    /// a name.
    beginnings: HashSet<String>,
    /// Invoices that an earlier payment still in review claims by its month written (rule
    /// `period_in_review`), with that payment (`None`: one earlier in the batch, not yet
    /// recorded). Set by whoever decides, from what the store loaded; not part of the book.
    claims: HashMap<i64, Option<i64>>,
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
    /// Builds a school's index from all its invoices, whatever their state; a student's name,
    /// class and family are taken from their first invoice.
    pub fn build(prefix: &SchoolPrefix, invoices: Vec<OpenInvoice>) -> Index {
        let mut grouped: BTreeMap<i64, Vec<OpenInvoice>> = BTreeMap::new();
        for inv in invoices {
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
            by_head: KeyMap::default(),
            by_given: HashMap::new(),
            by_class: HashMap::new(),
            by_family: HashMap::new(),
            vocabulary: HashSet::new(),
            beginnings: HashSet::new(),
            claims: HashMap::new(),
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
                    open: if inv.voided { Vnd::ZERO } else { inv.open },
                    month: period::month_of(&inv.period),
                    period: inv.period,
                    voided: inv.voided,
                    paid_by: inv.paid_by,
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
            for end in 1..w.len() {
                if let Some(b) = w.get(..end) {
                    self.beginnings.insert(b.to_string());
                }
            }
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
        if k >= 3 {
            push_once(&mut self.by_head, bag_key(keys[..k - 1].iter().copied()), s);
        }
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

    /// How many invoices the index holds, whatever their state.
    pub fn len(&self) -> usize {
        self.invoices.len()
    }

    /// How many of them are open.
    pub fn open_count(&self) -> usize {
        self.invoices.iter().filter(|i| i.is_open()).count()
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
    /// batch see the new balance; an invoice owed nothing more is paid from then on.
    pub fn settle(&mut self, invoice_id: i64, amount: Vnd) -> bool {
        self.settle_by(invoice_id, amount, None)
    }

    /// [`Index::settle`], naming the payment when it is known, so that a later memo naming the
    /// same month can name it. A negative amount (a reversal) opens the invoice again.
    pub fn settle_by(&mut self, invoice_id: i64, amount: Vnd, payment: Option<i64>) -> bool {
        let Some(&i) = self.by_id.get(&invoice_id) else {
            return false;
        };
        let inv = &mut self.invoices[i];
        if inv.voided {
            return true;
        }
        inv.open = inv
            .open
            .checked_sub(amount)
            .filter(|v| *v > Vnd::ZERO)
            .unwrap_or(Vnd::ZERO);
        if payment.is_some() && amount > Vnd::ZERO {
            inv.paid_by = payment;
        }
        true
    }

    /// Replaces the invoices that earlier payments still in review claim: those of each one's
    /// top suggestion, the reading an accountant would confirm first (the month its memo
    /// names, or the pupil's oldest open month when it names none). (invoice, the payment
    /// claiming it; `None` for one not recorded yet); the first claim of an invoice is kept.
    pub fn set_claims(&mut self, claims: impl IntoIterator<Item = (i64, Option<i64>)>) {
        self.claims.clear();
        for (invoice_id, payment) in claims {
            self.claim(invoice_id, payment);
        }
    }

    /// Adds a claim (see [`Index::set_claims`]), keeping an earlier one of the same invoice.
    pub fn claim(&mut self, invoice_id: i64, payment: Option<i64>) {
        self.claims.entry(invoice_id).or_insert(payment);
    }

    /// Records that an invoice was voided since the index was built.
    pub fn void(&mut self, invoice_id: i64) -> bool {
        let Some(&i) = self.by_id.get(&invoice_id) else {
            return false;
        };
        let inv = &mut self.invoices[i];
        inv.voided = true;
        inv.open = Vnd::ZERO;
        true
    }

    fn open_invoices(&self, s: usize) -> impl Iterator<Item = usize> + '_ {
        self.students[s]
            .invoices
            .iter()
            .copied()
            .filter(|&i| self.invoices[i].is_open())
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
    /// Of those, the ones read from a given name (or middle and given name) standing alone,
    /// not inside a longer name that matches nobody ("NGUYEN QUYNH UYEN" holds the given name
    /// "QUYNH" but names someone else).
    alone: Vec<usize>,
    /// Classes named in the memo that exist in the school.
    classes: Vec<String>,
    /// The same with where each stood.
    class_spans: Vec<(String, Range<usize>)>,
    /// A name, class or student code ends the memo: if the bank cut the memo there, it may be
    /// the beginning of another one ("NGUYEN VAN AN" of "NGUYEN VAN ANH", "6A1" of "6A10").
    at_end: bool,
    /// Rule 5: there is a sign that the bank cut the memo where it matters (see
    /// [`BANK_MEMO_LIMITS`]).
    maybe_cut: bool,
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

/// Words right before a name that say the name is the pupil's: "HS", "con", "be", "hoc sinh".
const PUPIL_MARKERS: &[&str] = &["HS", "CON", "BE", "CHAU", "EM", "SINH", "CHO"];

/// Words that may stand between a name and its class: "lop 6A1".
const CLASS_WORDS: &[&str] = &["LOP", "L"];

/// `raw` is the memo as delivered, for its length.
fn read_people(index: &Index, memo: &Memo, payer: Option<&str>, raw: &str) -> People {
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

    let last_word = folded.last().copied();
    let ends_memo = |r: &Range<usize>| {
        (n > 0 && r.end == n && last_word == Some(words[n - 1])) || r.end == n + folded.len()
    };
    people.at_end = people.mentions.iter().any(|m| ends_memo(&m.span))
        || people.class_spans.iter().any(|(_, r)| ends_memo(r));
    // Rule 5: cut only where there is a sign of it. The memo ends inside a word: its last
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
    // Or a name or class ends a memo as long as a bank's limit.
    let len = raw.chars().count();
    let at_limit = BANK_MEMO_LIMITS
        .iter()
        .any(|&(_, limit)| len <= limit && len + LIMIT_SLACK >= limit);
    // Or the memo is as long as a bank's limit and ends in the parent's words (not in the bank's
    // own references after them): the end of what the parent wrote may be lost.
    let ends_in_words = n > 0 && last_word == Some(words[n - 1]);
    people.maybe_cut = inside_word || (at_limit && ends_in_words);
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

// ---------------------------------------------------------------------------------------------
// Deciding

struct Ctx<'a> {
    index: &'a Index,
    amount: Vnd,
    dismissed: &'a dyn Fn(i64) -> bool,
    classes: Vec<String>,
    stated: Stated,
}

/// What the months written name among one student's invoices.
struct Named {
    /// The invoices of those months, oldest first, whatever their state.
    invoices: Vec<usize>,
    /// Months written that name no invoice of the student (none issued, or it was voided).
    missing: usize,
}

impl Ctx<'_> {
    fn usable(&self, i: usize) -> bool {
        let inv = &self.index.invoices[i];
        inv.is_open() && !(self.dismissed)(inv.id)
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

    fn owed(&self, invoices: &[usize]) -> i64 {
        invoices
            .iter()
            .map(|&i| self.index.invoices[i].open.dong())
            .sum()
    }

    /// The student's invoices the months written name. A bare month is the latest invoice of
    /// that month (the school year the student is in); a voided one names nothing.
    fn named(&self, s: usize) -> Named {
        let index = self.index;
        let all = &index.students[s].invoices;
        let mut invoices = Vec::new();
        let mut missing = 0;
        for m in &self.stated.months {
            let best = all
                .iter()
                .copied()
                .filter(|&i| {
                    index.invoices[i].month.is_some_and(|im| {
                        im.month == m.month && (m.year.is_none() || im.year == m.year)
                    })
                })
                .max_by_key(|&i| {
                    let inv = &index.invoices[i];
                    (!inv.voided, inv.period.as_str(), inv.id)
                });
            match best {
                Some(i) if !index.invoices[i].voided => invoices.push(i),
                _ => missing += 1,
            }
        }
        if self.stated.whole_year {
            invoices.extend(index.open_invoices(s));
        }
        invoices.sort_by(|&a, &b| {
            let (x, y) = (&index.invoices[a], &index.invoices[b]);
            (&x.period, x.id).cmp(&(&y.period, y.id))
        });
        invoices.dedup();
        Named { invoices, missing }
    }

    /// The first of `invoices` an earlier payment in review claims: `Some(that payment)`.
    fn claimed(&self, invoices: &[usize]) -> Option<Option<i64>> {
        invoices
            .iter()
            .find_map(|&i| self.index.claims.get(&self.index.invoices[i].id).copied())
    }

    fn periods(&self, invoices: &[usize]) -> String {
        invoices
            .iter()
            .map(|&i| self.index.invoices[i].period.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// "2025-11, read from \"T11\"".
    fn read_from(&self, invoices: &[usize]) -> String {
        format!(
            "{}, read from \"{}\"",
            self.periods(invoices),
            self.stated.words()
        )
    }

    /// One invoice: allocate the amount, at most its balance.
    fn invoice_suggestion(&self, i: usize, mut evidence: Vec<Evidence>) -> Suggestion {
        let inv = &self.index.invoices[i];
        evidence.push(self.amount_evidence(inv.open.dong()));
        if let Some(c) = self.class_evidence(inv.student) {
            evidence.push(c);
        }
        self.fitted(
            suggestion_with(
                vec![(inv.id, self.amount.min(inv.open))],
                evidence,
                Some(inv.period.clone()),
            ),
            inv.open.dong(),
        )
    }

    /// `s` with how far the amount is from `owed`.
    fn fitted(&self, mut s: Suggestion, owed: i64) -> Suggestion {
        s.gap = (self.amount.dong() - owed).abs();
        s
    }

    /// Rule 9: what the accountant would pick for a student, best first: the months written,
    /// then the invoices whose balance is the amount, then the oldest open; each says which
    /// period and why.
    fn student_suggestions(&self, s: usize, base: Vec<Evidence>) -> Vec<Suggestion> {
        let index = self.index;
        let open: Vec<usize> = index.open_invoices(s).filter(|&i| self.usable(i)).collect();
        let mut out = Vec::new();
        let Some(&oldest) = open.first() else {
            return out;
        };
        let class = self.class_evidence(s);
        let with = |extra: &[Evidence]| -> Vec<Evidence> {
            let mut e = base.clone();
            e.extend_from_slice(extra);
            e.extend(class);
            e
        };
        if !self.stated.is_empty() {
            let named = self.named(s);
            let targets: Vec<usize> = named
                .invoices
                .iter()
                .copied()
                .filter(|&i| self.usable(i))
                .collect();
            if !targets.is_empty() {
                let owed = self.owed(&targets);
                let amount = if self.amount.dong() == owed && targets.len() > 1 {
                    Evidence::AmountEqualsPeriodsTotal
                } else {
                    self.amount_evidence(owed)
                };
                out.push(self.fitted(
                    suggestion_with(
                        self.fill(&targets),
                        with(&[Evidence::PeriodStated, amount]),
                        Some(self.read_from(&targets)),
                    ),
                    owed,
                ));
            }
        }
        let why_not = if self.stated.is_empty() {
            "no month written".to_string()
        } else {
            format!("not the month written (\"{}\")", self.stated.words())
        };
        if open.len() > 1 && self.amount.dong() == self.owed(&open) {
            out.push(self.fitted(
                suggestion_with(
                    self.fill(&open),
                    with(&[Evidence::AmountEqualsStudentTotal]),
                    Some(format!(
                        "{}, all open: the amount is their total, {why_not}",
                        self.periods(&open)
                    )),
                ),
                0,
            ));
        }
        for &i in &open {
            let inv = &index.invoices[i];
            if inv.open == self.amount {
                out.push(self.fitted(
                    suggestion_with(
                        vec![(inv.id, inv.open)],
                        with(&[Evidence::AmountEqualsBalance]),
                        Some(format!(
                            "{}: its balance is the amount, {why_not}",
                            inv.period
                        )),
                    ),
                    0,
                ));
            }
        }
        out.push(self.fitted(
            suggestion_with(
                self.fill(&open),
                with(&[Evidence::OldestOpen]),
                Some(format!(
                    "{}: the oldest open first, {why_not}",
                    index.invoices[oldest].period
                )),
            ),
            self.owed(&open),
        ));
        out
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

    /// Several students at once (siblings): the months written of each, or all their open
    /// invoices, mention order.
    fn students_suggestion(
        &self,
        students: &[usize],
        mut evidence: Vec<Evidence>,
    ) -> Option<Suggestion> {
        let mut invoices = Vec::new();
        for &s in students {
            if self.stated.is_empty() {
                invoices.extend(self.all_usable(s)?);
            } else {
                invoices.extend(
                    self.named(s)
                        .invoices
                        .into_iter()
                        .filter(|&i| self.usable(i)),
                );
            }
        }
        if invoices.is_empty() {
            return None;
        }
        let total = self.owed(&invoices);
        if !self.stated.is_empty() {
            evidence.push(Evidence::PeriodStated);
        }
        evidence.push(if self.amount.dong() == total {
            Evidence::AmountEqualsSiblingsTotal
        } else {
            self.amount_evidence(total)
        });
        let period = (!self.stated.is_empty()).then(|| self.read_from(&invoices));
        Some(self.fitted(
            suggestion_with(self.fill(&invoices), evidence, period),
            total,
        ))
    }

    /// Rules 2 and 3 for one student the memo names beyond doubt: the months written decide
    /// between the student's invoices; without them, the amount may.
    fn decide_student(
        &self,
        s: usize,
        mut evidence: Vec<Evidence>,
        suggestions: Vec<Suggestion>,
    ) -> Decision {
        let index = self.index;
        let Some(open) = self.all_usable(s) else {
            return review(ReviewReason::Dismissed, suggestions);
        };
        let amount = self.amount.dong();
        if !self.stated.is_empty() {
            let named = self.named(s);
            if named.missing > 0 || named.invoices.is_empty() {
                return review(ReviewReason::PeriodNotInvoiced, suggestions);
            }
            let paid: Vec<usize> = named
                .invoices
                .iter()
                .copied()
                .filter(|&i| index.invoices[i].is_paid())
                .collect();
            if !paid.is_empty() {
                let earlier = paid.iter().find_map(|&i| index.invoices[i].paid_by);
                return review_earlier(ReviewReason::PeriodPaid, suggestions, earlier);
            }
            if let Some(claimant) = self.claimed(&named.invoices) {
                return review_earlier(ReviewReason::PeriodInReview, suggestions, claimant);
            }
            let targets = named.invoices;
            let owed = self.owed(&targets);
            evidence.push(Evidence::PeriodStated);
            if amount == owed {
                evidence.push(if targets.len() > 1 {
                    Evidence::AmountEqualsPeriodsTotal
                } else {
                    Evidence::AmountEqualsBalance
                });
                let words = self.read_from(&targets);
                return auto(
                    Rule::PeriodStated,
                    self.fill(&targets),
                    evidence,
                    Some(words),
                );
            }
            // The amount is exactly what another invoice (or all of them) owes: it contradicts
            // the month written.
            let others: Vec<usize> = open
                .iter()
                .copied()
                .filter(|i| !targets.contains(i))
                .collect();
            let contradicts = others
                .iter()
                .any(|&i| index.invoices[i].open.dong() == amount)
                || (!others.is_empty() && amount == self.owed(&open));
            if contradicts {
                return review(ReviewReason::PeriodAmountConflict, suggestions);
            }
            evidence.push(self.amount_evidence(owed));
            let words = self.read_from(&targets);
            return auto(
                Rule::PeriodStated,
                self.fill(&targets),
                evidence,
                Some(words),
            );
        }
        if open.is_empty() {
            let earlier = index.students[s]
                .invoices
                .iter()
                .rev()
                .find_map(|&i| index.invoices[i].paid_by);
            return review_earlier(ReviewReason::AmountMismatch, suggestions, earlier);
        }
        if amount == self.owed(&open) {
            evidence.push(if open.len() > 1 {
                Evidence::AmountEqualsStudentTotal
            } else {
                Evidence::AmountEqualsBalance
            });
            let words = format!("{}, all open", self.periods(&open));
            return auto(Rule::AmountDecides, self.fill(&open), evidence, Some(words));
        }
        let exact: Vec<usize> = open
            .iter()
            .copied()
            .filter(|&i| index.invoices[i].open.dong() == amount)
            .collect();
        match exact.as_slice() {
            [i] => {
                evidence.push(Evidence::AmountEqualsBalance);
                let words = format!("{}: its balance is the amount", index.invoices[*i].period);
                auto(
                    Rule::AmountDecides,
                    self.fill(&exact),
                    evidence,
                    Some(words),
                )
            }
            [] => review(ReviewReason::AmountMismatch, suggestions),
            _ => review(ReviewReason::EqualBalances, suggestions),
        }
    }

    /// Rule 4: siblings named together, for the months written or everything open.
    fn decide_siblings(
        &self,
        students: &[usize],
        mut evidence: Vec<Evidence>,
        suggestions: Vec<Suggestion>,
    ) -> Decision {
        let index = self.index;
        let mut invoices: Vec<usize> = Vec::new();
        for &s in students {
            let Some(open) = self.all_usable(s) else {
                return review(ReviewReason::Dismissed, suggestions);
            };
            if self.stated.is_empty() {
                invoices.extend(open);
                continue;
            }
            let named = self.named(s);
            if named.missing > 0 || named.invoices.is_empty() {
                return review(ReviewReason::PeriodNotInvoiced, suggestions);
            }
            if let Some(&i) = named
                .invoices
                .iter()
                .find(|&&i| index.invoices[i].is_paid())
            {
                let earlier = index.invoices[i].paid_by;
                return review_earlier(ReviewReason::PeriodPaid, suggestions, earlier);
            }
            if let Some(claimant) = self.claimed(&named.invoices) {
                return review_earlier(ReviewReason::PeriodInReview, suggestions, claimant);
            }
            invoices.extend(named.invoices);
        }
        if invoices.is_empty() || self.amount.dong() != self.owed(&invoices) {
            return review(ReviewReason::AmountMismatch, suggestions);
        }
        evidence.insert(0, Evidence::SiblingsNamed);
        let words = if self.stated.is_empty() {
            format!("{}, all open", self.periods(&invoices))
        } else {
            evidence.push(Evidence::PeriodStated);
            self.read_from(&invoices)
        };
        evidence.push(Evidence::AmountEqualsSiblingsTotal);
        auto(
            Rule::SiblingsByName,
            self.fill(&invoices),
            evidence,
            Some(words),
        )
    }
}

fn suggestion(allocations: Vec<(i64, Vnd)>, evidence: Vec<Evidence>) -> Suggestion {
    suggestion_with(allocations, evidence, None)
}

fn suggestion_with(
    allocations: Vec<(i64, Vnd)>,
    mut evidence: Vec<Evidence>,
    period: Option<String>,
) -> Suggestion {
    evidence.dedup();
    let mut s = Suggestion {
        allocations,
        evidence,
        strength: Strength::Weak,
        period,
        gap: i64::MAX,
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

fn review(reason: ReviewReason, suggestions: Vec<Suggestion>) -> Decision {
    review_earlier(reason, suggestions, None)
}

fn review_earlier(
    reason: ReviewReason,
    mut suggestions: Vec<Suggestion>,
    earlier_payment: Option<i64>,
) -> Decision {
    // Best first; equal scores in the order found (memo order), which is deterministic.
    suggestions.retain(|s| !s.allocations.is_empty());
    let mut ranked: Vec<(usize, Suggestion)> = suggestions.into_iter().enumerate().collect();
    // Rule 9: the evidence (a month written outweighs an amount, which outweighs the oldest
    // open), then the amount's fit, then the order found (each student's oldest open first).
    ranked.sort_by(|(ia, a), (ib, b)| {
        b.score()
            .cmp(&a.score())
            .then(a.gap.cmp(&b.gap))
            .then(ia.cmp(ib))
    });
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
        earlier_payment,
    }
}

fn auto(
    rule: Rule,
    allocations: Vec<(i64, Vnd)>,
    mut evidence: Vec<Evidence>,
    period: Option<String>,
) -> Decision {
    evidence.dedup();
    if allocations.is_empty() || allocations.iter().any(|(_, a)| *a <= Vnd::ZERO) {
        return review(ReviewReason::Unmatched, Vec::new());
    }
    Decision::Auto {
        rule,
        allocations,
        evidence,
        period,
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
            period,
            ..
        } => review(
            ReviewReason::MemoCut,
            vec![suggestion_with(allocations, evidence, period)],
        ),
        Decision::Review { suggestions, .. } => review(ReviewReason::MemoCut, suggestions),
    }
}

/// [`decide`] on a memo and order reference already cut to [`MAX_MEMO_CHARS`].
fn decide_read(index: &Index, incoming: &Incoming, dismissed: &dyn Fn(i64) -> bool) -> Decision {
    let memo = memo::normalise(incoming.memo);
    let people = read_people(index, &memo, incoming.payer_name, incoming.memo);
    let ctx = Ctx {
        index,
        amount: incoming.amount,
        dismissed,
        classes: people.classes.clone(),
        stated: period::read(incoming.memo),
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
    let mut earlier: Option<i64> = None;
    // Per mistyped code: the issued codes it may be (any state), and those still open.
    let mut mistyped: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (hit, from_ref) in &found {
        match &hit.found {
            Found::Valid(code) => match index.get(&index.by_code, code.as_str()) {
                Some(&i) if index.invoices[i].is_open() => {
                    if (ctx.dismissed)(index.invoices[i].id) {
                        dismissed_codes += 1;
                    } else if !coded.iter().any(|(c, _)| *c == i) {
                        coded.push((i, *from_ref));
                    }
                }
                known if hit.aligned || *from_ref => {
                    closed_codes += 1;
                    if let Some(&i) = known {
                        earlier = earlier.or(index.invoices[i].paid_by);
                    }
                }
                _ => {}
            },
            Found::WrongCheck { text, corrected } => {
                let issued: Vec<usize> = corrected
                    .iter()
                    .filter_map(|c| index.get(&index.by_code, c.as_str()).copied())
                    .collect();
                let open: Vec<usize> = issued.iter().copied().filter(|&i| ctx.usable(i)).collect();
                // Letters only and no open invoice nearby: a word, not a mistyped code.
                if !open.is_empty() || text.bytes().any(|b| b.is_ascii_digit()) {
                    mistyped.push((issued, open));
                }
            }
        }
    }
    let coded_students: Vec<usize> = coded
        .iter()
        .map(|&(i, _)| index.invoices[i].student)
        .collect();

    // Suggestions from everything read, for any review.
    let mut suggestions: Vec<Suggestion> = Vec::new();
    for &(i, from_ref) in &coded {
        let mut ev = vec![Evidence::CodeValid];
        if from_ref {
            ev.push(Evidence::OrderRef);
        }
        suggestions.push(ctx.invoice_suggestion(i, ev));
    }
    for (_, open) in &mistyped {
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
            suggestions.extend(ctx.student_suggestions(s, vec![m.evidence]));
            if !mentioned.contains(&s) {
                mentioned.push(s);
            }
        }
    }
    // The siblings' reading rests on their names as much as each one's does: it carries the
    // weakest of them, so that it ranks beside (and, fitting the amount, above) them. Names
    // that several pupils carry are read as the siblings among them: one family with a pupil
    // under every name.
    let weakest = people
        .mentions
        .iter()
        .map(|m| m.evidence)
        .min_by_key(|e| e.score())
        .unwrap_or(Evidence::SiblingsNamed);
    for group in sibling_readings(index, &people.mentions, &mentioned) {
        suggestions.extend(ctx.students_suggestion(&group, vec![Evidence::SiblingsNamed, weakest]));
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
        suggestions.extend(ctx.student_suggestions(s, vec![e]));
    }

    // Rule 7: a mistyped code with one correction, confirmed by the amount or the name.
    if !mistyped.is_empty() {
        if let [(issued, open)] = mistyped.as_slice() {
            if let ([i], [o], true) = (
                issued.as_slice(),
                open.as_slice(),
                coded.is_empty() && closed_codes == 0 && dismissed_codes == 0,
            ) {
                let inv = &index.invoices[*o];
                let s = inv.student;
                let named = people.mentions.iter().find(|m| m.students == [s]);
                let conflict = people.mentions.iter().any(|m| !m.students.contains(&s));
                let amount_fits = inv.open == incoming.amount;
                if i == o && !conflict && (amount_fits || named.is_some()) {
                    let mut evidence = vec![Evidence::CodeWrongCheck, Evidence::CodeCorrected];
                    if let Some(m) = named {
                        evidence.push(m.evidence);
                    }
                    evidence.push(ctx.amount_evidence(inv.open.dong()));
                    return auto(
                        Rule::MistypedCodeOneCorrection,
                        ctx.fill(&[*o]),
                        evidence,
                        Some(inv.period.clone()),
                    );
                }
            }
        }
        return review(ReviewReason::WrongCheckCharacter, suggestions);
    }

    // Rules 1 to 3 of codes: valid codes decide, whatever month the memo also names (the code
    // was printed on one invoice; parents write the month they pay in).
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
        let total = ctx.owed(&invoices);
        let words = Some(ctx.periods(&invoices));
        if invoices.len() == 1 {
            evidence.push(ctx.amount_evidence(total));
            return auto(
                Rule::CodeNamesOneInvoice,
                ctx.fill(&invoices),
                evidence,
                words,
            );
        }
        if index.same_family(&coded_students) && incoming.amount.dong() >= total {
            evidence.push(if incoming.amount.dong() == total {
                Evidence::AmountEqualsSiblingsTotal
            } else {
                Evidence::AmountAboveBalance
            });
            return auto(Rule::CodesOfOneFamily, ctx.fill(&invoices), evidence, words);
        }
        suggestions.push(ctx.fitted(suggestion(ctx.fill(&invoices), evidence), total));
        return review(ReviewReason::Ambiguous, suggestions);
    }
    if dismissed_codes > 0 {
        return review(ReviewReason::Dismissed, suggestions);
    }
    if closed_codes > 0 {
        return review_earlier(ReviewReason::CodeNotOpen, suggestions, earlier);
    }

    // Rules 5, 6 and 8: student codes and names.
    if people.mentions.is_empty() {
        if let Some(d) = given_name_and_class(&ctx, &people, &suggestions) {
            return d;
        }
        let reason = if people.weak.is_empty() {
            ReviewReason::Unmatched
        } else {
            ReviewReason::OnlyWeakEvidence
        };
        return review(reason, suggestions);
    }
    if people.maybe_cut {
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
    match students.as_slice() {
        [s] => ctx.decide_student(*s, evidence, suggestions),
        _ => ctx.decide_siblings(&students, evidence, suggestions),
    }
}

/// The readings of several names as siblings: the students named, when they are one family;
/// else, per family with a pupil under every name, those pupils (memo order).
fn sibling_readings(index: &Index, mentions: &[Mention], mentioned: &[usize]) -> Vec<Vec<usize>> {
    if mentioned.len() < 2 {
        return Vec::new();
    }
    if index.same_family(mentioned) {
        return vec![mentioned.to_vec()];
    }
    if mentions.len() < 2 {
        return Vec::new();
    }
    let families: std::collections::BTreeSet<&str> = mentioned
        .iter()
        .filter_map(|&s| index.students[s].family.as_deref())
        .collect();
    let mut out = Vec::new();
    for f in families {
        let mut group: Vec<usize> = Vec::new();
        for m in mentions {
            let Some(&s) = m
                .students
                .iter()
                .find(|&&s| index.students[s].family.as_deref() == Some(f) && !group.contains(&s))
            else {
                group.clear();
                break;
            };
            group.push(s);
        }
        if group.len() >= 2 {
            out.push(group);
        }
    }
    out
}

/// Rule 8: no full name, but a given name (or middle and given name) that only one student of
/// the class written carries, with the amount confirming what the months written (or the
/// student's open invoices) owe.
fn given_name_and_class(
    ctx: &Ctx,
    people: &People,
    suggestions: &[Suggestion],
) -> Option<Decision> {
    let index = ctx.index;
    if ctx.classes.is_empty() || people.maybe_cut {
        return None;
    }
    let mut candidates: Vec<(usize, Evidence)> = Vec::new();
    for &(s, e) in &people.weak {
        if matches!(e, Evidence::GivenNameOnly | Evidence::PartialName)
            && !candidates.iter().any(|(c, _)| *c == s)
        {
            candidates.push((s, e));
        }
    }
    let [(s, how)] = candidates.as_slice() else {
        return None;
    };
    if !people.alone.contains(s) {
        return None;
    }
    let student = &index.students[*s];
    if !ctx.classes.contains(&student.class) || ctx.classes.len() > 1 {
        return None;
    }
    // Unique in the class: the given name, or the middle and given name when both were written.
    let k = student.name.len();
    let same: &[usize] = match how {
        Evidence::PartialName if k >= 2 => {
            let key = word_key(&student.name[k - 2]).wrapping_add(word_key(&student.name[k - 1]));
            index.keyed(&index.by_tail, key)
        }
        _ => index
            .get(&index.by_given, student.name.last()?.as_str())
            .map_or(&[], Vec::as_slice),
    };
    let in_class = same
        .iter()
        .filter(|&&o| {
            let other = &index.students[o];
            let tail = |n: &[String]| n.get(n.len().saturating_sub(2)..).map(<[String]>::to_vec);
            other.class == student.class
                && (*how != Evidence::PartialName || tail(&other.name) == tail(&student.name))
        })
        .count();
    if in_class != 1 {
        return None;
    }
    let evidence = vec![Evidence::GivenNameOnly, Evidence::GivenNameInClass];
    match ctx.decide_student(*s, evidence, suggestions.to_vec()) {
        Decision::Auto {
            allocations,
            evidence,
            period,
            ..
        } if evidence.iter().any(|e| {
            matches!(
                e,
                Evidence::AmountEqualsBalance
                    | Evidence::AmountEqualsPeriodsTotal
                    | Evidence::AmountEqualsStudentTotal
            )
        }) =>
        {
            Some(auto(Rule::GivenNameAndClass, allocations, evidence, period))
        }
        _ => None,
    }
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
                    voided: false,
                    paid_by: None,
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
                ..
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
    fn mistyped_code_one_correction() {
        let ix = index();
        let c = code(301);
        let mut b = c.as_str().as_bytes().to_vec();
        b[4] = if b[4] == b'9' { b'8' } else { b'9' };
        let typo = String::from_utf8(b).unwrap();
        // One correction among issued codes, confirmed by the name (and here the amount).
        let d = run(&ix, 1_566_800, &format!("{typo} TRAN THI BICH NGOC 7A2"));
        assert_auto(&d, &[(301, 1_566_800)]);
        let Decision::Auto { rule, evidence, .. } = &d else {
            unreachable!()
        };
        assert_eq!(*rule, Rule::MistypedCodeOneCorrection);
        assert!(evidence.contains(&Evidence::CodeCorrected));
        // Confirmed by the name alone: a partial payment.
        assert_auto(
            &run(&ix, 1_000_000, &format!("{typo} TRAN THI BICH NGOC")),
            &[(301, 1_000_000)],
        );
        // Confirmed by the amount alone.
        assert_auto(&run(&ix, 1_566_800, &typo), &[(301, 1_566_800)]);
        // Neither: suggested only.
        let s = assert_review(
            &run(&ix, 1_000_000, &typo),
            ReviewReason::WrongCheckCharacter,
        );
        assert_eq!(s[0].allocations, allocs(&[(301, 1_000_000)]));
        assert!(s[0].evidence.contains(&Evidence::CodeWrongCheck));
        // Another pupil named: a conflict, suggested only.
        assert_review(
            &run(&ix, 1_566_800, &format!("{typo} LE HOANG PHUC")),
            ReviewReason::WrongCheckCharacter,
        );
        // Look-alike O for a symbol.
        let mut b = c.as_str().as_bytes().to_vec();
        b[3] = b'O';
        let d = run(&ix, 1_000_000, std::str::from_utf8(&b).unwrap());
        let s = assert_review(&d, ReviewReason::WrongCheckCharacter);
        assert!(s.iter().all(|s| s.allocations.len() == 1));
    }

    /// Rule 7 (rule 4 above) for the other slips parents make: a symbol left out, a symbol
    /// typed twice. Allocated when the amount or the name confirms, suggested otherwise.
    #[test]
    fn mistyped_code_dropped_or_doubled() {
        let ix = index();
        let c = code(301);
        let s = c.as_str();
        let dropped = format!("{}{}", &s[..4], &s[5..]);
        let doubled = format!("{}{}", &s[..=4], &s[4..]);
        for typo in [&dropped, &doubled] {
            for memo in [
                format!("HP {typo}"),
                format!("{} tran thi bich ngoc", typo.to_lowercase()),
            ] {
                let d = run(&ix, 1_566_800, &memo);
                assert_auto(&d, &[(301, 1_566_800)]);
                let Decision::Auto { rule, .. } = &d else {
                    unreachable!()
                };
                assert_eq!(*rule, Rule::MistypedCodeOneCorrection, "{memo}");
            }
            assert_auto(
                &run(&ix, 1_000_000, &format!("{typo} Tran Thi Bich Ngoc")),
                &[(301, 1_000_000)],
            );
            let s = assert_review(
                &run(&ix, 1_000_000, &format!("HP {typo}")),
                ReviewReason::WrongCheckCharacter,
            );
            assert_eq!(s[0].allocations, allocs(&[(301, 1_000_000)]));
            assert_review(
                &run(&ix, 1_566_800, &format!("{typo} LE HOANG PHUC")),
                ReviewReason::WrongCheckCharacter,
            );
        }
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
        assert!(s[0].evidence.contains(&Evidence::OldestOpen));
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
            ReviewReason::EqualBalances,
        );
        assert_auto(
            &run(&ix, 1_000_000, "DANG VAN NAM"),
            &[(801, 500_000), (802, 500_000)],
        );
        // A "typo" that spells another student's syllable is another name, not a typo.
        assert!(!run(&ix, 500_000, "DANG VAN BINH").is_auto());
        // Cut by the bank? At a bank's limit, "NGUYEN VAN AN 6A1" may be the start of "6A10".
        let long = "MBVCB.3278126542.012345.HOC PHI NAM HOC 2025 2026 CHO CON NGUYEN VAN AN 6A1";
        let at_limit = format!("{}{long}", "X".repeat(140 - long.len()));
        assert_review(
            &run(&ix, 1_235_000, &at_limit),
            ReviewReason::MaybeTruncated,
        );
        // Long, but at no limit: whole.
        assert_auto(
            &run(&ix, 1_235_000, long),
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
            &run(&ix, 935_000, "HOC PHI BE HUY"),
            ReviewReason::OnlyWeakEvidence,
        );
        assert_eq!(s[0].allocations, allocs(&[(601, 935_000)]));
        assert!(s[0].evidence.contains(&Evidence::GivenNameOnly));
        let s = assert_review(
            &run(&ix, 900_000, "MINH KHOI 8A3"),
            ReviewReason::OnlyWeakEvidence,
        );
        assert_eq!(s[0].allocations, allocs(&[(401, 900_000)]));
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

    /// Several months of one pupil open at once, some paid, one voided; a family of two.
    fn period_index() -> Index {
        let row = |id: i64,
                   sid: i64,
                   name: &str,
                   class: &str,
                   fam: Option<&str>,
                   period: &str,
                   open: i64,
                   voided: bool,
                   paid_by: Option<i64>| OpenInvoice {
            invoice_id: id,
            code: code(id),
            student_id: sid,
            student_code: format!("HS{sid:04}"),
            student_name: name.to_string(),
            class_name: class.to_string(),
            family_key: fam.map(str::to_string),
            open: vnd(open),
            period: period.to_string(),
            voided,
            paid_by,
        };
        Index::build(
            &qd(),
            vec![
                row(
                    2000,
                    20,
                    "Lê Bảo Tuấn",
                    "6A5",
                    None,
                    "2025-08",
                    0,
                    false,
                    Some(77),
                ),
                row(
                    2001,
                    20,
                    "Lê Bảo Tuấn",
                    "6A5",
                    None,
                    "2025-09",
                    935_000,
                    false,
                    None,
                ),
                row(
                    2002,
                    20,
                    "Lê Bảo Tuấn",
                    "6A5",
                    None,
                    "2025-10",
                    935_000,
                    false,
                    None,
                ),
                row(
                    2003,
                    20,
                    "Lê Bảo Tuấn",
                    "6A5",
                    None,
                    "2025-11",
                    935_000,
                    false,
                    None,
                ),
                row(
                    2004,
                    20,
                    "Lê Bảo Tuấn",
                    "6A5",
                    None,
                    "2025-12",
                    935_000,
                    true,
                    None,
                ),
                row(
                    2101,
                    21,
                    "Võ Thị Mai",
                    "7A4",
                    Some("F9"),
                    "2025-10",
                    1_235_000,
                    false,
                    None,
                ),
                row(
                    2102,
                    21,
                    "Võ Thị Mai",
                    "7A4",
                    Some("F9"),
                    "2025-11",
                    935_000,
                    false,
                    None,
                ),
                row(
                    2201,
                    22,
                    "Võ Minh Quân",
                    "9A3",
                    Some("F9"),
                    "2025-11",
                    935_000,
                    false,
                    None,
                ),
                row(
                    2301,
                    23,
                    "Trần Minh Khoa",
                    "8A1",
                    None,
                    "2025-10",
                    500_000,
                    false,
                    None,
                ),
            ],
        )
    }

    #[track_caller]
    fn assert_rule(d: &Decision, want: Rule) {
        match d {
            Decision::Auto { rule, .. } => assert_eq!(*rule, want),
            other => panic!("expected auto by {want:?}, got {other:?}"),
        }
    }

    #[test]
    fn period_decides() {
        let ix = period_index();
        let d = run(&ix, 935_000, "HP T11 Le Bao Tuan 6A5");
        assert_auto(&d, &[(2003, 935_000)]);
        assert_rule(&d, Rule::PeriodStated);
        let Decision::Auto { period, .. } = &d else {
            unreachable!()
        };
        assert_eq!(period.as_deref(), Some("2025-11, read from \"T11\""));
        for memo in [
            "HP thang 9+10 LE BAO TUAN",
            "T9-T10 Le Bao Tuan",
            "T9,T10 Lê Bảo Tuấn",
            "dong hoc phi thang 9 va 10 cho con Le Bao Tuan",
        ] {
            assert_auto(
                &run(&ix, 1_870_000, memo),
                &[(2001, 935_000), (2002, 935_000)],
            );
        }
        for memo in [
            "hoc phi 11/2025 Lê Bảo Tuấn",
            "Le Bao Tuan thang muoi mot",
            "HPT11 LE BAO TUAN",
            "LeBaoTuanT11",
            "Le Bao Tuan T11/2025",
        ] {
            assert_auto(&run(&ix, 935_000, memo), &[(2003, 935_000)]);
        }
        // The class is never read as a month; the month decides whatever the class.
        assert_auto(
            &run(&ix, 935_000, "Le Bao Tuan 6A5 T10"),
            &[(2002, 935_000)],
        );
        // Pupil and month certain: what arrived goes to the month written.
        assert_auto(&run(&ix, 500_000, "T11 Le Bao Tuan"), &[(2003, 500_000)]);
        assert_auto(&run(&ix, 931_700, "T11 Le Bao Tuan"), &[(2003, 931_700)]);
        assert_auto(&run(&ix, 1_000_000, "T11 Le Bao Tuan"), &[(2003, 935_000)]);
        assert_auto(&run(&ix, 1_000_000, "T10 Vo Thi Mai"), &[(2101, 1_000_000)]);
        // The amount is another month's balance: a conflict.
        assert_review(
            &run(&ix, 935_000, "T10 Vo Thi Mai"),
            ReviewReason::PeriodAmountConflict,
        );
        assert_review(
            &run(&ix, 2_170_000, "T10 Vo Thi Mai"),
            ReviewReason::PeriodAmountConflict,
        );
        // A month with no invoice, or a voided one, is evidence against.
        for memo in [
            "T3 Le Bao Tuan",
            "T12 Le Bao Tuan",
            "thang 6/2025 Le Bao Tuan",
        ] {
            assert_review(&run(&ix, 935_000, memo), ReviewReason::PeriodNotInvoiced);
        }
    }

    #[test]
    fn period_paid_is_a_duplicate() {
        let ix = period_index();
        let d = run(&ix, 935_000, "hoc phi T8 Le Bao Tuan");
        assert_review(&d, ReviewReason::PeriodPaid);
        let Decision::Review {
            earlier_payment, ..
        } = &d
        else {
            unreachable!()
        };
        assert_eq!(*earlier_payment, Some(77));
        // Settled later in the batch: paid from then on, naming the payment that paid it.
        let mut ix = ix;
        ix.settle_by(2002, vnd(935_000), Some(88));
        let d = run(&ix, 935_000, "T10 Le Bao Tuan");
        assert!(matches!(
            d,
            Decision::Review {
                reason: ReviewReason::PeriodPaid,
                earlier_payment: Some(88),
                ..
            }
        ));
    }

    #[test]
    fn period_in_review() {
        // (memo, amount, claims, expected: Ok(allocations) or Err(claimant)).
        type Want = Result<&'static [(i64, i64)], Option<i64>>;
        type Claims = &'static [(i64, Option<i64>)];
        let cases: &[(&str, i64, Claims, Want)] = &[
            // October is claimed by payment 91, still in review: not allocated, whatever the
            // amount, and the review names 91.
            (
                "HP thang 10 va 11 Le Bao Tuan",
                1_870_000,
                &[(2002, Some(91))],
                Err(Some(91)),
            ),
            (
                "HP T10 Le Bao Tuan",
                935_000,
                &[(2002, Some(91))],
                Err(Some(91)),
            ),
            // Claimed by a payment earlier in the same batch, not recorded yet.
            ("HP T10 Le Bao Tuan", 935_000, &[(2002, None)], Err(None)),
            // Another month claimed, or another pupil's: the month written decides.
            (
                "HP T11 Le Bao Tuan",
                935_000,
                &[(2002, Some(91))],
                Ok(&[(2003, 935_000)]),
            ),
            (
                "HP T10 Le Bao Tuan",
                935_000,
                &[(2101, Some(91))],
                Ok(&[(2002, 935_000)]),
            ),
            // No month written: a claim by month does not stand in the amount's way.
            (
                "Le Bao Tuan",
                2_805_000,
                &[(2002, Some(91))],
                Ok(&[(2001, 935_000), (2002, 935_000), (2003, 935_000)]),
            ),
            // Siblings: one of the months written claimed is a review.
            (
                "HP T11 Vo Thi Mai 7A4 va Vo Minh Quan 9A3",
                1_870_000,
                &[(2201, Some(92))],
                Err(Some(92)),
            ),
        ];
        for (memo, amount, claims, want) in cases {
            let mut ix = period_index();
            ix.set_claims(claims.iter().copied());
            let d = run(&ix, *amount, memo);
            match want {
                Ok(allocations) => assert_auto(&d, allocations),
                Err(claimant) => {
                    assert_review(&d, ReviewReason::PeriodInReview);
                    let Decision::Review {
                        earlier_payment, ..
                    } = &d
                    else {
                        unreachable!()
                    };
                    assert_eq!(earlier_payment, claimant, "{memo}");
                }
            }
            // Claims replaced: nothing claimed decides as before.
            ix.set_claims([]);
            assert!(!matches!(
                run(&ix, *amount, memo),
                Decision::Review {
                    reason: ReviewReason::PeriodInReview,
                    ..
                }
            ));
        }
        // A code names its invoice whatever a review claims.
        let mut ix = period_index();
        ix.set_claims([(2002, Some(91))]);
        let memo = format!("{} T10", code(2002).as_str());
        assert_auto(&run(&ix, 935_000, &memo), &[(2002, 935_000)]);
    }

    #[test]
    fn amount_decides() {
        let ix = period_index();
        // No month, several open months of that balance: the accountant's choice, not ours.
        let s = assert_review(
            &run(&ix, 935_000, "Le Bao Tuan"),
            ReviewReason::EqualBalances,
        );
        assert_eq!(s[0].allocations, allocs(&[(2001, 935_000)]));
        let d = run(&ix, 2_805_000, "Le Bao Tuan");
        assert_auto(&d, &[(2001, 935_000), (2002, 935_000), (2003, 935_000)]);
        assert_rule(&d, Rule::AmountDecides);
        assert_auto(&run(&ix, 1_235_000, "Vo Thi Mai"), &[(2101, 1_235_000)]);
    }

    #[test]
    fn siblings_with_a_period() {
        let ix = period_index();
        let d = run(&ix, 1_870_000, "HP T11 Vo Thi Mai 7A4 va Vo Minh Quan 9A3");
        assert_auto(&d, &[(2102, 935_000), (2201, 935_000)]);
        assert_rule(&d, Rule::SiblingsByName);
        assert_review(
            &run(&ix, 1_500_000, "HP T11 Vo Thi Mai 7A4 va Vo Minh Quan 9A3"),
            ReviewReason::AmountMismatch,
        );
    }

    #[test]
    fn truncation_where_it_happened() {
        let ix = period_index();
        // Cut inside the name, at 63 characters.
        let cut = "IBFT dong hoc phi T10 cho HS lê bảo tuấ";
        assert_review(&run(&ix, 935_000, cut), ReviewReason::MaybeTruncated);
        // A long memo ending in a whole name, at no bank's limit, is not cut.
        let long = "MBVCB.3278126542.012345.Kinh gui nha truong, phu huynh xin nop hoc phi thang 10 cho chau Le Bao Tuan";
        let len = long.chars().count();
        assert!(BANK_MEMO_LIMITS
            .iter()
            .all(|&(_, l)| len > l || len + LIMIT_SLACK < l));
        assert_auto(&run(&ix, 935_000, long), &[(2002, 935_000)]);
        // The same at exactly a bank's limit may have lost the end of the name.
        let padded = format!("{}{long}", "x ".repeat((140 - len) / 2));
        let padded = if padded.chars().count() < 140 {
            format!("y{padded}")
        } else {
            padded
        };
        assert_eq!(padded.chars().count(), 140);
        assert_review(&run(&ix, 935_000, &padded), ReviewReason::MaybeTruncated);
    }

    #[test]
    fn pupil_named_before_chuyen_tien() {
        let ix = period_index();
        let d = run_with(
            &ix,
            500_000,
            "TRAN MINH KHOA 8A1 chuyen tien HP T10",
            None,
            Some("NGUYEN THI HOA"),
            &|_| false,
        );
        assert_auto(&d, &[(2301, 500_000)]);
        assert_auto(
            &run(&ix, 500_000, "con TRAN MINH KHOA chuyen tien"),
            &[(2301, 500_000)],
        );
        assert_review(
            &run(&ix, 500_000, "TRAN MINH KHOA chuyen tien"),
            ReviewReason::OnlyWeakEvidence,
        );
    }

    #[test]
    fn given_name_and_class() {
        let ix = index();
        let d = run(&ix, 935_000, "HOC PHI BE HUY 6A2");
        assert_auto(&d, &[(601, 935_000)]);
        assert_rule(&d, Rule::GivenNameAndClass);
        assert_auto(&run(&ix, 935_000, "MINH KHOI 8A3"), &[(401, 935_000)]);
        assert_review(
            &run(&ix, 900_000, "HOC PHI BE HUY 6A2"),
            ReviewReason::OnlyWeakEvidence,
        );
        // "An" is two pupils' given name, in different classes: the class tells.
        assert!(!run(&ix, 935_000, "BE AN").is_auto());
    }

    /// Rule 9, amount fit: of two namesakes with the same evidence, the one whose balance is
    /// closer to the amount comes first.
    #[test]
    fn suggestions_are_ranked_by_amount_fit() {
        let ix = index();
        let s = assert_review(&run(&ix, 900_000, "NGUYEN VAN AN"), ReviewReason::Ambiguous);
        assert_eq!(s[0].allocations, allocs(&[(201, 900_000)]));
        assert_eq!(s[1].allocations, allocs(&[(101, 900_000)]));
        let s = assert_review(
            &run(&ix, 1_200_000, "NGUYEN VAN AN"),
            ReviewReason::Ambiguous,
        );
        assert_eq!(s[0].allocations, allocs(&[(101, 935_000), (102, 265_000)]));
    }

    /// Rule 9, siblings: a name several pupils carry, beside a sibling's, is read as the sibling
    /// first; with the amount their total, that reading leads.
    #[test]
    fn suggestions_read_namesakes_as_siblings() {
        let ix = index();
        let d = run(&ix, 2_170_000, "hoc phi NGUYEN VAN AN va NGUYEN MINH KHOI");
        let s = assert_review(&d, ReviewReason::Ambiguous);
        assert_eq!(
            s[0].allocations,
            allocs(&[(101, 935_000), (102, 300_000), (401, 935_000)])
        );
        assert!(s[0].evidence.contains(&Evidence::SiblingsNamed));
    }

    /// Rule 9, a memo cut inside the given name: the pupils whose name begins so are suggested.
    #[test]
    fn suggestions_read_a_name_cut_short() {
        let ix = index();
        let d = run(&ix, 1_566_800, "IBFT HP T9 be TRAN THI BICH NG");
        let Decision::Review { suggestions, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(suggestions[0].allocations, allocs(&[(301, 1_566_800)]));
        assert!(suggestions[0].evidence.contains(&Evidence::NameCut));
        assert!(suggestions[0].describe().contains("2025-09"));
        // A stub no name begins with suggests nothing of the kind.
        let d = run(&ix, 1_566_800, "IBFT HP T9 be TRAN THI BICH QX");
        let Decision::Review { suggestions, .. } = &d else {
            panic!("{d:?}")
        };
        assert!(suggestions
            .iter()
            .all(|s| !s.evidence.contains(&Evidence::NameCut)));
    }

    #[test]
    fn suggestions_name_the_period_first() {
        let ix = period_index();
        let s = assert_review(
            &run(&ix, 1_235_000, "HP T11 Vo Thi Mai"),
            ReviewReason::PeriodAmountConflict,
        );
        assert_eq!(s[0].allocations, allocs(&[(2102, 935_000)]));
        assert!(
            s[0].describe().contains("2025-11, read from \"T11\""),
            "{}",
            s[0].describe()
        );
        assert_eq!(s[1].allocations, allocs(&[(2101, 1_235_000)]));
        assert!(s[1].describe().contains("its balance is the amount"));
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
        /// A mistyped code is allocated only to the one issued code it corrects to.
        fn mistyped_codes_go_to_their_one_correction(
            pick in 0usize..10, pos in 2usize..8, shift in 1usize..31, amount in 1i64..3_000_000
        ) {
            let ix = index();
            let (id, ..) = SCHOOL[pick];
            let mut b = code(id).as_str().as_bytes().to_vec();
            let alphabet = crate::domain::code::ALPHABET;
            let v = alphabet.iter().position(|&c| c == b[pos]).unwrap();
            b[pos] = alphabet[(v + shift) % 31];
            let memo = String::from_utf8(b).unwrap();
            if let Decision::Auto { allocations, rule, .. } = run(&ix, amount, &memo) {
                prop_assert_eq!(rule, Rule::MistypedCodeOneCorrection);
                prop_assert!(allocations.iter().all(|(i, _)| *i == id), "{}", memo);
            }
        }
    }
}
