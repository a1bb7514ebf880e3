//! The daily close. A school's day (Asia/Ho_Chi_Minh) counts what was *recorded* that day:
//! payments by channel (cash included), their fees by who bore them, allocations, statement
//! lines and the exceptions still open. Closing stores that summary; since everything recorded
//! later is dated the day it is recorded, a correction lands in an open day as an adjustment and
//! the closed day never changes.

use super::ledger::lock_ledger;
use super::{format_time, now, Store};
use crate::audit::{self, Chain, Entry};
use crate::coverage::{Unit, DAY_CLOSES};
use crate::domain::time::day_start;
use crate::error::{Error, Result};
use crate::store::org::School;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelTotal {
    pub channel: String,
    pub provider: String,
    pub payments: i64,
    /// Whole đồng; reversals count negative.
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BearerTotal {
    /// school | parent | provider
    pub borne_by: String,
    pub amount: i64,
}

/// What a school's books say about one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DaySummary {
    pub day: String,
    pub channels: Vec<ChannelTotal>,
    pub total: i64,
    pub cash: i64,
    pub cashless: i64,
    pub fees: Vec<BearerTotal>,
    /// Allocations made that day (automatic, by code, by hand) and their sum.
    pub allocations: i64,
    pub allocated: i64,
    pub statement_lines: i64,
    /// Exceptions opened that day, and how many of them are still open.
    pub exceptions_opened: i64,
    pub exceptions_open: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Day {
    pub school_id: i64,
    /// The books as they are now.
    pub summary: DaySummary,
    pub closed: bool,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    /// The books as they were when the day was closed (equal to `summary`: nothing recorded
    /// later is dated in a closed day).
    pub closed_summary: Option<DaySummary>,
}

/// `YYYY-MM-DD`, as a Vietnamese calendar day.
pub fn parse_day(text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            "invalid_date",
            format!("{text:?} is not a date (YYYY-MM-DD)"),
        )
    })
}

impl Store {
    async fn day_summary(
        &self,
        conn: &mut sqlx::AnyConnection,
        school_id: i64,
        day: NaiveDate,
    ) -> Result<DaySummary> {
        let from = format_time(day_start(day));
        let to = format_time(day_start(day + chrono::Duration::days(1)));
        let mut channels = Vec::new();
        for r in sqlx::query(
            "SELECT channel, provider, COUNT(*) AS n, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS amount FROM payments
             WHERE school_id = $1 AND recorded_at >= $2 AND recorded_at < $3 GROUP BY channel, provider ORDER BY channel, provider",
        )
        .bind(school_id)
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *conn)
        .await?
        {
            channels.push(ChannelTotal {
                channel: r.try_get("channel")?,
                provider: r.try_get("provider")?,
                payments: r.try_get("n")?,
                amount: r.try_get("amount")?,
            });
        }
        let mut fees = Vec::new();
        for r in sqlx::query(
            "SELECT f.borne_by, CAST(COALESCE(SUM(f.amount), 0) AS BIGINT) AS amount FROM payment_fees f JOIN payments p ON p.id = f.payment_id
             WHERE p.school_id = $1 AND p.recorded_at >= $2 AND p.recorded_at < $3 GROUP BY f.borne_by ORDER BY f.borne_by",
        )
        .bind(school_id)
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *conn)
        .await?
        {
            fees.push(BearerTotal {
                borne_by: r.try_get("borne_by")?,
                amount: r.try_get("amount")?,
            });
        }
        let counts = sqlx::query(
            "SELECT
                (SELECT COUNT(*) FROM allocations WHERE school_id = $1 AND created_at >= $2 AND created_at < $3) AS allocations,
                (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM allocations WHERE school_id = $1 AND created_at >= $2 AND created_at < $3) AS allocated,
                (SELECT COUNT(*) FROM statement_lines l JOIN statements s ON s.id = l.statement_id
                    WHERE l.school_id = $1 AND s.imported_at >= $2 AND s.imported_at < $3) AS statement_lines,
                (SELECT COUNT(*) FROM exceptions WHERE school_id = $1 AND created_at >= $2 AND created_at < $3) AS opened,
                (SELECT COUNT(*) FROM exceptions WHERE school_id = $1 AND created_at >= $2 AND created_at < $3 AND status = 'open') AS still_open",
        )
        .bind(school_id)
        .bind(&from)
        .bind(&to)
        .fetch_one(&mut *conn)
        .await?;
        let cash = channels
            .iter()
            .filter(|c| c.channel == "cash")
            .map(|c| c.amount)
            .sum();
        let total: i64 = channels.iter().map(|c| c.amount).sum();
        Ok(DaySummary {
            day: day.format("%Y-%m-%d").to_string(),
            total,
            cash,
            cashless: total - cash,
            channels,
            fees,
            allocations: counts.try_get("allocations")?,
            allocated: counts.try_get("allocated")?,
            statement_lines: counts.try_get("statement_lines")?,
            exceptions_opened: counts.try_get("opened")?,
            exceptions_open: counts.try_get("still_open")?,
        })
    }

    /// The day's books now, and whether (and by whom) it was closed.
    pub async fn day(&self, school_id: i64, day: NaiveDate) -> Result<Day> {
        let mut conn = self.reader().acquire().await?;
        let summary = self.day_summary(&mut conn, school_id, day).await?;
        let closed = sqlx::query("SELECT closed_at, closed_by, summary FROM day_closes WHERE school_id = $1 AND day = $2")
            .bind(school_id)
            .bind(day.format("%Y-%m-%d").to_string())
            .fetch_optional(&mut *conn)
            .await?;
        Ok(Day {
            school_id,
            summary,
            closed: closed.is_some(),
            closed_at: closed
                .as_ref()
                .map(|r| r.try_get("closed_at"))
                .transpose()?,
            closed_by: closed
                .as_ref()
                .map(|r| r.try_get("closed_by"))
                .transpose()?,
            closed_summary: closed
                .as_ref()
                .map(|r| {
                    let stored: String = r.try_get("summary")?;
                    serde_json::from_str(&stored)
                        .map_err(|e| Error::Internal(format!("stored day summary: {e}")))
                })
                .transpose()?,
        })
    }

    /// Closes a day that is over: its summary is stored and audited; closing again is refused.
    pub async fn close_day(
        &self,
        actor: &str,
        school: &School,
        day: NaiveDate,
        today: NaiveDate,
    ) -> Result<Day> {
        if day >= today {
            return Err(Error::invalid(
                "day_not_over",
                format!("{day} is not over yet; a day is closed from the next day on"),
            ));
        }
        let mut tx = self.begin().await?;
        // No payment of the school is recorded while its day is being counted.
        lock_ledger(&mut tx, school.id).await?;
        let key = day.format("%Y-%m-%d").to_string();
        let already: Option<String> = sqlx::query_scalar(
            "SELECT closed_by FROM day_closes WHERE school_id = $1 AND day = $2",
        )
        .bind(school.id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(by) = already {
            return Err(Error::conflict(
                "day_closed",
                format!("{key} was already closed by {by}"),
            ));
        }
        let summary = self.day_summary(&mut tx, school.id, day).await?;
        let stored = serde_json::to_string(&summary).map_err(|e| Error::Internal(e.to_string()))?;
        sqlx::query("INSERT INTO day_closes (school_id, day, summary, closed_at, closed_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(school.id)
            .bind(&key)
            .bind(&stored)
            .bind(now())
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        audit::record_covering(
            &mut tx,
            &Chain::School(school.id),
            Entry {
                actor,
                action: "day.close",
                entity: "day",
                entity_id: None,
                details: json!({"day": key, "total": summary.total, "cash": summary.cash, "cashless": summary.cashless,
                    "exceptions_open": summary.exceptions_open}),
            },
            &[Unit::new(DAY_CLOSES, school.id)],
        )
        .await?;
        tx.commit().await?;
        self.day(school.id, day).await
    }
}
