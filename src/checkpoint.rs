//! Signed checkpoints of the audit chains: each chain's size and head hash, signed with an
//! Ed25519 key that is not in the database, in C2SP's signed-note form
//! (<https://c2sp.org/signed-note>, with the body of <https://c2sp.org/tlog-checkpoint>):
//!
//! ```text
//! feerecon/school:12                     origin: the log's name and the chain
//! 4711                                   size: records in the chain
//! 3q2+7w…=                               base64 of the head record's hash
//!
//! — feerecon AbCdEf…                     key name, base64(key id ‖ signature)
//! ```
//!
//! The third line is the chain's head hash where a transparency log has a Merkle root: a
//! verifier proves that the chain extends a checkpoint by recomputing the chain up to the
//! checkpoint's size (it reads the records anyway), not with a consistency proof.
//!
//! The service signs at every daily close and hourly (`spawn`), and keeps what it signed in
//! `audit_checkpoints`; an auditor downloads them and keeps them where the service cannot
//! reach. The service never signs a chain that does not extend its own last checkpoint.
//!
//! Ed25519 because it is what signed notes define (algorithm 0x01) and what every tlog
//! verifier reads; signatures are deterministic (no nonce to get wrong) and keys are 32 bytes
//! that fit an environment variable.

use crate::audit::Anchor;
use crate::error::{Error, Result};
use crate::store::{now, Store};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;

/// How often the job signs the chains that moved.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// The signed-note algorithm byte for Ed25519.
const ED25519: u8 = 0x01;

/// Signs checkpoints. Its key never leaves the process and is never logged.
pub struct CheckpointSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointSigner({}, …)", self.name)
    }
}

/// A new random signing key: base64 of a 32-byte Ed25519 seed.
pub fn generate_key() -> String {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    B64.encode(seed)
}

/// A key name is one word of printable characters without `+` (C2SP signed-note).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && name.chars().all(|c| c.is_ascii_graphic())
}

impl CheckpointSigner {
    /// `name` is the log's name: the start of every origin line and the signature's key name.
    pub fn from_base64(name: &str, seed: &str) -> std::result::Result<Self, String> {
        if !valid_name(name) {
            return Err("the audit log's name is one word of printable ASCII without '+'".into());
        }
        let bytes = B64
            .decode(seed.trim())
            .map_err(|_| "the signing key is base64 of 32 bytes".to_string())?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the signing key is base64 of 32 bytes".to_string())?;
        Ok(Self {
            name: name.into(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A signer with a fresh key, for tests and tools that keep nothing.
    pub fn ephemeral(name: &str) -> Self {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        Self {
            name: if valid_name(name) {
                name.into()
            } else {
                "feerecon".into()
            },
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier::new(&self.name, self.key.verifying_key())
    }

    /// The signed note for `chain` at `size` records, ending in the record whose hash (hex) is
    /// `head`.
    pub fn sign(&self, chain: &str, size: i64, head: &str) -> Result<String> {
        let root = hex::decode(head).map_err(|_| {
            Error::Internal(format!("audit chain {chain} has a head that is not hex"))
        })?;
        let body = format!("{}/{chain}\n{size}\n{}\n", self.name, B64.encode(root));
        let sig = self.key.sign(body.as_bytes());
        let mut blob = key_id(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{body}\n\u{2014} {} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }
}

/// C2SP signed-note key id: the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Checks signed notes against one public key.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    id: [u8; 4],
}

/// A checkpoint whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub chain: String,
    pub size: i64,
    /// The head record's hash, hex, as stored in the chain.
    pub head: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("not a signed note")]
    Malformed,
    #[error("no signature by {0} with this key")]
    NotSigned(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("not a feerecon audit checkpoint")]
    NotCheckpoint,
}

impl NoteVerifier {
    fn new(name: &str, key: VerifyingKey) -> Self {
        Self {
            name: name.into(),
            id: key_id(name, &key),
            key,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key in C2SP vkey form: `name+hex(key id)+base64(0x01 ‖ key)`.
    pub fn vkey(&self) -> String {
        let mut k = vec![ED25519];
        k.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(k))
    }

    pub fn from_vkey(vkey: &str) -> std::result::Result<Self, String> {
        let bad = || {
            "a verifier key is name+keyid+base64 (as GET /api/v1/audit/checkpoints/key gives it)"
                .to_string()
        };
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(k)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let k = B64.decode(k).map_err(|_| bad())?;
        let Some((&ED25519, key)) = k.split_first() else {
            return Err("only Ed25519 verifier keys are accepted".into());
        };
        let key: [u8; 32] = key.try_into().map_err(|_| bad())?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad())?;
        let v = Self::new(name, key);
        if hex::encode(v.id) != id.to_ascii_lowercase() {
            return Err("the verifier key's id does not match its key".into());
        }
        Ok(v)
    }

    /// Verifies `note` and reads the checkpoint in it.
    pub fn open(&self, note: &str) -> std::result::Result<Checkpoint, NoteError> {
        let Some(split) = note.find("\n\n") else {
            return Err(NoteError::Malformed);
        };
        let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
        let mut signed = false;
        for line in sigs.lines().filter(|l| !l.is_empty()) {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(NoteError::Malformed);
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(NoteError::Malformed);
            };
            let blob = B64.decode(blob).map_err(|_| NoteError::Malformed)?;
            if name != self.name || blob.len() != 4 + 64 || blob[..4] != self.id {
                continue;
            }
            let sig = Signature::from_slice(&blob[4..]).map_err(|_| NoteError::Malformed)?;
            self.key
                .verify(body.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature)?;
            signed = true;
        }
        if !signed {
            return Err(NoteError::NotSigned(self.name.clone()));
        }
        let mut lines = body.lines();
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::NotCheckpoint);
        };
        let Some(chain) = origin
            .strip_prefix(self.name.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return Err(NoteError::NotCheckpoint);
        };
        let size: i64 = size.parse().map_err(|_| NoteError::NotCheckpoint)?;
        let head = B64.decode(root).map_err(|_| NoteError::NotCheckpoint)?;
        if size < 1 || chain.is_empty() {
            return Err(NoteError::NotCheckpoint);
        }
        Ok(Checkpoint {
            chain: chain.into(),
            size,
            head: hex::encode(head),
        })
    }
}

/// Splits a file of concatenated signed notes (as `feerecon checkpoints` writes them) into
/// notes: each is text lines, a blank line, then signature lines starting with "— ".
pub fn split_notes(text: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let mut current = String::new();
    let mut in_sigs = false;
    for line in text.lines() {
        if in_sigs && !line.starts_with('\u{2014}') {
            notes.push(std::mem::take(&mut current));
            in_sigs = false;
            if line.is_empty() {
                continue;
            }
        }
        if line.is_empty() && !current.is_empty() {
            in_sigs = true;
        }
        if line.is_empty() && current.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        notes.push(current);
    }
    notes
}

/// A checkpoint as the service keeps it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoredCheckpoint {
    pub chain: String,
    pub size: i64,
    /// The head record's hash, hex.
    pub head: String,
    pub signed_at: String,
    /// The signed note, exactly as signed: keep it.
    pub note: String,
}

fn stored(r: &sqlx::any::AnyRow) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        chain: r.try_get("chain")?,
        size: r.try_get("size")?,
        head: r.try_get("head")?,
        signed_at: r.try_get("signed_at")?,
        note: r.try_get("note")?,
    })
}

/// Every checkpoint of `chain`, smallest first.
pub async fn of_chain(store: &Store, chain: &str) -> Result<Vec<StoredCheckpoint>> {
    sqlx::query(
        "SELECT chain, size, head, signed_at, note FROM audit_checkpoints WHERE chain = $1 ORDER BY size",
    )
    .bind(chain)
    .fetch_all(store.reader())
    .await?
    .iter()
    .map(stored)
    .collect()
}

/// The latest checkpoint of each chain in `chains` (every chain when `None`).
pub async fn latest(store: &Store, chains: Option<&[String]>) -> Result<Vec<StoredCheckpoint>> {
    let rows = sqlx::query(
        "SELECT c.chain, c.size, c.head, c.signed_at, c.note FROM audit_checkpoints c
         JOIN (SELECT chain, MAX(size) AS size FROM audit_checkpoints GROUP BY chain) m
           ON m.chain = c.chain AND m.size = c.size
         ORDER BY c.chain",
    )
    .fetch_all(store.reader())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let c = stored(r)?;
        if chains.map_or(true, |cs| cs.contains(&c.chain)) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Signs `chain` at its current head if it moved since its last checkpoint and extends it.
/// Returns whether a checkpoint was written.
pub async fn sign_chain(store: &Store, signer: &CheckpointSigner, chain: &str) -> Result<bool> {
    let head =
        sqlx::query("SELECT seq, hash FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
            .bind(chain)
            .fetch_optional(store.reader())
            .await?;
    let Some(head) = head else {
        return Ok(false);
    };
    sign_at(
        store,
        signer,
        chain,
        head.try_get("seq")?,
        &head.try_get::<String, _>("hash")?,
    )
    .await
}

async fn sign_at(
    store: &Store,
    signer: &CheckpointSigner,
    chain: &str,
    size: i64,
    head: &str,
) -> Result<bool> {
    let last = sqlx::query(
        "SELECT size, head FROM audit_checkpoints WHERE chain = $1 ORDER BY size DESC LIMIT 1",
    )
    .bind(chain)
    .fetch_optional(store.reader())
    .await?;
    if let Some(last) = last {
        let (last_size, last_head): (i64, String) = (last.try_get("size")?, last.try_get("head")?);
        if last_size == size && last_head == head {
            return Ok(false);
        }
        let then: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE chain = $1 AND seq = $2")
                .bind(chain)
                .bind(last_size)
                .fetch_optional(store.reader())
                .await?;
        if size < last_size || then.as_deref() != Some(last_head.as_str()) {
            // Signing now would vouch for a history that contradicts the last checkpoint.
            return Err(Error::Internal(format!(
                "audit chain {chain} does not extend its checkpoint at {last_size}; not signing"
            )));
        }
    }
    let note = signer.sign(chain, size, head)?;
    sqlx::query(
        "INSERT INTO audit_checkpoints (chain, size, head, note, signed_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (chain, size) DO NOTHING",
    )
    .bind(chain)
    .bind(size)
    .bind(head)
    .bind(&note)
    .bind(now())
    .execute(&store.writer_pool())
    .await?;
    Ok(true)
}

/// Signs every chain that moved. A chain that cannot be signed is logged and skipped; the
/// others are signed. Returns how many checkpoints were written.
pub async fn sign_all(store: &Store, signer: &CheckpointSigner) -> Result<usize> {
    let mut n = 0;
    for (chain, size, head) in crate::audit::heads(store).await? {
        match sign_at(store, signer, &chain, size, &head).await {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(chain = %chain, error = %e, "audit chain not signed"),
        }
    }
    Ok(n)
}

/// The stored checkpoints of `chain` as anchors for verification; those whose signature does
/// not verify under `verifier` come back as problems instead.
pub async fn stored_anchors(
    store: &Store,
    verifier: &NoteVerifier,
    chain: &str,
) -> Result<(Vec<Anchor>, Vec<String>)> {
    let mut anchors = Vec::new();
    let mut bad = Vec::new();
    for c in of_chain(store, chain).await? {
        match verifier.open(&c.note) {
            Ok(cp) if cp.chain == c.chain && cp.size == c.size && cp.head == c.head => anchors
                .push(Anchor {
                    size: cp.size,
                    head: cp.head,
                    source: format!("checkpoint signed {}", c.signed_at),
                }),
            Ok(_) => bad.push(format!(
                "the stored checkpoint at size {} does not say what its row says",
                c.size
            )),
            Err(e) => bad.push(format!("the stored checkpoint at size {}: {e}", c.size)),
        }
    }
    Ok((anchors, bad))
}

/// Signs hourly (and once at start) on every instance; two instances signing the same head
/// write one checkpoint.
pub fn spawn(
    store: Store,
    signer: std::sync::Arc<CheckpointSigner>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            match sign_all(&store, &signer).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(checkpoints = n, "audit chains signed"),
                Err(e) => {
                    tracing::error!(error = %e, "audit checkpoints not signed; trying again in an hour")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_opens_only_with_its_key_and_unchanged() {
        let s = CheckpointSigner::from_base64("feerecon", &generate_key()).unwrap();
        let head = hex::encode([0xabu8; 32]);
        let note = s.sign("school:12", 42, &head).unwrap();
        let v = NoteVerifier::from_vkey(&s.verifier().vkey()).unwrap();
        assert_eq!(
            v.open(&note),
            Ok(Checkpoint {
                chain: "school:12".into(),
                size: 42,
                head: head.clone()
            })
        );
        assert!(note.starts_with("feerecon/school:12\n42\n"));
        let forged = note.replace("\n42\n", "\n43\n");
        assert_eq!(v.open(&forged), Err(NoteError::BadSignature));
        let other = CheckpointSigner::ephemeral("feerecon").verifier();
        assert_eq!(
            other.open(&note),
            Err(NoteError::NotSigned("feerecon".into()))
        );
        let two = format!("{note}\n{}", s.sign("system", 3, &head).unwrap());
        let notes = split_notes(&two);
        assert_eq!(notes.len(), 2);
        assert_eq!(v.open(&notes[1]).map(|c| c.chain), Ok("system".into()));
        assert!(NoteVerifier::from_vkey("feerecon+00000000+AQ==").is_err());
    }
}
