//! SQLite's WAL checkpoints, mostly off the writer's path.
//!
//! SQLite's automatic checkpoint runs in the connection that commits, right after its commit:
//! every ~1,000 pages the one writer would stop to copy the WAL into the database, and every
//! delivery queued behind it would wait. Here a task runs a `PASSIVE` checkpoint on a reader
//! connection every [`EVERY`], which copies what it can without taking any lock the writer
//! needs. A passive checkpoint under constant writes never quite catches up, and the WAL only
//! starts over once every frame is copied, so the writer keeps an automatic checkpoint, at
//! [`WRITER_CHECKPOINT_PAGES`]: it then copies only the few frames this task has not, and its
//! next transaction writes the WAL from the start. What a checkpoint copies is already durable
//! in the WAL (the writer commits with `synchronous = FULL`), so a crash between two loses
//! nothing.

use sqlx::AnyPool;
use std::time::Duration;

/// How often the WAL is copied into the database.
const EVERY: Duration = Duration::from_millis(200);

/// WAL pages after which the writer checkpoints itself (SQLite's default is 1,000): 16 MiB at
/// 4 KiB pages, the bound on the WAL's size under constant writes.
pub(crate) const WRITER_CHECKPOINT_PAGES: u32 = 4_096;

/// The running checkpoint task; dropping it stops the task.
pub(crate) struct Checkpointer(tokio::task::JoinHandle<()>);

impl Checkpointer {
    pub(crate) fn spawn(pool: AnyPool) -> Self {
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = checkpoint(&pool).await {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "WAL checkpoint failed; it is tried again");
                }
            }
        }))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One passive checkpoint: copies the frames no reader still needs, waiting for nobody.
async fn checkpoint(pool: &AnyPool) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(pool)
        .await?;
    Ok(())
}
