//! A school's own receiving accounts, under four eyes: proposals, the second person's approval or
//! rejection, retirement. Each step is one transaction with its audit record; the database
//! refuses deletes and any update that is not a forward step (migration 0009).

use super::{now, Store, Tx};
use crate::audit::{self, Chain, Entry};
use crate::coverage::{Unit, SCHOOL_ACCOUNTS};
use crate::domain::account::{next_state, AccountState, Step, StepError};
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SchoolAccount {
    pub id: i64,
    pub school_id: i64,
    /// NAPAS bank BIN, 6 digits (e.g. 970436 for Vietcombank).
    pub bank_bin: String,
    pub account_number: String,
    pub account_name: String,
    pub state: AccountState,
    /// The account this one replaces (retired when this one is approved).
    pub replaces_account_id: Option<i64>,
    /// When it was proposed.
    pub created_at: String,
    /// Who proposed it: `token:<id>:<role>`.
    pub proposed_by: String,
    /// The second person; `migration` for accounts in force before approvals existed.
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub rejected_by: Option<String>,
    pub rejected_at: Option<String>,
    pub reject_reason: Option<String>,
    pub retired_by: Option<String>,
    pub retired_at: Option<String>,
    pub retire_reason: Option<String>,
}

/// A proposed account, checked at the edge.
pub struct NewAccount {
    pub bank_bin: String,
    pub account_number: String,
    pub account_name: String,
    pub replaces_account_id: Option<i64>,
}

pub(crate) const ACCOUNT_COLS: &str = "id, school_id, bank_bin, account_number, account_name, state, replaces_account_id, created_at,
    proposed_by, approved_by, approved_at, rejected_by, rejected_at, reject_reason, retired_by, retired_at, retire_reason";

pub(crate) fn account_row(r: &AnyRow) -> Result<SchoolAccount> {
    let state: String = r.try_get("state")?;
    Ok(SchoolAccount {
        id: r.try_get("id")?,
        school_id: r.try_get("school_id")?,
        bank_bin: r.try_get("bank_bin")?,
        account_number: r.try_get("account_number")?,
        account_name: r.try_get("account_name")?,
        state: AccountState::from_db(&state)
            .ok_or_else(|| Error::Internal(format!("stored account state {state}")))?,
        replaces_account_id: r.try_get("replaces_account_id")?,
        created_at: r.try_get("created_at")?,
        proposed_by: r.try_get("proposed_by")?,
        approved_by: r.try_get("approved_by")?,
        approved_at: r.try_get("approved_at")?,
        rejected_by: r.try_get("rejected_by")?,
        rejected_at: r.try_get("rejected_at")?,
        reject_reason: r.try_get("reject_reason")?,
        retired_by: r.try_get("retired_by")?,
        retired_at: r.try_get("retired_at")?,
        retire_reason: r.try_get("retire_reason")?,
    })
}

fn step_error(e: StepError) -> Error {
    let code = match e {
        StepError::SelfApproval => "account_self_approval",
        StepError::NotPending(_) => "account_not_pending",
        StepError::NotApproved(_) => "account_not_approved",
    };
    Error::conflict(code, e.to_string())
}

/// An account of `school_id`, read inside `tx`; 404 for another school's.
async fn account_in(tx: &mut Tx, school_id: i64, account_id: i64) -> Result<SchoolAccount> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLS} FROM school_accounts WHERE id = $1 AND school_id = $2"
    ))
    .bind(account_id)
    .bind(school_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref()
        .map(account_row)
        .transpose()?
        .ok_or_else(|| Error::not_found("account_not_found", "receiving account"))
}

/// Moves `account` from `from` to `to` with `by` and `reason`, and audits it. The condition on
/// the state makes a concurrent decision on the same account lose with a conflict, not win twice.
async fn move_state(
    tx: &mut Tx,
    account: &SchoolAccount,
    step: Step,
    to: AccountState,
    by: &str,
    reason: Option<&str>,
    at: &str,
) -> Result<SchoolAccount> {
    // Approving and rejecting start from pending, retiring from approved; `to` says which.
    let sql = match to {
        AccountState::Approved => "SET state = 'approved', approved_by = $1, approved_at = $2 WHERE id = $3 AND state = 'pending'",
        AccountState::Rejected => "SET state = 'rejected', rejected_by = $1, rejected_at = $2, reject_reason = $4 WHERE id = $3 AND state = 'pending'",
        AccountState::Retired => "SET state = 'retired', retired_by = $1, retired_at = $2, retire_reason = $4 WHERE id = $3 AND state = 'approved'",
        AccountState::Pending => return Err(Error::Internal("no step leads to pending".into())),
    };
    let sql = format!("UPDATE school_accounts {sql} RETURNING {ACCOUNT_COLS}");
    let mut q = sqlx::query(&sql).bind(by).bind(at).bind(account.id);
    if to != AccountState::Approved {
        q = q.bind(reason);
    }
    let row = q.fetch_optional(&mut **tx).await?;
    let Some(row) = row else {
        return Err(Error::conflict(
            if step == Step::Retire {
                "account_not_approved"
            } else {
                "account_not_pending"
            },
            "another decision on this account came first; read it again",
        ));
    };
    let moved = account_row(&row)?;
    audit::record_covering(
        tx,
        &Chain::School(moved.school_id),
        Entry {
            actor: by,
            action: match step {
                Step::Approve => "school_account.approve",
                Step::Reject => "school_account.reject",
                Step::Retire => "school_account.retire",
            },
            entity: "school_account",
            entity_id: Some(moved.id),
            details: json!({
                "state": moved.state,
                "bank_bin": moved.bank_bin,
                "account_number": moved.account_number,
                "proposed_by": moved.proposed_by,
                "reason": reason,
            }),
        },
        &[Unit::new(SCHOOL_ACCOUNTS, moved.id)],
    )
    .await?;
    Ok(moved)
}

impl Store {
    /// Proposes an account (pending until a second person approves it), or a change of an
    /// approved one (`replaces_account_id`), which replaces it on approval.
    pub async fn propose_school_account(
        &self,
        actor: &str,
        school_id: i64,
        a: &NewAccount,
    ) -> Result<SchoolAccount> {
        let mut tx = self.begin().await?;
        if let Some(old) = a.replaces_account_id {
            let old = account_in(&mut tx, school_id, old).await?;
            if old.state != AccountState::Approved {
                return Err(Error::conflict(
                    "account_not_approved",
                    format!(
                        "account {} is {}; only an account in force is replaced",
                        old.id,
                        old.state.as_str()
                    ),
                ));
            }
            if (&old.bank_bin, &old.account_number, &old.account_name)
                == (&a.bank_bin, &a.account_number, &a.account_name)
            {
                return Err(Error::invalid(
                    "account_unchanged",
                    "the replacement has the same bank, number and name as the account it replaces",
                ));
            }
        }
        // The same number may be proposed again once its earlier account is retired or rejected;
        // while one is pending or in force, only as the replacement of the one in force.
        let live: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM school_accounts WHERE school_id = $1 AND bank_bin = $2 AND account_number = $3
               AND state IN ('pending', 'approved')",
        )
        .bind(school_id)
        .bind(&a.bank_bin)
        .bind(&a.account_number)
        .fetch_all(&mut *tx)
        .await?;
        if let Some((id, state)) = live
            .iter()
            .find(|(id, state)| !(state == "approved" && Some(*id) == a.replaces_account_id))
        {
            return Err(Error::conflict(
                "account_exists",
                if state == "pending" {
                    format!("account {id} with this number is already proposed; approve or reject it first")
                } else {
                    format!("account {id} with this number is in force; propose a change with replaces_account_id")
                },
            ));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO school_accounts (school_id, bank_bin, account_number, account_name, state, replaces_account_id, created_at, proposed_by)
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7) RETURNING {ACCOUNT_COLS}"
        ))
        .bind(school_id)
        .bind(&a.bank_bin)
        .bind(&a.account_number)
        .bind(&a.account_name)
        .bind(a.replaces_account_id)
        .bind(now())
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let proposed = account_row(&row)?;
        audit::record_covering(
            &mut tx,
            &Chain::School(school_id),
            Entry {
                actor,
                action: "school_account.propose",
                entity: "school_account",
                entity_id: Some(proposed.id),
                details: json!({
                    "bank_bin": proposed.bank_bin,
                    "account_number": proposed.account_number,
                    "account_name": proposed.account_name,
                    "replaces_account_id": proposed.replaces_account_id,
                }),
            },
            &[Unit::new(SCHOOL_ACCOUNTS, proposed.id)],
        )
        .await?;
        tx.commit().await?;
        Ok(proposed)
    }

    /// Approves, rejects or retires an account of `school_id`. Approving a replacement retires
    /// the account it replaces in the same transaction, so parents are never offered both.
    pub async fn decide_school_account(
        &self,
        actor: &str,
        school_id: i64,
        account_id: i64,
        step: Step,
        reason: Option<&str>,
    ) -> Result<SchoolAccount> {
        let mut tx = self.begin().await?;
        let account = account_in(&mut tx, school_id, account_id).await?;
        let to =
            next_state(step, account.state, &account.proposed_by, actor).map_err(step_error)?;
        let at = now();
        if step == Step::Approve {
            if let Some(old) = account.replaces_account_id {
                let old = account_in(&mut tx, school_id, old).await?;
                // Retired meanwhile by someone else: nothing left to replace.
                if old.state == AccountState::Approved {
                    let why = format!("replaced by account {}", account.id);
                    move_state(
                        &mut tx,
                        &old,
                        Step::Retire,
                        AccountState::Retired,
                        actor,
                        Some(&why),
                        &at,
                    )
                    .await?;
                }
            }
        }
        let moved = move_state(&mut tx, &account, step, to, actor, reason, &at).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Every account of the school, in every state, oldest first; `state` narrows it.
    pub async fn school_accounts_in(
        &self,
        school_id: i64,
        state: Option<AccountState>,
    ) -> Result<Vec<SchoolAccount>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM school_accounts WHERE school_id = $1 AND ($2 IS NULL OR state = $2) ORDER BY id"
        ))
        .bind(school_id)
        .bind(state.map(AccountState::as_str))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(account_row).collect()
    }

    /// Every account of the school, in every state.
    pub async fn school_accounts(&self, school_id: i64) -> Result<Vec<SchoolAccount>> {
        self.school_accounts_in(school_id, None).await
    }
}
