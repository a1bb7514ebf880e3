//! The processing log: which person's request was answered with which students' personal data,
//! by which route, when. Written in group commits by `http::privacy`; read by an admin to
//! answer "who saw student X" and "whose data did token or session T see".

use super::{format_time, Store};
use crate::audit::{self, Chain, Entry};
use crate::domain::access::Role;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

/// One answer that held personal data.
#[derive(Debug, Clone)]
pub struct Read {
    pub at: DateTime<Utc>,
    pub session_id: Option<i64>,
    pub api_token_id: Option<i64>,
    pub parent_link_id: Option<i64>,
    pub role: Role,
    pub method: String,
    /// The route's template (`/api/v1/schools/{school_id}/payments`), never its values.
    pub route: String,
    pub status: u16,
    pub students: Vec<i64>,
    /// An auditor's stated reason for opening a record in the clear.
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

/// Whose reads to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// An API token, with every session opened with it.
    Token(i64),
    /// One cookie session.
    Session(i64),
    /// A parent link, with every session opened with it.
    ParentLink(i64),
}

impl Actor {
    /// `token:12`, `session:34`, `parent_link:5`.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once(':')?;
        let id: i64 = id.parse().ok().filter(|n| *n > 0)?;
        match kind {
            "token" => Some(Self::Token(id)),
            "session" => Some(Self::Session(id)),
            "parent_link" => Some(Self::ParentLink(id)),
            _ => None,
        }
    }
}

/// What to list: reads of one student's data, or one actor's reads, in `[from, to)`.
#[derive(Debug, Clone)]
pub struct LogFilter {
    pub student_id: Option<i64>,
    pub actor: Option<Actor>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// One read, as an admin sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogEntry {
    pub id: i64,
    pub at: String,
    /// `session:34` or `token:12`: what the request came with.
    pub actor: String,
    pub session_id: Option<i64>,
    /// The API token the request or its session came from.
    pub api_token_id: Option<i64>,
    /// The parent link the session came from.
    pub parent_link_id: Option<i64>,
    pub role: Role,
    pub method: String,
    /// The route's template, e.g. `/api/v1/schools/{school_id}/payments`.
    pub route: String,
    pub status: i64,
    /// The students whose data the answer held (in full, also when a list was filtered by
    /// `student_id`).
    pub student_ids: Vec<i64>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

impl Store {
    /// Writes `reads` in one transaction.
    pub async fn record_reads(&self, reads: &[Read]) -> Result<()> {
        let mut tx = self.begin().await?;
        if self.backend == super::Backend::Postgres {
            // The commit returns once in the WAL buffers, not on disk: a crash in the next
            // fraction of a second loses those rows, where waiting for the flush would cost
            // every read a disk sync. The log's order and its refusals stay as they are.
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
        }
        let mut students: Vec<(i64, i64, String)> = Vec::new();
        for r in reads {
            let at = format_time(r.at);
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO processing_log (at, session_id, api_token_id, parent_link_id, role, method, route, status, students, reason, request_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(&at)
            .bind(r.session_id)
            .bind(r.api_token_id)
            .bind(r.parent_link_id)
            .bind(r.role.as_str())
            .bind(&r.method)
            .bind(&r.route)
            .bind(i64::from(r.status))
            .bind(r.students.len() as i64)
            .bind(&r.reason)
            .bind(&r.request_id)
            .fetch_one(&mut *tx)
            .await?;
            students.extend(r.students.iter().map(|s| (id, *s, at.clone())));
        }
        for chunk in students.chunks(super::rows_per_insert(&tx)) {
            let sql = format!(
                "INSERT INTO processing_log_students (log_id, student_id, at) VALUES {} ON CONFLICT DO NOTHING",
                super::values_rows(&tx, chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (log, student, at) in chunk {
                q = q.bind(*log).bind(*student).bind(at.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The reads `filter` names, oldest first, at most `limit` after id `after`.
    pub async fn processing_log(
        &self,
        filter: &LogFilter,
        page: super::Page,
    ) -> Result<(Vec<LogEntry>, Option<String>)> {
        let (token, session, link) = match filter.actor {
            Some(Actor::Token(id)) => (Some(id), None, None),
            Some(Actor::Session(id)) => (None, Some(id), None),
            Some(Actor::ParentLink(id)) => (None, None, Some(id)),
            None => (None, None, None),
        };
        let rows = sqlx::query(
            "SELECT l.id, l.at, l.session_id, l.api_token_id, l.parent_link_id, l.role, l.method, l.route, l.status, l.reason, l.request_id
             FROM processing_log l
             WHERE l.at >= $1 AND l.at < $2 AND l.id > $3
               AND ($4 IS NULL OR l.api_token_id = $4)
               AND ($5 IS NULL OR l.session_id = $5)
               AND ($6 IS NULL OR l.parent_link_id = $6)
               AND ($7 IS NULL OR EXISTS (SELECT 1 FROM processing_log_students ls
                                           WHERE ls.log_id = l.id AND ls.student_id = $7))
             ORDER BY l.id LIMIT $8",
        )
        .bind(format_time(filter.from))
        .bind(format_time(filter.to))
        .bind(page.after)
        .bind(token)
        .bind(session)
        .bind(link)
        .bind(filter.student_id)
        .bind(page.limit + 1)
        .fetch_all(self.reader())
        .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            let session_id: Option<i64> = r.try_get("session_id")?;
            let api_token_id: Option<i64> = r.try_get("api_token_id")?;
            let actor = match (session_id, api_token_id) {
                (Some(s), _) => format!("session:{s}"),
                (None, Some(t)) => format!("token:{t}"),
                (None, None) => {
                    return Err(Error::Internal("processing log row without actor".into()))
                }
            };
            entries.push(LogEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor,
                session_id,
                api_token_id,
                parent_link_id: r.try_get("parent_link_id")?,
                role: Role::from_db(&r.try_get::<String, _>("role")?)
                    .ok_or_else(|| Error::Internal("stored role".into()))?,
                method: r.try_get("method")?,
                route: r.try_get("route")?,
                status: r.try_get("status")?,
                student_ids: Vec::new(),
                reason: r.try_get("reason")?,
                request_id: r.try_get("request_id")?,
            });
        }
        let (mut entries, next) = super::paginate(entries, page, |e| e.id);
        if !entries.is_empty() {
            let marks: Vec<String> = (1..=entries.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT log_id, student_id FROM processing_log_students WHERE log_id IN ({}) ORDER BY log_id, student_id",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for e in &entries {
                q = q.bind(e.id);
            }
            let mut by_log: HashMap<i64, Vec<i64>> = HashMap::new();
            for r in &q.fetch_all(self.reader()).await? {
                by_log
                    .entry(r.try_get("log_id")?)
                    .or_default()
                    .push(r.try_get("student_id")?);
            }
            for e in &mut entries {
                e.student_ids = by_log.remove(&e.id).unwrap_or_default();
            }
        }
        Ok((entries, next))
    }

    /// Deletes reads older than `before`, at most `limit` of each table, and audits how many.
    /// A read's students go first: a read is deleted once none is left.
    pub async fn purge_processing_log(
        &self,
        actor: &str,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64> {
        self.audited_purge(
            actor,
            "processing_log.purge",
            "processing_log",
            &[
                "DELETE FROM processing_log_students WHERE log_id IN (
                    SELECT log_id FROM processing_log_students WHERE at < $1 ORDER BY log_id LIMIT $2)",
                "DELETE FROM processing_log WHERE id IN (
                    SELECT l.id FROM processing_log l WHERE l.at < $1
                      AND NOT EXISTS (SELECT 1 FROM processing_log_students ls WHERE ls.log_id = l.id)
                    ORDER BY l.id LIMIT $2)",
            ],
            before,
            limit,
        )
        .await
    }

    /// Audits that `actor` opened `entity` `id` of `school_id` in the clear, and why.
    pub async fn audit_opening(
        &self,
        actor: &str,
        school_id: i64,
        entity: &'static str,
        id: i64,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        audit::record(
            &mut tx,
            &Chain::School(school_id),
            Entry {
                actor,
                action: "personal_data.open",
                entity,
                entity_id: Some(id),
                details: serde_json::json!({"reason": reason}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
