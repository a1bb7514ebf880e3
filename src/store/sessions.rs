//! Sessions behind a cookie. Whoever signs in, and however (a parent link or an API token now,
//! an OpenID Connect sign-in later), gets the same kind of row: its kind, its subject in the
//! audit log's words, the role and scope it acts with, when it started, was last seen and
//! expires, and when and why it ended. Only a SHA-256 hash of the cookie's value is stored.
//!
//! What a session came from is checked on every request, in the same query that finds it: a
//! revoked API token, or a revoked or expired parent link, ends its sessions at once.

use super::{format_time, Store};
use crate::domain::access::{Caller, Role, Scope};
use crate::error::{Error, Result};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

/// How a session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A parent opened their link.
    ParentLink,
    /// A staff member exchanged an API token.
    ApiToken,
    /// A staff member signed in through the department's identity provider (to come).
    Oidc,
}

crate::domain::catalog::text_enum!(SessionKind { ParentLink => "parent_link", ApiToken => "api_token", Oidc => "oidc" });

/// A session as its holder sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    pub id: i64,
    pub kind: SessionKind,
    pub role: Role,
    pub school_id: Option<i64>,
    pub department_id: Option<i64>,
    pub created_at: String,
    pub last_seen_at: String,
    /// The session ends then whatever happens.
    pub expires_at: String,
    /// It ends then unless used before (the idle timeout).
    pub idle_expires_at: String,
}

/// A session to start.
pub struct NewSession {
    pub kind: SessionKind,
    pub subject: String,
    pub role: Role,
    pub scope: Scope,
    pub api_token_id: Option<i64>,
    pub parent_link_id: Option<i64>,
    pub ttl: chrono::Duration,
}

/// A session found for a cookie, with the caller it stands for.
pub struct Found {
    pub caller: Caller,
    pub info: SessionInfo,
}

/// A new cookie value: 32 random bytes, unpadded base64url.
pub fn generate_session_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// High-entropy secrets (256 random bits) need no slow hash: SHA-256 is preimage-resistant, and
/// there is nothing to guess (OWASP ASVS 5.0 6.5.2 allows a plain hash from 112 bits).
pub fn hash_secret(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Last-seen times are written at most this often, so a page of requests is not a page of
/// writes; the idle timeout is counted from the last write.
const TOUCH_EVERY_SECONDS: i64 = 60;

const RETURNED: &str = "id, kind, role, school_id, department_id, api_token_id, parent_link_id, created_at, last_seen_at, expires_at";
const COLS: &str = "se.id, se.kind, se.role, se.school_id, se.department_id, se.api_token_id, se.parent_link_id, se.created_at, se.last_seen_at, se.expires_at";

fn info(r: &AnyRow, idle: chrono::Duration) -> Result<SessionInfo> {
    let last_seen: String = r.try_get("last_seen_at")?;
    let idle_until = DateTime::parse_from_rfc3339(&last_seen)
        .map(|t| format_time(t.with_timezone(&Utc) + idle))
        .map_err(|_| Error::Internal("stored session time".into()))?;
    Ok(SessionInfo {
        id: r.try_get("id")?,
        kind: SessionKind::from_db(&r.try_get::<String, _>("kind")?)
            .ok_or_else(|| Error::Internal("stored session kind".into()))?,
        role: Role::from_db(&r.try_get::<String, _>("role")?)
            .ok_or_else(|| Error::Internal("stored role".into()))?,
        school_id: r.try_get("school_id")?,
        department_id: r.try_get("department_id")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: last_seen,
        expires_at: r.try_get("expires_at")?,
        idle_expires_at: idle_until,
    })
}

impl Store {
    /// Starts a session; returns it with the cookie's value, which is stored only hashed.
    pub async fn start_session(
        &self,
        new: NewSession,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<(SessionInfo, String)> {
        let (school_id, department_id) = match new.scope {
            Scope::School(id) => (Some(id), None),
            Scope::Department(id) => (None, Some(id)),
            Scope::All | Scope::Family(_) => (None, None),
        };
        let token = generate_session_token();
        let at = format_time(now);
        let row = sqlx::query(&format!(
            "INSERT INTO sessions (token_hash, kind, subject, role, school_id, department_id, api_token_id, parent_link_id, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING {RETURNED}"
        ))
        .bind(hash_secret(&token))
        .bind(new.kind.as_str())
        .bind(&new.subject)
        .bind(new.role.as_str())
        .bind(school_id)
        .bind(department_id)
        .bind(new.api_token_id)
        .bind(new.parent_link_id)
        .bind(&at)
        .bind(format_time(now + new.ttl))
        .fetch_one(&self.writer)
        .await?;
        Ok((info(&row, idle)?, token))
    }

    /// The session a cookie stands for, if it is current: not ended, not expired, used within
    /// `idle`, and what it came from still valid. Its last-seen time moves on.
    pub async fn session_for_cookie(
        &self,
        token: &str,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<Option<Found>> {
        let at = format_time(now);
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM sessions se
             LEFT JOIN api_tokens t ON t.id = se.api_token_id
             LEFT JOIN parent_links l ON l.id = se.parent_link_id
             WHERE se.token_hash = $1 AND se.ended_at IS NULL AND se.expires_at > $2 AND se.last_seen_at > $3
               AND (se.api_token_id IS NULL OR t.revoked_at IS NULL)
               AND (se.parent_link_id IS NULL OR (l.revoked_at IS NULL AND l.expires_at > $2))"
        ))
        .bind(hash_secret(token))
        .bind(&at)
        .bind(format_time(now - idle))
        .fetch_optional(self.reader())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let mut info = info(&r, idle)?;
        let parent_link: Option<i64> = r.try_get("parent_link_id")?;
        let api_token: Option<i64> = r.try_get("api_token_id")?;
        let scope = match (info.role, parent_link, info.school_id, info.department_id) {
            (Role::Parent, Some(link), _, _) => Scope::Family(link),
            (Role::Parent, None, _, _) => return Ok(None),
            (_, _, Some(s), _) => Scope::School(s),
            (_, _, None, Some(d)) => Scope::Department(d),
            (_, _, None, None) => Scope::All,
        };
        let caller = Caller {
            token_id: api_token.or(parent_link).unwrap_or(0),
            role: info.role,
            scope,
            session_id: Some(info.id),
        };
        let seen = DateTime::parse_from_rfc3339(&info.last_seen_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        if (now - seen).num_seconds() >= TOUCH_EVERY_SECONDS {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND ended_at IS NULL")
                .bind(&at)
                .bind(info.id)
                .execute(&self.writer)
                .await?;
            info.last_seen_at = at;
            info.idle_expires_at = format_time(now + idle);
        }
        Ok(Some(Found { caller, info }))
    }

    /// Ends a session (sign-out); it is never valid again.
    pub async fn end_session(&self, id: i64, reason: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
        )
        .bind(format_time(now))
        .bind(reason)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Deletes sessions over (ended or expired) before `before`, at most `limit`, and audits how
    /// many, in one transaction. The database refuses the deletion of a session over for less
    /// than 30 days.
    pub async fn purge_sessions(
        &self,
        actor: &str,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64> {
        self.audited_purge(
            actor,
            "sessions.purge",
            "session",
            &["DELETE FROM sessions WHERE id IN (
                SELECT id FROM sessions WHERE expires_at < $1 OR (ended_at IS NOT NULL AND ended_at < $1)
                ORDER BY id LIMIT $2)"],
            before,
            limit,
        )
        .await
    }
}
