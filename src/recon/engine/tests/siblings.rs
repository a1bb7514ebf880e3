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

/// A family of two: An owes October (1,300,000) and November (1,500,000); Bình owes November
/// (1,200,000), her October is paid by payment 88.
fn shares_index() -> Index {
    let row = |id: i64, sid: i64, name: &str, class: &str, period: &str, open: i64| OpenInvoice {
        invoice_id: id,
        code: code(id),
        student_id: sid,
        student_code: format!("HS{sid:04}"),
        student_name: name.to_string(),
        class_name: class.to_string(),
        family_key: Some("F5".to_string()),
        open: vnd(open),
        period: period.to_string(),
        voided: false,
        paid_by: (open == 0).then_some(88),
    };
    Index::build(
        &qd(),
        vec![
            row(5101, 51, "Nguyễn Văn An", "6A1", "2025-10", 1_300_000),
            row(5102, 51, "Nguyễn Văn An", "6A1", "2025-11", 1_500_000),
            row(5200, 52, "Nguyễn Thị Bình", "7A2", "2025-10", 0),
            row(5201, 52, "Nguyễn Thị Bình", "7A2", "2025-11", 1_200_000),
        ],
    )
}

/// (memo, amount, the allocations)
type AutoCase = (&'static str, i64, &'static [(i64, i64)]);

/// Rule 4, shares: each child's share written beside its name goes to that child's invoice of
/// the month written (or its only fitting open one), whatever the parent's way of writing the
/// amount; shares that do not add up, a share above what is owed or that is another month's
/// balance, and a month with no open invoice are a review.
#[test]
fn siblings_by_name_shares_stated() {
    let ix = shares_index();
    let auto_cases: &[AutoCase] = &[
        // The shares as the brief's parent wrote them; here they are what is owed.
        (
            "HP T11 Nguyen Van An 1.500.000 Nguyen Thi Binh 1.200.000",
            2_700_000,
            &[(5102, 1_500_000), (5201, 1_200_000)],
        ),
        // A partial share: An's November keeps 500,000 open.
        (
            "HP T11 Nguyen Van An 1.000.000 Nguyen Thi Binh 1.200.000",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        (
            "HP T11 Nguyen Van An 1,000,000 Nguyen Thi Binh 1,200,000",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        (
            "HP T11 Nguyen Van An 1000000 Nguyen Thi Binh 1200000",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        (
            "hp t11 Nguyễn Văn An 1tr Nguyễn Thị Bình 1tr2",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        (
            "HP T11 NGUYEN VAN AN 1.0tr, NGUYEN THI BINH 1.2tr",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        (
            "HP T11 Nguyen Van An 1000k Nguyen Thi Binh 1200k",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        (
            "HP T11 Nguyen Van An 1 trieu Nguyen Thi Binh 1 trieu 2",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        (
            "HP T11 Nguyen Van An 6A1: 1tr4 - Nguyen Thi Binh 7A2: 900k",
            2_300_000,
            &[(5102, 1_400_000), (5201, 900_000)],
        ),
        // The shares before the names.
        (
            "HP T11: 1tr cho Nguyen Van An, 1tr2 cho Nguyen Thi Binh",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        // A total written as well is not a share.
        (
            "HP T11 tong 2.200.000: Nguyen Van An 1tr, Nguyen Thi Binh 1tr2",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        // The bank's trace number after the last name is not a share.
        (
            "HP T11 Nguyen Van An 1tr Nguyen Thi Binh 1tr2 Trace 123400",
            2_200_000,
            &[(5102, 1_000_000), (5201, 1_200_000)],
        ),
        // No month written: An's share is the balance of exactly one of her open months;
        // Bình has one open month, paid in part.
        (
            "Nguyen Van An 1tr5 Nguyen Thi Binh 1tr",
            2_500_000,
            &[(5102, 1_500_000), (5201, 1_000_000)],
        ),
        // No month written, An's share is all she owes.
        (
            "Nguyen Van An 2tr8 Nguyen Thi Binh 1tr",
            3_800_000,
            &[(5101, 1_300_000), (5102, 1_500_000), (5201, 1_000_000)],
        ),
    ];
    for &(memo, amount, want) in auto_cases {
        let d = run(&ix, amount, memo);
        assert_auto(&d, want);
        assert_rule(&d, Rule::SiblingsByName);
        let Decision::Auto { evidence, .. } = &d else {
            unreachable!()
        };
        assert!(evidence.contains(&Evidence::SharesStated), "{memo}: {d:?}");
    }

    let review_cases: &[(&str, i64, ReviewReason)] = &[
        // The shares do not add up to the amount.
        (
            "HP T11 Nguyen Van An 1tr Nguyen Thi Binh 1tr",
            2_200_000,
            ReviewReason::AmountMismatch,
        ),
        // The amount is what November owes for both, but the shares written say otherwise
        // (An's is more than she owes): the parent's split is the accountant's call.
        (
            "HP T11 Nguyen Van An 1tr8 Nguyen Thi Binh 900k",
            2_700_000,
            ReviewReason::AmountMismatch,
        ),
        // An's share is exactly her October balance, not November's.
        (
            "HP T11 Nguyen Van An 1tr3 Nguyen Thi Binh 1tr2",
            2_500_000,
            ReviewReason::PeriodAmountConflict,
        ),
        // No month written, and An's share is neither one open month's balance nor her total.
        (
            "Nguyen Van An 1tr Nguyen Thi Binh 1tr2",
            2_200_000,
            ReviewReason::AmountMismatch,
        ),
        // A month with no invoice of Bình; a month Bình already paid.
        (
            "HP T9 Nguyen Van An 1tr Nguyen Thi Binh 1tr2",
            2_200_000,
            ReviewReason::PeriodNotInvoiced,
        ),
        (
            "HP T10 Nguyen Van An 1tr Nguyen Thi Binh 1tr2",
            2_200_000,
            ReviewReason::PeriodPaid,
        ),
        // Two amounts after one name and none after the other: no share per child.
        (
            "HP T11 Nguyen Van An 1tr 1tr2 Nguyen Thi Binh",
            2_200_000,
            ReviewReason::AmountMismatch,
        ),
    ];
    for &(memo, amount, want) in review_cases {
        assert_review(&run(&ix, amount, memo), want);
    }
    let d = run(
        &ix,
        2_200_000,
        "HP T10 Nguyen Van An 1tr Nguyen Thi Binh 1tr2",
    );
    assert!(
        matches!(
            d,
            Decision::Review {
                earlier_payment: Some(88),
                ..
            }
        ),
        "{d:?}"
    );

    // Numbers that are not amounts (a date, a class, an account) are no shares: the amount
    // must then be what the months written owe.
    let d = run(
        &ix,
        2_700_000,
        "HP T11 Nguyen Van An 6A1 Nguyen Thi Binh 7A2 15/11/2025 0071000123456",
    );
    assert_auto(&d, &[(5102, 1_500_000), (5201, 1_200_000)]);
    let Decision::Auto { evidence, .. } = &d else {
        unreachable!()
    };
    assert!(!evidence.contains(&Evidence::SharesStated));
    assert_review(
        &run(
            &ix,
            2_200_000,
            "HP T11 Nguyen Van An 6A1 Nguyen Thi Binh 7A2 15/11/2025",
        ),
        ReviewReason::AmountMismatch,
    );
}

/// How a share is written, for the property below: plain, grouped, in thousands, in millions.
fn written(dong: i64, how: usize) -> String {
    let grouped = |sep: char| {
        let digits = dong.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(sep);
            }
            out.push(c);
        }
        out
    };
    match how {
        0 => dong.to_string(),
        1 => grouped('.'),
        2 => grouped(','),
        3 => format!("{}k", dong / 1_000),
        _ => format!("{}tr{:03}", dong / 1_000_000, dong / 1_000 % 1_000),
    }
}

proptest::proptest! {
    /// Rule 4, shares: any split of November between the two, written any of those ways, is
    /// allocated as written when it adds up to the amount, and never allocated otherwise.
    #[test]
    fn siblings_by_name_shares_add_up(
        an in 1i64..=1_500,
        binh in 1i64..=1_200,
        how_an in 0usize..5,
        how_binh in 0usize..5,
        off in -2i64..=2,
    ) {
        // An's share must not be her October balance (a conflict, tested above).
        proptest::prop_assume!(an != 1_300);
        let (an, binh) = (an * 1_000, binh * 1_000);
        let memo = format!(
            "HP T11 Nguyen Van An {} Nguyen Thi Binh {}",
            written(an, how_an),
            written(binh, how_binh)
        );
        let amount = an + binh + off * 1_000;
        let d = run(&shares_index(), amount, &memo);
        if off == 0 {
            let Decision::Auto { rule, allocations, .. } = &d else {
                return Err(proptest::test_runner::TestCaseError::fail(format!("{memo}: {d:?}")));
            };
            proptest::prop_assert_eq!(*rule, Rule::SiblingsByName);
            proptest::prop_assert_eq!(allocations, &allocs(&[(5102, an), (5201, binh)]), "{}", memo);
        } else {
            proptest::prop_assert!(!d.is_auto(), "{} {:?}", memo, d);
        }
    }
}
