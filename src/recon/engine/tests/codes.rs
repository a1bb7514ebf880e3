//! Payment codes: valid, of one family, against a name, mistyped.

use super::*;

#[test]
fn code_names_one_invoice() {
    let ix = index();
    let c = code(301);
    assert_auto(
        &run(
            &ix,
            1_566_800,
            &format!("MBVCB.123.456.{c}.CT tu 1234567 X"),
        ),
        &[(301, 1_566_800)],
    );
    // Partial: the amount. Over: the balance, the rest stays as credit.
    assert_auto(&run(&ix, 1_000_000, c.as_str()), &[(301, 1_000_000)]);
    assert_auto(&run(&ix, 2_000_000, c.as_str()), &[(301, 1_566_800)]);
    let s = c.as_str().to_lowercase();
    assert_auto(
        &run(
            &ix,
            1_566_800,
            &format!("hp {}-{} {}", &s[..2], &s[2..5], &s[5..]),
        ),
        &[(301, 1_566_800)],
    );
    let d = run_with(
        &ix,
        1_566_800,
        "thanh toan hoc phi",
        Some(c.as_str()),
        None,
        &|_| false,
    );
    assert_auto(&d, &[(301, 1_566_800)]);
    let Decision::Auto { evidence, .. } = d else {
        unreachable!()
    };
    assert_eq!(
        evidence,
        vec![
            Evidence::CodeValid,
            Evidence::OrderRef,
            Evidence::AmountEqualsBalance
        ]
    );
    assert_eq!(evidence[0].words(), "code valid");
    // The code's own student named alongside: fine, even with a namesake in the school.
    assert_auto(
        &run(&ix, 935_000, &format!("{} NGUYEN VAN AN", code(201))),
        &[(201, 935_000)],
    );
}

#[test]
fn codes_of_one_family() {
    let ix = index();
    let memo = format!("{} va {}", code(401), code(101));
    assert_auto(
        &run(&ix, 1_870_000, &memo),
        &[(401, 935_000), (101, 935_000)],
    );
    assert_auto(
        &run(&ix, 2_000_000, &memo),
        &[(401, 935_000), (101, 935_000)],
    );
    let s = assert_review(&run(&ix, 1_000_000, &memo), ReviewReason::Ambiguous);
    assert!(!s.is_empty());
    let other = format!("{} {}", code(101), code(301));
    assert_review(&run(&ix, 2_501_800, &other), ReviewReason::Ambiguous);
}

#[test]
fn code_against_name() {
    let ix = index();
    let memo = format!("{} TRAN THI BICH NGOC", code(101));
    assert_review(&run(&ix, 935_000, &memo), ReviewReason::CodeNameConflict);
    let mut ix = index();
    ix.settle(601, vnd(935_000));
    assert_eq!(ix.open(601), Some(Vnd::ZERO));
    let d = run(&ix, 935_000, &format!("{} PHAM GIA HUY", code(601)));
    assert_review(&d, ReviewReason::CodeNotOpen);
    // A valid code mixed with a closed one.
    let d = run(&ix, 935_000, &format!("{} {}", code(601), code(201)));
    assert_review(&d, ReviewReason::Ambiguous);
}

#[test]
fn mistyped_code_one_correction() {
    let ix = index();
    let c = code(301);
    let mut b = c.as_str().as_bytes().to_vec();
    b[4] = if b[4] == b'9' { b'8' } else { b'9' };
    let typo = String::from_utf8(b).unwrap();
    // One correction among issued codes, confirmed by the name (and here the amount).
    let d = run(&ix, 1_566_800, &format!("{typo} TRAN THI BICH NGOC 7A2"));
    assert_auto(&d, &[(301, 1_566_800)]);
    let Decision::Auto { rule, evidence, .. } = &d else {
        unreachable!()
    };
    assert_eq!(*rule, Rule::MistypedCodeOneCorrection);
    assert!(evidence.contains(&Evidence::CodeCorrected));
    // Confirmed by the name alone: a partial payment.
    assert_auto(
        &run(&ix, 1_000_000, &format!("{typo} TRAN THI BICH NGOC")),
        &[(301, 1_000_000)],
    );
    // Confirmed by the amount alone.
    assert_auto(&run(&ix, 1_566_800, &typo), &[(301, 1_566_800)]);
    // Neither: suggested only.
    let s = assert_review(
        &run(&ix, 1_000_000, &typo),
        ReviewReason::WrongCheckCharacter,
    );
    assert_eq!(s[0].allocations, allocs(&[(301, 1_000_000)]));
    assert!(s[0].evidence.contains(&Evidence::CodeWrongCheck));
    // Another pupil named: a conflict, suggested only.
    assert_review(
        &run(&ix, 1_566_800, &format!("{typo} LE HOANG PHUC")),
        ReviewReason::WrongCheckCharacter,
    );
    // Look-alike O for a symbol.
    let mut b = c.as_str().as_bytes().to_vec();
    b[3] = b'O';
    let d = run(&ix, 1_000_000, std::str::from_utf8(&b).unwrap());
    let s = assert_review(&d, ReviewReason::WrongCheckCharacter);
    assert!(s.iter().all(|s| s.allocations.len() == 1));
}

/// Rule 7 (rule 4 above) for the other slips parents make: a symbol left out, a symbol
/// typed twice. Allocated when the amount or the name confirms, suggested otherwise.
#[test]
fn mistyped_code_dropped_or_doubled() {
    let ix = index();
    let c = code(301);
    let s = c.as_str();
    let dropped = format!("{}{}", &s[..4], &s[5..]);
    let doubled = format!("{}{}", &s[..=4], &s[4..]);
    for typo in [&dropped, &doubled] {
        for memo in [
            format!("HP {typo}"),
            format!("{} tran thi bich ngoc", typo.to_lowercase()),
        ] {
            let d = run(&ix, 1_566_800, &memo);
            assert_auto(&d, &[(301, 1_566_800)]);
            let Decision::Auto { rule, .. } = &d else {
                unreachable!()
            };
            assert_eq!(*rule, Rule::MistypedCodeOneCorrection, "{memo}");
        }
        assert_auto(
            &run(&ix, 1_000_000, &format!("{typo} Tran Thi Bich Ngoc")),
            &[(301, 1_000_000)],
        );
        let s = assert_review(
            &run(&ix, 1_000_000, &format!("HP {typo}")),
            ReviewReason::WrongCheckCharacter,
        );
        assert_eq!(s[0].allocations, allocs(&[(301, 1_000_000)]));
        assert_review(
            &run(&ix, 1_566_800, &format!("{typo} LE HOANG PHUC")),
            ReviewReason::WrongCheckCharacter,
        );
    }
}
