//! API tokens, managed by an admin.

use super::extract::{Admins, ApiJson, ApiPath, Auth};
use super::AppState;
use crate::domain::access::{Role, Scope};
use crate::domain::text::clean_text;
use crate::error::{Error, ErrorBody, Result};
use crate::store::tokens::TokenInfo;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub role: Role,
    /// Required for accountant and cashier tokens.
    pub school_id: Option<i64>,
    /// Required for auditor tokens.
    pub department_id: Option<i64>,
    /// Who or what holds the token, e.g. "Kế toán THCS Lê Quý Đôn".
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token itself, shown only in this response: only its hash is stored.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// The scope a role's token gets from the request.
pub fn scope_for(role: Role, school_id: Option<i64>, department_id: Option<i64>) -> Result<Scope> {
    match (role, school_id, department_id) {
        (Role::Admin, None, None) => Ok(Scope::All),
        (Role::Accountant | Role::Cashier, Some(s), None) => Ok(Scope::School(s)),
        (Role::Auditor, None, Some(d)) => Ok(Scope::Department(d)),
        _ => Err(Error::invalid(
            "invalid_scope",
            "admin tokens take neither school_id nor department_id; accountant and cashier tokens take school_id; auditor tokens take department_id",
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_token(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    let scope = scope_for(body.role, body.school_id, body.department_id)?;
    let label = clean_text(&body.label, "label", 200)
        .map_err(|e| Error::invalid("invalid_label", e.to_string()))?;
    let (info, token) = st
        .store
        .create_token(&caller.actor(), body.role, scope, &label)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info })))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenInfo>), (status = 403, body = ErrorBody)))]
async fn list_tokens(
    State(st): State<AppState>,
    _caller: Auth<Admins>,
) -> Result<Json<Vec<TokenInfo>>> {
    Ok(Json(st.store.list_tokens().await?))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "tokens", security(("bearer" = [])),
    params(("token_id" = i64, Path)),
    responses((status = 200, description = "Revoked", body = TokenInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_token(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<TokenInfo>> {
    Ok(Json(st.store.revoke_token(&caller.actor(), id).await?))
}
