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
