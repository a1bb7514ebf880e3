//! API tokens, managed by an admin.

use super::extract::{Admins, ApiJson, ApiPath, Auth};
use super::fields::{tagged, Text};
use super::AppState;
use crate::domain::access::{Role, Scope};
use crate::domain::text::clean_text;
use crate::error::{Error, ErrorBody, Result};
use crate::store::tokens::TokenInfo;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

/// A new token: its role, the scope that role takes, and a label. Each role has its own shape,
/// so a scope that does not fit the role is refused by the schema as by the service.
#[derive(Debug, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum CreateToken {
    Admin(AdminToken),
    Accountant(SchoolToken),
    Cashier(SchoolToken),
    Auditor(AuditorToken),
}

/// Everything.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Who or what holds the token, e.g. "Kế toán THCS Lê Quý Đôn".
    pub label: Text<200>,
}

/// One school: an accountant's books or a cashier's desk.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolToken {
    pub school_id: i64,
    /// Who or what holds the token.
    pub label: Text<200>,
}

/// One department, read-only.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditorToken {
    pub department_id: i64,
    /// Who or what holds the token.
    pub label: Text<200>,
}

impl PartialSchema for CreateToken {
    fn schema() -> RefOr<Schema> {
        tagged(
            "role",
            [
                ("admin", AdminToken::schema()),
                ("accountant", SchoolToken::schema()),
                ("cashier", SchoolToken::schema()),
                ("auditor", AuditorToken::schema()),
            ],
        )
    }
}

impl ToSchema for CreateToken {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        AdminToken::schemas(out);
        SchoolToken::schemas(out);
        AuditorToken::schemas(out);
    }
}

impl CreateToken {
    fn parts(&self) -> (Role, Scope, &str) {
        match self {
            CreateToken::Admin(t) => (Role::Admin, Scope::All, &t.label),
            CreateToken::Accountant(t) => (Role::Accountant, Scope::School(t.school_id), &t.label),
            CreateToken::Cashier(t) => (Role::Cashier, Scope::School(t.school_id), &t.label),
            CreateToken::Auditor(t) => {
                (Role::Auditor, Scope::Department(t.department_id), &t.label)
            }
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token itself, shown only in this response: only its hash is stored.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_token(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    let (role, scope, label) = body.parts();
    let label = clean_text(label, "label", 200)
        .map_err(|e| Error::invalid("invalid_label", e.to_string()))?;
    let (info, token) = st
        .store
        .create_token(&caller.actor(), role, scope, &label)
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
