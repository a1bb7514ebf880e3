//! Pull sources: a watched account whose transactions are also pulled from the watcher's API,
//! with the sealed API key, where the next run starts, and how the last runs went. Any number
//! of instances may run the scheduler: a run is claimed by moving `next_run_at` ahead, which
//! only one of them can do for a given due time.

use super::{format_time, now, Store};
use crate::audit::{self, Chain, Entry};
use crate::domain::provider::ProviderId;
use crate::error::{Error, Result};
use crate::sealer::Sealer;
use crate::store::webhooks::ProviderAccount;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use utoipa::ToSchema;

/// How a source is pulled, as an admin sees it (never the key).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PullSource {
    pub provider_account_id: i64,
    pub school_id: i64,
    pub provider: ProviderId,
    /// The watched bank account number.
    pub account: String,
    /// The school's receiving account the pulled transactions are statement lines of.
    pub account_id: i64,
    pub base_url: String,
    pub interval_seconds: i64,
    pub enabled: bool,
    /// Where the next run starts: SePay's next transaction id, or Casso's day.
    pub cursor: Option<String>,
    pub next_run_at: String,
    pub last_run_at: Option<String>,
    pub last_success_at: Option<String>,
    /// Why the last run failed; cleared by a run that succeeds.
    pub last_error: Option<String>,
    /// Failed runs in a row: each one doubles the wait before the next, up to an hour.
    pub failures: i64,
    /// What the last run that reached the sender read and booked.
    #[schema(value_type = Object)]
    pub last_result: Option<serde_json::Value>,
}

/// What an admin sets.
#[derive(Debug, Clone)]
pub struct PullSettings {
    pub account_id: i64,
    /// A new key; `None` keeps the stored one.
    pub api_key: Option<Vec<u8>>,
    pub base_url: String,
    pub interval_seconds: i64,
    pub enabled: bool,
    /// Where to start; `None` keeps the stored cursor.
    pub cursor: Option<String>,
}

/// A source due to run, as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Due {
    pub provider_account_id: i64,
    pub next_run_at: String,
}

const COLS: &str = "s.provider_account_id, s.school_id, a.provider, a.account, s.account_id, s.base_url, s.interval_seconds, s.enabled,
    s.cursor, s.next_run_at, s.last_run_at, s.last_success_at, s.last_error, s.last_result, s.failures";

fn source_row(r: &sqlx::any::AnyRow) -> Result<PullSource> {
    let provider: String = r.try_get("provider")?;
    let result: Option<String> = r.try_get("last_result")?;
    Ok(PullSource {
        provider_account_id: r.try_get("provider_account_id")?,
        school_id: r.try_get("school_id")?,
        provider: ProviderId::parse(&provider)
            .ok()
            .ok_or_else(|| Error::Internal(format!("stored provider {provider}")))?,
        account: r.try_get("account")?,
        account_id: r.try_get("account_id")?,
        base_url: r.try_get("base_url")?,
        interval_seconds: r.try_get("interval_seconds")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        cursor: r.try_get("cursor")?,
        next_run_at: r.try_get("next_run_at")?,
        last_run_at: r.try_get("last_run_at")?,
        last_success_at: r.try_get("last_success_at")?,
        last_error: r.try_get("last_error")?,
        last_result: result.and_then(|t| serde_json::from_str(&t).ok()),
        failures: r.try_get("failures")?,
    })
}

impl Store {
    /// Sets how `account` is pulled, creating the source on first use; audited without the key.
    pub async fn configure_pull(
        &self,
        actor: &str,
        sealer: &Sealer,
        account: &ProviderAccount,
        settings: PullSettings,
    ) -> Result<PullSource> {
        let mut tx = self.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT provider_account_id FROM pull_sources WHERE provider_account_id = $1",
        )
        .bind(account.id)
        .fetch_optional(&mut *tx)
        .await?;
        let t = now();
        let sealed = settings.api_key.as_deref().map(|k| sealer.seal(k));
        match (exists, sealed) {
            (None, None) => {
                return Err(Error::invalid(
                    "missing_api_key",
                    "give the sender's API key (api_key) to start pulling",
                ))
            }
            (None, Some(sealed)) => {
                sqlx::query(
                    "INSERT INTO pull_sources (provider_account_id, school_id, account_id, sealed_key, base_url, interval_seconds, enabled,
                        cursor, next_run_at, failures, updated_at, updated_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)",
                )
                .bind(account.id)
                .bind(account.school_id)
                .bind(settings.account_id)
                .bind(sealed)
                .bind(&settings.base_url)
                .bind(settings.interval_seconds)
                .bind(i64::from(settings.enabled))
                .bind(&settings.cursor)
                .bind(&t)
                .bind(&t)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
            }
            (Some(_), sealed) => {
                // A change of settings is a fresh start: due now, failures forgotten.
                sqlx::query(
                    "UPDATE pull_sources SET account_id = $1, sealed_key = COALESCE($2, sealed_key), base_url = $3, interval_seconds = $4,
                        enabled = $5, cursor = COALESCE($6, cursor), next_run_at = $7, failures = 0, updated_at = $8, updated_by = $9
                     WHERE provider_account_id = $10",
                )
                .bind(settings.account_id)
                .bind(sealed)
                .bind(&settings.base_url)
                .bind(settings.interval_seconds)
                .bind(i64::from(settings.enabled))
                .bind(&settings.cursor)
                .bind(&t)
                .bind(&t)
                .bind(actor)
                .bind(account.id)
                .execute(&mut *tx)
                .await?;
            }
        }
        audit::record(
            &mut tx,
            &Chain::School(account.school_id),
            Entry {
                actor,
                action: "pull_source.configure",
                entity: "provider_account",
                entity_id: Some(account.id),
                details: json!({"account_id": settings.account_id, "base_url": settings.base_url,
                    "interval_seconds": settings.interval_seconds, "enabled": settings.enabled,
                    "cursor": settings.cursor, "new_key": settings.api_key.is_some()}),
            },
        )
        .await?;
        tx.commit().await?;
        self.pull_source(account.id)
            .await?
            .ok_or_else(|| Error::Internal("pull source just configured".into()))
    }

    pub async fn pull_source(&self, provider_account_id: i64) -> Result<Option<PullSource>> {
        let sql = format!(
            "SELECT {COLS} FROM pull_sources s JOIN provider_accounts a ON a.id = s.provider_account_id
             WHERE s.provider_account_id = $1"
        );
        sqlx::query(&sql)
            .bind(provider_account_id)
            .fetch_optional(&self.writer)
            .await?
            .map(|r| source_row(&r))
            .transpose()
    }

    /// The sealed API key of a source.
    pub async fn pull_key(&self, provider_account_id: i64) -> Result<String> {
        sqlx::query_scalar("SELECT sealed_key FROM pull_sources WHERE provider_account_id = $1")
            .bind(provider_account_id)
            .fetch_optional(&self.writer)
            .await?
            .ok_or_else(|| Error::not_found("pull_source_not_found", "pull source"))
    }

    /// Enabled sources whose next run is due at `at`.
    pub async fn due_pulls(&self, at: DateTime<Utc>) -> Result<Vec<Due>> {
        let rows = sqlx::query(
            "SELECT provider_account_id, next_run_at FROM pull_sources WHERE enabled = 1 AND next_run_at <= $1
             ORDER BY next_run_at, provider_account_id",
        )
        .bind(format_time(at))
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Due {
                    provider_account_id: r.try_get("provider_account_id")?,
                    next_run_at: r.try_get("next_run_at")?,
                })
            })
            .collect()
    }

    /// Takes the run of a source due at `seen` until `lease_until`: true for exactly one caller.
    pub async fn claim_pull(
        &self,
        provider_account_id: i64,
        seen: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE pull_sources SET next_run_at = $1, last_run_at = $2 WHERE provider_account_id = $3 AND next_run_at = $4",
        )
        .bind(format_time(lease_until))
        .bind(now())
        .bind(provider_account_id)
        .bind(seen)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records how a claimed run ended: the cursor to resume from, when to run next, and the
    /// error if it failed (a failure keeps the cursor of what was booked before it).
    pub async fn finish_pull(
        &self,
        provider_account_id: i64,
        cursor: Option<&str>,
        next_run_at: DateTime<Utc>,
        error: Option<&str>,
        result: &serde_json::Value,
    ) -> Result<()> {
        let t = now();
        sqlx::query(
            "UPDATE pull_sources SET cursor = COALESCE($1, cursor), next_run_at = $2, last_error = $3, last_result = $4,
                failures = CASE WHEN $5 = 1 THEN failures + 1 ELSE 0 END,
                last_success_at = CASE WHEN $5 = 1 THEN last_success_at ELSE $6 END
             WHERE provider_account_id = $7",
        )
        .bind(cursor)
        .bind(format_time(next_run_at))
        .bind(error)
        .bind(result.to_string())
        .bind(i64::from(error.is_some()))
        .bind(&t)
        .bind(provider_account_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
