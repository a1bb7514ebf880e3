//! Statement benchmark: one bank statement of 100,000 credit lines (Vietcombank CSV layout)
//! against 1,000,000 open invoices of one school, end to end through the import path the HTTP
//! route uses (`recon::statement::parse`, then `Store::import_statement`): every line becomes a
//! payment (no notification came), 95 % allocated by the code in the memo, 5 % read by the
//! engine from a name and class. Reports the time and the peak memory of the import alone.
//! SQLite, and PostgreSQL when `FEERECON_BENCH_POSTGRES_URL` (or `FEERECON_TEST_POSTGRES_URL`)
//! is set. Run: `cargo bench --bench statements` (`-- --lines N --students M` to resize;
//! `-- --sqlite 0` for PostgreSQL only).

mod support;

use feerecon::domain::account::Step;
use feerecon::domain::catalog::{Cadence, Category};
use feerecon::domain::code::SchoolPrefix;
use feerecon::store::accounts::NewAccount;
use feerecon::store::catalog::{NewFeeItem, Owner};
use feerecon::store::Store;
use std::fmt::Write as _;
use std::time::Instant;

const FAMILY: [&str; 8] = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"];
const MIDDLE: [&str; 6] = ["Văn", "Thị", "Minh", "Ngọc", "Gia", "Hoàng"];
const GIVEN: [&str; 10] = [
    "An", "Bình", "Châu", "Dũng", "Hân", "Khôi", "Linh", "Phúc", "Trang", "Vy",
];
/// Nine monthly invoices per student: a school year's worth.
const PERIODS: [&str; 9] = [
    "2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04",
    "2026-05",
];
const ACCOUNT: &str = "0071000123456";

fn name(i: usize) -> String {
    format!(
        "{} {} {}",
        FAMILY[i % 8],
        MIDDLE[(i / 8) % 6],
        GIVEN[(i / 48) % 10]
    )
}

fn class(i: usize) -> String {
    format!("{}A{}", 6 + i % 4, 1 + (i / 4) % 9)
}

fn invoices_csv(students: usize, period: &str) -> Vec<u8> {
    let mut out = String::with_capacity(students * 90);
    out.push_str("invoice_ref,student_code,student_name,class,period,due_date,item_code,amount\n");
    for i in 0..students {
        let _ = writeln!(
            out,
            "HD-{period}-{i:06},HS{i:06},{},{},{period},{period}-15,MEALS,935000",
            name(i),
            class(i)
        );
    }
    out.into_bytes()
}

/// A Vietcombank export: line k pays invoice `codes[k * stride]` in full.
fn statement_csv(codes: &[(String, usize)], lines: usize) -> Vec<u8> {
    let mut out = String::with_capacity(lines * 130);
    out.push_str("NGÂN HÀNG TMCP NGOẠI THƯƠNG VIỆT NAM,,,,,,\n");
    let _ = writeln!(out, "Số tài khoản: {ACCOUNT},,,,,,");
    out.push_str("Loại tiền: VND,,,,,,\n");
    out.push_str("STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả\n");
    let stride = (codes.len() / lines).max(1);
    let mut balance: u64 = 0;
    for k in 0..lines {
        let (code, student) = &codes[(k * stride) % codes.len()];
        balance += 935_000;
        let memo = if k % 20 == 19 {
            format!("hoc phi {} lop {}", name(*student), class(*student))
        } else {
            format!("MBVCB.{k}.{code} NGUYEN VAN AN chuyen tien hoc phi")
        };
        let _ = writeln!(
            out,
            "{},03/09/2025,5213 - {k:07},,935.000,{},\"{memo}\"",
            k + 1,
            dotted(balance)
        );
    }
    out.into_bytes()
}

fn dotted(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// Peak resident memory since the last reset, in MiB (Linux).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn run(label: &str, url: &str, students: usize, lines: usize) {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let d = store
        .create_department("bench", "SGD-BENCH", "Sở GD&ĐT")
        .await
        .expect("department");
    store
        .create_fee_item(
            "bench",
            Owner::Department(d.id),
            NewFeeItem {
                code: "MEALS".into(),
                name: "Tiền ăn".into(),
                category: Category::Meals,
                legal_basis: None,
                mandatory: false,
                cadence: Cadence::Monthly,
                cap_per_period: None,
            },
        )
        .await
        .expect("item");
    let school = store
        .create_school(
            "bench",
            d.id,
            "THCS-STMT",
            "THCS",
            &SchoolPrefix::parse("BS").expect("prefix"),
        )
        .await
        .expect("school");
    let proposed = store
        .propose_school_account(
            "bench",
            school.id,
            &NewAccount {
                bank_bin: "970436".into(),
                account_number: ACCOUNT.into(),
                account_name: "TRUONG THCS".into(),
                replaces_account_id: None,
            },
        )
        .await
        .expect("account");
    let account = store
        .decide_school_account(
            "bench-approver",
            school.id,
            proposed.id,
            Step::Approve,
            None,
        )
        .await
        .expect("approval");
    let t = Instant::now();
    for period in PERIODS {
        store
            .import_invoices("bench", &school, &invoices_csv(students, period), &|_| {})
            .await
            .expect("import");
    }
    let pool = sqlx::AnyPool::connect(url).await.expect("pool");
    let codes: Vec<(String, usize)> = sqlx::query_as::<_, (String, String)>(
        "SELECT i.payment_code, s.student_code FROM invoices i JOIN students s ON s.id = i.student_id WHERE i.school_id = $1 ORDER BY i.id",
    )
    .bind(school.id)
    .fetch_all(&pool)
    .await
    .expect("codes")
    .into_iter()
    .map(|(c, s)| (c, s[2..].parse().expect("student number")))
    .collect();
    println!(
        "{label:<10} setup: {} open invoices of {students} students imported in {:.1} s",
        codes.len(),
        t.elapsed().as_secs_f64()
    );
    let file = statement_csv(&codes, lines);
    drop(codes);

    reset_peak();
    let t = Instant::now();
    let parsed =
        feerecon::recon::statement::parse(&file, Some("vietcombank"), None).expect("parse");
    let parse_time = t.elapsed();
    let report = store
        .import_statement("bench", &school, &account, &parsed, "bench", "vietcombank")
        .await
        .expect("import statement");
    let total = t.elapsed();
    assert_eq!(report.created, lines, "every line became a payment");
    let allocated: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT payment_id) FROM allocations")
        .fetch_one(&pool)
        .await
        .expect("allocated");
    println!(
        "{label:<10} statement of {lines} lines ({:.1} MB): {:.2} s end to end ({:.0} lines/s; parse {:.2} s), peak memory {:.0} MiB; {allocated} payments allocated, {} to review",
        file.len() as f64 / 1e6,
        total.as_secs_f64(),
        lines as f64 / total.as_secs_f64(),
        parse_time.as_secs_f64(),
        peak_mib(),
        report.to_review
    );
    pool.close().await;
    store.close().await;
}

#[tokio::main]
async fn main() {
    if !support::benchmarking() {
        return;
    }
    let lines = support::arg("--lines", 100_000);
    let students = support::arg("--students", 111_112);
    let dir = tempfile::tempdir().expect("tempdir");
    if support::arg("--sqlite", 1) == 1 {
        run(
            "sqlite",
            &format!("sqlite://{}/bench.db", dir.path().display()),
            students,
            lines,
        )
        .await;
    }
    match support::postgres().await {
        None => println!("postgres   skipped: set FEERECON_BENCH_POSTGRES_URL"),
        Some(db) => {
            run("postgres", &db.url, students, lines).await;
            db.drop_db().await;
        }
    }
}
