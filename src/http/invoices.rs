//! Invoices: issue, import, read, list, void; look up by payment code.

use super::extract::{Accountants, ApiBytes, ApiJson, ApiPath, ApiQuery, Auth, BodyLimit, Readers};
use super::fields::{
    tagged, trimmed, CenturyDate, Code, OptionalText, PaymentCodeText, PeriodText, PositiveVnd,
    Text,
};
use super::{AppState, List};
use crate::domain::code::PaymentCode;
use crate::domain::import::parse_date;
use crate::domain::invoice::LineRequest;
use crate::domain::money::Vnd;
use crate::domain::period::Period;
use crate::domain::text::{clean_text, identifier};
use crate::error::{Error, ErrorBody, Result};
use crate::store::invoices::{ImportSummary, Invoice, InvoiceFilter, InvoiceStatus, NewInvoice};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use std::str::FromStr;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Import files may be large: 100,000 lines are about 12 MB.
pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    let import = OpenApiRouter::new()
        .routes(routes!(import_invoices))
        .layer(axum::Extension(BodyLimit(IMPORT_LIMIT)))
        .layer(DefaultBodyLimit::max(IMPORT_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(create_invoice, list_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(void_invoice))
        .routes(routes!(invoice_by_code))
        .merge(import)
}

/// A line of a new invoice: a charge, or a reduction of a charged line.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LineIn {
    Charge(ChargeIn),
    Reduction(ReductionIn),
}

impl PartialSchema for LineIn {
    fn schema() -> RefOr<Schema> {
        tagged(
            "type",
            [
                ("charge", ChargeIn::schema()),
                ("reduction", ReductionIn::schema()),
            ],
        )
    }
}

impl ToSchema for LineIn {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        ChargeIn::schemas(out);
        ReductionIn::schemas(out);
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeIn {
    /// An item of the school's catalog (its department's or its own).
    pub item_code: Code<32>,
    /// Whole đồng, more than 0.
    #[schema(value_type = PositiveVnd)]
    pub amount: Vnd,
    /// Defaults to the item's name.
    pub description: Option<OptionalText<500>>,
    /// Required to bill above the item's cap; recorded and shown to auditors.
    pub cap_override_reason: Option<OptionalText<500>>,
    /// Whether the notice presents this line as mandatory; defaults to the item's status.
    /// Billing a voluntary item as mandatory is recorded and reported to auditors.
    pub mandatory: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReductionIn {
    /// The charged item this reduction applies to.
    pub item_code: Code<32>,
    /// Percent of that line, more than 0 and at most 100 with at most 2 decimals: an integer
    /// (`70`) or a decimal string (`"33.33"`).
    #[schema(value_type = ReductionPercent)]
    #[serde(deserialize_with = "percent")]
    pub percent: Decimal,
    /// The policy group, e.g. "Hộ nghèo".
    pub policy_group: Text<500>,
    /// Reference to the evidence, e.g. the decision number.
    pub evidence_ref: Text<500>,
}

/// Schema of a reduction's percent, as [`percent`] and the invoice rules read it.
pub struct ReductionPercent;

impl PartialSchema for ReductionPercent {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(100)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(trimmed(
                        r"(?:100(?:\.0*)?|[1-9][0-9]?(?:\.[0-9]{0,2}0*)?|0?\.(?:0[1-9]|[1-9][0-9]?)0*)",
                    )))
                    .examples(["33.33"]),
            )
            .description(Some(
                "More than 0 and at most 100, with at most 2 decimals: an integer, or a decimal string.",
            ))
            .into()
    }
}

impl ToSchema for ReductionPercent {}

/// Integers or decimal strings; a JSON float would be rounded by the parser before we saw it.
fn percent<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Decimal, D::Error> {
    use serde::de::Error as _;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => {
            Ok(Decimal::from(n.as_i64().unwrap_or(i64::MAX)))
        }
        serde_json::Value::String(s) => Decimal::from_str(s.trim())
            .map_err(|_| D::Error::custom("percent is a number such as \"33.33\"")),
        _ => Err(D::Error::custom(
            "percent is an integer or a decimal string such as \"33.33\"",
        )),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvoice {
    pub student_id: i64,
    /// `YYYY-MM`.
    #[schema(value_type = PeriodText, example = "2025-09")]
    pub period: String,
    /// `YYYY-MM-DD`.
    #[schema(value_type = CenturyDate, example = "2025-09-15")]
    pub due_date: String,
    /// The school's own reference. Sending the same reference and content again returns the
    /// existing invoice (200); different content is a 409.
    pub external_ref: Option<Code<64>>,
    /// The voided invoice this one reissues.
    pub replaces_invoice_id: Option<i64>,
    /// At least one charge; at most 100 lines.
    #[schema(schema_with = lines_schema)]
    pub lines: Vec<LineIn>,
}

/// An invoice's lines: 1 to 100, at least one of them a charge.
fn lines_schema() -> utoipa::openapi::schema::Array {
    let mut array = utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name(LineIn::name()))
        .min_items(Some(1))
        .max_items(Some(crate::domain::invoice::MAX_LINES))
        .build();
    // utoipa has no `contains`; its extensions are written into the schema as they are.
    let charge = serde_json::json!({
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"const": "charge"}}
    });
    array
        .extensions
        .get_or_insert_with(Default::default)
        .insert("contains".into(), charge);
    array
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/invoices", tag = "invoices", security(("bearer" = [])),
    params(("school_id" = i64, Path)), request_body = CreateInvoice,
    responses((status = 201, description = "Issued", body = Invoice), (status = 200, description = "Already issued with this external_ref and content", body = Invoice),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_invoice(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(school_id): ApiPath<i64>,
    ApiJson(body): ApiJson<CreateInvoice>,
) -> Result<(StatusCode, Json<Invoice>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let period =
        Period::parse(&body.period).map_err(|e| Error::invalid("invalid_period", e.to_string()))?;
    let due_date = parse_date(&body.due_date)
        .ok_or_else(|| Error::invalid("invalid_due_date", "due_date is written YYYY-MM-DD"))?;
    let external_ref = body
        .external_ref
        .as_deref()
        .map(|r| identifier(r, "external_ref", 64))
        .transpose()
        .map_err(|e| Error::invalid("invalid_external_ref", e.to_string()))?;
    let catalog = st
        .store
        .school_catalog(school.id, school.department_id)
        .await?;
    let mut lines = Vec::with_capacity(body.lines.len());
    for (i, l) in body.lines.into_iter().enumerate() {
        let item_code = |c: &str| {
            identifier(c, "item_code", 32)
                .map_err(|e| Error::invalid("invalid_lines", format!("line {}: {e}", i + 1)))
        };
        lines.push(match l {
            LineIn::Charge(c) => {
                let code = item_code(&c.item_code)?;
                let item = catalog.get(&code).cloned().ok_or_else(|| {
                    Error::invalid(
                        "unknown_fee_item",
                        format!("line {}: item {code} is not in the school's catalog", i + 1),
                    )
                })?;
                LineRequest::Charge {
                    item,
                    amount: c.amount,
                    description: line_text(
                        i,
                        "description",
                        c.description.map(OptionalText::into_string),
                    )?,
                    cap_override_reason: line_text(
                        i,
                        "cap_override_reason",
                        c.cap_override_reason.map(OptionalText::into_string),
                    )?,
                    billed_as_mandatory: c.mandatory,
                }
            }
            LineIn::Reduction(r) => LineRequest::Reduction {
                item_code: item_code(&r.item_code)?,
                percent: r.percent,
                policy_group: line_text(i, "policy_group", Some(r.policy_group.into_string()))?
                    .unwrap_or_default(),
                evidence_ref: line_text(i, "evidence_ref", Some(r.evidence_ref.into_string()))?
                    .unwrap_or_default(),
            },
        });
    }
    let req = NewInvoice {
        student_id: body.student_id,
        period,
        due_date,
        external_ref,
        replaces_invoice_id: body.replaces_invoice_id,
        lines,
    };
    let (invoice, created) = st
        .store
        .create_invoice(&caller.actor(), &school, req)
        .await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(invoice),
    ))
}

/// A line's text as the invoice rules take it (they trim it and bound its length), refusing the
/// control characters no text field takes (PostgreSQL cannot even store a NUL).
fn line_text(i: usize, field: &str, text: Option<String>) -> Result<Option<String>> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(Error::invalid(
            "invalid_lines",
            format!("line {}: {field} contains control characters", i + 1),
        ));
    }
    Ok(Some(text))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    #[param(value_type = Option<InvoiceStatus>, inline)]
    pub status: Option<String>,
    /// `YYYY-MM`.
    #[param(value_type = Option<PeriodText>, inline)]
    pub period: Option<String>,
    #[param(inline)]
    pub class: Option<Text<32>>,
    pub student_id: Option<i64>,
    /// `true`: only invoices with a line billed above its item's cap.
    pub above_cap: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/invoices", tag = "invoices", security(("bearer" = [])),
    params(("school_id" = i64, Path), InvoiceQuery),
    responses((status = 200, body = List<Invoice>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_invoices(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath(school_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<InvoiceQuery>,
) -> Result<Json<List<Invoice>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let bad = |code: &'static str, message: String| Error::BadRequest { code, message };
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(InvoiceStatus::from_db(s).ok_or_else(|| {
            bad(
                "invalid_status",
                "status is open, partially_paid, paid, overpaid or void".into(),
            )
        })?),
    };
    let period = q
        .period
        .as_deref()
        .map(Period::parse)
        .transpose()
        .map_err(|e| bad("invalid_period", e.to_string()))?;
    let class_name = q
        .class
        .as_deref()
        .map(|c| clean_text(c, "class", 32))
        .transpose()
        .map_err(|e| bad("invalid_class", e.to_string()))?;
    let filter = InvoiceFilter {
        status,
        period: period.map(|p| p.to_string()),
        class_name,
        student_id: q.student_id,
        above_cap: q.above_cap,
    };
    let page = super::extract::page(q.limit, &q.cursor)?;
    Ok(Json(
        st.store
            .list_invoices(school.id, &filter, page)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/invoices/{invoice_id}", tag = "invoices", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("invoice_id" = i64, Path)),
    responses((status = 200, body = Invoice), (status = 404, body = ErrorBody)))]
async fn get_invoice(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Invoice>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.invoice_in_school(school.id, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidInvoice {
    /// Why the invoice is voided; kept with it and in the audit log.
    pub reason: Text<500>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/invoices/{invoice_id}/void", tag = "invoices", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("invoice_id" = i64, Path)), request_body = VoidInvoice,
    responses((status = 200, body = Invoice), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn void_invoice(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<VoidInvoice>,
) -> Result<Json<Invoice>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let reason = clean_text(&body.reason, "reason", 500)
        .map_err(|e| Error::invalid("invalid_reason", e.to_string()))?;
    Ok(Json(
        st.store
            .void_invoice(&caller.actor(), school.id, id, &reason)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/invoices/import", tag = "invoices", security(("bearer" = [])),
    params(("school_id" = i64, Path)),
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV, one row per invoice line; columns in the README"),
    responses((status = 201, description = "Imported", body = ImportSummary), (status = 200, description = "Nothing new: every invoice was already imported", body = ImportSummary),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, description = "Rejected whole; every bad row listed", body = ErrorBody)))]
async fn import_invoices(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(school_id): ApiPath<i64>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<ImportSummary>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("multipart/") || content_type.starts_with("application/json") {
        return Err(Error::UnsupportedMediaType {
            message: "send the CSV file itself as the body, with Content-Type: text/csv (curl --data-binary @file.csv)".into(),
        });
    }
    let summary = st
        .store
        .import_invoices(&caller.actor(), &school, &body, &|_| {})
        .await?;
    let status = if summary.invoices_created > 0
        || summary.students_created > 0
        || summary.students_updated > 0
    {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(summary)))
}

#[utoipa::path(get, path = "/api/v1/payment-codes/{code}", tag = "invoices", security(("bearer" = [])),
    params(("code" = inline(PaymentCodeText), Path, description = "A payment code, as written in a memo (case, spaces and dashes do not matter)")),
    responses((status = 200, body = Invoice),
        (status = 404, description = "No invoice in the caller's scope has this code; `invalid_payment_code` when none can (too short or long, a character codes never use, or a wrong check character: the code is mistyped)", body = ErrorBody)))]
async fn invoice_by_code(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Invoice>> {
    // A code that cannot be one names no invoice: 404 like one nobody was given, with why.
    let code = PaymentCode::parse(&code).map_err(|e| Error::NoSuch {
        code: "invalid_payment_code",
        message: e.to_string(),
    })?;
    let (id, school_id) = st
        .store
        .invoice_by_code_in_scope(caller.scope, &code)
        .await?
        .ok_or(Error::not_found("invoice_not_found", "invoice"))?;
    Ok(Json(st.store.invoice_in_school(school_id, id).await?))
}
