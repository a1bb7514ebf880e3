//! Transparency reports, as JSON or CSV.

use super::csv_out::CsvOut;
use super::extract::{ApiQuery, Auth, Overseers};
use super::fields::Date;
use super::AppState;
use crate::domain::access::Scope;
use crate::error::{Error, ErrorBody, Result};
use crate::store::reports::{FeeReport, ReportScope};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(fee_report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// One school; or give `department_id`.
    pub school_id: Option<i64>,
    /// Every school of a department (auditors, admin).
    pub department_id: Option<i64>,
    /// First day, `YYYY-MM-DD` (Asia/Ho_Chi_Minh).
    #[param(value_type = Date, inline)]
    pub from: String,
    /// Last day, inclusive.
    #[param(value_type = Date, inline)]
    pub to: String,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<ReportFormat>, inline)]
    pub format: Option<String>,
    /// For CSV: `channels` (default), `parent_fees`, `above_cap`, `mandatory`, `schools` or
    /// `accounts` (receiving-account changes).
    #[param(value_type = Option<ReportSection>, inline)]
    pub section: Option<String>,
}

/// What `format` takes.
pub struct ReportFormat;

impl PartialSchema for ReportFormat {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["json", "csv"]))
            .into()
    }
}

impl ToSchema for ReportFormat {}

/// What `section` takes.
pub struct ReportSection;

impl PartialSchema for ReportSection {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(SECTIONS))
            .into()
    }
}

impl ToSchema for ReportSection {}

const SECTIONS: [&str; 6] = [
    "channels",
    "parent_fees",
    "above_cap",
    "mandatory",
    "schools",
    "accounts",
];

#[utoipa::path(get, path = "/api/v1/reports/fees", tag = "reports", security(("bearer" = [])), params(ReportQuery),
    responses((status = 200, description = "Per channel and provider: payments, amount, fees by bearer, effective rate; cash share; parent-borne fees; cap and mandatory findings; schools without a free channel; receiving-account changes with who proposed and who approved; with `format=csv`, the `section` as CSV",
            content((FeeReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn fee_report(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response> {
    let bad = |m: &str| Error::BadRequest {
        code: "invalid_query",
        message: m.to_string(),
    };
    let scope = match (q.school_id, q.department_id) {
        (Some(id), None) => ReportScope::School(st.store.school_in_scope(&caller, id).await?.id),
        (None, Some(id)) => {
            if matches!(caller.scope, Scope::School(_)) {
                return Err(Error::not_found("department_not_found", "department"));
            }
            ReportScope::Department(st.store.department_in_scope(&caller, id).await?.id)
        }
        _ => return Err(bad("give exactly one of school_id or department_id")),
    };
    let day = |t: &str| {
        NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
            .map_err(|_| bad("from and to are YYYY-MM-DD"))
    };
    let (from, to) = (day(&q.from)?, day(&q.to)?);
    if to < from || (to - from).num_days() > 3660 {
        return Err(bad("to is on or after from, and at most ten years later"));
    }
    let report = st.store.fee_report(scope, from, to).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(report).into_response()),
        "csv" => {
            let body = csv_section(&report, q.section.as_deref().unwrap_or("channels"))?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
        }
        _ => Err(bad("format is json or csv")),
    }
}

fn csv_section(r: &FeeReport, section: &str) -> Result<String> {
    let mut w = CsvOut::new();
    match section {
        "channels" => {
            w.row([
                "channel",
                "provider",
                "payments",
                "amount",
                "fees_school",
                "fees_parent",
                "fees_provider",
                "fees_total",
                "effective_rate_percent",
            ])?;
            for c in r.channels.iter().chain(std::iter::once(&r.totals)) {
                w.row([
                    c.channel.clone(),
                    c.provider.clone(),
                    c.payments.to_string(),
                    c.amount.dong().to_string(),
                    c.fees_school.dong().to_string(),
                    c.fees_parent.dong().to_string(),
                    c.fees_provider.dong().to_string(),
                    c.fees_total.dong().to_string(),
                    c.effective_rate_percent.clone(),
                ])?;
            }
        }
        "parent_fees" => {
            w.row([
                "school_id",
                "payment_id",
                "receipt_no",
                "channel",
                "provider",
                "amount",
                "fee",
                "received_at",
                "breach",
            ])?;
            for p in &r.parent_borne_fees {
                w.row([
                    p.school_id.to_string(),
                    p.payment_id.to_string(),
                    p.receipt_no.clone(),
                    p.channel.clone(),
                    p.provider.clone(),
                    p.amount.dong().to_string(),
                    p.fee.dong().to_string(),
                    p.received_at.clone(),
                    p.breach.to_string(),
                ])?;
            }
        }
        "above_cap" | "mandatory" => {
            let rows = if section == "above_cap" {
                &r.lines_above_cap
            } else {
                &r.voluntary_billed_as_mandatory
            };
            w.row([
                "school_id",
                "invoice_id",
                "payment_code",
                "period",
                "line_no",
                "item_code",
                "amount",
                "cap_per_period",
                "cap_override_reason",
            ])?;
            for l in rows {
                w.row([
                    l.school_id.to_string(),
                    l.invoice_id.to_string(),
                    l.payment_code.clone(),
                    l.period.clone(),
                    l.line_no.to_string(),
                    l.item_code.clone(),
                    l.amount.dong().to_string(),
                    l.cap_per_period
                        .map(|c| c.dong().to_string())
                        .unwrap_or_default(),
                    l.cap_override_reason.clone().unwrap_or_default(),
                ])?;
            }
        }
        "schools" => {
            w.row([
                "school_id",
                "school_code",
                "accepts_cash",
                "has_own_account",
                "cash_payments",
                "finding",
            ])?;
            for s in &r.schools_without_free_channel {
                w.row([
                    s.school_id.to_string(),
                    s.school_code.clone(),
                    s.accepts_cash.to_string(),
                    s.has_own_account.to_string(),
                    s.cash_payments.to_string(),
                    s.finding.clone(),
                ])?;
            }
        }
        "accounts" => {
            w.row([
                "school_id",
                "account_id",
                "bank_bin",
                "account_number",
                "account_name",
                "state",
                "replaces_account_id",
                "proposed_by",
                "proposed_at",
                "approved_by",
                "approved_at",
                "rejected_by",
                "rejected_at",
                "reject_reason",
                "retired_by",
                "retired_at",
                "retire_reason",
            ])?;
            for a in &r.receiving_account_changes {
                let text = |t: &Option<String>| t.clone().unwrap_or_default();
                w.row([
                    a.school_id.to_string(),
                    a.account_id.to_string(),
                    a.bank_bin.clone(),
                    a.account_number.clone(),
                    a.account_name.clone(),
                    a.state.as_str().to_string(),
                    a.replaces_account_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    a.proposed_by.clone(),
                    a.proposed_at.clone(),
                    text(&a.approved_by),
                    text(&a.approved_at),
                    text(&a.rejected_by),
                    text(&a.rejected_at),
                    text(&a.reject_reason),
                    text(&a.retired_by),
                    text(&a.retired_at),
                    text(&a.retire_reason),
                ])?;
            }
        }
        _ => {
            return Err(Error::BadRequest {
                code: "invalid_query",
                message:
                    "section is channels, parent_fees, above_cap, mandatory, schools or accounts"
                        .into(),
            })
        }
    }
    w.finish()
}
