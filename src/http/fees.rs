//! Fee schedules, and the settings the transparency report judges.

use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, Auth, Overseers};
use super::fields::{trimmed, Date, NonNegativeVnd, OptionalText, ProviderName};
use super::AppState;
use crate::domain::access::Scope;
use crate::domain::fee::{Bearer, Channel, PartialTerms};
use crate::domain::money::Vnd;
use crate::domain::text::optional_text;
use crate::error::{Error, ErrorBody, Result};
use crate::http::payments::provider_id;
use crate::store::fees::{FeeSchedule, NewSchedule};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::str::FromStr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_schedule, list_schedules))
        .routes(routes!(school_settings))
        .routes(routes!(department_policy))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// e.g. `vnpay`, `momo`, `zalopay`, `sepay`.
    #[schema(value_type = ProviderName)]
    pub provider: String,
    /// Any but cash, which is free.
    #[schema(value_type = CashlessChannel)]
    pub channel: Channel,
    /// Set for a school's own agreement; omitted for the provider's published terms.
    pub school_id: Option<i64>,
    /// `YYYY-MM-DD`, first day in force.
    #[schema(value_type = Date)]
    pub effective_from: String,
    /// `YYYY-MM-DD`, first day no longer in force, after `effective_from`; omitted while
    /// open-ended.
    #[schema(value_type = Option<Date>)]
    pub effective_to: Option<String>,
    /// Percent as a decimal string from 0 to 100 with at most 4 decimals, e.g. "1.1".
    /// Required for published terms.
    #[schema(value_type = Option<SchedulePercent>)]
    pub percent: Option<String>,
    #[schema(value_type = Option<NonNegativeVnd>)]
    pub fixed: Option<Vnd>,
    /// At most `max`.
    #[schema(value_type = Option<NonNegativeVnd>)]
    pub min: Option<Vnd>,
    #[schema(value_type = Option<NonNegativeVnd>)]
    pub max: Option<Vnd>,
    /// Who bears the fee. Required for published terms.
    pub bearer: Option<Bearer>,
    pub note: Option<OptionalText<500>>,
}

/// The documented body of `POST /fee-schedules`: [`CreateSchedule`] in its two shapes, a
/// provider's published terms (no `school_id`; `percent` and `bearer` required) or a school's
/// own agreement (any term left out is inherited).
pub struct ScheduleBody;

impl PartialSchema for ScheduleBody {
    fn schema() -> RefOr<Schema> {
        let RefOr::T(Schema::Object(agreement)) = CreateSchedule::schema() else {
            unreachable!("a struct's schema is an object");
        };
        let mut published = agreement.clone();
        let mut agreement = agreement;
        agreement.description = Some(
            "A school's own agreement; any term left out is inherited from the published one."
                .into(),
        );
        agreement.required.push("school_id".into());
        agreement.properties.insert(
            "school_id".into(),
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .into(),
        );
        published.description =
            Some("A provider's published terms: percent and bearer required.".into());
        published.properties.insert(
            "school_id".into(),
            ObjectBuilder::new().schema_type(Type::Null).into(),
        );
        for (field, schema) in [
            ("percent", SchedulePercent::schema()),
            ("bearer", Bearer::schema()),
        ] {
            published.required.push(field.into());
            published.properties.insert(field.into(), schema);
        }
        OneOfBuilder::new().item(agreement).item(published).into()
    }
}

impl ToSchema for ScheduleBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "CreateSchedule".into()
    }

    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        CreateSchedule::schemas(out);
    }
}

/// A schedule's percent as the handler and `PartialTerms::validate` read it.
pub struct SchedulePercent;

impl PartialSchema for SchedulePercent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(trimmed(
                r"(?:100(?:\.0*)?|[0-9]{1,2}(?:\.[0-9]{0,4}0*)?|\.[0-9]{1,4}0*)",
            )))
            .description(Some(
                "Percent from 0 to 100 with at most 4 decimals, as a decimal string.",
            ))
            .examples(["1.1"])
            .into()
    }
}

impl ToSchema for SchedulePercent {}

/// Every channel but cash.
pub struct CashlessChannel;

impl PartialSchema for CashlessChannel {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["bank_transfer", "card", "ewallet"]))
            .into()
    }
}

impl ToSchema for CashlessChannel {}

fn date(text: &str, field: &str) -> Result<String> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|d| d.to_string())
        .map_err(|_| Error::invalid("invalid_date", format!("{field} is YYYY-MM-DD")))
}

#[utoipa::path(post, path = "/api/v1/fee-schedules", tag = "fees", security(("bearer" = [])), request_body = ScheduleBody,
    responses((status = 201, body = FeeSchedule), (status = 403, body = ErrorBody), (status = 409, description = "Overlaps a schedule in force", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_schedule(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiJson(b): ApiJson<CreateSchedule>,
) -> Result<(StatusCode, Json<FeeSchedule>)> {
    if b.channel == Channel::Cash {
        return Err(Error::invalid(
            "invalid_channel",
            "cash has no fee schedule: it is free",
        ));
    }
    let provider = provider_id(&b.provider)?;
    let effective_from = date(&b.effective_from, "effective_from")?;
    let effective_to = b
        .effective_to
        .as_deref()
        .map(|t| date(t, "effective_to"))
        .transpose()?;
    if effective_to
        .as_ref()
        .is_some_and(|to| *to <= effective_from)
    {
        return Err(Error::invalid(
            "invalid_date",
            "effective_to is after effective_from",
        ));
    }
    let percent = b
        .percent
        .as_deref()
        .map(|p| {
            Decimal::from_str(p.trim()).map_err(|_| {
                Error::invalid(
                    "invalid_terms",
                    "percent is a decimal string such as \"1.1\"",
                )
            })
        })
        .transpose()?;
    let terms = PartialTerms {
        percent,
        fixed: b.fixed,
        min: b.min,
        max: b.max,
        bearer: b.bearer,
    };
    terms
        .validate()
        .map_err(|e| Error::invalid("invalid_terms", e.to_string()))?;
    if b.school_id.is_none() && (terms.percent.is_none() || terms.bearer.is_none()) {
        return Err(Error::invalid(
            "invalid_terms",
            "published terms give at least percent and bearer",
        ));
    }
    let note = optional_text(b.note.as_deref(), "note", 500)
        .map_err(|e| Error::invalid("invalid_note", e.to_string()))?;
    let s = NewSchedule {
        provider,
        channel: b.channel,
        school_id: b.school_id,
        effective_from,
        effective_to,
        terms,
        note,
    };
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_fee_schedule(&caller.actor(), s).await?),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScheduleQuery {
    /// Also list this school's agreements (staff see their own school's anyway).
    pub school_id: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/fee-schedules", tag = "fees", security(("bearer" = [])), params(ScheduleQuery),
    responses((status = 200, body = Vec<FeeSchedule>)))]
async fn list_schedules(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiQuery(q): ApiQuery<ScheduleQuery>,
) -> Result<Json<Vec<FeeSchedule>>> {
    let (school, all) = match caller.scope {
        Scope::All => (q.school_id, q.school_id.is_none()),
        Scope::School(id) => (Some(id), false),
        // A parent never gets here (not an overseer); were one to, they would see nothing.
        Scope::Family(_) => (Some(0), false),
        Scope::Department(_) => match q.school_id {
            Some(id) => (Some(st.store.school_in_scope(&caller, id).await?.id), false),
            None => (None, false),
        },
    };
    Ok(Json(st.store.fee_schedules(school, all).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolSettings {
    /// Whether the school office takes cash. The department requires it; `false` is recorded
    /// and reported to auditors.
    pub accepts_cash: bool,
}

#[utoipa::path(put, path = "/api/v1/schools/{school_id}/settings", tag = "fees", security(("bearer" = [])),
    params(("school_id" = i64, Path)), request_body = SchoolSettings,
    responses((status = 200, body = SchoolSettings), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn school_settings(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath(school_id): ApiPath<i64>,
    ApiJson(b): ApiJson<SchoolSettings>,
) -> Result<Json<serde_json::Value>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    st.store
        .set_accepts_cash(&caller.actor(), school.id, b.accepts_cash)
        .await?;
    Ok(Json(serde_json::json!({"accepts_cash": b.accepts_cash})))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentPolicy {
    /// When true, every fee a parent bore is flagged as a breach in the department's reports.
    pub parents_must_not_bear_fees: bool,
}

#[utoipa::path(put, path = "/api/v1/departments/{department_id}/policy", tag = "fees", security(("bearer" = [])),
    params(("department_id" = i64, Path)), request_body = DepartmentPolicy,
    responses((status = 200, body = DepartmentPolicy), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn department_policy(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath(department_id): ApiPath<i64>,
    ApiJson(b): ApiJson<DepartmentPolicy>,
) -> Result<Json<serde_json::Value>> {
    st.store.department_in_scope(&caller, department_id).await?;
    st.store
        .set_parent_fee_policy(&caller.actor(), department_id, b.parents_must_not_bear_fees)
        .await?;
    Ok(Json(
        serde_json::json!({"parents_must_not_bear_fees": b.parents_must_not_bear_fees}),
    ))
}
