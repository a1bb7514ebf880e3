//! Pulling SePay and Casso accounts' transaction lists, against a stand-in of each sender's API
//! started by the test: transactions never notified become payments, notified ones are tied to
//! their payment, a late notification is a duplicate, and errors, timeouts and pages behave.

use crate::helpers::{School, TestApp, ADMIN};
use crate::webhooks::{account, invoice_status, school_with_invoices, secrets, sepay_school};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const PULL_KEY: &str = "pull-api-token-0123456789";
const ACCOUNT: &str = "0071000123456";

/// What the stand-in does with the next request, before answering normally.
#[derive(Clone)]
enum Trouble {
    Status(u16),
    TooManyRequests,
    Slow(u64),
    /// A redirect to the same request, which would be answered normally if followed.
    Redirect,
}

#[derive(Default)]
struct Script {
    /// SePay: every transaction of the company; answered by `since_id` and `account_number`.
    sepay: Vec<Value>,
    /// Casso: the pages answered in turn, by `page`.
    casso_pages: Vec<Vec<Value>>,
    trouble: VecDeque<Trouble>,
    /// Path and query of every request, in order.
    seen: Vec<String>,
}

#[derive(Clone, Default)]
struct StandIn(Arc<Mutex<Script>>);

impl StandIn {
    fn with<R>(&self, f: impl FnOnce(&mut Script) -> R) -> R {
        f(&mut self.0.lock().expect("script"))
    }
}

fn query_of(raw: &Option<String>, name: &str) -> Option<String> {
    form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn trouble(s: &StandIn, path: &str, raw: &Option<String>) -> Option<Response> {
    let t = s.with(|sc| {
        sc.seen
            .push(format!("{path}?{}", raw.as_deref().unwrap_or("")));
        sc.trouble.pop_front()
    });
    match t? {
        Trouble::Status(code) => Some(
            (
                AxStatus::from_u16(code).expect("status"),
                Json(json!({"status": code, "error": "stand-in trouble"})),
            )
                .into_response(),
        ),
        Trouble::TooManyRequests => Some(
            (
                AxStatus::TOO_MANY_REQUESTS,
                [("x-sepay-userapi-retry-after", "1")],
                "slow down",
            )
                .into_response(),
        ),
        Trouble::Slow(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            None
        }
        Trouble::Redirect => Some(
            (
                AxStatus::FOUND,
                [(
                    "location",
                    format!("{path}?{}", raw.as_deref().unwrap_or("")),
                )],
            )
                .into_response(),
        ),
    }
}

async fn sepay_list(
    State(s): State<StandIn>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(r) = trouble(&s, "/userapi/transactions/list", &raw).await {
        return r;
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {PULL_KEY}"))
    {
        return (
            AxStatus::UNAUTHORIZED,
            Json(json!({"status": 401, "error": "unauthenticated"})),
        )
            .into_response();
    }
    let since: u64 = query_of(&raw, "since_id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let account = query_of(&raw, "account_number");
    let list: Vec<Value> = s.with(|sc| {
        sc.sepay
            .iter()
            .filter(|t| t["id"].as_str().and_then(|i| i.parse::<u64>().ok()) >= Some(since))
            .filter(|t| account.is_none() || t["account_number"].as_str() == account.as_deref())
            .cloned()
            .collect()
    });
    Json(json!({"status": 200, "error": null, "messages": {"success": true}, "transactions": list}))
        .into_response()
}

async fn casso_list(
    State(s): State<StandIn>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(r) = trouble(&s, "/v2/transactions", &raw).await {
        return r;
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Apikey {PULL_KEY}"))
    {
        return Json(json!({"error": 401, "message": "Invalid API key"})).into_response();
    }
    let page: usize = query_of(&raw, "page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let (records, total) = s.with(|sc| {
        (
            sc.casso_pages.get(page - 1).cloned().unwrap_or_default(),
            sc.casso_pages.len(),
        )
    });
    Json(json!({"error": 0, "message": "success", "data": {"page": page, "pageSize": 2,
        "nextPage": page + 1, "prevPage": page - 1, "totalPages": total, "totalRecords": 3, "records": records}}))
    .into_response()
}

/// Starts the stand-in of both senders' APIs; its base URL.
async fn stand_in() -> (StandIn, String) {
    let s = StandIn::default();
    let router = Router::new()
        .route("/userapi/transactions/list", get(sepay_list))
        .route("/v2/transactions", get(casso_list))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (s, base)
}

fn sepay_txn(id: u64, at: &str, memo: &str, amount_in: i64, amount_out: i64) -> Value {
    json!({"id": id.to_string(), "bank_brand_name": "Vietcombank", "account_number": ACCOUNT,
        "transaction_date": at, "amount_out": format!("{amount_out}.00"), "amount_in": format!("{amount_in}.00"),
        "accumulated": "100000000.00", "transaction_content": memo, "reference_number": format!("FT25{id}"),
        "code": null, "sub_account": null, "bank_account_id": "19"})
}

async fn receiving_account(app: &TestApp, sc: &School) -> i64 {
    let acct = app
        .approved_account(sc, "970436", ACCOUNT, "TRUONG THCS LE QUY DON")
        .await;
    acct["id"].as_i64().expect("id")
}

/// Imports a Vietcombank-layout statement of the receiving account; its report.
async fn import_statement(app: &TestApp, sc: &School, receiving: i64, csv: &str) -> Value {
    let (s, r) = app
        .post_raw(
            &format!(
                "/api/v1/schools/{}/accounts/{receiving}/statements?format=vietcombank",
                sc.school_id
            ),
            &sc.accountant,
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, path, Some(token), Some(&body)).await
}

async fn sepay_webhook(app: &TestApp, path: &str, key: &str, t: &Value) -> StatusCode {
    let amount: f64 = t["amount_in"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("amount");
    let body = json!({"id": t["id"].as_str().expect("id").parse::<u64>().expect("id"), "gateway": "Vietcombank",
        "transactionDate": t["transaction_date"], "accountNumber": ACCOUNT, "code": null,
        "content": t["transaction_content"], "transferType": "in", "transferAmount": amount as i64,
        "referenceCode": t["reference_number"], "description": ""});
    app.client
        .post(format!("{}{path}", app.base))
        .header("authorization", format!("Apikey {key}"))
        .json(&body)
        .send()
        .await
        .expect("send")
        .status()
}

async fn sepay_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let key = secrets()["sepay"]["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let (pa, hook) = account(&app, &sc, "sepay", ACCOUNT, &key, None).await;
    let (vnpay, _) = account(
        &app,
        &sc,
        "vnpay",
        "FEERTEST",
        secrets()["vnpay"]["hash_secret"].as_str().expect("secret"),
        None,
    )
    .await;
    let (standin, base) = stand_in().await;
    let pull = format!("/api/v1/provider-accounts/{pa}/pull");

    // Refused settings change nothing.
    let (s, b) = put(
        &app,
        &pull,
        ADMIN,
        json!({"api_key": PULL_KEY, "base_url": base}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "no_receiving_account");
    let receiving = receiving_account(&app, &sc).await;
    for (body, code) in [
        (json!({"base_url": base}), "missing_api_key"),
        (
            json!({"api_key": PULL_KEY, "base_url": "ftp://127.0.0.1/"}),
            "invalid_base_url",
        ),
        (
            json!({"api_key": PULL_KEY, "base_url": "http://user:pw@127.0.0.1/"}),
            "invalid_base_url",
        ),
        (
            json!({"api_key": PULL_KEY, "interval_seconds": 5}),
            "invalid_interval",
        ),
        (
            json!({"api_key": PULL_KEY, "cursor": "yesterday"}),
            "invalid_cursor",
        ),
        (json!({"api_key": "short"}), "invalid_secret"),
    ] {
        let (s, b) = put(&app, &pull, ADMIN, body).await;
        // No API key stored yet is a conflict with what the service holds; the rest are
        // invalid in themselves.
        let want = if code == "missing_api_key" {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(s, want, "{b}");
        assert_eq!(b["error"]["code"], code, "{b}");
    }
    let (s, b) = put(
        &app,
        &format!("/api/v1/provider-accounts/{vnpay}/pull"),
        ADMIN,
        json!({"api_key": PULL_KEY}),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("pull_not_supported"))
    );
    let (s, _) = put(&app, &pull, &sc.accountant, json!({"api_key": PULL_KEY})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.count("pull_sources").await, 0);
    let (s, _) = app.get(&pull, &sc.accountant).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, src) = put(
        &app,
        &pull,
        ADMIN,
        json!({"api_key": PULL_KEY, "base_url": format!("{base}/"), "interval_seconds": 60, "cursor": "9000"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{src}");
    assert_eq!(src["account_id"], receiving);
    assert_eq!(src["base_url"], base);
    assert!(
        !src.to_string().contains(PULL_KEY),
        "the key is never shown"
    );

    // The account's day: 9001 notified, 9002 and 9004 never notified, 9003 a debit, and one
    // transaction of another account of the same company.
    let (paid_code, owed) = ("QD3CFPSA", invoice_status(&app, &sc, "QD3CFPSA").await);
    assert_eq!(owed.0, "open");
    let day = vec![
        sepay_txn(
            9001,
            "2025-09-03 08:30:00",
            "MBVCB.3278126542.QDPHYRXY TRAN THI MAI hoc phi",
            2_450_000,
            0,
        ),
        sepay_txn(
            9002,
            "2025-09-03 09:00:00",
            &format!("IBFT {paid_code} NGUYEN VAN BO chuyen tien hoc phi"),
            1_235_000,
            0,
        ),
        sepay_txn(
            9003,
            "2025-09-03 09:30:00",
            "Phi quan ly tai khoan",
            0,
            11_000,
        ),
        sepay_txn(9004, "2025-09-03 10:00:00", "chuyen tien", 123_000, 0),
        json!({"id": "9005", "account_number": "0999999999", "transaction_date": "2025-09-03 10:05:00",
            "amount_in": "5000.00", "amount_out": "0.00", "transaction_content": "other account"}),
    ];
    assert_eq!(
        sepay_webhook(&app, &hook, &key, &day[0]).await,
        StatusCode::OK
    );
    assert_eq!(app.count("payments").await, 1);
    standin.with(|sc| {
        sc.sepay = day.clone();
        sc.trouble = VecDeque::from([Trouble::Status(503), Trouble::TooManyRequests]);
    });

    let run = format!("{pull}/run");
    let (s, r) = app.post(&run, &sc.accountant, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["pulled"], 4, "{r}");
    assert_eq!(r["booked"]["matched_by_reference"], 1, "{r}");
    assert_eq!(r["booked"]["created"], 2, "{r}");
    assert_eq!(r["booked"]["debits"], 1, "{r}");
    assert_eq!(r["cursor"], "9005", "{r}");
    let seen = standin.with(|sc| sc.seen.clone());
    assert_eq!(seen.len(), 3, "a 503 and a 429 are retried: {seen:?}");
    assert!(
        seen.iter().all(
            |q| q.contains("since_id=9000") && q.contains(&format!("account_number={ACCOUNT}"))
        ),
        "{seen:?}"
    );
    assert_eq!(app.count("payments").await, 3);
    assert_eq!(
        invoice_status(&app, &sc, paid_code).await,
        ("paid".to_string(), 1_235_000)
    );
    assert_eq!(app.count("statement_lines").await, 4);
    // Booked as the notification would have been: a late retry of it is a duplicate.
    assert_eq!(
        app.count(&format!(
            "payments WHERE provider = 'sepay' AND provider_ref = '{ACCOUNT}:9002'"
        ))
        .await,
        1
    );
    assert_eq!(
        sepay_webhook(&app, &hook, &key, &day[1]).await,
        StatusCode::OK
    );
    assert_eq!(app.count("payments").await, 3);
    assert_eq!(
        app.count("provider_events WHERE outcome = 'duplicate'")
            .await,
        1
    );

    // The bank's own export of the same day, imported later: the pulled transaction is
    // recognised by reference, amount and direction; only the line nobody listed is new.
    let csv = "STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả\n\
        1,03/09/2025,FT259002,,1.235.000,53.575.000,\"IBFT QD3CFPSA NGUYEN VAN BO chuyen tien hoc phi\"\n\
        2,03/09/2025,FT25NEW1,,777.000,54.352.000,\"ung ho quy khuyen hoc\"\n";
    let r = import_statement(&app, &sc, receiving, csv).await;
    assert_eq!(
        (r["already_imported"].clone(), r["created"].clone()),
        (json!(1), json!(1)),
        "{r}"
    );
    assert_eq!(app.count("payments").await, 4);

    // The next run resumes after the last transaction; nothing new, nothing booked.
    standin.with(|sc| sc.seen.clear());
    let (s, r) = app.post(&run, &sc.accountant, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["pulled"].clone(), r["error"].clone()),
        (json!(0), Value::Null),
        "{r}"
    );
    assert!(standin.with(|sc| sc.seen[0].contains("since_id=9005")));
    // The same transactions listed again (a cursor set back) create nothing twice.
    let (s, _) = put(
        &app,
        &pull,
        ADMIN,
        json!({"base_url": base, "interval_seconds": 60, "cursor": "9000"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, r) = app.post(&run, &sc.accountant, json!({})).await;
    assert_eq!(
        (r["pulled"].clone(), r["booked"]["already_imported"].clone()),
        (json!(4), json!(4)),
        "{r}"
    );
    assert_eq!(app.count("payments").await, 4);

    // A refused key is not retried; the source backs off and says why.
    standin.with(|sc| {
        sc.seen.clear();
        sc.trouble = VecDeque::from([Trouble::Status(401)]);
    });
    let (_, r) = app.post(&run, &sc.accountant, json!({})).await;
    assert!(
        r["error"].as_str().expect("error").contains("HTTP 401"),
        "{r}"
    );
    assert_eq!(standin.with(|sc| sc.seen.len()), 1);
    let (s, src) = app.get(&pull, &sc.auditor).await;
    assert_eq!(s, StatusCode::OK, "{src}");
    assert_eq!(src["failures"], 1);
    assert!(src["last_error"]
        .as_str()
        .expect("last_error")
        .contains("401"));
    assert_eq!(src["cursor"], "9005", "a failed run keeps the cursor");

    // A sender that does not answer in time: every attempt times out, nothing is booked.
    standin.with(|sc| {
        sc.seen.clear();
        sc.trouble = VecDeque::from(vec![Trouble::Slow(1_500); 4]);
    });
    let (_, r) = app.post(&run, &sc.accountant, json!({})).await;
    assert!(
        r["error"].as_str().expect("error").contains("timed out"),
        "{r}"
    );
    assert_eq!(
        standin.with(|sc| sc.seen.len()),
        4,
        "every attempt was made"
    );
    let (_, src) = app.get(&pull, &sc.accountant).await;
    assert_eq!(src["failures"], 2);

    // Disabled: no run.
    let (s, _) = put(
        &app,
        &pull,
        ADMIN,
        json!({"base_url": base, "enabled": false}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app.post(&run, &sc.accountant, json!({})).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("pull_disabled"))
    );

    // A notified transfer the bank credited short, under the same reference: the same money,
    // with a fee kept on the way. Tied to its payment and reviewed, never booked a second time.
    let short = sepay_txn(
        9100,
        "2025-09-05 08:00:00",
        "ung ho quy lop 6A1",
        500_000,
        0,
    );
    assert_eq!(
        sepay_webhook(&app, &hook, &key, &short).await,
        StatusCode::OK
    );
    let before = app.count("payments").await;
    let csv = "STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả\n\
        1,05/09/2025,FT259100,,489.000,60.000.000,\"ung ho quy lop 6A1\"\n";
    let r = import_statement(&app, &sc, receiving, csv).await;
    assert_eq!(
        (r["matched_by_reference"].clone(), r["created"].clone()),
        (json!(1), json!(0)),
        "{r}"
    );
    assert_eq!(app.count("payments").await, before);
    let (_, queue) = app
        .get(
            &format!("/api/v1/schools/{}/exceptions", sc.school_id),
            &sc.accountant,
        )
        .await;
    let e = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["kind"] == "fee_mismatch")
        .cloned()
        .unwrap_or_else(|| panic!("a fee_mismatch exception: {queue}"));
    assert!(
        e["reason"].as_str().expect("reason").contains("11.000"),
        "{e}"
    );

    let (_, chains) = app.get("/api/v1/audit/verify", ADMIN).await;
    for chain in chains.as_array().expect("chains") {
        assert_eq!(chain["intact"], true, "{chains}");
    }
}

/// Casso pages by number from a day; its bank references may repeat, so its own id keys each
/// transaction. Two schedulers racing for a due source run it once.
async fn casso_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let checksum = secrets()["casso"]["checksum_key"]
        .as_str()
        .expect("casso key")
        .to_string();
    let (pa, _) = account(&app, &sc, "casso", ACCOUNT, &checksum, None).await;
    receiving_account(&app, &sc).await;
    let (standin, base) = stand_in().await;
    let pull = format!("/api/v1/provider-accounts/{pa}/pull");
    let (s, src) = put(
        &app,
        &pull,
        ADMIN,
        json!({"api_key": PULL_KEY, "base_url": base, "interval_seconds": 60}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{src}");
    assert_eq!(src["cursor"], Value::Null);
    let rec = |id: i64, when: &str, memo: &str, amount: i64, tid: &str| {
        json!({"id": id, "tid": tid, "description": memo, "amount": amount, "cusum_balance": 1_000_000,
            "when": when, "bankSubAccId": ACCOUNT, "corresponsiveName": "", "accountId": 733})
    };
    standin.with(|s| {
        s.casso_pages = vec![
            vec![
                rec(701, "2025-09-04 08:00:00", "QDPHYRXY TRAN THI MAI hoc phi", 2_450_000, "TF1"),
                rec(702, "2025-09-04 09:00:00", "ung ho quy lop", 50_000, "TF1"),
            ],
            vec![
                rec(703, "2025-09-05 07:00:00", "QD3CFPSA nop hoc phi", 1_235_000, ""),
                json!({"id": 704, "tid": "X", "description": "other", "amount": 1, "when": "2025-09-05", "bankSubAccId": "123"}),
            ],
        ]
    });

    // Two schedulers at once: the claim lets one of them run the due source.
    let store = feerecon::store::Store::connect(&app.db_url)
        .await
        .expect("store");
    let sealer = feerecon::sealer::Sealer::from_base64(crate::helpers::SEALER_KEY).expect("sealer");
    let puller = feerecon::pull::Puller::new(feerecon::pull::PullPolicy {
        timeout: std::time::Duration::from_millis(700),
        ..Default::default()
    });
    let (a, b) = tokio::join!(
        feerecon::pull::run_due(&store, &sealer, &puller),
        feerecon::pull::run_due(&store, &sealer, &puller)
    );
    assert_eq!(a.expect("run") + b.expect("run"), 1);
    let seen = standin.with(|s| s.seen.clone());
    assert_eq!(seen.len(), 2, "both pages, once: {seen:?}");
    assert!(
        seen[0].contains("page=1") && seen[1].contains("page=2"),
        "{seen:?}"
    );
    assert!(
        seen[0].contains("fromDate=") && seen[0].contains("sort=ASC"),
        "{seen:?}"
    );
    // Same reference TF1 on two transactions: both booked.
    assert_eq!(app.count("payments WHERE provider = 'casso'").await, 3);
    assert_eq!(invoice_status(&app, &sc, "QDPHYRXY").await.0, "paid");
    assert_eq!(invoice_status(&app, &sc, "QD3CFPSA").await.0, "paid");
    let (_, src) = app.get(&pull, &sc.accountant).await;
    assert_eq!(src["cursor"], "2025-09-05", "{src}");
    assert_eq!(src["failures"], 0);
    assert_eq!(src["last_result"]["booked"]["created"], 3, "{src}");
    // Not due again before its interval.
    assert_eq!(
        feerecon::pull::run_due(&store, &sealer, &puller)
            .await
            .expect("run"),
        0
    );

    // The next run starts on the last day seen; what it lists again is not booked again.
    standin.with(|s| s.seen.clear());
    let (s, r) = app
        .post(&format!("{pull}/run"), &sc.accountant, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(standin.with(|s| s.seen[0].contains("fromDate=2025-09-05")));
    assert_eq!(r["booked"]["created"], 0, "{r}");
    assert_eq!(app.count("payments WHERE provider = 'casso'").await, 3);
    store.close().await;
}

/// The statement came first: a credit nobody had notified was booked from it. SePay's
/// notification of that transfer, arriving later, is acknowledged as already recorded and tied
/// to that payment; under the same reference with another amount it is a conflict to review;
/// the same reference weeks later is another transfer.
async fn statement_first_flow(app: TestApp) {
    let (sc, key, hook) = sepay_school(&app, ACCOUNT).await;
    let receiving = receiving_account(&app, &sc).await;
    let csv = "STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả\n\
        1,05/09/2025,FT259200,,1.235.000,60.000.000,\"QD3CFPSA hoc phi\"\n";
    let r = import_statement(&app, &sc, receiving, csv).await;
    assert_eq!(r["created"], json!(1), "{r}");
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(
        invoice_status(&app, &sc, "QD3CFPSA").await,
        ("paid".into(), 1_235_000)
    );

    let late = sepay_txn(
        9200,
        "2025-09-05 08:00:00",
        "QD3CFPSA hoc phi",
        1_235_000,
        0,
    );
    assert_eq!(late["reference_number"], "FT259200");
    assert_eq!(
        sepay_webhook(&app, &hook, &key, &late).await,
        StatusCode::OK
    );
    assert_eq!(
        app.count("payments").await,
        1,
        "the same transfer is not booked twice"
    );
    assert_eq!(
        app.count("provider_events WHERE outcome = 'duplicate' AND payment_id IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        invoice_status(&app, &sc, "QD3CFPSA").await,
        ("paid".into(), 1_235_000)
    );

    let mut other_amount = sepay_txn(9201, "2025-09-05 09:00:00", "QD3CFPSA", 1_000_000, 0);
    other_amount["reference_number"] = json!("ft259200");
    assert_eq!(
        sepay_webhook(&app, &hook, &key, &other_amount).await,
        StatusCode::OK
    );
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(
        app.count("provider_events WHERE outcome = 'conflict'")
            .await,
        1
    );

    let mut weeks_later = sepay_txn(9202, "2025-09-25 08:00:00", "QDPHYRXY", 1_235_000, 0);
    weeks_later["reference_number"] = json!("FT259200");
    assert_eq!(
        sepay_webhook(&app, &hook, &key, &weeks_later).await,
        StatusCode::OK
    );
    assert_eq!(
        app.count("payments").await,
        2,
        "a reference reused weeks later is new money"
    );
}

crate::on_both_backends!(statement_first, statement_first_flow);
crate::on_both_backends!(sepay_pull, sepay_flow);
crate::on_both_backends!(casso_pull, casso_flow);

/// The API key goes only where base_url says, over HTTPS (plain HTTP only to this machine), and
/// a redirect is a failed run, not a request to wherever it points.
async fn pull_target_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let key = secrets()["sepay"]["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let (pa, _) = account(&app, &sc, "sepay", ACCOUNT, &key, None).await;
    receiving_account(&app, &sc).await;
    let (standin, base) = stand_in().await;
    let pull = format!("/api/v1/provider-accounts/{pa}/pull");

    for bad in [
        "http://example.com",
        "http://10.0.0.1:8080/",
        "http://192.168.1.10/",
        "http://my.sepay.vn/",
        "ws://127.0.0.1/",
    ] {
        let (s, b) = put(
            &app,
            &pull,
            ADMIN,
            json!({"api_key": PULL_KEY, "base_url": bad}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
        assert_eq!(b["error"]["code"], "invalid_base_url", "{b}");
    }
    assert_eq!(app.count("pull_sources").await, 0);
    let port = base.rsplit(':').next().expect("port");
    for good in [
        "https://my.sepay.vn".to_string(),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
        base.clone(),
    ] {
        let (s, b) = put(
            &app,
            &pull,
            ADMIN,
            json!({"api_key": PULL_KEY, "base_url": good, "cursor": "9000"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{good}: {b}");
        assert_eq!(b["base_url"], json!(good));
    }

    // A redirect, even back to the same request, is not followed and not retried.
    standin.with(|sc| {
        sc.sepay = vec![sepay_txn(
            9001,
            "2025-09-03 09:00:00",
            "IBFT QD3CFPSA NGUYEN VAN BO hoc phi",
            1_235_000,
            0,
        )];
        sc.trouble = VecDeque::from([Trouble::Redirect]);
    });
    let run = format!("{pull}/run");
    let (s, r) = app.post(&run, &sc.accountant, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let error = r["error"].as_str().expect("error");
    assert!(error.contains("redirect") && error.contains("302"), "{r}");
    assert_eq!(standin.with(|sc| sc.seen.len()), 1, "one request, no other");
    assert_eq!(app.count("payments").await, 0);
    let (_, src) = app.get(&pull, &sc.accountant).await;
    assert_eq!(
        (src["last_error"].as_str(), src["failures"].as_i64()),
        (Some(error), Some(1)),
        "{src}"
    );

    // A plain-HTTP address stored before the rule existed is refused at run time, unasked.
    app.execute_sql(&format!(
        "UPDATE pull_sources SET base_url = 'http://example.com' WHERE provider_account_id = {pa}"
    ))
    .await
    .expect("old base_url");
    standin.with(|sc| sc.seen.clear());
    let (s, r) = app.post(&run, &sc.accountant, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(r["error"].as_str().expect("error").contains("https"), "{r}");
    assert_eq!(app.count("payments").await, 0);

    // Back on the stand-in, the same run books the transfer.
    let (s, _) = put(
        &app,
        &pull,
        ADMIN,
        json!({"base_url": base, "cursor": "9000"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, r) = app.post(&run, &sc.accountant, json!({})).await;
    assert_eq!(
        (r["error"].clone(), r["booked"]["created"].clone()),
        (Value::Null, json!(1)),
        "{r}"
    );
    assert_eq!(standin.with(|sc| sc.seen.len()), 1, "{r}");
}

crate::on_both_backends!(pull_target, pull_target_flow);
