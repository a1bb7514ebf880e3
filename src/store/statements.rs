//! Bank statements of a school's receiving account: each credit line is tied to the payment it
//! settles (by the bank's reference, then by amount and time), or becomes the payment when the
//! notification never came, and goes through matching. Importing the same lines again, in the
//! same file or a later overlapping export, creates nothing twice.

use super::book::{catch_up, written};
use super::ledger::{lock_ledger, NewPayment, PLAIN_TRANSFER};
use super::recon::open_exception;
use super::record::{record_batch_in, BatchItem, Job, Loaded};
use super::{format_time, now, rows_per_insert, values_rows, Store, Tx};
use crate::audit::{self, Chain, Entry};
use crate::coverage::{Unit, STATEMENTS, STATEMENT_LINES};
use crate::domain::fee::Channel;
use crate::domain::ledger::StatementMatch;
use crate::domain::money::Vnd;
use crate::domain::provider::ProviderId;
use crate::error::{Error, Result};
use crate::plan::intake::{Allocate, Planned};
use crate::plan::queue::{ExceptionKind, LedgerIssue};
use crate::plan::statement::{tie, Candidate, ToTie};
use crate::recon::statement::Pulled;
use crate::recon::statement::{Direction, Statement, StatementLine};
use crate::recon::Index;
use crate::store::fees::SchoolAccount;
use crate::store::org::School;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};
use utoipa::ToSchema;

pub use crate::plan::statement::{
    MATCH_WINDOW_HOURS, MAX_REFERENCE_DIFFERENCE_PERCENT, SETTLEMENT_WINDOW_HOURS,
};

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct StatementReport {
    /// Absent when every line was imported before.
    pub statement_id: Option<i64>,
    pub lines: usize,
    /// Lines already imported (same bank reference, or the same line without one).
    pub already_imported: usize,
    pub debits: usize,
    /// Credits tied to a payment by the bank's reference.
    pub matched_by_reference: usize,
    /// Credits tied to a payment by amount and time.
    pub matched_by_amount: usize,
    /// Of those, credits that arrived net of the payment's recorded fee: the fee is confirmed.
    pub fee_confirmed: usize,
    /// Credits with no notification: recorded as payments now, and matched.
    pub created: usize,
    /// Created payments the engine could not allocate: in the review queue.
    pub to_review: usize,
    /// Notifications for this account with no statement line within the settlement window.
    pub unsettled_notifications: Vec<i64>,
    /// Every line of the file, in the file's order, with what became of it.
    pub outcomes: Vec<LineOutcome>,
}

/// What became of one line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineOutcome {
    /// The line's number in the file.
    pub line_no: usize,
    pub outcome: StatementMatch,
    /// The payment it was tied to or became.
    pub payment_id: Option<i64>,
    /// For a credit that became a payment: the invoices it was allocated to.
    pub allocations: Vec<crate::plan::queue::SuggestedAllocation>,
    /// The rule that allocated it, or the exception it waits in.
    pub rule: Option<String>,
    pub exception_id: Option<i64>,
}

fn line_key(l: &StatementLine) -> String {
    match l
        .bank_ref
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        Some(r) => format!("ref:{}", r.to_uppercase()),
        None => {
            let mut h = Sha256::new();
            for part in [
                format_time(l.booked_at),
                l.amount.dong().to_string(),
                format!("{:?}", l.direction),
                l.memo.clone(),
            ] {
                h.update(part.as_bytes());
                h.update([0x1f]);
            }
            format!("sha:{}", hex::encode(h.finalize()))
        }
    }
}

/// A line to import under its key; a pulled one carries the sender's transaction id and order
/// reference.
struct Line<'a> {
    line: &'a StatementLine,
    key: String,
    txn: Option<(String, Option<String>)>,
}

impl Store {
    pub async fn school_account(&self, school_id: i64, account_id: i64) -> Result<SchoolAccount> {
        self.school_accounts(school_id)
            .await?
            .into_iter()
            .find(|a| a.id == account_id)
            .ok_or_else(|| Error::not_found("account_not_found", "receiving account"))
    }

    /// Imports `statement` of `account`, all or nothing. The caller has checked the file's
    /// account, currency and dates.
    pub async fn import_statement(
        &self,
        actor: &str,
        school: &School,
        account: &SchoolAccount,
        statement: &Statement,
        file_sha256: &str,
        format: &str,
    ) -> Result<StatementReport> {
        let keys: Vec<String> = statement.lines.iter().map(line_key).collect();
        let mut first_at: HashMap<&str, usize> = HashMap::new();
        for (l, k) in statement.lines.iter().zip(&keys) {
            if let Some(earlier) = first_at.insert(k, l.line_no) {
                return Err(Error::invalid(
                    "statement_duplicate_line",
                    format!("lines {earlier} and {} are the same transaction; a statement lists each once", l.line_no),
                ));
            }
        }
        let lines: Vec<Line> = statement
            .lines
            .iter()
            .zip(keys)
            .map(|(line, key)| Line {
                line,
                key,
                txn: None,
            })
            .collect();
        self.import_lines(actor, school, account, lines, None, file_sha256, format)
            .await
    }

    /// Imports the transactions pulled from a watcher's API for `account` (the watched bank
    /// account), through the same path as a statement. Each is keyed by the sender's transaction
    /// id: a transaction already notified is tied to its payment, one never notified is recorded
    /// under the key its notification would carry, so a late notification is a duplicate.
    pub async fn import_pulled(
        &self,
        school: &School,
        account: &SchoolAccount,
        provider: ProviderId,
        pulled: &[Pulled],
        digest: &str,
    ) -> Result<StatementReport> {
        let mut seen = BTreeSet::new();
        let lines: Vec<Line> = pulled
            .iter()
            // A transaction listed twice (pages shifting under the reader) is one transaction.
            .filter(|p| seen.insert(p.txn_id.to_ascii_uppercase()))
            .map(|p| Line {
                line: &p.line,
                key: format!("{}:{}", provider.as_str(), p.txn_id.to_ascii_uppercase()),
                txn: Some((p.txn_id.to_ascii_uppercase(), p.order_ref.clone())),
            })
            .collect();
        let actor = format!("pull:{}", provider.as_str());
        let format = format!("{}-api", provider.as_str());
        self.import_lines(
            &actor,
            school,
            account,
            lines,
            Some(provider),
            digest,
            &format,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn import_lines(
        &self,
        actor: &str,
        school: &School,
        account: &SchoolAccount,
        lines: Vec<Line<'_>>,
        pulled_from: Option<ProviderId>,
        file_sha256: &str,
        format: &str,
    ) -> Result<StatementReport> {
        // The school's book for the engine, read first outside the transaction if needed.
        self.warm_book(school).await?;
        let slot = self.books.slot(school.id);
        let mut book = slot.lock().await;
        let result = async {
            let mut tx = self.begin().await?;
            lock_ledger(&mut tx, school.id).await?;
            catch_up(&mut tx, school, &mut book).await?;
            let index = match book.as_mut() {
                Some(b) => &mut b.index,
                None => return Err(Error::Internal("the school's book was not read".into())),
            };
            let report = import_lines_in(
                &mut tx,
                index,
                actor,
                school,
                account,
                lines,
                pulled_from,
                file_sha256,
                format,
            )
            .await?;
            if let Some(b) = book.as_mut() {
                written(&mut tx, school.id, b).await?;
            }
            tx.commit().await?;
            Ok(report)
        }
        .await;
        if result.is_err() {
            *book = None;
        }
        result
    }
}

/// [`Store::import_lines`] inside a transaction that holds the school's ledger lock, with its
/// book caught up. Lines are taken in booking order, each seeing only what was booked before
/// it: a credit is tied to the notification it settles, or becomes a payment decided exactly as
/// its notification would have been.
#[allow(clippy::too_many_arguments)]
async fn import_lines_in(
    tx: &mut Tx,
    index: &mut Index,
    actor: &str,
    school: &School,
    account: &SchoolAccount,
    mut lines: Vec<Line<'_>>,
    pulled_from: Option<ProviderId>,
    file_sha256: &str,
    format: &str,
) -> Result<StatementReport> {
    let mut report = StatementReport {
        lines: lines.len(),
        ..Default::default()
    };
    lines.sort_by_key(|l| (l.line.booked_at, l.line.line_no));
    let keys: Vec<&str> = lines.iter().map(|l| l.key.as_str()).collect();
    let known = known_keys(tx, account.id, &keys).await?;
    let elsewhere = imported_from_elsewhere(tx, account.id, &lines).await?;
    let (new, old): (Vec<&Line>, Vec<&Line>) = lines
        .iter()
        .partition(|l| !known.contains(l.key.as_str()) && !elsewhere.contains(l.key.as_str()));
    report.already_imported = old.len();
    let mut outcomes: Vec<LineOutcome> = old
        .iter()
        .map(|l| LineOutcome {
            line_no: l.line.line_no,
            outcome: StatementMatch::AlreadyImported,
            payment_id: None,
            allocations: vec![],
            rule: None,
            exception_id: None,
        })
        .collect();
    if new.is_empty() {
        outcomes.sort_by_key(|o| o.line_no);
        report.outcomes = outcomes;
        return Ok(report);
    }

    // Payments the credits may settle: same school, not yet on a statement, near in time.
    let credits: Vec<&StatementLine> = new
        .iter()
        .map(|l| l.line)
        .filter(|l| l.direction == Direction::Credit)
        .collect();
    report.debits = new.len() - credits.len();
    let (from, to) = credits.iter().fold((None, None), |(lo, hi), l| {
        (
            Some(lo.map_or(l.booked_at, |t: DateTime<Utc>| t.min(l.booked_at))),
            Some(hi.map_or(l.booked_at, |t: DateTime<Utc>| t.max(l.booked_at))),
        )
    });
    let window = Duration::hours(MATCH_WINDOW_HOURS);
    let candidates = match (from, to) {
        (Some(from), Some(to)) => unsettled(tx, school.id, from - window, to + window).await?,
        _ => vec![],
    };
    // A pulled transaction already notified: its payment carries the same sender key.
    let notified = match pulled_from {
        Some(provider) => {
            let refs: Vec<String> = new
                .iter()
                .filter(|l| l.line.direction == Direction::Credit)
                .filter_map(|l| l.txn.as_ref())
                .map(|(txn, _)| format!("{}:{txn}", account.account_number))
                .collect();
            payments_by_ref(tx, school.id, provider.as_str(), &refs).await?
        }
        None => HashMap::new(),
    };
    let to_tie: Vec<ToTie> = new
        .iter()
        .map(|l| ToTie {
            line: l.line,
            notified: l.txn.as_ref().and_then(|(txn, _)| {
                notified
                    .get(&format!("{}:{txn}", account.account_number))
                    .copied()
            }),
        })
        .collect();
    let ties = tie(&to_tie, &candidates, &account.account_number);
    report.matched_by_reference = ties.by_reference;
    report.matched_by_amount = ties.by_amount;
    report.fee_confirmed = ties.fee_confirmed;
    let mut matched = ties.matched;

    // Credits nobody notified become payments, in booking order, decided as their
    // notification would have been.
    let missing: Vec<usize> = (0..new.len())
        .filter(|i| new[*i].line.direction == Direction::Credit && !matched.contains_key(i))
        .collect();
    let now_at = Utc::now();
    let mut items: Vec<BatchItem> = missing
        .iter()
        .map(|i| {
            let Line { line: l, key, txn } = new[*i];
            // A pulled transaction is recorded as its notification would have been.
            let (provider, provider_ref, order_ref) = match (pulled_from, txn) {
                (Some(p), Some((txn, order_ref))) => (
                    p.as_str().to_string(),
                    format!("{}:{txn}", account.account_number),
                    order_ref.clone(),
                ),
                _ => (
                    PLAIN_TRANSFER.to_string(),
                    format!("{}:{key}", account.account_number),
                    None,
                ),
            };
            BatchItem {
                job: Some(Job {
                    actor: actor.to_string(),
                    school: school.clone(),
                    payment: NewPayment {
                        channel: Channel::BankTransfer,
                        provider,
                        provider_ref: Some(provider_ref),
                        bank_ref: l.bank_ref.clone(),
                        payer_name: l.counterparty.clone(),
                        memo: Some(l.memo.clone()),
                        amount: l.amount,
                        received_at: l.booked_at.min(now_at),
                        reported_fee: None,
                        allocate: Allocate::Engine { order_ref },
                        reported_fee_bearer: None,
                        credited_account: None,
                    },
                }),
                event: None,
            }
        })
        .collect();
    let results = {
        let loaded = Loaded::read(tx, &items, &BTreeSet::from([school.id])).await?;
        let mut books = std::collections::BTreeMap::from([(school.id, &mut *index)]);
        record_batch_in(tx, &mut items, &mut books, &mut Default::default(), loaded)
            .await?
            .outcomes
    };
    // line index → (allocations, rule, exception) of a credit that became a payment.
    type Decided = (Vec<(i64, Vnd)>, Option<String>, Option<i64>);
    let mut decided: HashMap<usize, Decided> = HashMap::new();
    for (i, result) in missing.iter().zip(results) {
        let Some(o) = result else { continue };
        match (&o.planned, o.payment_id) {
            (Planned::Create(c), Some(id)) => {
                report.created += 1;
                if c.review.is_some() {
                    report.to_review += 1;
                }
                matched.insert(*i, (id, StatementMatch::Created));
                decided.insert(*i, (c.allocations.clone(), c.rule.clone(), o.exception_id));
            }
            // Recorded before under the same key: cannot happen past `known_keys`, but never
            // book it twice.
            (Planned::Duplicate(_) | Planned::DuplicateOf(_), Some(id)) => {
                matched.insert(*i, (id, StatementMatch::MatchedReference));
            }
            _ => return o.recorded().map(|_| report),
        }
    }

    let statement_id: i64 = sqlx::query_scalar(
        "INSERT INTO statements (school_id, account_id, format, file_sha256, lines, imported_at, imported_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(school.id)
    .bind(account.id)
    .bind(format)
    .bind(file_sha256)
    .bind(new.len() as i64)
    .bind(now())
    .bind(actor)
    .fetch_one(&mut **tx)
    .await?;
    report.statement_id = Some(statement_id);
    let rows: Vec<(usize, &StatementLine, &String)> = new
        .iter()
        .enumerate()
        .map(|(i, l)| (i, l.line, &l.key))
        .collect();
    for chunk in rows.chunks(rows_per_insert(tx)) {
        let sql = format!(
            "INSERT INTO statement_lines (statement_id, school_id, account_id, line_key, booked_at, amount, direction, bank_ref, memo,
                counterparty, payment_id, matched_by) VALUES {}",
            values_rows(tx, chunk.len(), 12)
        );
        let mut q = sqlx::query(&sql);
        for (i, l, key) in chunk {
            let (payment_id, how) = match matched.get(i) {
                Some((id, how)) => (Some(*id), *how),
                None => (None, StatementMatch::Debit),
            };
            q = q
                .bind(statement_id)
                .bind(school.id)
                .bind(account.id)
                .bind(key.as_str())
                .bind(format_time(l.booked_at))
                .bind(l.amount.dong())
                .bind(match l.direction {
                    Direction::Credit => "credit",
                    Direction::Debit => "debit",
                })
                .bind(&l.bank_ref)
                .bind(&l.memo)
                .bind(&l.counterparty)
                .bind(payment_id)
                .bind(how.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    for (i, l) in new.iter().enumerate() {
        let (payment_id, outcome) = match matched.get(&i) {
            Some((id, how)) => (Some(*id), *how),
            None => (None, StatementMatch::Debit),
        };
        let (allocations, rule, exception_id) = decided.remove(&i).unwrap_or_default();
        outcomes.push(LineOutcome {
            line_no: l.line.line_no,
            outcome,
            payment_id,
            allocations: crate::plan::queue::views(&allocations, index),
            rule,
            exception_id,
        });
    }

    // Notifications of this account that the bank never settled within the window.
    for id in &ties.unsettled {
        report.unsettled_notifications.push(*id);
        open_exception(
            tx,
            actor,
            school,
            *id,
            &ExceptionKind::Ledger(LedgerIssue::NoStatementLine).as_str(),
            "notified, but the bank statement shows no such credit",
            &[],
        )
        .await?;
    }
    for (payment_id, kind, reason) in &ties.differing {
        open_exception(
            tx,
            actor,
            school,
            *payment_id,
            &ExceptionKind::Ledger(*kind).as_str(),
            reason,
            &[],
        )
        .await?;
    }
    audit::record_covering(
        tx,
        &Chain::School(school.id),
        Entry {
            actor,
            action: "statement.import",
            entity: "statement",
            entity_id: Some(statement_id),
            details: json!({"account_id": account.id, "format": format, "sha256": file_sha256, "lines": new.len(),
                "matched": report.matched_by_reference + report.matched_by_amount, "created": report.created,
                "unsettled": report.unsettled_notifications}),
        },
        &[
            Unit::new(STATEMENTS, statement_id),
            Unit::new(STATEMENT_LINES, statement_id),
        ],
    )
    .await?;
    outcomes.sort_by_key(|o| o.line_no);
    report.outcomes = outcomes;
    Ok(report)
}

/// Which of `keys` this account's earlier statements already hold.
async fn known_keys(tx: &mut Tx, account_id: i64, keys: &[&str]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for chunk in keys.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT line_key FROM statement_lines WHERE account_id = $1 AND line_key IN ({})",
            list.join(",")
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(account_id);
        for k in chunk {
            q = q.bind(k);
        }
        out.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// Cashless payments of the school received in `[from, to]` that no statement line settles yet.
async fn unsettled(
    tx: &mut Tx,
    school_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Candidate>> {
    let rows = sqlx::query(
        "SELECT p.id, p.amount, p.received_at, p.bank_ref, p.provider, p.provider_ref,
                CAST(COALESCE((SELECT SUM(f.amount) FROM payment_fees f WHERE f.payment_id = p.id), 0) AS BIGINT) AS fees
         FROM payments p
         WHERE p.school_id = $1 AND p.channel <> 'cash' AND p.amount > 0 AND p.received_at >= $2 AND p.received_at <= $3
           AND NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.payment_id = p.id)
         ORDER BY p.id",
    )
    .bind(school_id)
    .bind(format_time(from))
    .bind(format_time(to))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let at: String = r.try_get("received_at")?;
            Ok(Candidate {
                id: r.try_get("id")?,
                amount: r.try_get("amount")?,
                fees: r.try_get("fees")?,
                received_at: DateTime::parse_from_rfc3339(&at)
                    .map_err(|e| Error::Internal(format!("stored time: {e}")))?
                    .with_timezone(&Utc),
                bank_ref: r.try_get("bank_ref")?,
                provider: r.try_get("provider")?,
                provider_ref: r.try_get("provider_ref")?,
            })
        })
        .collect()
}

/// Keys of `lines` already imported under another kind of key: a statement line with the same
/// bank reference, amount and direction as a pulled one (or the other way round) is the same
/// transaction seen through the bank's export and through the watcher's API.
async fn imported_from_elsewhere(
    tx: &mut Tx,
    account_id: i64,
    lines: &[Line<'_>],
) -> Result<BTreeSet<String>> {
    // Most accounts are only ever read one way: then there is nothing to look for.
    let from_files = lines.iter().any(|l| is_file_key(&l.key));
    let other_kind = if from_files {
        // Every key but a file's: ranges around `ref:` and `sha:`, so the index still serves.
        "line_key < 'ref:' OR (line_key >= 'ref;' AND line_key < 'sha:') OR line_key >= 'sha;'"
    } else {
        "(line_key >= 'ref:' AND line_key < 'ref;') OR (line_key >= 'sha:' AND line_key < 'sha;')"
    };
    let any: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM statement_lines WHERE account_id = $1 AND ({other_kind}) LIMIT 1"
    ))
    .bind(account_id)
    .fetch_optional(&mut **tx)
    .await?;
    if any.is_none() {
        return Ok(BTreeSet::new());
    }
    let with_ref: Vec<(&Line, String)> = lines
        .iter()
        .filter_map(|l| {
            l.line
                .bank_ref
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| (l, r.to_uppercase()))
        })
        .collect();
    let mut seen: HashMap<(String, i64, String), Vec<bool>> = HashMap::new();
    let refs: Vec<&String> = with_ref.iter().map(|(_, r)| r).collect();
    for chunk in refs.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT line_key, UPPER(bank_ref) AS bank_ref, amount, direction FROM statement_lines
             WHERE account_id = $1 AND UPPER(bank_ref) IN ({})",
            list.join(",")
        );
        let mut q = sqlx::query(&sql).bind(account_id);
        for r in chunk {
            q = q.bind(r.as_str());
        }
        for row in q.fetch_all(&mut **tx).await? {
            let key: String = row.try_get("line_key")?;
            seen.entry((
                row.try_get("bank_ref")?,
                row.try_get("amount")?,
                row.try_get("direction")?,
            ))
            .or_default()
            .push(is_file_key(&key));
        }
    }
    Ok(with_ref
        .into_iter()
        .filter(|(l, r)| {
            let direction = match l.line.direction {
                Direction::Credit => "credit",
                Direction::Debit => "debit",
            };
            seen.get(&(r.clone(), l.line.amount.dong(), direction.to_string()))
                .is_some_and(|kinds| kinds.iter().any(|k| *k != is_file_key(&l.key)))
        })
        .map(|(l, _)| l.key.clone())
        .collect())
}

/// A key a bank file gave (its reference or a digest), not a watcher's transaction id.
fn is_file_key(key: &str) -> bool {
    key.starts_with("ref:") || key.starts_with("sha:")
}

/// Payments of the school from `provider` under the references `refs`: reference → (id, amount).
async fn payments_by_ref(
    tx: &mut Tx,
    school_id: i64,
    provider: &str,
    refs: &[String],
) -> Result<HashMap<String, (i64, i64)>> {
    let mut out = HashMap::new();
    for chunk in refs.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT id, amount, provider_ref FROM payments WHERE school_id = $1 AND provider = $2 AND provider_ref IN ({})",
            list.join(",")
        );
        let mut q = sqlx::query(&sql).bind(school_id).bind(provider);
        for r in chunk {
            q = q.bind(r.as_str());
        }
        for row in q.fetch_all(&mut **tx).await? {
            out.insert(
                row.try_get::<String, _>("provider_ref")?,
                (row.try_get("id")?, row.try_get("amount")?),
            );
        }
    }
    Ok(out)
}
