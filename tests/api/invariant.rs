//! Every payment is accounted for: allocated, or in the review queue. Whatever brings it (a
//! notification, the cash desk, a statement), and wherever the database fails while it is
//! written, there is never a payment with credit that nobody will see.

use crate::helpers::{Backend, TestApp};
use crate::webhooks::sepay_school;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ACCOUNT: &str = "6868123456789";

async fn sepay(
    app: &TestApp,
    path: &str,
    key: &str,
    id: i64,
    memo: &str,
    amount: i64,
) -> StatusCode {
    app.client
        .post(format!("{}{path}", app.base))
        .header("authorization", format!("Apikey {key}"))
        .json(
            &json!({"id": id, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
            "accountNumber": ACCOUNT, "code": null, "content": memo, "transferType": "in",
            "transferAmount": amount, "referenceCode": format!("FT{id}"), "description": ""}),
        )
        .send()
        .await
        .expect("send")
        .status()
}

async fn unaccounted(app: &TestApp) -> Value {
    let r = app
        .client
        .get(format!("{}/readyz?deep=1", app.base))
        .send()
        .await
        .expect("readyz");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    body["unaccounted_payments"].clone()
}

/// What the suite's own checks see, straight from the database.
async fn orphans(app: &TestApp) -> i64 {
    app.count(
        "payments p WHERE p.amount > 0 AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.payment_id = p.id)
         AND NOT EXISTS (SELECT 1 FROM exceptions e WHERE e.payment_id = p.id)",
    )
    .await
}

async fn every_path_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, ACCOUNT).await;
    // A code, a name the engine cannot place, a memo with nothing in it.
    assert_eq!(
        sepay(&app, &path, &key, 1, "QD3CFPSA hoc phi", 1_235_000).await,
        StatusCode::OK
    );
    assert_eq!(
        sepay(&app, &path, &key, 2, "hoc phi be Ngoc Han", 700_000).await,
        StatusCode::OK
    );
    assert_eq!(
        sepay(&app, &path, &key, 3, "chuyen tien", 50_000).await,
        StatusCode::OK
    );
    // Cash for no invoice.
    let (s, b) = app
        .post(
            &format!("/api/v1/schools/{}/payments", sc.school_id),
            &sc.cashier,
            json!({"channel": "cash", "amount": 100_000, "allocations": []}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // A statement line nobody notified.
    let acct = app
        .approved_account(&sc, "970422", ACCOUNT, "TRUONG THCS LE QUY DON")
        .await;
    let csv = "STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả\n\
        1,11/09/2025,FT990001,,300.000,60.000.000,\"ung ho quy lop\"\n";
    let (s, b) = app
        .upload_statement(
            &sc,
            &acct,
            "?format=vietcombank",
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["outcomes"][0]["outcome"], "created", "{b}");
    assert!(b["outcomes"][0]["exception_id"].is_i64(), "{b}");
    assert_eq!(app.count("payments").await, 5);
    assert_eq!(orphans(&app).await, 0);
    assert_eq!(unaccounted(&app).await, 0);
}

/// The database refuses one step of writing a delivery (a trigger raises on one table's
/// insert): the delivery is answered "retry later", nothing of it is written, and once the
/// database takes it again the retry is recorded whole.
async fn failure_at_every_step_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, ACCOUNT).await;
    // Each step with an invoice of its own, so that every one is allocated (or reviewed).
    let steps = [
        ("payments", "QD3CFPSA hoc phi", 1_235_000),
        ("payment_fees", "QDPHYRXY hoc phi", 467_500),
        ("allocations", "QDAQGU4C hoc phi", 1_566_800),
        ("exceptions", "hoc phi be Ngoc Han", 700_000),
        ("audit_log", "QDJ3HYET hoc phi", 1_385_000),
        ("provider_events", "hoc phi be Ngoc Han lop 7A1", 700_000),
    ];
    for (n, (table, memo, amount)) in steps.iter().enumerate() {
        let id = 100 + n as i64;
        let (create, drop) = match app.backend {
            Backend::Sqlite => (
                format!("CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'failing {table}'); END"),
                format!("DROP TRIGGER fail_{table}"),
            ),
            Backend::Postgres => (
                format!("CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION test_fail()"),
                format!("DROP TRIGGER fail_{table} ON {table}"),
            ),
        };
        if app.backend == Backend::Postgres {
            app.execute_sql(
                "CREATE OR REPLACE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'failing %', TG_TABLE_NAME; END $$",
            )
            .await
            .expect("function");
        }
        app.execute_sql(&create).await.expect("trigger");
        let payments = app.count("payments").await;
        let status = sepay(&app, &path, &key, id, memo, *amount).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{table}");
        assert_eq!(
            app.count("payments").await,
            payments,
            "{table}: nothing written"
        );
        assert_eq!(orphans(&app).await, 0, "{table}");
        app.execute_sql(&drop).await.expect("drop");
        let status = sepay(&app, &path, &key, id, memo, *amount).await;
        assert_eq!(status, StatusCode::OK, "{table}: the retry");
        assert_eq!(app.count("payments").await, payments + 1, "{table}");
        assert_eq!(orphans(&app).await, 0, "{table}");
    }
    assert_eq!(unaccounted(&app).await, 0);
    // Each retry was recorded once, allocated or in the queue.
    let (_, queue) = app
        .get(
            &format!(
                "/api/v1/schools/{}/exceptions?status=all&limit=100",
                sc.school_id
            ),
            &sc.accountant,
        )
        .await;
    assert!(!queue["items"].as_array().expect("items").is_empty());
}

/// A database from before the engine decided in the recording transaction: a payment with
/// credit and nothing else is found, and the sweep puts it through the engine.
async fn sweep_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, ACCOUNT).await;
    assert_eq!(
        sepay(&app, &path, &key, 7, "hoc phi be Ngoc Han", 700_000).await,
        StatusCode::OK
    );
    // As an older version left it: the exception was never opened.
    let exceptions = app.count("exceptions").await;
    assert_eq!(exceptions, 1);
    app.execute_sql(&format!(
        "INSERT INTO payments (school_id, channel, provider, provider_ref, payer_name, memo, amount, received_at, recorded_at,
            recorded_by, receipt_no, receipt_year, receipt_seq)
         VALUES ({}, 'bank_transfer', 'sepay', 'old:1', NULL, 'QDPHYRXY hoc phi', 467500, '2025-09-10T01:30:00.000000Z',
            '2025-09-10T01:30:00.000000Z', 'old', 'QD-2025-999999', 2025, 999999)",
        sc.school_id
    ))
    .await
    .expect("old payment");
    let r = app
        .client
        .get(format!("{}/readyz?deep=1", app.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "unaccounted_payments");
    let store = feerecon::store::Store::connect(&app.db_url)
        .await
        .expect("store");
    assert_eq!(store.sweep_unaccounted().await.expect("sweep"), 1);
    assert_eq!(unaccounted(&app).await, 0);
    let (status, paid) = crate::webhooks::invoice_status(&app, &sc, "QDPHYRXY").await;
    assert_eq!(
        (status.as_str(), paid),
        ("paid", 467_500),
        "allocated by its code"
    );
}

/// An integrator finds a payment by the sender's transaction id, its stored provider
/// reference, or the bank's reference.
async fn lookup_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, ACCOUNT).await;
    assert_eq!(
        sepay(&app, &path, &key, 4242, "QD3CFPSA hoc phi", 1_235_000).await,
        StatusCode::OK
    );
    assert_eq!(
        sepay(&app, &path, &key, 4243, "QDPHYRXY hoc phi", 467_500).await,
        StatusCode::OK
    );
    let list = |q: String| {
        let app = &app;
        let sc = &sc;
        async move {
            let (s, b) = app
                .get(
                    &format!("/api/v1/schools/{}/payments?{q}", sc.school_id),
                    &sc.accountant,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|p| p["provider_ref"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        }
    };
    let want = vec![format!("{ACCOUNT}:4242")];
    assert_eq!(list("txn_id=4242".into()).await, want);
    assert_eq!(list(format!("provider_ref={ACCOUNT}:4242")).await, want);
    assert_eq!(list("bank_ref=ft4242".into()).await, want);
    assert!(
        list("txn_id=424".into()).await.is_empty(),
        "a whole id, not a prefix"
    );
    let (s, _) = app
        .get(
            &format!("/api/v1/schools/{}/payments?txn_id=42%25", sc.school_id),
            &sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no pattern characters");
}

crate::on_both_backends!(every_path, every_path_flow);
crate::on_both_backends!(lookup, lookup_flow);
crate::on_both_backends!(failure_at_every_step, failure_at_every_step_flow);
crate::on_both_backends!(sweep, sweep_flow);

/// A second instance of the service on the same database.
async fn second_instance(app: &TestApp) -> String {
    let store = feerecon::store::Store::connect(&app.db_url)
        .await
        .expect("store");
    let state = feerecon::AppState::new(
        store,
        feerecon::sealer::Sealer::from_base64(crate::helpers::SEALER_KEY).expect("key"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let limits = state.server_limits.clone();
    let router = feerecon::app(state);
    tokio::spawn(async move {
        feerecon::http::server::serve(listener, router, &limits, std::future::pending()).await
    });
    base
}

/// Two instances keep their books of one school current: what one allocates, the other reads
/// before it decides, so an invoice the first paid is never paid again from a memo read by the
/// second.
async fn two_instances_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, ACCOUNT).await;
    let other = second_instance(&app).await;
    // Both instances have read the school's book.
    assert_eq!(
        sepay(&app, &path, &key, 1, "QDWVZW92 hoc phi", 10_000).await,
        StatusCode::OK
    );
    let on_other = |id: i64, memo: &'static str, amount: i64| {
        let (client, url, key) = (app.client.clone(), format!("{other}{path}"), key.clone());
        async move {
            client
                .post(url)
                .header("authorization", format!("Apikey {key}"))
                .json(&json!({"id": id, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
                    "accountNumber": ACCOUNT, "code": null, "content": memo, "transferType": "in",
                    "transferAmount": amount, "referenceCode": format!("FT{id}"), "description": ""}))
                .send()
                .await
                .expect("send")
                .status()
        }
    };
    assert_eq!(
        on_other(2, "QDWVZW92 hoc phi", 10_000).await,
        StatusCode::OK
    );
    // The other instance pays Nguyễn Minh Anh's invoice by its code.
    assert_eq!(
        on_other(3, "QD3CFPSA hoc phi", 1_235_000).await,
        StatusCode::OK
    );
    assert_eq!(
        crate::webhooks::invoice_status(&app, &sc, "QD3CFPSA").await,
        ("paid".to_string(), 1_235_000)
    );
    // This instance now reads a transfer naming her for exactly that balance: her invoice is
    // paid, so it is not paid again.
    assert_eq!(
        sepay(
            &app,
            &path,
            &key,
            4,
            "hoc phi Nguyen Minh Anh 6A1",
            1_235_000
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        crate::webhooks::invoice_status(&app, &sc, "QD3CFPSA").await,
        ("paid".to_string(), 1_235_000),
        "never paid twice"
    );
    assert_eq!(orphans(&app).await, 0);
}

crate::on_both_backends!(two_instances, two_instances_flow);
