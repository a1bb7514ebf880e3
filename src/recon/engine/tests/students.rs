//! Student codes and names: the pupil, the sender, weak evidence, dismissed pairs, cut memos,
//! given name and class.

use super::*;

#[test]
fn name_or_student_code() {
    let ix = index();
    assert_auto(
        &run(&ix, 1_566_800, "HOC PHI TRAN THI BICH NGOC 7A2"),
        &[(301, 1_566_800)],
    );
    assert_auto(
        &run(&ix, 1_566_800, "Học phí Trần Thị Bích Ngọc"),
        &[(301, 1_566_800)],
    );
    assert_auto(
        &run(&ix, 1_566_800, "NGOC TRAN THI BICH"),
        &[(301, 1_566_800)],
    );
    let s = assert_review(
        &run(&ix, 1_000_000, "TRAN THI BICH NGOC"),
        ReviewReason::AmountMismatch,
    );
    assert_eq!(s[0].allocations, allocs(&[(301, 1_000_000)]));
    assert!(s[0].evidence.contains(&Evidence::OldestOpen));
    let s = assert_review(
        &run(&ix, 935_000, "PHAM GIA HUY 6A1"),
        ReviewReason::ClassMismatch,
    );
    assert!(s[0].evidence.contains(&Evidence::ClassDiffers));
    assert_eq!(
        Evidence::ClassDiffers.words(),
        "name matches, class differs"
    );
    // One typo, run together, student code.
    assert_auto(&run(&ix, 935_000, "NGUYN MINH KHOI"), &[(401, 935_000)]);
    assert_auto(&run(&ix, 1_250_000, "LEHOANGPHUC 9A1"), &[(501, 1_250_000)]);
    assert_auto(&run(&ix, 1_250_000, "LEHOANGPHCU"), &[(501, 1_250_000)]);
    assert_auto(&run(&ix, 1_250_000, "hs0005 hoc phi"), &[(501, 1_250_000)]);
    // Namesakes: only the class tells them apart.
    assert_review(&run(&ix, 935_000, "NGUYEN VAN AN"), ReviewReason::Ambiguous);
    assert_auto(
        &run(&ix, 935_000, "NGUYEN VAN AN LOP 8A3"),
        &[(201, 935_000)],
    );
    // All open invoices of the student, or exactly one of them.
    assert_auto(
        &run(&ix, 1_235_000, "NGUYEN VAN AN 6A1"),
        &[(101, 935_000), (102, 300_000)],
    );
    assert_auto(&run(&ix, 300_000, "NGUYEN VAN AN 6A1"), &[(102, 300_000)]);
    // Two invoices of the same balance: which month is not clear.
    assert_review(
        &run(&ix, 500_000, "DANG VAN NAM"),
        ReviewReason::EqualBalances,
    );
    assert_auto(
        &run(&ix, 1_000_000, "DANG VAN NAM"),
        &[(801, 500_000), (802, 500_000)],
    );
    // A "typo" that spells another student's syllable is another name, not a typo.
    assert!(!run(&ix, 500_000, "DANG VAN BINH").is_auto());
    // Cut by the bank? At a bank's limit, "NGUYEN VAN AN 6A1" may be the start of "6A10".
    let long = "MBVCB.3278126542.012345.HOC PHI NAM HOC 2025 2026 CHO CON NGUYEN VAN AN 6A1";
    let at_limit = format!("{}{long}", "X".repeat(140 - long.len()));
    assert_review(
        &run(&ix, 1_235_000, &at_limit),
        ReviewReason::MaybeTruncated,
    );
    // Long, but at no limit: whole.
    assert_auto(
        &run(&ix, 1_235_000, long),
        &[(101, 935_000), (102, 300_000)],
    );
    // Two students of different families.
    assert_review(
        &run(&ix, 2_185_000, "LE HOANG PHUC PHAM GIA HUY"),
        ReviewReason::Ambiguous,
    );
}

#[test]
fn sender_is_not_the_student() {
    let ix = index();
    let s = assert_review(
        &run(&ix, 450_000, "NGUYEN VAN BINH chuyen tien"),
        ReviewReason::OnlyWeakEvidence,
    );
    assert!(s[0].evidence.contains(&Evidence::PayerName));
    let d = run_with(
        &ix,
        450_000,
        "NGUYEN VAN BINH HOC PHI",
        None,
        Some("Nguyen Van Binh"),
        &|_| false,
    );
    assert!(!d.is_auto());
    // In any order, anywhere in the memo.
    let d = run_with(
        &ix,
        450_000,
        "HOC PHI BINH NGUYEN VAN",
        None,
        Some("Nguyen Van Binh"),
        &|_| false,
    );
    assert!(!d.is_auto());
    let d = run(
        &ix,
        1_250_000,
        "NGUYEN VAN BINH chuyen tien hoc phi cho con LE HOANG PHUC",
    );
    assert_auto(&d, &[(501, 1_250_000)]);
}

#[test]
fn weak_evidence_never_auto() {
    let ix = index();
    let s = assert_review(
        &run(&ix, 935_000, "HOC PHI BE HUY"),
        ReviewReason::OnlyWeakEvidence,
    );
    assert_eq!(s[0].allocations, allocs(&[(601, 935_000)]));
    assert!(s[0].evidence.contains(&Evidence::GivenNameOnly));
    let s = assert_review(
        &run(&ix, 900_000, "MINH KHOI 8A3"),
        ReviewReason::OnlyWeakEvidence,
    );
    assert_eq!(s[0].allocations, allocs(&[(401, 900_000)]));
    assert_eq!(s[0].evidence[0], Evidence::PartialName);
    assert_review(&run(&ix, 935_000, "LUONG THANG 9"), ReviewReason::Unmatched);
    assert_review(
        &run(&ix, 0, "TRAN THI BICH NGOC"),
        ReviewReason::NotAPayment,
    );
}

#[test]
fn dismissed_pairs() {
    let ix = index();
    let not_301 = |id: i64| id == 301;
    let d = run_with(&ix, 1_566_800, code(301).as_str(), None, None, &not_301);
    let s = assert_review(&d, ReviewReason::Dismissed);
    assert!(s
        .iter()
        .all(|s| s.allocations.iter().all(|(i, _)| *i != 301)));
    let d = run_with(&ix, 1_566_800, "TRAN THI BICH NGOC", None, None, &not_301);
    let s = assert_review(&d, ReviewReason::Dismissed);
    assert!(s.is_empty());
    let not_102 = |id: i64| id == 102;
    let d = run_with(&ix, 1_235_000, "NGUYEN VAN AN 6A1", None, None, &not_102);
    let s = assert_review(&d, ReviewReason::Dismissed);
    assert!(s
        .iter()
        .all(|s| s.allocations.iter().all(|(i, _)| *i != 102)));
}

#[test]
fn deterministic_whatever_the_input_order() {
    let mut reversed = invoices();
    reversed.reverse();
    let (a, b) = (index(), Index::build(&qd(), reversed));
    for memo in [
        "NGUYEN VAN AN",
        "HUY",
        "HOC PHI BE AN",
        "NGUYEN",
        "DANG VAN NAM",
    ] {
        for amount in [300_000, 935_000, 1_000_000] {
            assert_eq!(run(&a, amount, memo), run(&b, amount, memo), "{memo}");
        }
    }
}

#[test]
fn truncation_where_it_happened() {
    let ix = period_index();
    // Cut inside the name, at 63 characters.
    let cut = "IBFT dong hoc phi T10 cho HS lê bảo tuấ";
    assert_review(&run(&ix, 935_000, cut), ReviewReason::MaybeTruncated);
    // A long memo ending in a whole name, at no bank's limit, is not cut.
    let long = "MBVCB.3278126542.012345.Kinh gui nha truong, phu huynh xin nop hoc phi thang 10 cho chau Le Bao Tuan";
    let len = long.chars().count();
    assert!(BANK_MEMO_LIMITS.iter().all(|&(_, l)| {
        let l = match l {
            MemoLimit::Typed(l) | MemoLimit::Delivered(l) => l,
        };
        len > l || len + LIMIT_SLACK < l
    }));
    assert_auto(&run(&ix, 935_000, long), &[(2002, 935_000)]);
    // The same typed up to an app's limit (140, the prefix left out) may have lost the end of
    // the name.
    let (prefix, typed_long) = long.split_at("MBVCB.3278126542.012345.".len());
    let pad = "x".repeat(140 - typed_long.chars().count() - 1);
    let padded = format!("{prefix}{pad} {typed_long}");
    assert_eq!(padded.chars().count(), 24 + 140);
    assert_review(&run(&ix, 935_000, &padded), ReviewReason::MaybeTruncated);
    // And one delivered at the interbank channel's limit, wrapping included.
    let pad = "x".repeat(210 - len - 1);
    let delivered = format!("{pad} {long}");
    assert_eq!(delivered.chars().count(), 210);
    assert_review(&run(&ix, 935_000, &delivered), ReviewReason::MaybeTruncated);

    // An app's limit counts what the parent typed: 69 characters as delivered, 24 of them
    // Vietcombank's prefix, are 45 typed ones and whole.
    let typed = "Kinh gui: hoc phi thang 10 cho HS Le Bao Tuan";
    let wrapped = format!("MBVCB.3278126542.012345.{typed}");
    assert_eq!(wrapped.chars().count(), 24 + 45);
    assert_auto(&run(&ix, 935_000, &wrapped), &[(2002, 935_000)]);
    // Typed up to 70 and ending in the name, the bank's prefix in front and its reference
    // behind: the app may have cut the name.
    let at_70 = format!("{}{typed}", "x ".repeat((70 - typed.chars().count()) / 2));
    let at_70 = if at_70.chars().count() < 70 {
        format!("y{at_70}")
    } else {
        at_70
    };
    assert_eq!(at_70.chars().count(), 70);
    for raw in [
        format!("MBVCB.3278126542.012345.{at_70}"),
        format!("{at_70} FT25252123456789 Trace 123456"),
        format!("REM Tfr Ac:12345678 {at_70}"),
    ] {
        assert_review(&run(&ix, 935_000, &raw), ReviewReason::MaybeTruncated);
    }
}

#[test]
fn pupil_named_before_chuyen_tien() {
    let ix = period_index();
    let d = run_with(
        &ix,
        500_000,
        "TRAN MINH KHOA 8A1 chuyen tien HP T10",
        None,
        Some("NGUYEN THI HOA"),
        &|_| false,
    );
    assert_auto(&d, &[(2301, 500_000)]);
    assert_auto(
        &run(&ix, 500_000, "con TRAN MINH KHOA chuyen tien"),
        &[(2301, 500_000)],
    );
    assert_review(
        &run(&ix, 500_000, "TRAN MINH KHOA chuyen tien"),
        ReviewReason::OnlyWeakEvidence,
    );
}

#[test]
fn given_name_and_class() {
    let ix = index();
    let d = run(&ix, 935_000, "HOC PHI BE HUY 6A2");
    assert_auto(&d, &[(601, 935_000)]);
    assert_rule(&d, Rule::GivenNameAndClass);
    assert_auto(&run(&ix, 935_000, "MINH KHOI 8A3"), &[(401, 935_000)]);
    assert_review(
        &run(&ix, 900_000, "HOC PHI BE HUY 6A2"),
        ReviewReason::OnlyWeakEvidence,
    );
    // "An" is two pupils' given name, in different classes: the class tells.
    assert!(!run(&ix, 935_000, "BE AN").is_auto());

    // A middle and given name are read as the pair: another "Khôi" of the class, and a pupil
    // whose given name is "Minh", are no further candidates.
    let mut rows = invoices();
    for (id, sid, name) in [(901, 9, "Trần Anh Khôi"), (1001, 10, "Võ Thị Minh")] {
        let mut r = rows[4].clone();
        assert_eq!(r.student_name, "Nguyễn Minh Khôi");
        r.invoice_id = id;
        r.code = code(id);
        r.student_id = sid;
        r.student_code = format!("HS{sid:04}");
        r.student_name = name.to_string();
        r.family_key = None;
        r.open = vnd(800_000);
        rows.push(r);
    }
    let ix = Index::build(&qd(), rows);
    let d = run(&ix, 935_000, "MINH KHOI 8A3 T9");
    assert_auto(&d, &[(401, 935_000)]);
    assert_rule(&d, Rule::GivenNameAndClass);
    // The given name alone is two pupils' of the class.
    assert!(!run(&ix, 935_000, "BE KHOI 8A3").is_auto());
}
