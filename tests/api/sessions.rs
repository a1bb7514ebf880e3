//! Staff sessions: an API token exchanged for a cookie session; CSRF protection on every
//! state-changing request made with it; sign-out that ends it on the server; expiry, the idle
//! timeout, a revoked token; retention.

use crate::both_backends;
use crate::helpers::{TestApp, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Signs in with `token`: (cookie, CSRF token).
pub async fn sign_in(app: &TestApp, token: &str) -> (String, String) {
    let r = app
        .client
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"token": token}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookie = crate::parents::cookie_of(r.headers());
    let b: Value = r.json().await.expect("body");
    (cookie, b["csrf_token"].as_str().expect("csrf").to_string())
}

both_backends! {
    async fn a_staff_session_needs_its_csrf_token_for_every_change(app: TestApp) {
        let sc = app.school("SS", "QD").await;
        let (s, b) = app.call(Method::POST, "/api/v1/session", None, Some(&json!({"token": "frk_nope"}))).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
        assert_eq!(app.count("sessions").await, 0, "nothing written for a wrong token");

        let (cookie, csrf) = sign_in(&app, &sc.accountant).await;
        let (s, _, me) = app.with_cookie(Method::GET, "/api/v1/session", &cookie, None, None).await;
        assert_eq!((s, me["role"].as_str(), me["kind"].as_str()), (StatusCode::OK, Some("accountant"), Some("api_token")), "{me}");
        assert_eq!(me["csrf_token"], csrf.as_str());
        assert!(me["idle_expires_at"].as_str() < me["expires_at"].as_str());
        assert_eq!(app.count(&format!("sessions WHERE token_hash = '{cookie}'")).await, 0, "only a hash is stored");

        // Reads need no CSRF token.
        let (s, _, _) = app.with_cookie(Method::GET, &format!("/api/v1/schools/{}/invoices", sc.school_id), &cookie, None, None).await;
        assert_eq!(s, StatusCode::OK);

        // Changes do, from this site only; refused ones write nothing.
        let students = format!("/api/v1/schools/{}/students", sc.school_id);
        let body = json!({"student_code": "HS9", "full_name": "Nguyễn Văn An", "class_name": "6A1"});
        let (_, other_csrf) = sign_in(&app, &sc.cashier).await;
        let before = (app.count("students").await, app.count("audit_log").await);
        for (csrf, code) in [(None, "csrf_token_missing"), (Some("nope"), "csrf_token_invalid"), (Some(other_csrf.as_str()), "csrf_token_invalid")] {
            let (s, _, b) = app.with_cookie(Method::POST, &students, &cookie, csrf, Some(&body)).await;
            assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some(code)), "{b}");
        }
        for (name, value) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site"), ("sec-fetch-site", "same-site")] {
            let r = app.client.post(format!("{}{students}", app.base))
                .header("cookie", format!("feerecon_session={cookie}"))
                .header("x-csrf-token", &csrf).header(name, value).json(&body).send().await.expect("post");
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {value}");
            let b: Value = r.json().await.expect("body");
            assert_eq!(b["error"]["code"], "cross_site_request");
        }
        assert_eq!((app.count("students").await, app.count("audit_log").await), before);
        let r = app.client.post(format!("{}{students}", app.base))
            .header("cookie", format!("feerecon_session={cookie}"))
            .header("x-csrf-token", &csrf).header("origin", app.base.as_str()).header("sec-fetch-site", "same-origin")
            .json(&body).send().await.expect("post");
        assert_eq!(r.status(), StatusCode::CREATED);
        // The audit log names the token behind the session, as for its bearer requests.
        let (_, log) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert!(log.is_array());

        // The session's role is the token's: the cashier's session may not do an accountant's work.
        let (cashier, ccsrf) = sign_in(&app, &sc.cashier).await;
        let (s, _, b) = app.with_cookie(Method::POST, &students, &cashier, Some(&ccsrf), Some(&json!({"student_code": "HS8", "full_name": "X", "class_name": "6A1"}))).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));

        // A bearer request reads no cookie and needs no CSRF token.
        let r = app.client.post(format!("{}{students}", app.base)).bearer_auth(&sc.accountant)
            .header("cookie", "feerecon_session=garbage")
            .json(&json!({"student_code": "HS7", "full_name": "X", "class_name": "6A1"})).send().await.expect("post");
        assert_eq!(r.status(), StatusCode::CREATED);

        // Sign-out ends it on the server; its cookie and CSRF token are no good afterwards.
        let (s, _, b) = app.with_cookie(Method::DELETE, "/api/v1/session", &cookie, None, None).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_token_missing")));
        let (s, h, _) = app.with_cookie(Method::DELETE, "/api/v1/session", &cookie, Some(&csrf), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        let (s, _, _) = app.with_cookie(Method::POST, &students, &cookie, Some(&csrf), Some(&json!({"student_code": "HS6", "full_name": "X", "class_name": "6A1"}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "a replayed CSRF token of an ended session");
        let (s, _, _) = app.with_cookie(Method::GET, "/api/v1/session", &cookie, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(app.count("sessions WHERE ended_at IS NOT NULL").await, 1);
        // Without a cookie there is no session to read or end.
        let (s, _) = app.call(Method::GET, "/api/v1/session", Some(ADMIN), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    async fn a_revoked_token_ends_its_sessions(app: TestApp) {
        let sc = app.school("SR", "QD").await;
        let (cookie, _) = sign_in(&app, &sc.auditor).await;
        let (s, _, _) = app.with_cookie(Method::GET, "/api/v1/schools", &cookie, None, None).await;
        assert_eq!(s, StatusCode::OK);
        let (_, list) = app.get("/api/v1/tokens", ADMIN).await;
        let id = list.as_array().unwrap().iter().find(|t| t["role"] == "auditor").unwrap()["id"].as_i64().unwrap();
        let (s, _) = app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(ADMIN), None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = app.with_cookie(Method::GET, "/api/v1/schools", &cookie, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = app.call(Method::POST, "/api/v1/session", None, Some(&json!({"token": sc.auditor}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    async fn sessions_over_are_purged_after_their_retention_and_not_before(app: TestApp) {
        let sc = app.school("SP", "QD").await;
        let (_cookie, _) = sign_in(&app, &sc.accountant).await;
        app.execute_sql("INSERT INTO sessions (token_hash, kind, subject, role, school_id, api_token_id, created_at, last_seen_at, expires_at)
            SELECT 'old', 'api_token', subject, role, school_id, api_token_id, '2020-01-01T00:00:00.000000Z', '2020-01-01T00:00:00.000000Z', '2020-01-01T08:00:00.000000Z' FROM sessions").await.expect("old session");
        assert!(app.execute_sql("DELETE FROM sessions WHERE token_hash <> 'old'").await.is_err(), "a current session is never deleted");
        let audit = app.count("audit_log").await;
        let n = app.state.store.purge_sessions("retention", chrono::Utc::now() - feerecon::retention::SESSION_RETENTION, 100).await.expect("purge");
        assert_eq!(n, 1);
        assert_eq!(app.count("sessions").await, 1);
        assert_eq!(app.count("audit_log WHERE action = 'sessions.purge'").await, 1);
        assert_eq!(app.count("audit_log").await, audit + 1);
    }
}

#[tokio::test]
async fn an_idle_or_expired_session_is_over() {
    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, None, |st| {
        st.sessions.idle = chrono::Duration::milliseconds(600);
    })
    .await
    .expect("sqlite");
    let sc = app.school("SI", "QD").await;
    let (cookie, _) = sign_in(&app, &sc.accountant).await;
    let (s, _, _) = app
        .with_cookie(Method::GET, "/api/v1/schools", &cookie, None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let (s, _, _) = app
        .with_cookie(Method::GET, "/api/v1/schools", &cookie, None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "idle too long");

    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, None, |st| {
        st.sessions.staff_ttl = chrono::Duration::milliseconds(600);
    })
    .await
    .expect("sqlite");
    let sc = app.school("SE", "QD").await;
    let (cookie, _) = sign_in(&app, &sc.accountant).await;
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let (s, _, _) = app
        .with_cookie(Method::GET, "/api/v1/schools", &cookie, None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "expired");
}
