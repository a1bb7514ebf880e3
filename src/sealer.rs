//! Encryption of provider secrets at rest (ChaCha20-Poly1305). The key lives outside the
//! database (`FEERECON_SECRET_KEY`, or a key file next to the data), so a database dump alone does
//! not reveal any sender's secret.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    /// The audit log's MAC key, derived from the same secret so that one key outside the
    /// database protects both (see `audit`).
    audit_mac_key: [u8; 32],
    /// The key of students' pseudonyms (see `domain::pseudonym`), derived from the same secret.
    pseudonym_key: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the secret key is 32 bytes, base64-encoded")]
    BadKey,
    #[error("a sealed secret does not open with this key (wrong FEERECON_SECRET_KEY?)")]
    Open,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

impl Sealer {
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
            audit_mac_key: derive(&bytes, b"feerecon audit-log MAC v1"),
            pseudonym_key: derive(&bytes, b"feerecon student pseudonym v1"),
        })
    }

    /// A new random key, base64-encoded.
    pub fn generate_key() -> String {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        base64::engine::general_purpose::STANDARD.encode(k)
    }

    /// The key that MACs audit records: HMAC-SHA-256 of a fixed label under the secret key, so
    /// it is never the encryption key itself and is fixed for as long as that key is.
    pub fn audit_mac_key(&self) -> [u8; 32] {
        self.audit_mac_key
    }

    /// The key of students' pseudonyms: fixed for as long as the secret key is, so a pseudonym
    /// is stable, and unknown to anyone without it, so a pseudonym cannot be reversed by
    /// trying every student id.
    pub fn pseudonym_key(&self) -> [u8; 32] {
        self.pseudonym_key
    }

    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption with a valid key and a fresh nonce does not fail for inputs of this size.
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| SealError::Open)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SealError::Open)
    }
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC accepts a key of any length: `new_from_slice` does not fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_other_keys() {
        let a = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let b = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let sealed = a.seal(b"TESTSECRETVNPAY0123456789ABCDEF");
        assert!(!sealed.contains("TESTSECRET"));
        assert_eq!(a.open(&sealed).unwrap(), b"TESTSECRETVNPAY0123456789ABCDEF");
        assert_eq!(b.open(&sealed), Err(SealError::Open));
        assert_ne!(a.seal(b"x"), a.seal(b"x"), "fresh nonce every time");
        assert_eq!(
            Sealer::from_base64("c2hvcnQ=").err(),
            Some(SealError::BadKey)
        );
    }
}
