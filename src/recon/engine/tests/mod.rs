//! Each rule of the module docs, tested under its name: on a small school ([`SCHOOL`]) and on
//! one with several months of a pupil open at once ([`period_index`]).

use super::*;
use crate::domain::code::SchoolPrefix;

mod codes;
mod limits;
mod periods;
mod siblings;
mod students;
mod suggestions;

fn qd() -> SchoolPrefix {
    SchoolPrefix::parse("QD").unwrap()
}

fn code(invoice_id: i64) -> PaymentCode {
    PaymentCode::generate(&qd(), invoice_id as u64).unwrap()
}

fn vnd(d: i64) -> Vnd {
    Vnd::new(d).unwrap()
}

/// (invoice, student, student code, name, class, family, period, open)
type Row = (
    i64,
    i64,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    i64,
);
const SCHOOL: &[Row] = &[
    (
        101,
        1,
        "HS0001",
        "Nguyễn Văn An",
        "6A1",
        Some("F1"),
        "2025-09",
        935_000,
    ),
    (
        102,
        1,
        "HS0001",
        "Nguyễn Văn An",
        "6A1",
        Some("F1"),
        "2025-10",
        300_000,
    ),
    (
        201,
        2,
        "HS0002",
        "Nguyễn Văn An",
        "8A3",
        None,
        "2025-09",
        935_000,
    ),
    (
        301,
        3,
        "HS0003",
        "Trần Thị Bích Ngọc",
        "7A2",
        None,
        "2025-09",
        1_566_800,
    ),
    (
        401,
        4,
        "HS0004",
        "Nguyễn Minh Khôi",
        "8A3",
        Some("F1"),
        "2025-09",
        935_000,
    ),
    (
        501,
        5,
        "HS0005",
        "Lê Hoàng Phúc",
        "9A1",
        None,
        "2025-09",
        1_250_000,
    ),
    (
        601,
        6,
        "HS0006",
        "Phạm Gia Huy",
        "6A2",
        None,
        "2025-09",
        935_000,
    ),
    (
        701,
        7,
        "HS0007",
        "Nguyễn Văn Bình",
        "9A2",
        None,
        "2025-09",
        450_000,
    ),
    (
        801,
        8,
        "HS0008",
        "Đặng Văn Nam",
        "7A1",
        None,
        "2025-09",
        500_000,
    ),
    (
        802,
        8,
        "HS0008",
        "Đặng Văn Nam",
        "7A1",
        None,
        "2025-10",
        500_000,
    ),
];

fn invoices() -> Vec<OpenInvoice> {
    SCHOOL
        .iter()
        .map(
            |&(id, sid, sc, name, class, fam, period, open)| OpenInvoice {
                invoice_id: id,
                code: code(id),
                student_id: sid,
                student_code: sc.to_string(),
                student_name: name.to_string(),
                class_name: class.to_string(),
                family_key: fam.map(str::to_string),
                open: vnd(open),
                period: period.to_string(),
                voided: false,
                paid_by: None,
            },
        )
        .collect()
}

fn index() -> Index {
    Index::build(&qd(), invoices())
}

fn run(index: &Index, amount: i64, memo: &str) -> Decision {
    run_with(index, amount, memo, None, None, &|_| false)
}

fn run_with(
    index: &Index,
    amount: i64,
    memo: &str,
    order_ref: Option<&str>,
    payer_name: Option<&str>,
    dismissed: &dyn Fn(i64) -> bool,
) -> Decision {
    let incoming = Incoming {
        amount: vnd(amount),
        memo,
        order_ref,
        payer_name,
    };
    decide(index, &incoming, dismissed)
}

fn allocs(pairs: &[(i64, i64)]) -> Vec<(i64, Vnd)> {
    pairs.iter().map(|&(i, a)| (i, vnd(a))).collect()
}

#[track_caller]
fn assert_auto(d: &Decision, want: &[(i64, i64)]) {
    match d {
        Decision::Auto { allocations, .. } => assert_eq!(allocations, &allocs(want)),
        other => panic!("expected auto {want:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_review(d: &Decision, want: ReviewReason) -> Vec<Suggestion> {
    match d {
        Decision::Review {
            reason,
            suggestions,
            ..
        } => {
            assert_eq!(*reason, want, "{suggestions:?}");
            assert!(suggestions.len() <= MAX_SUGGESTIONS);
            suggestions.clone()
        }
        other => panic!("expected review {want:?}, got {other:?}"),
    }
}

/// Several months of one pupil open at once, some paid, one voided; a family of two.
fn period_index() -> Index {
    let row = |id: i64,
               sid: i64,
               name: &str,
               class: &str,
               fam: Option<&str>,
               period: &str,
               open: i64,
               voided: bool,
               paid_by: Option<i64>| OpenInvoice {
        invoice_id: id,
        code: code(id),
        student_id: sid,
        student_code: format!("HS{sid:04}"),
        student_name: name.to_string(),
        class_name: class.to_string(),
        family_key: fam.map(str::to_string),
        open: vnd(open),
        period: period.to_string(),
        voided,
        paid_by,
    };
    Index::build(
        &qd(),
        vec![
            row(
                2000,
                20,
                "Lê Bảo Tuấn",
                "6A5",
                None,
                "2025-08",
                0,
                false,
                Some(77),
            ),
            row(
                2001,
                20,
                "Lê Bảo Tuấn",
                "6A5",
                None,
                "2025-09",
                935_000,
                false,
                None,
            ),
            row(
                2002,
                20,
                "Lê Bảo Tuấn",
                "6A5",
                None,
                "2025-10",
                935_000,
                false,
                None,
            ),
            row(
                2003,
                20,
                "Lê Bảo Tuấn",
                "6A5",
                None,
                "2025-11",
                935_000,
                false,
                None,
            ),
            row(
                2004,
                20,
                "Lê Bảo Tuấn",
                "6A5",
                None,
                "2025-12",
                935_000,
                true,
                None,
            ),
            row(
                2101,
                21,
                "Võ Thị Mai",
                "7A4",
                Some("F9"),
                "2025-10",
                1_235_000,
                false,
                None,
            ),
            row(
                2102,
                21,
                "Võ Thị Mai",
                "7A4",
                Some("F9"),
                "2025-11",
                935_000,
                false,
                None,
            ),
            row(
                2201,
                22,
                "Võ Minh Quân",
                "9A3",
                Some("F9"),
                "2025-11",
                935_000,
                false,
                None,
            ),
            row(
                2301,
                23,
                "Trần Minh Khoa",
                "8A1",
                None,
                "2025-10",
                500_000,
                false,
                None,
            ),
        ],
    )
}

#[track_caller]
fn assert_rule(d: &Decision, want: Rule) {
    match d {
        Decision::Auto { rule, .. } => assert_eq!(*rule, want),
        other => panic!("expected auto by {want:?}, got {other:?}"),
    }
}
