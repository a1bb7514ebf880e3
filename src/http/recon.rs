//! The review queue: payments the engine could not allocate on its own, with ranked suggestions
//! and the evidence for each in words; an accountant matches (one invoice or a split across one
//! family) or dismisses, and every action is audited with who did it.

use super::extract::{page, require, ApiJson, ApiPath, ApiQuery, BILLERS, READERS};
use super::payments::AllocationIn;
use super::{AppState, List};
use crate::domain::access::Caller;
use crate::domain::text::clean_text;
use crate::error::{Error, ErrorBody, Result};
use crate::store::recon::{Exception, Reconciled};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A match names few invoices; more is a typing error.
const MAX_MATCH: usize = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_exceptions))
        .routes(routes!(get_exception))
        .routes(routes!(match_exception))
        .routes(routes!(dismiss_exception))
        .routes(routes!(reconcile_payment))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExceptionQuery {
    /// `open` (default), `matched`, `dismissed` or `all`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/exceptions", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ExceptionQuery),
    responses((status = 200, description = "Payments waiting for an accountant, oldest first, with ranked suggestions", body = List<Exception>),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_exceptions(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(school_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ExceptionQuery>,
) -> Result<Json<List<Exception>>> {
    require(&caller, READERS)?;
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let status = match q.status.as_deref().unwrap_or("open") {
        "all" => None,
        s @ ("open" | "matched" | "dismissed") => Some(s),
        other => {
            return Err(Error::invalid(
                "invalid_status",
                format!("status is open, matched, dismissed or all, not {other:?}"),
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
    caller: Caller,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Exception>> {
    require(&caller, READERS)?;
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.exception(school.id, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// One invoice, or a split across invoices of one student or of siblings.
    pub allocations: Vec<AllocationIn>,
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/exceptions/{exception_id}/match", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("exception_id" = i64, Path)), request_body = MatchRequest,
    responses((status = 200, description = "Allocated; the exception is closed", body = Exception),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn match_exception(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<MatchRequest>,
) -> Result<Json<Exception>> {
    require(&caller, BILLERS)?;
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
    pub reason: String,
    /// The suggested invoices that are wrong for this payment; all of them when absent.
    pub invoice_ids: Option<Vec<i64>>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/exceptions/{exception_id}/dismiss", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("exception_id" = i64, Path)), request_body = DismissRequest,
    responses((status = 200, description = "Dismissed; those invoices are never suggested for this payment again, and its money stays as credit", body = Exception),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dismiss_exception(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<DismissRequest>,
) -> Result<Json<Exception>> {
    require(&caller, BILLERS)?;
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

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/payments/{payment_id}/reconcile", tag = "reconciliation", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)),
    responses((status = 200, description = "What the engine did with the payment's unallocated credit", body = Reconciled),
        (status = 404, body = ErrorBody)))]
async fn reconcile_payment(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Reconciled>> {
    require(&caller, BILLERS)?;
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(
        st.store
            .reconcile_payment(&caller.actor(), &school, id)
            .await?,
    ))
}
