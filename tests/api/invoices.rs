//! Issuing, reading, listing and voiding invoices; caps, cadence, reductions, payment codes.

use crate::both_backends;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn charge(item: &str, amount: i64) -> Value {
    json!({"type": "charge", "item_code": item, "amount": amount})
}

both_backends! {
    async fn issue_with_reductions_and_read_back(app: TestApp) {
        let sc = app.school("ISS", "QD").await;
        let student = app.student(&sc, "HS1", "Nguyễn Văn An", "6A1").await;
        let (s, inv) = app.post(&format!("/api/v1/schools/{}/invoices", sc.school_id), &sc.accountant, json!({
            "student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "lines": [charge("MEALS", 935000), charge("BHYT", 631800),
                      {"type": "reduction", "item_code": "MEALS", "percent": 70, "policy_group": "Hộ cận nghèo", "evidence_ref": "GCN 88/2025"},
                      {"type": "reduction", "item_code": "BHYT", "percent": "33.33", "policy_group": "Hỗ trợ của thành phố", "evidence_ref": "QĐ 1/2025"}]
        })).await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");
        // 70% of 935,000 = 654,500; 33.33% of 631,800 = 210,578.94 → 210,579 (half away from zero).
        assert_eq!(inv["total"], 935000 + 631800 - 654500 - 210579);
        assert_eq!(inv["total_formatted"], "701.721 ₫");
        assert_eq!(inv["status"], "open");
        let lines = inv["lines"].as_array().expect("lines");
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2]["kind"], "reduction");
        assert_eq!(lines[2]["amount"], -654500);
        assert_eq!(lines[2]["reduces_line_no"], 1);
        assert_eq!(lines[2]["evidence_ref"], "GCN 88/2025");
        assert_eq!(lines[3]["reduction_percent"], "33.33");
        let code = inv["payment_code"].as_str().expect("code");
        assert!(code.starts_with("QD") && code.len() == 8, "{code}");

        // Found by payment code however a parent types it.
        let spaced = format!("{}-{} {}", &code[..2], &code[2..5], &code[5..]).to_lowercase();
        let (s, by_code) = app.get(&format!("/api/v1/payment-codes/{spaced}"), &sc.cashier).await;
        assert_eq!((s, &by_code["id"]), (StatusCode::OK, &inv["id"]));
        // One mistyped character is never another invoice: the check character catches it.
        let mut typo: Vec<char> = code.chars().collect();
        typo[4] = if typo[4] == '9' { '8' } else { '9' };
        let typo: String = typo.into_iter().collect();
        let (s, b) = app.get(&format!("/api/v1/payment-codes/{typo}"), &sc.cashier).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("invalid_payment_code")), "{b}");
    }

    async fn caps_refuse_unless_overridden_and_auditors_see_overrides(app: TestApp) {
        let sc = app.school("CAP", "QD").await;
        let student = app.student(&sc, "HS1", "Phạm Gia Huy", "6A2").await;
        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        let (s, b) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "lines": [charge("BOARDING", 450000)]})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(b["error"]["message"].as_str().expect("message").contains("cap"), "{b}");
        assert_eq!(app.count("invoices").await, 0);
        let (s, inv) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "lines": [{"type": "charge", "item_code": "BOARDING", "amount": 450000, "cap_override_reason": "Biên bản họp CMHS 05/09/2025"},
                      charge("MEALS", 900000)]})).await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");
        assert_eq!(inv["lines"][0]["above_cap"], true);
        assert_eq!(inv["lines"][0]["cap_per_period"], 400000);
        assert_eq!(inv["lines"][0]["cap_override_reason"], "Biên bản họp CMHS 05/09/2025");
        assert_eq!(inv["lines"][1]["above_cap"], false);
        let (_, ok) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-10", "due_date": "2025-10-15",
            "lines": [charge("MEALS", 900000)]})).await;
        let (s, list) = app.get(&format!("{path}?above_cap=true"), &sc.auditor).await;
        assert_eq!(s, StatusCode::OK);
        let ids: Vec<&Value> = list["items"].as_array().expect("items").iter().map(|i| &i["id"]).collect();
        assert_eq!(ids, vec![&inv["id"]]);
        let (_, list) = app.get(&format!("{path}?above_cap=false"), &sc.auditor).await;
        assert_eq!(list["items"][0]["id"], ok["id"]);
        // The override is in the audit log too.
        assert_eq!(app.count("audit_log WHERE action = 'invoice.issue' AND details LIKE '%\"above_cap_lines\":[1]%'").await, 1);
    }

    async fn cadence_limits_monthly_yearly_items(app: TestApp) {
        let sc = app.school("CAD", "QD").await;
        let student = app.student(&sc, "HS1", "Lê Hoàng Phúc", "9A1").await;
        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        let months = ["2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05"];
        for m in months {
            let (s, b) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": m, "due_date": format!("{m}-15"),
                "lines": [charge("MEALS", 900000)]})).await;
            assert_eq!(s, StatusCode::CREATED, "{m}: {b}");
        }
        let (s, b) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2026-06", "due_date": "2026-06-15",
            "lines": [charge("MEALS", 900000)]})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("cadence_exceeded")), "{b}");
        let (s, b) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-10", "due_date": "2025-10-20",
            "lines": [charge("MEALS", 100000)]})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("cadence_exceeded")), "{b}");
        let (s, _) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "lines": [charge("BHYT", 631800)]})).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2026-02", "due_date": "2026-02-15",
            "lines": [charge("BHYT", 631800)]})).await;
        assert_eq!(s, StatusCode::CONFLICT);
        // A new school year starts afresh.
        let (s, _) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2026-09", "due_date": "2026-09-15",
            "lines": [charge("MEALS", 900000), charge("BHYT", 650000)]})).await;
        assert_eq!(s, StatusCode::CREATED);
    }

    async fn void_and_reissue_never_edit(app: TestApp) {
        let sc = app.school("VOI", "QD").await;
        let student = app.student(&sc, "HS1", "Võ Ngọc Hân", "7A1").await;
        let other = app.student(&sc, "HS2", "Đặng Thu Trang", "7A1").await;
        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        let (_, inv) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "lines": [charge("MEALS", 935000)]})).await;
        let id = inv["id"].as_i64().expect("id");
        // Reissuing before voiding is refused.
        let (s, b) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "replaces_invoice_id": id, "lines": [charge("MEALS", 900000)]})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("replaces_open_invoice")));
        let (s, b) = app.post(&format!("{path}/{id}/void"), &sc.accountant, json!({"reason": ""})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        let (s, b) = app.post(&format!("{path}/{id}/void"), &sc.cashier, json!({"reason": "Sai số tiền"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
        let (s, voided) = app.post(&format!("{path}/{id}/void"), &sc.accountant, json!({"reason": "Sai số tiền ăn"})).await;
        assert_eq!(s, StatusCode::OK, "{voided}");
        assert_eq!((voided["status"].as_str(), voided["void_reason"].as_str()), (Some("void"), Some("Sai số tiền ăn")));
        assert_eq!(voided["total"], 935000, "the voided invoice keeps what it said");
        let (s, _) = app.post(&format!("{path}/{id}/void"), &sc.accountant, json!({"reason": "again"})).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = app.post(&path, &sc.accountant, json!({"student_id": other, "period": "2025-09", "due_date": "2025-09-15",
            "replaces_invoice_id": id, "lines": [charge("MEALS", 900000)]})).await;
        assert_eq!(s, StatusCode::CONFLICT, "another student's invoice is not reissued");
        // The voided month is free again for this item.
        let (s, re) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "replaces_invoice_id": id, "lines": [charge("MEALS", 900000)]})).await;
        assert_eq!(s, StatusCode::CREATED, "{re}");
        assert_eq!(re["replaces_invoice_id"], id);
        assert_ne!(re["payment_code"], inv["payment_code"]);
        let (_, open) = app.get(&format!("{path}?status=open"), &sc.accountant).await;
        assert_eq!(open["items"].as_array().map(Vec::len), Some(1));
        let (_, void) = app.get(&format!("{path}?status=void"), &sc.accountant).await;
        assert_eq!(void["items"][0]["id"], id);
        // Even straight SQL cannot rewrite an issued invoice or its lines.
        assert!(app.execute_sql(&format!("UPDATE invoices SET total = 1 WHERE id = {id}")).await.is_err());
        assert!(app.execute_sql("UPDATE invoice_lines SET amount = 1").await.is_err());
        assert!(app.execute_sql("DELETE FROM invoice_lines").await.is_err());
    }

    async fn external_ref_makes_issuing_safe_to_retry(app: TestApp) {
        let sc = app.school("EXT", "QD").await;
        let student = app.student(&sc, "HS1", "Nguyễn Minh Anh", "6A1").await;
        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        let body = json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15", "external_ref": "hd-0001",
            "lines": [charge("MEALS", 935000)]});
        let (s1, a) = app.post(&path, &sc.accountant, body.clone()).await;
        let (s2, b) = app.post(&path, &sc.accountant, body).await;
        assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["external_ref"], "HD-0001");
        let (s, c) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "external_ref": "HD-0001", "lines": [charge("MEALS", 900000)]})).await;
        assert_eq!((s, c["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("invoice_ref_conflict")));
        assert_eq!(app.count("invoices").await, 1);
    }

    async fn concurrent_issuing_gives_unique_codes_and_one_invoice_per_ref(app: TestApp) {
        let sc = app.school("CON", "QD").await;
        let mut students = Vec::new();
        for i in 0..12 {
            students.push(app.student(&sc, &format!("HS{i}"), "Học Sinh", "6A1").await);
        }
        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        let mut tasks = Vec::new();
        for (i, st) in students.iter().enumerate() {
            // Half the requests share one external_ref with identical content: one invoice results.
            let ext = if i % 2 == 0 { "SAME".to_string() } else { format!("REF{i}") };
            let st = if i % 2 == 0 { students[0] } else { *st };
            let body = json!({"student_id": st, "period": "2025-09", "due_date": "2025-09-15", "external_ref": ext, "lines": [charge("MEALS", 935000)]});
            let (client, url, token) = (app.client.clone(), format!("{}{}", app.base, path), sc.accountant.clone());
            tasks.push(tokio::spawn(async move {
                let r = client.post(url).bearer_auth(token).json(&body).send().await.expect("send");
                (r.status(), r.json::<Value>().await.expect("json"))
            }));
        }
        let mut created = 0;
        let mut codes = std::collections::HashSet::new();
        for t in tasks {
            let (s, b) = t.await.expect("task");
            assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{s}: {b}");
            if s == StatusCode::CREATED {
                created += 1;
            }
            codes.insert(b["payment_code"].as_str().expect("code").to_string());
        }
        assert_eq!(created, 7);
        assert_eq!(codes.len(), 7);
        assert_eq!(app.count("invoices").await, 7);
    }

    async fn list_filters_and_pages(app: TestApp) {
        let sc = app.school("LST", "QD").await;
        let a = app.student(&sc, "HS1", "Nguyễn Minh Anh", "6A1").await;
        let b = app.student(&sc, "HS2", "Nguyễn Minh Khôi", "8A3").await;
        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        for (st, m) in [(a, "2025-09"), (a, "2025-10"), (b, "2025-09"), (b, "2025-10"), (b, "2025-11")] {
            let (s, _) = app.post(&path, &sc.accountant, json!({"student_id": st, "period": m, "due_date": format!("{m}-15"), "lines": [charge("MEALS", 800000)]})).await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let count = |v: &Value| v["items"].as_array().map(Vec::len).unwrap_or(0);
        let (_, r) = app.get(&format!("{path}?period=2025-09"), &sc.accountant).await;
        assert_eq!(count(&r), 2);
        let (_, r) = app.get(&format!("{path}?class=8A3"), &sc.accountant).await;
        assert_eq!(count(&r), 3);
        let (_, r) = app.get(&format!("{path}?student_id={a}&period=2025-10"), &sc.accountant).await;
        assert_eq!(count(&r), 1);
        assert_eq!(r["items"][0]["student_name"], "Nguyễn Minh Anh");
        assert!(r["items"][0].get("lines").is_none(), "lists omit lines");
        let (s, _) = app.get(&format!("{path}?status=paid-ish"), &sc.accountant).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // Pages of 2 walk all 5 in order, each once.
        let mut seen = Vec::new();
        let mut url = format!("{path}?limit=2");
        loop {
            let (s, page) = app.get(&url, &sc.accountant).await;
            assert_eq!(s, StatusCode::OK);
            assert!(count(&page) <= 2);
            seen.extend(page["items"].as_array().expect("items").iter().map(|i| i["id"].as_i64().expect("id")));
            match page["next_cursor"].as_str() {
                Some(c) => url = format!("{path}?limit=2&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        let (_, students) = app.get(&format!("/api/v1/schools/{}/students?class=6A1", sc.school_id), &sc.cashier).await;
        assert_eq!(count(&students), 1);
    }
}
