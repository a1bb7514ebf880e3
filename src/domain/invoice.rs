//! Invoice rules: turning requested lines into the lines an invoice is issued with.
//!
//! Reductions and exemptions (100 %, 70 %, 50 % for a policy group) are lines of their own with a
//! negative amount: percent × the reduced charge, rounded once to whole đồng half away from zero.

use super::catalog::FeeItem;
use super::money::{percent_of, Vnd};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Charge,
    Reduction,
}

super::catalog::text_enum!(LineKind { Charge => "charge", Reduction => "reduction" });

/// A requested line, after parsing, with its catalog item resolved.
#[derive(Debug, Clone)]
pub enum LineRequest {
    Charge {
        item: FeeItem,
        amount: Vnd,
        description: Option<String>,
        cap_override_reason: Option<String>,
        /// How the notice presents the line; defaults to the item's own status. A voluntary
        /// item billed as mandatory is accepted but shows in the auditors' report.
        billed_as_mandatory: Option<bool>,
    },
    Reduction {
        /// The code of the charged item this reduction applies to, in the same invoice.
        item_code: String,
        percent: Decimal,
        policy_group: String,
        evidence_ref: String,
    },
}

/// A line as it is issued.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftLine {
    pub line_no: i64,
    pub kind: LineKind,
    pub fee_item_id: i64,
    pub item_code: String,
    pub description: String,
    /// Signed: reductions are negative.
    pub amount: Vnd,
    pub cap_per_period: Option<Vnd>,
    pub above_cap: bool,
    pub cap_override_reason: Option<String>,
    pub reduction_percent: Option<Decimal>,
    pub policy_group: Option<String>,
    pub evidence_ref: Option<String>,
    pub reduces_line_no: Option<i64>,
    pub billed_as_mandatory: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub lines: Vec<DraftLine>,
    pub total: Vnd,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("an invoice needs at least one charge line")]
    NoCharge,
    #[error("an invoice has at most {0} lines")]
    TooManyLines(usize),
    #[error("line {line}: a charge must be more than 0 đồng")]
    NotPositive { line: usize },
    #[error("line {line}: item {item} is charged twice in one invoice")]
    DuplicateItem { line: usize, item: String },
    #[error("line {line}: {amount} is above the cap of {cap} per period for item {item}; give cap_override_reason to bill it anyway")]
    AboveCap {
        line: usize,
        item: String,
        amount: String,
        cap: String,
    },
    #[error(
        "line {line}: a reduction percent is more than 0 and at most 100, with at most 2 decimals"
    )]
    BadPercent { line: usize },
    #[error("line {line}: a reduction needs a policy group and an evidence reference")]
    MissingEvidence { line: usize },
    #[error(
        "line {line}: the reduction applies to item {item}, which this invoice does not charge"
    )]
    NothingToReduce { line: usize, item: String },
    #[error("line {line}: reductions of item {item} add up to more than 100 %")]
    OverReduced { line: usize, item: String },
    #[error("line {line}: {field} is longer than {max} characters")]
    TooLong {
        line: usize,
        field: &'static str,
        max: usize,
    },
}

pub const MAX_LINES: usize = 100;
pub const MAX_TEXT: usize = 500;

fn clean(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

fn check_len(line: usize, field: &'static str, text: &Option<String>) -> Result<(), LineError> {
    match text {
        Some(t) if t.chars().count() > MAX_TEXT => Err(LineError::TooLong {
            line,
            field,
            max: MAX_TEXT,
        }),
        _ => Ok(()),
    }
}

/// Builds the issued lines and total from requested lines (numbered from 1 in request order).
pub fn draft(requests: Vec<LineRequest>) -> Result<Draft, LineError> {
    if requests.len() > MAX_LINES {
        return Err(LineError::TooManyLines(MAX_LINES));
    }
    let mut lines: Vec<DraftLine> = Vec::with_capacity(requests.len());
    let mut reductions = Vec::new();
    for (i, req) in requests.into_iter().enumerate() {
        let line = i + 1;
        match req {
            LineRequest::Charge {
                item,
                amount,
                description,
                cap_override_reason,
                billed_as_mandatory,
            } => {
                let description = clean(description);
                let cap_override_reason = clean(cap_override_reason);
                check_len(line, "description", &description)?;
                check_len(line, "cap_override_reason", &cap_override_reason)?;
                if amount.dong() <= 0 {
                    return Err(LineError::NotPositive { line });
                }
                if lines
                    .iter()
                    .any(|l| l.kind == LineKind::Charge && l.fee_item_id == item.id)
                {
                    return Err(LineError::DuplicateItem {
                        line,
                        item: item.code,
                    });
                }
                let above_cap = item.cap_per_period.is_some_and(|cap| amount > cap);
                if above_cap && cap_override_reason.is_none() {
                    return Err(LineError::AboveCap {
                        line,
                        item: item.code,
                        amount: amount.formatted(),
                        cap: item.cap_per_period.unwrap_or_default().formatted(),
                    });
                }
                lines.push(DraftLine {
                    line_no: line as i64,
                    kind: LineKind::Charge,
                    fee_item_id: item.id,
                    description: description.unwrap_or_else(|| item.name.clone()),
                    item_code: item.code,
                    amount,
                    cap_per_period: item.cap_per_period,
                    above_cap,
                    // Kept only where it was needed, so "has a reason" always means "overrode a cap".
                    cap_override_reason: cap_override_reason.filter(|_| above_cap),
                    reduction_percent: None,
                    policy_group: None,
                    evidence_ref: None,
                    reduces_line_no: None,
                    billed_as_mandatory: billed_as_mandatory.unwrap_or(item.mandatory),
                });
            }
            LineRequest::Reduction {
                item_code,
                percent,
                policy_group,
                evidence_ref,
            } => {
                reductions.push((line, item_code, percent, policy_group, evidence_ref));
            }
        }
    }
    if lines.is_empty() {
        return Err(LineError::NoCharge);
    }
    for (line, item_code, percent, policy_group, evidence_ref) in reductions {
        if percent <= Decimal::ZERO
            || percent > Decimal::ONE_HUNDRED
            || percent.normalize().scale() > 2
        {
            return Err(LineError::BadPercent { line });
        }
        let (policy_group, evidence_ref) =
            match (clean(Some(policy_group)), clean(Some(evidence_ref))) {
                (Some(p), Some(e)) => (Some(p), Some(e)),
                _ => return Err(LineError::MissingEvidence { line }),
            };
        check_len(line, "policy_group", &policy_group)?;
        check_len(line, "evidence_ref", &evidence_ref)?;
        let Some(target) = lines
            .iter()
            .find(|l| l.kind == LineKind::Charge && l.item_code.eq_ignore_ascii_case(&item_code))
            .cloned()
        else {
            return Err(LineError::NothingToReduce {
                line,
                item: item_code,
            });
        };
        let already: Decimal = lines
            .iter()
            .filter(|l| l.reduces_line_no == Some(target.line_no))
            .filter_map(|l| l.reduction_percent)
            .sum();
        if already + percent > Decimal::ONE_HUNDRED {
            return Err(LineError::OverReduced {
                line,
                item: target.item_code,
            });
        }
        // Percent and amount are both bounded, so this cannot fail.
        let cut = percent_of(target.amount, percent).map_err(|_| LineError::BadPercent { line })?;
        lines.push(DraftLine {
            line_no: line as i64,
            kind: LineKind::Reduction,
            fee_item_id: target.fee_item_id,
            item_code: target.item_code.clone(),
            description: format!(
                "Miễn giảm {}% {} ({})",
                percent.normalize(),
                target.description,
                policy_group.as_deref().unwrap_or_default()
            ),
            amount: -cut,
            cap_per_period: None,
            above_cap: false,
            cap_override_reason: None,
            reduction_percent: Some(percent.normalize()),
            policy_group,
            evidence_ref,
            reduces_line_no: Some(target.line_no),
            billed_as_mandatory: target.billed_as_mandatory,
        });
    }
    lines.sort_by_key(|l| l.line_no);
    let total = lines.iter().map(|l| l.amount.dong()).sum::<i64>();
    // Charges are bounded by MAX_DONG each and at most 100 lines, so this stays in range.
    let total = Vnd::new(total).map_err(|_| LineError::TooManyLines(MAX_LINES))?;
    Ok(Draft { lines, total })
}

/// A fingerprint of what an invoice bills, so that a second request for the same external
/// reference can be told apart: the same content is a retry, different content is a conflict.
pub fn content_digest(student_code: &str, period: &str, due_date: &str, draft: &Draft) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [student_code, period, due_date] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    for l in &draft.lines {
        let fields = [
            l.kind.as_str().to_string(),
            l.item_code.clone(),
            l.description.clone(),
            l.amount.dong().to_string(),
            l.reduction_percent
                .map(|p| p.to_string())
                .unwrap_or_default(),
            l.policy_group.clone().unwrap_or_default(),
            l.evidence_ref.clone().unwrap_or_default(),
            l.cap_override_reason.clone().unwrap_or_default(),
            l.billed_as_mandatory.to_string(),
        ];
        for f in fields {
            h.update(f.as_bytes());
            h.update([0x1f]);
        }
        h.update([0x1e]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{Cadence, Category};
    use proptest::prelude::*;
    use std::str::FromStr;

    fn item(id: i64, code: &str, cap: Option<i64>) -> FeeItem {
        FeeItem {
            id,
            code: code.into(),
            name: format!("Khoản {code}"),
            category: Category::Meals,
            mandatory: false,
            cadence: Cadence::Monthly,
            cap_per_period: cap.map(|c| Vnd::new(c).unwrap()),
        }
    }

    fn charge(item: FeeItem, amount: i64) -> LineRequest {
        LineRequest::Charge {
            item,
            amount: Vnd::new(amount).unwrap(),
            description: None,
            cap_override_reason: None,
            billed_as_mandatory: None,
        }
    }

    fn reduce(code: &str, pct: &str) -> LineRequest {
        LineRequest::Reduction {
            item_code: code.into(),
            percent: Decimal::from_str(pct).unwrap(),
            policy_group: "Hộ nghèo".into(),
            evidence_ref: "QĐ 123/QĐ-UBND".into(),
        }
    }

    #[test]
    fn reductions_are_lines_of_their_own() {
        let d = draft(vec![
            charge(item(1, "MEALS", Some(1_000_000)), 935_000),
            charge(item(2, "BHYT", None), 884_520),
            reduce("MEALS", "70"),
            reduce("BHYT", "50"),
        ])
        .unwrap();
        assert_eq!(d.lines.len(), 4);
        assert_eq!(d.lines[2].amount.dong(), -654_500);
        assert_eq!(d.lines[2].reduces_line_no, Some(1));
        assert_eq!(d.lines[3].amount.dong(), -442_260);
        assert_eq!(d.total.dong(), 935_000 + 884_520 - 654_500 - 442_260);
    }

    #[test]
    fn full_exemption_makes_a_zero_line_total() {
        let d = draft(vec![
            charge(item(1, "MEALS", None), 935_001),
            reduce("MEALS", "100"),
        ])
        .unwrap();
        assert_eq!(d.total, Vnd::ZERO);
    }

    #[test]
    fn caps_refuse_unless_overridden_with_a_reason() {
        let over = draft(vec![charge(item(1, "MEALS", Some(900_000)), 935_000)]);
        assert!(matches!(over, Err(LineError::AboveCap { line: 1, .. })));
        let with_reason = draft(vec![LineRequest::Charge {
            item: item(1, "MEALS", Some(900_000)),
            amount: Vnd::new(935_000).unwrap(),
            description: None,
            cap_override_reason: Some("  Suất ăn bổ sung theo QĐ 45 ".into()),
            billed_as_mandatory: None,
        }])
        .unwrap();
        assert!(with_reason.lines[0].above_cap);
        assert_eq!(
            with_reason.lines[0].cap_override_reason.as_deref(),
            Some("Suất ăn bổ sung theo QĐ 45")
        );
        // At the cap is not above it.
        assert!(
            !draft(vec![charge(item(1, "MEALS", Some(900_000)), 900_000)])
                .unwrap()
                .lines[0]
                .above_cap
        );
    }

    #[test]
    fn rejects_bad_lines() {
        let cases: Vec<(Vec<LineRequest>, LineError)> = vec![
            (vec![], LineError::NoCharge),
            (
                vec![charge(item(1, "A", None), 0)],
                LineError::NotPositive { line: 1 },
            ),
            (
                vec![charge(item(1, "A", None), 5), charge(item(1, "A", None), 6)],
                LineError::DuplicateItem {
                    line: 2,
                    item: "A".into(),
                },
            ),
            (
                vec![charge(item(1, "A", None), 5), reduce("A", "0")],
                LineError::BadPercent { line: 2 },
            ),
            (
                vec![charge(item(1, "A", None), 5), reduce("A", "100.5")],
                LineError::BadPercent { line: 2 },
            ),
            (
                vec![charge(item(1, "A", None), 5), reduce("A", "33.333")],
                LineError::BadPercent { line: 2 },
            ),
            (
                vec![charge(item(1, "A", None), 5), reduce("B", "50")],
                LineError::NothingToReduce {
                    line: 2,
                    item: "B".into(),
                },
            ),
            (
                vec![
                    charge(item(1, "A", None), 5),
                    reduce("A", "70"),
                    reduce("A", "50"),
                ],
                LineError::OverReduced {
                    line: 3,
                    item: "A".into(),
                },
            ),
        ];
        for (requests, want) in cases {
            assert_eq!(draft(requests), Err(want.clone()), "{want}");
        }
    }

    proptest! {
        #[test]
        fn total_is_the_sum_of_lines_and_never_negative(
            amounts in proptest::collection::vec(1i64..=50_000_000, 1..8),
            pcts in proptest::collection::vec(1u32..=100, 0..8),
        ) {
            let mut reqs: Vec<LineRequest> = amounts.iter().enumerate()
                .map(|(i, a)| charge(item(i as i64 + 1, &format!("I{i}"), None), *a)).collect();
            for (i, pct) in pcts.iter().enumerate().take(amounts.len()) {
                reqs.push(reduce(&format!("I{i}"), &pct.to_string()));
            }
            let d = draft(reqs).unwrap();
            prop_assert_eq!(d.total.dong(), d.lines.iter().map(|l| l.amount.dong()).sum::<i64>());
            prop_assert!(d.total.dong() >= 0);
        }
    }
}
