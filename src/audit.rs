//! Append-only, hash-chained audit log. Every change that matters to money writes its record in
//! the same transaction as the change. Each school has its own chain (it shards with the school
//! and schools never wait on each other); installation-wide changes go on the `system` chain.
//!
//! `hash = SHA-256(prev_hash ␟ seq ␟ at ␟ actor ␟ action ␟ entity ␟ entity_id ␟ details)`, so
//! removing, reordering or altering any record breaks every hash after it.
//!
//! What each mechanism detects, against someone who can write to the database:
//! - the **hash chain**: a record changed, deleted, inserted or moved, unless every later hash
//!   is recomputed too;
//! - the **MAC** (`mac = HMAC-SHA-256(K, hash)`, K derived from the secret key, which is not in
//!   the database): a record appended or rewritten with correct hashes, by anyone without K;
//! - the **signed checkpoints** (`crate::checkpoint`, Ed25519, key outside the database, kept
//!   by auditors): a tail cut off, a chain deleted whole, or a history rewritten by someone who
//!   holds K (the service's own host), up to the last checkpoint the auditor kept.
//!
//! The list of chains and their lengths come from the records themselves (and the checkpoints),
//! never from `audit_chains`, which only serialises writers.

use crate::error::Result;
use crate::store::{now, Store, Tx};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;
use utoipa::ToSchema;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The MAC key of this process's audit records. It is process-wide because it is a fact of the
/// installation (derived from FEERECON_SECRET_KEY) and every writer, whatever its transaction,
/// needs it; the first key installed stays.
static MAC_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Installs the MAC key (from [`crate::sealer::Sealer::audit_mac_key`]). Records appended
/// before any key is installed carry no MAC, which verification reports.
pub fn install_mac_key(key: [u8; 32]) {
    if MAC_KEY.set(key).is_err() && MAC_KEY.get() != Some(&key) {
        tracing::warn!("a second, different audit MAC key was offered; the first one stays");
    }
}

fn mac_of(key: &[u8; 32], hash: &str) -> String {
    use hmac::Mac;
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return String::new();
    };
    m.update(hash.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn mac_matches(key: &[u8; 32], hash: &str, mac: &str) -> bool {
    use hmac::Mac;
    let (Ok(mut m), Ok(given)) = (HmacSha256::new_from_slice(key), hex::decode(mac)) else {
        return false;
    };
    m.update(hash.as_bytes());
    m.verify_slice(&given).is_ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    System,
    School(i64),
}

impl Chain {
    pub fn key(&self) -> String {
        match self {
            Chain::System => "system".into(),
            Chain::School(id) => format!("school:{id}"),
        }
    }

    fn school_id(&self) -> Option<i64> {
        match self {
            Chain::System => None,
            Chain::School(id) => Some(*id),
        }
    }
}

/// One record to append.
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: Option<i64>,
    pub details: serde_json::Value,
}

#[allow(clippy::too_many_arguments)]
fn link_hash(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: Option<i64>,
    details: &str,
) -> String {
    let mut h = Sha256::new();
    let id = entity_id.map(|i| i.to_string()).unwrap_or_default();
    for part in [
        prev,
        &seq.to_string(),
        at,
        actor,
        action,
        entity,
        &id,
        details,
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

/// Appends `entry` to `chain` inside `tx`. Incrementing the chain head locks it until commit, so
/// records are chained in commit order.
pub async fn record(tx: &mut Tx, chain: &Chain, entry: Entry<'_>) -> Result<()> {
    record_many(tx, vec![(chain.clone(), entry)]).await?;
    Ok(())
}

/// Appends `entry`, committing it to the ledger rows of `units` as they are now in `tx` (so
/// call it after writing them): see [`crate::coverage`].
pub async fn record_covering(
    tx: &mut Tx,
    chain: &Chain,
    mut entry: Entry<'_>,
    units: &[crate::coverage::Unit],
) -> Result<()> {
    let rows = crate::coverage::commit(tx, units).await?;
    crate::coverage::attach(&mut entry.details, rows);
    record(tx, chain, entry).await
}

/// How many records each chain of `entries` receives: chain key → (school, count).
pub(crate) fn chain_counts(entries: &[(Chain, Entry<'_>)]) -> BTreeMap<String, (Option<i64>, i64)> {
    let mut counts: BTreeMap<String, (Option<i64>, i64)> = BTreeMap::new();
    for (chain, _) in entries {
        counts
            .entry(chain.key())
            .or_insert((chain.school_id(), 0))
            .1 += 1;
    }
    counts
}

/// One record ready to be written, linked to its predecessor.
#[derive(Debug, Serialize)]
pub(crate) struct Linked<'a> {
    pub chain: String,
    pub seq: i64,
    pub school_id: Option<i64>,
    pub at: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: Option<i64>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
    pub mac: Option<String>,
}

/// Links `entries`, in order, after each chain's head. `heads` maps a chain key to the first
/// sequence number to use and the previous hash; on return it holds each chain's new head.
pub(crate) fn link<'a>(
    entries: &'a [(Chain, Entry<'a>)],
    heads: &mut HashMap<String, (i64, String)>,
    at: &'a str,
) -> Result<Vec<Linked<'a>>> {
    let mut rows = Vec::with_capacity(entries.len());
    for (chain, entry) in entries {
        let key = chain.key();
        let Some((seq, prev)) = heads.get_mut(&key) else {
            return Err(crate::error::Error::Internal(format!(
                "audit chain {key} not returned"
            )));
        };
        let details = entry.details.to_string();
        let hash = link_hash(
            prev,
            *seq,
            at,
            entry.actor,
            entry.action,
            entry.entity,
            entry.entity_id,
            &details,
        );
        let mac = MAC_KEY.get().map(|k| mac_of(k, &hash));
        rows.push(Linked {
            chain: key,
            seq: *seq,
            school_id: chain.school_id(),
            at,
            actor: entry.actor,
            action: entry.action,
            entity: entry.entity,
            entity_id: entry.entity_id,
            details,
            prev_hash: std::mem::replace(prev, hash.clone()),
            hash,
            mac,
        });
        *seq += 1;
    }
    Ok(rows)
}

/// Appends several records, in order, in three statements whatever their number: the chain heads
/// move first (locked in key order, so concurrent writers never deadlock), then the records go
/// in, then the heads take their new hashes.
/// Returns each chain's length once they are written (chain key → last sequence number).
pub async fn record_many(
    tx: &mut Tx,
    entries: Vec<(Chain, Entry<'_>)>,
) -> Result<HashMap<String, i64>> {
    if entries.is_empty() {
        return Ok(HashMap::new());
    }
    let counts = chain_counts(&entries);
    // One statement takes each chain's sequence numbers and previous hash, creating a chain on
    // its first record; the rows stay locked until commit.
    let sql = format!(
        "INSERT INTO audit_chains (chain, seq, head) VALUES {}
         ON CONFLICT (chain) DO UPDATE SET seq = audit_chains.seq + excluded.seq RETURNING chain, seq, head",
        crate::store::values_rows(tx, counts.len(), 3)
    );
    let mut q = sqlx::query(&sql);
    for (key, (_, n)) in &counts {
        q = q.bind(key).bind(*n).bind("");
    }
    // chain → (next sequence number, previous hash)
    let mut heads: HashMap<String, (i64, String)> = HashMap::new();
    let mut lengths: HashMap<String, i64> = HashMap::new();
    for r in q.fetch_all(&mut **tx).await? {
        let key: String = r.try_get("chain")?;
        let last: i64 = r.try_get("seq")?;
        let n = counts.get(&key).map(|c| c.1).unwrap_or(0);
        heads.insert(key.clone(), (last - n + 1, r.try_get("head")?));
        lengths.insert(key, last);
    }
    let at = now();
    let rows = link(&entries, &mut heads, &at)?;
    for chunk in rows.chunks(crate::store::rows_per_insert(tx)) {
        let sql = format!(
            "INSERT INTO audit_log (chain, seq, school_id, at, actor, action, entity, entity_id, details, prev_hash, hash, mac) VALUES {}",
            crate::store::values_rows(tx, chunk.len(), 12)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(&r.chain)
                .bind(r.seq)
                .bind(r.school_id)
                .bind(r.at)
                .bind(r.actor)
                .bind(r.action)
                .bind(r.entity)
                .bind(r.entity_id)
                .bind(&r.details)
                .bind(&r.prev_hash)
                .bind(&r.hash)
                .bind(&r.mac);
        }
        q.execute(&mut **tx).await?;
    }
    // Every head in one statement: `CASE chain WHEN $1 THEN $2 … END`.
    let cases: String = (0..heads.len())
        .map(|i| format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2))
        .collect();
    let keys: Vec<String> = (0..heads.len())
        .map(|i| format!("${}", 2 * i + 1))
        .collect();
    let sql = format!(
        "UPDATE audit_chains SET head = CASE chain{cases} END WHERE chain IN ({})",
        keys.join(",")
    );
    let mut q = sqlx::query(&sql);
    for (key, (_, head)) in &heads {
        q = q.bind(key).bind(head);
    }
    q.execute(&mut **tx).await?;
    Ok(lengths)
}

/// What a verification found wrong, each named for what was done to the log.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Records are missing between two that remain, or before the first (deleted).
    Deleted,
    /// A record's content no longer matches its hash (changed after it was written).
    Changed,
    /// A record does not follow its predecessor's hash (inserted, removed or reordered).
    Unlinked,
    /// A record whose hash is right but whose MAC is not: written by someone without the key
    /// (a forged append, or a rewrite with recomputed hashes).
    Forged,
    /// A record without a MAC after records with one.
    Unkeyed,
    /// Fewer records than a signed checkpoint counted: the tail was cut off.
    Truncated,
    /// The record at a signed checkpoint's size is not the one that was signed: history was
    /// rewritten.
    Rewritten,
    /// A chain that a checkpoint or the chain table knows has no records left.
    ChainDeleted,
    /// The chain table disagrees with the records (it is not trusted, but a difference means
    /// someone wrote to one of them by hand).
    HeadMismatch,
    /// A checkpoint whose signature does not verify under the key given.
    BadCheckpoint,
    /// A ledger row no audit record commits to (inserted behind the service's back).
    Uncovered,
    /// A ledger row whose content differs from what its audit record committed to.
    RowChanged,
    /// A ledger row an audit record committed to that is gone.
    RowMissing,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The record (sequence number) concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChainReport {
    pub chain: String,
    pub records: i64,
    /// True when nothing below is wrong: every record matches its hash, its predecessor and
    /// its MAC, and the chain extends every checkpoint compared.
    pub intact: bool,
    /// The first sequence number whose record does not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    pub head: String,
    /// Records written before MACs existed (their hashes are checked, not their origin).
    pub unkeyed: i64,
    /// Signed checkpoints the chain was compared with.
    pub checkpoints: i64,
    pub problems: Vec<Problem>,
}

impl ChainReport {
    /// Records a problem: the chain is no longer intact.
    pub fn add_problem(&mut self, kind: ProblemKind, seq: Option<i64>, message: String) {
        self.problem(kind, seq, message)
    }

    fn problem(&mut self, kind: ProblemKind, seq: Option<i64>, message: String) {
        self.intact = false;
        if let Some(s) = seq {
            self.first_bad_seq = Some(self.first_bad_seq.map_or(s, |f| f.min(s)));
        }
        // A rewritten chain can break at every record: the first few say enough.
        if self.problems.len() < 20 {
            self.problems.push(Problem { kind, seq, message });
        }
    }
}

/// A chain position someone vouches for: a signed checkpoint (size and head hash).
#[derive(Debug, Clone)]
pub struct Anchor {
    pub size: i64,
    pub head: String,
    /// Where it comes from, for the report ("checkpoint signed 2026-…").
    pub source: String,
}

/// What verification collects from each record besides its link, e.g. the ledger rows it
/// commits to.
pub trait Collector: Send {
    fn record(&mut self, chain: &str, seq: i64, at: &str, details: &str);
}

impl Collector for () {
    fn record(&mut self, _: &str, _: i64, _: &str, _: &str) {}
}

/// Records read per verification query.
const VERIFY_PAGE: i64 = 5_000;

/// Recomputes every link and MAC of `chain`, in pages so a long chain needs little memory, and
/// compares it with `anchors`. A break does not stop the walk: later records are checked
/// against their stored predecessor, so each damage is reported where it is.
pub async fn verify_chain(
    store: &Store,
    chain: &str,
    anchors: &[Anchor],
    collector: &mut dyn Collector,
) -> Result<ChainReport> {
    let mut report = ChainReport {
        chain: chain.into(),
        records: 0,
        intact: true,
        first_bad_seq: None,
        head: String::new(),
        unkeyed: 0,
        checkpoints: anchors.len() as i64,
        problems: Vec::new(),
    };
    let mut by_size: BTreeMap<i64, Vec<&Anchor>> = BTreeMap::new();
    for a in anchors {
        by_size.entry(a.size).or_default().push(a);
    }
    let key = MAC_KEY.get();
    let mut prev = String::new();
    let mut expected_seq = 1i64;
    let mut keyed = false;
    // Pages are ranges of sequence numbers, not `LIMIT`s: with an open range a planner that
    // misjudges how many records follow (PostgreSQL before its first ANALYZE) sorts the whole
    // rest of the chain for every page, which made verification quadratic.
    let mut from = expected_seq;
    loop {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, entity, entity_id, details, prev_hash, hash, mac FROM audit_log
             WHERE chain = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
        )
        .bind(chain)
        .bind(from)
        .bind(from.saturating_add(VERIFY_PAGE))
        .fetch_all(store.reader())
        .await?;
        if rows.is_empty() {
            // The end, or a gap as long as a page: go on from the next record, if any (the gap
            // is then reported as deleted records).
            let next: Option<i64> =
                sqlx::query_scalar("SELECT MIN(seq) FROM audit_log WHERE chain = $1 AND seq >= $2")
                    .bind(chain)
                    .bind(from)
                    .fetch_one(store.reader())
                    .await?;
            match next {
                Some(n) => {
                    from = n;
                    continue;
                }
                None => break,
            }
        }
        for r in rows {
            let seq: i64 = r.try_get("seq")?;
            let stored_prev: String = r.try_get("prev_hash")?;
            let hash: String = r.try_get("hash")?;
            let mac: Option<String> = r.try_get("mac")?;
            let details: String = r.try_get("details")?;
            let at: String = r.try_get("at")?;
            let recomputed = link_hash(
                &stored_prev,
                seq,
                &at,
                &r.try_get::<String, _>("actor")?,
                &r.try_get::<String, _>("action")?,
                &r.try_get::<String, _>("entity")?,
                r.try_get::<Option<i64>, _>("entity_id")?,
                &details,
            );
            if seq != expected_seq {
                report.problem(
                    ProblemKind::Deleted,
                    Some(expected_seq),
                    format!("records {expected_seq} to {} are missing", seq - 1),
                );
            } else if stored_prev != prev {
                report.problem(
                    ProblemKind::Unlinked,
                    Some(seq),
                    format!("record {seq} does not follow record {}: a record was inserted, removed or moved", seq - 1),
                );
            }
            if recomputed != hash {
                report.problem(
                    ProblemKind::Changed,
                    Some(seq),
                    format!("record {seq} no longer matches its hash: it was changed after it was written"),
                );
            } else {
                match (&mac, key) {
                    (Some(m), Some(k)) if !mac_matches(k, &hash, m) => report.problem(
                        ProblemKind::Forged,
                        Some(seq),
                        format!("record {seq} has a correct hash but a wrong MAC: it was not written by the service (forged, or rewritten with recomputed hashes)"),
                    ),
                    (None, _) if keyed => report.problem(
                        ProblemKind::Unkeyed,
                        Some(seq),
                        format!("record {seq} carries no MAC, after records that do: it was not written by the service"),
                    ),
                    _ => {}
                }
            }
            if mac.is_some() {
                keyed = true;
            } else {
                report.unkeyed += 1;
            }
            if let Some(signed) = by_size.get(&seq) {
                for a in signed {
                    if a.head != hash {
                        report.problem(
                            ProblemKind::Rewritten,
                            Some(seq),
                            format!("record {seq} is not the one the {} vouches for: history up to it was rewritten", a.source),
                        );
                    }
                }
            }
            collector.record(chain, seq, &at, &details);
            report.records += 1;
            expected_seq = seq + 1;
            from = expected_seq;
            prev = hash;
        }
    }
    for (size, signed) in by_size.range(expected_seq..) {
        for a in signed {
            let kind = if report.records == 0 {
                ProblemKind::ChainDeleted
            } else {
                ProblemKind::Truncated
            };
            report.problem(
                kind,
                Some(expected_seq),
                if report.records == 0 {
                    format!("the chain has no records, but the {} counted {size}: it was deleted", a.source)
                } else {
                    format!("the chain ends at record {}, but the {} counted {size}: its tail was cut off", expected_seq - 1, a.source)
                },
            );
        }
    }
    // The chain table only serialises writers; a difference from the records still says that
    // one of them was written by hand.
    let table = sqlx::query("SELECT seq, head FROM audit_chains WHERE chain = $1")
        .bind(chain)
        .fetch_optional(store.reader())
        .await?;
    let table = match table {
        Some(r) => Some((r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("head")?)),
        None => None,
    };
    match table {
        Some((seq, _)) if report.records == 0 => report.problem(
            ProblemKind::ChainDeleted,
            Some(1),
            format!("the chain table counts {seq} records but none is left: the chain was deleted"),
        ),
        Some((seq, head)) if seq != report.records || head != prev => report.problem(
            ProblemKind::HeadMismatch,
            Some(expected_seq),
            format!("the chain table says {seq} records ending in another head than the {} records found", report.records),
        ),
        None if report.records > 0 => report.problem(
            ProblemKind::HeadMismatch,
            None,
            "the chain has records but no row in the chain table: the row was deleted".into(),
        ),
        _ => {}
    }
    report.head = prev;
    Ok(report)
}

/// Recomputes `chain` on its own (no checkpoints).
pub async fn verify(store: &Store, chain: &str) -> Result<ChainReport> {
    verify_chain(store, chain, &[], &mut ()).await
}

/// Verifies every chain (each against its `anchors`) and the ledger's coverage by the records
/// of all of them, and reports on the chains in `visible` (every chain, and any a ledger row
/// names, when `visible` is `None`). A ledger row's problem is reported on its school's chain.
pub async fn verify_all(
    store: &Store,
    visible: Option<&[String]>,
    mut anchors: HashMap<String, Vec<Anchor>>,
) -> Result<Vec<ChainReport>> {
    let mut coverage = crate::coverage::Coverage::default();
    let mut all: BTreeSet<String> = chains(store).await?.into_iter().collect();
    all.extend(visible.unwrap_or_default().iter().cloned());
    all.extend(anchors.keys().cloned());
    let shown = |c: &str| visible.map_or(true, |v| v.iter().any(|x| x == c));
    let mut reports: BTreeMap<String, ChainReport> = BTreeMap::new();
    for chain in &all {
        let a = anchors.remove(chain).unwrap_or_default();
        let r = verify_chain(store, chain, &a, &mut coverage).await?;
        if shown(chain) {
            reports.insert(chain.clone(), r);
        }
    }
    for (chain, p) in coverage.check(store).await? {
        if !shown(&chain) {
            continue;
        }
        let r = reports.entry(chain.clone()).or_insert_with(|| ChainReport {
            chain: chain.clone(),
            records: 0,
            intact: true,
            first_bad_seq: None,
            head: String::new(),
            unkeyed: 0,
            checkpoints: 0,
            problems: Vec::new(),
        });
        r.problem(p.kind, p.seq, p.message);
    }
    Ok(match visible {
        Some(v) => v.iter().filter_map(|c| reports.remove(c)).collect(),
        None => reports.into_values().collect(),
    })
}

/// Every chain the records, the chain table or a stored checkpoint names: a chain deleted from
/// one of them is still found in another.
pub async fn chains(store: &Store) -> Result<Vec<String>> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for sql in [
        "SELECT DISTINCT chain FROM audit_log",
        "SELECT chain FROM audit_chains",
        "SELECT DISTINCT chain FROM audit_checkpoints",
    ] {
        out.extend(
            sqlx::query_scalar::<_, String>(sql)
                .fetch_all(store.reader())
                .await?,
        );
    }
    Ok(out.into_iter().collect())
}

/// Each chain's size and head as the records say (the last record of each), for signing.
pub async fn heads(store: &Store) -> Result<Vec<(String, i64, String)>> {
    let rows = sqlx::query(
        "SELECT l.chain, l.seq, l.hash FROM audit_log l
         JOIN (SELECT chain, MAX(seq) AS seq FROM audit_log GROUP BY chain) m
           ON m.chain = l.chain AND m.seq = l.seq
         ORDER BY l.chain",
    )
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("chain")?, r.try_get("seq")?, r.try_get("hash")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_verifies_only_under_its_key_and_hash() {
        let (k, other) = ([7u8; 32], [8u8; 32]);
        let m = mac_of(&k, "abc");
        assert!(mac_matches(&k, "abc", &m));
        assert!(!mac_matches(&other, "abc", &m));
        assert!(!mac_matches(&k, "abd", &m));
        assert!(!mac_matches(&k, "abc", "zz"));
    }
}
