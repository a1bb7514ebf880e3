//! One student the memo names: `period_decides`, `amount_decides` and `given_name_and_class`.

use super::candidates::Ctx;
use super::index::word_key;
use super::reading::People;
use super::suggestions::{auto, review, review_earlier};
use super::{Decision, Evidence, ReviewReason, Rule, Suggestion};

impl Ctx<'_> {
    /// Rules 2 and 3 for one student the memo names beyond doubt: the months written decide
    /// between the student's invoices; without them, the amount may.
    pub(super) fn decide_student(
        &self,
        s: usize,
        mut evidence: Vec<Evidence>,
        suggestions: &dyn Fn() -> Vec<Suggestion>,
    ) -> Decision {
        let index = self.index;
        let Some(open) = self.all_usable(s) else {
            return review(ReviewReason::Dismissed, suggestions());
        };
        let amount = self.amount.dong();
        if !self.stated.is_empty() {
            let named = self.named(s);
            if named.missing > 0 || named.invoices.is_empty() {
                return review(ReviewReason::PeriodNotInvoiced, suggestions());
            }
            let paid: Vec<usize> = named
                .invoices
                .iter()
                .copied()
                .filter(|&i| index.invoices[i].is_paid())
                .collect();
            if !paid.is_empty() {
                let earlier = paid.iter().find_map(|&i| index.invoices[i].paid_by);
                return review_earlier(ReviewReason::PeriodPaid, suggestions(), earlier);
            }
            if let Some(claimant) = self.claimed(&named.invoices) {
                return review_earlier(ReviewReason::PeriodInReview, suggestions(), claimant);
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
                return review(ReviewReason::PeriodAmountConflict, suggestions());
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
            return review_earlier(ReviewReason::AmountMismatch, suggestions(), earlier);
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
            [] => review(ReviewReason::AmountMismatch, suggestions()),
            _ => review(ReviewReason::EqualBalances, suggestions()),
        }
    }
}

/// Rule 8: no full name, but a given name (or middle and given name) that only one student of
/// the class written carries, with the amount confirming what the months written (or the
/// student's open invoices) owe.
pub(super) fn given_name_and_class(
    ctx: &Ctx,
    people: &People,
    suggestions: &[Suggestion],
) -> Option<Decision> {
    let index = ctx.index;
    if ctx.classes.is_empty() || people.maybe_cut {
        return None;
    }
    // A middle and given name written together ("THANH KHOA") is read as that pair: the given
    // names inside it ("KHOA" of another pupil, "THANH" as someone's given name) are not
    // further candidates. Without a pair, the given names.
    let mut candidates: Vec<(usize, Evidence)> = Vec::new();
    for wanted in [Evidence::PartialName, Evidence::GivenNameOnly] {
        for &(s, e) in &people.weak {
            if e == wanted && !candidates.iter().any(|(c, _)| *c == s) {
                candidates.push((s, e));
            }
        }
        if !candidates.is_empty() {
            break;
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
    match ctx.decide_student(*s, evidence, &|| suggestions.to_vec()) {
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
