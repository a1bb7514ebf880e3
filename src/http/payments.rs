//! Payments of every channel: the cash desk, manual entry of cashless payments, reversals,
//! credit allocation, refunds, receipts, and what a parent sees of an invoice's money.

use super::extract::{require, Accountants, ApiJson, ApiPath, ApiQuery, Auth, CashDesk, Readers};
use super::fields::{
    tagged, CashlessProvider, Code, Date, NonNegativeVnd, OptionalText, PositiveVnd, Text,
};
use super::{AppState, List};
use crate::domain::access::Caller;
use crate::domain::fee::{Bearer, Channel};
use crate::domain::ledger::AllocationMethod;
use crate::domain::money::Vnd;
use crate::domain::text::{clean_text, identifier, optional_text};
use crate::domain::words::vnd_in_words;
use crate::error::{Error, ErrorBody, Result};
use crate::plan::intake::Allocate;
use crate::store::fees::PaymentOption;
use crate::store::invoices::{Invoice, InvoiceLine};
use crate::store::ledger::{local_text, FeeLine, NewPayment, Payment, PaymentFilter, Recorded};
use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// More would be a typing error, and keeps every insert far below the databases' bind limits.
const MAX_ALLOCATIONS: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record_payment, list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(reverse_payment))
        .routes(routes!(allocate_credit))
        .routes(routes!(request_refund))
        .routes(routes!(receipt))
        .routes(routes!(receipt_html))
        .routes(routes!(invoice_statement))
        .routes(routes!(payment_options))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationIn {
    /// An invoice of the school; each at most once per request.
    pub invoice_id: i64,
    #[schema(value_type = PositiveVnd)]
    pub amount: Vnd,
}

/// A payment to record: cash at the school office, or a cashless one entered by hand. The
/// channel decides the shape: cash has no provider reference and no fee.
#[derive(Debug, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum RecordPayment {
    Cash(CashPayment),
    BankTransfer(CashlessPayment),
    Card(CashlessPayment),
    Ewallet(CashlessPayment),
}

impl PartialSchema for RecordPayment {
    fn schema() -> RefOr<Schema> {
        tagged(
            "channel",
            [
                ("cash", CashPayment::schema()),
                ("bank_transfer", CashlessPayment::schema()),
                ("card", CashlessPayment::schema()),
                ("ewallet", CashlessPayment::schema()),
            ],
        )
    }
}

impl ToSchema for RecordPayment {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        CashPayment::schemas(out);
        CashlessPayment::schemas(out);
    }
}

/// Cash at the school office: a cashier may record it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashPayment {
    /// Omitted, or `cash`.
    #[schema(value_type = Option<CashProvider>)]
    pub provider: Option<String>,
    pub payer_name: Option<OptionalText<200>>,
    pub memo: Option<OptionalText<500>>,
    /// Whole đồng credited towards invoices.
    #[schema(value_type = PositiveVnd)]
    pub amount: Vnd,
    /// When the money was received, RFC 3339, from 2000 on; defaults to now. Not in the future.
    #[schema(value_type = Option<ReceivedAt>)]
    pub received_at: Option<String>,
    /// Invoices this payment pays, each at most its open balance; the rest stays as credit.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allocations: Vec<AllocationIn>,
}

/// A cashless payment entered by hand (accountants; providers notify by webhook).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashlessPayment {
    /// Who carried the money (`vnpay`, `momo`, `zalopay`, `sepay`, `casso`, `bank`, …).
    #[schema(value_type = CashlessProvider)]
    pub provider: String,
    /// The provider's own reference, unique per provider.
    pub provider_ref: Code<64>,
    /// Which of the school's accounts with this provider received it, when it has several
    /// configured for webhooks (the same transaction is then recognised from either path).
    pub provider_account: Option<String>,
    pub payer_name: Option<OptionalText<200>>,
    pub memo: Option<OptionalText<500>>,
    /// Whole đồng credited towards invoices.
    #[schema(value_type = PositiveVnd)]
    pub amount: Vnd,
    /// When the money was received, RFC 3339, from 2000 on; defaults to now. Not in the future.
    #[schema(value_type = Option<ReceivedAt>)]
    pub received_at: Option<String>,
    /// The fee the provider reports it charged, if known.
    #[schema(value_type = Option<NonNegativeVnd>)]
    pub reported_fee: Option<Vnd>,
    /// Invoices this payment pays, each at most its open balance; the rest stays as credit.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allocations: Vec<AllocationIn>,
}

/// A payment request, whatever its channel, as the handler checks it.
struct PaymentFields {
    channel: Channel,
    provider: Option<String>,
    provider_ref: Option<String>,
    provider_account: Option<String>,
    payer_name: Option<OptionalText<200>>,
    memo: Option<OptionalText<500>>,
    amount: Vnd,
    received_at: Option<String>,
    reported_fee: Option<Vnd>,
    allocations: Vec<AllocationIn>,
}

impl RecordPayment {
    fn fields(self) -> PaymentFields {
        let (channel, p) = match self {
            RecordPayment::Cash(c) => {
                return PaymentFields {
                    channel: Channel::Cash,
                    provider: c.provider,
                    provider_ref: None,
                    provider_account: None,
                    payer_name: c.payer_name,
                    memo: c.memo,
                    amount: c.amount,
                    received_at: c.received_at,
                    reported_fee: None,
                    allocations: c.allocations,
                }
            }
            RecordPayment::BankTransfer(p) => (Channel::BankTransfer, p),
            RecordPayment::Card(p) => (Channel::Card, p),
            RecordPayment::Ewallet(p) => (Channel::Ewallet, p),
        };
        PaymentFields {
            channel,
            provider: Some(p.provider),
            provider_ref: Some(p.provider_ref.into_string()),
            provider_account: p.provider_account,
            payer_name: p.payer_name,
            memo: p.memo,
            amount: p.amount,
            received_at: p.received_at,
            reported_fee: p.reported_fee,
            allocations: p.allocations,
        }
    }
}

/// `cash`, the only provider of a cash payment.
pub struct CashProvider;

impl PartialSchema for CashProvider {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["cash"]))
            .into()
    }
}

impl ToSchema for CashProvider {}

/// `received_at` as [`parse_time`] reads it; that it is not in the future is for the handler.
pub struct ReceivedAt;

impl PartialSchema for ReceivedAt {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .pattern(Some("^[2-9][0-9]{3}-"))
            .description(Some(
                "RFC 3339, e.g. 2025-09-10T08:30:00+07:00; from the year 2000 on, not in the future",
            ))
            .into()
    }
}

impl ToSchema for ReceivedAt {}

/// A provider name: lower-case letters, digits and `_`.
pub fn provider_id(text: &str) -> Result<String> {
    let t = text.trim().to_ascii_lowercase();
    if (2..=32).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(t)
    } else {
        Err(Error::invalid(
            "invalid_provider",
            "provider is 2 to 32 lower-case letters, digits or _",
        ))
    }
}

fn parse_time(text: Option<&str>) -> Result<DateTime<Utc>> {
    let now = Utc::now();
    let Some(t) = text else { return Ok(now) };
    let parsed = DateTime::parse_from_rfc3339(t.trim())
        .map_err(|_| {
            Error::invalid(
                "invalid_received_at",
                "received_at is an RFC 3339 time, e.g. 2025-09-10T08:30:00+07:00",
            )
        })?
        .with_timezone(&Utc);
    // Not wrong in itself, only not yet: a conflict with the clock (409), as a day not over is.
    if parsed > now + chrono::Duration::minutes(5) {
        return Err(Error::conflict(
            "invalid_received_at",
            "received_at is in the future",
        ));
    }
    if parsed.format("%Y").to_string().as_str() < "2000" {
        return Err(Error::invalid(
            "invalid_received_at",
            "received_at is before 2000",
        ));
    }
    Ok(parsed)
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/payments", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path)), request_body = RecordPayment,
    responses((status = 201, description = "Recorded, with its receipt number", body = Payment),
        (status = 200, description = "Already recorded under this provider reference", body = Payment),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn record_payment(
    State(st): State<AppState>,
    caller: Auth<CashDesk>,
    ApiPath(school_id): ApiPath<i64>,
    ApiJson(body): ApiJson<RecordPayment>,
) -> Result<(StatusCode, Json<Payment>)> {
    let body = body.fields();
    // Cashiers take cash; cashless payments are entered by accountants (providers notify by webhook).
    if body.channel != Channel::Cash {
        require(&caller, <Accountants as super::extract::RoleSet>::ROLES)?;
    }
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let (provider, provider_ref) = match body.channel {
        Channel::Cash => {
            if body.provider.as_deref().is_some_and(|p| p != "cash") || body.reported_fee.is_some()
            {
                return Err(Error::invalid(
                    "invalid_cash",
                    "cash has no provider and no fee",
                ));
            }
            ("cash".to_string(), None)
        }
        _ => {
            let provider = provider_id(body.provider.as_deref().unwrap_or_default())?;
            if provider == "cash" {
                return Err(Error::invalid(
                    "invalid_provider",
                    "provider cash is for channel cash",
                ));
            }
            let r = body.provider_ref.as_deref().ok_or_else(|| {
                Error::invalid(
                    "missing_provider_ref",
                    "cashless payments carry the provider's reference",
                )
            })?;
            (
                provider,
                Some(
                    identifier(r, "provider_ref", 64)
                        .map_err(|e| Error::invalid("invalid_provider_ref", e.to_string()))?,
                ),
            )
        }
    };
    if body.amount.dong() <= 0 {
        return Err(Error::invalid(
            "invalid_amount",
            "a payment is more than 0 đồng",
        ));
    }
    if body.reported_fee.is_some_and(|f| f.is_negative()) {
        return Err(Error::invalid("invalid_fee", "a reported fee is 0 or more"));
    }
    if body.allocations.len() > MAX_ALLOCATIONS {
        return Err(Error::invalid(
            "invalid_allocation",
            format!("at most {MAX_ALLOCATIONS} allocations per payment"),
        ));
    }
    // A sender that also notifies by webhook keys its payments by account and transaction id;
    // a hand entry of the same transaction must use the same key, or it would be booked twice.
    let provider_ref = match (
        provider_ref,
        crate::providers::by_name(&provider).map(|s| s.id()),
    ) {
        (Some(r), Some(pid)) => {
            let accounts: Vec<_> = st
                .store
                .provider_accounts_of_school(school.id)
                .await?
                .into_iter()
                .filter(|a| a.provider == pid)
                .collect();
            let chosen = match (accounts.len(), body.provider_account.as_deref()) {
                (0, _) => None,
                (1, None) => accounts.first(),
                (_, Some(name)) => Some(
                    accounts
                        .iter()
                        .find(|a| a.account.eq_ignore_ascii_case(name.trim()))
                        .ok_or_else(|| {
                            Error::invalid(
                                "unknown_provider_account",
                                format!("the school has no {provider} account {name}"),
                            )
                        })?,
                ),
                (_, None) => {
                    return Err(Error::invalid(
                        "ambiguous_provider_account",
                        format!(
                            "the school has several {provider} accounts: give provider_account"
                        ),
                    ))
                }
            };
            Some(match chosen {
                Some(a) => format!("{}:{r}", a.account),
                None => r,
            })
        }
        (r, _) => r,
    };
    let p = NewPayment {
        channel: body.channel,
        provider,
        provider_ref,
        bank_ref: None,
        payer_name: optional_text(body.payer_name.as_deref(), "payer_name", 200)
            .map_err(|e| Error::invalid("invalid_payer_name", e.to_string()))?,
        memo: optional_text(body.memo.as_deref(), "memo", 500)
            .map_err(|e| Error::invalid("invalid_memo", e.to_string()))?,
        amount: body.amount,
        received_at: parse_time(body.received_at.as_deref())?,
        reported_fee: body.reported_fee,
        allocate: Allocate::Given {
            allocations: body
                .allocations
                .iter()
                .map(|a| (a.invoice_id, a.amount))
                .collect(),
            method: if body.channel == Channel::Cash {
                AllocationMethod::CashDesk
            } else {
                AllocationMethod::Manual
            },
        },
        reported_fee_bearer: None,
        credited_account: None,
    };
    let (status, id) = match st.store.record_payment(&caller.actor(), &school, p).await? {
        Recorded::Created(id) => (StatusCode::CREATED, id),
        Recorded::Duplicate(id) => (StatusCode::OK, id),
    };
    Ok((status, Json(st.store.payment(id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PaymentQuery {
    #[param(inline)]
    pub channel: Option<Channel>,
    /// First day, `YYYY-MM-DD`, Asia/Ho_Chi_Minh.
    #[param(value_type = Option<Date>, inline)]
    pub from: Option<String>,
    /// Last day, inclusive.
    #[param(value_type = Option<Date>, inline)]
    pub to: Option<String>,
    /// `true`: only payments with unallocated credit.
    pub with_credit: Option<bool>,
    /// `true`: only payments whose fee differs from the schedule or had none in force.
    pub needs_review: Option<bool>,
    /// The payment under a provider reference, exactly as stored: for a sender's notification
    /// `<account>:<transaction id>` (the watched bank account, VNPay terminal, MoMo partner or
    /// ZaloPay app, then the sender's own transaction id in upper case), for a statement line
    /// nobody notified `<account>:ref:<BANK REFERENCE>`.
    #[param(value_type = Option<crate::http::fields::Text<200>>)]
    pub provider_ref: Option<String>,
    /// The payment of a sender's transaction id, whichever of the school's accounts it came to
    /// (`provider_ref` ending in `:<id>`, case-insensitive).
    #[param(pattern = "^[A-Za-z0-9-]{1,200}$")]
    pub txn_id: Option<String>,
    /// Payments under the bank's own reference (`FT25253…`), case-insensitive. Banks may reuse
    /// one, so there can be more than one.
    #[param(value_type = Option<crate::http::fields::Text<200>>)]
    pub bank_ref: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub cursor: Option<String>,
}

/// A reference to look a payment up by: trimmed, 1 to 200 characters, no control character
/// but whitespace (as the document's text type says).
fn reference(text: Option<&str>, field: &'static str) -> Result<Option<String>> {
    match text.map(str::trim) {
        None => Ok(None),
        Some(t)
            if !t.is_empty()
                && t.chars().count() <= 200
                && !t.chars().any(|c| c.is_control() && !c.is_whitespace()) =>
        {
            Ok(Some(t.to_string()))
        }
        Some(_) => Err(Error::BadRequest {
            code: "invalid_query",
            message: format!("{field} is 1 to 200 characters"),
        }),
    }
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/payments", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), PaymentQuery),
    responses((status = 200, body = List<Payment>), (status = 404, body = ErrorBody)))]
async fn list_payments(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath(school_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PaymentQuery>,
) -> Result<Json<List<Payment>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let day = |d: &Option<String>, next: bool| -> Result<Option<String>> {
        d.as_deref()
            .map(|t| {
                let date = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| {
                    Error::BadRequest {
                        code: "invalid_date",
                        message: "dates are YYYY-MM-DD".into(),
                    }
                })?;
                let date = if next {
                    date.succ_opt().unwrap_or(date)
                } else {
                    date
                };
                Ok(crate::store::format_time(crate::domain::time::day_start(
                    date,
                )))
            })
            .transpose()
    };
    let filter = PaymentFilter {
        channel: q.channel,
        from: day(&q.from, false)?,
        to: day(&q.to, true)?,
        with_credit: q.with_credit.unwrap_or(false),
        needs_review: q.needs_review.unwrap_or(false),
        provider_ref: reference(q.provider_ref.as_deref(), "provider_ref")?,
        txn_id: match q.txn_id.as_deref() {
            None => None,
            // Letters, digits and dashes, as senders write their ids: nothing a pattern reads.
            Some(t)
                if (1..=200).contains(&t.len())
                    && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                Some(t.to_ascii_uppercase())
            }
            Some(_) => {
                return Err(Error::BadRequest {
                    code: "invalid_query",
                    message: "txn_id is 1 to 200 letters, digits and dashes".into(),
                })
            }
        },
        bank_ref: reference(q.bank_ref.as_deref(), "bank_ref")?.map(|r| r.to_uppercase()),
    };
    let page = super::extract::page(q.limit, &q.cursor)?;
    Ok(Json(
        st.store
            .list_payments(school.id, &filter, page)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/payments/{payment_id}", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody)))]
async fn get_payment(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Payment>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.payment_in_school(school.id, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why; kept with the entry and in the audit log.
    pub reason: Text<500>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/payments/{payment_id}/reverse", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)), request_body = Reason,
    responses((status = 201, description = "The reversal entry, with its own receipt number", body = Payment),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reverse_payment(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<(StatusCode, Json<Payment>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let reason = clean_text(&body.reason, "reason", 500)
        .map_err(|e| Error::invalid("invalid_reason", e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(
            st.store
                .reverse_payment(&caller.actor(), &school, id, &reason)
                .await?,
        ),
    ))
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/payments/{payment_id}/allocations", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)), request_body = AllocationIn,
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn allocate_credit(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<AllocationIn>,
) -> Result<Json<Payment>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(
        st.store
            .allocate_credit(&caller.actor(), &school, id, body.invoice_id, body.amount)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundIn {
    /// At most the payment's unallocated credit.
    #[schema(value_type = PositiveVnd)]
    pub amount: Vnd,
    pub reason: Text<500>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/payments/{payment_id}/refunds", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)), request_body = RefundIn,
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn request_refund(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<RefundIn>,
) -> Result<Json<Payment>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let reason = clean_text(&body.reason, "reason", 500)
        .map_err(|e| Error::invalid("invalid_reason", e.to_string()))?;
    Ok(Json(
        st.store
            .request_refund(&caller.actor(), &school, id, body.amount, &reason)
            .await?,
    ))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptInvoice {
    pub invoice_id: i64,
    pub student_id: i64,
    pub payment_code: String,
    pub period: String,
    pub student_code: String,
    pub student_name: String,
    pub class_name: String,
    /// What this payment paid on the invoice.
    pub paid_here: Vnd,
    pub paid_here_formatted: String,
    pub lines: Vec<InvoiceLine>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Receipt {
    pub receipt_no: String,
    pub school_name: String,
    pub school_code: String,
    pub payment: Payment,
    pub invoices: Vec<ReceiptInvoice>,
    /// The amount as written on a receipt, e.g. "Một triệu năm trăm nghìn đồng".
    pub amount_in_words: String,
    pub parent_outlay_formatted: String,
    /// When the money was received, Asia/Ho_Chi_Minh.
    pub received_at_local: String,
}

async fn build_receipt(st: &AppState, caller: &Caller, school_id: i64, id: i64) -> Result<Receipt> {
    let school = st.store.school_in_scope(caller, school_id).await?;
    let payment = st.store.payment_in_school(school.id, id).await?;
    let mut invoices: Vec<ReceiptInvoice> = Vec::new();
    for a in &payment.allocations {
        if let Some(r) = invoices.iter_mut().find(|r| r.invoice_id == a.invoice_id) {
            r.paid_here = Vnd::new(r.paid_here.dong() + a.amount.dong()).unwrap_or(r.paid_here);
            r.paid_here_formatted = r.paid_here.formatted();
            continue;
        }
        let inv: Invoice = st.store.invoice_in_school(school.id, a.invoice_id).await?;
        invoices.push(ReceiptInvoice {
            invoice_id: inv.id,
            student_id: inv.student_id,
            payment_code: inv.payment_code,
            period: inv.period,
            student_code: inv.student_code,
            student_name: inv.student_name,
            class_name: inv.class_name,
            paid_here: a.amount,
            paid_here_formatted: a.amount.formatted(),
            lines: inv.lines.unwrap_or_default(),
        });
    }
    Ok(Receipt {
        receipt_no: payment.receipt_no.clone(),
        school_name: school.name,
        school_code: school.code,
        amount_in_words: vnd_in_words(payment.amount.dong()),
        parent_outlay_formatted: payment.parent_outlay.formatted(),
        received_at_local: local_text(&payment.received_at),
        invoices,
        payment,
    })
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/payments/{payment_id}/receipt", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)),
    responses((status = 200, body = Receipt), (status = 404, body = ErrorBody)))]
async fn receipt(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Receipt>> {
    Ok(Json(build_receipt(&st, &caller, school_id, id).await?))
}

/// The receipt's policy, naming [`RECEIPT_CSS`] by hash: computed once.
static RECEIPT_POLICY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| super::pages::policy_with_style(RECEIPT_CSS));

/// The receipt's one inline style, named by hash in its Content-Security-Policy.
const RECEIPT_CSS: &str = r#"body{font-family:"Times New Roman",serif;max-width:46em;margin:2em auto;color:#000}
h1{font-size:1.4em;text-align:center;margin:.2em 0}.c{text-align:center}
table{border-collapse:collapse;width:100%;margin:.8em 0}td,th{border:1px solid #444;padding:.25em .5em;text-align:left}
td.n,th.n{text-align:right}.muted{color:#444;font-size:.9em}
@media print{body{margin:0}}
"#;

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Biên lai {{ r.receipt_no }}</title>
<style>{{ css|safe }}</style></head><body>
<p class="c"><strong>{{ r.school_name }}</strong></p>
<h1>BIÊN LAI THU TIỀN{% if r.payment.reverses_payment_id.is_some() %} (HỦY){% endif %}</h1>
<p class="c">Số: <strong>{{ r.receipt_no }}</strong> · {{ r.received_at_local }} (giờ Việt Nam)</p>
<p>Người nộp: {{ payer }}</p>
<p>Hình thức: {{ channel }}{% if r.payment.provider != "cash" %} qua {{ r.payment.provider }}{% endif %}{% if let Some(pref) = r.payment.provider_ref %} · mã giao dịch {{ pref }}{% endif %}</p>
{% for inv in r.invoices %}
<p><strong>{{ inv.student_name }}</strong> ({{ inv.student_code }}, lớp {{ inv.class_name }}) · hóa đơn {{ inv.payment_code }} kỳ {{ inv.period }}</p>
<table><tr><th>Khoản thu</th><th class="n">Số tiền</th></tr>
{% for l in inv.lines %}<tr><td>{{ l.description }}</td><td class="n">{{ l.amount_formatted }}</td></tr>
{% endfor %}<tr><td><strong>Thanh toán lần này</strong></td><td class="n"><strong>{{ inv.paid_here_formatted }}</strong></td></tr></table>
{% endfor %}
<p>Số tiền: <strong>{{ r.payment.amount_formatted }}</strong></p>
<p>Bằng chữ: <em>{{ r.amount_in_words }}</em></p>
<table><tr><th>Phí giao dịch</th><th>Cách tính</th><th class="n">Số tiền</th><th>Người chịu</th></tr>
{% for f in r.payment.fees %}<tr><td>{{ f.charged_by }}</td><td>{{ f.basis }}</td><td class="n">{{ f.amount_formatted }}</td><td>{{ bearer(f) }}</td></tr>
{% endfor %}{% if r.payment.fees.is_empty() %}<tr><td colspan="4">Không có phí{% if let Some(why) = r.payment.no_fees_reason %} ({{ why }}){% endif %}</td></tr>{% endif %}
</table>
<p>Tổng phụ huynh đã chi: <strong>{{ r.parent_outlay_formatted }}</strong></p>
{% if let Some(reason) = r.payment.reversal_reason %}<p>Lý do hủy: {{ reason }}</p>{% endif %}
<p class="muted">Người lập: {{ r.payment.recorded_by }}</p>
</body></html>"#
)]
struct ReceiptPage<'a> {
    css: &'static str,
    r: &'a Receipt,
    payer: &'a str,
    channel: &'static str,
}

impl ReceiptPage<'_> {
    fn bearer(&self, f: &FeeLine) -> &'static str {
        match f.borne_by {
            Bearer::School => "Nhà trường",
            Bearer::Parent => "Phụ huynh",
            Bearer::Provider => "Đơn vị trung gian",
        }
    }
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/payments/{payment_id}/receipt.html", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)),
    responses((status = 200, description = "A printable receipt", content_type = "text/html", body = String), (status = 404, body = ErrorBody)))]
async fn receipt_html(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Response> {
    let mut r = build_receipt(&st, &caller, school_id, id).await?;
    // The JSON answers are masked for auditors by `privacy::layer`; the page is masked here.
    if let Some(p) = super::privacy::Pseudonyms::for_caller(&st, &caller) {
        r.payment.payer_name = None;
        r.payment.memo = None;
        for i in &mut r.invoices {
            i.student_name = p.of(i.student_id);
            i.student_code = i.student_name.clone();
        }
    }
    let channel = match r.payment.channel {
        Channel::Cash => "Tiền mặt",
        Channel::BankTransfer => "Chuyển khoản",
        Channel::Card => "Thẻ",
        Channel::Ewallet => "Ví điện tử",
    };
    let page = ReceiptPage {
        css: RECEIPT_CSS,
        r: &r,
        payer: r.payment.payer_name.as_deref().unwrap_or("—"),
        channel,
    };
    let html = page
        .render()
        .map_err(|e| Error::Internal(format!("receipt template: {e}")))?;
    let students = r.invoices.iter().map(|i| i.student_id);
    Ok(super::privacy::Disclosed::students(students).attach((
        [
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::CONTENT_SECURITY_POLICY, RECEIPT_POLICY.clone()),
        ],
        Html(html),
    )))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementPayment {
    pub payment_id: i64,
    pub receipt_no: String,
    pub channel: Channel,
    pub provider: String,
    pub received_at_local: String,
    /// The whole payment.
    pub payment_amount: Vnd,
    /// What it paid on this invoice.
    pub paid_on_this_invoice: Vnd,
    pub paid_on_this_invoice_formatted: String,
    pub fees: Vec<FeeLine>,
    pub no_fees_reason: Option<String>,
    /// Amount plus the fees the parent bore, for the whole payment.
    pub parent_outlay: Vnd,
    pub parent_outlay_formatted: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceStatement {
    pub invoice: Invoice,
    pub payments: Vec<StatementPayment>,
    /// Fees the parent bore over these payments.
    pub parent_fees: Vnd,
    pub parent_fees_formatted: String,
    /// Everything the parent paid out for these payments, fees included.
    pub parent_outlay: Vnd,
    pub parent_outlay_formatted: String,
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/invoices/{invoice_id}/statement", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("invoice_id" = i64, Path)),
    responses((status = 200, description = "The invoice's lines, each payment with its fees and who bore them, and the parent's outlay", body = InvoiceStatement), (status = 404, body = ErrorBody)))]
async fn invoice_statement(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<InvoiceStatement>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let invoice = st.store.invoice_in_school(school.id, id).await?;
    Ok(Json(statement_of(&st, invoice).await?))
}

/// An invoice with each payment made to it, its fees and who bore them, and the parent's
/// outlay; the invoice is the caller's to have found in their scope.
pub(crate) async fn statement_of(st: &AppState, invoice: Invoice) -> Result<InvoiceStatement> {
    let mut payments: Vec<StatementPayment> = Vec::new();
    for pid in st.store.payments_of_invoice(invoice.id).await? {
        let p = st.store.payment(pid).await?;
        let here: i64 = p
            .allocations
            .iter()
            .filter(|a| a.invoice_id == invoice.id)
            .map(|a| a.amount.dong())
            .sum();
        let here = Vnd::new(here).unwrap_or_default();
        payments.push(StatementPayment {
            payment_id: p.id,
            receipt_no: p.receipt_no,
            channel: p.channel,
            provider: p.provider,
            received_at_local: p.received_at_local,
            payment_amount: p.amount,
            paid_on_this_invoice: here,
            paid_on_this_invoice_formatted: here.formatted(),
            fees: p.fees,
            no_fees_reason: p.no_fees_reason,
            parent_outlay: p.parent_outlay,
            parent_outlay_formatted: p.parent_outlay.formatted(),
        });
    }
    let outlay: i64 = payments.iter().map(|p| p.parent_outlay.dong()).sum();
    let fees: i64 = payments
        .iter()
        .flat_map(|p| &p.fees)
        .filter(|f| f.borne_by == Bearer::Parent)
        .map(|f| f.amount.dong())
        .sum();
    let (outlay, fees) = (
        Vnd::new(outlay).unwrap_or_default(),
        Vnd::new(fees).unwrap_or_default(),
    );
    Ok(InvoiceStatement {
        invoice,
        payments,
        parent_fees: fees,
        parent_fees_formatted: fees.formatted(),
        parent_outlay: outlay,
        parent_outlay_formatted: outlay.formatted(),
    })
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/invoices/{invoice_id}/payment-options", tag = "payments", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("invoice_id" = i64, Path)),
    responses((status = 200, description = "Every channel the school accepts with the fee the parent would bear, free options first", body = Vec<PaymentOption>), (status = 404, body = ErrorBody)))]
async fn payment_options(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Vec<PaymentOption>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let invoice = st.store.invoice_in_school(school.id, id).await?;
    Ok(Json(st.store.payment_options(&school, &invoice).await?))
}
