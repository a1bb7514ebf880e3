//! Pull sources of SePay and Casso accounts: an admin gives the sender's API key (write-only,
//! sealed like the webhook secrets) and how often to pull; anyone who reconciles may see how the
//! last runs went and run one now.

use super::extract::{Accountants, Admins, ApiJson, ApiPath, Auth, Overseers};
use super::provider_accounts::{account_in_scope, given, PlainSecret};
use super::AppState;
use crate::domain::access::Caller;
use crate::domain::account::AccountState;
use crate::domain::text::same_account;
use crate::error::{Error, ErrorBody, Result};
use crate::providers::feed::Feed;
use crate::providers::plain_secret;
use crate::pull::{RunReport, MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS};
use crate::store::pulls::{PullSettings, PullSource};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_pull, set_pull))
        .routes(routes!(run_pull))
}

/// Default time between two runs of a source.
const DEFAULT_INTERVAL_SECONDS: i64 = 300;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPull {
    /// SePay's API token or Casso's API key (not the webhook key). Required the first time;
    /// omitted, the stored one is kept. Never shown again.
    #[schema(value_type = Option<PlainSecret>)]
    pub api_key: Option<String>,
    /// The school's receiving account (`/schools/{id}/accounts`) with this bank account number;
    /// found by number when omitted.
    pub account_id: Option<i64>,
    /// The sender's API; its production address when omitted.
    pub base_url: Option<String>,
    /// Seconds between runs, 60 to 86,400; 300 when omitted.
    #[schema(minimum = 60, maximum = 86_400)]
    pub interval_seconds: Option<i64>,
    /// `false` stops the scheduled runs; `true` when omitted.
    pub enabled: Option<bool>,
    /// Where to start reading: a SePay transaction id or a Casso day (`YYYY-MM-DD`); by default
    /// the first run reads the last three days.
    pub cursor: Option<String>,
}

fn base_url(feed: &dyn Feed, given: Option<&str>) -> Result<String> {
    let Some(given) = given.map(str::trim) else {
        return Ok(feed.default_base_url().to_string());
    };
    let bad = |why: &str| {
        Error::invalid(
            "invalid_base_url",
            format!("base_url must be an https address (http only to 127.0.0.1, ::1 or localhost) with no user, query or fragment: {why}"),
        )
    };
    if given.len() > 200 {
        return Err(bad("too long"));
    }
    let url = reqwest::Url::parse(given).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("scheme"));
    }
    if !crate::pull::allowed_base_url(&url) {
        return Err(bad(
            "plain http to another machine would send the API key in clear",
        ));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || url.host_str().is_none()
    {
        return Err(bad("not a plain address"));
    }
    Ok(given.trim_end_matches('/').to_string())
}

#[utoipa::path(put, path = "/api/v1/provider-accounts/{account_id}/pull", tag = "webhooks", security(("bearer" = [])),
    params(("account_id" = i64, Path, description = "A SePay or Casso provider account")), request_body = SetPull,
    responses((status = 200, description = "Pulled from now on; the first run is due at once", body = PullSource),
        (status = 404, body = ErrorBody), (status = 409, description = "`account_not_approved`: the receiving account is not approved (allowed only to turn the pull off)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_pull(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<SetPull>,
) -> Result<Json<PullSource>> {
    let account = account_in_scope(&st, &caller, id).await?;
    let feed = crate::providers::sender(account.provider)
        .and_then(|s| s.feed())
        .ok_or_else(|| {
            Error::invalid(
                "pull_not_supported",
                format!(
                "{} sends no transaction list to pull; only SePay and Casso accounts are pulled",
                account.provider.as_str()
            ),
            )
        })?;
    let receiving = st.store.school_accounts(account.school_id).await?;
    let target = match b.account_id {
        Some(aid) => receiving
            .iter()
            .find(|a| a.id == aid)
            .ok_or(Error::not_found("account_not_found", "receiving account"))?,
        // By number, the one in force first: a retired or pending account may share it.
        None => receiving
            .iter()
            .filter(|a| same_account(&a.account_number, &account.account))
            .min_by_key(|a| a.state != AccountState::Approved)
            .ok_or_else(|| {
                Error::invalid(
                    "no_receiving_account",
                    format!(
                        "the school has no receiving account {}: add it under /schools/{}/accounts first",
                        account.account, account.school_id
                    ),
                )
            })?,
    };
    // What is pulled is booked as the school's money: only from an account a second person
    // approved. Turning a pull off is always allowed, so a retired account's pull can be stopped.
    if target.state != AccountState::Approved && b.enabled != Some(false) {
        return Err(Error::conflict(
            "account_not_approved",
            format!(
                "receiving account {} is {}; a pull is set up for an approved account",
                target.id,
                target.state.as_str()
            ),
        ));
    }
    if !same_account(&target.account_number, &account.account) {
        return Err(Error::invalid(
            "pull_account_mismatch",
            format!(
                "receiving account {} is not the watched account {}",
                target.account_number, account.account
            ),
        ));
    }
    let interval = b.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS);
    if !(MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&interval) {
        return Err(Error::invalid(
            "invalid_interval",
            format!("interval_seconds is {MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS}"),
        ));
    }
    let cursor = match b.cursor.as_deref().map(str::trim) {
        Some(c) if !feed.valid_cursor(c) => {
            return Err(Error::invalid("invalid_cursor", feed.cursor_rule()))
        }
        other => other.map(String::from),
    };
    let api_key = b
        .api_key
        .as_deref()
        .map(|k| {
            plain_secret(&given(k, None, None)?)
                .map(|s| s.key)
                .map_err(|e| Error::invalid("invalid_secret", e.0))
        })
        .transpose()?;
    let source = st
        .store
        .configure_pull(
            &caller.actor(),
            &st.sealer,
            &account,
            PullSettings {
                account_id: target.id,
                api_key,
                base_url: base_url(feed, b.base_url.as_deref())?,
                interval_seconds: interval,
                enabled: b.enabled.unwrap_or(true),
                cursor,
            },
        )
        .await?;
    Ok(Json(source))
}

async fn source_in_scope(st: &AppState, caller: &Caller, id: i64) -> Result<PullSource> {
    let account = account_in_scope(st, caller, id).await?;
    st.store
        .pull_source(account.id)
        .await?
        .ok_or(Error::not_found("pull_source_not_found", "pull source"))
}

#[utoipa::path(get, path = "/api/v1/provider-accounts/{account_id}/pull", tag = "webhooks", security(("bearer" = [])),
    params(("account_id" = i64, Path)),
    responses((status = 200, description = "How the account is pulled and how the last run went", body = PullSource), (status = 404, body = ErrorBody)))]
async fn get_pull(
    State(st): State<AppState>,
    caller: Auth<Overseers>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<PullSource>> {
    Ok(Json(source_in_scope(&st, &caller, id).await?))
}

#[utoipa::path(post, path = "/api/v1/provider-accounts/{account_id}/pull/run", tag = "webhooks", security(("bearer" = [])),
    params(("account_id" = i64, Path)),
    responses((status = 200, description = "Ran now: what was read and booked, or why the sender could not be read (`error`)", body = RunReport),
        (status = 404, body = ErrorBody), (status = 409, description = "Disabled, or a run is under way", body = ErrorBody)))]
async fn run_pull(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RunReport>> {
    let source = source_in_scope(&st, &caller, id).await?;
    if !source.enabled {
        return Err(Error::conflict(
            "pull_disabled",
            "pulling is disabled for this account; enable it first",
        ));
    }
    let lease_until = chrono::Utc::now() + st.puller.policy.lease;
    let running = chrono::DateTime::parse_from_rfc3339(&source.next_run_at)
        .map(|t| t.with_timezone(&chrono::Utc) > chrono::Utc::now())
        .unwrap_or(false)
        && source.last_run_at.as_deref() > source.last_success_at.as_deref()
        && source.last_error.is_none();
    if running
        || !st
            .store
            .claim_pull(source.provider_account_id, &source.next_run_at, lease_until)
            .await?
    {
        return Err(Error::conflict(
            "pull_running",
            "a run of this account is under way; try again when it ends",
        ));
    }
    let report = crate::pull::run(&st.store, &st.sealer, &st.puller, &source).await?;
    Ok(Json(report))
}
