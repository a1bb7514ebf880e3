//! Students' pseudonyms: what an auditor sees instead of a name and a code, and what an erased
//! student's personal data is replaced by. `HS-` and eight characters of Crockford base32 of
//! HMAC-SHA-256(key, department ␟ student): stable within a department, different across
//! departments (an auditor of one cannot link a pupil with another's view), and not reversible
//! without the key, which is derived from FEERECON_SECRET_KEY.
//!
//! Eight characters are 40 bits: among a department's 100,000 pupils the chance that two share a
//! pseudonym is about 0.5 %, and an auditor who doubts one opens the record with a reason.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Crockford's base32: no I, L, O or U, so a pseudonym read aloud or copied by hand survives.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub const PREFIX: &str = "HS-";

/// The pseudonym of `student_id` as seen from `department_id`.
pub fn pseudonym(key: &[u8; 32], department_id: i64, student_id: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("department:{department_id}\u{1f}student:{student_id}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut bits = u64::from_be_bytes([
        0, 0, 0, digest[0], digest[1], digest[2], digest[3], digest[4],
    ]);
    let mut out = [0u8; 8];
    for c in out.iter_mut().rev() {
        *c = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    let mut s = String::with_capacity(11);
    s.push_str(PREFIX);
    s.extend(out.iter().map(|&b| b as char));
    s
}

/// Whether `text` is a pseudonym's form (what an erasure writes).
pub fn is_pseudonym(text: &str) -> bool {
    text.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.len() == 8 && rest.bytes().all(|b| ALPHABET.contains(&b)))
}

/// What names a student in free text (a memo, a bank line, an archived body): their name, code
/// and their invoices' payment codes, compared folded (no diacritics, upper case, words), so
/// "Nguyễn Minh Anh" is found in "nop tien NGUYEN MINH ANH lop 6A1".
#[derive(Debug, Clone)]
pub struct Mentions {
    words: Vec<String>,
}

impl Mentions {
    pub fn new<'a>(terms: impl IntoIterator<Item = &'a str>) -> Self {
        let words = terms
            .into_iter()
            .map(crate::recon::memo::fold)
            // A single short word ("AN") would be found everywhere.
            .filter(|w| w.len() >= 4)
            .collect();
        Self { words }
    }

    /// Whether `text` names the student.
    pub fn in_text(&self, text: &str) -> bool {
        let folded = format!(" {} ", crate::recon::memo::fold(text));
        self.words
            .iter()
            .any(|w| folded.contains(&format!(" {w} ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_department_and_distinct_across() {
        let key = [7u8; 32];
        let a = pseudonym(&key, 1, 42);
        assert_eq!(a, pseudonym(&key, 1, 42));
        assert_ne!(
            a,
            pseudonym(&key, 2, 42),
            "another department, another pseudonym"
        );
        assert_ne!(a, pseudonym(&key, 1, 43));
        assert_ne!(
            a,
            pseudonym(&[8u8; 32], 1, 42),
            "another key, another pseudonym"
        );
        assert!(is_pseudonym(&a), "{a}");
        assert_eq!(a.len(), 11);
    }

    #[test]
    fn only_the_form_is_a_pseudonym() {
        for t in [
            "",
            "HS-",
            "HS-1234567",
            "HS-123456789",
            "HS-ILOU0000",
            "hs-12345678",
            "Nguyễn",
        ] {
            assert!(!is_pseudonym(t), "{t}");
        }
        assert!(is_pseudonym("HS-7F3K9Q00"));
    }

    #[test]
    fn mentions_are_found_folded_and_as_whole_words() {
        let m = Mentions::new(["Nguyễn Minh Anh", "HS0001", "QD3CFPSA"]);
        for yes in [
            "nop tien hoc NGUYEN MINH ANH lop 6A1",
            "MBVCB.3278126542.QD3CFPSA NGUYEN VAN BO",
            "{\"content\":\"hs0001 tien an\"}",
            "Nguyễn  Minh   Anh",
        ] {
            assert!(m.in_text(yes), "{yes}");
        }
        for no in [
            "NGUYEN MINH ANHTHU",
            "HS00012",
            "Nguyen Minh Khoi",
            "",
            "QD3CFPSAX",
        ] {
            assert!(!m.in_text(no), "{no}");
        }
        assert!(
            !Mentions::new(["An"]).in_text("An"),
            "too short to look for"
        );
    }

    #[test]
    fn few_collisions_among_a_department() {
        let key = [1u8; 32];
        let mut seen = std::collections::HashSet::new();
        for s in 1..=20_000 {
            seen.insert(pseudonym(&key, 3, s));
        }
        assert!(seen.len() >= 19_999, "{} distinct of 20000", seen.len());
    }
}
