//! Siblings named together (`siblings_by_name`), and the readings of several names as siblings
//! for suggestions.

use super::candidates::Ctx;
use super::reading::Mention;
use super::suggestions::{auto, review, review_earlier, suggestion_with};
use super::{Decision, Evidence, Index, ReviewReason, Rule, Suggestion};

impl Ctx<'_> {
    /// Several students at once (siblings): the months written of each, or all their open
    /// invoices, mention order.
    pub(super) fn students_suggestion(
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

    /// Rule 4: siblings named together, for the months written or everything open.
    pub(super) fn decide_siblings(
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

/// The readings of several names as siblings: the students named, when they are one family;
/// else, per family with a pupil under every name, those pupils (memo order).
pub(super) fn sibling_readings(
    index: &Index,
    mentions: &[Mention],
    mentioned: &[usize],
) -> Vec<Vec<usize>> {
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
