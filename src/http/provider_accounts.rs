//! Admin configuration of the accounts senders notify for, and their secrets (write-only: no
//! response ever contains one), and the archive of deliveries for accountants and auditors.

use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, Auth, Overseers, PageQuery};
use super::AppState;
use crate::domain::access::Caller;
use crate::domain::text::{clean_text, identifier};
use crate::error::{Error, ErrorBody, Result};
use crate::providers::{self, GivenSecret, ProviderId, Sender};
use crate::store::webhooks::{NewProviderAccount, ProviderAccount, ProviderEvent};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_account, list_accounts))
        .routes(routes!(add_secret))
        .routes(routes!(retire_secret))
        .routes(routes!(list_events))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProviderAccount {
    pub provider: ProviderId,
    /// The id the sender puts in its notifications: VNPay `vnp_TmnCode`, MoMo `partnerCode`,
    /// ZaloPay `app_id`, SePay/Casso/Standard Webhooks the bank account number.
    pub account: String,
    pub label: String,
    /// VNPay hash secret, MoMo secret key, ZaloPay key2, SePay API key or webhook signing
    /// secret, Casso checksum key, or a Standard Webhooks `whsec_…` secret. Stored sealed; never
    /// shown again.
    pub secret: String,
    /// MoMo's access key (signed with, not secret).
    pub access_key: Option<String>,
    /// For SePay: `api_key` (the default) or `hmac_sha256`, the way the webhook is set to
    /// authenticate in SePay's dashboard.
    pub scheme: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSecret {
    pub secret: String,
    pub access_key: Option<String>,
    /// For SePay: `api_key` or `hmac_sha256`.
    pub scheme: Option<String>,
}

/// The sender a request names, if feerecon knows it.
fn known(provider: ProviderId) -> Result<&'static dyn Sender> {
    providers::sender(provider).ok_or_else(|| {
        Error::invalid(
            "unknown_provider",
            format!(
                "provider is one of {}",
                providers::SENDERS
                    .iter()
                    .map(|s| s.id().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/provider-accounts", tag = "webhooks", security(("bearer" = [])),
    params(("school_id" = i64, Path)), request_body = CreateProviderAccount,
    responses((status = 201, description = "Configured; point the sender at webhook_path", body = ProviderAccount), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_account(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath(school_id): ApiPath<i64>,
    ApiJson(b): ApiJson<CreateProviderAccount>,
) -> Result<(StatusCode, Json<ProviderAccount>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let account = identifier(&b.account, "account", 64)
        .map_err(|e| Error::invalid("invalid_account", e.to_string()))?;
    let label = clean_text(&b.label, "label", 200)
        .map_err(|e| Error::invalid("invalid_label", e.to_string()))?;
    let secret = known(b.provider)?
        .secret(&GivenSecret {
            secret: &b.secret,
            access_key: b.access_key.as_deref(),
            scheme: b.scheme.as_deref(),
        })
        .map_err(|e| Error::invalid("invalid_secret", e.0))?;
    let a = st
        .store
        .create_provider_account(
            &caller.actor(),
            &st.sealer,
            NewProviderAccount {
                school_id: school.id,
                provider: b.provider,
                account: &account,
                label: &label,
                secret: &secret,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/provider-accounts", tag = "webhooks", security(("bearer" = [])),
    params(("school_id" = i64, Path)), responses((status = 200, body = Vec<ProviderAccount>), (status = 404, body = ErrorBody)))]
async fn list_accounts(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiPath(school_id): ApiPath<i64>,
) -> Result<Json<Vec<ProviderAccount>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.provider_accounts_of_school(school.id).await?))
}

pub(super) async fn account_in_scope(
    st: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<ProviderAccount> {
    st.store
        .provider_account_in_scope(caller.scope, id)
        .await?
        .ok_or(Error::not_found(
            "provider_account_not_found",
            "provider account",
        ))
}

#[utoipa::path(post, path = "/api/v1/provider-accounts/{account_id}/secrets", tag = "webhooks", security(("bearer" = [])),
    params(("account_id" = i64, Path)), request_body = AddSecret,
    responses((status = 201, description = "Both the new and the old secrets are accepted until the old one is retired", body = ProviderAccount), (status = 404, body = ErrorBody)))]
async fn add_secret(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AddSecret>,
) -> Result<(StatusCode, Json<ProviderAccount>)> {
    let a = account_in_scope(&st, &caller, id).await?;
    let secret = known(a.provider)?
        .secret(&GivenSecret {
            secret: &b.secret,
            access_key: b.access_key.as_deref(),
            scheme: b.scheme.as_deref(),
        })
        .map_err(|e| Error::invalid("invalid_secret", e.0))?;
    st.store
        .add_provider_secret(&caller.actor(), &st.sealer, &a, &secret)
        .await?;
    st.contexts.clear();
    let a = account_in_scope(&st, &caller, id).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[utoipa::path(delete, path = "/api/v1/provider-accounts/{account_id}/secrets/{secret_id}", tag = "webhooks", security(("bearer" = [])),
    params(("account_id" = i64, Path), ("secret_id" = i64, Path)),
    responses((status = 200, body = ProviderAccount), (status = 404, body = ErrorBody),
        (status = 409, description = "The account's last secret in force is never retired (`last_secret`)", body = ErrorBody)))]
async fn retire_secret(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath((id, secret_id)): ApiPath<(i64, i64)>,
) -> Result<Json<ProviderAccount>> {
    let a = account_in_scope(&st, &caller, id).await?;
    st.store
        .retire_provider_secret(&caller.actor(), &a, secret_id)
        .await?;
    st.contexts.clear();
    Ok(Json(account_in_scope(&st, &caller, id).await?))
}

#[utoipa::path(get, path = "/api/v1/schools/{school_id}/provider-events", tag = "webhooks", security(("bearer" = [])),
    params(("school_id" = i64, Path), PageQuery),
    responses((status = 200, description = "Every delivery for the school's accounts, as received, with what became of it", body = Vec<ProviderEvent>), (status = 404, body = ErrorBody)))]
async fn list_events(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiPath(school_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Vec<ProviderEvent>>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let page = q.page()?;
    Ok(Json(
        st.store
            .provider_events(school.id, page.after, page.limit)
            .await?,
    ))
}
