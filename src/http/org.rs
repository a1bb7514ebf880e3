//! Departments and schools.

use super::extract::{
    Admins, ApiJson, ApiPath, ApiQuery, Auth, DepartmentReaders, PageQuery, Readers,
};
use super::fields::{Code, PaymentPrefix, Text};
use super::{AppState, List};
use crate::domain::code::SchoolPrefix;
use crate::domain::text::{clean_text, identifier};
use crate::error::{Error, ErrorBody, Result};
use crate::store::org::{Department, School};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_department, list_departments))
        .routes(routes!(get_department))
        .routes(routes!(create_school, list_schools))
        .routes(routes!(get_school))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDepartment {
    /// Short code, e.g. `SGDDT-HCM`.
    pub code: Code<32>,
    pub name: Text<200>,
}

#[utoipa::path(post, path = "/api/v1/departments", tag = "organisation", security(("bearer" = [])),
    request_body = CreateDepartment,
    responses((status = 201, body = Department), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_department(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiJson(body): ApiJson<CreateDepartment>,
) -> Result<(StatusCode, Json<Department>)> {
    let code = identifier(&body.code, "code", 32)
        .map_err(|e| Error::invalid("invalid_code", e.to_string()))?;
    let name = clean_text(&body.name, "name", 200)
        .map_err(|e| Error::invalid("invalid_name", e.to_string()))?;
    let d = st
        .store
        .create_department(&caller.actor(), &code, &name)
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[utoipa::path(get, path = "/api/v1/departments", tag = "organisation", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = List<Department>), (status = 401, body = ErrorBody)))]
async fn list_departments(
    State(st): State<AppState>,
    caller: Auth<DepartmentReaders>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<List<Department>>> {
    Ok(Json(
        st.store.list_departments(&caller, q.page()?).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/departments/{department_id}", tag = "organisation", security(("bearer" = [])),
    params(("department_id" = i64, Path)),
    responses((status = 200, body = Department), (status = 404, body = ErrorBody)))]
async fn get_department(
    State(st): State<AppState>,
    caller: Auth<DepartmentReaders>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Department>> {
    Ok(Json(st.store.department_in_scope(&caller, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchool {
    pub department_id: i64,
    /// Short code used on the command line, e.g. `THCS-LQD`.
    pub code: Code<32>,
    pub name: Text<200>,
    /// 2 to 4 characters from 2-9 and A-Z without I, L, O; starts every payment code of the school.
    #[schema(value_type = PaymentPrefix)]
    pub payment_prefix: String,
}

#[utoipa::path(post, path = "/api/v1/schools", tag = "organisation", security(("bearer" = [])),
    request_body = CreateSchool,
    responses((status = 201, body = School), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_school(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiJson(body): ApiJson<CreateSchool>,
) -> Result<(StatusCode, Json<School>)> {
    let code = identifier(&body.code, "code", 32)
        .map_err(|e| Error::invalid("invalid_code", e.to_string()))?;
    let name = clean_text(&body.name, "name", 200)
        .map_err(|e| Error::invalid("invalid_name", e.to_string()))?;
    let prefix = SchoolPrefix::parse(&body.payment_prefix)
        .map_err(|e| Error::invalid("invalid_payment_prefix", e.to_string()))?;
    let s = st
        .store
        .create_school(&caller.actor(), body.department_id, &code, &name, &prefix)
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SchoolQuery {
    /// Only the schools of this department.
    pub department_id: Option<i64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/schools", tag = "organisation", security(("bearer" = [])), params(SchoolQuery),
    responses((status = 200, body = List<School>), (status = 401, body = ErrorBody)))]
async fn list_schools(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiQuery(q): ApiQuery<SchoolQuery>,
) -> Result<Json<List<School>>> {
    let page = super::extract::page(q.limit, &q.cursor)?;
    Ok(Json(
        st.store
            .list_schools(&caller, q.department_id, page)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}", tag = "organisation", security(("bearer" = [])),
    params(("school_id" = i64, Path)),
    responses((status = 200, body = School), (status = 404, body = ErrorBody)))]
async fn get_school(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<School>> {
    Ok(Json(st.store.school_in_scope(&caller, id).await?))
}
