//! Siblings named together (`siblings_by_name`), and the readings of several names as siblings
//! for suggestions.

use super::candidates::Ctx;
use super::reading::Mention;
use super::suggestions::{auto, review, review_earlier, suggestion_with};
use super::{Decision, Evidence, Incoming, Index, ReviewReason, Rule, Suggestion};
use crate::domain::money::Vnd;
use crate::recon::amounts;
use crate::recon::memo::Memo;
use std::ops::Range;

/// What a memo naming siblings says of each one's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shares {
    /// No share written beside the names (or not one beside each).
    None,
    /// One share beside each child's name, in the order of the students, adding up to the
    /// amount.
    Stated(Vec<Vnd>),
    /// One share beside each child's name, but they do not add up to the amount (or two
    /// readings of them do and disagree).
    Wrong,
}

/// Rule `siblings_by_name`, shares: the amount written beside each child's name (see
/// [`amounts`]), all after the names ("An 1tr5 Binh 1tr2") or all before them ("1tr5 An,
/// 1tr2 Binh"): exactly one amount between a name and the next (or the memo's end), or
/// between the name before it (or the memo's start) and the name. An amount in the bank's
/// wrapping, inside a name, or equal to the whole amount (a total written) is not a share.
/// Each student must be named once. `named` is each mention with the student it names.
pub(super) fn shares_written(
    memo: &Memo,
    incoming: &Incoming,
    named: &[(usize, &Mention)],
    students: &[usize],
) -> Shares {
    let n = memo.tokens.len();
    // Where each mention stands, in words of the folded memo.
    let mut places: Vec<(usize, Range<usize>)> = Vec::with_capacity(named.len());
    for &(s, m) in named {
        let span = &m.span;
        let folded = if span.start >= n {
            // A student code: its span counts folded words, past the tokens.
            span.start - n..span.end - n
        } else {
            let (Some(&a), Some(&b)) = (memo.at.get(span.start), memo.at.get(span.end - 1)) else {
                return Shares::None;
            };
            a..b + 1
        };
        if places.iter().any(|(o, _)| *o == s) {
            return Shares::None;
        }
        places.push((s, folded));
    }
    if places.len() != students.len() || places.len() < 2 {
        return Shares::None;
    }
    places.sort_by_key(|(_, r)| (r.start, r.end));
    if places.windows(2).any(|w| w[0].1.end > w[1].1.start) {
        return Shares::None;
    }
    let inside =
        |r: &Range<usize>, outer: &Range<usize>| r.start < outer.end && outer.start < r.end;
    let written: Vec<amounts::Written> = amounts::read(incoming.memo)
        .into_iter()
        .filter(|w| {
            w.amount != incoming.amount
                && !memo.wrapping.iter().any(|r| inside(&w.words, r))
                && !places.iter().any(|(_, r)| inside(&w.words, r))
        })
        .collect();
    let between = |lo: usize, hi: usize| -> Vec<Vnd> {
        written
            .iter()
            .filter(|w| w.words.start >= lo && w.words.end <= hi)
            .map(|w| w.amount)
            .collect()
    };
    let k = places.len();
    let after: Vec<Vec<Vnd>> = (0..k)
        .map(|j| {
            let hi = places.get(j + 1).map_or(usize::MAX, |(_, r)| r.start);
            between(places[j].1.end, hi)
        })
        .collect();
    let before: Vec<Vec<Vnd>> = (0..k)
        .map(|j| {
            let lo = j.checked_sub(1).map_or(0, |p| places[p].1.end);
            between(lo, places[j].1.start)
        })
        .collect();
    // One share per child, in the order of `students`.
    let pattern = |gaps: &[Vec<Vnd>]| -> Option<Vec<Vnd>> {
        if gaps.iter().any(|g| g.len() != 1) {
            return None;
        }
        students
            .iter()
            .map(|s| {
                let j = places.iter().position(|(o, _)| o == s)?;
                Some(gaps[j][0])
            })
            .collect()
    };
    let readings: Vec<Vec<Vnd>> = [pattern(&after), pattern(&before)]
        .into_iter()
        .flatten()
        .collect();
    if readings.is_empty() {
        return Shares::None;
    }
    let adds_up =
        |shares: &Vec<Vnd>| shares.iter().map(|v| v.dong()).sum::<i64>() == incoming.amount.dong();
    let mut right: Vec<Vec<Vnd>> = readings.into_iter().filter(adds_up).collect();
    right.dedup();
    match right.len() {
        1 => Shares::Stated(right.remove(0)),
        _ => Shares::Wrong,
    }
}

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

    /// Rule 4: siblings named together, for the months written or everything open; or, when
    /// each child's share is written beside its name, each share to that child.
    pub(super) fn decide_siblings(
        &self,
        students: &[usize],
        shares: &Shares,
        mut evidence: Vec<Evidence>,
        suggestions: &dyn Fn() -> Vec<Suggestion>,
    ) -> Decision {
        let index = self.index;
        let mut invoices: Vec<usize> = Vec::new();
        // Each child's invoices: those of the months written, or all open.
        let mut each: Vec<Vec<usize>> = Vec::with_capacity(students.len());
        for &s in students {
            let Some(open) = self.all_usable(s) else {
                return review(ReviewReason::Dismissed, suggestions());
            };
            if self.stated.is_empty() {
                invoices.extend(open.iter().copied());
                each.push(open);
                continue;
            }
            let named = self.named(s);
            if named.missing > 0 || named.invoices.is_empty() {
                return review(ReviewReason::PeriodNotInvoiced, suggestions());
            }
            if let Some(&i) = named
                .invoices
                .iter()
                .find(|&&i| index.invoices[i].is_paid())
            {
                let earlier = index.invoices[i].paid_by;
                return review_earlier(ReviewReason::PeriodPaid, suggestions(), earlier);
            }
            if let Some(claimant) = self.claimed(&named.invoices) {
                return review_earlier(ReviewReason::PeriodInReview, suggestions(), claimant);
            }
            invoices.extend(named.invoices.iter().copied());
            each.push(named.invoices);
        }
        match shares {
            Shares::Stated(shares) => {
                return self.decide_shares(students, &each, shares, evidence, suggestions)
            }
            Shares::Wrong => return review(ReviewReason::AmountMismatch, suggestions()),
            Shares::None => {}
        }
        if invoices.is_empty() || self.amount.dong() != self.owed(&invoices) {
            return review(ReviewReason::AmountMismatch, suggestions());
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

    /// Rule 4 with the shares written: each child's share goes to that child's invoices of
    /// the months written (oldest first), or, with no month written, to its only open invoice,
    /// to all its open invoices when the share is their total, or to the one whose balance is
    /// the share. A share below what those invoices owe is a partial payment, unless it is
    /// exactly what another open invoice of the child (or all of them) owes: then the month
    /// and the share disagree. A share above it, a child with no open invoice, or a share that
    /// no invoice tells apart is a review.
    fn decide_shares(
        &self,
        students: &[usize],
        each: &[Vec<usize>],
        shares: &[Vnd],
        mut evidence: Vec<Evidence>,
        suggestions: &dyn Fn() -> Vec<Suggestion>,
    ) -> Decision {
        let index = self.index;
        let mut allocations: Vec<(i64, Vnd)> = Vec::new();
        let mut all: Vec<usize> = Vec::new();
        let mut exact = true;
        for ((&s, targets), &share) in students.iter().zip(each).zip(shares) {
            let open: Vec<usize> = index.open_invoices(s).collect();
            let mut targets = targets.clone();
            if self.stated.is_empty() && targets.len() > 1 && share.dong() != self.owed(&targets) {
                let fits: Vec<usize> = targets
                    .iter()
                    .copied()
                    .filter(|&i| index.invoices[i].open == share)
                    .collect();
                match fits.as_slice() {
                    [_] => targets = fits,
                    [] => return review(ReviewReason::AmountMismatch, suggestions()),
                    _ => return review(ReviewReason::EqualBalances, suggestions()),
                }
            }
            let owed = self.owed(&targets);
            if targets.is_empty() || share.dong() > owed {
                return review(ReviewReason::AmountMismatch, suggestions());
            }
            if share.dong() < owed {
                exact = false;
                let others: Vec<usize> = open
                    .iter()
                    .copied()
                    .filter(|i| !targets.contains(i))
                    .collect();
                let contradicts = others.iter().any(|&i| index.invoices[i].open == share)
                    || (!others.is_empty() && share.dong() == self.owed(&open));
                if contradicts {
                    return review(ReviewReason::PeriodAmountConflict, suggestions());
                }
            }
            allocations.extend(self.fill_with(share, &targets));
            all.extend(targets);
        }
        evidence.insert(0, Evidence::SiblingsNamed);
        let words = if self.stated.is_empty() {
            format!("{}, the shares written", self.periods(&all))
        } else {
            evidence.push(Evidence::PeriodStated);
            self.read_from(&all)
        };
        evidence.push(Evidence::SharesStated);
        if exact {
            evidence.push(Evidence::AmountEqualsSiblingsTotal);
        }
        auto(Rule::SiblingsByName, allocations, evidence, Some(words))
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
