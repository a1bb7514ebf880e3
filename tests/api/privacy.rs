//! Personal data kept to what is needed: the processing log records every answer that gave a
//! person personal data (found by walking every route of the OpenAPI document), and an admin
//! asks it who saw a student and whose data a token or session saw.

use crate::helpers::{School, TestApp, ADMIN};
use crate::on_both_backends;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A SePay transfer into the school's account with `memo`; its payment id.
pub async fn transfer(
    app: &TestApp,
    path: &str,
    key: &str,
    id: i64,
    memo: &str,
    amount: i64,
) -> i64 {
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
    scalar(
        app,
        &format!("SELECT id FROM payments WHERE provider_ref = '6868123456789:{id}'"),
    )
    .await
}

pub async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect(sql);
    pool.close().await;
    n
}

pub async fn texts(app: &TestApp, sql: &str) -> Vec<String> {
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
    let rows: Vec<(Option<String>,)> = sqlx::query_as(sql).fetch_all(&pool).await.expect(sql);
    pool.close().await;
    rows.into_iter()
        .filter_map(|r| r.0)
        .filter(|t| !t.is_empty())
        .collect()
}

/// A school with September's invoices, a SePay account, a transfer waiting in the review queue
/// (its memo names a pupil; its delivery is archived), a cash payment with the payer's name and
/// a memo, and a parent link of the paid student with its session.
pub struct World {
    pub sc: School,
    /// HS0001, Nguyễn Minh Anh: paid in cash, with a parent link.
    pub student: i64,
    pub invoice: i64,
    pub cash: i64,
    /// The transfer in the review queue, and its exception.
    pub transfer: i64,
    pub exception: i64,
    pub link: i64,
    pub parent_cookie: String,
    pub account_id: i64,
}

pub async fn world(app: &TestApp) -> World {
    let (sc, key, path) = crate::webhooks::sepay_school(app, "6868123456789").await;
    let transfer_id = transfer(app, &path, &key, 2, "nop tien hoc Pham Gia Huy", 500_000).await;
    let student = crate::parents::student_id(app, &sc, "HS0001").await;
    let invoice = crate::parents::invoices_of(app, &sc, student).await[0];
    let (s, p) = app
        .post(
            &format!("/api/v1/schools/{}/payments", sc.school_id),
            &sc.cashier,
            json!({"channel": "cash", "amount": 100_000, "payer_name": "Trần Văn Bố", "memo": "tiền ăn bé Minh Anh",
                   "allocations": [{"invoice_id": invoice, "amount": 100_000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let l = crate::parents::issue(
        app,
        &sc,
        json!({"for": "student", "student_id": student, "label": "Mẹ", "contact": "0903 123 456"}),
    )
    .await;
    let parent_cookie = crate::parents::open(app, l["token"].as_str().expect("token")).await;
    let exception = scalar(
        app,
        &format!("SELECT id FROM exceptions WHERE payment_id = {transfer_id}"),
    )
    .await;
    let account_id = scalar(app, "SELECT MIN(id) FROM provider_accounts").await;
    World {
        student,
        invoice,
        cash: p["id"].as_i64().expect("payment"),
        transfer: transfer_id,
        exception,
        link: l["id"].as_i64().expect("link"),
        parent_cookie,
        account_id,
        sc,
    }
}

pub fn fill(path: &str, w: &World) -> String {
    path.replace("{school_id}", &w.sc.school_id.to_string())
        .replace("{department_id}", &w.sc.department_id.to_string())
        .replace("{invoice_id}", &w.invoice.to_string())
        .replace("{payment_id}", &w.cash.to_string())
        .replace("{student_id}", &w.student.to_string())
        .replace("{exception_id}", &w.exception.to_string())
        .replace("{account_id}", &w.account_id.to_string())
        .replace("{link_id}", &w.link.to_string())
        .replace("{date}", "2025-09-10")
        .replace("{code}", "QD3CFPSA")
}

/// Every GET of the document, with its path filled from `w`; extra queries that reach the
/// personal data (a day's report, the payment list of the day).
pub fn reads(w: &World) -> Vec<(String, String)> {
    let (_, doc) = feerecon::http::api();
    let doc = serde_json::to_value(doc).expect("openapi");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if item.get("get").is_none() || path.starts_with("/p/") || path == "/api/v1/session" {
            continue;
        }
        let mut url = fill(path, w);
        if path == "/api/v1/reports/fees" {
            url.push_str(&format!(
                "?school_id={}&from=2025-09-01&to=2025-09-30",
                w.sc.school_id
            ));
        }
        out.push((path.clone(), url));
    }
    out
}

/// The personal data the world holds, as the database has it: names and codes of students,
/// payers' names, memos, guardians' contacts.
pub async fn needles(app: &TestApp) -> Vec<String> {
    let mut n = texts(app, "SELECT full_name FROM students").await;
    n.extend(texts(app, "SELECT student_code FROM students").await);
    n.extend(texts(app, "SELECT payer_name FROM payments").await);
    n.extend(texts(app, "SELECT memo FROM payments").await);
    n.extend(texts(app, "SELECT contact FROM parent_links").await);
    n.push("Pham Gia Huy".into());
    n
}

/// Whether an answer holds personal data: one of `needles`, or an archived body.
pub fn holds(body: &str, needles: &[String]) -> Option<String> {
    if let Some(n) = needles.iter().find(|n| body.contains(n.as_str())) {
        return Some(n.clone());
    }
    fn archived(v: &Value) -> bool {
        match v {
            Value::Object(o) => o.iter().any(|(k, v)| {
                (k == "body_base64" && v.as_str().is_some_and(|b| !b.is_empty())) || archived(v)
            }),
            Value::Array(a) => a.iter().any(archived),
            _ => false,
        }
    }
    let v: Value = serde_json::from_str(body).ok()?;
    archived(&v).then(|| "an archived body".to_string())
}

async fn raw_get(
    app: &TestApp,
    url: &str,
    token: Option<&str>,
    cookie: Option<&str>,
) -> (StatusCode, String) {
    let mut req = app.client.get(format!("{}{url}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(c) = cookie {
        req = req.header("cookie", format!("feerecon_session={c}"));
    }
    let r = req.send().await.expect("get");
    (r.status(), r.text().await.expect("body"))
}

async fn every_answer_with_personal_data_is_logged(app: TestApp) {
    let w = world(&app).await;
    let needles = needles(&app).await;
    let mut logged = Vec::new();
    let mut wrong = Vec::new();
    for (route, url) in reads(&w) {
        let parent = route.starts_with("/api/v1/parent");
        let before = scalar(
            &app,
            &format!("SELECT COUNT(*) FROM processing_log WHERE route = '{route}'"),
        )
        .await;
        let (status, body) = if parent {
            raw_get(&app, &url, None, Some(&w.parent_cookie)).await
        } else {
            raw_get(&app, &url, Some(ADMIN), None).await
        };
        let after = scalar(
            &app,
            &format!("SELECT COUNT(*) FROM processing_log WHERE route = '{route}'"),
        )
        .await;
        match (status == StatusCode::OK, holds(&body, &needles)) {
            (true, Some(what)) => {
                if after != before + 1 {
                    wrong.push(format!(
                        "{route}: answered {what}, logged {} times",
                        after - before
                    ));
                    continue;
                }
                logged.push(route.clone());
                // The students of the answer: the paid student wherever their name is shown.
                if body.contains("Nguyễn Minh Anh") {
                    let n = scalar(&app, &format!(
                        "SELECT COUNT(*) FROM processing_log_students ls JOIN processing_log l ON l.id = ls.log_id
                         WHERE l.route = '{route}' AND ls.student_id = {}", w.student)).await;
                    if n == 0 {
                        wrong.push(format!("{route}: showed the student, logged without them"));
                    }
                }
            }
            (true, None) if after != before => {
                wrong.push(format!("{route}: no personal data, yet logged"))
            }
            (false, _) if after != before => wrong.push(format!("{route}: {status}, yet logged")),
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    eprintln!(
        "{} routes answer with personal data, each logged: {logged:?}",
        logged.len()
    );
    for must in [
        "/api/v1/schools/{school_id}/students",
        "/api/v1/schools/{school_id}/students/{student_id}",
        "/api/v1/schools/{school_id}/invoices",
        "/api/v1/schools/{school_id}/invoices/{invoice_id}",
        "/api/v1/schools/{school_id}/payments",
        "/api/v1/schools/{school_id}/payments/{payment_id}",
        "/api/v1/schools/{school_id}/payments/{payment_id}/receipt",
        "/api/v1/schools/{school_id}/payments/{payment_id}/receipt.html",
        "/api/v1/schools/{school_id}/exceptions",
        "/api/v1/schools/{school_id}/provider-events",
        "/api/v1/schools/{school_id}/parent-links",
        "/api/v1/payment-codes/{code}",
        "/api/v1/parent",
        "/api/v1/parent/invoices",
        "/api/v1/parent/invoices/{invoice_id}",
    ] {
        assert!(
            logged.iter().any(|r| r == must),
            "{must} answered no personal data in the walk"
        );
    }
    // Who, never a token: the admin's token id and role; the parent's session and link.
    let raw = texts(&app, "SELECT route || ' ' || role || ' ' || COALESCE(CAST(api_token_id AS TEXT), '-') || ' ' || COALESCE(CAST(session_id AS TEXT), '-') || ' ' || COALESCE(CAST(parent_link_id AS TEXT), '-') FROM processing_log").await;
    assert!(raw.iter().all(|r| !r.contains(ADMIN)), "{raw:?}");
    let parent_rows = scalar(&app, &format!(
        "SELECT COUNT(*) FROM processing_log WHERE role = 'parent' AND session_id IS NOT NULL AND parent_link_id = {} AND api_token_id IS NULL", w.link)).await;
    assert!(parent_rows >= 3, "{raw:?}");
}
on_both_backends!(
    every_answer_with_personal_data_is_logged,
    every_answer_with_personal_data_is_logged
);

/// The id of the token labelled `label` (the test school's are labelled by role).
async fn token_id(app: &TestApp, label: &str) -> i64 {
    let (s, b) = app.get("/api/v1/tokens", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b.as_array()
        .or_else(|| b["items"].as_array())
        .expect("tokens")
        .iter()
        .find(|t| t["label"] == label)
        .and_then(|t| t["id"].as_i64())
        .expect("token id")
}

async fn who_saw_a_student_and_what_a_token_saw(app: TestApp) {
    let w = world(&app).await;
    let sc = &w.sc;
    let other = crate::parents::student_id(&app, sc, "HS0003").await;
    let t0 = chrono::Utc::now();
    let student = format!("/api/v1/schools/{}/students/{}", sc.school_id, w.student);
    let (s, _) = app.get(&student, &sc.accountant).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .get(
            &format!("/api/v1/schools/{}/payments", sc.school_id),
            &sc.cashier,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, me) = app
        .with_cookie(Method::GET, "/api/v1/parent", &w.parent_cookie, None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let (s, _, session) = app
        .with_cookie(Method::GET, "/api/v1/session", &w.parent_cookie, None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    let parent_session = session["id"].as_i64().expect("session id");
    // A read of another student.
    let (s, _) = app
        .get(
            &format!("/api/v1/schools/{}/students/{other}", sc.school_id),
            &sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let t1 = chrono::Utc::now() + chrono::Duration::seconds(1);
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    // Who saw student X between t0 and t1.
    let (s, b) = app
        .get(
            &format!(
                "/api/v1/processing-log?student_id={}&from={}&to={}",
                w.student,
                at(t0),
                at(t1)
            ),
            ADMIN,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().expect("items");
    let seen: Vec<(String, String)> = items
        .iter()
        .map(|e| {
            (
                e["role"].as_str().unwrap_or("").to_string(),
                e["route"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        seen.contains(&(
            "accountant".into(),
            "/api/v1/schools/{school_id}/students/{student_id}".into()
        )),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(
            "cashier".into(),
            "/api/v1/schools/{school_id}/payments".into()
        )),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("parent".into(), "/api/v1/parent".into())),
        "{seen:?}"
    );
    assert!(items.iter().all(|e| e["student_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .any(|i| i.as_i64() == Some(w.student))));
    assert!(
        !b.to_string().contains("Nguyễn Minh Anh"),
        "the log names no one: {b}"
    );
    let parent = items
        .iter()
        .find(|e| e["role"] == "parent")
        .expect("parent read");
    assert_eq!(parent["actor"], format!("session:{parent_session}"));
    assert_eq!(parent["parent_link_id"], w.link);

    // Whose data the accountant's token saw.
    let accountant = token_id(&app, "accountant").await;
    let (s, b) = app
        .get(
            &format!(
                "/api/v1/processing-log?actor=token:{accountant}&from={}&to={}",
                at(t0),
                at(t1)
            ),
            ADMIN,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{b}");
    assert!(items
        .iter()
        .all(|e| e["role"] == "accountant" && e["actor"] == format!("token:{accountant}")));
    let students: Vec<i64> = items
        .iter()
        .flat_map(|e| {
            e["student_ids"]
                .as_array()
                .expect("ids")
                .iter()
                .filter_map(Value::as_i64)
        })
        .collect();
    assert_eq!(students, vec![w.student, other]);

    // The parent's session.
    let (s, b) = app
        .get(
            &format!("/api/v1/processing-log?actor=session:{parent_session}"),
            ADMIN,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!b["items"].as_array().expect("items").is_empty());
    assert!(b["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|e| e["role"] == "parent"));

    // A window before everything: nothing.
    let (s, b) = app
        .get(
            &format!(
                "/api/v1/processing-log?student_id={}&to={}",
                w.student,
                at(t0 - chrono::Duration::hours(1))
            ),
            ADMIN,
        )
        .await;
    assert_eq!(
        (s, b["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{b}"
    );

    // Bad input: 400, and only an admin asks.
    for q in [
        "actor=nobody:1",
        "actor=token:x",
        "from=yesterday",
        "to=2025-13-01T00:00:00Z",
        "student_id=0",
        "limit=0",
        "colour=red",
    ] {
        let (s, b) = app.get(&format!("/api/v1/processing-log?{q}"), ADMIN).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {b}");
        assert!(b["error"]["code"].is_string(), "{b}");
    }
    for token in [&sc.accountant, &sc.auditor, &sc.cashier] {
        let (s, _) = app.get("/api/v1/processing-log", token).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _, _) = app
        .with_cookie(
            Method::GET,
            "/api/v1/processing-log",
            &w.parent_cookie,
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
on_both_backends!(
    who_saw_a_student_and_what_a_token_saw,
    who_saw_a_student_and_what_a_token_saw
);

async fn the_database_keeps_the_processing_log_append_only(app: TestApp) {
    let w = world(&app).await;
    let (s, _) = app
        .get(
            &format!("/api/v1/schools/{}/students/{}", w.sc.school_id, w.student),
            &w.sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let n = app.count("processing_log").await;
    assert!(n > 0);
    for sql in [
        "UPDATE processing_log SET route = '/elsewhere'",
        "UPDATE processing_log_students SET student_id = 999",
        "DELETE FROM processing_log_students",
        "DELETE FROM processing_log",
    ] {
        assert!(app.execute_sql(sql).await.is_err(), "{sql} was allowed");
    }
    if app.backend == crate::helpers::Backend::Postgres {
        assert!(app
            .execute_sql("TRUNCATE processing_log_students, processing_log")
            .await
            .is_err());
    }
    assert_eq!(app.count("processing_log").await, n);
}
on_both_backends!(
    the_database_keeps_the_processing_log_append_only,
    the_database_keeps_the_processing_log_append_only
);

async fn auditors_see_pseudonyms_unless_they_open_a_record_with_a_reason(app: TestApp) {
    let w = world(&app).await;
    let sc = &w.sc;
    let needles = needles(&app).await;
    let mut wrong = Vec::new();
    let mut pseudonymised = Vec::new();
    for (route, url) in reads(&w) {
        if route.starts_with("/api/v1/parent") {
            continue;
        }
        let before = app.count("processing_log").await;
        let (status, body) = raw_get(&app, &url, Some(&sc.auditor), None).await;
        if status != StatusCode::OK {
            continue;
        }
        if let Some(what) = holds(&body, &needles) {
            wrong.push(format!("{route}: shows an auditor {what}"));
        }
        if body.contains("HS-") {
            pseudonymised.push(route.clone());
            assert_eq!(
                app.count("processing_log").await,
                before + 1,
                "{route}: an auditor's read is logged too"
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    eprintln!(
        "{} routes show an auditor pseudonyms: {pseudonymised:?}",
        pseudonymised.len()
    );
    assert!(pseudonymised.len() >= 8, "{pseudonymised:?}");
    let (_, t) = app
        .get(
            &format!("/api/v1/schools/{}/payments/{}", sc.school_id, w.transfer),
            &sc.auditor,
        )
        .await;
    assert_eq!(
        (t["memo"].clone(), t["amount"].as_i64()),
        (Value::Null, Some(500_000)),
        "{t}"
    );

    // One pseudonym per student and department, wherever the student appears.
    let key = feerecon::sealer::Sealer::from_base64(crate::helpers::SEALER_KEY)
        .expect("key")
        .pseudonym_key();
    let want = feerecon::domain::pseudonym::pseudonym(&key, sc.department_id, w.student);
    let (_, s) = app
        .get(
            &format!("/api/v1/schools/{}/students/{}", sc.school_id, w.student),
            &sc.auditor,
        )
        .await;
    assert_eq!(
        (s["full_name"].as_str(), s["student_code"].as_str()),
        (Some(want.as_str()), Some(want.as_str())),
        "{s}"
    );
    assert_eq!(
        (s["family_key"].clone(), s["class_name"].as_str()),
        (Value::Null, Some("6A1")),
        "{s}"
    );
    let (_, i) = app
        .get(
            &format!("/api/v1/schools/{}/invoices/{}", sc.school_id, w.invoice),
            &sc.auditor,
        )
        .await;
    assert_eq!(i["student_name"], want.as_str(), "{i}");
    assert_eq!(i["total"], 1_235_000, "amounts stay: {i}");
    let (_, p) = app
        .get(
            &format!("/api/v1/schools/{}/payments/{}", sc.school_id, w.cash),
            &sc.auditor,
        )
        .await;
    assert_eq!(
        (
            p["payer_name"].clone(),
            p["memo"].clone(),
            p["amount"].as_i64()
        ),
        (Value::Null, Value::Null, Some(100_000)),
        "{p}"
    );
    let (_, q) = app
        .get(
            &format!(
                "/api/v1/schools/{}/exceptions/{}",
                sc.school_id, w.exception
            ),
            &sc.auditor,
        )
        .await;
    assert_eq!(
        (q["memo"].clone(), q["amount"].as_i64()),
        (Value::Null, Some(500_000)),
        "{q}"
    );
    assert_ne!(
        feerecon::domain::pseudonym::pseudonym(&key, sc.department_id + 1, w.student),
        want,
        "another department would see another"
    );

    // Opening a record takes a reason of 10 to 500 characters; a bad one changes nothing.
    let open = format!(
        "/api/v1/schools/{}/students/{}/open",
        sc.school_id, w.student
    );
    let (audit, logged) = (
        app.count("audit_log").await,
        app.count("processing_log").await,
    );
    for body in [
        json!({}),
        json!({"reason": "because"}),
        json!({"reason": "x".repeat(501)}),
        json!({"reason": "   \t     \n    "}),
        json!({"reason": "kiểm tra khoản thu", "extra": 1}),
    ] {
        let (s, b) = app.post(&open, &sc.auditor, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert!(b["error"]["code"].is_string(), "{b}");
    }
    assert_eq!(
        (
            app.count("audit_log").await,
            app.count("processing_log").await
        ),
        (audit, logged)
    );
    let reason = "Đối chiếu khoản miễn giảm tháng 9 với hồ sơ";
    let (s, b) = app
        .post(&open, &sc.auditor, json!({"reason": reason}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["full_name"].as_str(), b["student_code"].as_str()),
        (Some("Nguyễn Minh Anh"), Some("HS0001")),
        "{b}"
    );
    assert_eq!(app.count(&format!("processing_log WHERE reason = '{reason}' AND role = 'auditor' AND route = '/api/v1/schools/{{school_id}}/students/{{student_id}}/open'")).await, 1);
    assert_eq!(app.count(&format!("audit_log WHERE action = 'personal_data.open' AND entity = 'student' AND entity_id = {}", w.student)).await, 1);
    let (s, b) = app
        .post(
            &format!("/api/v1/schools/{}/payments/{}/open", sc.school_id, w.cash),
            &sc.auditor,
            json!({"reason": reason}),
        )
        .await;
    assert_eq!(
        (s, b["payer_name"].as_str(), b["memo"].as_str()),
        (
            StatusCode::OK,
            Some("Trần Văn Bố"),
            Some("tiền ăn bé Minh Anh")
        ),
        "{b}"
    );
    // Not another department's student, and not for the school's own staff, who see names.
    let other = app.school("PSX", "QX").await;
    let (s, _) = app
        .post(&open, &other.auditor, json!({"reason": reason}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(
            &format!("/api/v1/schools/{}/students/999999/open", sc.school_id),
            &sc.auditor,
            json!({"reason": reason}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(&open, &sc.accountant, json!({"reason": reason}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let report = app.get("/api/v1/audit/verify", ADMIN).await.1;
    assert!(
        report
            .as_array()
            .expect("reports")
            .iter()
            .all(|r| r["intact"] == true),
        "{report}"
    );
}
on_both_backends!(
    auditors_see_pseudonyms_unless_they_open_a_record_with_a_reason,
    auditors_see_pseudonyms_unless_they_open_a_record_with_a_reason
);

/// A SePay transfer into the statement's account (the Vietcombank fixture's).
async fn vcb_transfer(app: &TestApp, path: &str, key: &str, t: (i64, &str, &str, i64, &str)) {
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

/// Every text the archive, the ledger and the bank lines hold, bodies decoded.
async fn held_texts(app: &TestApp) -> String {
    let mut all = texts(app, "SELECT full_name || ' ' || student_code FROM students").await;
    all.extend(
        texts(
            app,
            "SELECT COALESCE(payer_name, '') || ' ' || COALESCE(memo, '') FROM payments",
        )
        .await,
    );
    all.extend(
        texts(
            app,
            "SELECT memo || ' ' || COALESCE(counterparty, '') FROM statement_lines",
        )
        .await,
    );
    all.extend(texts(app, "SELECT query FROM provider_events").await);
    all.extend(
        texts(
            app,
            "SELECT label || ' ' || COALESCE(contact, '') FROM parent_links",
        )
        .await,
    );
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
    let bodies: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT body FROM provider_events")
        .fetch_all(&pool)
        .await
        .expect("bodies");
    pool.close().await;
    all.extend(
        bodies
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b.0).into_owned()),
    );
    all.join("\n")
}

/// The books as sums: payments, allocations, how many payments, bank lines, archived deliveries.
async fn books(app: &TestApp) -> (i64, i64, i64, i64, i64) {
    (
        scalar(app, "SELECT CAST(SUM(amount) AS BIGINT) FROM payments").await,
        scalar(app, "SELECT CAST(SUM(amount) AS BIGINT) FROM allocations").await,
        scalar(app, "SELECT COUNT(*) FROM payments").await,
        scalar(
            app,
            "SELECT CAST(SUM(amount) AS BIGINT) FROM statement_lines",
        )
        .await,
        app.count("provider_events").await,
    )
}

async fn a_student_s_data_is_exported_and_erased_while_the_books_still_add_up(app: TestApp) {
    let (sc, key, path) = crate::webhooks::sepay_school(&app, "0071000123456").await;
    let acct = app
        .approved_account(&sc, "970436", "0071000123456", "TRUONG THCS LE QUY DON")
        .await;
    let (_, inv) = app
        .get("/api/v1/payment-codes/QD3CFPSA", &sc.accountant)
        .await;
    let student = inv["student_id"].as_i64().expect("student");
    let invoice = inv["id"].as_i64().expect("invoice");
    let (_, s) = app
        .get(
            &format!("/api/v1/schools/{}/students/{student}", sc.school_id),
            &sc.accountant,
        )
        .await;
    let name = s["full_name"].as_str().expect("name").to_string();
    let code = s["student_code"].as_str().expect("code").to_string();
    // Paid by a transfer the bank's statement shows; named in another transfer's memo; a link
    // with a guardian's phone; a cash payment of another pupil, which stays as it is.
    vcb_transfer(
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
    let folded = feerecon::recon::memo::fold(&name);
    vcb_transfer(
        &app,
        &path,
        &key,
        (
            502,
            "2025-09-04 10:00:00",
            &format!("gui tien cho {folded}"),
            1_000,
            "FT502",
        ),
    )
    .await;
    vcb_transfer(
        &app,
        &path,
        &key,
        (503, "2025-09-02 10:00:00", "hoc phi", 777_000, "FT999"),
    )
    .await;
    let (s, b) = app
        .upload_statement(
            &sc,
            &acct,
            "",
            "text/csv",
            std::fs::read(format!(
                "{}/fixtures/statements/vietcombank-2025-09.csv",
                env!("CARGO_MANIFEST_DIR")
            ))
            .expect("statement"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    crate::parents::issue(
        &app,
        &sc,
        json!({"for": "student", "student_id": student, "label": "Mẹ", "contact": "0903 123 456"}),
    )
    .await;
    let other = crate::parents::student_id(&app, &sc, "HS0003").await;
    let other_invoice = crate::parents::invoices_of(&app, &sc, other).await[0];
    let (s, cash) = app
        .post(&format!("/api/v1/schools/{}/payments", sc.school_id), &sc.cashier,
            json!({"channel": "cash", "amount": 50_000, "payer_name": "Lê Văn Cường", "allocations": [{"invoice_id": other_invoice, "amount": 50_000}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cash}");

    // The export: everything held, admin only.
    let export = format!(
        "/api/v1/schools/{}/students/{student}/personal-data",
        sc.school_id
    );
    let (s, e) = app.get(&export, ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(
        (e["student"]["full_name"].as_str(), e["erased_at"].clone()),
        (Some(name.as_str()), Value::Null)
    );
    assert!(
        e["invoices"]
            .as_array()
            .expect("invoices")
            .iter()
            .any(|i| i["id"] == invoice && i["lines"].is_array()),
        "{e}"
    );
    let memos: Vec<&str> = e["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .filter_map(|p| p["memo"].as_str())
        .collect();
    assert!(
        memos.iter().any(|m| m.contains("QD3CFPSA")) && memos.iter().any(|m| m.contains(&folded)),
        "{memos:?}"
    );
    assert!(
        !memos.iter().any(|m| m.contains("Cường")),
        "not another pupil's payment"
    );
    assert!(
        e["deliveries"].as_array().expect("deliveries").len() >= 2,
        "{e}"
    );
    assert!(
        e["statement_lines"]
            .as_array()
            .expect("lines")
            .iter()
            .any(|l| l["memo"].as_str().is_some_and(|m| m.contains("QD3CFPSA"))),
        "{e}"
    );
    assert_eq!(e["parent_links"][0]["contact"], "0903 123 456");
    assert!(
        !e["reads"].as_array().expect("reads").is_empty(),
        "who read their data: {e}"
    );
    assert!(
        !e.to_string().contains("token_hash"),
        "never a token's hash"
    );
    for t in [&sc.accountant, &sc.auditor, &sc.cashier] {
        assert_eq!(app.get(&export, t).await.0, StatusCode::FORBIDDEN);
    }
    let foreign = app.school("PSE", "QE").await;
    let theirs = app.student(&foreign, "HS9", "Đỗ Văn Xa", "6A1").await;
    for (school, id) in [
        (sc.school_id, theirs),
        (sc.school_id, 999_999),
        (foreign.school_id, student),
    ] {
        let (s, _) = app
            .get(
                &format!("/api/v1/schools/{school}/students/{id}/personal-data"),
                ADMIN,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app
            .post(
                &format!("/api/v1/schools/{school}/students/{id}/erase"),
                ADMIN,
                json!({"reason": "Yêu cầu ngày 01/10/2025"}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    // The books before.
    let before = books(&app).await;
    let (_, invoice_before) = app
        .get(
            &format!("/api/v1/schools/{}/invoices/{invoice}", sc.school_id),
            &sc.accountant,
        )
        .await;

    // A bad reason, another role: refused, nothing changed.
    let erase = format!("/api/v1/schools/{}/students/{student}/erase", sc.school_id);
    let audit = app.count("audit_log").await;
    for body in [
        json!({}),
        json!({"reason": "short"}),
        json!({"reason": "y".repeat(501)}),
    ] {
        let (s, b) = app.post(&erase, ADMIN, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    }
    assert_eq!(
        app.post(
            &erase,
            &sc.accountant,
            json!({"reason": "Yêu cầu ngày 01/10/2025"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.count("audit_log").await, audit);
    assert!(held_texts(&app).await.contains(&folded));

    let (s, er) = app
        .post(
            &erase,
            ADMIN,
            json!({"reason": "Yêu cầu của phụ huynh ngày 01/10/2025"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{er}");
    let key = feerecon::sealer::Sealer::from_base64(crate::helpers::SEALER_KEY)
        .expect("key")
        .pseudonym_key();
    let p = feerecon::domain::pseudonym::pseudonym(&key, sc.department_id, student);
    assert_eq!(
        (er["pseudonym"].as_str(), er["already_erased"].as_bool()),
        (Some(p.as_str()), Some(false)),
        "{er}"
    );
    assert!(
        er["payments"].as_i64() >= Some(2)
            && er["deliveries"].as_i64() >= Some(2)
            && er["statement_lines"].as_i64() >= Some(1),
        "{er}"
    );
    assert_eq!(
        app.count("audit_log").await,
        audit + 1,
        "one record: the erasure"
    );
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'student.erase' AND entity_id = {student}"
        ))
        .await,
        1
    );
    assert_eq!(er["parent_links"].as_i64(), Some(1), "{er}");
    let (_, e) = app.get(&export, ADMIN).await;
    assert_eq!(
        (
            e["parent_links"][0]["label"].as_str(),
            e["parent_links"][0]["contact"].clone(),
            e["parent_links"][0]["state"].as_str()
        ),
        (Some(p.as_str()), Value::Null, Some("revoked")),
        "{e}"
    );

    // Nothing names them any more; the books are as they were, to the đồng.
    let held = held_texts(&app).await;
    for gone in [
        name.as_str(),
        folded.as_str(),
        code.as_str(),
        "NGUYEN VAN BO",
        "0903 123 456",
    ] {
        assert!(!held.contains(gone), "{gone} is still held");
    }
    assert!(held.contains("Lê Văn Cường"), "another pupil's payer stays");
    assert_eq!(books(&app).await, before);
    let (_, s) = app
        .get(
            &format!("/api/v1/schools/{}/students/{student}", sc.school_id),
            &sc.accountant,
        )
        .await;
    assert_eq!(
        (
            s["full_name"].as_str(),
            s["student_code"].as_str(),
            s["class_name"].as_str()
        ),
        (Some(p.as_str()), Some(p.as_str()), Some("6A1")),
        "{s}"
    );
    let (_, invoice_after) = app
        .get(
            &format!("/api/v1/schools/{}/invoices/{invoice}", sc.school_id),
            &sc.accountant,
        )
        .await;
    for k in ["total", "paid", "outstanding", "status", "payment_code"] {
        assert_eq!(invoice_after[k], invoice_before[k], "{k}");
    }
    let (s, e) = app.get(&export, ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert!(e["erased_at"].is_string());
    let paid = e["payments"].as_array().expect("payments");
    assert!(
        paid.iter()
            .all(|x| x["memo"].is_null() || x["memo"] == p.as_str()),
        "{e}"
    );
    let receipt = paid[0]["id"].as_i64().expect("payment");
    assert_eq!(
        app.get(
            &format!(
                "/api/v1/schools/{}/payments/{receipt}/receipt",
                sc.school_id
            ),
            &sc.accountant
        )
        .await
        .0,
        StatusCode::OK
    );
    let out = crate::cli::feerecon(&app.db_url, &["verify-audit"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Twice: nothing more.
    let (s, again) = app
        .post(
            &erase,
            ADMIN,
            json!({"reason": "Yêu cầu của phụ huynh ngày 01/10/2025"}),
        )
        .await;
    assert_eq!(
        (
            s,
            again["already_erased"].as_bool(),
            again["erased_at"].clone()
        ),
        (StatusCode::OK, Some(true), er["erased_at"].clone()),
        "{again}"
    );
    assert_eq!(app.count("audit_log").await, audit + 1);
    assert_eq!(held_texts(&app).await, held);

    // The database allows redaction and nothing else.
    let cash_id = cash["id"].as_i64().expect("cash");
    let pg = app.backend == crate::helpers::Backend::Postgres;
    let as_blob = |t: &str| {
        if pg {
            format!("convert_to('{t}', 'UTF8')")
        } else {
            format!("CAST('{t}' AS BLOB)")
        }
    };
    let live = scalar(
        &app,
        "SELECT MIN(id) FROM provider_events WHERE redacted_at IS NULL",
    )
    .await;
    let redacted = scalar(
        &app,
        "SELECT MIN(id) FROM provider_events WHERE redacted_at IS NOT NULL",
    )
    .await;
    for sql in [
        format!("UPDATE payments SET memo = 'something else' WHERE id = {cash_id}"),
        format!("UPDATE payments SET payer_name = NULL WHERE id = {cash_id}"),
        format!("UPDATE payments SET amount = amount + 1 WHERE id = {cash_id}"),
        format!("UPDATE payments SET payer_name = 'HS-12345678', amount = 1 WHERE id = {cash_id}"),
        format!("UPDATE provider_events SET query = 'x' WHERE id = {live}"),
        format!("UPDATE provider_events SET body = {} WHERE id = {live}", as_blob("nothing")),
        format!("UPDATE provider_events SET body = {}, query = '', redacted_at = 'now', redacted_as = 'HS-1234567' WHERE id = {live}", as_blob("HS-1234567")),
        format!("UPDATE provider_events SET body = {}, query = '', redacted_at = 'again', redacted_as = 'HS-12345678' WHERE id = {redacted}", as_blob("HS-12345678")),
        "UPDATE statement_lines SET memo = 'something else'".to_string(),
        "UPDATE statement_lines SET amount = amount + 1".to_string(),
    ]
    .iter()
    {
        assert!(app.execute_sql(sql).await.is_err(), "allowed: {sql}");
    }
    for sql in [
        format!("UPDATE payments SET payer_name = 'HS-12345678' WHERE id = {cash_id}"),
        format!("UPDATE provider_events SET body = {}, query = '', redacted_at = 'now', redacted_as = 'HS-12345678' WHERE id = {live}", as_blob("HS-12345678")),
    ] {
        app.execute_sql(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}
on_both_backends!(
    a_student_s_data_is_exported_and_erased_while_the_books_still_add_up,
    a_student_s_data_is_exported_and_erased_while_the_books_still_add_up
);

/// The link's label and guardian's contact, as held.
async fn link_held(app: &TestApp, id: i64) -> (String, Option<String>, bool, bool) {
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
    let row: (String, Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT label, contact, revoked_at, redacted_at FROM parent_links WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("link");
    pool.close().await;
    (row.0, row.1, row.2.is_some(), row.3.is_some())
}

/// A student's erasure revokes their own links and strips them of the guardian's label and
/// contact; a family link keeps them while it still serves a brother or sister, and loses them
/// with the last child. The database allows a link no other change.
async fn an_erasure_reaches_the_parent_links_but_spares_a_sibling_s(app: TestApp) {
    let sc = crate::parents::school_with_families(&app, "PLE", "PE").await;
    let anh = crate::parents::student_id(&app, &sc, "HS0001").await;
    let em = crate::parents::student_id(&app, &sc, "HS0002").await;
    let own = crate::parents::issue(&app, &sc,
        json!({"for": "student", "student_id": anh, "label": "Bố Nguyễn Văn Hùng", "contact": "0912 345 678"})).await;
    let family = crate::parents::issue(&app, &sc,
        json!({"for": "family", "family_key": "GD-NGUYEN-01", "label": "Mẹ Trần Thị Lan", "contact": "0987 654 321"})).await;
    let (own_id, family_id) = (
        own["id"].as_i64().expect("id"),
        family["id"].as_i64().expect("id"),
    );
    let family_token = family["token"].as_str().expect("token").to_string();
    let cookie = crate::parents::open(&app, &family_token).await;
    let erase = |student: i64| {
        let app = &app;
        let path = format!("/api/v1/schools/{}/students/{student}/erase", sc.school_id);
        async move {
            let (s, b) = app
                .post(
                    &path,
                    ADMIN,
                    json!({"reason": "Yêu cầu của phụ huynh ngày 02/10/2025"}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b
        }
    };

    let first = erase(anh).await;
    assert_eq!(first["parent_links"].as_i64(), Some(1), "{first}");
    let p = first["pseudonym"].as_str().expect("pseudonym").to_string();
    assert_eq!(link_held(&app, own_id).await, (p.clone(), None, true, true));
    assert_eq!(
        link_held(&app, family_id).await,
        (
            "Mẹ Trần Thị Lan".to_string(),
            Some("0987 654 321".to_string()),
            false,
            false
        ),
        "the family link still serves HS0002"
    );
    let (s, _, _) = app
        .with_cookie(Method::GET, "/api/v1/parent", &cookie, None, None)
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the sibling's guardian keeps their session"
    );
    let (s, _, gone) =
        crate::parents::post_link(&app, own["token"].as_str().expect("token"), &[]).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(!gone.to_string().contains("0912"), "{gone}");

    let second = erase(em).await;
    assert_eq!(second["parent_links"].as_i64(), Some(1), "{second}");
    let q = second["pseudonym"].as_str().expect("pseudonym").to_string();
    assert_eq!(link_held(&app, family_id).await, (q, None, true, true));
    let (s, _, _) = app
        .with_cookie(Method::GET, "/api/v1/parent", &cookie, None, None)
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the revoked link's session ended"
    );
    let held = texts(
        &app,
        "SELECT label || ' ' || COALESCE(contact, '') FROM parent_links",
    )
    .await
    .join("\n");
    for gone in ["Hùng", "Lan", "0912 345 678", "0987 654 321"] {
        assert!(!held.contains(gone), "{gone} is still held");
    }
    // No audit record names a student, so none outlives an erasure holding their name or code.
    let added = app.student(&sc, "HS7777", "Lý Thị Mai", "9A1").await;
    erase(added).await;
    let records = texts(&app, "SELECT details FROM audit_log")
        .await
        .join("\n");
    for gone in ["HS7777", "Lý Thị Mai", "HS0001", "Nguyễn Minh Anh"] {
        assert!(!records.contains(gone), "the audit log holds {gone}");
    }
    let out = crate::cli::feerecon(&app.db_url, &["verify-audit"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A live link: revoked once, never edited; redacted once, to a pseudonym, never back.
    let live = crate::parents::issue(&app, &sc,
        json!({"for": "student", "student_id": crate::parents::student_id(&app, &sc, "HS0003").await, "label": "Ông", "contact": "0900 000 000"})).await;
    let live = live["id"].as_i64().expect("id");
    for sql in [
        format!("UPDATE parent_links SET label = 'Bà' WHERE id = {live}"),
        format!("UPDATE parent_links SET contact = NULL WHERE id = {live}"),
        format!("UPDATE parent_links SET label = 'Bà', revoked_at = 'now', revoked_by = 'x' WHERE id = {live}"),
        format!("UPDATE parent_links SET label = 'not a pseudonym', contact = NULL, redacted_at = 'now', revoked_at = 'now', revoked_by = 'x' WHERE id = {live}"),
        format!("UPDATE parent_links SET label = 'HS-12345678', contact = 'kept', redacted_at = 'now', revoked_at = 'now', revoked_by = 'x' WHERE id = {live}"),
        format!("UPDATE parent_links SET label = 'HS-12345678', contact = NULL, redacted_at = 'now' WHERE id = {live}"),
        format!("UPDATE parent_links SET label = 'HS-ABCDEFGH' WHERE id = {own_id}"),
        format!("UPDATE parent_links SET redacted_at = NULL WHERE id = {own_id}"),
        format!("UPDATE parent_links SET label = 'HS-ABCDEFGH', redacted_at = 'again' WHERE id = {own_id}"),
        format!("UPDATE parent_links SET token_hash = 'x', label = 'HS-12345678', contact = NULL, redacted_at = 'now', revoked_at = 'now', revoked_by = 'x' WHERE id = {live}"),
    ] {
        assert!(app.execute_sql(&sql).await.is_err(), "allowed: {sql}");
    }
    app.execute_sql(&format!(
        "UPDATE parent_links SET label = 'HS-12345678', contact = NULL, redacted_at = 'now', revoked_at = 'now', revoked_by = 'x' WHERE id = {live}"
    ))
    .await
    .expect("a redaction that also revokes");
}
on_both_backends!(
    an_erasure_reaches_the_parent_links_but_spares_a_sibling_s,
    an_erasure_reaches_the_parent_links_but_spares_a_sibling_s
);

async fn the_processing_log_is_purged_after_a_year_and_not_before(app: TestApp) {
    let w = world(&app).await;
    let recent = app.count("processing_log").await;
    assert!(recent > 0);
    let old = (chrono::Utc::now() - chrono::Duration::days(400))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    for id in [900_001, 900_002] {
        app.execute_sql(&format!(
            "INSERT INTO processing_log (id, at, api_token_id, role, method, route, status, students) VALUES ({id}, '{old}', 1, 'admin', 'GET', '/api/v1/schools/{{school_id}}/students', 200, 1)"
        ))
        .await
        .expect("old read");
        app.execute_sql(&format!(
            "INSERT INTO processing_log_students (log_id, student_id, at) VALUES ({id}, {}, '{old}')",
            w.student
        ))
        .await
        .expect("old read's student");
    }
    let n = feerecon::retention::purge_once(&app.state.store, chrono::Duration::days(30))
        .await
        .expect("purge");
    assert_eq!(n, 4, "two reads and their students");
    assert_eq!(
        app.count("processing_log").await,
        recent,
        "a recent read stays"
    );
    assert_eq!(
        app.count("processing_log_students WHERE log_id >= 900000")
            .await,
        0
    );
    assert_eq!(
        app.count(
            "audit_log WHERE action = 'processing_log.purge' AND details LIKE '%\"deleted\":4%'"
        )
        .await,
        1
    );
    // Nothing more is due: nothing deleted, nothing audited.
    let audit = app.count("audit_log").await;
    assert_eq!(
        feerecon::retention::purge_once(&app.state.store, chrono::Duration::days(30))
            .await
            .expect("purge"),
        0
    );
    assert_eq!(app.count("audit_log").await, audit);
    let out = crate::cli::feerecon(&app.db_url, &["verify-audit"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
on_both_backends!(
    the_processing_log_is_purged_after_a_year_and_not_before,
    the_processing_log_is_purged_after_a_year_and_not_before
);
