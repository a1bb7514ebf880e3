//! Tokens, roles and scopes: 401 without or with a wrong token, 403 for a role that may not,
//! 404 for what is outside the caller's scope.

use crate::both_backends;
use crate::helpers::ADMIN;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends! {
    async fn tokens_authenticate_and_can_be_revoked(app: TestApp) {
        let (s, b) = app.call(Method::GET, "/api/v1/schools", None, None).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
        let (s, _) = app.get("/api/v1/schools", "frk_not-a-real-token").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let r = app.client.get(format!("{}/api/v1/schools", app.base)).header("authorization", format!("Basic {ADMIN}")).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));

        let sc = app.school("TOK", "QD").await;
        let (s, _) = app.get("/api/v1/schools", &sc.accountant).await;
        assert_eq!(s, StatusCode::OK);
        let (_, list) = app.get("/api/v1/tokens", ADMIN).await;
        let id = list.as_array().expect("tokens").iter().find(|t| t["role"] == "accountant").expect("accountant")["id"].as_i64().expect("id");
        assert!(list.to_string().find(&sc.accountant).is_none(), "tokens are never listed");
        let (s, b) = app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(ADMIN), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert!(b["revoked_at"].is_string());
        let (s, _) = app.get("/api/v1/schools", &sc.accountant).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(ADMIN), None).await;
        assert_eq!(s, StatusCode::CONFLICT);
        // Only a hash is stored.
        assert_eq!(app.count(&format!("api_tokens WHERE token_hash = '{}'", sc.accountant)).await, 0);
    }

    async fn token_scopes_must_fit_roles(app: TestApp) {
        let sc = app.school("SCP", "QD").await;
        for body in [
            json!({"role": "accountant", "label": "x"}),
            json!({"role": "auditor", "school_id": sc.school_id, "label": "x"}),
            json!({"role": "admin", "school_id": sc.school_id, "label": "x"}),
            json!({"role": "parent", "school_id": sc.school_id, "label": "x"}),
        ] {
            let (s, b) = app.post("/api/v1/tokens", ADMIN, body.clone()).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        }
        // Well formed, but there is no such school: a conflict with what the service holds.
        let (s, b) = app.post("/api/v1/tokens", ADMIN, json!({"role": "cashier", "school_id": 999_999, "label": "x"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("unknown_school")), "{b}");
        let (s, _) = app.post("/api/v1/tokens", &sc.accountant, json!({"role": "admin", "label": "me"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    async fn roles_may_do_only_their_work(app: TestApp) {
        let sc = app.school("ROL", "QD").await;
        let student = app.student(&sc, "HS1", "Nguyễn Văn An", "6A1").await;
        let invoices = format!("/api/v1/schools/{}/invoices", sc.school_id);
        let body = json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "lines": [{"type": "charge", "item_code": "MEALS", "amount": 935000}]});
        for token in [&sc.cashier, &sc.auditor] {
            let (s, b) = app.post(&invoices, token, body.clone()).await;
            assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
        }
        let (s, _) = app.post("/api/v1/schools", &sc.accountant, json!({"department_id": sc.department_id, "code": "X", "name": "X", "payment_prefix": "XY"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, inv) = app.post(&invoices, &sc.accountant, body).await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");
        // Everyone in or over the school reads it.
        for token in [&sc.cashier, &sc.auditor, &sc.accountant] {
            let (s, list) = app.get(&invoices, token).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
        }
    }

    async fn other_schools_and_departments_answer_404(app: TestApp) {
        let a = app.school("AAA", "QA").await;
        let b = app.school("BBB", "QB").await;
        let student = app.student(&b, "HS1", "Trần Thị Bình", "7A2").await;
        let (s, inv) = app.post(&format!("/api/v1/schools/{}/invoices", b.school_id), &b.accountant,
            json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15", "lines": [{"type": "charge", "item_code": "MEALS", "amount": 500000}]})).await;
        assert_eq!(s, StatusCode::CREATED);
        let inv_id = inv["id"].as_i64().expect("id");
        let code = inv["payment_code"].as_str().expect("code");
        for (token, who) in [(&a.accountant, "accountant"), (&a.cashier, "cashier"), (&a.auditor, "auditor")] {
            for path in [
                format!("/api/v1/schools/{}", b.school_id),
                format!("/api/v1/schools/{}/invoices", b.school_id),
                format!("/api/v1/schools/{}/invoices/{inv_id}", b.school_id),
                format!("/api/v1/schools/{}/students/{student}", b.school_id),
                format!("/api/v1/payment-codes/{code}"),
            ] {
                let (s, body) = app.get(&path, token).await;
                assert_eq!(s, StatusCode::NOT_FOUND, "{who} {path}: {body}");
                assert!(body.to_string().find("Trần").is_none());
            }
        }
        // The same invoice id under the caller's own school does not exist either.
        let (s, _) = app.get(&format!("/api/v1/schools/{}/invoices/{inv_id}", a.school_id), &a.accountant).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app.post(&format!("/api/v1/schools/{}/invoices/{inv_id}/void", b.school_id), &a.accountant, json!({"reason": "x"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Lists show only what is in scope.
        let (_, schools) = app.get("/api/v1/schools", &a.auditor).await;
        let ids: Vec<i64> = schools["items"].as_array().expect("items").iter().filter_map(|s| s["id"].as_i64()).collect();
        assert_eq!(ids, vec![a.school_id]);
        let (s, _) = app.get(&format!("/api/v1/departments/{}", b.department_id), &a.auditor).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app.get(&format!("/api/v1/departments/{}", a.department_id), &a.auditor).await;
        assert_eq!(s, StatusCode::OK);
    }

    async fn configured_admin_token_is_removed_only_by_its_variable(app: TestApp) {
        let restart = |configured: Option<&str>| {
            let configured = configured.map(String::from);
            let url = app.db_url.clone();
            async move {
                let store = feerecon::store::Store::connect(&url).await.expect("connect");
                let r = store.bootstrap_admin(configured.as_deref()).await;
                store.close().await;
                r
            }
        };
        let sc = app.school("CFG", "QD").await;
        let tokens = app.count("api_tokens").await;
        let (_, list) = app.get("/api/v1/tokens", ADMIN).await;
        let configured = list.as_array().expect("tokens").iter().find(|t| t["configured"] == true).cloned().expect("configured token");
        assert_eq!(configured["label"], "FEERECON_ADMIN_TOKEN");
        let id = configured["id"].as_i64().expect("id");
        let audit = app.count("audit_log").await;

        // Not through the API: 409, and nothing changes.
        let (s, b) = app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(ADMIN), None).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("token_configured")), "{b}");
        assert!(b["error"]["message"].as_str().expect("message").contains("FEERECON_ADMIN_TOKEN"), "{b}");
        assert_eq!(app.count("api_tokens WHERE revoked_at IS NOT NULL").await, 0);
        assert_eq!(app.count("audit_log").await, audit);
        let (s, _) = app.get("/api/v1/tokens", ADMIN).await;
        assert_eq!(s, StatusCode::OK);

        // Revoked by an earlier version (or by hand): the next start with the same value
        // reinstates it, since the operator's configuration still names it.
        app.execute_sql(&format!("UPDATE api_tokens SET revoked_at = '2025-01-01T00:00:00.000000Z', configured = {} WHERE id = {id}",
            if app.backend == crate::helpers::Backend::Postgres { "FALSE" } else { "0" })).await.expect("revoke by hand");
        let (s, _) = app.get("/api/v1/tokens", ADMIN).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(restart(Some(ADMIN)).await.expect("start"), None, "no new token printed");
        let (s, list) = app.get("/api/v1/tokens", ADMIN).await;
        assert_eq!(s, StatusCode::OK);
        let t = list.as_array().expect("tokens").iter().find(|t| t["id"] == id).cloned().expect("token");
        assert_eq!((t["revoked_at"].clone(), t["configured"].clone()), (Value::Null, json!(true)), "{t}");
        assert_eq!(app.count("api_tokens").await, tokens, "the same row, not a second one");

        // Removed from the environment: revoked at the next start, and with no admin left a new
        // one is created (shown once), which the API may revoke.
        let fresh = restart(None).await.expect("start").expect("a new admin token");
        let (s, _) = app.get("/api/v1/tokens", ADMIN).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, list) = app.get("/api/v1/tokens", &fresh).await;
        assert_eq!(s, StatusCode::OK);
        let fresh_id = list.as_array().expect("tokens").iter().find(|t| t["revoked_at"].is_null() && t["role"] == "admin").cloned().expect("fresh")["id"].as_i64().expect("id");
        assert_ne!(fresh_id, id);

        // Another value: that one is accepted; the old one stays revoked.
        const OTHER: &str = "another-admin-token-0123456789abcdef0123";
        assert_eq!(restart(Some(OTHER)).await.expect("start"), None);
        let (s, _) = app.get("/api/v1/tokens", OTHER).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app.get("/api/v1/tokens", ADMIN).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, b) = app.call(Method::DELETE, &format!("/api/v1/tokens/{fresh_id}"), Some(OTHER), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");

        // A value that is another role's token is refused at start, and changes nothing.
        let tokens = app.count("api_tokens").await;
        assert!(restart(Some(&sc.accountant)).await.is_err());
        assert_eq!(app.count("api_tokens").await, tokens);
        let (s, _) = app.get("/api/v1/schools", &sc.accountant).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app.get("/api/v1/tokens", OTHER).await;
        assert_eq!(s, StatusCode::OK, "refused before anything was revoked");
    }
}
