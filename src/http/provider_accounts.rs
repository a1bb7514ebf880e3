//! Admin configuration of the accounts senders notify for, and their secrets (write-only: no
//! response ever contains one), and the archive of deliveries for accountants and auditors.

use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, Auth, Overseers, PageQuery};
use super::fields::{trimmed, Code, Text};
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
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
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
    #[schema(value_type = KnownSender)]
    pub provider: ProviderId,
    /// The id the sender puts in its notifications: VNPay `vnp_TmnCode`, MoMo `partnerCode`,
    /// ZaloPay `app_id`, SePay/Casso/Standard Webhooks the bank account number.
    pub account: Code<64>,
    pub label: Text<200>,
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

/// The senders feerecon knows, by name.
pub struct KnownSender;

impl PartialSchema for KnownSender {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(providers::SENDERS.iter().map(|s| s.id().to_string())))
            .description(Some("A payment sender feerecon knows."))
            .into()
    }
}

impl ToSchema for KnownSender {}

/// A secret as `providers::plain_secret` takes it (after [`given`]): printable ASCII, 8 to 512
/// characters once trimmed.
pub struct PlainSecret;

impl PartialSchema for PlainSecret {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(trimmed("[!-~][ -~]{6,510}[!-~]")))
            .description(Some(
                "Printable ASCII (letters, digits, punctuation), 8 to 512 characters.",
            ))
            .into()
    }
}

impl ToSchema for PlainSecret {}

/// How a sender takes one of `secret`, `access_key` and `scheme`.
enum Shape {
    Required(RefOr<Schema>),
    Optional(RefOr<Schema>),
    /// Null or left out.
    Absent,
}

/// The shapes of `secret`, `access_key` and `scheme` each sender takes, as its
/// `Sender::secret` reads them (after [`given`]: printable ASCII).
fn secret_fields(provider: &str) -> [(&'static str, Shape); 3] {
    let text = |pattern: String| -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .into()
    };
    let key = || Shape::Required(PlainSecret::schema());
    match provider {
        "momo" => [
            ("secret", key()),
            (
                "access_key",
                Shape::Required(text(trimmed("[!-~](?:[ -~]{0,126}[!-~])?"))),
            ),
            ("scheme", Shape::Absent),
        ],
        "sepay" => [
            ("secret", key()),
            ("access_key", Shape::Absent),
            (
                "scheme",
                Shape::Optional(text(trimmed("(?:api_key|hmac_sha256)"))),
            ),
        ],
        "standard_webhooks" => {
            // `whsec_` and the canonical base64 of 24 bytes or more, 512 characters at most.
            let group = "[A-Za-z0-9+/]{4}";
            let tail = "(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)";
            let body = |groups: usize| {
                format!(
                    "(?:{group}){{8,{groups}}}|(?:{group}){{8,{}}}{tail}",
                    groups - 1
                )
            };
            let secret = format!("(?:whsec_(?:{})|{})", body(126), body(128));
            [
                ("secret", Shape::Required(text(trimmed(&secret)))),
                ("access_key", Shape::Absent),
                ("scheme", Shape::Absent),
            ]
        }
        _ => [
            ("secret", key()),
            ("access_key", Shape::Absent),
            ("scheme", Shape::Absent),
        ],
    }
}

/// `schema` (an object with `secret`, `access_key` and `scheme`) as `provider` takes it.
fn for_sender(schema: RefOr<Schema>, provider: &str) -> utoipa::openapi::schema::Object {
    let RefOr::T(Schema::Object(mut object)) = schema else {
        unreachable!("a struct's schema is an object");
    };
    for (field, shape) in secret_fields(provider) {
        object.required.retain(|r| r != field);
        let property = match shape {
            Shape::Required(schema) => {
                object.required.push(field.into());
                schema
            }
            Shape::Optional(schema) => OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .item(schema)
                .into(),
            Shape::Absent => ObjectBuilder::new().schema_type(Type::Null).into(),
        };
        object.properties.insert(field.into(), property);
    }
    object
}

/// The documented body of `POST /schools/{id}/provider-accounts`: [`CreateProviderAccount`]
/// in the shape each sender takes.
pub struct ProviderAccountBody;

impl PartialSchema for ProviderAccountBody {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new();
        for sender in providers::SENDERS {
            let name = sender.id().to_string();
            let mut object = for_sender(CreateProviderAccount::schema(), &name);
            object.properties.insert(
                "provider".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([name.clone()]))
                    .into(),
            );
            object.description = Some(format!("An account {name} notifies for."));
            one_of = one_of.item(object);
        }
        one_of.into()
    }
}

impl ToSchema for ProviderAccountBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "CreateProviderAccount".into()
    }

    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        CreateProviderAccount::schemas(out);
    }
}

/// The documented body of `POST /provider-accounts/{id}/secrets`: [`AddSecret`] in the shape
/// of one of the senders; it must be the account's own (422 `invalid_secret` otherwise).
pub struct AddSecretBody;

impl PartialSchema for AddSecretBody {
    fn schema() -> RefOr<Schema> {
        // `anyOf`: one body may fit several senders (a plain secret with no scheme is SePay's too).
        let mut any_of = AnyOfBuilder::new();
        let mut seen: Vec<String> = Vec::new();
        for sender in providers::SENDERS {
            let object = for_sender(AddSecret::schema(), sender.id().as_str());
            let key = serde_json::to_string(&object).unwrap_or_default();
            if !seen.contains(&key) {
                seen.push(key);
                any_of = any_of.item(object);
            }
        }
        any_of.into()
    }
}

impl ToSchema for AddSecretBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "AddSecret".into()
    }

    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        AddSecret::schemas(out);
    }
}

/// The secret as given, refusing what no sender's secret is: anything but printable ASCII.
pub(super) fn given<'a>(
    secret: &'a str,
    access_key: Option<&'a str>,
    scheme: Option<&'a str>,
) -> Result<GivenSecret<'a>> {
    let printable = |t: &str| t.trim().bytes().all(|b| (b' '..=b'~').contains(&b));
    if !printable(secret) || !access_key.map_or(true, printable) {
        return Err(Error::invalid(
            "invalid_secret",
            "secrets and access keys are printable ASCII (letters, digits, punctuation)",
        ));
    }
    Ok(GivenSecret {
        secret,
        access_key,
        scheme,
    })
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
    params(("school_id" = i64, Path)), request_body = ProviderAccountBody,
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
        .secret(&given(
            &b.secret,
            b.access_key.as_deref(),
            b.scheme.as_deref(),
        )?)
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
    params(("account_id" = i64, Path)), request_body = AddSecretBody,
    responses((status = 201, description = "Both the new and the old secrets are accepted until the old one is retired", body = ProviderAccount), (status = 404, body = ErrorBody)))]
async fn add_secret(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AddSecret>,
) -> Result<(StatusCode, Json<ProviderAccount>)> {
    let a = account_in_scope(&st, &caller, id).await?;
    let g = given(&b.secret, b.access_key.as_deref(), b.scheme.as_deref())?;
    let secret = known(a.provider)?.secret(&g).map_err(|e| {
        // A secret another sender would take is not wrong in itself, only not this account's.
        if providers::SENDERS.iter().any(|s| s.secret(&g).is_ok()) {
            Error::conflict(
                "invalid_secret",
                format!("{} (this is a {} account)", e.0, a.provider),
            )
        } else {
            Error::invalid("invalid_secret", e.0)
        }
    })?;
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
