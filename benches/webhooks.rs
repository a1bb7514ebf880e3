//! Webhook load benchmark: starts the service on 127.0.0.1, configures SePay and VNPay accounts
//! for 8 schools, and drives signed notifications over HTTP: at concurrency 32 as fast as the
//! service answers, then paced at 1,000 per second for p99 latency. In the same run it measures
//! the database's raw ceiling for the same writes (payment, fee line, allocation, archive row in
//! one transaction, issued directly with 32 connections), so the report shows the ratio.
//! Then real deliveries paced at 200 per second, alone and during a flood of junk (`--junk N`
//! refused requests with large headers), and what the archive kept of the junk; one signed
//! delivery whose memo carries a 100,000-letter word, beside the same school's paced deliveries;
//! and how long a shutdown takes while a client holds a half-sent request.
//! SQLite, and PostgreSQL when `FEERECON_BENCH_POSTGRES_URL` (or `FEERECON_TEST_POSTGRES_URL`) is
//! set. Run: `cargo bench --bench webhooks` (`-- --requests N` to change the count, `-- --sqlite 0`
//! for PostgreSQL only).

mod support;

use feerecon::domain::code::SchoolPrefix;
use feerecon::domain::provider::Secret;
use feerecon::providers::{sepay, vnpay};
use feerecon::sealer::Sealer;
use feerecon::store::webhooks::NewProviderAccount;
use feerecon::store::Store;
use feerecon::{app, AppState};
use hmac::{Hmac, Mac};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCHOOLS: usize = 8;
const CONCURRENCY: usize = 32;
const VNPAY_SECRET: &str = "BENCHSECRETVNPAY0123456789ABCDEF";
const SEPAY_KEY: &str = "BENCHSEPAYAPIKEY0123456789ABCDEF";

struct Target {
    sepay_path: String,
    vnpay_path: String,
    tmn: String,
    account: String,
    /// The school's invoices, one per notification it will receive.
    codes: Vec<String>,
}

fn vnpay_query(tmn: &str, txn: usize, code: &str) -> String {
    let mut params = std::collections::BTreeMap::new();
    for (k, v) in [
        ("vnp_Amount", "5000000".to_string()),
        ("vnp_BankCode", "NCB".into()),
        ("vnp_OrderInfo", format!("Thanh toan {code}")),
        ("vnp_PayDate", "20250910083000".into()),
        ("vnp_ResponseCode", "00".into()),
        ("vnp_TmnCode", tmn.into()),
        ("vnp_TransactionNo", format!("{txn}")),
        ("vnp_TransactionStatus", "00".into()),
        ("vnp_TxnRef", code.into()),
    ] {
        params.insert(k.to_string(), v);
    }
    let canon = feerecon::providers::vnpay::canonical(&params);
    let mut mac =
        <Hmac<sha2::Sha512> as Mac>::new_from_slice(VNPAY_SECRET.as_bytes()).expect("key");
    mac.update(canon.as_bytes());
    format!(
        "{canon}&vnp_SecureHash={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn sepay_body(txn: usize, account: &str, code: &str) -> String {
    serde_json::json!({"id": txn, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00", "accountNumber": account, "subAccount": null,
        "code": null, "content": format!("MBVCB.{txn}.{code} NGUYEN VAN BO hoc phi"), "transferType": "in", "transferAmount": 50000,
        "accumulated": 1000000, "referenceCode": format!("FT{txn}"), "description": "BankAPINotify"})
    .to_string()
}

/// Deliveries answered 429 or 503 and sent again, as a sender does (after a short pause).
static RETRIED: AtomicUsize = AtomicUsize::new(0);

async fn send(client: &reqwest::Client, base: &str, targets: &[Target], i: usize) -> Duration {
    let t = &targets[i % SCHOOLS];
    let code = &t.codes[i / SCHOOLS];
    let start = Instant::now();
    let mut last = 0u16;
    for _attempt in 0..20 {
        let r = if i % 2 == 0 {
            client
                .get(format!(
                    "{base}{}?{}",
                    t.vnpay_path,
                    vnpay_query(&t.tmn, 10_000_000 + i, code)
                ))
                .send()
                .await
        } else {
            client
                .post(format!("{base}{}", t.sepay_path))
                .header("authorization", format!("Apikey {SEPAY_KEY}"))
                .body(sepay_body(i, &t.account, code))
                .send()
                .await
        };
        last = r.map(|r| r.status().as_u16()).unwrap_or(0);
        if (200..300).contains(&last) {
            return start.elapsed();
        }
        if last != 429 && last != 503 {
            break;
        }
        RETRIED.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("request {i} failed: status {last}");
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Real deliveries paced at 200 per second, while `junk` refused requests (bad signatures with
/// 12 KB of headers, and unknown accounts) are sent as fast as they are answered at
/// concurrency 32; the real deliveries' latencies.
async fn paced_under_junk(
    client: &reqwest::Client,
    base: &str,
    targets: &Arc<Vec<Target>>,
    first: usize,
    count: usize,
    junk: usize,
) -> (Vec<Duration>, Vec<(u16, usize)>) {
    let junk_next = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..if junk > 0 { CONCURRENCY } else { 0 } {
        let (client, base, targets, next) = (
            client.clone(),
            base.to_string(),
            targets.clone(),
            junk_next.clone(),
        );
        flood.push(tokio::spawn(async move {
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let padding = "j".repeat(6_000);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= junk {
                    break statuses;
                }
                let path = if i % 2 == 0 {
                    targets[i % SCHOOLS].sepay_path.clone()
                } else {
                    format!("/webhooks/sepay/{}", 900_000 + i)
                };
                let r = client
                    .post(format!("{base}{path}"))
                    .header("authorization", format!("Apikey forged-{i}-{padding}"))
                    .header("user-agent", &padding)
                    .body(format!(
                        "{{\"id\": {i}, \"junk\": \"{}\"}}",
                        "x".repeat(2_000)
                    ))
                    .send()
                    .await;
                let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                *statuses.entry(status).or_default() += 1;
            }
        }));
    }
    let interval = Duration::from_millis(5);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for k in 0..count {
        tokio::time::sleep_until((start + interval * k as u32).into()).await;
        let (client, base, targets) = (client.clone(), base.to_string(), targets.clone());
        handles.push(tokio::spawn(async move {
            send(&client, &base, &targets, first + k).await
        }));
    }
    let mut lat = Vec::with_capacity(count);
    for h in handles {
        lat.push(h.await.expect("paced"));
    }
    lat.sort();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for f in flood {
        for (s, n) in f.await.expect("flood") {
            *statuses.entry(s).or_default() += n;
        }
    }
    (lat, statuses.into_iter().collect())
}

/// Real deliveries that each `paced_under_junk` phase sends.
const UNDER_JUNK: usize = 1000;

async fn run(label: &str, url: &str, requests: usize) {
    let paced = 5000usize;
    let junk = support::arg("--junk", 2_000);
    // The long-memo phase sends 200 more deliveries to one school.
    let per_school = (requests + paced + 2 * UNDER_JUNK).div_ceil(SCHOOLS) + 201;
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let sealer = Sealer::from_base64(&Sealer::generate_key()).expect("key");
    let d = store
        .create_department("bench", "SGD-BENCH", "Sở GD&ĐT")
        .await
        .expect("department");
    let item = feerecon::store::catalog::NewFeeItem {
        code: "MEALS".into(),
        name: "Tiền ăn".into(),
        category: feerecon::domain::catalog::Category::Meals,
        legal_basis: None,
        mandatory: false,
        cadence: feerecon::domain::catalog::Cadence::Monthly,
        cap_per_period: None,
    };
    store
        .create_fee_item(
            "bench",
            feerecon::store::catalog::Owner::Department(d.id),
            item,
        )
        .await
        .expect("item");
    let mut targets = Vec::new();
    for s in 0..SCHOOLS {
        let prefix = ["BA", "BB", "BC", "BD", "BE", "BF", "BG", "BH"][s];
        let school = store
            .create_school(
                "bench",
                d.id,
                &format!("S{s}"),
                "THCS",
                &SchoolPrefix::parse(prefix).expect("prefix"),
            )
            .await
            .expect("school");
        // One 50.000 ₫ invoice per notification, each to a pupil of its own, as a school's
        // monthly run would issue them.
        let mut csv = String::from(
            "invoice_ref,student_code,student_name,class,period,due_date,item_code,amount\n",
        );
        for k in 0..per_school {
            csv.push_str(&format!(
                "HD{k},HS{k},Nguyễn Văn An,6A1,2025-09,2025-09-15,MEALS,50000\n"
            ));
        }
        store
            .import_invoices("bench", &school, csv.as_bytes(), &|_| {})
            .await
            .expect("import");
        let codes: Vec<String> = sqlx::query_scalar(
            "SELECT payment_code FROM invoices WHERE school_id = $1 ORDER BY id",
        )
        .bind(school.id)
        .fetch_all(&sqlx::AnyPool::connect(url).await.expect("pool"))
        .await
        .expect("codes");
        let account = format!("68681234{s:05}");
        let tmn = format!("BENCH{s}");
        let sepay = store
            .create_provider_account(
                "bench",
                &sealer,
                NewProviderAccount {
                    school_id: school.id,
                    provider: sepay::ID,
                    account: &account,
                    label: "sepay",
                    secret: &Secret::new(SEPAY_KEY.as_bytes()),
                },
            )
            .await
            .expect("sepay");
        let vnpay = store
            .create_provider_account(
                "bench",
                &sealer,
                NewProviderAccount {
                    school_id: school.id,
                    provider: vnpay::ID,
                    account: &tmn,
                    label: "vnpay",
                    secret: &Secret::new(VNPAY_SECRET.as_bytes()),
                },
            )
            .await
            .expect("vnpay");
        targets.push(Target {
            sepay_path: sepay.webhook_path,
            vnpay_path: vnpay.webhook_path,
            tmn,
            account,
            codes,
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    // The service gets a runtime of its own, as it would in its own process: the load
    // generator's tasks never wait in its run queue, nor its tasks in theirs.
    let router = app(AppState::new(store.clone(), sealer));
    let listener = listener.into_std().expect("listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = std::thread::spawn(move || {
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
                async {
                    let _ = stopped.await;
                },
            )
            .await
        })
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let targets = Arc::new(targets);

    // Saturation: 32 workers, each sending as soon as its previous request was answered.
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = support::cpu_ticks();
    let own_before = support::own_ticks();
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, base, targets, next) =
            (client.clone(), base.clone(), targets.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break lat;
                }
                lat.push(send(&client, &base, &targets, i).await);
            }
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for w in workers {
        lat.extend(w.await.expect("worker"));
    }
    let elapsed = start.elapsed();
    let cpu = support::cpu_ms_per(cpu_before, support::cpu_ticks(), requests);
    let own = support::cpu_ms_per(own_before, support::own_ticks(), requests);
    lat.sort();
    let rate = requests as f64 / elapsed.as_secs_f64();
    println!("{label:<10} saturated: {requests} notifications in {:.2} s = {rate:>6.0}/s, p50 {:.2} ms, p99 {:.2} ms (concurrency {CONCURRENCY}, {SCHOOLS} schools); CPU per notification: machine {cpu} ms, this process and PostgreSQL's {own} ms (load generator included); {} answers 429/503 sent again", elapsed.as_secs_f64(), percentile(&lat, 0.5), percentile(&lat, 0.99), RETRIED.swap(0, Ordering::Relaxed));

    // Paced: 1,000 per second for 5 seconds (or what the service sustains, if less).
    let interval = Duration::from_micros(1000);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(paced);
    for k in 0..paced {
        let due = start + interval * k as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, base, targets) = (client.clone(), base.clone(), targets.clone());
        let i = requests + k;
        handles.push(tokio::spawn(async move {
            send(&client, &base, &targets, i).await
        }));
    }
    let mut plat = Vec::with_capacity(paced);
    for h in handles {
        plat.push(h.await.expect("paced"));
    }
    plat.sort();
    println!(
        "{label:<10} paced 1,000/s: {paced} notifications, p50 {:.2} ms, p99 {:.2} ms; {} answers 429/503 sent again",
        percentile(&plat, 0.5),
        percentile(&plat, 0.99),
        RETRIED.swap(0, Ordering::Relaxed)
    );

    // Junk beside real traffic: the same paced real deliveries without junk, then with a flood
    // of refused requests sent meanwhile.
    let first = requests + paced;
    let (quiet, _) = paced_under_junk(&client, &base, &targets, first, UNDER_JUNK, 0).await;
    let (noisy, statuses) = paced_under_junk(
        &client,
        &base,
        &targets,
        first + UNDER_JUNK,
        UNDER_JUNK,
        junk,
    )
    .await;
    let db = sqlx::AnyPool::connect(url).await.expect("pool");
    let (kept, bytes, largest): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(LENGTH(headers) + LENGTH(query) + LENGTH(body) + COALESCE(LENGTH(detail), 0)), 0) AS BIGINT),
                CAST(COALESCE(MAX(LENGTH(headers) + LENGTH(query) + LENGTH(body) + COALESCE(LENGTH(detail), 0)), 0) AS BIGINT)
         FROM provider_events WHERE outcome IN ('bad_signature', 'unknown_account')",
    )
    .fetch_one(&db)
    .await
    .expect("archive");
    println!(
        "{label:<10} real deliveries paced at 200/s: p50 {:.2} ms, p99 {:.2} ms alone; p50 {:.2} ms, p99 {:.2} ms during {junk} junk requests with 12 KB of headers (answers {statuses:?}; {} real answers 429/503 sent again); archive: {kept} refused deliveries kept, {bytes} bytes in all, {largest} bytes the largest",
        percentile(&quiet, 0.5),
        percentile(&quiet, 0.99),
        percentile(&noisy, 0.5),
        percentile(&noisy, 0.99),
        RETRIED.swap(0, Ordering::Relaxed),
    );
    // One signed delivery whose memo is a 100,000-letter word, sent while the same school's
    // deliveries go on at 200 per second.
    let first = first + 2 * UNDER_JUNK;
    let long = {
        let t = &targets[1];
        let body = serde_json::json!({"id": 99_000_001u64, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
            "accountNumber": t.account, "subAccount": null, "code": null, "content": format!("hoc phi {}", "a".repeat(100_000)),
            "transferType": "in", "transferAmount": 50000, "accumulated": 1000000, "referenceCode": "FT99000001", "description": "BankAPINotify"})
        .to_string();
        let (client, url) = (client.clone(), format!("{base}{}", t.sepay_path));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let start = Instant::now();
            let r = client
                .post(url)
                .header("authorization", format!("Apikey {SEPAY_KEY}"))
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (start.elapsed(), r)
        })
    };
    // Odd indices of school 1 are its SePay deliveries: 200 per second for one second.
    let mut same_school = Vec::new();
    let start = Instant::now();
    for k in 0..200usize {
        tokio::time::sleep_until((start + Duration::from_millis(5) * k as u32).into()).await;
        let (client, base, targets) = (client.clone(), base.clone(), targets.clone());
        let i = first + 1 + k * SCHOOLS;
        same_school.push(tokio::spawn(async move {
            send(&client, &base, &targets, i).await
        }));
    }
    let mut school_lat = Vec::new();
    for h in same_school {
        school_lat.push(h.await.expect("same school"));
    }
    school_lat.sort();
    let (long_took, long_status) = long.await.expect("long memo");
    println!(
        "{label:<10} a delivery with a 100,000-letter memo word: answered {long_status} in {:.2} ms; the same school's deliveries meanwhile (200/s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        long_took.as_secs_f64() * 1000.0,
        percentile(&school_lat, 0.5),
        percentile(&school_lat, 0.99),
        percentile(&school_lat, 1.0),
    );

    let payments: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(
        payments as usize,
        requests + paced + 2 * UNDER_JUNK + 200 + 1,
        "every notification recorded exactly once"
    );

    // Shutdown while a client holds a request half sent: it must not wait for that client.
    let mut half = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(
        &mut half,
        format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{\"id\":",
            targets[0].sepay_path
        )
        .as_bytes(),
    )
    .await
    .expect("half a request");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let _ = stop.send(());
    tokio::task::spawn_blocking(move || service.join())
        .await
        .expect("join")
        .expect("service thread");
    println!(
        "{label:<10} shutdown with a client holding a half-sent request: {:.2} s (grace {} s)",
        start.elapsed().as_secs_f64(),
        feerecon::http::limits::ServerLimits::default()
            .shutdown_grace
            .as_secs()
    );
    drop(half);

    // The database's ceiling for the same writes, issued directly.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(if label == "sqlite" {
            1
        } else {
            CONCURRENCY as u32
        })
        .connect(url)
        .await
        .expect("pool");
    let n = requests.min(20_000);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (pool, next) = (pool.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let mut tx = pool.begin().await.expect("begin");
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO payments (school_id, channel, provider, provider_ref, amount, received_at, recorded_at, recorded_by, receipt_no, receipt_year, receipt_seq)
                     VALUES (1, 'bank_transfer', 'raw', $1, 50000, '2025-09-10T01:30:00.000000Z', '2025-09-10T01:30:00.000000Z', 'raw', $1, 1999, $2) RETURNING id",
                )
                .bind(format!("raw-{i}"))
                .bind(i as i64)
                .fetch_one(&mut *tx)
                .await
                .expect("payment");
                sqlx::query("INSERT INTO payment_fees (payment_id, school_id, charged_by, kind, basis, amount, borne_by, needs_review) VALUES ($1, 1, 'raw', 'transaction', 'raw', 0, 'school', $2)")
                    .bind(id).bind(false).execute(&mut *tx).await.expect("fee");
                sqlx::query("INSERT INTO allocations (school_id, payment_id, invoice_id, amount, method, created_at, created_by) VALUES (1, $1, 1, 1, 'raw', 'x', 'raw')")
                    .bind(id).execute(&mut *tx).await.expect("allocation");
                sqlx::query("INSERT INTO provider_events (provider, received_at, method, query, headers, body, body_size, verified, outcome, ack_status) VALUES ('raw', 'x', 'POST', '', '{}', $1, 3, $2, 'raw', 200)")
                    .bind(b"raw".to_vec()).bind(true).execute(&mut *tx).await.expect("event");
                tx.commit().await.expect("commit");
            }
        }));
    }
    for w in workers {
        w.await.expect("raw worker");
    }
    let raw = n as f64 / start.elapsed().as_secs_f64();
    println!("{label:<10} raw database ceiling for the same writes: {raw:>6.0}/s; the service reaches {:.0} % of it", rate / raw * 100.0);
    store.close().await;
}

#[tokio::main]
async fn main() {
    if !support::benchmarking() {
        return;
    }
    let requests = support::arg("--requests", 20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    // `-- --sqlite 0` measures PostgreSQL only.
    if support::arg("--sqlite", 1) == 1 {
        run(
            "sqlite",
            &format!("sqlite://{}/bench.db", dir.path().display()),
            requests,
        )
        .await;
    }
    match support::postgres().await {
        None => println!("postgres   skipped: set FEERECON_BENCH_POSTGRES_URL"),
        Some(db) => {
            run("postgres", &db.url, requests).await;
            db.drop_db().await;
        }
    }
}
