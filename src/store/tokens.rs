//! API tokens. Only a SHA-256 hash of each token is stored: a database dump does not give access.

use super::{get_bool, now, Store};
use crate::audit::{self, Chain, Entry};
use crate::coverage::{Unit, API_TOKENS};
use crate::domain::access::{Caller, Role, Scope};
use crate::error::{Error, Result};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub role: Role,
    pub school_id: Option<i64>,
    pub department_id: Option<i64>,
    pub label: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    /// The token of `FEERECON_ADMIN_TOKEN`: removed by removing (or changing) the variable and
    /// restarting, never through the API.
    pub configured: bool,
}

/// A new random token: `frk_` and 64 hex digits (256 bits).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("frk_{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn info(r: &AnyRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.try_get("id")?,
        role: Role::from_db(&r.try_get::<String, _>("role")?)
            .ok_or_else(|| Error::Internal("stored role".into()))?,
        school_id: r.try_get("school_id")?,
        department_id: r.try_get("department_id")?,
        label: r.try_get("label")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        revoked_at: r.try_get("revoked_at")?,
        configured: get_bool(r, "configured")?,
    })
}

const COLS: &str =
    "id, role, school_id, department_id, label, created_at, created_by, revoked_at, configured";

impl Store {
    /// Stores a token for `role` in `scope` and returns it with the plain token, shown only now.
    pub async fn create_token(
        &self,
        actor: &str,
        role: Role,
        scope: Scope,
        label: &str,
    ) -> Result<(TokenInfo, String)> {
        let (school_id, department_id) = match (role, scope) {
            (Role::Admin, Scope::All) => (None, None),
            (Role::Accountant | Role::Cashier, Scope::School(id)) => (Some(id), None),
            (Role::Auditor, Scope::Department(id)) => (None, Some(id)),
            _ => {
                return Err(Error::invalid(
                    "invalid_scope",
                    "admin tokens have no scope; accountant and cashier tokens need school_id; auditor tokens need department_id",
                ))
            }
        };
        let mut tx = self.begin().await?;
        if let Some(id) = school_id {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM schools WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            found.ok_or_else(|| {
                Error::invalid("unknown_school", format!("there is no school {id}"))
            })?;
        }
        if let Some(id) = department_id {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM departments WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            found.ok_or_else(|| {
                Error::invalid("unknown_department", format!("there is no department {id}"))
            })?;
        }
        let token = generate_token();
        let row = sqlx::query(&format!(
            "INSERT INTO api_tokens (token_hash, role, school_id, department_id, label, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLS}"
        ))
        .bind(hash_token(&token))
        .bind(role.as_str())
        .bind(school_id)
        .bind(department_id)
        .bind(label)
        .bind(now())
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let t = info(&row)?;
        audit::record_covering(
            &mut tx,
            &Chain::System,
            Entry {
                actor,
                action: "token.create",
                entity: "api_token",
                entity_id: Some(t.id),
                details: json!({"role": role, "school_id": school_id, "department_id": department_id, "label": label}),
            },
            &[Unit::new(API_TOKENS, t.id)],
        )
        .await?;
        tx.commit().await?;
        Ok((t, token))
    }

    /// The caller a presented token stands for, if it is known and not revoked.
    pub async fn caller_for_token(&self, token: &str) -> Result<Option<Caller>> {
        let row = sqlx::query("SELECT id, role, school_id, department_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(hash_token(token))
            .fetch_optional(self.reader())
            .await?;
        let Some(r) = row else { return Ok(None) };
        let role = Role::from_db(&r.try_get::<String, _>("role")?)
            .ok_or_else(|| Error::Internal("stored role".into()))?;
        let scope = match (
            r.try_get::<Option<i64>, _>("school_id")?,
            r.try_get::<Option<i64>, _>("department_id")?,
        ) {
            (Some(s), _) => Scope::School(s),
            (None, Some(d)) => Scope::Department(d),
            (None, None) => Scope::All,
        };
        Ok(Some(Caller {
            token_id: r.try_get("id")?,
            role,
            scope,
            session_id: None,
        }))
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM api_tokens ORDER BY id"))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(info).collect()
    }

    pub async fn revoke_token(&self, actor: &str, id: i64) -> Result<TokenInfo> {
        let mut tx = self.begin().await?;
        // The configured token is left alone: revoked here, it would still be the value the
        // operator configured, and the next start would have to choose between the two.
        let updated = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND configured = $3",
        )
        .bind(now())
        .bind(id)
        .bind(false)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!("SELECT {COLS} FROM api_tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let t = row
            .map(|r| info(&r))
            .transpose()?
            .ok_or(Error::not_found("token_not_found", "token"))?;
        if updated.rows_affected() == 0 {
            return Err(if t.revoked_at.is_some() {
                Error::conflict(
                    "token_already_revoked",
                    format!("token {id} is already revoked"),
                )
            } else {
                Error::conflict(
                    "token_configured",
                    format!("token {id} is the one given in FEERECON_ADMIN_TOKEN; it is removed by removing (or changing) that variable and restarting the service"),
                )
            });
        }
        audit::record_covering(
            &mut tx,
            &Chain::System,
            Entry {
                actor,
                action: "token.revoke",
                entity: "api_token",
                entity_id: Some(id),
                details: json!({}),
            },
            &[Unit::new(API_TOKENS, id)],
        )
        .await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Makes sure an admin can get in, at start. `configured` (FEERECON_ADMIN_TOKEN) is
    /// registered, or reinstated if it was revoked: the operator's configuration decides, and
    /// it cannot be revoked through the API. A token configured earlier and configured no
    /// longer is revoked, so removing the variable removes its token. Without a configured
    /// token, one is created when no admin token is active. Returns a newly created token, to
    /// be shown once.
    pub async fn bootstrap_admin(&self, configured: Option<&str>) -> Result<Option<String>> {
        let hash = configured.map(hash_token);
        let mut tx = self.begin().await?;
        let at = now();
        let stale: Vec<i64> = sqlx::query_scalar(
            "UPDATE api_tokens SET revoked_at = $1 WHERE configured = $2 AND revoked_at IS NULL AND token_hash <> $3 RETURNING id",
        )
        .bind(&at)
        .bind(true)
        .bind(hash.as_deref().unwrap_or_default())
        .fetch_all(&mut *tx)
        .await?;
        let mut entries: Vec<(i64, &str, serde_json::Value)> = stale
            .into_iter()
            .map(|id| {
                (
                    id,
                    "token.revoke",
                    json!({"reason": "no longer FEERECON_ADMIN_TOKEN"}),
                )
            })
            .collect();
        if let Some(hash) = &hash {
            let found = sqlx::query(
                "SELECT id, role, revoked_at, configured FROM api_tokens WHERE token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(&mut *tx)
            .await?;
            match found {
                None => {
                    // Instances starting together insert it once.
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO api_tokens (token_hash, role, label, created_at, created_by, configured)
                         VALUES ($1, 'admin', 'FEERECON_ADMIN_TOKEN', $2, 'startup', $3)
                         ON CONFLICT (token_hash) DO NOTHING RETURNING id",
                    )
                    .bind(hash)
                    .bind(&at)
                    .bind(true)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(id) = id {
                        entries.push((id, "token.bootstrap", json!({"source": "env"})));
                    }
                }
                Some(r) => {
                    let id: i64 = r.try_get("id")?;
                    let role: String = r.try_get("role")?;
                    if role != Role::Admin.as_str() {
                        return Err(Error::invalid(
                            "configured_token_role",
                            format!("FEERECON_ADMIN_TOKEN is the value of {role} token {id}; choose another value"),
                        ));
                    }
                    let revoked = r.try_get::<Option<String>, _>("revoked_at")?.is_some();
                    if revoked || !get_bool(&r, "configured")? {
                        sqlx::query(
                            "UPDATE api_tokens SET revoked_at = NULL, configured = $1 WHERE id = $2",
                        )
                        .bind(true)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        entries.push((
                            id,
                            "token.bootstrap",
                            json!({"source": "env", "reinstated": revoked}),
                        ));
                    }
                }
            }
        }
        if !entries.is_empty() {
            let units: Vec<Unit> = entries
                .iter()
                .map(|(id, ..)| Unit::new(API_TOKENS, *id))
                .collect();
            let digests = crate::coverage::digests(&mut tx, &units).await?;
            for (id, _, details) in entries.iter_mut() {
                crate::coverage::attach(
                    details,
                    crate::coverage::rows_for(&digests, &[Unit::new(API_TOKENS, *id)]),
                );
            }
            audit::record_many(
                &mut tx,
                entries
                    .iter()
                    .map(|(id, action, details)| {
                        (
                            Chain::System,
                            Entry {
                                actor: "startup",
                                action,
                                entity: "api_token",
                                entity_id: Some(*id),
                                details: details.clone(),
                            },
                        )
                    })
                    .collect(),
            )
            .await?;
        }
        tx.commit().await?;
        if configured.is_some() {
            return Ok(None);
        }
        let admins: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL",
        )
        .fetch_one(self.reader())
        .await?;
        if admins > 0 {
            return Ok(None);
        }
        let (_, token) = self
            .create_token("startup", Role::Admin, Scope::All, "first admin")
            .await?;
        Ok(Some(token))
    }
}
