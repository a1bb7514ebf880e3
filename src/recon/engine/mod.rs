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
//!    with no month written, the sum of their open balances), or when each child's share is
//!    written beside its name ("T11 Nguyen Van An 1.500.000 Nguyen Thi Binh 1.200.000", "An
//!    1tr5 Binh 1tr2"; see [`amounts`] for what is read as an amount) and the shares add up to
//!    the amount exactly (`siblings_by_name_shares_stated`). Each share then goes to that
//!    child's invoices of the months written, oldest first, or with no month written to all
//!    its open invoices when it is their total, else to the one whose balance it is (or the
//!    only one open): less than they owe is a partial payment. Shares that do not add up, a
//!    share above what the child owes or that is exactly another open month's balance, and a
//!    child with no such invoice are a review, even when the amount is what all of them owe:
//!    the parent's split then says something else than the balances.
//! 7. `sender_is_not_the_student`: a name that is the sender's own (equal to `payer_name`, or
//!    the bank's default memo `<NAME> CHUYEN TIEN` at the start) never names the student,
//!    unless a pupil marker ("HS", "con", "be", "hoc sinh") stands before it or its class after
//!    it: then it is the pupil's.
//! 8. `truncation_where_it_happened`: a memo is suspected cut ([`ReviewReason::MaybeTruncated`])
//!    only with a sign of it: it ends inside a word (a last word that is no syllable of any name
//!    but the beginning of one, "TUA" of "TUAN"), or a name or class ends a memo whose length
//!    reaches a bank's limit ([`BANK_MEMO_LIMITS`]): for an app's limit, what the parent typed
//!    (the bank's wrapping left out, since the bank adds it after the app cut), for a channel's,
//!    the memo as delivered. A long memo that ends in a whole name is not cut.
//! 9. `given_name_and_class`: a given name (or middle and given name) that only one student of
//!    the class written carries, with no full name in the memo, is allocated when the amount
//!    equals what the months written owe, or (no month written) the student's total or the
//!    balance of exactly one open invoice. A middle and given name written together are read
//!    as that pair, not also as the given names in it. Otherwise a given name alone, a class or
//!    an amount are evidence for suggestions only (`weak_evidence_never_auto`).
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
//!
//! [`amounts`]: crate::recon::amounts
//! [`codes`]: crate::recon::codes
//! [`period`]: crate::recon::period

mod candidates;
mod decide;
mod index;
mod reading;
mod siblings;
mod student;
mod suggestions;
#[cfg(test)]
mod tests;

pub use index::Index;

use crate::domain::code::PaymentCode;
use crate::domain::money::Vnd;
use crate::recon::memo;
use crate::recon::names;
use decide::decide_read;
use serde::Serialize;
use suggestions::{review, suggestion_with};

/// A review lists at most this many suggestions.
pub const MAX_SUGGESTIONS: usize = 5;
/// Names longer than this many syllables are not looked for.
pub const MAX_NAME_WORDS: usize = 6;
/// A given name alone is suggested only when at most this many students carry it (in the named
/// class when the memo names one): beyond that it is noise for the accountant.
pub const MAX_WEAK_CANDIDATES: usize = 12;
/// What a bank's memo limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoLimit {
    /// The characters the parent may type in the app's content field; the bank adds its
    /// wrapping (`MBVCB.…`, `REM Tfr Ac:…`, `FT…`) afterwards, so wrapping never counts
    /// ([`crate::recon::memo::typed_chars`]).
    Typed(usize),
    /// The characters a channel carries, the wrapping added before it included.
    Delivered(usize),
}

/// Where banks and apps cut a memo: a memo whose length reaches one of these (within
/// [`LIMIT_SLACK`]) and whose counted text ends in a name or class may have been cut there
/// (rule 8). These are the limits we model; a bank that cuts elsewhere is caught only by a memo
/// ending inside a word.
///
/// VietQR's purpose field (25 characters) is not among them: what a QR carries is the school's
/// own text with the payment code, which rule 1 reads whole or not at all, while memos typed by
/// parents of 23 to 25 characters ending in a name are common and whole.
pub const BANK_MEMO_LIMITS: &[(&str, MemoLimit)] = &[
    ("SMS banking, older apps", MemoLimit::Typed(70)),
    (
        "content field of most mobile apps (Techcombank, MB, ACB, VietinBank)",
        MemoLimit::Typed(140),
    ),
    (
        "NAPAS 247 interbank content, Vietcombank's MBVCB memos wrapped to it",
        MemoLimit::Delivered(210),
    ),
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
    /// Each sibling's share is written beside its name, and the shares add up to the amount.
    SharesStated,
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
            Evidence::SharesStated => "each child's share written beside the name",
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
            | Evidence::AmountEqualsPeriodsTotal
            | Evidence::SharesStated => 30,
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
    /// The period's words before they are written into `period` (see [`suggestions::Note`]).
    #[serde(skip)]
    note: Option<suggestions::Note>,
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
