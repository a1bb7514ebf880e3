//! Suggestions for a review, ranked as the accountant would pick (rule
//! `suggestions_are_ranked`), and the decisions made of them.

use super::candidates::Ctx;
use super::{Decision, Evidence, ReviewReason, Rule, Strength, Suggestion};
use super::{MAX_SUGGESTIONS, MEDIUM_SCORE, STRONG_SCORE};
use crate::domain::money::Vnd;

impl Ctx<'_> {
    /// One invoice: allocate the amount, at most its balance.
    pub(super) fn invoice_suggestion(&self, i: usize, mut evidence: Vec<Evidence>) -> Suggestion {
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
    pub(super) fn fitted(&self, mut s: Suggestion, owed: i64) -> Suggestion {
        s.gap = (self.amount.dong() - owed).abs();
        s
    }

    /// Rule 9: what the accountant would pick for a student, best first: the months written,
    /// then the invoices whose balance is the amount, then the oldest open; each says which
    /// period and why.
    pub(super) fn student_suggestions(&self, s: usize, base: Vec<Evidence>) -> Vec<Suggestion> {
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
                    noted(
                        self.fill(&targets),
                        with(&[Evidence::PeriodStated, amount]),
                        Note::ReadFrom(targets),
                    ),
                    owed,
                ));
            }
        }
        if open.len() > 1 && self.amount.dong() == self.owed(&open) {
            out.push(self.fitted(
                noted(
                    self.fill(&open),
                    with(&[Evidence::AmountEqualsStudentTotal]),
                    Note::AllOpen(open.clone()),
                ),
                0,
            ));
        }
        for &i in &open {
            let inv = &index.invoices[i];
            if inv.open == self.amount {
                out.push(self.fitted(
                    noted(
                        vec![(inv.id, inv.open)],
                        with(&[Evidence::AmountEqualsBalance]),
                        Note::BalanceIsAmount(i),
                    ),
                    0,
                ));
            }
        }
        out.push(self.fitted(
            noted(
                self.fill(&open),
                with(&[Evidence::OldestOpen]),
                Note::OldestOpen(oldest),
            ),
            self.owed(&open),
        ));
        out
    }
}

/// What a student's suggestion says of its period, put in words only for the suggestions a
/// review keeps: a pupil's name that dozens of pupils carry gives hundreds of candidates, and
/// wording each was most of the cost of deciding such a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Note {
    /// The months written: these invoices (indices).
    ReadFrom(Vec<usize>),
    /// All the student's open invoices: the amount is their total.
    AllOpen(Vec<usize>),
    /// This invoice's balance is the amount.
    BalanceIsAmount(usize),
    /// The oldest open invoice first.
    OldestOpen(usize),
}

impl Ctx<'_> {
    /// "2025-11, read from \"T11\"", "2025-10: its balance is the amount, no month written".
    fn note_words(&self, note: &Note) -> String {
        let why_not = || {
            if self.stated.is_empty() {
                "no month written".to_string()
            } else {
                format!("not the month written (\"{}\")", self.stated.words())
            }
        };
        let period = |i: usize| self.index.invoices[i].period.as_str();
        match note {
            Note::ReadFrom(invoices) => self.read_from(invoices),
            Note::AllOpen(invoices) => format!(
                "{}, all open: the amount is their total, {}",
                self.periods(invoices),
                why_not()
            ),
            Note::BalanceIsAmount(i) => {
                format!("{}: its balance is the amount, {}", period(*i), why_not())
            }
            Note::OldestOpen(i) => {
                format!("{}: the oldest open first, {}", period(*i), why_not())
            }
        }
    }

    /// The decision with its suggestions' notes in words.
    pub(super) fn render_notes(&self, mut decision: Decision) -> Decision {
        if let Decision::Review { suggestions, .. } = &mut decision {
            for s in suggestions {
                if let Some(note) = s.note.take() {
                    s.period = Some(self.note_words(&note));
                }
            }
        }
        decision
    }
}

fn noted(allocations: Vec<(i64, Vnd)>, evidence: Vec<Evidence>, note: Note) -> Suggestion {
    let mut s = suggestion_with(allocations, evidence, None);
    s.note = Some(note);
    s
}

pub(super) fn suggestion(allocations: Vec<(i64, Vnd)>, evidence: Vec<Evidence>) -> Suggestion {
    suggestion_with(allocations, evidence, None)
}

pub(super) fn suggestion_with(
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
        note: None,
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

pub(super) fn review(reason: ReviewReason, suggestions: Vec<Suggestion>) -> Decision {
    review_earlier(reason, suggestions, None)
}

pub(super) fn review_earlier(
    reason: ReviewReason,
    mut suggestions: Vec<Suggestion>,
    earlier_payment: Option<i64>,
) -> Decision {
    // Best first; equal scores in the order found (memo order), which is deterministic.
    suggestions.retain(|s| !s.allocations.is_empty());
    let mut ranked: Vec<(usize, Suggestion)> = suggestions.into_iter().enumerate().collect();
    // Rule 9: the evidence (a month written outweighs an amount, which outweighs the oldest
    // open), then the amount's fit, then the order found (each student's oldest open first).
    // Keys computed once: a much-shared name gives hundreds of candidates.
    ranked.sort_by_cached_key(|(i, s)| (std::cmp::Reverse(s.score()), s.gap, *i));
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

pub(super) fn auto(
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
