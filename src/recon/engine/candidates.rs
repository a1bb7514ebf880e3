//! Deciding: the context of one transfer, and the invoices of a student it may pay (those the
//! months written name, those still usable).

use super::{Evidence, Index};
use crate::domain::money::Vnd;
use crate::recon::period::Stated;

pub(super) struct Ctx<'a> {
    pub(super) index: &'a Index,
    pub(super) amount: Vnd,
    pub(super) dismissed: &'a dyn Fn(i64) -> bool,
    pub(super) classes: Vec<String>,
    pub(super) stated: Stated,
}

/// What the months written name among one student's invoices.
pub(super) struct Named {
    /// The invoices of those months, oldest first, whatever their state.
    pub(super) invoices: Vec<usize>,
    /// Months written that name no invoice of the student (none issued, or it was voided).
    pub(super) missing: usize,
}

impl Ctx<'_> {
    pub(super) fn usable(&self, i: usize) -> bool {
        let inv = &self.index.invoices[i];
        inv.is_open() && !(self.dismissed)(inv.id)
    }

    /// Open invoices of a student, none dismissed; `None` if any is dismissed.
    pub(super) fn all_usable(&self, s: usize) -> Option<Vec<usize>> {
        let all: Vec<usize> = self.index.open_invoices(s).collect();
        all.iter().all(|&i| self.usable(i)).then_some(all)
    }

    pub(super) fn class_evidence(&self, s: usize) -> Option<Evidence> {
        if self.classes.is_empty() {
            None
        } else if self.classes.contains(&self.index.students[s].class) {
            Some(Evidence::ClassMatches)
        } else {
            Some(Evidence::ClassDiffers)
        }
    }

    pub(super) fn amount_evidence(&self, total: i64) -> Evidence {
        match self.amount.dong().cmp(&total) {
            std::cmp::Ordering::Equal => Evidence::AmountEqualsBalance,
            std::cmp::Ordering::Less => Evidence::AmountBelowBalance,
            std::cmp::Ordering::Greater => Evidence::AmountAboveBalance,
        }
    }

    pub(super) fn owed(&self, invoices: &[usize]) -> i64 {
        invoices
            .iter()
            .map(|&i| self.index.invoices[i].open.dong())
            .sum()
    }

    /// The student's invoices the months written name. A bare month is the latest invoice of
    /// that month (the school year the student is in); a voided one names nothing.
    pub(super) fn named(&self, s: usize) -> Named {
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
    pub(super) fn claimed(&self, invoices: &[usize]) -> Option<Option<i64>> {
        invoices
            .iter()
            .find_map(|&i| self.index.claims.get(&self.index.invoices[i].id).copied())
    }

    pub(super) fn periods(&self, invoices: &[usize]) -> String {
        invoices
            .iter()
            .map(|&i| self.index.invoices[i].period.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// "2025-11, read from \"T11\"".
    pub(super) fn read_from(&self, invoices: &[usize]) -> String {
        format!(
            "{}, read from \"{}\"",
            self.periods(invoices),
            self.stated.words()
        )
    }
}

impl Ctx<'_> {
    /// Allocates the amount over invoices in order, each up to its balance.
    pub(super) fn fill(&self, invoices: &[usize]) -> Vec<(i64, Vnd)> {
        self.fill_with(self.amount, invoices)
    }

    /// [`Ctx::fill`] with `amount` instead of the whole amount (a sibling's share).
    pub(super) fn fill_with(&self, amount: Vnd, invoices: &[usize]) -> Vec<(i64, Vnd)> {
        let mut left = amount;
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
}
