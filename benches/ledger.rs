//! Ledger benchmark: 100,000 payments (cash, bank transfer, card, e-wallet) with their fee lines
//! and allocations, recorded through `Store::record_payment` (the path the HTTP API, the CLI and
//! the provider webhooks use), across 4 schools of one department with one writer per school;
//! then the department's transparency report over them. SQLite, and PostgreSQL when
//! `FEERECON_BENCH_POSTGRES_URL` (or `FEERECON_TEST_POSTGRES_URL`) is set.
//! Run: `cargo bench --bench ledger` (add `-- --payments N` for another size).

mod support;

use chrono::{TimeZone, Utc};
use feerecon::domain::code::SchoolPrefix;
use feerecon::domain::fee::{Bearer, Channel, PartialTerms};
use feerecon::domain::money::Vnd;
use feerecon::store::catalog::{NewFeeItem, Owner};
use feerecon::store::fees::NewSchedule;
use feerecon::store::ledger::NewPayment;
use feerecon::store::reports::ReportScope;
use feerecon::store::Store;
use rust_decimal::Decimal;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Instant;

const SCHOOLS: usize = 4;

fn invoices_csv(n: usize) -> Vec<u8> {
    let mut out = String::from(
        "invoice_ref,student_code,student_name,class,period,due_date,item_code,amount\n",
    );
    for i in 0..n {
        let _ = writeln!(
            out,
            "HD{i:06},HS{i:06},Nguyễn Văn An,6A{},2025-09,2025-09-15,MEALS,935000",
            1 + i % 9
        );
        let _ = writeln!(
            out,
            "HD{i:06},HS{i:06},Nguyễn Văn An,6A{},2025-09,2025-09-15,ENGLISH,300000",
            1 + i % 9
        );
    }
    out.into_bytes()
}

async fn run(label: &str, url: &str, payments: usize) {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let d = store
        .create_department("bench", "SGD-BENCH", "Sở GD&ĐT")
        .await
        .expect("department");
    for (code, name, cap) in [
        ("MEALS", "Tiền ăn", 1_000_000),
        ("ENGLISH", "Tiếng Anh", 350_000),
    ] {
        let item = NewFeeItem {
            code: code.into(),
            name: name.into(),
            category: feerecon::domain::catalog::Category::Meals,
            legal_basis: None,
            mandatory: false,
            cadence: feerecon::domain::catalog::Cadence::Monthly,
            cap_per_period: Some(Vnd::new(cap).expect("cap")),
        };
        store
            .create_fee_item("bench", Owner::Department(d.id), item)
            .await
            .expect("item");
    }
    for (provider, channel, pct, fixed, bearer) in [
        ("vnpay", Channel::Card, "1.1", 0, Bearer::Parent),
        ("sepay", Channel::BankTransfer, "0", 1100, Bearer::School),
        ("momo", Channel::Ewallet, "0.8", 0, Bearer::School),
    ] {
        let terms = PartialTerms {
            percent: Some(Decimal::from_str(pct).expect("pct")),
            fixed: Some(Vnd::new(fixed).expect("fixed")),
            min: None,
            max: None,
            bearer: Some(bearer),
        };
        let s = NewSchedule {
            provider: provider.into(),
            channel,
            school_id: None,
            effective_from: "2025-01-01".into(),
            effective_to: None,
            terms,
            note: None,
        };
        store
            .create_fee_schedule("bench", s)
            .await
            .expect("schedule");
    }
    let per_school = payments / SCHOOLS;
    let invoices_per_school = per_school / 4;
    let mut schools = Vec::new();
    for s in 0..SCHOOLS {
        let prefix = ["BA", "BB", "BC", "BD"][s];
        let school = store
            .create_school(
                "bench",
                d.id,
                &format!("THCS-{s}"),
                "THCS",
                &SchoolPrefix::parse(prefix).expect("prefix"),
            )
            .await
            .expect("school");
        store
            .import_invoices(
                "bench",
                &school,
                &invoices_csv(invoices_per_school),
                &|_| {},
            )
            .await
            .expect("import");
        schools.push(school);
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for school in schools {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let ids: Vec<i64> = {
                let (items, _) = store
                    .list_invoices(
                        school.id,
                        &Default::default(),
                        feerecon::store::Page { after: 0, limit: 1 },
                    )
                    .await
                    .expect("first invoice");
                let first = items[0].id;
                (first..first + invoices_per_school as i64).collect()
            };
            let mut latencies = Vec::with_capacity(per_school);
            for i in 0..per_school {
                let (channel, provider) = match i % 10 {
                    0..=2 => (Channel::Cash, "cash"),
                    3..=6 => (Channel::BankTransfer, "sepay"),
                    7..=8 => (Channel::Card, "vnpay"),
                    _ => (Channel::Ewallet, "momo"),
                };
                let p = NewPayment {
                    channel,
                    provider: provider.into(),
                    provider_ref: (channel != Channel::Cash).then(|| format!("{}-{i}", school.id)),
                    bank_ref: None,
                    payer_name: Some("Phụ huynh".into()),
                    memo: None,
                    amount: Vnd::new(300_000).expect("amount"),
                    received_at: Utc
                        .with_ymd_and_hms(2025, 9, 10, 2, 0, 0)
                        .single()
                        .expect("time"),
                    reported_fee: None,
                    allocate: feerecon::plan::intake::Allocate::Given {
                        allocations: vec![(ids[i % ids.len()], Vnd::new(250_000).expect("alloc"))],
                        method: feerecon::domain::ledger::AllocationMethod::CashDesk,
                    },
                    reported_fee_bearer: None,
                    credited_account: None,
                };
                let t = Instant::now();
                store
                    .record_payment("bench", &school, p)
                    .await
                    .expect("record");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    let elapsed = t.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    println!(
        "{label:<10} record {} payments: {:>6.2} s  {:>7.0} payments/s  (p50 {:.2} ms, p99 {:.2} ms; {SCHOOLS} schools, one writer each)",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    let t = Instant::now();
    let day = chrono::NaiveDate::from_ymd_opt(2025, 9, 1).expect("date");
    let report = store
        .fee_report(
            ReportScope::Department(d.id),
            day,
            day + chrono::Duration::days(29),
        )
        .await
        .expect("report");
    let elapsed = t.elapsed();
    assert_eq!(report.totals.payments as usize, latencies.len());
    println!(
        "{label:<10} department report over {} payments: {:>6.2} s  ({} channel rows, {} parent-borne fees listed, fees total {})",
        report.totals.payments,
        elapsed.as_secs_f64(),
        report.channels.len(),
        report.parent_borne_fees.len(),
        report.totals.fees_total
    );
    store.close().await;
}

#[tokio::main]
async fn main() {
    if !support::benchmarking() {
        return;
    }
    let payments = support::arg("--payments", 100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    run(
        "sqlite",
        &format!("sqlite://{}/bench.db", dir.path().display()),
        payments,
    )
    .await;
    match support::postgres().await {
        None => println!("postgres   skipped: set FEERECON_BENCH_POSTGRES_URL"),
        Some(db) => {
            run("postgres", &db.url, payments).await;
            db.drop_db().await;
        }
    }
}
