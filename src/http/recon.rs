//! The review queue: payments the engine could not allocate on its own, with ranked suggestions
//! and the evidence for each in words; an accountant matches (one invoice or a split across one
//! family) or dismisses, and every action is audited with who did it.

use super::extract::{
    page, Accountants, ApiBytes, ApiJson, ApiPath, ApiQuery, Auth, BodyLimit, Overseers,
};
use super::fields::{Date, PositiveVnd, Text};
use super::payments::AllocationIn;
use super::{AppState, List};
use crate::domain::text::clean_text;
use crate::error::{Error, ErrorBody, Result};
use crate::recon::statement::{self, Direction};
use crate::store::days::{parse_day, Day};
use crate::store::recon::{Exception, Reconciled};
use crate::store::statements::StatementReport;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A match names few invoices; more is a typing error.
const MAX_MATCH: usize = 20;

/// A month of a busy account is a few MB; 100,000 lines of CSV about 15 MB.
pub const STATEMENT_LIMIT: usize = 64 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    let statements = OpenApiRouter::new()
        .routes(routes!(import_statement))
        .layer(axum::Extension(BodyLimit(STATEMENT_LIMIT)))
        .layer(DefaultBodyLimit::max(STATEMENT_LIMIT));
    OpenApiRouter::new()
        .merge(statements)
        .routes(routes!(list_exceptions))
        .routes(routes!(get_exception))
        .routes(routes!(match_exception))
        .routes(routes!(dismiss_exception))
        .routes(routes!(refund_exception))
        .routes(routes!(reconcile_payment))
        .routes(routes!(get_day))
        .routes(routes!(close_day))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    /// `open` (default), `matched`, `dismissed`, `refund` or `all`.
    #[param(value_type = Option<ExceptionStatus>, inline)]
    pub status: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub cursor: Option<String>,
}

/// What `status` of the review queue takes.
pub struct ExceptionStatus;

impl PartialSchema for ExceptionStatus {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["open", "matched", "dismissed", "refund", "all"]))
            .into()
    }
}

impl ToSchema for ExceptionStatus {}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/exceptions", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ExceptionQuery),
    responses((status = 200, description = "Payments waiting for an accountant, oldest first, with ranked suggestions", body = List<Exception>),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_exceptions(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiPath(school_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ExceptionQuery>,
) -> Result<Json<List<Exception>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let status = match q.status.as_deref().unwrap_or("open") {
        "all" => None,
        s @ ("open" | "matched" | "dismissed" | "refund") => Some(s),
        other => {
            return Err(Error::invalid(
                "invalid_status",
                format!("status is open, matched, dismissed, refund or all, not {other:?}"),
            ))
        }
    };
    let page = page(q.limit, &q.cursor)?;
    Ok(Json(
        st.store
            .list_exceptions(school.id, status, page)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/exceptions/{exception_id}", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("exception_id" = i64, Path)),
    responses((status = 200, body = Exception), (status = 404, body = ErrorBody)))]
async fn get_exception(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Exception>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.exception(school.id, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// One invoice, or a split across invoices of one student or of siblings.
    #[schema(min_items = 1, max_items = 20)]
    pub allocations: Vec<AllocationIn>,
    /// "matched by hand" when omitted.
    pub note: Option<Text<500>>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/exceptions/{exception_id}/match", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("exception_id" = i64, Path)), request_body = MatchRequest,
    responses((status = 200, description = "Allocated; the exception is closed", body = Exception),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn match_exception(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<MatchRequest>,
) -> Result<Json<Exception>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    if body.allocations.len() > MAX_MATCH {
        return Err(Error::invalid(
            "too_many_allocations",
            format!("a match names at most {MAX_MATCH} invoices"),
        ));
    }
    let note = match body.note.as_deref() {
        Some(n) => {
            clean_text(n, "note", 500).map_err(|e| Error::invalid("invalid_note", e.to_string()))?
        }
        None => "matched by hand".into(),
    };
    let allocations: Vec<_> = body
        .allocations
        .iter()
        .map(|a| (a.invoice_id, a.amount))
        .collect();
    Ok(Json(
        st.store
            .match_exception(&caller.actor(), &school, id, &allocations, &note)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DismissRequest {
    pub reason: Text<500>,
    /// The suggested invoices that are wrong for this payment; all of them when absent.
    #[schema(max_items = 20)]
    pub invoice_ids: Option<Vec<i64>>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/exceptions/{exception_id}/dismiss", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("exception_id" = i64, Path)), request_body = DismissRequest,
    responses((status = 200, description = "Dismissed; those invoices are never suggested for this payment again, and its money stays as credit", body = Exception),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dismiss_exception(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<DismissRequest>,
) -> Result<Json<Exception>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let reason = clean_text(&body.reason, "reason", 500)
        .map_err(|e| Error::invalid("invalid_reason", e.to_string()))?;
    if body
        .invoice_ids
        .as_ref()
        .is_some_and(|i| i.len() > MAX_MATCH)
    {
        return Err(Error::invalid(
            "too_many_invoices",
            format!("at most {MAX_MATCH} invoices"),
        ));
    }
    Ok(Json(
        st.store
            .dismiss_exception(
                &caller.actor(),
                &school,
                id,
                body.invoice_ids.as_deref(),
                &reason,
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Whole đồng, at most the payment's unallocated credit.
    #[schema(value_type = PositiveVnd)]
    pub amount: crate::domain::money::Vnd,
    pub reason: Text<500>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/exceptions/{exception_id}/refund", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("exception_id" = i64, Path)), request_body = RefundRequest,
    responses((status = 200, description = "Marked for refund to the payer; the exception is closed", body = Exception),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn refund_exception(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<RefundRequest>,
) -> Result<Json<Exception>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let reason = clean_text(&body.reason, "reason", 500)
        .map_err(|e| Error::invalid("invalid_reason", e.to_string()))?;
    Ok(Json(
        st.store
            .refund_exception(&caller.actor(), &school, id, body.amount, &reason)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/payments/{payment_id}/reconcile", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)),
    responses((status = 200, description = "What the engine did with the payment's unallocated credit", body = Reconciled),
        (status = 404, body = ErrorBody)))]
async fn reconcile_payment(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Reconciled>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(
        st.store
            .reconcile_payment(&caller.actor(), &school, id)
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// `vietcombank`, `techcombank` or `camt053` (case does not matter); recognised from the
    /// file when absent.
    #[param(value_type = Option<StatementFormat>, inline)]
    pub format: Option<String>,
}

/// The statement layouts `format` names.
pub struct StatementFormat;

impl PartialSchema for StatementFormat {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([
                "vietcombank",
                "vcb",
                "techcombank",
                "tcb",
                "camt053",
                "camt.053",
                "camt",
            ]))
            .into()
    }
}

impl ToSchema for StatementFormat {}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/accounts/{account_id}/statements", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("account_id" = i64, Path), StatementQuery),
    request_body(content = String, content_type = "text/csv", description = "The bank's export as it came: UTF-8 CSV in a preset layout, or ISO 20022 camt.053 XML"),
    responses((status = 201, description = "Imported: each credit tied to its payment, or recorded and matched", body = StatementReport),
        (status = 200, description = "Nothing new: every line was imported before", body = StatementReport),
        (status = 404, body = ErrorBody), (status = 409, description = "`account_not_approved`: the account is pending or rejected", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, description = "Refused whole, with the line and column at fault", body = ErrorBody)))]
async fn import_statement(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, account_id)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<StatementQuery>,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<StatementReport>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let account = st.store.school_account(school.id, account_id).await?;
    // Money that arrived while an account was in force is reconciled even after it is retired;
    // an account nobody approved has no statement to take.
    if !account.state.takes_statements() {
        return Err(Error::conflict(
            "account_not_approved",
            format!(
                "account {} is {}; its statements are taken once a second person approves it",
                account.id,
                account.state.as_str()
            ),
        ));
    }
    let parsed = statement::parse(&body, q.format.as_deref(), None)
        .map_err(|e| Error::invalid(e.code(), e.to_string()))?;
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    if let Some(on_file) = parsed.account.as_deref() {
        if digits(on_file) != digits(&account.account_number) {
            return Err(Error::invalid(
                "statement_account_mismatch",
                format!(
                    "the statement is for account {on_file}, not {}",
                    account.account_number
                ),
            ));
        }
    }
    if parsed.currency != "VND" {
        return Err(Error::invalid(
            "statement_currency",
            format!(
                "the statement is in {}; only VND accounts are reconciled",
                parsed.currency
            ),
        ));
    }
    let now = st.now();
    if let Some(l) = parsed
        .lines
        .iter()
        .find(|l| l.booked_at > now + chrono::Duration::minutes(5))
    {
        return Err(Error::invalid(
            "statement_future_date",
            format!("line {}: booked in the future ({})", l.line_no, l.booked_at),
        ));
    }
    if !parsed
        .lines
        .iter()
        .any(|l| l.direction == Direction::Credit || l.direction == Direction::Debit)
    {
        return Err(Error::invalid(
            "statement_empty",
            "the statement has no transactions",
        ));
    }
    let format = match parsed.format {
        statement::Format::Camt053 => "camt053".to_string(),
        statement::Format::Csv(p) => p.name().to_string(),
    };
    let sha = hex::encode(Sha256::digest(&body));
    let report = st
        .store
        .import_statement(&caller.actor(), &school, &account, &parsed, &sha, &format)
        .await?;
    let status = if report.statement_id.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/days/{date}", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("date" = inline(Date), Path, description = "YYYY-MM-DD, Asia/Ho_Chi_Minh")),
    responses((status = 200, description = "What was recorded that day: totals by channel (cash included), fees by who bore them, matches and open exceptions; and whether it is closed", body = Day),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_day(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiPath((school_id, date)): ApiPath<(i64, String)>,
) -> Result<Json<Day>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.day(school.id, parse_day(&date)?).await?))
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/days/{date}/close", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("date" = inline(Date), Path, description = "YYYY-MM-DD, a day that is over")),
    responses((status = 200, description = "Closed: its summary is frozen; later corrections are dated in an open day", body = Day),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn close_day(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, date)): ApiPath<(i64, String)>,
) -> Result<Json<Day>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let today = st
        .now()
        .with_timezone(&crate::domain::time::vietnam())
        .date_naive();
    let day = st
        .store
        .close_day(&caller.actor(), &school, parse_day(&date)?, today)
        .await?;
    // Every daily close is checkpointed: the close's own record is the head signed. The day is
    // closed whether or not signing works; the hourly job signs what this missed.
    let chain = crate::audit::Chain::School(school.id).key();
    if let Err(e) = crate::checkpoint::sign_chain(&st.store, &st.checkpoints, &chain).await {
        tracing::error!(error = %e, "the day is closed but its checkpoint was not signed");
    }
    Ok(Json(day))
}
