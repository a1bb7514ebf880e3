//! Parents without passwords: links issued, listed, revoked and re-issued; the link's page that
//! names nobody and uses nothing up; the POST that exchanges a link for a session cookie; what a
//! parent reads with it (their family's and nothing else); wrong, expired, revoked and malformed
//! links, answered alike and in the same time, and rate-limited.

use crate::both_backends;
use crate::helpers::{School, TestApp, ADMIN};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A school with September's invoices: HS0001 and HS0002 are one family (GD-NGUYEN-01),
/// HS0003 another.
pub async fn school_with_families(app: &TestApp, suffix: &str, prefix: &str) -> School {
    let sc = app.school(suffix, prefix).await;
    let (s, b) = app.import_fixture(&sc, "thcs-2025-09.csv").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    sc
}

pub async fn student_id(app: &TestApp, sc: &School, code: &str) -> i64 {
    let (s, b) = app
        .get(
            &format!(
                "/api/v1/schools/{}/students?student_code={code}",
                sc.school_id
            ),
            &sc.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"][0]["id"].as_i64().expect("student")
}

/// The school's invoices of a student.
pub async fn invoices_of(app: &TestApp, sc: &School, student: i64) -> Vec<i64> {
    let (_, b) = app
        .get(
            &format!(
                "/api/v1/schools/{}/invoices?student_id={student}",
                sc.school_id
            ),
            &sc.accountant,
        )
        .await;
    b["items"]
        .as_array()
        .expect("invoices")
        .iter()
        .map(|i| i["id"].as_i64().expect("id"))
        .collect()
}

/// Issues a link; returns its body (with `token`).
pub async fn issue(app: &TestApp, sc: &School, body: Value) -> Value {
    let (s, b) = app
        .post(
            &format!("/api/v1/schools/{}/parent-links", sc.school_id),
            &sc.accountant,
            body,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

/// Issues a link by `body` and revokes it at once: a link that must answer 410.
pub async fn revoked(app: &TestApp, sc: &School, body: Value) -> Value {
    let link = issue(app, sc, body).await;
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/schools/{}/parent-links/{}",
                sc.school_id, link["id"]
            ),
            Some(&sc.accountant),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    link
}

/// Opens a link as a parent's browser does: POST, a 303 and a cookie. Returns the cookie.
pub async fn open(app: &TestApp, token: &str) -> String {
    let (s, h, b) = post_link(app, token, &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{b}");
    assert_eq!(h["location"], "/api/v1/parent");
    cookie_of(&h)
}

pub fn cookie_of(h: &HeaderMap) -> String {
    let set = h["set-cookie"].to_str().expect("set-cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let (pair, _) = set.split_once(';').expect("attributes");
    let (name, value) = pair.split_once('=').expect("pair");
    assert_eq!(
        name, "feerecon_session",
        "http on loopback: no __Host- prefix"
    );
    value.to_string()
}

pub async fn post_link(
    app: &TestApp,
    token: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = client.post(format!("{}/p/{token}", app.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("post");
    let (s, h) = (r.status(), r.headers().clone());
    let text = r.text().await.expect("body");
    (
        s,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn parent_get(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, Value) {
    let (s, _, b) = app.with_cookie(Method::GET, path, cookie, None, None).await;
    (s, b)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Puts a link in the database as it would be after its expiry (the clock cannot be moved on
/// a running service, and the database refuses to edit an issued link).
async fn expired_link(app: &TestApp, sc: &School, student: i64, token: &str) {
    app.execute_sql(&format!(
        "INSERT INTO parent_links (school_id, student_id, label, token_prefix, token_hash, contact, expires_at, created_at, created_by)
         VALUES ({}, {student}, 'Bố', '{}', '{}', 'Phòng kế toán 028 0000 0000', '2020-06-01T00:00:00.000000Z', '2019-09-01T00:00:00.000000Z', 'test')",
        sc.school_id,
        &token[..6],
        sha256_hex(token)
    ))
    .await
    .expect("insert expired link");
}

both_backends! {
    async fn an_accountant_issues_lists_and_revokes_links_and_each_is_audited(app: TestApp) {
        let sc = school_with_families(&app, "PL", "QD").await;
        let anh = student_id(&app, &sc, "HS0001").await;
        let audit = app.count("audit_log").await;
        let l = issue(&app, &sc, json!({"for": "family", "family_key": "GD-NGUYEN-01", "label": "Mẹ", "contact": "Phòng kế toán, 028 3829 0000"})).await;
        let token = l["token"].as_str().expect("token");
        assert_eq!(token.len(), 43);
        assert_eq!(l["url"], format!("{}/p/{token}", app.base));
        assert!(l["qr_svg"].as_str().expect("svg").starts_with("<?xml") || l["qr_svg"].as_str().unwrap().contains("<svg"));
        assert_eq!(l["token_prefix"], &token[..6]);
        assert_eq!(l["state"], "active");
        // Default expiry: the end of the school year, midnight in Vietnam.
        assert!(l["expires_at"].as_str().expect("expiry").ends_with("-08-31T17:00:00.000000Z"), "{l}");
        assert_eq!(app.count("audit_log").await, audit + 1);
        assert_eq!(app.count(&format!("parent_links WHERE token_hash = '{}'", sha256_hex(token))).await, 1);
        assert_eq!(app.count(&format!("parent_links WHERE token_hash = '{token}'")).await, 0, "only a hash is stored");
        // Several per student, each guardian their own.
        let soon = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
        let bo = issue(&app, &sc, json!({"for": "student", "student_id": anh, "label": "Bố", "expires_on": soon.to_string()})).await;
        assert!(bo["expires_at"].as_str().expect("expiry").ends_with("T17:00:00.000000Z"), "{bo}");

        let (s, list) = app.get(&format!("/api/v1/schools/{}/parent-links?student_id={anh}", sc.school_id), &sc.accountant).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "the student's link and the family's");
        assert!(!list.to_string().contains(token), "the token is never shown again");
        assert!(list["items"][0].get("token").is_none());

        // Re-issued: the old one revoked in the same step.
        let new = issue(&app, &sc, json!({"for": "family", "family_key": "GD-NGUYEN-01", "label": "Mẹ", "replaces_link_id": l["id"]})).await;
        assert_eq!(new["replaces_link_id"], l["id"]);
        let (_, list) = app.get(&format!("/api/v1/schools/{}/parent-links", sc.school_id), &sc.accountant).await;
        let old = list["items"].as_array().unwrap().iter().find(|x| x["id"] == l["id"]).expect("old").clone();
        assert_eq!(old["state"], "revoked");

        let (s, b) = app.call(Method::DELETE, &format!("/api/v1/schools/{}/parent-links/{}", sc.school_id, bo["id"]), Some(&sc.accountant), None).await;
        assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("revoked")), "{b}");
        let (s, b) = app.call(Method::DELETE, &format!("/api/v1/schools/{}/parent-links/{}", sc.school_id, bo["id"]), Some(&sc.accountant), None).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("parent_link_already_revoked")));

        // Bad requests write nothing.
        let before = (app.count("parent_links").await, app.count("audit_log").await);
        for (body, status, code) in [
            (json!({"for": "family", "family_key": "NO-SUCH", "label": "x"}), StatusCode::CONFLICT, "unknown_family"),
            (json!({"for": "student", "student_id": 999_999, "label": "x"}), StatusCode::CONFLICT, "unknown_student"),
            (json!({"for": "student", "student_id": anh, "label": "x", "expires_on": "2001-01-01"}), StatusCode::CONFLICT, "invalid_expiry"),
            (json!({"for": "student", "student_id": anh, "label": "x", "replaces_link_id": bo["id"]}), StatusCode::CONFLICT, "unknown_parent_link"),
            (json!({"for": "student", "student_id": anh, "family_key": "GD-NGUYEN-01", "label": "x"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            (json!({"for": "student", "student_id": anh, "label": " "}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ] {
            let (s, b) = app.post(&format!("/api/v1/schools/{}/parent-links", sc.school_id), &sc.accountant, body.clone()).await;
            assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{body}: {b}");
        }
        assert_eq!((app.count("parent_links").await, app.count("audit_log").await), before);

        // The cashier and the auditor manage no links; another school's accountant sees none.
        for t in [&sc.cashier, &sc.auditor] {
            let (s, _) = app.get(&format!("/api/v1/schools/{}/parent-links", sc.school_id), t).await;
            assert_eq!(s, StatusCode::FORBIDDEN);
        }
        let other = app.school("PL2", "QB").await;
        let (s, _) = app.get(&format!("/api/v1/schools/{}/parent-links", sc.school_id), &other.accountant).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app.call(Method::DELETE, &format!("/api/v1/schools/{}/parent-links/{}", other.school_id, new["id"]), Some(&other.accountant), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    async fn the_link_page_names_nobody_and_a_get_or_head_uses_nothing(app: TestApp) {
        let sc = school_with_families(&app, "PG", "QD").await;
        let l = issue(&app, &sc, json!({"for": "family", "family_key": "GD-NGUYEN-01", "label": "Mẹ"})).await;
        let token = l["token"].as_str().unwrap();
        let before = (app.count("sessions").await, app.count("audit_log").await);
        let url = format!("{}/p/{token}", app.base);
        let wrong = format!("{}/p/{}", app.base, "B".repeat(43));
        let mut pages = Vec::new();
        for u in [&url, &wrong] {
            let r = app.client.get(u).send().await.expect("get");
            assert_eq!(r.status(), StatusCode::OK);
            let h = r.headers().clone();
            assert_eq!(h["referrer-policy"], "no-referrer");
            assert_eq!(h["cache-control"], "no-store");
            assert!(h["x-robots-tag"].to_str().unwrap().contains("noindex"));
            assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
            let body = r.text().await.expect("body");
            for private in ["Nguyễn", "Minh", "Anh", "Khôi", "Lê Quý Đôn", "HS0001", token] {
                assert!(!body.contains(private), "the page shows {private}");
            }
            assert!(body.contains("<title>Học phí</title>") && body.contains("method=\"post\""));
            pages.push(body);
            let r = app.client.head(u).send().await.expect("head");
            assert_eq!(r.status(), StatusCode::OK);
        }
        assert_eq!(pages[0], pages[1], "a good and a wrong token get the same page");
        assert_eq!((app.count("sessions").await, app.count("audit_log").await), before, "GET and HEAD use nothing");
    }

    async fn a_parent_reads_their_family_and_nothing_else(app: TestApp) {
        let sc = school_with_families(&app, "PF", "QD").await;
        let anh = student_id(&app, &sc, "HS0001").await;
        let khoi = student_id(&app, &sc, "HS0002").await;
        let ngoc = student_id(&app, &sc, "HS0003").await;
        let l = issue(&app, &sc, json!({"for": "family", "family_key": "GD-NGUYEN-01", "label": "Mẹ"})).await;
        let cookie = open(&app, l["token"].as_str().unwrap()).await;

        let (s, fam) = parent_get(&app, &cookie, "/api/v1/parent").await;
        assert_eq!(s, StatusCode::OK, "{fam}");
        let ids: Vec<i64> = fam["students"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![anh, khoi]);

        let mine: Vec<i64> = [invoices_of(&app, &sc, anh).await, invoices_of(&app, &sc, khoi).await].concat();
        let theirs = invoices_of(&app, &sc, ngoc).await;
        let (s, list) = parent_get(&app, &cookie, "/api/v1/parent/invoices").await;
        assert_eq!(s, StatusCode::OK);
        let mut seen: Vec<i64> = list.as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
        seen.sort();
        let mut want = mine.clone();
        want.sort();
        assert_eq!(seen, want);
        assert!(!list.to_string().contains("Trần Thị Bích Ngọc"));

        // The fee breakdown: each line, its basis, cap and reductions.
        let (s, inv) = parent_get(&app, &cookie, &format!("/api/v1/parent/invoices/{}", mine[1])).await;
        assert_eq!(s, StatusCode::OK, "{inv}");
        let lines = inv["invoice"]["lines"].as_array().expect("lines");
        assert!(lines.iter().any(|l| l["kind"] == "reduction" && l["reduction_percent"].is_string() && l["policy_group"] == "Con thương binh"), "{inv}");
        assert!(lines.iter().all(|l| l.get("cap_per_period").is_some()));
        assert_eq!(inv["bases"].as_array().map(Vec::len), Some(lines.len()));
        let (s, opts) = parent_get(&app, &cookie, &format!("/api/v1/parent/invoices/{}/payment-options", mine[0])).await;
        assert_eq!(s, StatusCode::OK, "{opts}");
        assert_eq!(opts[0]["channel"], "cash", "free options first");

        // A payment to the family's invoice: its receipt, with its fees, without memo or payer.
        let (s, p) = app.post(&format!("/api/v1/schools/{}/payments", sc.school_id), &sc.cashier,
            json!({"channel": "cash", "amount": 100_000, "payer_name": "Nguyễn Văn Bố", "allocations": [{"invoice_id": mine[0], "amount": 100_000}]})).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let (s, q) = app.post(&format!("/api/v1/schools/{}/payments", sc.school_id), &sc.cashier,
            json!({"channel": "cash", "amount": 50_000, "allocations": [{"invoice_id": theirs[0], "amount": 50_000}]})).await;
        assert_eq!(s, StatusCode::CREATED, "{q}");
        let (s, r) = parent_get(&app, &cookie, &format!("/api/v1/parent/payments/{}/receipt", p["id"])).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["invoices"][0]["invoice_id"].as_i64(), Some(mine[0]));
        assert!(r["no_fees_reason"].is_string() && r["fees"].as_array().is_some());
        assert!(!r.to_string().contains("Nguyễn Văn Bố"), "no payer's name");
        let (s, st) = parent_get(&app, &cookie, &format!("/api/v1/parent/invoices/{}", mine[0])).await;
        assert_eq!((s, st["payments"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));

        // Another family's invoice or payment, one of another school, and none at all: one answer.
        let other = school_with_families(&app, "PF2", "QB").await;
        let far = invoices_of(&app, &other, student_id(&app, &other, "HS0001").await).await;
        let missing = parent_get(&app, &cookie, "/api/v1/parent/invoices/999999").await;
        assert_eq!(missing.0, StatusCode::NOT_FOUND);
        for id in [theirs[0], far[0]] {
            for path in [format!("/api/v1/parent/invoices/{id}"), format!("/api/v1/parent/invoices/{id}/payment-options")] {
                let got = parent_get(&app, &cookie, &path).await;
                assert_eq!(got, missing, "{path}");
            }
        }
        let missing = parent_get(&app, &cookie, "/api/v1/parent/payments/999999/receipt").await;
        assert_eq!(parent_get(&app, &cookie, &format!("/api/v1/parent/payments/{}/receipt", q["id"])).await, missing);

        // A parent's session opens no staff route, and a staff token no parent route.
        let before = app.count("audit_log").await;
        for (m, path) in [
            (Method::GET, format!("/api/v1/schools/{}/invoices", sc.school_id)),
            (Method::GET, format!("/api/v1/schools/{}/invoices/{}", sc.school_id, mine[0])),
            (Method::GET, format!("/api/v1/payment-codes/{}", "QD3CFPSA")),
            (Method::GET, format!("/api/v1/schools/{}/students", sc.school_id)),
        ] {
            let (s, _, b) = app.with_cookie(m, &path, &cookie, None, None).await;
            assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{path}");
        }
        let (s, _, b) = app.with_cookie(Method::POST, &format!("/api/v1/schools/{}/students", sc.school_id), &cookie, None,
            Some(&json!({"student_code": "X1", "full_name": "X", "class_name": "6A1"}))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
        assert_eq!(app.count("audit_log").await, before);
        for t in [ADMIN, sc.accountant.as_str()] {
            let (s, _) = app.get("/api/v1/parent/invoices", t).await;
            assert_eq!(s, StatusCode::FORBIDDEN);
        }
        let (s, _) = app.call(Method::GET, "/api/v1/parent", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = parent_get(&app, &"x".repeat(43), "/api/v1/parent").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // A student link opens that student only.
        let one = issue(&app, &sc, json!({"for": "student", "student_id": khoi, "label": "Bà"})).await;
        let c2 = open(&app, one["token"].as_str().unwrap()).await;
        let (_, fam) = parent_get(&app, &c2, "/api/v1/parent").await;
        assert_eq!(fam["students"].as_array().map(Vec::len), Some(1));
        assert_eq!(parent_get(&app, &c2, &format!("/api/v1/parent/invoices/{}", invoices_of(&app, &sc, anh).await[0])).await.0, StatusCode::NOT_FOUND);
    }

    async fn revoked_expired_wrong_and_malformed_links_open_nothing(app: TestApp) {
        let sc = school_with_families(&app, "PR", "QD").await;
        let anh = student_id(&app, &sc, "HS0001").await;
        let l = issue(&app, &sc, json!({"for": "student", "student_id": anh, "label": "Mẹ", "contact": "Phòng kế toán 028 3829 0000"})).await;
        let token = l["token"].as_str().unwrap().to_string();
        let cookie = open(&app, &token).await;
        assert_eq!(parent_get(&app, &cookie, "/api/v1/parent").await.0, StatusCode::OK);
        let (s, _) = app.call(Method::DELETE, &format!("/api/v1/schools/{}/parent-links/{}", sc.school_id, l["id"]), Some(&sc.accountant), None).await;
        assert_eq!(s, StatusCode::OK);
        // Its session ended with it.
        assert_eq!(parent_get(&app, &cookie, "/api/v1/parent").await.0, StatusCode::UNAUTHORIZED);

        let before = (app.count("sessions").await, app.count("audit_log").await);
        let (s, h, b) = post_link(&app, &token, &[]).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::GONE, Some("link_gone")), "{b}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains("THCS Lê Quý Đôn") && msg.contains("028 3829 0000"), "{msg}");
        assert!(!msg.contains("Nguyễn") && h.get("set-cookie").is_none());
        assert_eq!(h["cache-control"], "no-store");

        let expired = "E".repeat(43);
        expired_link(&app, &sc, anh, &expired).await;
        let (s, _, b) = post_link(&app, &expired, &[]).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::GONE, Some("link_gone")), "{b}");
        let (s, _, gone) = post_link(&app, &expired, &[]).await;
        assert_eq!(s, StatusCode::GONE);
        assert!(!gone.to_string().contains("Nguyễn"));

        for wrong in ["W".repeat(43), "short".to_string(), format!("{}=", "A".repeat(42)), "%00".to_string()] {
            let (s, _, b) = post_link(&app, &wrong, &[]).await;
            assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("link_not_found")), "{wrong}: {b}");
        }
        // From another site: refused before anything is looked up.
        let l2 = issue(&app, &sc, json!({"for": "student", "student_id": anh, "label": "Bố"})).await;
        let (s, _, b) = post_link(&app, l2["token"].as_str().unwrap(), &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")]).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("cross_site_request")));
        assert_eq!(app.count("sessions").await, before.0, "no session for any of them");
    }
}

/// Failed attempts are budgeted per address and per link prefix: past the budget, 429 with
/// Retry-After, even for a good link (its prefix is being guessed at).
#[tokio::test]
async fn failed_attempts_are_rate_limited() {
    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, None, |st| {
        st.link_limits =
            feerecon::http::limits::LinkLimits::new(6, 3, std::time::Duration::from_secs(600));
    })
    .await
    .expect("sqlite");
    let sc = school_with_families(&app, "RL", "QD").await;
    let l = issue(
        &app,
        &sc,
        json!({"for": "family", "family_key": "GD-NGUYEN-01", "label": "Mẹ"}),
    )
    .await;
    let token = l["token"].as_str().unwrap();
    // Three guesses at this link's prefix.
    for i in 0..3 {
        let guess = format!("{}{}", &token[..6], format!("{i}").repeat(37));
        assert_eq!(post_link(&app, &guess, &[]).await.0, StatusCode::NOT_FOUND);
    }
    let (s, h, b) = post_link(&app, token, &[]).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")),
        "{b}"
    );
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Other prefixes, from the same address, until its budget is spent too.
    for i in 0..3 {
        assert_eq!(
            post_link(&app, &format!("{i}").repeat(43), &[]).await.0,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        post_link(&app, &"Z".repeat(43), &[]).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Wrong, expired and revoked tokens take one code path (hash, one look-up by hash), so their
/// answers cannot be told apart by time. Prints the medians it measured.
#[tokio::test]
async fn wrong_expired_and_revoked_tokens_answer_in_the_same_time() {
    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, None, |st| {
        st.link_limits = feerecon::http::limits::LinkLimits::new(
            1_000_000,
            1_000_000,
            std::time::Duration::from_secs(600),
        );
    })
    .await
    .expect("sqlite");
    let sc = school_with_families(&app, "TM", "QD").await;
    let anh = student_id(&app, &sc, "HS0001").await;
    let revoked = revoked(
        &app,
        &sc,
        json!({"for": "student", "student_id": anh, "label": "Mẹ"}),
    )
    .await;
    let expired = "E".repeat(43);
    expired_link(&app, &sc, anh, &expired).await;
    let revoked = revoked["token"].as_str().unwrap().to_string();
    let wrong = "W".repeat(43);
    const ROUNDS: usize = 300;
    let mut times: [Vec<f64>; 3] = [vec![], vec![], vec![]];
    // Interleaved, so the machine's load falls on the three alike.
    for _ in 0..ROUNDS {
        for (k, t) in [&wrong, &expired, &revoked].iter().enumerate() {
            let started = std::time::Instant::now();
            let (s, _, _) = post_link(&app, t, &[]).await;
            times[k].push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(s == StatusCode::NOT_FOUND || s == StatusCode::GONE);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let [w, e, r] = &mut times;
    let (w, e, r) = (median(w), median(e), median(r));
    eprintln!(
        "median over {ROUNDS} attempts each: wrong {w:.3} ms, expired {e:.3} ms, revoked {r:.3} ms"
    );
    let (lo, hi) = (w.min(e).min(r), w.max(e).max(r));
    assert!(
        hi - lo < 1.0_f64.max(lo * 0.5),
        "wrong {w:.3}, expired {e:.3}, revoked {r:.3} ms"
    );
}
