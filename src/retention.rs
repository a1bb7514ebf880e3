//! Retention: what is kept only for a while is purged by this job, hourly, on every instance
//! (a purge is idempotent, so instances racing each other delete nothing twice). Each purge is
//! audited by count.
//!
//! - Refused webhook deliveries (bad signature, unknown account, malformed; nothing booked
//!   from them): kept `retention` (30 days at least: the database refuses an earlier delete).
//! - Sessions: kept [`SESSION_RETENTION`] after they are over (expired or signed out), for
//!   the question "which sessions were open when"; the database refuses a delete before 30.
//! - The processing log (who read whose personal data): kept [`PROCESSING_LOG_RETENTION`],
//!   long enough to answer a data subject or scope a breach found late; the database refuses
//!   a delete before then.
//!
//! Booked deliveries (those a payment was recorded from) are the evidence of the books and are
//! kept with them; an erasure redacts their bodies instead (`store::subject`).

use crate::store::Store;
use std::time::Duration;

/// How often the job runs.
pub const EVERY: Duration = Duration::from_secs(3600);
/// How long a session is kept once it is over.
pub const SESSION_RETENTION: chrono::Duration = chrono::Duration::days(90);

/// How long a read of personal data stays in the processing log (the database's floor too).
pub const PROCESSING_LOG_RETENTION: chrono::Duration = chrono::Duration::days(366);

/// Rows deleted per transaction, so a long backlog never holds a lock for long.
const CHUNK: i64 = 10_000;

/// Runs one purge: everything due, in chunks. Returns how many rows went.
pub async fn purge_once(store: &Store, retention: chrono::Duration) -> crate::error::Result<u64> {
    let before = chrono::Utc::now() - retention;
    let mut total = 0;
    loop {
        let n = store
            .purge_refused_deliveries("retention", before, CHUNK)
            .await?;
        total += n;
        if n < CHUNK as u64 {
            break;
        }
    }
    let sessions_before = chrono::Utc::now() - SESSION_RETENTION;
    loop {
        let n = store
            .purge_sessions("retention", sessions_before, CHUNK)
            .await?;
        total += n;
        if n < CHUNK as u64 {
            break;
        }
    }
    let reads_before = chrono::Utc::now() - PROCESSING_LOG_RETENTION;
    loop {
        let n = store
            .purge_processing_log("retention", reads_before, CHUNK)
            .await?;
        total += n;
        // Two tables a chunk each: done when neither was full.
        if n < CHUNK as u64 {
            return Ok(total);
        }
    }
}

pub fn spawn(store: Store, retention: chrono::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            match purge_once(&store, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deleted = n,
                    "purged refused deliveries, sessions and processing-log rows past retention"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "retention purge failed; it runs again in an hour")
                }
            }
        }
    })
}
