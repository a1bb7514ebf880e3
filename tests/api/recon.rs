//! Reconciliation through the API: transfers without a payment code are matched from their memo
//! when it leaves no doubt, and otherwise wait in the review queue with ranked suggestions; an
//! accountant matches or dismisses, and a dismissed suggestion never comes back.

use crate::helpers::{School, TestApp};
use crate::webhooks::{invoice_status, sepay_school};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A SePay transfer into the school's account with `memo`; its payment id.
async fn transfer(app: &TestApp, path: &str, key: &str, id: i64, memo: &str, amount: i64) -> i64 {
    let body = json!({"id": id, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
        "accountNumber": "6868123456789", "code": null, "content": memo, "transferType": "in",
        "transferAmount": amount, "referenceCode": format!("FT{id}"), "description": ""});
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header("authorization", format!("Apikey {key}"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let n: i64 = app
        .count(&format!(
            "payments WHERE provider_ref = '6868123456789:{id}'"
        ))
        .await;
    assert_eq!(n, 1);
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
    let pid: i64 = sqlx::query_scalar("SELECT id FROM payments WHERE provider_ref = $1")
        .bind(format!("6868123456789:{id}"))
        .fetch_one(&pool)
        .await
        .expect("payment");
    pool.close().await;
    pid
}

/// (invoice id, payment code) of a student's invoice.
async fn invoice_of(app: &TestApp, sc: &School, student_code: &str) -> (i64, String) {
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
    let row: (i64, String) = sqlx::query_as(
        "SELECT i.id, i.payment_code FROM invoices i JOIN students s ON s.id = i.student_id WHERE i.school_id = $1 AND s.student_code = $2",
    )
    .bind(sc.school_id)
    .bind(student_code)
    .fetch_one(&pool)
    .await
    .expect("invoice");
    pool.close().await;
    row
}

async fn open_exceptions(app: &TestApp, sc: &School) -> Vec<Value> {
    let (s, b) = app
        .get(
            &format!("/api/v1/schools/{}/exceptions", sc.school_id),
            &sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"].as_array().expect("items").clone()
}

async fn review_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;

    // Name and class, no code, the exact balance: allocated automatically.
    transfer(
        &app,
        &path,
        &key,
        1,
        "MBVCB.1234567.hoc phi Tran Thi Bich Ngoc lop 7A2.CT tu 0011 NGUYEN VAN BO",
        1_566_800,
    )
    .await;
    assert_eq!(
        invoice_status(&app, &sc, "QDAQGU4C").await,
        ("paid".to_string(), 1_566_800)
    );
    assert_eq!(app.count("allocations WHERE method = 'recon'").await, 1);
    assert!(open_exceptions(&app, &sc).await.is_empty());

    // The student is clear, the amount is not the balance: reviewed, with the invoice suggested.
    let huy = transfer(&app, &path, &key, 2, "nop tien hoc Pham Gia Huy", 500_000).await;
    let queue = open_exceptions(&app, &sc).await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    let e = &queue[0];
    assert_eq!(
        (e["payment_id"].as_i64(), e["kind"].as_str()),
        (Some(huy), Some("amount_mismatch"))
    );
    let (huy_invoice, huy_code) = invoice_of(&app, &sc, "HS0005").await;
    let first = &e["suggestions"][0];
    assert_eq!(
        first["allocations"][0]["invoice_id"].as_i64(),
        Some(huy_invoice)
    );
    assert!(
        first["evidence"]
            .as_str()
            .expect("evidence")
            .contains("name"),
        "{first}"
    );

    // Refused: a cashier, more than the payment, another school's invoice, nothing named.
    let url = format!(
        "/api/v1/schools/{}/exceptions/{}/match",
        sc.school_id, e["id"]
    );
    let (s, _) = app
        .post(
            &url,
            &sc.cashier,
            json!({"allocations": [{"invoice_id": huy_invoice, "amount": 500000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = app
        .post(
            &url,
            &sc.accountant,
            json!({"allocations": [{"invoice_id": huy_invoice, "amount": 600000}]}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("allocation_exceeds_payment")),
        "{b}"
    );
    let other = app.school("OTH", "QE").await;
    let (st, _) = app.import_fixture(&other, "thcs-2025-09.csv").await;
    assert_eq!(st, StatusCode::CREATED);
    let (foreign, _) = invoice_of(&app, &other, "HS0001").await;
    let (s, b) = app
        .post(
            &url,
            &sc.accountant,
            json!({"allocations": [{"invoice_id": foreign, "amount": 1000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "another school's invoice: {b}");
    let (s, _) = app
        .post(&url, &sc.accountant, json!({"allocations": []}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("allocations").await, 1, "refusals write nothing");

    // The accountant books it as a partial payment.
    let (s, b) = app.post(&url, &sc.accountant, json!({"allocations": [{"invoice_id": huy_invoice, "amount": 500000}], "note": "phone call with the parent"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["status"].as_str(), b["resolved_by"].is_string()),
        (Some("matched"), true)
    );
    assert_eq!(invoice_status(&app, &sc, &huy_code).await.1, 500_000);
    let (s, _) = app
        .post(
            &url,
            &sc.accountant,
            json!({"allocations": [{"invoice_id": huy_invoice, "amount": 1}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a closed exception stays closed");

    // A given name alone: suggestions only. Dismissed, that invoice is never suggested again.
    let phuc = transfer(&app, &path, &key, 3, "hoc phi be Ngoc Han", 700_000).await;
    let queue = open_exceptions(&app, &sc).await;
    let e = queue
        .iter()
        .find(|e| e["payment_id"].as_i64() == Some(phuc))
        .expect("exception")
        .clone();
    let suggested: Vec<i64> = e["suggestions"]
        .as_array()
        .expect("s")
        .iter()
        .map(|s| s["allocations"][0]["invoice_id"].as_i64().expect("id"))
        .collect();
    assert!(!suggested.is_empty(), "{e}");
    let dismiss = format!(
        "/api/v1/schools/{}/exceptions/{}/dismiss",
        sc.school_id, e["id"]
    );
    let (s, _) = app
        .post(
            &dismiss,
            &sc.accountant,
            json!({"reason": "x", "invoice_ids": [huy_invoice + 9999]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "only suggested invoices can be dismissed"
    );
    let (s, b) = app
        .post(
            &dismiss,
            &sc.accountant,
            json!({"reason": "not our pupil: the parent confirmed", "invoice_ids": [suggested[0]]}),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("dismissed")),
        "{b}"
    );
    let (s, r) = app
        .post(
            &format!("/api/v1/schools/{}/payments/{phuc}/reconcile", sc.school_id),
            &sc.accountant,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    if let Some(id) = r["exception_id"].as_i64() {
        let (_, again) = app
            .get(
                &format!("/api/v1/schools/{}/exceptions/{id}", sc.school_id),
                &sc.accountant,
            )
            .await;
        let ids: Vec<i64> = again["suggestions"]
            .as_array()
            .expect("s")
            .iter()
            .flat_map(|s| s["allocations"].as_array().cloned().unwrap_or_default())
            .map(|a| a["invoice_id"].as_i64().expect("id"))
            .collect();
        assert!(!ids.contains(&suggested[0]), "{again}");
    } else {
        assert_eq!(r["result"], "nothing", "{r}");
    }
    assert_eq!(
        app.count("allocations").await,
        2,
        "dismissing moves no money"
    );

    // Money that is not for this school goes back: marked for refund, never more than the credit.
    transfer(&app, &path, &key, 4, "tra tien hang thang 10", 120_000).await;
    let e = open_exceptions(&app, &sc)
        .await
        .into_iter()
        .find(|e| e["amount"] == json!(120000))
        .expect("exception");
    let refund = format!(
        "/api/v1/schools/{}/exceptions/{}/refund",
        sc.school_id, e["id"]
    );
    let (s, b) = app
        .post(
            &refund,
            &sc.accountant,
            json!({"amount": 120001, "reason": "not a school fee"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("refund_exceeds_credit")),
        "{b}"
    );
    let (s, b) = app
        .post(
            &refund,
            &sc.accountant,
            json!({"amount": 120000, "reason": "not a school fee"}),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("refund")),
        "{b}"
    );
    assert_eq!(app.count("refunds WHERE amount = 120000").await, 1);
    let (s, _) = app
        .post(
            &refund,
            &sc.accountant,
            json!({"amount": 1, "reason": "again"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    for action in [
        "exception.open",
        "exception.match",
        "exception.dismiss",
        "exception.refund",
        // A transfer read from its memo is allocated in the transaction that records it.
        "payment.record' AND details LIKE '%\"method\":\"recon\"%",
    ] {
        assert!(
            app.count(&format!("audit_log WHERE action = '{action}'"))
                .await
                >= 1,
            "{action}"
        );
    }
    // Auditors read the queue; the queue of another school is not theirs to see.
    let (s, _) = app
        .get(
            &format!("/api/v1/schools/{}/exceptions?status=all", sc.school_id),
            &sc.auditor,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .get(
            &format!("/api/v1/schools/{}/exceptions?status=bogus", sc.school_id),
            &sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

crate::on_both_backends!(review, review_flow);

fn statement(file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/statements/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("statement fixture")
}

/// A SePay transfer into the statement's account: (id, local time, memo, amount, bank reference).
async fn sepay_at(app: &TestApp, path: &str, key: &str, t: (i64, &str, &str, i64, &str)) {
    let (id, at, memo, amount, reference) = t;
    let body = json!({"id": id, "gateway": "Vietcombank", "transactionDate": at,
        "accountNumber": "0071000123456", "code": null, "content": memo, "transferType": "in",
        "transferAmount": amount, "referenceCode": reference, "description": ""});
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header("authorization", format!("Apikey {key}"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
}

/// The three-way check: notified transfers are tied to their statement lines (by the bank's
/// reference, else by amount and time), credits nobody notified become payments and are matched,
/// a notification the bank never settled is flagged, and nothing is booked twice.
async fn statement_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "0071000123456").await;
    let acct = app
        .approved_account(&sc, "970436", "0071000123456", "TRUONG THCS LE QUY DON")
        .await;
    let url = format!(
        "/api/v1/schools/{}/accounts/{}/statements",
        sc.school_id, acct["id"]
    );

    // Two of the statement's credits were notified (one with the bank's reference), and one
    // notification never reached the bank's statement.
    sepay_at(
        &app,
        &path,
        &key,
        (
            501,
            "2025-09-03 08:30:00",
            "MBVCB.3278126542.QD3CFPSA NGUYEN VAN BO chuyen tien hoc phi",
            1_235_000,
            "5213 - 12345",
        ),
    )
    .await;
    sepay_at(
        &app,
        &path,
        &key,
        (
            502,
            "2025-09-03 09:10:00",
            "IBFT QDPHYRXY TRAN THI MAI NOP TIEN AN THANG 9 LOP 6A1",
            2_450_000,
            "",
        ),
    )
    .await;
    sepay_at(
        &app,
        &path,
        &key,
        (503, "2025-09-02 10:00:00", "hoc phi", 777_000, "FT999"),
    )
    .await;
    assert_eq!(app.count("payments").await, 3);

    // Bad files change nothing.
    for (file, code) in [
        ("bad-encoding.csv", "statement_encoding"),
        ("usd.xml", "statement_currency"),
        ("bad-amount.csv", "statement_row"),
    ] {
        let (s, b) = app
            .post_raw(&url, &sc.accountant, "text/csv", statement(file))
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{file}: {b}"
        );
    }
    let future = String::from_utf8(statement("vietcombank-2025-09.csv"))
        .expect("utf8")
        .replace("09/09/2025", "09/09/2099");
    let (s, b) = app
        .post_raw(&url, &sc.accountant, "text/csv", future.into_bytes())
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("statement_future_date")
        ),
        "{b}"
    );
    let doubled = String::from_utf8(statement("vietcombank-2025-09.csv"))
        .expect("utf8")
        .replace("6,08/09/2025,5218 - 11203", "6,08/09/2025,5213 - 12388");
    let (s, b) = app
        .post_raw(&url, &sc.accountant, "text/csv", doubled.into_bytes())
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("statement_duplicate_line")
        ),
        "{b}"
    );
    let other = app
        .approved_account(&sc, "970436", "0071000999999", "TRUONG THCS LE QUY DON")
        .await;
    let (s, b) = app
        .upload_statement(
            &sc,
            &other,
            "",
            "text/csv",
            statement("vietcombank-2025-09.csv"),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("statement_account_mismatch")
        ),
        "{b}"
    );
    let (s, _) = app
        .post_raw(
            &url,
            &sc.cashier,
            "text/csv",
            statement("vietcombank-2025-09.csv"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        (app.count("statements").await, app.count("payments").await),
        (0, 3)
    );

    let (s, r) = app
        .post_raw(
            &url,
            &sc.accountant,
            "text/csv",
            statement("vietcombank-2025-09.csv"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(
        (
            r["lines"].as_i64(),
            r["debits"].as_i64(),
            r["matched_by_reference"].as_i64(),
            r["matched_by_amount"].as_i64(),
            r["created"].as_i64()
        ),
        (Some(7), Some(1), Some(1), Some(1), Some(4)),
        "{r}"
    );
    let unsettled = r["unsettled_notifications"].as_array().expect("unsettled");
    assert_eq!(unsettled.len(), 1, "{r}");
    assert_eq!(app.count("payments").await, 7);
    assert_eq!(
        app.count("exceptions WHERE kind = 'no_statement_line' AND status = 'open'")
            .await,
        1
    );
    // Credits nobody notified were allocated by their codes: 850.000 + 500.000 to QDAQGU4C.
    assert_eq!(invoice_status(&app, &sc, "QDAQGU4C").await.1, 1_350_000);
    // A plain transfer into the school's own account carries no fee line.
    assert_eq!(
        app.count(
            "payment_fees f JOIN payments p ON p.id = f.payment_id WHERE p.provider = 'bank'"
        )
        .await,
        0
    );

    // The same statement again, or the same transactions as camt.053: nothing new.
    let (s, r) = app
        .post_raw(
            &url,
            &sc.accountant,
            "text/csv",
            statement("vietcombank-2025-09.csv"),
        )
        .await;
    assert_eq!(
        (s, r["already_imported"].as_i64()),
        (StatusCode::OK, Some(7)),
        "{r}"
    );
    let (s, r) = app
        .post_raw(
            &format!("{url}?format=camt053"),
            &sc.accountant,
            "application/xml",
            statement("camt053-vcb.xml"),
        )
        .await;
    assert_eq!(
        (s, r["already_imported"].as_i64()),
        (StatusCode::OK, Some(7)),
        "{r}"
    );
    assert_eq!(
        (
            app.count("statements").await,
            app.count("payments").await,
            app.count("statement_lines").await
        ),
        (1, 7, 7)
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'statement.import'")
            .await,
        1
    );
}

crate::on_both_backends!(statements, statement_flow);

/// The daily close: what was recorded on a day, cash beside cashless, fees by bearer, matches and
/// open exceptions; closing freezes it, once, only when the day is over; the CLI does the same.
async fn day_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;
    let (a, _) = invoice_of(&app, &sc, "HS0001").await;
    let (s, b) = app
        .post(&format!("/api/v1/schools/{}/payments", sc.school_id), &sc.cashier,
            json!({"channel": "cash", "amount": 300000, "allocations": [{"invoice_id": a, "amount": 300000}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    transfer(&app, &path, &key, 77, "QD3CFPSA hoc phi", 935_000).await;
    transfer(&app, &path, &key, 78, "chuyen tien", 50_000).await;
    // Payments are dated when they are recorded: today, in Vietnam.
    let today = chrono::Utc::now()
        .with_timezone(&feerecon::domain::time::vietnam())
        .format("%Y-%m-%d")
        .to_string();
    let url = format!("/api/v1/schools/{}/days/{today}", sc.school_id);
    let (s, d) = app.get(&url, &sc.auditor).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let sum = &d["summary"];
    assert_eq!(
        (
            sum["total"].as_i64(),
            sum["cash"].as_i64(),
            sum["cashless"].as_i64()
        ),
        (Some(1_285_000), Some(300_000), Some(985_000)),
        "{d}"
    );
    assert_eq!(
        (sum["allocations"].as_i64(), sum["allocated"].as_i64()),
        (Some(2), Some(1_235_000))
    );
    assert_eq!(
        (
            sum["exceptions_opened"].as_i64(),
            sum["exceptions_open"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(d["closed"], json!(false));

    // The app's clock is a day ahead, so today is over for it.
    let (s, b) = app
        .post(&format!("{url}/close"), &sc.cashier, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, c) = app
        .post(&format!("{url}/close"), &sc.accountant, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(
        (c["closed"].as_bool(), &c["closed_summary"]),
        (Some(true), &c["summary"])
    );
    let (s, b) = app
        .post(&format!("{url}/close"), &sc.accountant, json!({}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("day_closed"))
    );
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .with_timezone(&feerecon::domain::time::vietnam())
        .format("%Y-%m-%d")
        .to_string();
    let (s, b) = app
        .post(
            &format!("/api/v1/schools/{}/days/{tomorrow}/close", sc.school_id),
            &sc.accountant,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("day_not_over")),
        "{b}"
    );
    let (s, _) = app
        .get(
            &format!("/api/v1/schools/{}/days/2025-13-01", sc.school_id),
            &sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("audit_log WHERE action = 'day.close'").await, 1);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .args(["reconcile", "--school", &sc.code, "--date", &today])
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run feerecon");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (
            printed["closed"].as_bool(),
            printed["summary"]["total"].as_i64()
        ),
        (Some(true), Some(1_285_000))
    );
}

crate::on_both_backends!(
    days,
    day_flow,
    Some(chrono::Utc::now() + chrono::Duration::days(1))
);

/// The same family paying twice: a second transfer for an invoice already paid, or the same
/// transfer repeated, is in the queue as a refund candidate naming the first payment.
async fn duplicate_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;

    // By code: the first pays the invoice, the second finds it paid.
    let first = transfer(
        &app,
        &path,
        &key,
        11,
        "QD3CFPSA NGUYEN VAN BO hoc phi",
        1_235_000,
    )
    .await;
    assert_eq!(invoice_status(&app, &sc, "QD3CFPSA").await.0, "paid");
    let again = transfer(
        &app,
        &path,
        &key,
        12,
        "QD3CFPSA NGUYEN VAN BO hoc phi",
        1_235_000,
    )
    .await;
    let queue = open_exceptions(&app, &sc).await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0]["payment_id"].as_i64(), Some(again));
    assert_eq!(queue[0]["kind"], "duplicate", "{queue:?}");
    let reason = queue[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(&format!("already paid by payment {first}")),
        "{reason}"
    );

    // By repetition: the same name-only transfer twice; the first was matched from the memo.
    transfer(
        &app,
        &path,
        &key,
        13,
        "hoc phi Tran Thi Bich Ngoc lop 7A2",
        1_566_800,
    )
    .await;
    assert_eq!(invoice_status(&app, &sc, "QDAQGU4C").await.0, "paid");
    let repeat = transfer(
        &app,
        &path,
        &key,
        14,
        "IBFT HOC PHI TRAN THI BICH NGOC LOP 7A2",
        1_566_800,
    )
    .await;
    // A transfer of filler words only is never called a repeat.
    let filler = transfer(&app, &path, &key, 15, "chuyen tien hoc phi", 1_566_800).await;
    let queue = open_exceptions(&app, &sc).await;
    let kind_of = |pid: i64| {
        queue
            .iter()
            .find(|e| e["payment_id"].as_i64() == Some(pid))
            .map(|e| e["kind"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(kind_of(repeat).as_deref(), Some("duplicate"), "{queue:?}");
    assert_ne!(kind_of(filler).as_deref(), Some("duplicate"), "{queue:?}");

    // The refund candidate goes back to the payer.
    let e = queue
        .iter()
        .find(|e| e["payment_id"].as_i64() == Some(again))
        .expect("exception");
    let (s, b) = app
        .post(
            &format!(
                "/api/v1/schools/{}/exceptions/{}/refund",
                sc.school_id, e["id"]
            ),
            &sc.accountant,
            json!({"amount": 1_235_000, "reason": "paid twice"}),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("refund")),
        "{b}"
    );
    assert_eq!(
        invoice_status(&app, &sc, "QD3CFPSA").await,
        ("paid".to_string(), 1_235_000)
    );

    // After hand work on the queue (the refund above), the transfers the service keeps in
    // memory are read again: one more repeat is still called one.
    let third = transfer(
        &app,
        &path,
        &key,
        16,
        "hoc phi Tran Thi Bich Ngoc lop 7A2",
        1_566_800,
    )
    .await;
    let queue = open_exceptions(&app, &sc).await;
    let e = exception_of(&queue, third);
    assert_eq!(e["kind"], "duplicate", "{e}");
}

crate::on_both_backends!(duplicates, duplicate_flow);

/// The open reviews the service keeps in memory follow what the accountant does: a review
/// dismissed by hand no longer claims its month against the next transfer.
async fn kept_reviews_follow_hand_work_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;
    let (_, huy_code) = invoice_of(&app, &sc, "HS0005").await;
    let first = transfer(&app, &path, &key, 41, "nop tien hoc Pham Gia Huy", 500_000).await;
    let e1 = exception_of(&open_exceptions(&app, &sc).await, first);
    assert_eq!(e1["kind"], "amount_mismatch", "{e1}");
    let (s, b) = app
        .post(
            &format!(
                "/api/v1/schools/{}/exceptions/{}/dismiss",
                sc.school_id, e1["id"]
            ),
            &sc.accountant,
            json!({"reason": "not for this school"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let second = transfer(
        &app,
        &path,
        &key,
        42,
        "hoc phi T9 Pham Gia Huy 6A2",
        1_385_000,
    )
    .await;
    assert_eq!(
        app.count(&format!("allocations WHERE payment_id = {second}"))
            .await,
        1
    );
    assert_eq!(
        invoice_status(&app, &sc, &huy_code).await,
        ("paid".to_string(), 1_385_000)
    );
}

crate::on_both_backends!(
    kept_reviews_follow_hand_work,
    kept_reviews_follow_hand_work_flow
);

/// The open exception of a payment.
fn exception_of(queue: &[Value], payment_id: i64) -> Value {
    queue
        .iter()
        .find(|e| e["payment_id"].as_i64() == Some(payment_id))
        .unwrap_or_else(|| panic!("no open exception for payment {payment_id}: {queue:?}"))
        .clone()
}

/// Rule `period_in_review` through the API: a month an earlier payment still in review claims
/// (its top suggestion) is not given to a later transfer naming that month, on intake or when
/// reconciling again; once the accountant answers the earlier review, reconciling again
/// decides on what the month then owes.
async fn period_in_review_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;
    let (huy, huy_code) = invoice_of(&app, &sc, "HS0005").await;
    let balance = 1_385_000;
    assert_eq!(
        invoice_status(&app, &sc, &huy_code).await,
        ("open".to_string(), 0)
    );

    // Read from the memo, the pupil is clear but the amount is not the balance: in review, its
    // top suggestion Huy's September invoice.
    let first = transfer(&app, &path, &key, 31, "nop tien hoc Pham Gia Huy", 500_000).await;
    let queue = open_exceptions(&app, &sc).await;
    let e1 = exception_of(&queue, first);
    assert_eq!(e1["kind"], "amount_mismatch", "{e1}");
    let top = &e1["suggestions"][0];
    assert_eq!(
        top["allocations"][0]["invoice_id"].as_i64(),
        Some(huy),
        "{e1}"
    );
    assert!(
        top["evidence"]
            .as_str()
            .expect("evidence")
            .contains("2025-09"),
        "{top}"
    );

    // September written, the whole balance: without the review above it would be allocated;
    // it waits in the queue naming the first payment instead.
    let memo = "hoc phi T9 Pham Gia Huy 6A2";
    let second = transfer(&app, &path, &key, 32, memo, balance).await;
    let allocated_to_second = format!("allocations WHERE payment_id = {second}");
    assert_eq!(app.count(&allocated_to_second).await, 0);
    assert_eq!(
        invoice_status(&app, &sc, &huy_code).await,
        ("open".to_string(), 0)
    );
    let e2 = exception_of(&open_exceptions(&app, &sc).await, second);
    assert_eq!(e2["kind"], "period_in_review", "{e2}");
    let reason = e2["reason"].as_str().expect("reason");
    assert!(reason.ends_with(&format!("(payment {first})")), "{reason}");
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'exception.open' AND entity_id = {second} AND details LIKE '%\"earlier_payment\":{first}%'"
        ))
        .await,
        1
    );

    // Reconciling the second again decides the same: the same exception, as it was.
    let reconcile = format!(
        "/api/v1/schools/{}/payments/{second}/reconcile",
        sc.school_id
    );
    let (s, r) = app.post(&reconcile, &sc.accountant, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["result"].as_str(), r["exception_id"].as_i64()),
        (Some("review"), e2["id"].as_i64()),
        "{r}"
    );
    let again = exception_of(&open_exceptions(&app, &sc).await, second);
    for field in ["id", "kind", "reason", "suggestions", "status"] {
        assert_eq!(again[field], e2[field], "{field}: {again}");
    }
    assert_eq!(app.count(&allocated_to_second).await, 0);

    // The accountant answers the first review: its 500,000 go to September.
    let (s, b) = app
        .post(
            &format!(
                "/api/v1/schools/{}/exceptions/{}/match",
                sc.school_id, e1["id"]
            ),
            &sc.accountant,
            json!({"allocations": [{"invoice_id": huy, "amount": 500_000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(invoice_status(&app, &sc, &huy_code).await.1, 500_000);

    // Nothing claims September now, and it owes less than the second transfer: reconciling
    // again allocates what it owes, the rest stays on the payment as credit.
    let (s, r) = app.post(&reconcile, &sc.accountant, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["result"].as_str(), r["rule"].as_str()),
        (Some("allocated"), Some("period_stated")),
        "{r}"
    );
    assert_eq!(
        r["allocations"],
        json!([{"invoice_id": huy, "payment_code": huy_code, "amount": balance - 500_000}]),
        "{r}"
    );
    assert_eq!(
        invoice_status(&app, &sc, &huy_code).await,
        ("paid".to_string(), balance)
    );
    assert_eq!(app.count(&allocated_to_second).await, 1);
    let (s, closed) = app
        .get(
            &format!("/api/v1/schools/{}/exceptions/{}", sc.school_id, e2["id"]),
            &sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "matched", "{closed}");
    assert!(open_exceptions(&app, &sc).await.is_empty());
}

crate::on_both_backends!(period_in_review, period_in_review_flow);

/// An open review's claim is stored beside its suggestions (the top suggestion's invoices), and
/// a review opened before that column existed still claims, from its suggestions.
async fn claims_stored_or_read_from_suggestions_flow(app: TestApp) {
    let (sc, key, path) = sepay_school(&app, "6868123456789").await;
    let (huy, _) = invoice_of(&app, &sc, "HS0005").await;
    let first = transfer(&app, &path, &key, 41, "nop tien hoc Pham Gia Huy", 500_000).await;
    assert_eq!(
        app.count(&format!(
            "exceptions WHERE payment_id = {first} AND status = 'open' AND claims = '{huy}'"
        ))
        .await,
        1
    );
    app.execute_sql(&format!(
        "UPDATE exceptions SET claims = NULL WHERE payment_id = {first}"
    ))
    .await
    .expect("an exception as stored before claims");
    let second = transfer(
        &app,
        &path,
        &key,
        42,
        "hoc phi T9 Pham Gia Huy 6A2",
        1_385_000,
    )
    .await;
    let e2 = exception_of(&open_exceptions(&app, &sc).await, second);
    assert_eq!(e2["kind"], "period_in_review", "{e2}");
    assert_eq!(
        app.count(&format!("allocations WHERE payment_id = {second}"))
            .await,
        0
    );
}

crate::on_both_backends!(
    claims_stored_or_read_from_suggestions,
    claims_stored_or_read_from_suggestions_flow
);

/// Rule `period_in_review` inside one batch: a statement's line in review claims its month for
/// the lines booked after it, and the review it sends a later line to names its payment,
/// recorded in the same transaction.
async fn in_batch_claim_flow(app: TestApp) {
    let sc = crate::webhooks::school_with_invoices(&app).await;
    let (huy, huy_code) = invoice_of(&app, &sc, "HS0005").await;
    let acct = app
        .approved_account(&sc, "970436", "0071000123456", "TRUONG THCS LE QUY DON")
        .await;
    let csv = "\
NGÂN HÀNG TMCP NGOẠI THƯƠNG VIỆT NAM,,,,,,
SAO KÊ TÀI KHOẢN,,,,,,
Số tài khoản: 0071000123456,,,,,,
Tên tài khoản: TRUONG THCS LE QUY DON,,,,,,
Loại tiền: VND,,,,,,
Từ ngày: 01/09/2025 Đến ngày: 10/09/2025,,,,,,
Số dư đầu kỳ: 52.340.000,,,,,,
STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả
1,03/09/2025,5213 - 20001,,500.000,52.840.000,\"nop tien hoc Pham Gia Huy\"
2,04/09/2025,5214 - 20002,,1.385.000,54.225.000,\"hoc phi T9 Pham Gia Huy 6A2\"
Tổng số,,,0,1.885.000,,
Số dư cuối kỳ,,,,,54.225.000,
";
    let (s, b) = app
        .upload_statement(&sc, &acct, "", "text/csv", csv.as_bytes().to_vec())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Booked in order: the first line's payment, then the second's.
    let outcome = |k: usize| b["outcomes"][k]["payment_id"].as_i64().expect("payment");
    let (first, second) = (outcome(0), outcome(1));

    let queue = open_exceptions(&app, &sc).await;
    let e1 = exception_of(&queue, first);
    assert_eq!(e1["kind"], "amount_mismatch", "{e1}");
    assert_eq!(
        e1["suggestions"][0]["allocations"][0]["invoice_id"].as_i64(),
        Some(huy),
        "{e1}"
    );
    let e2 = exception_of(&queue, second);
    assert_eq!(e2["kind"], "period_in_review", "{e2}");
    let reason = e2["reason"].as_str().expect("reason");
    assert!(reason.ends_with(&format!("(payment {first})")), "{reason}");
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'exception.open' AND entity_id = {second} AND details LIKE '%\"earlier_payment\":{first}%'"
        ))
        .await,
        1
    );
    assert_eq!(
        invoice_status(&app, &sc, &huy_code).await,
        ("open".to_string(), 0)
    );

    // Reconciling the second again decides the same, now naming the recorded payment.
    let (s, r) = app
        .post(
            &format!(
                "/api/v1/schools/{}/payments/{second}/reconcile",
                sc.school_id
            ),
            &sc.accountant,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["exception_id"].as_i64(), e2["id"].as_i64(), "{r}");
    let again = exception_of(&open_exceptions(&app, &sc).await, second);
    assert_eq!(
        (&again["kind"], &again["reason"]),
        (&e2["kind"], &e2["reason"])
    );
}

crate::on_both_backends!(in_batch_claims, in_batch_claim_flow);
