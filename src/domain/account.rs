//! A school's receiving accounts under four eyes: where parents are told to send money is never
//! one person's decision. An account is proposed (pending), then approved by a second person, or
//! rejected; an approved one is later retired. Nothing goes back, and nothing is edited: a
//! change is a new proposal that replaces the old account when it is approved.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Proposed; not offered to parents until a second person approves it.
    Pending,
    /// In force: offered to parents, pulled, its statements imported.
    Approved,
    /// Refused before it was ever in force.
    Rejected,
    /// Was in force; no longer offered (replaced, closed).
    Retired,
}

super::catalog::text_enum!(AccountState {
    Pending => "pending", Approved => "approved", Rejected => "rejected", Retired => "retired",
});

impl AccountState {
    /// Parents are told to pay only into an account a second person approved.
    pub fn offered_to_parents(self) -> bool {
        self == AccountState::Approved
    }

    /// A bank statement is the bank's record of money that arrived: taken for an account in
    /// force or once in force (transfers made from an old QR still land there), never for one
    /// nobody approved.
    pub fn takes_statements(self) -> bool {
        matches!(self, AccountState::Approved | AccountState::Retired)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Approve,
    Reject,
    Retire,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Approve => "approve",
            Step::Reject => "reject",
            Step::Retire => "retire",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("the account was proposed by this caller; a second person approves it")]
    SelfApproval,
    #[error("the account is {}; only a pending account is approved or rejected", .0.as_str())]
    NotPending(AccountState),
    #[error("the account is {}; only an approved account is retired", .0.as_str())]
    NotApproved(AccountState),
}

/// The state `step` moves an account to, when `actor` may take it. Roles and scope are checked
/// before this (403, 404); what is left depends on the account. The proposer may reject (withdraw)
/// their own proposal and anyone who may propose may retire: both only take a destination away.
pub fn next_state(
    step: Step,
    state: AccountState,
    proposed_by: &str,
    actor: &str,
) -> Result<AccountState, StepError> {
    match step {
        Step::Approve | Step::Reject if state != AccountState::Pending => {
            Err(StepError::NotPending(state))
        }
        Step::Approve if proposed_by == actor => Err(StepError::SelfApproval),
        Step::Approve => Ok(AccountState::Approved),
        Step::Reject => Ok(AccountState::Rejected),
        Step::Retire if state != AccountState::Approved => Err(StepError::NotApproved(state)),
        Step::Retire => Ok(AccountState::Retired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountState::*;

    const ME: &str = "token:7:accountant";
    const OTHER: &str = "token:8:accountant";

    #[test]
    fn every_step_from_every_state() {
        let cases: &[(Step, AccountState, &str, Result<AccountState, StepError>)] = &[
            (Step::Approve, Pending, OTHER, Ok(Approved)),
            (Step::Approve, Pending, ME, Err(StepError::SelfApproval)),
            (
                Step::Approve,
                Approved,
                OTHER,
                Err(StepError::NotPending(Approved)),
            ),
            (
                Step::Approve,
                Approved,
                ME,
                Err(StepError::NotPending(Approved)),
            ),
            (
                Step::Approve,
                Rejected,
                OTHER,
                Err(StepError::NotPending(Rejected)),
            ),
            (
                Step::Approve,
                Retired,
                OTHER,
                Err(StepError::NotPending(Retired)),
            ),
            (Step::Reject, Pending, OTHER, Ok(Rejected)),
            (Step::Reject, Pending, ME, Ok(Rejected)),
            (
                Step::Reject,
                Approved,
                OTHER,
                Err(StepError::NotPending(Approved)),
            ),
            (
                Step::Reject,
                Rejected,
                OTHER,
                Err(StepError::NotPending(Rejected)),
            ),
            (Step::Retire, Approved, ME, Ok(Retired)),
            (Step::Retire, Approved, OTHER, Ok(Retired)),
            (
                Step::Retire,
                Pending,
                OTHER,
                Err(StepError::NotApproved(Pending)),
            ),
            (
                Step::Retire,
                Rejected,
                OTHER,
                Err(StepError::NotApproved(Rejected)),
            ),
            (
                Step::Retire,
                Retired,
                OTHER,
                Err(StepError::NotApproved(Retired)),
            ),
        ];
        for (step, state, actor, want) in cases {
            assert_eq!(
                next_state(*step, *state, ME, actor),
                *want,
                "{step:?} from {state:?} by {actor}"
            );
        }
    }

    #[test]
    fn only_approved_is_offered_and_statements_need_one_in_force_once() {
        let offered: Vec<_> = [Pending, Approved, Rejected, Retired]
            .into_iter()
            .filter(|s| s.offered_to_parents())
            .collect();
        assert_eq!(offered, vec![Approved]);
        let statements: Vec<_> = [Pending, Approved, Rejected, Retired]
            .into_iter()
            .filter(|s| s.takes_statements())
            .collect();
        assert_eq!(statements, vec![Approved, Retired]);
    }
}
