//! A school's receiving accounts: proposed by one person, approved by a second, rejected or
//! retired; parents are offered only approved ones. Rules in `domain::account`.

use super::extract::{Accountants, ApiJson, ApiPath, ApiQuery, Auth, Overseers};
use super::fields::{AccountNumber, BankBin, Text};
use super::AppState;
use crate::domain::access::Caller;
use crate::domain::account::{AccountState, Step};
use crate::domain::text::clean_text;
use crate::error::{Error, ErrorBody, Result};
use crate::store::accounts::{NewAccount, SchoolAccount};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(propose_account, list_accounts))
        .routes(routes!(approve_account))
        .routes(routes!(reject_account))
        .routes(routes!(retire_account))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeAccount {
    /// NAPAS bank BIN, 6 digits.
    #[schema(value_type = BankBin)]
    pub bank_bin: String,
    /// 1 to 19 letters or digits, as the VietQR payload carries it.
    #[schema(value_type = AccountNumber)]
    pub account_number: String,
    pub account_name: Text<200>,
    /// An approved account of the school this one changes (a new name or number): it is
    /// retired when this one is approved.
    pub replaces_account_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why, in words; kept with the account and in the audit log.
    pub reason: Text<500>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountsQuery {
    /// Only accounts in this state.
    #[param(inline)]
    pub state: Option<AccountState>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/accounts", tag = "accounts", security(("bearer" = [])),
    params(("school_id" = i64, Path)), request_body = ProposeAccount,
    responses((status = 201, description = "Proposed: pending, not offered to parents until a second person approves it", body = SchoolAccount),
        (status = 400, description = "Malformed JSON or path", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Cashiers and auditors never propose", body = ErrorBody),
        (status = 404, description = "School, or the replaced account, outside the caller's scope", body = ErrorBody),
        (status = 409, description = "`account_exists`: this number is already pending or in force; `account_not_approved`: the replaced account is not in force", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "`invalid_account`, `invalid_body`, or `account_unchanged` (a replacement identical to the account it replaces)", body = ErrorBody)))]
async fn propose_account(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(school_id): ApiPath<i64>,
    ApiJson(b): ApiJson<ProposeAccount>,
) -> Result<(StatusCode, Json<SchoolAccount>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let bin = b.bank_bin.trim();
    let account = b.account_number.trim();
    // The same limits as the VietQR payload, so every account can be shown as a QR.
    crate::domain::vietqr::transfer_payload(bin, account, None, "")
        .map_err(|e| Error::invalid("invalid_account", e.to_string()))?;
    let name = clean_text(&b.account_name, "account_name", 200)
        .map_err(|e| Error::invalid("invalid_account", e.to_string()))?;
    let new = NewAccount {
        bank_bin: bin.to_string(),
        account_number: account.to_string(),
        account_name: name,
        replaces_account_id: b.replaces_account_id,
    };
    Ok((
        StatusCode::CREATED,
        Json(
            st.store
                .propose_school_account(&caller.actor(), school.id, &new)
                .await?,
        ),
    ))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/accounts", tag = "accounts", security(("bearer" = [])),
    params(("school_id" = i64, Path), AccountsQuery),
    responses((status = 200, description = "Every account of the school in every state, oldest first, with who proposed and decided and when", body = Vec<SchoolAccount>),
        (status = 400, description = "Malformed path or an unknown state", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_accounts(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiPath(school_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<AccountsQuery>,
) -> Result<Json<Vec<SchoolAccount>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.school_accounts_in(school.id, q.state).await?))
}

/// The school in scope, then the step on its account.
async fn decide(
    st: &AppState,
    caller: &Caller,
    (school_id, account_id): (i64, i64),
    step: Step,
    reason: Option<&str>,
) -> Result<Json<SchoolAccount>> {
    let school = st.store.school_in_scope(caller, school_id).await?;
    let reason = reason
        .map(|r| {
            clean_text(r, "reason", 500)
                .map_err(|e| Error::invalid("invalid_reason", e.to_string()))
        })
        .transpose()?;
    Ok(Json(
        st.store
            .decide_school_account(
                &caller.actor(),
                school.id,
                account_id,
                step,
                reason.as_deref(),
            )
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/accounts/{account_id}/approve", tag = "accounts", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("account_id" = i64, Path)),
    responses((status = 200, description = "Approved and offered to parents; the account it replaces, if any, retired in the same step", body = SchoolAccount),
        (status = 400, description = "Malformed path", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Cashiers and auditors never approve", body = ErrorBody),
        (status = 404, description = "School or account outside the caller's scope", body = ErrorBody),
        (status = 409, description = "`account_self_approval`: the caller proposed it; `account_not_pending`: already decided", body = ErrorBody)))]
async fn approve_account(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(ids): ApiPath<(i64, i64)>,
) -> Result<Json<SchoolAccount>> {
    decide(&st, &caller, ids, Step::Approve, None).await
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/accounts/{account_id}/reject", tag = "accounts", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("account_id" = i64, Path)), request_body = Reason,
    responses((status = 200, description = "Rejected with the reason; never offered. The proposer may withdraw their own proposal this way", body = SchoolAccount),
        (status = 400, description = "Malformed JSON or path", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Cashiers and auditors never reject", body = ErrorBody),
        (status = 404, description = "School or account outside the caller's scope", body = ErrorBody),
        (status = 409, description = "`account_not_pending`: already decided", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "`invalid_reason` (empty or over 500 characters) or `invalid_body`", body = ErrorBody)))]
async fn reject_account(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(ids): ApiPath<(i64, i64)>,
    ApiJson(b): ApiJson<Reason>,
) -> Result<Json<SchoolAccount>> {
    decide(&st, &caller, ids, Step::Reject, Some(&b.reason)).await
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/accounts/{account_id}/retire", tag = "accounts", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("account_id" = i64, Path)), request_body = Reason,
    responses((status = 200, description = "Retired with the reason: no longer offered to parents; its statements are still taken", body = SchoolAccount),
        (status = 400, description = "Malformed JSON or path", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Cashiers and auditors never retire", body = ErrorBody),
        (status = 404, description = "School or account outside the caller's scope", body = ErrorBody),
        (status = 409, description = "`account_not_approved`: pending, rejected or already retired", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "`invalid_reason` (empty or over 500 characters) or `invalid_body`", body = ErrorBody)))]
async fn retire_account(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(ids): ApiPath<(i64, i64)>,
    ApiJson(b): ApiJson<Reason>,
) -> Result<Json<SchoolAccount>> {
    decide(&st, &caller, ids, Step::Retire, Some(&b.reason)).await
}
