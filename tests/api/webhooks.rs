//! Payment notifications through `/webhooks/{provider}/{account_id}`, with the senders' own
//! signed samples (fixtures/providers): verified, archived, recorded exactly once, acknowledged in
//! each sender's format; tampered, replayed, oversized and conflicting deliveries change nothing.

use crate::helpers::{School, TestApp, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/fixtures/providers/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

pub(crate) fn secrets() -> Value {
    serde_json::from_str(&fixture("secrets.json")).expect("secrets")
}

/// The September fixture makes QD3CFPSA, QDPHYRXY, … the codes of this school's invoices,
/// which the provider samples pay.
pub(crate) async fn school_with_invoices(app: &TestApp) -> School {
    let sc = app.school("WHK", "QD").await;
    let (s, b) = app.import_fixture(&sc, "thcs-2025-09.csv").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    sc
}

/// A school with the September invoices and a SePay account watching `bank_account`:
/// (school, the account's API key, its webhook path).
pub(crate) async fn sepay_school(app: &TestApp, bank_account: &str) -> (School, String, String) {
    let sc = school_with_invoices(app).await;
    let key = secrets()["sepay"]["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let (_, path) = account(app, &sc, "sepay", bank_account, &key, None).await;
    (sc, key, path)
}

pub(crate) async fn account(
    app: &TestApp,
    sc: &School,
    provider: &str,
    account: &str,
    secret: &str,
    access_key: Option<&str>,
) -> (i64, String) {
    let (s, b) = app
        .post(&format!("/api/v1/schools/{}/provider-accounts", sc.school_id), ADMIN,
            json!({"provider": provider, "account": account, "label": provider, "secret": secret, "access_key": access_key}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(!b.to_string().contains(secret), "a secret is never echoed");
    (
        b["id"].as_i64().expect("id"),
        b["webhook_path"].as_str().expect("path").to_string(),
    )
}

/// Posts a `{"headers", "body"}` fixture (or a raw body) to a webhook path.
async fn deliver(app: &TestApp, path: &str, headers: &Value, body: &str) -> (StatusCode, String) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .body(body.to_string())
        .header("content-type", "application/json");
    if let Some(h) = headers.as_object() {
        for (k, v) in h {
            req = req.header(k.as_str(), v.as_str().expect("header"));
        }
    }
    let r = req.send().await.expect("send");
    (r.status(), r.text().await.expect("text"))
}

pub(crate) async fn invoice_status(app: &TestApp, sc: &School, code: &str) -> (String, i64) {
    let (_, inv) = app
        .get(&format!("/api/v1/payment-codes/{code}"), &sc.accountant)
        .await;
    (
        inv["status"].as_str().expect("status").to_string(),
        inv["paid"].as_i64().expect("paid"),
    )
}

async fn vnpay_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let s = secrets();
    let (_, path) = account(
        &app,
        &sc,
        "vnpay",
        "FEERTEST",
        s["vnpay"]["hash_secret"].as_str().expect("secret"),
        None,
    )
    .await;
    let ipn = fixture("vnpay/ipn-success.query");
    let get = |q: String| {
        let url = format!("{}{path}?{}", app.base, q.trim());
        let client = app.client.clone();
        async move {
            let r = client.get(url).send().await.expect("send");
            (r.status(), r.json::<Value>().await.expect("json"))
        }
    };
    let (status, ack) = get(ipn.clone()).await;
    assert_eq!(
        (status, ack["RspCode"].as_str()),
        (StatusCode::OK, Some("00")),
        "{ack}"
    );
    assert_eq!(
        invoice_status(&app, &sc, "QD3CFPSA").await,
        ("paid".to_string(), 1235000)
    );
    // VNPay retries until it hears 00 or 02: a retry is "already confirmed" and records nothing.
    let (_, ack) = get(ipn.clone()).await;
    assert_eq!(ack["RspCode"], "02");
    assert_eq!(app.count("payments").await, 1);
    // A tampered amount or hash is refused with 97 and changes nothing.
    let tampered = ipn.replace("vnp_Amount=123500000", "vnp_Amount=123600000");
    let (_, ack) = get(tampered).await;
    assert_eq!(ack["RspCode"], "97");
    let (_, ack) = get(format!("{}&vnp_Extra=1", ipn.trim())).await;
    assert_eq!(ack["RspCode"], "97");
    // A cancelled payment is an event, not a payment.
    let (_, ack) = get(fixture("vnpay/ipn-cancelled.query")).await;
    assert_eq!(ack["RspCode"], "00");
    assert_eq!(app.count("payments").await, 1);
    let (_, events) = app
        .get(
            &format!("/api/v1/schools/{}/provider-events", sc.school_id),
            &sc.auditor,
        )
        .await;
    let outcomes: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["outcome"].as_str().expect("o"))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            "recorded",
            "duplicate",
            "bad_signature",
            "bad_signature",
            "failed"
        ]
    );
    let (_, p) = app
        .get(
            &format!(
                "/api/v1/schools/{}/payments/{}",
                sc.school_id, events[0]["payment_id"]
            ),
            &sc.accountant,
        )
        .await;
    assert_eq!(
        (
            p["channel"].as_str(),
            p["provider"].as_str(),
            p["receipt_no"].as_str().map(|r| r.ends_with("-000001"))
        ),
        (Some("card"), Some("vnpay"), Some(true))
    );
    // Unknown account: refused as an order VNPay's merchant here does not have.
    let (_, ack) = {
        let r = app
            .client
            .get(format!("{}/webhooks/vnpay/999999?{}", app.base, ipn.trim()))
            .send()
            .await
            .expect("send");
        (r.status(), r.json::<Value>().await.expect("json"))
    };
    assert_eq!(ack["RspCode"], "01");
}

async fn sepay_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let s = secrets();
    let key = s["sepay"]["api_key"].as_str().expect("key");
    let (_, path) = account(&app, &sc, "sepay", "6868123456789", key, None).await;
    let f: Value = serde_json::from_str(&fixture("sepay/transfer-in.json")).expect("json");
    let body = f["body"].as_str().expect("body").to_string();
    // The same delivery eight times at once, as retries and parallel instances would send it.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, h, b) = (
            app.client.clone(),
            format!("{}{path}", app.base),
            f["headers"].clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("authorization", h["Authorization"].as_str().expect("auth"))
                .header("content-type", "application/json")
                .body(b)
                .send()
                .await
                .expect("send");
            (r.status(), r.json::<Value>().await.expect("json"))
        }));
    }
    for t in tasks {
        let (status, ack) = t.await.expect("task");
        assert_eq!(
            (status, ack["success"].as_bool()),
            (StatusCode::OK, Some(true))
        );
    }
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(
        app.count("provider_events WHERE outcome = 'duplicate'")
            .await,
        7
    );
    assert_eq!(invoice_status(&app, &sc, "QD3CFPSA").await.0, "paid");
    // The accountant enters the same transfer by hand: recognised, not booked twice.
    let (s, manual) = app.post(&format!("/api/v1/schools/{}/payments", sc.school_id), &sc.accountant,
        json!({"channel": "bank_transfer", "provider": "sepay", "provider_ref": "24013587", "amount": 1235000})).await;
    assert_eq!(s, StatusCode::OK, "{manual}");
    assert_eq!(app.count("payments").await, 1);
    // The payment code only in a noisy memo still finds its invoice.
    let f2: Value =
        serde_json::from_str(&fixture("sepay/transfer-in-memo-only.json")).expect("json");
    let (status, _) = deliver(
        &app,
        &path,
        &f2["headers"],
        f2["body"].as_str().expect("body"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.count("payments").await, 2);
    assert_eq!(app.count("allocations").await, 2);
    // Money going out is archived, never a payment.
    let out: Value = serde_json::from_str(&fixture("sepay/transfer-out.json")).expect("json");
    deliver(
        &app,
        &path,
        &out["headers"],
        out["body"].as_str().expect("body"),
    )
    .await;
    assert_eq!(app.count("payments").await, 2);
    // Same SePay id with another amount: a conflict for review, not an overwrite or a second payment.
    let changed = body.replace("\"transferAmount\":1235000", "\"transferAmount\":1236000");
    assert_ne!(changed, body);
    let (status, _) = deliver(&app, &path, &f["headers"], &changed).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.count("payments").await, 2);
    assert_eq!(
        app.count("provider_events WHERE outcome = 'conflict'")
            .await,
        1
    );
    // A wrong key is refused, and the archive never stores the key.
    let (status, _) = deliver(
        &app,
        &path,
        &json!({"Authorization": "Apikey not-the-key"}),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count(&format!("provider_events WHERE headers LIKE '%{key}%'"))
            .await,
        0
    );
    assert_eq!(
        app.count(&format!("provider_secrets WHERE sealed LIKE '%{key}%'"))
            .await,
        0
    );
    // Garbage of every kind: a 4xx in SePay's format, archived, nothing written, never a 500.
    let big = "x".repeat(10 * 1024 * 1024);
    for junk in [big.as_str(), "{\"id\":", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "{\"id\":\"x\",\"transferAmount\":\"1000\"}"] {
        let (status, _) = deliver(&app, &path, &f["headers"], junk).await;
        assert!(status.is_client_error(), "{status}");
    }
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header(
            "authorization",
            f["headers"]["Authorization"].as_str().expect("a"),
        )
        .body(vec![0xffu8, 0xfe, 0x00])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count("payments").await, 2);
    assert!(
        app.count("provider_events WHERE outcome = 'too_large'")
            .await
            == 1
    );
}

async fn json_senders_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let s = secrets();
    let (_, momo) = account(
        &app,
        &sc,
        "momo",
        "MOMOFEER20250901",
        s["momo"]["secret_key"].as_str().expect("k"),
        s["momo"]["access_key"].as_str(),
    )
    .await;
    let (status, text) =
        deliver(&app, &momo, &Value::Null, &fixture("momo/ipn-success.json")).await;
    assert_eq!((status, text.as_str()), (StatusCode::NO_CONTENT, ""));
    let (status, _) = deliver(
        &app,
        &momo,
        &Value::Null,
        &fixture("momo/ipn-success.json").replace("1235000", "1235001"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, zalo) = account(
        &app,
        &sc,
        "zalopay",
        "99999",
        s["zalopay"]["key2"].as_str().expect("k"),
        None,
    )
    .await;
    let (status, text) = deliver(
        &app,
        &zalo,
        &Value::Null,
        &fixture("zalopay/callback-success.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("json")["return_code"],
        1
    );
    let (_, text) = deliver(
        &app,
        &zalo,
        &Value::Null,
        &fixture("zalopay/callback-success.json"),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("json")["return_code"],
        2
    );
    assert_eq!(app.count("payments").await, 2);
    assert_eq!(
        app.count("payments WHERE provider = 'momo' AND channel = 'ewallet'")
            .await,
        1
    );
}

async fn timestamped_senders_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let s = secrets();
    // A secret that decodes to a guessable key is refused.
    let (status, _) = app.post(&format!("/api/v1/schools/{}/provider-accounts", sc.school_id), ADMIN,
        json!({"provider": "standard_webhooks", "account": "X1", "label": "weak", "secret": "whsec_AAAAAAAA"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, sw) = account(
        &app,
        &sc,
        "standard_webhooks",
        "0071000123456",
        s["standard_webhooks"]["secret"].as_str().expect("k"),
        None,
    )
    .await;
    let f: Value =
        serde_json::from_str(&fixture("standard-webhooks/payment-succeeded.json")).expect("json");
    let (status, _) = deliver(&app, &sw, &f["headers"], f["body"].as_str().expect("body")).await;
    assert_eq!(status, StatusCode::OK);
    let mut replay = f["headers"].clone();
    replay["webhook-timestamp"] = json!("1757467000");
    let (status, _) = deliver(&app, &sw, &replay, f["body"].as_str().expect("body")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a changed timestamp breaks the signature"
    );
    assert_eq!(app.count("payments").await, 1);
}

async fn casso_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let s = secrets();
    let (_, casso) = account(
        &app,
        &sc,
        "casso",
        "0071000123456",
        s["casso"]["checksum_key"].as_str().expect("k"),
        None,
    )
    .await;
    let c: Value = serde_json::from_str(&fixture("casso/transfer-in.json")).expect("json");
    let (status, _) = deliver(
        &app,
        &casso,
        &c["headers"],
        c["body"].as_str().expect("body"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A retry is recognised by Casso's own id (its bank reference may be empty or repeat).
    let (status, _) = deliver(
        &app,
        &casso,
        &c["headers"],
        c["body"].as_str().expect("body"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(
        app.count("provider_events WHERE outcome = 'duplicate'")
            .await,
        1
    );
}

/// A burst of distinct transfers, each delivered twice at once, all naming one invoice: the
/// deliveries are written in batches, yet the invoice is paid exactly its total, the rest stays
/// as credit, receipts are gapless and every delivery is archived once with its outcome.
async fn burst_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;
    let (_, before) = invoice_status(&app, &sc, "QD3CFPSA").await;
    assert_eq!(before, 0);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let body = json!({"id": 9000 + i, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
            "accountNumber": "6868123456789", "code": null, "content": format!("QD3CFPSA dong lan {i}"),
            "transferType": "in", "transferAmount": 200000, "referenceCode": format!("FT{i}"), "description": ""})
        .to_string();
        for _ in 0..2 {
            let (client, url, auth, body) = (
                app.client.clone(),
                format!("{}{path}", app.base),
                format!("Apikey {key}"),
                body.clone(),
            );
            tasks.push(tokio::spawn(async move {
                client
                    .post(url)
                    .header("authorization", auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("send")
                    .status()
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(app.count("payments").await, 20);
    assert_eq!(app.count("provider_events").await, 40);
    assert_eq!(
        app.count("provider_events WHERE outcome = 'recorded'")
            .await,
        20
    );
    assert_eq!(
        app.count("provider_events WHERE outcome = 'duplicate'")
            .await,
        20
    );
    // 1.235.000 ₫ owed: six transfers pay 200.000 ₫, the seventh 35.000 ₫, the rest is credit.
    assert_eq!(
        invoice_status(&app, &sc, "QD3CFPSA").await,
        ("paid".to_string(), 1_235_000)
    );
    assert_eq!(app.count("allocations").await, 7);
    let (_, credit) = app
        .get(
            &format!(
                "/api/v1/schools/{}/payments?with_credit=true&limit=100",
                sc.school_id
            ),
            &sc.accountant,
        )
        .await;
    let credit: i64 = credit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["unallocated_credit"].as_i64().expect("credit"))
        .sum();
    assert_eq!(credit, 20 * 200_000 - 1_235_000);
    assert_eq!(
        app.count(
            "(SELECT DISTINCT receipt_seq FROM payments WHERE receipt_seq BETWEEN 1 AND 20) AS r"
        )
        .await,
        20,
        "receipts 1..20, no gap, no repeat"
    );
    let (_, chains) = app.get("/api/v1/audit/verify", ADMIN).await;
    assert!(
        chains
            .as_array()
            .expect("chains")
            .iter()
            .all(|c| c["intact"] == json!(true)),
        "{chains}"
    );
}

crate::on_both_backends!(burst, burst_flow);

/// One batch holding a new payment, its retry, a conflicting copy, an allocation over the
/// balance and a cash payment: each gets its own answer, and the refusals write nothing.
async fn batch_flow(app: TestApp) {
    use feerecon::domain::fee::Channel;
    use feerecon::domain::money::Vnd;
    use feerecon::store::ledger::{NewPayment, Recorded};
    use feerecon::store::record::{BatchItem, Job};
    let sc = school_with_invoices(&app).await;
    let store = feerecon::store::Store::connect(&app.db_url)
        .await
        .expect("store");
    let school = store.school_by_code(&sc.code).await.expect("school");
    let code = feerecon::domain::code::PaymentCode::parse("QD3CFPSA").expect("code");
    let (invoice, owed, _) = store
        .invoice_balance_by_code(school.id, &code)
        .await
        .expect("lookup")
        .expect("invoice");
    let payment = |reference: Option<&str>, amount: i64, allocate: i64| NewPayment {
        channel: if reference.is_some() {
            Channel::BankTransfer
        } else {
            Channel::Cash
        },
        provider: if reference.is_some() { "sepay" } else { "cash" }.into(),
        provider_ref: reference.map(str::to_string),
        bank_ref: None,
        payer_name: None,
        memo: None,
        amount: Vnd::new(amount).expect("amount"),
        received_at: chrono::Utc::now(),
        reported_fee: None,
        allocate: feerecon::plan::intake::Allocate::Given {
            allocations: vec![(invoice, Vnd::new(allocate).expect("allocation"))],
            method: feerecon::domain::ledger::AllocationMethod::Manual,
        },
        reported_fee_bearer: None,
        credited_account: None,
    };
    let job = |p| BatchItem {
        job: Some(Job {
            actor: "test".into(),
            school: school.clone(),
            payment: p,
        }),
        event: None,
    };
    let mut items = vec![
        job(payment(Some("A:1"), 500_000, 500_000)),
        job(payment(Some("A:1"), 500_000, 500_000)),
        job(payment(Some("A:1"), 600_000, 500_000)),
        job(payment(Some("A:2"), 2_000_000, 2_000_000)),
        job(payment(None, 100_000, 100_000)),
    ];
    let results: Vec<Option<Result<Recorded, feerecon::error::Error>>> = store
        .record_batch(&mut items)
        .await
        .expect("batch")
        .into_iter()
        .map(|o| o.map(|o| o.recorded()))
        .collect();
    let first = match results[0] {
        Some(Ok(Recorded::Created(id))) => id,
        ref other => panic!("{other:?}"),
    };
    assert!(matches!(results[1], Some(Ok(Recorded::Duplicate(id))) if id == first));
    assert!(matches!(&results[2], Some(Err(e)) if e.to_string().contains("other details")));
    assert!(
        matches!(&results[3], Some(Err(e)) if e.to_string().contains("still owed")),
        "{:?}",
        results[3]
    );
    assert!(matches!(results[4], Some(Ok(Recorded::Created(_)))));
    assert_eq!(app.count("payments").await, 2);
    assert_eq!(invoice_status(&app, &sc, "QD3CFPSA").await.1, 600_000);
    assert!(owed.dong() > 600_000);
    assert_eq!(
        app.count("audit_log WHERE action = 'payment.record'").await,
        2
    );
    store.close().await;
}

crate::on_both_backends!(batch, batch_flow);

/// Control characters a sender puts in its text (NUL included, which PostgreSQL cannot store in
/// text) never stop a delivery: free text is kept without them, an id with them is refused.
async fn control_characters_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;
    let auth = json!({"Authorization": format!("Apikey {key}")});
    let body = json!({"id": 77001, "gateway": "MB\u{0}Bank", "transactionDate": "2025-09-10 08:30:00",
        "accountNumber": "6868123456789", "code": null, "content": "QD3CFPSA\u{0} hoc\u{7}phi\u{1b}",
        "transferType": "in", "transferAmount": 1235000, "referenceCode": "FT\u{0}77", "description": "x\u{0}"})
    .to_string();
    assert!(body.contains("\\u0000"), "the body carries an escaped NUL");
    let (status, ack) = deliver(&app, &path, &auth, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(invoice_status(&app, &sc, "QD3CFPSA").await.0, "paid");
    assert_eq!(
        app.count("payments WHERE memo = 'QD3CFPSA hoc phi' AND bank_ref = 'FT 77'")
            .await,
        1
    );
    // The same again: already recorded, acknowledged.
    let (status, _) = deliver(&app, &path, &auth, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.count("payments").await, 1);

    let bad_id =
        json!({"id": "77\u{0}002", "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
        "accountNumber": "6868123456789", "content": "QDPHYRXY", "transferType": "in",
        "transferAmount": 1235000, "referenceCode": "FT78"})
        .to_string();
    let (status, ack) = deliver(&app, &path, &auth, &bad_id).await;
    assert!(status.is_client_error(), "{status} {ack}");
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(
        app.count("provider_events WHERE outcome = 'rejected'")
            .await,
        1
    );
}

crate::on_both_backends!(control_characters, control_characters_flow);

/// The database drops every connection (a restart, a failover): a delivery in flight may be
/// answered "retry later", never recorded twice, and the sender's retry is recorded.
async fn lost_connections_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;
    let auth = json!({"Authorization": format!("Apikey {key}")});
    let transfer = |id: i64, code: &str| {
        json!({"id": id, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
            "accountNumber": "6868123456789", "content": code, "transferType": "in",
            "transferAmount": 1235000, "referenceCode": format!("FT{id}")})
        .to_string()
    };
    let (status, _) = deliver(&app, &path, &auth, &transfer(78001, "QD3CFPSA")).await;
    assert_eq!(status, StatusCode::OK);
    if app.backend == crate::helpers::Backend::Postgres {
        let terminated = app
            .count(
                "(SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()) x WHERE t",
            )
            .await;
        assert!(terminated >= 1, "the service's connections are dropped");
    }
    let second = transfer(78002, "QDPHYRXY");
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (status, _) = deliver(&app, &path, &auth, &second).await;
        answers.push(status);
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answers:?}");
    }
    assert_eq!(answers.last(), Some(&StatusCode::OK), "{answers:?}");
    assert!(
        answers.len() <= 2,
        "one failed attempt at most: {answers:?}"
    );
    assert_eq!(app.count("payments").await, 2);
    assert_eq!(invoice_status(&app, &sc, "QDPHYRXY").await.0, "paid");
}

crate::on_both_backends!(lost_connections, lost_connections_flow);

crate::on_both_backends!(vnpay, vnpay_flow);
crate::on_both_backends!(sepay, sepay_flow);
crate::on_both_backends!(momo_zalopay, json_senders_flow);
crate::on_both_backends!(
    standard_webhooks,
    timestamped_senders_flow,
    Some(signed_at("standard-webhooks/payment-succeeded.json"))
);
crate::on_both_backends!(casso, casso_flow, Some(signed_at("casso/transfer-in.json")));

/// The moment a sample was signed, from its own signed timestamp, so it can be replayed.
fn signed_at(path: &str) -> chrono::DateTime<chrono::Utc> {
    let f: Value = serde_json::from_str(&fixture(path)).expect("json");
    match f["headers"]["webhook-timestamp"].as_str() {
        Some(ts) => chrono::DateTime::from_timestamp(ts.parse().expect("ts"), 0).expect("time"),
        None => {
            let sig = f["headers"]["X-Casso-Signature"]
                .as_str()
                .expect("casso header");
            let ms: i64 = sig
                .split(',')
                .next()
                .and_then(|t| t.strip_prefix("t="))
                .expect("t")
                .parse()
                .expect("ms");
            chrono::DateTime::from_timestamp_millis(ms).expect("time")
        }
    }
}
