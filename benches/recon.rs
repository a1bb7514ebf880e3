//! Memo-read benchmark: what a transfer whose memo must be read costs against a big school's
//! book, beside one that carries its payment code. Starts the service on 127.0.0.1 with a SePay
//! account for a big school (`--invoices N` open invoices, nine monthly invoices per pupil) and
//! a small one, and drives signed SePay notifications over HTTP:
//! 1. code-carrying notifications to the big school, 32 at a time, as fast as answered;
//! 2. memo-read ones (a pupil's name, class and month, no code), the same way;
//! 3. memo-read ones paced at 500 per second to the big school while the small school gets code
//!    notifications paced at 50 per second: the p99 of each, and the small school's p99 alone.
//!
//! Every notification is recorded with its allocations or its exception in one transaction.
//! SQLite, and PostgreSQL when `FEERECON_BENCH_POSTGRES_URL` (or `FEERECON_TEST_POSTGRES_URL`)
//! is set. Run: `cargo bench --bench recon` (`-- --invoices 1000000`, `-- --requests N`,
//! `-- --sqlite 0` for PostgreSQL only).

mod support;

/// The service binary's allocator (src/main.rs), so that the service measured here is the one run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use feerecon::domain::catalog::{Cadence, Category};
use feerecon::domain::code::SchoolPrefix;
use feerecon::domain::provider::Secret;
use feerecon::providers::sepay;
use feerecon::sealer::Sealer;
use feerecon::store::catalog::{NewFeeItem, Owner};
use feerecon::store::webhooks::NewProviderAccount;
use feerecon::store::Store;
use feerecon::{app, AppState};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;
const CLASS_SIZE: usize = 45;
const SEPAY_KEY: &str = "BENCHSEPAYAPIKEY0123456789ABCDEF";
const FAMILY: [&str; 14] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô",
];
const MIDDLE: [&str; 10] = [
    "Văn", "Thị", "Minh", "Ngọc", "Gia", "Hoàng", "Đức", "Thu", "Bảo", "Quốc",
];
const GIVEN: [&str; 30] = [
    "An", "Bình", "Châu", "Dũng", "Hân", "Khôi", "Linh", "Phúc", "Trang", "Vy", "Anh", "Bảo",
    "Chi", "Duy", "Giang", "Hà", "Hải", "Hiếu", "Huy", "Khang", "Lan", "Long", "Mai", "Nam",
    "Ngân", "Nhi", "Quân", "Sơn", "Tâm", "Thảo",
];
const MONTHS: [(&str, &str); 9] = [
    ("2025-09", "T9"),
    ("2025-10", "T10"),
    ("2025-11", "T11"),
    ("2025-12", "T12"),
    ("2026-01", "T1"),
    ("2026-02", "T2"),
    ("2026-03", "T3"),
    ("2026-04", "T4"),
    ("2026-05", "T5"),
];

/// Pupil `i`'s name: syllables picked by a mix of `i` (4,200 names), so that names recur across
/// a big school (up to 30 pupils a name at 1,000,000 invoices) while the 45 of one class have 45
/// different names, and the class written tells namesakes apart.
fn name(i: usize) -> String {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
    let h = h as usize;
    format!(
        "{} {} {}",
        FAMILY[h % FAMILY.len()],
        MIDDLE[(h / FAMILY.len()) % MIDDLE.len()],
        GIVEN[(h / (FAMILY.len() * MIDDLE.len())) % GIVEN.len()]
    )
}

/// Pupil `i`'s class: 45 pupils a class, grades 6 to 9, as many classes as the school needs
/// (`6A1` … `6A99`, `6B1` …).
fn class(i: usize) -> String {
    let c = i / CLASS_SIZE;
    let k = c / 4;
    format!(
        "{}{}{}",
        6 + c % 4,
        char::from(b'A' + (k / 99) as u8),
        1 + k % 99
    )
}

fn invoices_csv(prefix: &str, students: usize, period: &str) -> Vec<u8> {
    let mut out = String::with_capacity(students * 90);
    out.push_str("invoice_ref,student_code,student_name,class,period,due_date,item_code,amount\n");
    for i in 0..students {
        let _ = writeln!(
            out,
            "{prefix}-{period}-{i:06},{prefix}{i:06},{},{},{period},{period}-15,MEALS,935000",
            name(i),
            class(i)
        );
    }
    out.into_bytes()
}

fn body(txn: usize, account: &str, memo: &str) -> String {
    serde_json::json!({"id": txn, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00", "accountNumber": account,
        "subAccount": null, "code": null, "content": memo, "transferType": "in", "transferAmount": 935000,
        "accumulated": 1000000, "referenceCode": format!("FT{txn}"), "description": "BankAPINotify"})
    .to_string()
}

struct School {
    id: i64,
    path: String,
    account: String,
    students: usize,
    /// Payment codes, nine per student, in import order (month by month).
    codes: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
async fn school(
    url: &str,
    store: &Store,
    sealer: &Sealer,
    department: i64,
    code: &str,
    prefix: &str,
    students: usize,
    account: &str,
) -> School {
    let s = store
        .create_school(
            "bench",
            department,
            code,
            "THCS",
            &SchoolPrefix::parse(prefix).expect("prefix"),
        )
        .await
        .expect("school");
    for (period, _) in MONTHS {
        store
            .import_invoices(
                "bench",
                &s,
                &invoices_csv(prefix, students, period),
                &|_| {},
            )
            .await
            .expect("import");
    }
    let pool = sqlx::AnyPool::connect(url).await.expect("pool");
    let codes: Vec<String> =
        sqlx::query_scalar("SELECT payment_code FROM invoices WHERE school_id = $1 ORDER BY id")
            .bind(s.id)
            .fetch_all(&pool)
            .await
            .expect("codes");
    let a = store
        .create_provider_account(
            "bench",
            sealer,
            NewProviderAccount {
                school_id: s.id,
                provider: sepay::ID,
                account,
                label: "sepay",
                secret: &Secret::new(SEPAY_KEY.as_bytes()),
            },
        )
        .await
        .expect("account");
    School {
        id: s.id,
        path: a.webhook_path,
        account: account.to_string(),
        students,
        codes,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> Duration {
    let t = Instant::now();
    let r = client
        .post(url)
        .header("authorization", format!("Apikey {SEPAY_KEY}"))
        .body(body)
        .send()
        .await;
    assert!(
        r.map(|r| r.status().is_success()).unwrap_or(false),
        "a notification failed"
    );
    t.elapsed()
}

/// `count` notifications built by `make(k)`, 32 at a time: (rate, sorted latencies).
async fn saturate(
    client: &reqwest::Client,
    url: &str,
    count: usize,
    make: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> (f64, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, next, make) =
            (client.clone(), url.to_string(), next.clone(), make.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    break lat;
                }
                lat.push(post(&client, &url, make(k)).await);
            }
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.expect("worker"));
    }
    lat.sort();
    (count as f64 / start.elapsed().as_secs_f64(), lat)
}

/// `count` notifications at `per_second`: sorted latencies.
async fn paced(
    client: &reqwest::Client,
    url: &str,
    count: usize,
    per_second: u32,
    make: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Vec<Duration> {
    let interval = Duration::from_secs(1) / per_second;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for k in 0..count {
        tokio::time::sleep_until((start + interval * k as u32).into()).await;
        let (client, url, make) = (client.clone(), url.to_string(), make.clone());
        handles.push(tokio::spawn(
            async move { post(&client, &url, make(k)).await },
        ));
    }
    let mut lat = Vec::with_capacity(count);
    for h in handles {
        lat.push(h.await.expect("paced"));
    }
    lat.sort();
    lat
}

async fn run(label: &str, url: &str, invoices: usize, requests: usize) {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let sealer = Sealer::from_base64(&Sealer::generate_key()).expect("key");
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
    let t = Instant::now();
    let big = school(
        url,
        &store,
        &sealer,
        d.id,
        "THCS-BIG",
        "BG",
        invoices.div_ceil(MONTHS.len()),
        "0071000123456",
    )
    .await;
    let small = school(
        url,
        &store,
        &sealer,
        d.id,
        "THCS-SMALL",
        "SM",
        400,
        "0071000654321",
    )
    .await;
    println!(
        "{label:<10} setup: {} invoices of {} pupils, and {} of {} in a second school, in {:.1} s",
        big.codes.len(),
        big.students,
        small.codes.len(),
        small.students,
        t.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    // The big school's one account takes more than the default budget of 1,000 deliveries a
    // second; an operator raises it for such a school (FEERECON_WEBHOOK_ACCOUNT_PER_SECOND).
    let mut state = AppState::new(store.clone(), sealer);
    state.webhook_limits =
        feerecon::http::limits::WebhookLimits::new(feerecon::http::limits::WebhookRates {
            account_burst: 200_000,
            account_per_second: 100_000,
            ..Default::default()
        });
    let router = app(state);
    let listener = listener.into_std().expect("listener");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("service runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            feerecon::http::server::serve(
                listener,
                router,
                &feerecon::http::limits::ServerLimits::default(),
                std::future::pending(),
            )
            .await
        })
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let (big_url, small_url) = (
        format!("{base}{}", big.path),
        format!("{base}{}", small.path),
    );
    let big = Arc::new(big);
    let small = Arc::new(small);

    // The first notification of each school reads its book.
    let t = Instant::now();
    post(&client, &big_url, body(1, &big.account, &big.codes[0])).await;
    post(
        &client,
        &small_url,
        body(1, &small.account, &small.codes[0]),
    )
    .await;
    println!(
        "{label:<10} first notifications (each school's book read): {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // 1. Codes: each pays an invoice of its own.
    let b = big.clone();
    let coded: Arc<dyn Fn(usize) -> String + Send + Sync> = Arc::new(move |k| {
        let k = k + 1;
        body(
            100 + k,
            &b.account,
            &format!("MBVCB.{k}.{} NGUYEN VAN BO hoc phi", b.codes[k]),
        )
    });
    let (code_rate, code_lat) = saturate(&client, &big_url, requests, coded).await;
    println!(
        "{label:<10} code-carrying: {requests} in {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        code_rate,
        percentile(&code_lat, 0.5),
        percentile(&code_lat, 0.99)
    );

    // 2. Memos: a pupil's name, class and month, as parents write them; pupils not paid by the
    // first phase, so each names an open invoice.
    let b = big.clone();
    let memo_of = move |k: usize| {
        let student = (requests + 1 + k * 7) % b.students;
        let (_, month) = MONTHS[1 + k % 8];
        format!(
            "{} chuyen tien hoc phi {month} cho con {} lop {}",
            "TRAN VAN HUNG",
            name(student),
            class(student)
        )
    };
    let (account, m) = (big.account.clone(), memo_of.clone());
    let memos: Arc<dyn Fn(usize) -> String + Send + Sync> =
        Arc::new(move |k| body(1_000_000 + k, &account, &m(k)));
    let (memo_rate, memo_lat) = saturate(&client, &big_url, requests, memos).await;
    println!(
        "{label:<10} memo-read: {requests} in {:.0}/s ({:.0} % of the code-carrying rate), p50 {:.2} ms, p99 {:.2} ms",
        memo_rate,
        100.0 * memo_rate / code_rate,
        percentile(&memo_lat, 0.5),
        percentile(&memo_lat, 0.99)
    );

    // What the memo-read ones became: the share in review says what the rate is made of.
    let pool = sqlx::AnyPool::connect(url).await.expect("pool");
    let reviews: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, COUNT(*) FROM exceptions WHERE school_id = $1 GROUP BY kind ORDER BY kind",
    )
    .bind(big.id)
    .fetch_all(&pool)
    .await
    .expect("reviews");
    pool.close().await;
    let in_review: i64 = reviews.iter().map(|(_, n)| n).sum();
    println!(
        "{label:<10} memo-read: {} allocated automatically, {in_review} in review ({})",
        requests as i64 - in_review,
        reviews
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // 3. Paced: the small school alone, then beside memo-read notifications to the big one.
    let s = small.clone();
    let small_make = move |offset: usize| -> Arc<dyn Fn(usize) -> String + Send + Sync> {
        let s = s.clone();
        Arc::new(move |k| {
            let i = 1 + offset + k;
            body(
                2_000_000 + i,
                &s.account,
                &format!("{} hoc phi", s.codes[i % s.codes.len()]),
            )
        })
    };
    let alone = paced(&client, &small_url, 250, 50, small_make(0)).await;
    let (account, m) = (big.account.clone(), memo_of.clone());
    let paced_memos: Arc<dyn Fn(usize) -> String + Send + Sync> =
        Arc::new(move |k| body(3_000_000 + k, &account, &m(requests + k)));
    let (big_paced, small_beside) = tokio::join!(
        paced(&client, &big_url, 2_500, 500, paced_memos),
        paced(&client, &small_url, 250, 50, small_make(250)),
    );
    println!(
        "{label:<10} paced: memo-read at 500/s p50 {:.2} ms, p99 {:.2} ms; the other school at 50/s p99 {:.2} ms beside it, {:.2} ms alone",
        percentile(&big_paced, 0.5),
        percentile(&big_paced, 0.99),
        percentile(&small_beside, 0.99),
        percentile(&alone, 0.99)
    );
    let unaccounted = store.unaccounted_payments().await.expect("check");
    assert!(
        unaccounted.is_empty(),
        "every payment allocated or in review"
    );
    store.close().await;
}

#[tokio::main]
async fn main() {
    if !support::benchmarking() {
        return;
    }
    let invoices = support::arg("--invoices", 100_000);
    let requests = support::arg("--requests", 4_000);
    let dir = tempfile::tempdir().expect("tempdir");
    if support::arg("--sqlite", 1) == 1 {
        run(
            "sqlite",
            &format!("sqlite://{}/bench.db", dir.path().display()),
            invoices,
            requests,
        )
        .await;
    }
    match support::postgres().await {
        None => println!("postgres   skipped: set FEERECON_BENCH_POSTGRES_URL"),
        Some(db) => {
            run("postgres", &db.url, invoices, requests).await;
            db.drop_db().await;
        }
    }
}
