//! The months written: what they decide, paid or claimed months, and the amount without them.

use super::*;

#[test]
fn period_decides() {
    let ix = period_index();
    let d = run(&ix, 935_000, "HP T11 Le Bao Tuan 6A5");
    assert_auto(&d, &[(2003, 935_000)]);
    assert_rule(&d, Rule::PeriodStated);
    let Decision::Auto { period, .. } = &d else {
        unreachable!()
    };
    assert_eq!(period.as_deref(), Some("2025-11, read from \"T11\""));
    for memo in [
        "HP thang 9+10 LE BAO TUAN",
        "T9-T10 Le Bao Tuan",
        "T9,T10 Lê Bảo Tuấn",
        "dong hoc phi thang 9 va 10 cho con Le Bao Tuan",
    ] {
        assert_auto(
            &run(&ix, 1_870_000, memo),
            &[(2001, 935_000), (2002, 935_000)],
        );
    }
    for memo in [
        "hoc phi 11/2025 Lê Bảo Tuấn",
        "Le Bao Tuan thang muoi mot",
        "HPT11 LE BAO TUAN",
        "LeBaoTuanT11",
        "Le Bao Tuan T11/2025",
    ] {
        assert_auto(&run(&ix, 935_000, memo), &[(2003, 935_000)]);
    }
    // The class is never read as a month; the month decides whatever the class.
    assert_auto(
        &run(&ix, 935_000, "Le Bao Tuan 6A5 T10"),
        &[(2002, 935_000)],
    );
    // Pupil and month certain: what arrived goes to the month written.
    assert_auto(&run(&ix, 500_000, "T11 Le Bao Tuan"), &[(2003, 500_000)]);
    assert_auto(&run(&ix, 931_700, "T11 Le Bao Tuan"), &[(2003, 931_700)]);
    assert_auto(&run(&ix, 1_000_000, "T11 Le Bao Tuan"), &[(2003, 935_000)]);
    assert_auto(&run(&ix, 1_000_000, "T10 Vo Thi Mai"), &[(2101, 1_000_000)]);
    // The amount is another month's balance: a conflict.
    assert_review(
        &run(&ix, 935_000, "T10 Vo Thi Mai"),
        ReviewReason::PeriodAmountConflict,
    );
    assert_review(
        &run(&ix, 2_170_000, "T10 Vo Thi Mai"),
        ReviewReason::PeriodAmountConflict,
    );
    // A month with no invoice, or a voided one, is evidence against.
    for memo in [
        "T3 Le Bao Tuan",
        "T12 Le Bao Tuan",
        "thang 6/2025 Le Bao Tuan",
    ] {
        assert_review(&run(&ix, 935_000, memo), ReviewReason::PeriodNotInvoiced);
    }
}

#[test]
fn period_paid_is_a_duplicate() {
    let ix = period_index();
    let d = run(&ix, 935_000, "hoc phi T8 Le Bao Tuan");
    assert_review(&d, ReviewReason::PeriodPaid);
    let Decision::Review {
        earlier_payment, ..
    } = &d
    else {
        unreachable!()
    };
    assert_eq!(*earlier_payment, Some(77));
    // Settled later in the batch: paid from then on, naming the payment that paid it.
    let mut ix = ix;
    ix.settle_by(2002, vnd(935_000), Some(88));
    let d = run(&ix, 935_000, "T10 Le Bao Tuan");
    assert!(matches!(
        d,
        Decision::Review {
            reason: ReviewReason::PeriodPaid,
            earlier_payment: Some(88),
            ..
        }
    ));
}

#[test]
fn period_in_review() {
    // (memo, amount, claims, expected: Ok(allocations) or Err(claimant)).
    type Want = Result<&'static [(i64, i64)], Option<i64>>;
    type Claims = &'static [(i64, Option<i64>)];
    let cases: &[(&str, i64, Claims, Want)] = &[
        // October is claimed by payment 91, still in review: not allocated, whatever the
        // amount, and the review names 91.
        (
            "HP thang 10 va 11 Le Bao Tuan",
            1_870_000,
            &[(2002, Some(91))],
            Err(Some(91)),
        ),
        (
            "HP T10 Le Bao Tuan",
            935_000,
            &[(2002, Some(91))],
            Err(Some(91)),
        ),
        // Claimed by a payment earlier in the same batch, not recorded yet.
        ("HP T10 Le Bao Tuan", 935_000, &[(2002, None)], Err(None)),
        // Another month claimed, or another pupil's: the month written decides.
        (
            "HP T11 Le Bao Tuan",
            935_000,
            &[(2002, Some(91))],
            Ok(&[(2003, 935_000)]),
        ),
        (
            "HP T10 Le Bao Tuan",
            935_000,
            &[(2101, Some(91))],
            Ok(&[(2002, 935_000)]),
        ),
        // No month written: a claim by month does not stand in the amount's way.
        (
            "Le Bao Tuan",
            2_805_000,
            &[(2002, Some(91))],
            Ok(&[(2001, 935_000), (2002, 935_000), (2003, 935_000)]),
        ),
        // Siblings: one of the months written claimed is a review.
        (
            "HP T11 Vo Thi Mai 7A4 va Vo Minh Quan 9A3",
            1_870_000,
            &[(2201, Some(92))],
            Err(Some(92)),
        ),
    ];
    for (memo, amount, claims, want) in cases {
        let mut ix = period_index();
        ix.set_claims(claims.iter().copied());
        let d = run(&ix, *amount, memo);
        match want {
            Ok(allocations) => assert_auto(&d, allocations),
            Err(claimant) => {
                assert_review(&d, ReviewReason::PeriodInReview);
                let Decision::Review {
                    earlier_payment, ..
                } = &d
                else {
                    unreachable!()
                };
                assert_eq!(earlier_payment, claimant, "{memo}");
            }
        }
        // Claims replaced: nothing claimed decides as before.
        ix.set_claims([]);
        assert!(!matches!(
            run(&ix, *amount, memo),
            Decision::Review {
                reason: ReviewReason::PeriodInReview,
                ..
            }
        ));
    }
    // A code names its invoice whatever a review claims.
    let mut ix = period_index();
    ix.set_claims([(2002, Some(91))]);
    let memo = format!("{} T10", code(2002).as_str());
    assert_auto(&run(&ix, 935_000, &memo), &[(2002, 935_000)]);
}

#[test]
fn amount_decides() {
    let ix = period_index();
    // No month, several open months of that balance: the accountant's choice, not ours.
    let s = assert_review(
        &run(&ix, 935_000, "Le Bao Tuan"),
        ReviewReason::EqualBalances,
    );
    assert_eq!(s[0].allocations, allocs(&[(2001, 935_000)]));
    let d = run(&ix, 2_805_000, "Le Bao Tuan");
    assert_auto(&d, &[(2001, 935_000), (2002, 935_000), (2003, 935_000)]);
    assert_rule(&d, Rule::AmountDecides);
    assert_auto(&run(&ix, 1_235_000, "Vo Thi Mai"), &[(2101, 1_235_000)]);
}
