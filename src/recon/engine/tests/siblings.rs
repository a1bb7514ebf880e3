//! Siblings named together.

use super::*;

#[test]
fn siblings_by_name() {
    let ix = index();
    let memo = "HP NGUYEN VAN AN 6A1 VA NGUYEN MINH KHOI 8A3";
    assert_auto(
        &run(&ix, 2_170_000, memo),
        &[(101, 935_000), (102, 300_000), (401, 935_000)],
    );
    let s = assert_review(&run(&ix, 1_870_000, memo), ReviewReason::AmountMismatch);
    assert!(!s.is_empty());
    // One sibling named, the amount of both: suggested, not automatic.
    let s = assert_review(
        &run(&ix, 2_170_000, "NGUYEN MINH KHOI"),
        ReviewReason::AmountMismatch,
    );
    assert!(s
        .iter()
        .any(|s| s.evidence.contains(&Evidence::AmountEqualsSiblingsTotal)));
}

#[test]
fn siblings_with_a_period() {
    let ix = period_index();
    let d = run(&ix, 1_870_000, "HP T11 Vo Thi Mai 7A4 va Vo Minh Quan 9A3");
    assert_auto(&d, &[(2102, 935_000), (2201, 935_000)]);
    assert_rule(&d, Rule::SiblingsByName);
    assert_review(
        &run(&ix, 1_500_000, "HP T11 Vo Thi Mai 7A4 va Vo Minh Quan 9A3"),
        ReviewReason::AmountMismatch,
    );
}
