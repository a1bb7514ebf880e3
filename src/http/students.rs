//! Students of a school.

use super::extract::{Accountants, ApiJson, ApiPath, ApiQuery, Auth, Readers};
use super::fields::{Code, OptionalCode, OptionalText, Text};
use super::{AppState, List};
use crate::domain::text::{clean_text, identifier, optional_text};
use crate::error::{Error, ErrorBody, Result};
use crate::store::students::{NewStudent, Student, StudentFilter};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_student, list_students))
        .routes(routes!(get_student))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStudent {
    pub student_code: Code<32>,
    /// Full name with Vietnamese diacritics, e.g. "Nguyễn Thị Mai Anh".
    pub full_name: Text<200>,
    pub class_name: Text<32>,
    /// Shared by siblings, so one transfer can pay for several children.
    pub family_key: Option<OptionalCode<64>>,
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/students", tag = "students", security(("bearer" = [])),
    params(("school_id" = i64, Path)), request_body = CreateStudent,
    responses((status = 201, body = Student), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_student(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(school_id): ApiPath<i64>,
    ApiJson(body): ApiJson<CreateStudent>,
) -> Result<(StatusCode, Json<Student>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let invalid =
        |e: crate::domain::text::TextError| Error::invalid("invalid_student", e.to_string());
    let s = NewStudent {
        student_code: identifier(&body.student_code, "student_code", 32).map_err(invalid)?,
        full_name: clean_text(&body.full_name, "full_name", 200).map_err(invalid)?,
        class_name: clean_text(&body.class_name, "class_name", 32).map_err(invalid)?,
        family_key: match body
            .family_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            None => None,
            Some(k) => Some(identifier(k, "family_key", 64).map_err(invalid)?),
        },
    };
    Ok((
        StatusCode::CREATED,
        Json(
            st.store
                .create_student(&caller.actor(), school.id, s)
                .await?,
        ),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StudentQuery {
    /// Only this class (blank: every class).
    #[param(inline)]
    pub class: Option<OptionalText<32>>,
    #[param(inline)]
    pub family_key: Option<Code<64>>,
    #[param(inline)]
    pub student_code: Option<Code<32>>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/students", tag = "students", security(("bearer" = [])),
    params(("school_id" = i64, Path), StudentQuery),
    responses((status = 200, body = List<Student>), (status = 404, body = ErrorBody)))]
async fn list_students(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath(school_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<StudentQuery>,
) -> Result<Json<List<Student>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let page = super::extract::page(q.limit, &q.cursor)?;
    let bad = |e: crate::domain::text::TextError| Error::BadRequest {
        code: "invalid_query",
        message: e.to_string(),
    };
    let filter = StudentFilter {
        class_name: optional_text(q.class.as_deref(), "class", 32).map_err(bad)?,
        family_key: q
            .family_key
            .as_deref()
            .map(|k| identifier(k, "family_key", 64))
            .transpose()
            .map_err(bad)?,
        student_code: q
            .student_code
            .as_deref()
            .map(|c| identifier(c, "student_code", 32))
            .transpose()
            .map_err(bad)?,
    };
    Ok(Json(
        st.store
            .list_students(school.id, &filter, page)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/students/{student_id}", tag = "students", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("student_id" = i64, Path)),
    responses((status = 200, body = Student), (status = 404, body = ErrorBody)))]
async fn get_student(
    State(st): State<AppState>,
    caller: Auth<Readers>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Student>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.student_in_school(school.id, id).await?))
}
