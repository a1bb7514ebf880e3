//! The only module that speaks SQL. One API over SQLite and PostgreSQL through `sqlx::Any`:
//! the queries are written once in SQL both accept (`$n` placeholders, `RETURNING`,
//! `ON CONFLICT`), money is BIGINT, times are fixed-width UTC text; the two migration folders
//! differ only in dialect (identity columns, booleans, triggers).

pub mod accounts;
pub mod book;
pub mod catalog;
pub mod days;
pub mod fees;
pub mod invoices;
pub mod ledger;
pub mod org;
pub mod parents;
pub mod processing;
pub mod pulls;
pub mod recon;
pub mod record;
pub mod reports;
mod seen;
pub mod sessions;
pub mod statements;
pub mod students;
pub mod subject;
pub mod tokens;
mod wal;
pub mod webhooks;

use crate::error::{Error, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row};
use std::str::FromStr;
use std::time::Duration;

pub type Tx = sqlx::Transaction<'static, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
pub struct Store {
    /// Reads. On PostgreSQL the same pool as `writer`.
    reader: AnyPool,
    /// Writes. On SQLite a single connection: SQLite has one writer at a time anyway, and
    /// queueing in the pool instead of in `busy_timeout` avoids lock-upgrade deadlocks.
    writer: AnyPool,
    /// The intake's writes. On PostgreSQL a pool of its own that skips the health check on each
    /// checkout (a round trip per batch): a broken connection fails its batch, whose deliveries
    /// are then written one by one on fresh connections. On SQLite the one writer.
    intake: AnyPool,
    backend: Backend,
    /// Each school's book as the reconciliation engine reads it, kept across requests.
    pub(crate) books: book::Books,
    /// SQLite: copies the WAL into the database beside the writer; stops with the last clone.
    _checkpointer: Option<std::sync::Arc<wal::Checkpointer>>,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`), creating a SQLite file and its
    /// folder if missing.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url).await
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = AnyConnectOptions::from_str(url)?;
            let pool = AnyPoolOptions::new()
                .max_connections(32)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts.clone())
                .await?;
            let intake = AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .connect_lazy_with(opts);
            Ok(Self {
                reader: pool.clone(),
                writer: pool,
                intake,
                backend: Backend::Postgres,
                books: book::Books::default(),
                _checkpointer: None,
            })
        } else {
            Err(Error::Internal(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }

    async fn connect_sqlite(url: &str) -> Result<Self> {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if path != ":memory:" {
            let file = std::path::Path::new(path);
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::config::create_private_dir(dir).map_err(|e| {
                    Error::Internal(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            // SQLite creates its -wal, -shm and -journal files with the main file's mode, so a
            // main file created 0600 keeps all of them private.
            crate::config::create_private_file(file)
                .map_err(|e| Error::Internal(format!("cannot create {}: {e}", file.display())))?;
        }
        let url = if url.contains('?') {
            url.to_string()
        } else {
            format!("{url}?mode=rwc")
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        // No health check on checkout: the file does not drop connections the way a server
        // does, and the check would cost every write a round trip to SQLite's thread.
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .after_connect(sqlite_writer_pragmas)
            .connect_with(opts.clone())
            .await?;
        let reader = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(sqlite_reader_pragmas)
            .connect_with(opts)
            .await?;
        let checkpointer = (path != ":memory:")
            .then(|| std::sync::Arc::new(wal::Checkpointer::spawn(reader.clone())));
        Ok(Self {
            reader,
            intake: writer.clone(),
            writer,
            backend: Backend::Sqlite,
            books: book::Books::default(),
            _checkpointer: checkpointer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // With nothing pending, nothing is touched: the migrator starts with CREATE TABLE IF NOT
        // EXISTS on its own table, which PostgreSQL refuses to a role that may not create in the
        // schema even when the table exists, and the service may run as such a role (README).
        if self.migrations_applied(migrator).await {
            return Ok(());
        }
        migrator.run(&self.writer).await?;
        Ok(())
    }

    /// Whether the database holds exactly this build's migrations, each applied in full. Any
    /// doubt (no migration table yet, a changed or unknown migration) answers no, and the
    /// migrator then applies what is pending or reports what is wrong.
    async fn migrations_applied(&self, migrator: &sqlx::migrate::Migrator) -> bool {
        let Ok(rows) = sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(&self.writer)
            .await
        else {
            return false;
        };
        let mut applied = std::collections::HashMap::new();
        for r in &rows {
            let (Ok(version), Ok(checksum), Ok(true)) = (
                r.try_get::<i64, _>("version"),
                r.try_get::<Vec<u8>, _>("checksum"),
                get_bool(r, "success"),
            ) else {
                return false;
            };
            applied.insert(version, checksum);
        }
        let wanted: Vec<_> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .collect();
        applied.len() == wanted.len()
            && wanted
                .iter()
                .all(|m| applied.get(&m.version).map(Vec::as_slice) == Some(&*m.checksum))
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.writer.begin().await?)
    }

    /// A transaction that writes from its first statement on. On SQLite it takes the database's
    /// write lock at once (`BEGIN IMMEDIATE`), which orders it after every other writer as a
    /// ledger lock would; PostgreSQL gets a plain transaction, and the caller locks what it
    /// writes.
    pub(crate) async fn begin_writing(&self) -> Result<Tx> {
        Ok(match self.backend() {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub(crate) fn writer_pool(&self) -> AnyPool {
        self.writer.clone()
    }

    /// This store, writing through the intake's pool.
    pub fn for_intake(&self) -> Store {
        Store {
            writer: self.intake.clone(),
            ..self.clone()
        }
    }

    /// The retention job's one way to delete: runs `deletes` (each a DELETE of at most `$2`
    /// rows due before `$1`) in one transaction and, when any row went, audits how many on the
    /// system chain as `action`. The database refuses deletions before each table's floor.
    pub(crate) async fn audited_purge(
        &self,
        actor: &str,
        action: &str,
        entity: &str,
        deletes: &[&str],
        before: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<u64> {
        let before = format_time(before);
        let mut tx = self.begin().await?;
        let mut n = 0;
        for sql in deletes {
            n += sqlx::query(sql)
                .bind(&before)
                .bind(limit)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if n > 0 {
            crate::audit::record(
                &mut tx,
                &crate::audit::Chain::System,
                crate::audit::Entry {
                    actor,
                    action,
                    entity,
                    entity_id: None,
                    details: serde_json::json!({"deleted": n, "before": before}),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
        self.intake.close().await;
    }
}

type PragmaFuture<'c> = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::result::Result<(), sqlx::Error>> + Send + 'c>,
>;

/// The writer commits with `synchronous = FULL`: in WAL mode, NORMAL syncs the WAL only at
/// checkpoints, so a power cut can lose the last commits after they were acknowledged (to a
/// cashier, or to a sender that then stops retrying). It checkpoints itself rarely: [`wal`]
/// copies the WAL into the database from a reader connection, beside it.
fn sqlite_writer_pragmas(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> PragmaFuture<'_> {
    Box::pin(async move {
        sqlite_pragmas(conn, "PRAGMA synchronous = FULL").await?;
        let pragma = format!(
            "PRAGMA wal_autocheckpoint = {}",
            wal::WRITER_CHECKPOINT_PAGES
        );
        sqlx::query(&pragma).execute(&mut *conn).await?;
        Ok(())
    })
}

/// Readers never commit a write, so their level syncs nothing more; a checkpoint one of them
/// runs (the last connection to close runs one) syncs the WAL first at NORMAL as at FULL.
fn sqlite_reader_pragmas(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> PragmaFuture<'_> {
    Box::pin(sqlite_pragmas(conn, "PRAGMA synchronous = NORMAL"))
}

async fn sqlite_pragmas(
    conn: &mut sqlx::AnyConnection,
    synchronous: &'static str,
) -> std::result::Result<(), sqlx::Error> {
    for pragma in [
        "PRAGMA journal_mode = WAL",
        synchronous,
        "PRAGMA busy_timeout = 10000",
        "PRAGMA foreign_keys = ON",
    ] {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Now, as stored: fixed-width UTC RFC 3339 with microseconds, so text order is time order.
pub fn now() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Booleans come back as BOOLEAN from PostgreSQL and as INTEGER from SQLite.
pub(crate) fn get_bool(row: &AnyRow, col: &str) -> Result<bool> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(col)? != 0),
    }
}

/// `($1,$2,$3),($4,$5,$6)…` for a multi-row insert of `rows` rows of `cols` columns.
/// (`QueryBuilder<Any>` writes `?`, which PostgreSQL does not accept.)
/// Rows per multi-row INSERT. PostgreSQL wants few round trips (1,000 rows stays under its
/// 65,535 parameters); SQLite's cost per row grows with the statement's size, and 16 rows per
/// statement measured fastest there (the import benchmark: 32k lines/s against 3k at 1,000).
pub(crate) fn chunk_size(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 16,
        Backend::Postgres => 1000,
    }
}

/// Rows per multi-row INSERT written with [`values_rows`]: on SQLite its unnumbered `?` cost
/// the same per row whatever the statement's size (SQLite looks a numbered parameter up by a
/// scan of all of them, so `$N` rows cost more the more there are), so a batch of deliveries
/// goes in one statement per table.
pub(crate) fn rows_per_insert(conn: &sqlx::AnyConnection) -> usize {
    match backend_of(conn) {
        Backend::Sqlite => 64,
        Backend::Postgres => chunk_size(Backend::Postgres),
    }
}

pub(crate) fn backend_of(conn: &sqlx::AnyConnection) -> Backend {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// The VALUES rows of a statement that has no other parameters: `(?,?),(?,?)` on SQLite,
/// `($1,$2),($3,$4)` on PostgreSQL (which accepts only numbered ones).
pub(crate) fn values_rows(conn: &sqlx::AnyConnection, rows: usize, cols: usize) -> String {
    match backend_of(conn) {
        Backend::Sqlite => unnumbered_rows(rows, cols),
        Backend::Postgres => values_placeholders(rows, cols),
    }
}

fn unnumbered_rows(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(","));
    vec![row; rows].join(",")
}

pub(crate) fn values_placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            n += 1;
            s.push('$');
            s.push_str(&n.to_string());
        }
        s.push(')');
    }
    s
}

/// A caller's scope as two optional binds for `(<school> IS NULL OR s.id = <school>) AND
/// (<department> IS NULL OR s.department_id = <department>)` on a join with `schools s`: the
/// scope is a condition of the query, so an object outside it costs the same look-up as one
/// that does not exist.
pub(crate) fn scope_binds(scope: crate::domain::access::Scope) -> (Option<i64>, Option<i64>) {
    use crate::domain::access::Scope;
    match scope {
        Scope::All => (None, None),
        Scope::School(id) => (Some(id), None),
        Scope::Department(id) => (None, Some(id)),
        // A parent's queries join their link instead; through these binds they match no
        // school (ids start at 1).
        Scope::Family(_) => (Some(0), Some(0)),
    }
}

/// Keyset pagination: ids are increasing, the cursor is the last id seen.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: i64,
    pub limit: i64,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 500;
}

/// A page of results and the cursor for the next one.
pub fn paginate<T>(
    mut items: Vec<T>,
    page: Page,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    let more = items.len() as i64 > page.limit;
    if more {
        items.truncate(page.limit as usize);
    }
    let next = if more {
        items.last().map(|t| id(t).to_string())
    } else {
        None
    };
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_across_rows() {
        assert_eq!(values_placeholders(2, 3), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(unnumbered_rows(2, 3), "(?,?,?),(?,?,?)");
    }

    #[test]
    fn times_sort_as_text() {
        let a = chrono::DateTime::from_timestamp(1_700_000_000, 5_000).unwrap();
        let b = chrono::DateTime::from_timestamp(1_700_000_000, 50_000).unwrap();
        assert!(format_time(a) < format_time(b));
        assert_eq!(format_time(a), "2023-11-14T22:13:20.000005Z");
    }
}
