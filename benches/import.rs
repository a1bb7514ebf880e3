//! Import benchmark: 100,000 invoice lines (25,000 invoices of 4 lines, 25,000 new students)
//! through the real import path (`Store::import_invoices`, which the HTTP route and the CLI call),
//! on SQLite and, when `FEERECON_BENCH_POSTGRES_URL` (or `FEERECON_TEST_POSTGRES_URL`) is set, on
//! PostgreSQL. Run: `cargo bench --bench import` (add `-- --lines N` for another size).

mod support;

use feerecon::domain::access::{Role, Scope};
use feerecon::domain::code::SchoolPrefix;
use feerecon::store::catalog::{NewFeeItem, Owner};
use feerecon::store::Store;
use std::fmt::Write as _;
use std::time::Instant;

const FAMILY: [&str; 8] = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"];
const MIDDLE: [&str; 6] = ["Văn", "Thị", "Minh", "Ngọc", "Gia", "Hoàng"];
const GIVEN: [&str; 10] = [
    "An", "Bình", "Châu", "Dũng", "Hân", "Khôi", "Linh", "Phúc", "Trang", "Vy",
];

fn csv(lines: usize) -> Vec<u8> {
    let mut out = String::with_capacity(lines * 120);
    out.push_str("invoice_ref,student_code,student_name,class,family_key,period,due_date,item_code,line_type,amount,description,reduction_percent,policy_group,evidence_ref,cap_override_reason\n");
    let invoices = lines / 4;
    for i in 0..invoices {
        let name = format!(
            "{} {} {}",
            FAMILY[i % 8],
            MIDDLE[(i / 8) % 6],
            GIVEN[(i / 48) % 10]
        );
        let class = format!("{}A{}", 6 + i % 4, 1 + (i / 4) % 9);
        let head = format!("HD-{i:06},HS{i:06},{name},{class},,2025-09,2025-09-15");
        let _ = writeln!(out, "{head},MEALS,charge,935000,,,,,");
        let _ = writeln!(out, "{head},BOARDING,charge,300000,,,,,");
        let _ = writeln!(out, "{head},ENGLISH,charge,250000,,,,,");
        if i % 5 == 0 {
            let _ = writeln!(
                out,
                "{head},MEALS,reduction,,,50,Hộ cận nghèo,GCN {i}/2025,"
            );
        } else {
            let _ = writeln!(out, "{head},BHYT,charge,631800,,,,,");
        }
    }
    out.into_bytes()
}

async fn setup(store: &Store) -> feerecon::store::org::School {
    store.migrate().await.expect("migrate");
    let d = store
        .create_department("bench", "SGD-BENCH", "Sở GD&ĐT")
        .await
        .expect("department");
    let s = store
        .create_school(
            "bench",
            d.id,
            "THCS-BENCH",
            "THCS Bench",
            &SchoolPrefix::parse("BN").expect("prefix"),
        )
        .await
        .expect("school");
    for line in include_str!("../fixtures/catalog/hcmc-2025.jsonl").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("catalog");
        let item = NewFeeItem {
            code: v["code"].as_str().expect("code").into(),
            name: v["name"].as_str().expect("name").into(),
            category: serde_json::from_value(v["category"].clone()).expect("category"),
            legal_basis: v["legal_basis"].as_str().map(String::from),
            mandatory: v["mandatory"].as_bool().expect("mandatory"),
            cadence: serde_json::from_value(v["cadence"].clone()).expect("cadence"),
            cap_per_period: v["cap_per_period"]
                .as_i64()
                .map(|c| feerecon::domain::money::Vnd::new(c).expect("cap")),
        };
        store
            .create_fee_item("bench", Owner::Department(d.id), item)
            .await
            .expect("item");
    }
    let _ = store
        .create_token("bench", Role::Admin, Scope::All, "bench")
        .await;
    s
}

async fn run(label: &str, url: &str, file: &[u8], lines: usize) {
    let store = Store::connect(url).await.expect("connect");
    let school = setup(&store).await;
    let t = Instant::now();
    let summary = store
        .import_invoices("bench", &school, file, &|_| {})
        .await
        .expect("import");
    let first = t.elapsed();
    assert_eq!(summary.invoices_created, lines / 4);
    let t = Instant::now();
    let again = store
        .import_invoices("bench", &school, file, &|_| {})
        .await
        .expect("re-import");
    let second = t.elapsed();
    assert_eq!(again.invoices_created, 0);
    println!(
        "{label:<10} import {lines} lines: {:>7.2} s  {:>8.0} lines/s | re-import (all unchanged): {:>6.2} s  {:>8.0} lines/s",
        first.as_secs_f64(),
        lines as f64 / first.as_secs_f64(),
        second.as_secs_f64(),
        lines as f64 / second.as_secs_f64()
    );
    store.close().await;
}

#[tokio::main]
async fn main() {
    if !support::benchmarking() {
        return;
    }
    let lines = support::arg("--lines", 100_000);
    let file = csv(lines);
    println!("file: {} lines, {:.1} MB", lines, file.len() as f64 / 1e6);
    let dir = tempfile::tempdir().expect("tempdir");
    run(
        "sqlite",
        &format!("sqlite://{}/bench.db", dir.path().display()),
        &file,
        lines,
    )
    .await;
    match support::postgres().await {
        None => println!("postgres   skipped: set FEERECON_BENCH_POSTGRES_URL"),
        Some(db) => {
            run("postgres", &db.url, &file, lines).await;
            db.drop_db().await;
        }
    }
}
