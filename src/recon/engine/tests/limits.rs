//! What a memo may cost, and properties of any input.

use super::*;
use proptest::prelude::*;

#[test]
fn long_memos_are_cut() {
    let ix = index();
    let c = code(301);
    // Exactly at the limit: read whole, decided as ever.
    let at_limit = format!("{c} {}", "X".repeat(MAX_MEMO_CHARS - c.as_str().len() - 1));
    assert_eq!(at_limit.chars().count(), MAX_MEMO_CHARS);
    assert_auto(&run(&ix, 1_566_800, &at_limit), &[(301, 1_566_800)]);
    // One character more: what was read is suggested, nothing is allocated.
    let over = format!("{at_limit}X");
    let s = assert_review(&run(&ix, 1_566_800, &over), ReviewReason::MemoCut);
    assert_eq!(s[0].allocations, allocs(&[(301, 1_566_800)]));
    assert_eq!(s[0].strength, Strength::Strong);
    assert!(s[0].evidence.contains(&Evidence::CodeValid));
    // A name as well, and a cut among multi-byte characters.
    let named = format!("TRAN THI BICH NGOC {}", "ễ".repeat(2 * MAX_MEMO_CHARS));
    let s = assert_review(&run(&ix, 1_566_800, &named), ReviewReason::MemoCut);
    assert!(s[0].evidence.contains(&Evidence::NameExact));
    // An order reference is read up to the same limit.
    let long_ref = format!("{c}{}", "9".repeat(MAX_MEMO_CHARS));
    let d = run_with(&ix, 1_566_800, "", Some(&long_ref), None, &|_| false);
    assert_review(&d, ReviewReason::MemoCut);
    // Huge memos are reviewed, not a panic.
    for memo in huge_memos(100_000) {
        assert_review(&run(&ix, 935_000, &memo), ReviewReason::MemoCut);
    }
    assert_eq!(
        MAX_MEMO_CHARS, 1_000,
        "ReviewReason::MemoCut's words name the limit"
    );
    assert!(ReviewReason::MemoCut.words().contains("1,000"));
}

/// Memos of `len` characters shaped to make reading them costly: one word (a name run
/// together), many words (names, typos, classes, student codes), digits, code-like text.
fn huge_memos(len: usize) -> Vec<String> {
    let typo = {
        let mut b = code(401).as_str().as_bytes().to_vec();
        b[4] = if b[4] == b'9' { b'8' } else { b'9' };
        String::from_utf8(b).unwrap()
    };
    let pieces = [
        "NGUYENVANAN".to_string(),
        "NGUYEN VAN AN NGUYN MINH KHOI LEHOANGPHCU 6A1 HS0001 HUY ".to_string(),
        // Every word a typo candidate beside known syllables: the most keys per word.
        "NGUYN VAN AN KHOII ".to_string(),
        "0123456789".to_string(),
        format!("{}{}", code(301), code(101)),
        format!("{typo} QD "),
    ];
    pieces
        .iter()
        .map(|p| p.chars().cycle().take(len).collect())
        .collect()
}

fn probes_for(ix: &Index, memo: &str) -> u64 {
    let before = ix.probes();
    let _ = run(ix, 935_000, memo);
    ix.probes() - before
}

/// What reading a memo costs does not grow with its length past the cut, nor with the
/// length of a word that cannot be a syllable or code.
#[test]
fn huge_memos_cost_bounded_probes() {
    let ix = index();
    for (small, big) in huge_memos(10_000).iter().zip(huge_memos(100_000)) {
        let (a, b) = (probes_for(&ix, small), probes_for(&ix, &big));
        assert_eq!(a, b, "{}", &small[..20]);
        assert!(b <= PROBE_BOUND, "{b} probes for {}", &small[..20]);
    }
    // Within the limit: one word longer than any syllable or code costs the same whatever
    // its length.
    for piece in ["NGUYENVANAN", "0123456789", "QD3CFPSA"] {
        let word = |len: usize| -> String { piece.chars().cycle().take(len).collect() };
        let a = probes_for(&ix, &word(50));
        let b = probes_for(&ix, &word(MAX_MEMO_CHARS));
        assert!(b <= a, "{piece}: {a} then {b}");
    }
}

/// What any memo may cost against the test school, from the limits in the module docs: at
/// most `MAX_MEMO_CHARS / 2` words (a letter and a separator each), each costing a
/// vocabulary look-up, `MAX_TYPO_LEN` typo keys, 5 name spans of at most
/// `1 + 2 × MAX_TYPO_LEN` keys, `MAX_NAME_WORDS` run-together spans of at most `2 + 2 × 16`
/// keys (the school's longest name run together has 15 letters, and one for a typo) and a
/// few typo checks, two student-code look-ups and three more (class, middle and given name,
/// given name); and at most 11 code look-ups per two characters (a code window and its
/// corrections). About 187,000; the costliest memos found cost about 20,000. It does not
/// depend on the memo's length.
const PROBE_BOUND: u64 = {
    let words = (MAX_MEMO_CHARS / 2) as u64;
    let spans = 5 * (1 + 2 * names::MAX_TYPO_LEN as u64);
    let squeezed = MAX_NAME_WORDS as u64 * (2 + 2 * 16 + 10);
    let typo_keys = names::MAX_TYPO_LEN as u64;
    words * (1 + typo_keys + spans + squeezed + 2 + 3) + words * 11
};

proptest! {
    #[test]
    fn decide_never_panics(memo in "\\PC{0,160}", amount in -1_000i64..3_000_000, pick in 0usize..10) {
        let ix = index();
        let memo = if pick < 3 { format!("{memo} {}", code(SCHOOL[pick].0)) } else { memo };
        let d = run(&ix, amount, &memo);
        if let Decision::Auto { allocations, .. } = d {
            let total: i64 = allocations.iter().map(|(_, a)| a.dong()).sum();
            prop_assert!(total <= amount);
            for (id, a) in allocations {
                prop_assert!(a.dong() > 0 && Some(a) <= ix.open(id));
            }
        }
    }

    /// Memos of any length, made of the pieces that cost most, never cost more than the
    /// bound, and one longer than the limit is never allocated.
    #[test]
    fn any_memo_costs_bounded_probes(
        pieces in proptest::collection::vec(0usize..12, 1..40),
        repeat in 1usize..200,
    ) {
        const PIECES: [&str; 12] = [
            "NGUYEN", "NGUYN", "VAN", "AN", "KHOII", "LEHOANGPHCU", "6A1", "HS0001",
            "QD5R9NFQ", "0123456789", "CHUYEN TIEN", "TRANTHIBICHNGOC",
        ];
        let unit: Vec<&str> = pieces.iter().map(|&i| PIECES[i]).collect();
        let memo = vec![unit.join(" "); repeat].join(" ");
        let ix = index();
        let before = ix.probes();
        let d = run(&ix, 935_000, &memo);
        prop_assert!(ix.probes() - before <= PROBE_BOUND, "{} probes", ix.probes() - before);
        if memo.chars().count() > MAX_MEMO_CHARS {
            prop_assert!(!d.is_auto());
        }
    }

    #[test]
    /// A mistyped code is allocated only to the one issued code it corrects to.
    fn mistyped_codes_go_to_their_one_correction(
        pick in 0usize..10, pos in 2usize..8, shift in 1usize..31, amount in 1i64..3_000_000
    ) {
        let ix = index();
        let (id, ..) = SCHOOL[pick];
        let mut b = code(id).as_str().as_bytes().to_vec();
        let alphabet = crate::domain::code::ALPHABET;
        let v = alphabet.iter().position(|&c| c == b[pos]).unwrap();
        b[pos] = alphabet[(v + shift) % 31];
        let memo = String::from_utf8(b).unwrap();
        if let Decision::Auto { allocations, rule, .. } = run(&ix, amount, &memo) {
            prop_assert_eq!(rule, Rule::MistypedCodeOneCorrection);
            prop_assert!(allocations.iter().all(|(i, _)| *i == id), "{}", memo);
        }
    }
}
