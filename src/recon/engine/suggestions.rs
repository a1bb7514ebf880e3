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
