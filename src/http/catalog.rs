//! The fee-item catalog of a department and of a school.

use super::extract::{Accountants, Admins, ApiJson, ApiPath, Auth, DepartmentReaders, Readers};
use super::fields::{Code, OptionalText, PositiveVnd, Text};
use super::AppState;
use crate::domain::catalog::{Cadence, Category};
use crate::domain::money::Vnd;
use crate::domain::text::{clean_text, identifier, optional_text};
use crate::error::{Error, ErrorBody, Result};
use crate::store::catalog::{FeeItemRecord, NewFeeItem, Owner};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_department_item, list_department_items))
        .routes(routes!(create_school_item, list_school_items))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFeeItem {
    /// Short code invoices and import files use, e.g. `MEALS`.
    pub code: Code<32>,
    /// Vietnamese name, e.g. "Tiền ăn bán trú".
    pub name: Text<200>,
    pub category: Category,
    /// e.g. "NQ 18/2025/NQ-HĐND, Điều 2, khoản 15".
    pub legal_basis: Option<OptionalText<500>>,
    /// Whether parents must pay it; voluntary items may never be billed as mandatory.
    pub mandatory: bool,
    pub cadence: Cadence,
    /// Maximum per billing period, whole đồng.
    #[schema(value_type = Option<PositiveVnd>)]
    pub cap_per_period: Option<Vnd>,
}

fn parse(body: CreateFeeItem) -> Result<NewFeeItem> {
    let code = identifier(&body.code, "code", 32)
        .map_err(|e| Error::invalid("invalid_code", e.to_string()))?;
    let name = clean_text(&body.name, "name", 200)
        .map_err(|e| Error::invalid("invalid_name", e.to_string()))?;
    let legal_basis = optional_text(body.legal_basis.as_deref(), "legal_basis", 500)
        .map_err(|e| Error::invalid("invalid_legal_basis", e.to_string()))?;
    if body.cap_per_period.is_some_and(|c| c.dong() <= 0) {
        return Err(Error::invalid(
            "invalid_cap",
            "cap_per_period must be more than 0 đồng",
        ));
    }
    Ok(NewFeeItem {
        code,
        name,
        category: body.category,
        legal_basis,
        mandatory: body.mandatory,
        cadence: body.cadence,
        cap_per_period: body.cap_per_period,
    })
}

#[utoipa::path(post, path = "/api/v1/departments/{department_id}/fee-items", tag = "catalog", security(("bearer" = [])),
    params(("department_id" = i64, Path)), request_body = CreateFeeItem,
    responses((status = 201, body = FeeItemRecord), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_department_item(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath(department_id): ApiPath<i64>,
    ApiJson(body): ApiJson<CreateFeeItem>,
) -> Result<(StatusCode, Json<FeeItemRecord>)> {
    st.store.department_in_scope(&caller, department_id).await?;
    let item = st
        .store
        .create_fee_item(
            &caller.actor(),
            Owner::Department(department_id),
            parse(body)?,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

#[utoipa::path(get, path = "/api/v1/departments/{department_id}/fee-items", tag = "catalog", security(("bearer" = [])),
    params(("department_id" = i64, Path)),
    responses((status = 200, body = Vec<FeeItemRecord>), (status = 404, body = ErrorBody)))]
async fn list_department_items(
    State(st): State<AppState>,
    caller: Auth<DepartmentReaders>,
    ApiPath(department_id): ApiPath<i64>,
) -> Result<Json<Vec<FeeItemRecord>>> {
    st.store.department_in_scope(&caller, department_id).await?;
    Ok(Json(st.store.department_fee_items(department_id).await?))
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/fee-items", tag = "catalog", security(("bearer" = [])),
    params(("school_id" = i64, Path)), request_body = CreateFeeItem,
    responses((status = 201, body = FeeItemRecord), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_school_item(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(school_id): ApiPath<i64>,
    ApiJson(body): ApiJson<CreateFeeItem>,
) -> Result<(StatusCode, Json<FeeItemRecord>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let owner = Owner::School {
        id: school.id,
        department_id: school.department_id,
    };
    let item = st
        .store
        .create_fee_item(&caller.actor(), owner, parse(body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/fee-items", tag = "catalog", security(("bearer" = [])),
    params(("school_id" = i64, Path)),
    responses((status = 200, description = "The department's items and the school's own", body = Vec<FeeItemRecord>), (status = 404, body = ErrorBody)))]
async fn list_school_items(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath(school_id): ApiPath<i64>,
) -> Result<Json<Vec<FeeItemRecord>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(
        st.store
            .school_fee_items(school.id, school.department_id)
            .await?,
    ))
}
