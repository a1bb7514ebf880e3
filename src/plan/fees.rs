//! The fee lines a cashless payment carries: the schedule in force predicts, the sender's report
//! (when it makes one) is booked as reported, and a difference is flagged, never absorbed.

use super::intake::{NewPayment, Refusal};
use crate::domain::fee::{quote, Bearer, Channel, PartialTerms};
use crate::domain::ledger::PLAIN_TRANSFER;
use crate::domain::money::Vnd;

/// A fee schedule row: published terms (no school) or a school's agreement.
#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub id: i64,
    pub school_id: Option<i64>,
    pub provider: String,
    pub channel: String,
    pub effective_from: String,
    pub effective_to: Option<String>,
    pub terms: PartialTerms,
}

/// The terms in force for a payment on `date`, if any: the school's agreement over the
/// published terms.
pub fn terms_from(
    rows: &[ScheduleRow],
    school_id: i64,
    provider: &str,
    channel: Channel,
    date: &str,
) -> Option<(i64, crate::domain::fee::FeeTerms)> {
    let mut published = None;
    let mut agreement = None;
    for r in rows.iter().filter(|r| {
        r.provider == provider
            && r.channel == channel.as_str()
            && r.school_id.map_or(true, |s| s == school_id)
            && r.effective_from.as_str() <= date
            && r.effective_to.as_deref().map_or(true, |to| to > date)
    }) {
        if r.school_id.is_some() {
            agreement = Some((r.id, &r.terms));
        } else {
            published = Some((r.id, &r.terms));
        }
    }
    match (agreement, published) {
        (Some((id, a)), p) => a.over(p.map(|(_, t)| t)).map(|t| (id, t)),
        (None, Some((id, p))) => p.over(None).map(|t| (id, t)),
        (None, None) => None,
    }
}

/// A fee line to write.
#[derive(Debug, Clone)]
pub struct FeeRow {
    pub charged_by: String,
    pub kind: &'static str,
    pub basis: String,
    pub amount: Vnd,
    pub borne_by: Bearer,
    pub predicted: Option<Vnd>,
    pub reported: Option<Vnd>,
    pub schedule_id: Option<i64>,
    pub needs_review: bool,
}

/// The fee lines of a non-cash payment: the schedule's prediction, and the sender's report when
/// there is one (booked as reported; a difference is flagged, never silently absorbed).
pub fn fee_rows(
    p: &NewPayment,
    terms: Option<(i64, crate::domain::fee::FeeTerms)>,
    date: &str,
) -> Result<Vec<FeeRow>, Refusal> {
    if p.channel == Channel::Cash {
        return Ok(vec![]);
    }
    // A plain transfer straight into the school's own account passes no intermediary.
    if p.channel == Channel::BankTransfer
        && p.provider == PLAIN_TRANSFER
        && terms.is_none()
        && p.reported_fee.is_none()
    {
        return Ok(vec![]);
    }
    let predicted = match &terms {
        Some((_, t)) => Some(
            quote(p.amount, t).map_err(|e| Refusal::invalid("invalid_amount", e.to_string()))?,
        ),
        None => None,
    };
    let row = match (predicted, p.reported_fee, terms) {
        (Some(q), reported, Some((id, t))) => {
            // The sender may say who paid the fee (ZaloPay's user fee is the payer's); that wins,
            // and a difference from the agreed bearer is flagged like a different amount.
            let bearer = p
                .reported_fee_bearer
                .filter(|_| reported.is_some())
                .unwrap_or(t.bearer);
            let mismatch = reported.is_some_and(|r| r != q.amount) || bearer != t.bearer;
            let basis = match reported {
                Some(r) if mismatch => format!(
                    "reported by {}: {r}; schedule predicts {} ({})",
                    p.provider, q.amount, q.basis
                ),
                Some(_) => format!("{} (as reported by {})", q.basis, p.provider),
                None => q.basis,
            };
            FeeRow {
                charged_by: p.provider.clone(),
                kind: "transaction",
                basis,
                amount: reported.unwrap_or(q.amount),
                borne_by: bearer,
                predicted: Some(q.amount),
                reported,
                schedule_id: Some(id),
                needs_review: mismatch,
            }
        }
        (_, reported, _) => FeeRow {
            charged_by: p.provider.clone(),
            kind: "transaction",
            basis: match reported {
                Some(r) => format!(
                    "reported by {}: {r}; no fee schedule of {} for {} in force on {date}",
                    p.provider,
                    p.provider,
                    p.channel.as_str()
                ),
                None => format!(
                    "no fee schedule of {} for {} in force on {date}; fee unknown",
                    p.provider,
                    p.channel.as_str()
                ),
            },
            amount: reported.unwrap_or(Vnd::ZERO),
            // Without terms nobody agreed to bear it: the sender's word, else the school's books
            // carry it until reviewed.
            borne_by: p.reported_fee_bearer.unwrap_or(Bearer::School),
            predicted: None,
            reported,
            schedule_id: None,
            needs_review: true,
        },
    };
    Ok(vec![row])
}
