//! A review's suggestions and their order.

use super::*;

#[test]
fn suggestions_are_ranked() {
    let ix = index();
    let d = run(&ix, 935_000, "NGUYEN VAN AN");
    let s = assert_review(&d, ReviewReason::Ambiguous);
    assert!(s.len() >= 2);
    assert!(s.windows(2).all(|w| w[0].score() >= w[1].score()));
    assert!(s[0].describe().contains("name matches"));
}

/// Rule 9, amount fit: of two namesakes with the same evidence, the one whose balance is
/// closer to the amount comes first.
#[test]
fn suggestions_are_ranked_by_amount_fit() {
    let ix = index();
    let s = assert_review(&run(&ix, 900_000, "NGUYEN VAN AN"), ReviewReason::Ambiguous);
    assert_eq!(s[0].allocations, allocs(&[(201, 900_000)]));
    assert_eq!(s[1].allocations, allocs(&[(101, 900_000)]));
    let s = assert_review(
        &run(&ix, 1_200_000, "NGUYEN VAN AN"),
        ReviewReason::Ambiguous,
    );
    assert_eq!(s[0].allocations, allocs(&[(101, 935_000), (102, 265_000)]));
}

/// Rule 9, siblings: a name several pupils carry, beside a sibling's, is read as the sibling
/// first; with the amount their total, that reading leads.
#[test]
fn suggestions_read_namesakes_as_siblings() {
    let ix = index();
    let d = run(&ix, 2_170_000, "hoc phi NGUYEN VAN AN va NGUYEN MINH KHOI");
    let s = assert_review(&d, ReviewReason::Ambiguous);
    assert_eq!(
        s[0].allocations,
        allocs(&[(101, 935_000), (102, 300_000), (401, 935_000)])
    );
    assert!(s[0].evidence.contains(&Evidence::SiblingsNamed));
}

/// Rule 9, a memo cut inside the given name: the pupils whose name begins so are suggested.
#[test]
fn suggestions_read_a_name_cut_short() {
    let ix = index();
    let d = run(&ix, 1_566_800, "IBFT HP T9 be TRAN THI BICH NG");
    let Decision::Review { suggestions, .. } = &d else {
        panic!("{d:?}")
    };
    assert_eq!(suggestions[0].allocations, allocs(&[(301, 1_566_800)]));
    assert!(suggestions[0].evidence.contains(&Evidence::NameCut));
    assert!(suggestions[0].describe().contains("2025-09"));
    // A stub no name begins with suggests nothing of the kind.
    let d = run(&ix, 1_566_800, "IBFT HP T9 be TRAN THI BICH QX");
    let Decision::Review { suggestions, .. } = &d else {
        panic!("{d:?}")
    };
    assert!(suggestions
        .iter()
        .all(|s| !s.evidence.contains(&Evidence::NameCut)));
}

#[test]
fn suggestions_name_the_period_first() {
    let ix = period_index();
    let s = assert_review(
        &run(&ix, 1_235_000, "HP T11 Vo Thi Mai"),
        ReviewReason::PeriodAmountConflict,
    );
    assert_eq!(s[0].allocations, allocs(&[(2102, 935_000)]));
    assert!(
        s[0].describe().contains("2025-11, read from \"T11\""),
        "{}",
        s[0].describe()
    );
    assert_eq!(s[1].allocations, allocs(&[(2101, 1_235_000)]));
    assert!(s[1].describe().contains("its balance is the amount"));
}
