//! Provider accounts (which school a sender's merchant or bank account belongs to), their sealed
//! secrets, and the archive of every delivery.

use super::{get_bool, now, Store};
use crate::audit::{self, Chain, Entry};
use crate::domain::provider::{AckTable, DeliveryOutcome, ProviderId, Secret};
use crate::error::{Error, Result};
use crate::sealer::Sealer;
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderAccount {
    pub id: i64,
    pub school_id: i64,
    pub provider: ProviderId,
    pub account: String,
    pub label: String,
    /// Configure the sender to notify this path (GET for VNPay, POST for the others).
    pub webhook_path: String,
    /// Ids of the secrets currently accepted (never the secrets).
    pub active_secret_ids: Vec<i64>,
    pub created_at: String,
}

/// An account to configure, with its first secret.
pub struct NewProviderAccount<'a> {
    pub school_id: i64,
    pub provider: ProviderId,
    pub account: &'a str,
    pub label: &'a str,
    pub secret: &'a Secret,
}

/// A delivery to archive, whatever became of it, already cut to what the archive keeps.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub provider: ProviderId,
    /// (account id, school id) when the delivery named a known account.
    pub account: Option<(i64, i64)>,
    pub method: String,
    pub query: String,
    /// The headers kept, as a JSON object.
    pub headers: String,
    pub body: Vec<u8>,
    /// The body's size as it arrived.
    pub body_size: usize,
    /// SHA-256 (hex) and size of the whole request as it arrived (query, every header, body),
    /// for a delivery archived cut short.
    pub request_digest: Option<(String, usize)>,
    pub verified: bool,
    pub txn_id: Option<String>,
    pub outcome: DeliveryOutcome,
    pub detail: Option<String>,
    pub payment_id: Option<i64>,
    pub ack_status: u16,
    /// The sender's reply for each outcome, for a delivery whose outcome recording decides.
    pub acks: AckTable,
}

/// Archives `events` in one statement per chunk.
pub(super) async fn insert_events(
    conn: &mut sqlx::AnyConnection,
    events: &[&NewEvent],
) -> Result<()> {
    let received_at = now();
    for chunk in events.chunks(super::rows_per_insert(conn)) {
        let sql = format!(
            "INSERT INTO provider_events (provider, provider_account_id, school_id, received_at, method, query, headers, body, body_size, verified,
                txn_id, outcome, detail, payment_id, ack_status, request_sha256, request_size) VALUES {}",
            super::values_rows(conn, chunk.len(), 17)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(e.provider.as_str())
                .bind(e.account.map(|a| a.0))
                .bind(e.account.map(|a| a.1))
                .bind(&received_at)
                .bind(&e.method)
                .bind(&e.query)
                .bind(&e.headers)
                .bind(e.body.clone())
                .bind(e.body_size as i64)
                .bind(e.verified)
                .bind(&e.txn_id)
                .bind(e.outcome.as_str())
                .bind(&e.detail)
                .bind(e.payment_id)
                .bind(i64::from(e.ack_status))
                .bind(e.request_digest.as_ref().map(|d| d.0.as_str()))
                .bind(e.request_digest.as_ref().map(|d| d.1 as i64));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderEvent {
    pub id: i64,
    pub provider: String,
    pub provider_account_id: Option<i64>,
    pub received_at: String,
    pub method: String,
    pub query: String,
    /// The headers that matter (signature, timestamp, content type), as received.
    pub headers: serde_json::Value,
    /// The body as received, base64 (it may not be UTF-8).
    pub body_base64: String,
    pub body_size: i64,
    pub verified: bool,
    pub txn_id: Option<String>,
    pub outcome: DeliveryOutcome,
    pub detail: Option<String>,
    pub payment_id: Option<i64>,
    pub ack_status: i64,
    /// For a delivery archived cut short: SHA-256 (hex) of the whole request as it arrived.
    pub request_sha256: Option<String>,
    /// For a delivery archived cut short: the size of the whole request as it arrived.
    pub request_size: Option<i64>,
}

impl Store {
    pub async fn create_provider_account(
        &self,
        actor: &str,
        sealer: &Sealer,
        new: NewProviderAccount<'_>,
    ) -> Result<ProviderAccount> {
        let NewProviderAccount {
            school_id,
            provider,
            account,
            label,
            secret,
        } = new;
        let mut tx = self.begin().await?;
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM provider_accounts WHERE provider = $1 AND account = $2",
        )
        .bind(provider.as_str())
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(Error::conflict(
                "provider_account_exists",
                format!(
                    "{} account {account} is already configured",
                    provider.as_str()
                ),
            ));
        }
        let t = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO provider_accounts (school_id, provider, account, label, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(school_id)
        .bind(provider.as_str())
        .bind(account)
        .bind(label)
        .bind(&t)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO provider_secrets (provider_account_id, sealed, access_key, scheme, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(sealer.seal(&secret.key))
            .bind(&secret.access_key)
            .bind(&secret.scheme)
            .bind(&t)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        // The audit record names the account, never the secret.
        audit::record(
            &mut tx,
            &Chain::School(school_id),
            Entry {
                actor,
                action: "provider_account.create",
                entity: "provider_account",
                entity_id: Some(id),
                details: json!({"provider": provider, "account": account}),
            },
        )
        .await?;
        tx.commit().await?;
        self.provider_account(id)
            .await?
            .ok_or(Error::Internal("account just created".into()))
    }

    /// Adds a secret (a rotation: old and new are both accepted until the old one is retired).
    pub async fn add_provider_secret(
        &self,
        actor: &str,
        sealer: &Sealer,
        account: &ProviderAccount,
        secret: &Secret,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO provider_secrets (provider_account_id, sealed, access_key, scheme, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(account.id)
        .bind(sealer.seal(&secret.key))
        .bind(&secret.access_key)
        .bind(&secret.scheme)
        .bind(now())
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            &Chain::School(account.school_id),
            Entry {
                actor,
                action: "provider_secret.add",
                entity: "provider_account",
                entity_id: Some(account.id),
                details: json!({"secret_id": id, "scheme": secret.scheme}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Retires a secret. The last one in force is never retired: every delivery would then be
    /// refused, and nothing would be booked until an admin noticed.
    pub async fn retire_provider_secret(
        &self,
        actor: &str,
        account: &ProviderAccount,
        secret_id: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // The account's secrets are read and retired under one statement, so two concurrent
        // retirements cannot both leave it with none.
        let n = sqlx::query(
            "UPDATE provider_secrets SET retired_at = $1
             WHERE id = $2 AND provider_account_id = $3 AND retired_at IS NULL
               AND (SELECT COUNT(*) FROM provider_secrets k WHERE k.provider_account_id = $3 AND k.retired_at IS NULL) > 1",
        )
        .bind(now())
        .bind(secret_id)
        .bind(account.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(if account.active_secret_ids.contains(&secret_id) {
                Error::conflict(
                    "last_secret",
                    "this is the account's last secret in force: add its replacement first",
                )
            } else {
                Error::not_found("secret_not_found", "active secret")
            });
        }
        audit::record(
            &mut tx,
            &Chain::School(account.school_id),
            Entry {
                actor,
                action: "provider_secret.retire",
                entity: "provider_account",
                entity_id: Some(account.id),
                details: json!({"secret_id": secret_id}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account, if it is in `scope`: one look-up whether it is missing or another
    /// school's.
    pub async fn provider_account_in_scope(
        &self,
        scope: crate::domain::access::Scope,
        id: i64,
    ) -> Result<Option<ProviderAccount>> {
        let (school, department) = super::scope_binds(scope);
        let row = sqlx::query(
            "SELECT a.id FROM provider_accounts a JOIN schools s ON s.id = a.school_id
             WHERE a.id = $1 AND ($2 IS NULL OR s.id = $2) AND ($3 IS NULL OR s.department_id = $3)",
        )
        .bind(id)
        .bind(school)
        .bind(department)
        .fetch_optional(self.reader())
        .await?;
        match row {
            Some(_) => self.provider_account(id).await,
            None => Ok(None),
        }
    }

    pub async fn provider_account(&self, id: i64) -> Result<Option<ProviderAccount>> {
        let row = sqlx::query("SELECT id, school_id, provider, account, label, created_at FROM provider_accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        let Some(r) = row else { return Ok(None) };
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM provider_secrets WHERE provider_account_id = $1 AND retired_at IS NULL ORDER BY id")
            .bind(id)
            .fetch_all(self.reader())
            .await?;
        Ok(Some(account_row(&r, ids)?))
    }

    pub async fn provider_accounts_of_school(
        &self,
        school_id: i64,
    ) -> Result<Vec<ProviderAccount>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM provider_accounts WHERE school_id = $1 ORDER BY id")
                .bind(school_id)
                .fetch_all(self.reader())
                .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(a) = self.provider_account(id).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Archives one delivery on its own, when it could not go with a batch.
    pub async fn archive_event(&self, e: &NewEvent) -> Result<()> {
        insert_events(&mut *self.writer_pool().acquire().await?, &[e]).await
    }

    /// Archives deliveries that book nothing, together in one transaction.
    pub async fn archive_events(&self, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.begin().await?;
        let refs: Vec<&NewEvent> = events.iter().collect();
        insert_events(&mut tx, &refs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes refused deliveries (nothing booked from them) received before `before`, at most
    /// `limit` of them, and audits how many, in one transaction. The database allows no other
    /// deletion from the archive, and none of a row younger than 30 days.
    pub async fn purge_refused_deliveries(
        &self,
        actor: &str,
        before: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<u64> {
        let refused: Vec<String> = DeliveryOutcome::REFUSED
            .iter()
            .map(|o| format!("'{}'", o.as_str()))
            .collect();
        let sql = format!(
            "DELETE FROM provider_events WHERE id IN (
                SELECT id FROM provider_events
                WHERE payment_id IS NULL AND received_at < $1 AND outcome IN ({})
                ORDER BY received_at LIMIT $2)",
            refused.join(", ")
        );
        self.audited_purge(
            actor,
            "provider_events.purge",
            "provider_event",
            &[&sql],
            before,
            limit,
        )
        .await
    }

    /// Archived deliveries by id, oldest first.
    pub async fn provider_events_by_id(&self, ids: &[i64]) -> Result<Vec<ProviderEvent>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT id, provider, provider_account_id, received_at, method, query, headers, body, body_size, verified, txn_id, outcome, detail,
                    payment_id, ack_status, request_sha256, request_size FROM provider_events WHERE id IN ({}) ORDER BY id",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(self.reader()).await? {
                out.push(event_row(&r)?);
            }
        }
        Ok(out)
    }

    pub async fn provider_events(
        &self,
        school_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ProviderEvent>> {
        let rows = sqlx::query(
            "SELECT id, provider, provider_account_id, received_at, method, query, headers, body, body_size, verified, txn_id, outcome, detail,
                payment_id, ack_status, request_sha256, request_size FROM provider_events WHERE school_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(school_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(event_row).collect()
    }
}

fn account_row(r: &AnyRow, active: Vec<i64>) -> Result<ProviderAccount> {
    let provider = ProviderId::parse(&r.try_get::<String, _>("provider")?)
        .map_err(|_| Error::Internal("stored provider".into()))?;
    let id: i64 = r.try_get("id")?;
    Ok(ProviderAccount {
        id,
        school_id: r.try_get("school_id")?,
        provider,
        account: r.try_get("account")?,
        label: r.try_get("label")?,
        webhook_path: format!("/webhooks/{}/{id}", provider.as_str()),
        active_secret_ids: active,
        created_at: r.try_get("created_at")?,
    })
}

fn event_row(r: &AnyRow) -> Result<ProviderEvent> {
    use base64::Engine as _;
    let body: Vec<u8> = r.try_get("body")?;
    Ok(ProviderEvent {
        id: r.try_get("id")?,
        provider: r.try_get("provider")?,
        provider_account_id: r.try_get("provider_account_id")?,
        received_at: r.try_get("received_at")?,
        method: r.try_get("method")?,
        query: r.try_get("query")?,
        headers: serde_json::from_str(&r.try_get::<String, _>("headers")?)
            .unwrap_or(serde_json::Value::Null),
        body_base64: base64::engine::general_purpose::STANDARD.encode(body),
        body_size: r.try_get("body_size")?,
        verified: get_bool(r, "verified")?,
        txn_id: r.try_get("txn_id")?,
        outcome: DeliveryOutcome::from_db(&r.try_get::<String, _>("outcome")?)
            .ok_or_else(|| Error::Internal("stored delivery outcome".into()))?,
        detail: r.try_get("detail")?,
        payment_id: r.try_get("payment_id")?,
        ack_status: r.try_get("ack_status")?,
        request_sha256: r.try_get("request_sha256")?,
        request_size: r.try_get("request_size")?,
    })
}

/// What a delivery needs before it can be verified and booked, read in one query.
pub struct DeliveryContext {
    pub account: ProviderAccount,
    pub school: crate::store::org::School,
    pub secrets: Vec<Secret>,
}

impl Store {
    /// The account behind a webhook path, its school and the secrets in force, or `None`.
    pub async fn delivery_context(
        &self,
        sealer: &Sealer,
        account_id: i64,
        provider: ProviderId,
    ) -> Result<Option<DeliveryContext>> {
        let rows = sqlx::query(
            "SELECT a.id, a.school_id, a.provider, a.account, a.label, a.created_at, s.department_id, s.code AS school_code, s.name AS school_name,
                    s.payment_prefix, s.created_at AS school_created_at, k.id AS secret_id, k.sealed, k.access_key, k.scheme
             FROM provider_accounts a JOIN schools s ON s.id = a.school_id
             LEFT JOIN provider_secrets k ON k.provider_account_id = a.id AND k.retired_at IS NULL
             WHERE a.id = $1 AND a.provider = $2 ORDER BY k.id",
        )
        .bind(account_id)
        .bind(provider.as_str())
        .fetch_all(self.reader())
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut secrets = Vec::new();
        let mut ids = Vec::new();
        for r in &rows {
            if let Some(id) = r.try_get::<Option<i64>, _>("secret_id")? {
                // One secret sealed under another key must not stop the others from working.
                match sealer.open(&r.try_get::<String, _>("sealed")?) {
                    Ok(key) => {
                        secrets.push(Secret {
                            key,
                            access_key: r.try_get("access_key")?,
                            scheme: r.try_get("scheme")?,
                        });
                        ids.push(id);
                    }
                    Err(_) => tracing::error!(
                        secret_id = id,
                        "a provider secret does not open with this instance's FEERECON_SECRET_KEY"
                    ),
                }
            }
        }
        let school = crate::store::org::School {
            id: first.try_get("school_id")?,
            department_id: first.try_get("department_id")?,
            code: first.try_get("school_code")?,
            name: first.try_get("school_name")?,
            payment_prefix: first.try_get("payment_prefix")?,
            created_at: first.try_get("school_created_at")?,
        };
        Ok(Some(DeliveryContext {
            account: account_row(first, ids)?,
            school,
            secrets,
        }))
    }
}
