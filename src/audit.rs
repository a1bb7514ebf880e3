//! Append-only, hash-chained audit log. Every change that matters to money writes its record in
//! the same transaction as the change. Each school has its own chain (it shards with the school
//! and schools never wait on each other); installation-wide changes go on the `system` chain.
//!
//! `hash = SHA-256(prev_hash ␟ seq ␟ at ␟ actor ␟ action ␟ entity ␟ entity_id ␟ details)`, so
//! removing, reordering or altering any record breaks every hash after it.

use crate::error::Result;
use crate::store::{now, Store, Tx};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

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
    record_many(tx, vec![(chain.clone(), entry)]).await
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
        });
        *seq += 1;
    }
    Ok(rows)
}

/// Appends several records, in order, in three statements whatever their number: the chain heads
/// move first (locked in key order, so concurrent writers never deadlock), then the records go
/// in, then the heads take their new hashes.
pub async fn record_many(tx: &mut Tx, entries: Vec<(Chain, Entry<'_>)>) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let counts = chain_counts(&entries);
    // One statement takes each chain's sequence numbers and previous hash, creating a chain on
    // its first record; the rows stay locked until commit.
    let sql = format!(
        "INSERT INTO audit_chains (chain, seq, head) VALUES {}
         ON CONFLICT (chain) DO UPDATE SET seq = audit_chains.seq + excluded.seq RETURNING chain, seq, head",
        crate::store::values_placeholders(counts.len(), 3)
    );
    let mut q = sqlx::query(&sql);
    for (key, (_, n)) in &counts {
        q = q.bind(key).bind(*n).bind("");
    }
    // chain → (next sequence number, previous hash)
    let mut heads: HashMap<String, (i64, String)> = HashMap::new();
    for r in q.fetch_all(&mut **tx).await? {
        let key: String = r.try_get("chain")?;
        let last: i64 = r.try_get("seq")?;
        let n = counts.get(&key).map(|c| c.1).unwrap_or(0);
        heads.insert(key, (last - n + 1, r.try_get("head")?));
    }
    let at = now();
    let rows = link(&entries, &mut heads, &at)?;
    for chunk in rows.chunks(crate::store::rows_per_insert(tx)) {
        let sql = format!(
            "INSERT INTO audit_log (chain, seq, school_id, at, actor, action, entity, entity_id, details, prev_hash, hash) VALUES {}",
            crate::store::values_placeholders(chunk.len(), 11)
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
                .bind(&r.hash);
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
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChainReport {
    pub chain: String,
    pub records: i64,
    /// True when every record's hash matches its content and its predecessor.
    pub intact: bool,
    /// The first sequence number whose record does not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    pub head: String,
}

/// Recomputes every link of `chain`, in pages so a long chain needs little memory.
pub async fn verify(store: &Store, chain: &str) -> Result<ChainReport> {
    let mut prev = String::new();
    let mut expected_seq = 1i64;
    let mut records = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, entity, entity_id, details, prev_hash, hash FROM audit_log
             WHERE chain = $1 AND seq >= $2 ORDER BY seq LIMIT 5000",
        )
        .bind(chain)
        .bind(expected_seq)
        .fetch_all(store.reader())
        .await?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let seq: i64 = r.try_get("seq")?;
            let stored_prev: String = r.try_get("prev_hash")?;
            let hash: String = r.try_get("hash")?;
            let recomputed = link_hash(
                &prev,
                seq,
                &r.try_get::<String, _>("at")?,
                &r.try_get::<String, _>("actor")?,
                &r.try_get::<String, _>("action")?,
                &r.try_get::<String, _>("entity")?,
                r.try_get::<Option<i64>, _>("entity_id")?,
                &r.try_get::<String, _>("details")?,
            );
            if seq != expected_seq || stored_prev != prev || recomputed != hash {
                return Ok(ChainReport {
                    chain: chain.into(),
                    records,
                    intact: false,
                    first_bad_seq: Some(expected_seq),
                    head: prev,
                });
            }
            records += 1;
            expected_seq += 1;
            prev = hash;
        }
    }
    // The head must point at the last record, or records were cut off the end.
    let head: Option<String> = sqlx::query_scalar("SELECT head FROM audit_chains WHERE chain = $1")
        .bind(chain)
        .fetch_optional(store.reader())
        .await?;
    let intact = head.as_deref().unwrap_or("") == prev;
    Ok(ChainReport {
        chain: chain.into(),
        records,
        intact,
        first_bad_seq: if intact { None } else { Some(expected_seq) },
        head: prev,
    })
}

/// Every chain's key, for a full verification.
pub async fn chains(store: &Store) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT chain FROM audit_chains ORDER BY chain")
            .fetch_all(store.reader())
            .await?,
    )
}
