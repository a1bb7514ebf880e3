//! The webhook intake under hostile and clumsy clients: every outcome answered in the sender's
//! documented format, refused deliveries archived cut short and budgeted per address, the
//! server's timeouts, connection cap, load shedding and bounded shutdown, and the purge of
//! refused deliveries past their retention.

use crate::helpers::{Backend, School, TestApp, ADMIN};
use crate::webhooks::{account, school_with_invoices, secrets};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/fixtures/providers/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).expect("json")
}

/// A VNPay IPN query signed as the `vnpay` package signs one (sorted, form-encoded,
/// HMAC-SHA512), from `pairs`.
fn vnpay_query(pairs: &[(&str, &str)], secret: &str) -> String {
    let mut sorted: Vec<(&str, &str)> = pairs.to_vec();
    sorted.sort();
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &sorted {
        s.append_pair(k, v);
    }
    let canonical = s.finish();
    let mut mac = <Hmac<sha2::Sha512> as Mac>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(canonical.as_bytes());
    format!(
        "{canonical}&vnp_SecureHash={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn ipn(tmn: &str, txn: &str, amount: &str, code: &str) -> Vec<(String, String)> {
    [
        ("vnp_Amount", amount),
        ("vnp_BankCode", "NCB"),
        ("vnp_OrderInfo", "Thanh toan hoc phi"),
        ("vnp_PayDate", "20250910083512"),
        ("vnp_ResponseCode", "00"),
        ("vnp_TmnCode", tmn),
        ("vnp_TransactionNo", txn),
        ("vnp_TransactionStatus", "00"),
        ("vnp_TxnRef", code),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn signed(pairs: &[(String, String)], secret: &str) -> String {
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    vnpay_query(&refs, secret)
}

async fn get(app: &TestApp, path_and_query: &str) -> (StatusCode, Value) {
    let r = app
        .client
        .get(format!("{}{path_and_query}", app.base))
        .send()
        .await
        .expect("send");
    let status = r.status();
    let text = r.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.expect("send");
    let (status, h) = (r.status(), r.headers().clone());
    (status, r.text().await.expect("text"), h)
}

fn fixture_headers(f: &Value) -> Vec<(&str, String)> {
    f["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

async fn events(app: &TestApp, sc: &School) -> Vec<Value> {
    let (s, b) = app
        .get(
            &format!("/api/v1/schools/{}/provider-events?limit=500", sc.school_id),
            &sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b.as_array().cloned().unwrap_or_default()
}

/// VNPay, outcome by outcome: 00 once booked (whatever review it needs) and 02 on retry; 01 and
/// 04 only for what is refused before booking; 97 for a bad checksum; 99 for what cannot be
/// read and for "send again later". Always HTTP 200 with VNPay's JSON.
async fn vnpay_answers_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let secret = secrets()["vnpay"]["hash_secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let (_, path) = account(&app, &sc, "vnpay", "FEERTEST", &secret, None).await;
    let rsp = |v: &Value| v["RspCode"].as_str().unwrap_or("?").to_string();

    // Booked, even though the amount is not what the invoice owes: the money is the school's,
    // and a review is the school's business.
    let q = signed(
        &ipn("FEERTEST", "15190001", "50000000", "QD3CFPSA"),
        &secret,
    );
    let (s, b) = get(&app, &format!("{path}?{q}")).await;
    assert_eq!((s, rsp(&b)), (StatusCode::OK, "00".into()), "{b}");
    // Its retry: already confirmed.
    let (_, b) = get(&app, &format!("{path}?{q}")).await;
    assert_eq!(rsp(&b), "02");
    // The same transaction with another amount: kept for review, never booked twice, and not
    // something VNPay should send for ever.
    let q = signed(
        &ipn("FEERTEST", "15190001", "60000000", "QD3CFPSA"),
        &secret,
    );
    let (_, b) = get(&app, &format!("{path}?{q}")).await;
    assert_eq!(rsp(&b), "02");
    // No invoice code at all: booked, and the memo goes to the engine.
    let q = signed(
        &ipn("FEERTEST", "15190002", "10000000", "UNKNOWN-REF"),
        &secret,
    );
    let (_, b) = get(&app, &format!("{path}?{q}")).await;
    assert_eq!(rsp(&b), "00");
    // A signed amount with a remainder: invalid amount, nothing booked.
    let q = signed(
        &ipn("FEERTEST", "15190003", "123500050", "QD3CFPSA"),
        &secret,
    );
    let (_, b) = get(&app, &format!("{path}?{q}")).await;
    assert_eq!(rsp(&b), "04");
    // Signed by this account's secret but naming another terminal: not an order of this one.
    let q = signed(
        &ipn("OTHERTMN", "15190004", "123500000", "QD3CFPSA"),
        &secret,
    );
    let (_, b) = get(&app, &format!("{path}?{q}")).await;
    assert_eq!(rsp(&b), "01");
    // An account that does not exist.
    let q = signed(
        &ipn("FEERTEST", "15190005", "123500000", "QD3CFPSA"),
        &secret,
    );
    let (_, b) = get(&app, &format!("/webhooks/vnpay/987654?{q}")).await;
    assert_eq!(rsp(&b), "01");
    // A wrong checksum.
    let (_, b) = get(
        &app,
        &format!(
            "{path}?{}",
            q.replace("vnp_BankCode=NCB", "vnp_BankCode=VCB")
        ),
    )
    .await;
    assert_eq!(rsp(&b), "97");
    // Malformed: no parameters at all, a signed IPN missing its amount, a path VNPay never
    // calls, headers no sender sends: all answered in VNPay's format.
    let (s, b) = get(&app, &path).await;
    assert_eq!((s, rsp(&b)), (StatusCode::OK, "97".into()));
    let mut no_amount = ipn("FEERTEST", "15190006", "1", "QD3CFPSA");
    no_amount.retain(|(k, _)| k != "vnp_Amount");
    let (_, b) = get(&app, &format!("{path}?{}", signed(&no_amount, &secret))).await;
    assert_eq!(rsp(&b), "99");
    let (s, b) = get(&app, &format!("/webhooks/vnpay/%FF%FE?{q}")).await;
    assert_eq!((s, rsp(&b)), (StatusCode::OK, "01".into()), "{b}");
    let r = app
        .client
        .get(format!("{}{path}?{q}", app.base))
        .header("x-padding", "a".repeat(20_000))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(rsp(&r.json::<Value>().await.expect("json")), "99");
    // Temporarily unable (the service is stopping): 99, so VNPay calls again.
    assert!(app.state.intake.close(Duration::from_secs(5)).await);
    let q = signed(
        &ipn("FEERTEST", "15190007", "123500000", "QD3CFPSA"),
        &secret,
    );
    let (s, b) = get(&app, &format!("{path}?{q}")).await;
    assert_eq!((s, rsp(&b)), (StatusCode::OK, "99".into()));

    let ev = events(&app, &sc).await;
    let outcomes: Vec<&str> = ev.iter().filter_map(|e| e["outcome"].as_str()).collect();
    for o in [
        "recorded",
        "duplicate",
        "conflict",
        "invalid_amount",
        "account_mismatch",
        "bad_signature",
        "rejected",
    ] {
        assert!(outcomes.contains(&o), "{o} archived: {outcomes:?}");
    }
    assert_eq!(
        app.count("payments").await,
        2,
        "booked: 15190001 and 15190002, nothing else"
    );
}

/// SePay, Casso and Standard Webhooks read the status only: 2xx ends the delivery.
async fn watcher_answers_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let s = secrets();
    let key = s["sepay"]["api_key"].as_str().expect("key");
    let (_, path) = account(&app, &sc, "sepay", "6868123456789", key, None).await;
    let f = fixture_json("sepay/transfer-in.json");
    let body = f["body"].as_str().expect("body");
    let h = fixture_headers(&f);
    let (st, b, _) = post(&app, &path, &h, body).await;
    assert_eq!((st, b.as_str()), (StatusCode::OK, r#"{"success":true}"#));
    let (st, _, _) = post(&app, &path, &h, body).await;
    assert_eq!(st, StatusCode::OK, "already booked: stop");
    let (st, _, _) = post(&app, "/webhooks/sepay/987654", &h, body).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "no such account");
    let (st, _, _) = post(
        &app,
        &path,
        &[("authorization", "Apikey wrong-key-123".into())],
        body,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = post(&app, &path, &h, "{\"id\": 1").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "malformed");
    let other = body.replace("6868123456789", "1111111111");
    let (st, _, _) = post(&app, &path, &h, &other).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "another account");
    let fraction = body.replace("\"transferAmount\":1235000", "\"transferAmount\":1235000.5");
    let (st, _, _) = post(&app, &path, &h, &fraction).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "invalid amount");
    assert!(app.state.intake.close(Duration::from_secs(5)).await);
    let retry = body.replace("24013587", "24019999");
    let (st, _, headers) = post(&app, &path, &h, &retry).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "temporarily unable");
    assert!(headers.get("retry-after").is_some());
    assert_eq!(app.count("payments").await, 1);
}

/// Casso signs the sorted, compact JSON, but its samples serialise it differently: a
/// Vietnamese memo signed the JavaScript way (UTF-8), the Python way (`\uXXXX`) or the PHP way
/// (`\uXXXX` and `\/`) is the same delivery, booked once.
async fn casso_serialisations_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let key = secrets()["casso"]["checksum_key"]
        .as_str()
        .expect("key")
        .to_string();
    let (_, path) = account(&app, &sc, "casso", "0071000123456", &key, None).await;
    let mut statuses = Vec::new();
    for name in [
        "casso/transfer-in-python-escaped.json",
        "casso/transfer-in-php-escaped.json",
        "casso/transfer-in.json",
    ] {
        let f = fixture_json(name);
        let (st, _, _) = post(
            &app,
            &path,
            &fixture_headers(&f),
            f["body"].as_str().expect("body"),
        )
        .await;
        statuses.push(st);
    }
    assert_eq!(statuses, vec![StatusCode::OK; 3]);
    let ev = events(&app, &sc).await;
    let outcomes: Vec<&str> = ev.iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes, vec!["recorded", "duplicate", "duplicate"]);
    // A changed memo under the Python signature is still refused.
    let f = fixture_json("casso/transfer-in-python-escaped.json");
    let tampered = f["body"].as_str().expect("body").replace("Ngọc", "Ngoc");
    let (st, _, _) = post(&app, &path, &fixture_headers(&f), &tampered).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

fn casso_signed_at() -> chrono::DateTime<chrono::Utc> {
    let f = fixture_json("casso/transfer-in.json");
    let ms: i64 = f["headers"]["X-Casso-Signature"]
        .as_str()
        .and_then(|h| h.split(',').next())
        .and_then(|t| t.strip_prefix("t="))
        .expect("t")
        .parse()
        .expect("ms");
    chrono::DateTime::from_timestamp_millis(ms).expect("time")
}

/// SePay's HMAC-SHA256 mode: the body is signed, so a changed body under a valid signature is
/// refused, an old signature is refused, and an account moving from its API key to HMAC
/// accepts both until the key is retired.
async fn sepay_hmac_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let s = secrets();
    let hmac_secret = s["sepay"]["hmac_secret"].as_str().expect("hmac secret");
    let api_key = s["sepay"]["api_key"].as_str().expect("key");
    let (s_, b) = app
        .post(
            &format!("/api/v1/schools/{}/provider-accounts", sc.school_id),
            ADMIN,
            json!({"provider": "sepay", "account": "6868123456789", "label": "MB", "secret": api_key}),
        )
        .await;
    assert_eq!(s_, StatusCode::CREATED, "{b}");
    let (id, path) = (
        b["id"].as_i64().expect("id"),
        b["webhook_path"].as_str().expect("path").to_string(),
    );
    let (s_, b) = app
        .post(
            &format!("/api/v1/provider-accounts/{id}/secrets"),
            ADMIN,
            json!({"secret": hmac_secret, "scheme": "hmac_sha256"}),
        )
        .await;
    assert_eq!(s_, StatusCode::CREATED, "{b}");
    let (s_, b) = app
        .post(
            &format!("/api/v1/provider-accounts/{id}/secrets"),
            ADMIN,
            json!({"secret": hmac_secret, "scheme": "md5"}),
        )
        .await;
    assert_eq!(
        (s_, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_secret"))
    );

    let f = fixture_json("sepay/transfer-in-hmac.json");
    let body = f["body"].as_str().expect("body");
    let h = fixture_headers(&f);
    let changed = body.replace("1385000", "1385001");
    let (st, _, _) = post(&app, &path, &h, &changed).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "a changed body under a valid signature"
    );
    let (st, b, _) = post(&app, &path, &h, body).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    // The API key still works while both are in force.
    let key_h = vec![("authorization", format!("Apikey {api_key}"))];
    let other = fixture_json("sepay/transfer-in.json");
    let (st, _, _) = post(&app, &path, &key_h, other["body"].as_str().expect("body")).await;
    assert_eq!(st, StatusCode::OK);
    // Retire the API key: now only signed deliveries pass.
    let (_, a) = app
        .get(
            &format!("/api/v1/schools/{}/provider-accounts", sc.school_id),
            ADMIN,
        )
        .await;
    let first = a[0]["active_secret_ids"][0].as_i64().expect("secret id");
    let (s_, b) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/provider-accounts/{id}/secrets/{first}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s_, StatusCode::OK, "{b}");
    app.state.contexts.clear();
    let memo_only = fixture_json("sepay/transfer-in-memo-only.json");
    let (st, _, _) = post(
        &app,
        &path,
        &key_h,
        memo_only["body"].as_str().expect("body"),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "the retired API key");
    assert_eq!(app.count("payments").await, 2);
}

fn sepay_hmac_signed_at() -> chrono::DateTime<chrono::Utc> {
    let f = fixture_json("sepay/transfer-in-hmac.json");
    let ts: i64 = f["headers"]["X-SePay-Timestamp"]
        .as_str()
        .expect("ts")
        .parse()
        .expect("seconds");
    chrono::DateTime::from_timestamp(ts + 2, 0).expect("time")
}

/// An account keeps at least one secret in force, or every delivery would be refused.
async fn last_secret_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let key = secrets()["sepay"]["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let (id, _) = account(&app, &sc, "sepay", "6868123456789", &key, None).await;
    let (_, a) = app
        .get(
            &format!("/api/v1/schools/{}/provider-accounts", sc.school_id),
            ADMIN,
        )
        .await;
    let only = a[0]["active_secret_ids"][0].as_i64().expect("id");
    let (s, b) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/provider-accounts/{id}/secrets/{only}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_secret")),
        "{b}"
    );
    let (_, a) = app
        .get(
            &format!("/api/v1/schools/{}/provider-accounts", sc.school_id),
            ADMIN,
        )
        .await;
    assert_eq!(a[0]["active_secret_ids"], json!([only]), "still in force");
    // With a replacement in force, the old one can go.
    let (s, _) = app
        .post(
            &format!("/api/v1/provider-accounts/{id}/secrets"),
            ADMIN,
            json!({"secret": "SEPAY-NEW-KEY-0123456789"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/provider-accounts/{id}/secrets/{only}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

/// An event type feerecon does not book is acknowledged (a refusal makes the sender retry for
/// days) and kept in the archive as ignored.
async fn unknown_event_type_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let secret = secrets()["standard_webhooks"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let (_, path) = account(
        &app,
        &sc,
        "standard_webhooks",
        "0071000123456",
        &secret,
        None,
    )
    .await;
    let f = fixture_json("standard-webhooks/unknown-event.json");
    let (st, _, _) = post(
        &app,
        &path,
        &fixture_headers(&f),
        f["body"].as_str().expect("body"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let ev = events(&app, &sc).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0]["outcome"].as_str(), ev[0]["verified"].as_bool()),
        (Some("ignored"), Some(true))
    );
    assert!(ev[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("payout.created"));
    assert_eq!(app.count("payments").await, 0);
}

fn unknown_event_signed_at() -> chrono::DateTime<chrono::Utc> {
    let f = fixture_json("standard-webhooks/unknown-event.json");
    let ts: i64 = f["headers"]["webhook-timestamp"]
        .as_str()
        .expect("ts")
        .parse()
        .expect("s");
    chrono::DateTime::from_timestamp(ts, 0).expect("time")
}

/// A refused delivery costs the archive a few kilobytes however big it was; past the address's
/// budget refusals are not archived at all; and the sender's real deliveries from the same
/// address still go through.
async fn bounded_archive_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let key = secrets()["sepay"]["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let (_, path) = account(&app, &sc, "sepay", "6868123456789", &key, None).await;
    let big = vec![
        ("authorization", format!("Apikey {}", "x".repeat(7_000))),
        ("user-agent", "u".repeat(7_000)),
    ];
    let body = "b".repeat(200_000);
    let (st, _, _) = post(&app, &path, &big, &body).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = post(&app, "/webhooks/sepay/424242", &big, &body).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let sizes: Vec<i64> = sqlx::query_scalar(
        "SELECT CAST(LENGTH(headers) + LENGTH(query) + LENGTH(body) + COALESCE(LENGTH(detail), 0) + COALESCE(LENGTH(request_sha256), 0) AS BIGINT) FROM provider_events",
    )
    .fetch_all(&sqlx::AnyPool::connect(&app.db_url).await.expect("pool"))
    .await
    .expect("sizes");
    assert_eq!(sizes.len(), 2);
    assert!(
        sizes.iter().all(|s| *s < 4096),
        "bytes kept per refused delivery: {sizes:?}"
    );
    let ev = events(&app, &sc).await;
    assert_eq!(ev[0]["body_size"], 200_000);
    assert!(ev[0]["request_size"].as_i64().unwrap_or(0) > 214_000);
    assert_eq!(ev[0]["request_sha256"].as_str().map(str::len), Some(64));

    // Junk past the refusal budget (a burst of 100, then 10 a second): answered, not archived.
    let mut answers = std::collections::BTreeMap::new();
    let started = Instant::now();
    for i in 0..200 {
        let (st, _, _) = post(
            &app,
            &path,
            &[("authorization", format!("Apikey wrong-{i}"))],
            "{}",
        )
        .await;
        *answers.entry(st.as_u16()).or_insert(0) += 1;
    }
    let budget = 100 + 10 * started.elapsed().as_secs_f64().ceil() as i64;
    let archived = app.count("provider_events").await - 2;
    assert_eq!(
        archived,
        answers.get(&401).copied().unwrap_or(0),
        "{answers:?}"
    );
    assert!(archived <= budget, "{archived} archived, budget {budget}");
    assert!(answers.get(&429).copied().unwrap_or(0) > 0, "{answers:?}");
    // The sender's own delivery from the same address.
    let f = fixture_json("sepay/transfer-in.json");
    let (st, _, _) = post(
        &app,
        &path,
        &fixture_headers(&f),
        f["body"].as_str().expect("body"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(app.count("payments").await, 1);
}

/// Refused deliveries older than the retention period are purged, counted in the audit log;
/// the database refuses any other deletion from the archive.
async fn purge_flow(app: TestApp) {
    let sc = school_with_invoices(&app).await;
    let key = secrets()["sepay"]["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let (_, path) = account(&app, &sc, "sepay", "6868123456789", &key, None).await;
    let f = fixture_json("sepay/transfer-in.json");
    let (st, _, _) = post(
        &app,
        &path,
        &fixture_headers(&f),
        f["body"].as_str().expect("body"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = post(
        &app,
        &path,
        &[("authorization", "Apikey wrong-key-1".into())],
        "{}",
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Two old rows as an earlier month left them: a refused one and a recorded one.
    let old = (chrono::Utc::now() - chrono::Duration::days(40))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let verified = if app.backend == Backend::Postgres {
        "FALSE"
    } else {
        "0"
    };
    app.execute_sql(&format!(
        "INSERT INTO provider_events (provider, received_at, method, query, headers, body, body_size, verified, outcome, ack_status)
         VALUES ('sepay', '{old}', 'POST', '', '{{}}', {}, 0, {verified}, 'bad_signature', 401)",
        if app.backend == Backend::Postgres { "'\\x'::bytea" } else { "X''" }
    ))
    .await
    .expect("old refused row");
    app.execute_sql(&format!(
        "INSERT INTO provider_events (provider, received_at, method, query, headers, body, body_size, verified, outcome, ack_status, payment_id)
         SELECT 'sepay', '{old}', 'POST', '', '{{}}', body, 0, verified, 'recorded', 200, payment_id FROM provider_events WHERE outcome = 'recorded'"
    ))
    .await
    .expect("old recorded row");
    assert_eq!(app.count("provider_events").await, 4);
    // Neither a young refused row nor an old recorded one can be deleted by hand.
    assert!(app
        .execute_sql(
            "DELETE FROM provider_events WHERE outcome = 'bad_signature' AND received_at > '2026'"
        )
        .await
        .is_err());
    assert!(app
        .execute_sql("DELETE FROM provider_events WHERE outcome = 'recorded'")
        .await
        .is_err());
    let store = feerecon::store::Store::connect(&app.db_url)
        .await
        .expect("store");
    let n = feerecon::retention::purge_once(&store, chrono::Duration::days(30))
        .await
        .expect("purge");
    assert_eq!(n, 1, "only the old refused delivery");
    assert_eq!(app.count("provider_events").await, 3);
    let (s, v) = app.get("/api/v1/audit/verify", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let purges: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'provider_events.purge' AND details LIKE '%\"deleted\":1%'",
    )
    .fetch_one(&sqlx::AnyPool::connect(&app.db_url).await.expect("pool"))
    .await
    .expect("audit");
    assert_eq!(purges, 1);
}

crate::on_both_backends!(vnpay_answers, vnpay_answers_flow);
crate::on_both_backends!(watcher_answers, watcher_answers_flow);
crate::on_both_backends!(
    casso_serialisations,
    casso_serialisations_flow,
    Some(casso_signed_at())
);
crate::on_both_backends!(sepay_hmac, sepay_hmac_flow, Some(sepay_hmac_signed_at()));
crate::on_both_backends!(last_secret, last_secret_flow);
crate::on_both_backends!(
    unknown_event_type,
    unknown_event_type_flow,
    Some(unknown_event_signed_at())
);
crate::on_both_backends!(bounded_archive, bounded_archive_flow);
crate::on_both_backends!(purge, purge_flow);

// The server's own limits. They do not depend on the database: SQLite only.

async fn tight(adjust: impl FnOnce(&mut feerecon::AppState)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, None, adjust)
        .await
        .expect("sqlite")
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + limit;
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn half_sent_heads_and_idle_connections_are_closed() {
    let app = tight(|s| s.server_limits.header_read_timeout = Duration::from_millis(600)).await;
    let mut half = tokio::net::TcpStream::connect(addr(&app))
        .await
        .expect("connect");
    half.write_all(b"POST /webhooks/sepay/1 HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .expect("write");
    let started = Instant::now();
    assert!(read_until_closed(&mut half, Duration::from_secs(5))
        .await
        .is_some());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let mut idle = tokio::net::TcpStream::connect(addr(&app))
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut first = [0u8; 512];
    let n = idle.read(&mut first).await.expect("answer");
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(5))
            .await
            .is_some(),
        "an idle keep-alive connection is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_body_not_sent_in_time_ends_the_request() {
    let app = tight(|s| s.server_limits.body_read_timeout = Duration::from_millis(500)).await;
    let mut slow = tokio::net::TcpStream::connect(addr(&app))
        .await
        .expect("connect");
    slow.write_all(b"POST /webhooks/sepay/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":")
        .await
        .expect("write");
    let started = Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(5))
        .await
        .expect("an answer");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_are_told_to_come_back() {
    let app = tight(|s| s.server_limits.max_connections = 2).await;
    let _a = tokio::net::TcpStream::connect(addr(&app)).await.expect("a");
    let _b = tokio::net::TcpStream::connect(addr(&app)).await.expect("b");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = tokio::net::TcpStream::connect(addr(&app)).await.expect("c");
    let answer = read_until_closed(&mut c, Duration::from_secs(3))
        .await
        .expect("closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After"));
}

#[tokio::test]
async fn api_requests_past_the_limit_are_shed() {
    let app = tight(|s| {
        s.server_limits.max_in_flight = 1;
        s.server_limits.body_read_timeout = Duration::from_secs(20);
    })
    .await;
    // One import whose body is still coming holds the only slot.
    let mut slow = tokio::net::TcpStream::connect(addr(&app))
        .await
        .expect("connect");
    slow.write_all(
        format!("POST /api/v1/schools/1/invoices/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\ninvoice_ref")
            .as_bytes(),
    )
    .await
    .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = app
        .client
        .get(format!("{}/api/v1/departments", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("retry-after").is_some());
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "busy");
    // Health checks and webhooks are not API requests.
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    drop(slow);
}

#[tokio::test]
async fn shutdown_ends_within_its_grace_whatever_clients_do() {
    let app = tight(|_| {}).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let at = listener.local_addr().expect("addr");
    let limits = feerecon::http::limits::ServerLimits {
        shutdown_grace: Duration::from_millis(800),
        header_read_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let router = feerecon::app(app.state.clone());
        async move {
            feerecon::http::server::serve(listener, router, &limits, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    // One client sends half a head, another half a body, and both wait.
    let mut head = tokio::net::TcpStream::connect(at).await.expect("connect");
    head.write_all(b"POST /webhooks/sepay/1 HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut body = tokio::net::TcpStream::connect(at).await.expect("connect");
    body.write_all(b"POST /webhooks/sepay/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stopped")
        .expect("no panic");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Nothing was booked or archived from the half-sent requests.
    assert_eq!(app.count("provider_events").await, 0);
}
