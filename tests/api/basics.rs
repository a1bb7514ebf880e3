//! Health, the OpenAPI document, and bad input of every kind: a clear 4xx, nothing written.

use crate::both_backends;
use crate::helpers::ADMIN;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends! {
    async fn health_and_readiness(app: TestApp) {
        let (s, b) = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
        let (s, b) = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
    }

    async fn every_documented_route_exists_and_requires_a_token(app: TestApp) {
        let (s, doc) = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
        assert_eq!(s, StatusCode::OK);
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() >= 15, "{}", paths.len());
        let mut checked = 0;
        for (path, ops) in paths {
            let concrete = path.replace("{code}", "QD2222222").replace(['{', '}'], "").replace("school_id", "1")
                .replace("department_id", "1").replace("invoice_id", "1").replace("student_id", "1").replace("token_id", "1");
            for (method, op) in ops.as_object().expect("ops") {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                let (s, b) = app.call(m.clone(), &concrete, None, Some(&json!({}))).await;
                // Open to anyone (a parent link's page, the sign-in): it checks what it is given.
                if op.get("security").is_none() {
                    assert!(s != StatusCode::METHOD_NOT_ALLOWED && b["error"]["code"] != "route_not_found", "{method} {path}: {b}");
                    checked += 1;
                    continue;
                }
                // Not 404 or 405: the route is there, and it wants a token.
                assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {b}");
                assert_eq!(b["error"]["code"], "unauthenticated");
                checked += 1;
            }
        }
        assert!(checked >= 20, "{checked}");
        // Every error response the document names uses the one error schema.
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    }

    async fn unknown_routes_and_methods_answer_json(app: TestApp) {
        let (s, b) = app.get("/api/v1/nothing-here", ADMIN).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("route_not_found")));
        let (s, b) = app.call(Method::PATCH, "/api/v1/schools", Some(ADMIN), None).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    }

    async fn bad_json_is_refused_and_writes_nothing(app: TestApp) {
        let sc = app.school("BAD", "QD").await;
        let path = format!("/api/v1/schools/{}/students", sc.school_id);
        let before = app.count("students").await;
        let send = |body: &'static str, ct: &'static str| {
            let req = app.client.post(format!("{}{}", app.base, path)).bearer_auth(&sc.accountant).header("content-type", ct).body(body);
            async move {
                let r = req.send().await.expect("send");
                let s = r.status();
                (s, r.json::<Value>().await.expect("json error body"))
            }
        };
        let cases: Vec<(&str, &str, StatusCode, &str)> = vec![
            ("{\"student_code\": ", "application/json", StatusCode::BAD_REQUEST, "malformed_json"),
            ("{\"student_code\" \"HS1\"}", "application/json", StatusCode::BAD_REQUEST, "malformed_json"),
            ("{\"student_code\":\"HS1\",\"full_name\":\"An\",\"class_name\":\"6A\",\"extra\":1}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("{\"student_code\":5,\"full_name\":\"An\",\"class_name\":\"6A\"}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("{\"student_code\":\"HS 1\",\"full_name\":\"An\",\"class_name\":\"6A\"}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "invalid_student"),
            ("{\"student_code\":\"HS1\",\"full_name\":\"   \",\"class_name\":\"6A\"}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "invalid_student"),
            ("{\"student_code\":\"HS1\",\"full_name\":\"An\",\"class_name\":\"6A\"}", "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ];
        for (body, ct, status, code) in cases {
            let (s, b) = send(body, ct).await;
            assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{body}: {b}");
            assert!(b["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        // Invalid UTF-8 and a nesting bomb.
        let r = app.client.post(format!("{}{}", app.base, path)).bearer_auth(&sc.accountant).header("content-type", "application/json")
            .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let r = app.client.post(format!("{}{}", app.base, path)).bearer_auth(&sc.accountant).header("content-type", "application/json")
            .body(bomb).send().await.expect("send");
        assert!([StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY].contains(&r.status()), "{}", r.status());
        assert_eq!(app.count("students").await, before);
    }

    async fn ten_megabytes_of_garbage_is_413_not_a_crash(app: TestApp) {
        let garbage: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let r = app.client.post(format!("{}/api/v1/departments", app.base)).bearer_auth(ADMIN)
            .header("content-type", "application/json").body(garbage).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let b: Value = r.json().await.expect("json");
        assert_eq!(b["error"]["code"], "body_too_large");
        let (s, _) = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(app.count("departments").await, 0);
    }

    async fn bad_amounts_are_refused(app: TestApp) {
        let sc = app.school("AMT", "QD").await;
        let student = app.student(&sc, "HS1", "Nguyễn Văn An", "6A1").await;
        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        for amount in [json!(-5), json!(0), json!(935000.5), json!("935000"), json!(1e15), json!(9_223_372_036_854_775_807i64), json!(null)] {
            let (s, b) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
                "lines": [{"type": "charge", "item_code": "MEALS", "amount": amount}]})).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{amount}: {b}");
        }
        for (period, due) in [("2025-13", "2025-09-15"), ("25-09", "2025-09-15"), ("2025-09", "2025-02-30"), ("2025-09", "tomorrow")] {
            let (s, b) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": period, "due_date": due,
                "lines": [{"type": "charge", "item_code": "MEALS", "amount": 1000}]})).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{period} {due}: {b}");
        }
        let (s, b) = app.get(&format!("/api/v1/schools/{}/invoices/abc", sc.school_id), &sc.accountant).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "a segment that is not an id names nothing");
        let (s, b) = app.get(&format!("/api/v1/schools/{}/invoices?limit=0", sc.school_id), &sc.accountant).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_limit")));
        let (s, _) = app.get(&format!("/api/v1/schools/{}/invoices?colour=red", sc.school_id), &sc.accountant).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(app.count("invoices").await, 0);
    }
}
