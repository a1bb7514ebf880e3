//! Each school's book as the reconciliation engine reads it (its invoices, their students and
//! balances, in the engine's `Index`), kept in memory across requests, so that reading a memo
//! costs the memo, not the book.
//!
//! A book knows the position of the school's audit chain it reflects: every change to invoices
//! or allocations writes an audit record on that chain, in the same transaction, under the
//! school's ledger lock. Under that lock a writer compares the chain's position with the book's:
//! equal, the book is current; ahead (another instance, or a write that did not go through the
//! book), the records since are replayed (allocations move balances and name the payment that
//! paid; a void closes an invoice) or, for a change the records do not carry (an invoice issued
//! or imported, a reversal), the book is read again.
//!
//! A book holds every invoice of the school whatever its state (open, paid, voided), so that the
//! engine knows a month already paid and the payment that paid it. So several instances on
//! one PostgreSQL each keep a correct book.
//!
//! A book is first read outside any write transaction, from a consistent snapshot, so that
//! reading a large school never holds the writer; at most `budget` invoices are kept over all
//! schools, the least recently used going first.

use super::{Backend, Store, Tx};
use crate::audit::Chain;
use crate::domain::code::{PaymentCode, SchoolPrefix};
use crate::domain::money::Vnd;
use crate::error::{Error, Result};
use crate::recon::{Index, OpenInvoice};
use crate::store::org::School;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Invoices kept in memory over all schools, by default.
pub const DEFAULT_BUDGET: usize = 3_000_000;

pub struct Book {
    pub index: Index,
    /// The position of the school's audit chain this book reflects.
    pub seq: i64,
    /// The school's transfers allocated from their memo or by hand, as the duplicate rules read
    /// them, once a batch has read them.
    pub transfers: Option<Transfers>,
    /// The school's open reviews, as rule `period_in_review` reads them.
    pub reviews: Option<KeptReviews>,
}

/// A school's open reviews, current only while `at_seq` is the book's position: opening one
/// from the intake batch adds it here, closing one (a match, a dismissal, a refund, another
/// instance) moves the chain without it, and the next batch reads them again.
pub struct KeptReviews {
    pub list: Vec<crate::plan::intake::OpenReview>,
    pub at_seq: i64,
}

/// A school's payments allocated other than by a payment code and received from `from` on,
/// kept beside the book so that a review's duplicate look-up costs the review, not the
/// window's payments. Current only while `at_seq` is the book's position: a change the intake
/// batch did not make itself (a hand match, a reversal, another instance) moves the chain
/// without it, and the next batch reads them again.
pub struct Transfers {
    pub ledger: crate::recon::duplicates::Ledger,
    pub from: chrono::DateTime<chrono::Utc>,
    pub at_seq: i64,
}

type Slot = Arc<tokio::sync::Mutex<Option<Book>>>;

struct Entry {
    slot: Slot,
    invoices: usize,
    used: Instant,
}

/// The books of the schools in use.
#[derive(Clone)]
pub struct Books {
    inner: Arc<Mutex<HashMap<i64, Entry>>>,
    budget: usize,
}

impl Default for Books {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET)
    }
}

impl Books {
    pub fn new(budget: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(HashMap::new())),
            budget,
        }
    }

    /// The slot of a school's book (empty until read).
    pub fn slot(&self, school_id: i64) -> Slot {
        let mut map = match self.inner.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let e = map.entry(school_id).or_insert_with(|| Entry {
            slot: Arc::new(tokio::sync::Mutex::new(None)),
            invoices: 0,
            used: Instant::now(),
        });
        e.used = Instant::now();
        e.slot.clone()
    }

    /// Notes a school's book size, and lets the least recently used books go while the total
    /// is over budget (a book in use stays alive until its user is done with it).
    fn sized(&self, school_id: i64, invoices: usize) {
        let mut map = match self.inner.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(e) = map.get_mut(&school_id) {
            e.invoices = invoices;
        }
        let mut total: usize = map.values().map(|e| e.invoices).sum();
        while total > self.budget && map.len() > 1 {
            let Some((&oldest, _)) = map
                .iter()
                .filter(|(id, _)| **id != school_id)
                .min_by_key(|(_, e)| e.used)
            else {
                break;
            };
            if let Some(e) = map.remove(&oldest) {
                total -= e.invoices;
            }
        }
    }

    /// Forgets every book: the next use reads them again.
    pub fn clear(&self) {
        if let Ok(mut map) = self.inner.lock() {
            map.clear();
        }
    }
}

/// The school's audit chain position, on any connection.
async fn chain_seq(conn: &mut sqlx::AnyConnection, school_id: i64) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM audit_chains WHERE chain = $1")
        .bind(Chain::School(school_id).key())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// The school's invoices as the engine needs them (open, paid and voided), with their students
/// and the payment that last paid each, read on `conn`.
pub(super) async fn open_invoices_of(
    conn: &mut sqlx::AnyConnection,
    school_id: i64,
) -> Result<Vec<OpenInvoice>> {
    use futures_util::TryStreamExt;
    // What was paid to each invoice, summed apart rather than joined: right after a big import
    // (invoices and allocations written in this very transaction) PostgreSQL's statistics
    // still say the tables are empty, and a joined plan rescanned the allocations once per
    // invoice (10 s for 18,000 invoices). Two linear reads cost the same whatever the plan.
    let mut paid: HashMap<i64, (i64, i64)> = HashMap::new();
    {
        let mut rows = sqlx::query(
            "SELECT invoice_id, CAST(SUM(amount) AS BIGINT) AS paid, CAST(MAX(payment_id) AS BIGINT) AS last_payment FROM allocations WHERE school_id = $1 GROUP BY invoice_id",
        )
        .bind(school_id)
        .fetch(&mut *conn);
        while let Some(r) = rows.try_next().await? {
            paid.insert(
                r.try_get("invoice_id")?,
                (r.try_get("paid")?, r.try_get("last_payment")?),
            );
        }
    }
    // Streamed: a school's whole book of open invoices can be a million rows, and holding the
    // raw rows beside the converted ones would double the memory.
    let mut rows = sqlx::query(
        "SELECT i.id, i.payment_code, i.period, i.student_id, s.student_code, s.full_name, s.class_name, s.family_key, i.total,
                CAST(CASE WHEN i.voided_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS voided
         FROM invoices i JOIN students s ON s.id = i.student_id
         WHERE i.school_id = $1",
    )
    .bind(school_id)
    .fetch(&mut *conn);
    let mut out = Vec::new();
    while let Some(r) = rows.try_next().await? {
        let id: i64 = r.try_get("id")?;
        let total: i64 = r.try_get("total")?;
        let (paid_sum, last_payment) = match paid.get(&id) {
            Some(&(sum, last)) => (sum, Some(last)),
            None => (0, None),
        };
        let open = (total - paid_sum).max(0);
        let voided: i64 = r.try_get("voided")?;
        let code: String = r.try_get("payment_code")?;
        out.push(OpenInvoice {
            invoice_id: id,
            code: PaymentCode::from_canonical(&code)
                .map_err(|e| Error::Internal(format!("stored payment code: {e}")))?,
            student_id: r.try_get("student_id")?,
            student_code: r.try_get("student_code")?,
            student_name: r.try_get("full_name")?,
            class_name: r.try_get("class_name")?,
            family_key: r.try_get("family_key")?,
            open: Vnd::new(open).map_err(|e| Error::Internal(e.to_string()))?,
            period: r.try_get("period")?,
            voided: voided != 0,
            paid_by: last_payment,
        });
    }
    out.shrink_to_fit();
    Ok(out)
}

async fn read_book(conn: &mut sqlx::AnyConnection, school: &School) -> Result<Book> {
    let prefix =
        SchoolPrefix::parse(&school.payment_prefix).map_err(|e| Error::Internal(e.to_string()))?;
    let seq = chain_seq(conn, school.id).await?;
    let invoices = open_invoices_of(conn, school.id).await?;
    Ok(Book {
        index: Index::build(&prefix, invoices),
        seq,
        transfers: None,
        reviews: None,
    })
}

impl Store {
    /// Reads the school's book if this instance has none, from a consistent snapshot of the
    /// reader (no write transaction is held meanwhile).
    pub(super) async fn warm_book(&self, school: &School) -> Result<()> {
        let slot = self.books.slot(school.id);
        let mut book = slot.lock().await;
        if book.is_some() {
            return Ok(());
        }
        let mut tx = self.reader().begin().await?;
        if self.backend() == Backend::Postgres {
            // The chain position and the invoices from one snapshot: what is read is exactly the
            // book at that position.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let read = read_book(&mut tx, school).await?;
        tx.commit().await?;
        self.books.sized(school.id, read.index.len());
        *book = Some(read);
        Ok(())
    }
}

/// Brings `book` up to the school's audit chain inside `tx`, which holds the school's ledger
/// lock: replays the records since its position (allocations), or reads the book again when a
/// record says something changed that records do not carry.
pub(super) async fn catch_up(tx: &mut Tx, school: &School, book: &mut Option<Book>) -> Result<()> {
    let seq = chain_seq(tx, school.id).await?;
    catch_up_to(tx, school, book, seq).await
}

/// [`catch_up`] for several schools, their chain positions read in one query.
/// Catches each of `books` up to its school's chain length in `seqs` (read under the ledger
/// lock, with what the batch reads besides: `seen.rs`).
pub(super) async fn catch_up_all(
    tx: &mut Tx,
    books: &mut [(&School, &mut Option<Book>)],
    seqs: &HashMap<i64, i64>,
) -> Result<()> {
    for (school, book) in books.iter_mut() {
        let seq = seqs.get(&school.id).copied().unwrap_or(0);
        catch_up_to(tx, school, book, seq).await?;
    }
    Ok(())
}

async fn catch_up_to(
    tx: &mut Tx,
    school: &School,
    book: &mut Option<Book>,
    seq: i64,
) -> Result<()> {
    let current = match book.as_mut() {
        Some(b) if b.seq == seq => return Ok(()),
        Some(b) if b.seq < seq => b,
        // Missing, or ahead of the database (a transaction it recorded did not commit).
        _ => {
            *book = Some(read_book(tx, school).await?);
            return Ok(());
        }
    };
    let rows = sqlx::query(
        "SELECT seq, action, entity, entity_id, details FROM audit_log WHERE chain = $1 AND seq > $2 ORDER BY seq",
    )
    .bind(Chain::School(school.id).key())
    .bind(current.seq)
    .fetch_all(&mut **tx)
    .await?;
    let mut moves: Vec<(i64, Vnd, Option<i64>)> = Vec::new();
    let mut voids: Vec<i64> = Vec::new();
    for r in &rows {
        let action: String = r.try_get("action")?;
        let details: String = r.try_get("details")?;
        let entity: String = r.try_get("entity")?;
        let entity_id: Option<i64> = r.try_get("entity_id")?;
        let payment = (entity == "payment").then_some(entity_id).flatten();
        match replay(&action, &details) {
            Replay::Moves(m) => moves.extend(m.into_iter().map(|(i, a)| (i, a, payment))),
            Replay::Void => match entity_id {
                Some(id) if entity == "invoice" => voids.push(id),
                _ => {
                    *book = Some(read_book(tx, school).await?);
                    return Ok(());
                }
            },
            Replay::Nothing => {}
            Replay::Reread => {
                *book = Some(read_book(tx, school).await?);
                return Ok(());
            }
        }
    }
    for (invoice_id, amount, payment) in moves {
        current.index.settle_by(invoice_id, amount, payment);
    }
    for invoice_id in voids {
        current.index.void(invoice_id);
    }
    current.seq = seq;
    Ok(())
}

/// Records the position a book reached with what this transaction wrote (the book already
/// holds its allocations).
pub(super) async fn written(tx: &mut Tx, school_id: i64, book: &mut Book) -> Result<()> {
    book.seq = chain_seq(tx, school_id).await?;
    Ok(())
}

enum Replay {
    /// Balances move: (invoice, amount allocated; negative when undone).
    Moves(Vec<(i64, Vnd)>),
    /// The record's invoice was voided.
    Void,
    /// Nothing the engine reads changed.
    Nothing,
    /// The book must be read again.
    Reread,
}

/// What an audit record means for a school's book.
fn replay(action: &str, details: &str) -> Replay {
    let pairs = |v: &serde_json::Value, field: &str| -> Option<Vec<(i64, Vnd)>> {
        v.get(field)?
            .as_array()?
            .iter()
            .map(|p| {
                let p = p.as_array()?;
                Some((p.first()?.as_i64()?, Vnd::new(p.get(1)?.as_i64()?).ok()?))
            })
            .collect()
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(details) else {
        return Replay::Reread;
    };
    match action {
        "payment.record" | "payment.reconcile" | "exception.match" => {
            match pairs(&v, "allocations") {
                Some(m) => Replay::Moves(m),
                None => Replay::Reread,
            }
        }
        // A reversal moves balances back, in records this does not read item by item.
        "payment.reverse" => Replay::Reread,
        "invoice.void" => Replay::Void,
        "payment.allocate_credit" => match (
            v.get("invoice_id").and_then(|i| i.as_i64()),
            v.get("amount")
                .and_then(|a| a.as_i64())
                .and_then(|a| Vnd::new(a).ok()),
        ) {
            (Some(i), Some(a)) => Replay::Moves(vec![(i, a)]),
            _ => Replay::Reread,
        },
        // What moves no balance and names no invoice.
        "day.close"
        | "exception.open"
        | "exception.dismiss"
        | "exception.refund"
        | "payment.refund_request"
        | "provider_account.create"
        | "provider_secret.add"
        | "provider_secret.retire"
        | "pull_source.configure"
        | "school.accepts_cash"
        | "school_account.propose"
        | "school_account.approve"
        | "school_account.reject"
        | "school_account.retire"
        | "statement.import"
        | "student.create"
        | "fee_item.create"
        | "token.create"
        | "token.revoke" => Replay::Nothing,
        // Invoices issued, imported or voided, and anything not known here.
        _ => Replay::Reread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_replay_as_moves_or_a_reread() {
        let moves = |r: Replay| match r {
            Replay::Moves(m) => Some(m),
            _ => None,
        };
        assert_eq!(
            moves(replay(
                "payment.record",
                r#"{"allocations":[[7,"1500"],[9,2000]],"amount":3500}"#
            )),
            None,
            "an amount that is not a whole number of đồng reads nothing"
        );
        assert_eq!(
            moves(replay(
                "payment.record",
                r#"{"allocations":[[7,1500],[9,2000]]}"#
            )),
            Some(vec![
                (7, Vnd::new(1500).unwrap()),
                (9, Vnd::new(2000).unwrap())
            ])
        );
        assert!(matches!(
            replay("payment.reverse", r#"{"reversal_id":3}"#),
            Replay::Reread
        ));
        assert!(matches!(replay("exception.open", "{}"), Replay::Nothing));
        assert!(matches!(replay("invoice.void", "{}"), Replay::Void));
        assert!(matches!(replay("invoice.issue", "{}"), Replay::Reread));
        assert!(matches!(replay("something.new", "{}"), Replay::Reread));
    }
}
