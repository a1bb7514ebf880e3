//! The payment ledger through the API: cash desk, allocations and credit, reversals, fee lines,
//! receipts, the parent's statement, payment options, and the transparency report.

use crate::both_backends;
use crate::helpers::{School, TestApp, ADMIN};
use proptest::strategy::{Strategy, ValueTree};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Imports the September fixture and returns the invoices by external reference.
async fn billed(app: &TestApp, sc: &School) -> std::collections::HashMap<String, Value> {
    let (s, b) = app.import_fixture(sc, "thcs-2025-09.csv").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, list) = app
        .get(
            &format!("/api/v1/schools/{}/invoices", sc.school_id),
            &sc.accountant,
        )
        .await;
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["external_ref"].as_str().expect("ref").to_string(),
                i.clone(),
            )
        })
        .collect()
}

async fn pay(app: &TestApp, sc: &School, token: &str, body: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/schools/{}/payments", sc.school_id),
        token,
        body,
    )
    .await
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

both_backends! {
    async fn cash_desk_pays_invoices_with_gapless_receipts(app: TestApp) {
        let sc = app.school("CSH", "QD").await;
        let inv = billed(&app, &sc).await;
        let a = &inv["HD-2509-0001"]; // 1,235,000
        let (s, p1) = pay(&app, &sc, &sc.cashier, json!({"channel": "cash", "amount": 1000000, "payer_name": "Nguyễn Văn Bố",
            "allocations": [{"invoice_id": id(a), "amount": 1000000}]})).await;
        assert_eq!(s, StatusCode::CREATED, "{p1}");
        assert!(p1["receipt_no"].as_str().expect("no").starts_with("QD-") && p1["receipt_no"].as_str().expect("no").ends_with("-000001"));
        assert_eq!(p1["fees"], json!([]));
        assert_eq!(p1["no_fees_reason"], "cash at the school office: no transaction fee");
        assert_eq!((p1["parent_outlay"].as_i64(), p1["school_net"].as_i64()), (Some(1000000), Some(1000000)));
        let (_, got) = app.get(&format!("/api/v1/schools/{}/invoices/{}", sc.school_id, id(a)), &sc.cashier).await;
        assert_eq!((got["status"].as_str(), got["paid"].as_i64(), got["outstanding"].as_i64()), (Some("partially_paid"), Some(1000000), Some(235000)));
        let (s, p2) = pay(&app, &sc, &sc.cashier, json!({"channel": "cash", "amount": 235000, "allocations": [{"invoice_id": id(a), "amount": 235000}]})).await;
        assert_eq!(s, StatusCode::CREATED);
        assert!(p2["receipt_no"].as_str().expect("no").ends_with("-000002"));
        let (_, got) = app.get(&format!("/api/v1/schools/{}/invoices/{}", sc.school_id, id(a)), &sc.cashier).await;
        assert_eq!(got["status"], "paid");
        let (_, paid) = app.get(&format!("/api/v1/schools/{}/invoices?status=paid", sc.school_id), &sc.cashier).await;
        // The fully exempted invoice (total 0) is paid too.
        assert_eq!(paid["items"].as_array().map(Vec::len), Some(2));
        // The parent's view of the invoice.
        let (s, st) = app.get(&format!("/api/v1/schools/{}/invoices/{}/statement", sc.school_id, id(a)), &sc.cashier).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(st["payments"].as_array().map(Vec::len), Some(2));
        assert_eq!((st["parent_outlay"].as_i64(), st["parent_fees"].as_i64()), (Some(1235000), Some(0)));
        assert_eq!(st["parent_outlay_formatted"], "1.235.000 ₫");
        assert_eq!(st["invoice"]["lines"].as_array().map(Vec::len), Some(2));
        // Paying more than is owed on an invoice is refused; nothing is written.
        let before = app.count("payments").await;
        let (s, b) = pay(&app, &sc, &sc.cashier, json!({"channel": "cash", "amount": 5000, "allocations": [{"invoice_id": id(a), "amount": 5000}]})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("allocation_exceeds_balance")));
        assert_eq!(app.count("payments").await, before);
        assert_eq!(app.count("counters WHERE name LIKE 'receipt:%' AND value = 2").await, 1, "a refused payment takes no receipt number");
    }

    async fn concurrent_cash_payments_number_receipts_without_gaps(app: TestApp) {
        let sc = app.school("GAP", "QD").await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (client, url, token) = (app.client.clone(), format!("{}/api/v1/schools/{}/payments", app.base, sc.school_id), sc.cashier.clone());
            // Every third one is refused (zero amount): refused requests must not leave gaps.
            let amount = if i % 3 == 2 { 0 } else { 10000 + i };
            tasks.push(tokio::spawn(async move {
                client.post(url).bearer_auth(token).json(&json!({"channel": "cash", "amount": amount})).send().await.expect("send").json::<Value>().await.expect("json")
            }));
        }
        let mut seqs: Vec<i64> = Vec::new();
        for t in tasks {
            let b = t.await.expect("task");
            if let Some(no) = b["receipt_no"].as_str() {
                seqs.push(no.rsplit('-').next().expect("seq").parse().expect("number"));
            }
        }
        seqs.sort();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
        assert_eq!(seqs.len(), 11);
    }

    async fn overpayment_leaves_credit_for_the_family_or_a_refund(app: TestApp) {
        let sc = app.school("CRD", "QD").await;
        let inv = billed(&app, &sc).await;
        let (a, sibling, stranger) = (&inv["HD-2509-0001"], &inv["HD-2509-0002"], &inv["HD-2509-0003"]);
        let (s, p) = pay(&app, &sc, &sc.cashier, json!({"channel": "cash", "amount": 2000000, "allocations": [{"invoice_id": id(a), "amount": 1235000}]})).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(p["unallocated_credit"], 765000);
        let path = format!("/api/v1/schools/{}/payments/{}", sc.school_id, id(&p));
        let (s, _) = app.post(&format!("{path}/allocations"), &sc.cashier, json!({"invoice_id": id(sibling), "amount": 467500})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, b) = app.post(&format!("{path}/allocations"), &sc.accountant, json!({"invoice_id": id(stranger), "amount": 100000})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("not_same_family")));
        let (s, b) = app.post(&format!("{path}/allocations"), &sc.accountant, json!({"invoice_id": id(sibling), "amount": 467500})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["unallocated_credit"], 297500);
        let (s, b) = app.post(&format!("{path}/refunds"), &sc.accountant, json!({"amount": 297501, "reason": "Trả lại tiền thừa"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("refund_exceeds_credit")));
        let (s, b) = app.post(&format!("{path}/refunds"), &sc.accountant, json!({"amount": 297500, "reason": "Trả lại tiền thừa"})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!((b["unallocated_credit"].as_i64(), b["refunded"].as_i64(), b["allocated"].as_i64()), (Some(0), Some(297500), Some(1702500)));
        let (_, sib) = app.get(&format!("/api/v1/schools/{}/invoices/{}", sc.school_id, id(sibling)), &sc.accountant).await;
        assert_eq!(sib["status"], "paid");
        let (_, with_credit) = app.get(&format!("/api/v1/schools/{}/payments?with_credit=true", sc.school_id), &sc.accountant).await;
        assert_eq!(with_credit["items"].as_array().map(Vec::len), Some(0));
    }

    async fn cash_is_reversed_by_a_new_entry_never_edited(app: TestApp) {
        let sc = app.school("REV", "QD").await;
        let inv = billed(&app, &sc).await;
        let a = &inv["HD-2509-0003"];
        let (_, p) = pay(&app, &sc, &sc.cashier, json!({"channel": "cash", "amount": 700000, "allocations": [{"invoice_id": id(a), "amount": 500000}]})).await;
        assert_eq!(p["unallocated_credit"], 200000);
        let path = format!("/api/v1/schools/{}/payments/{}", sc.school_id, id(&p));
        let inv_path = format!("/api/v1/schools/{}/invoices/{}", sc.school_id, id(a));
        let (s, b) = app.post(&format!("{inv_path}/void"), &sc.accountant, json!({"reason": "Sai"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("invoice_has_payments")));
        let (s, _) = app.post(&format!("{path}/reverse"), &sc.cashier, json!({"reason": "Thu nhầm"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, r) = app.post(&format!("{path}/reverse"), &sc.accountant, json!({"reason": "Thu nhầm học sinh"})).await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        assert_eq!((r["amount"].as_i64(), r["reverses_payment_id"].as_i64()), (Some(-700000), Some(id(&p))));
        assert_ne!(r["receipt_no"], p["receipt_no"]);
        assert!(r["receipt_no"].as_str().expect("no").ends_with("-000002"));
        let (_, orig) = app.get(&path, &sc.accountant).await;
        assert_eq!((orig["amount"].as_i64(), orig["reversed_by_payment_id"].as_i64()), (Some(700000), Some(id(&r))));
        // Its credit went back with the reversal: it can be neither refunded nor allocated again.
        assert_eq!(orig["unallocated_credit"], 0);
        let (s, b) = app.post(&format!("{path}/refunds"), &sc.accountant, json!({"amount": 200000, "reason": "Trả lại"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("payment_reversed")));
        let (_, with_credit) = app.get(&format!("/api/v1/schools/{}/payments?with_credit=true", sc.school_id), &sc.accountant).await;
        assert_eq!(with_credit["items"].as_array().map(Vec::len), Some(0));
        let (_, got) = app.get(&inv_path, &sc.accountant).await;
        assert_eq!((got["status"].as_str(), got["paid"].as_i64()), (Some("open"), Some(0)));
        let (s, b) = app.post(&format!("{path}/reverse"), &sc.accountant, json!({"reason": "again"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_reversed")));
        let (s, b) = app.post(&format!("/api/v1/schools/{}/payments/{}/reverse", sc.school_id, id(&r)), &sc.accountant, json!({"reason": "x"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("cannot_reverse_reversal")));
        let (s, _) = app.post(&format!("{inv_path}/void"), &sc.accountant, json!({"reason": "Sai"})).await;
        assert_eq!(s, StatusCode::OK);
        assert!(app.execute_sql("UPDATE payments SET amount = 1").await.is_err());
        assert!(app.execute_sql("DELETE FROM allocations").await.is_err());
        let (_, receipt) = app.get(&format!("/api/v1/schools/{}/payments/{}/receipt", sc.school_id, id(&r)), &sc.accountant).await;
        assert_eq!(receipt["amount_in_words"], "Âm bảy trăm nghìn đồng");
    }

    async fn cashless_payments_carry_itemised_fees(app: TestApp) {
        let sc = app.school("FEE", "QD").await;
        let inv = billed(&app, &sc).await;
        let a = &inv["HD-2509-0001"];
        let sched = |body: Value| app.post("/api/v1/fee-schedules", ADMIN, body);
        let (s, b) = sched(json!({"provider": "vnpay", "channel": "card", "effective_from": "2025-01-01", "percent": "1.1", "min": 2000, "bearer": "parent"})).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, b) = sched(json!({"provider": "vnpay", "channel": "card", "effective_from": "2025-06-01", "percent": "1.0", "bearer": "parent"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("schedule_overlap")));
        let (s, _) = sched(json!({"provider": "vnpay", "channel": "card", "school_id": sc.school_id, "effective_from": "2025-01-01", "bearer": "school"})).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = sched(json!({"provider": "momo", "channel": "ewallet", "effective_from": "2025-01-01", "percent": "2"})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "published terms need a bearer");
        let (s, _) = pay(&app, &sc, &sc.cashier, json!({"channel": "card", "provider": "vnpay", "provider_ref": "14012345", "amount": 1235000})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "cashiers take cash; cashless is entered by accountants");

        let (s, p) = pay(&app, &sc, &sc.accountant, json!({"channel": "card", "provider": "vnpay", "provider_ref": "14012345", "amount": 1235000,
            "reported_fee": 13585, "received_at": "2025-09-10T08:30:00+07:00", "allocations": [{"invoice_id": id(a), "amount": 1235000}]})).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let fee = &p["fees"][0];
        // 1.1% of 1,235,000 = 13,585, borne by the school under its own agreement.
        assert_eq!((fee["amount"].as_i64(), fee["predicted_amount"].as_i64(), fee["borne_by"].as_str(), fee["needs_review"].as_bool()),
            (Some(13585), Some(13585), Some("school"), Some(false)), "{fee}");
        assert_eq!(fee["basis"], "1.1% of 1.235.000 ₫ (as reported by vnpay)");
        assert_eq!((p["parent_outlay"].as_i64(), p["school_net"].as_i64()), (Some(1235000), Some(1221415)));
        assert_eq!(p["received_at_local"], "2025-09-10 08:30:00 +07:00");
        // The same provider reference again is the same payment.
        let (s, again) = pay(&app, &sc, &sc.accountant, json!({"channel": "card", "provider": "vnpay", "provider_ref": "14012345", "amount": 1235000})).await;
        assert_eq!((s, again["id"].as_i64()), (StatusCode::OK, Some(id(&p))));
        let (s, b) = pay(&app, &sc, &sc.accountant, json!({"channel": "card", "provider": "vnpay", "provider_ref": "14012345", "amount": 1})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("provider_ref_conflict")));
        // A reported fee that differs from the schedule is booked as reported and flagged.
        let (_, p2) = pay(&app, &sc, &sc.accountant, json!({"channel": "card", "provider": "vnpay", "provider_ref": "14012346", "amount": 100000,
            "reported_fee": 2500, "received_at": "2025-09-11T10:00:00+07:00"})).await;
        assert_eq!((p2["fees"][0]["amount"].as_i64(), p2["fees"][0]["predicted_amount"].as_i64(), p2["fees"][0]["needs_review"].as_bool()),
            (Some(2500), Some(2000), Some(true)));
        // No schedule in force: a zero line that says so, flagged.
        let (_, p3) = pay(&app, &sc, &sc.accountant, json!({"channel": "ewallet", "provider": "momo", "provider_ref": "2300001", "amount": 300000})).await;
        assert_eq!((p3["fees"][0]["amount"].as_i64(), p3["fees"][0]["needs_review"].as_bool()), (Some(0), Some(true)));
        assert!(p3["fees"][0]["basis"].as_str().expect("basis").contains("no fee schedule"));
        let (_, flagged) = app.get(&format!("/api/v1/schools/{}/payments?needs_review=true", sc.school_id), &sc.accountant).await;
        let ids: Vec<i64> = flagged["items"].as_array().expect("items").iter().map(id).collect();
        assert_eq!(ids, vec![id(&p2), id(&p3)]);
        // Receipts are the same for every channel.
        let (s, r) = app.get(&format!("/api/v1/schools/{}/payments/{}/receipt", sc.school_id, id(&p)), &sc.cashier).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(r["amount_in_words"], "Một triệu hai trăm ba mươi lăm nghìn đồng");
        assert_eq!(r["invoices"][0]["student_name"], "Nguyễn Minh Anh");
        assert_eq!(r["invoices"][0]["lines"].as_array().map(Vec::len), Some(2));
    }

    async fn receipts_print_as_html(app: TestApp) {
        let sc = app.school("HTM", "QD").await;
        let inv = billed(&app, &sc).await;
        let (_, p) = pay(&app, &sc, &sc.cashier, json!({"channel": "cash", "amount": 1500000, "payer_name": "<b>Trần</b> & con",
            "allocations": [{"invoice_id": id(&inv["HD-2509-0001"]), "amount": 1235000}]})).await;
        let r = app.client.get(format!("{}/api/v1/schools/{}/payments/{}/receipt.html", app.base, sc.school_id, id(&p)))
            .bearer_auth(&sc.cashier).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("text/html"));
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let policy = header("content-security-policy");
        assert!(!policy.contains("unsafe-inline") && policy.contains("frame-ancestors 'none'") && policy.contains("default-src 'none'"), "{policy}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        let html = r.text().await.expect("html");
        // The one inline style is the one the policy names by hash, so the page keeps its look.
        let css = html.split_once("<style>").and_then(|(_, rest)| rest.split_once("</style>")).map(|(css, _)| css).expect("style");
        assert!(policy.contains(&feerecon::http::pages::style_hash(css)), "{policy}");
        assert_eq!(html.matches("<style").count(), 1);
        assert!(!html.contains("<script") && !html.contains(" style="));
        for needle in ["BIÊN LAI THU TIỀN", p["receipt_no"].as_str().expect("no"), "Một triệu năm trăm nghìn đồng", "1.500.000 ₫",
                       "THCS Lê Quý Đôn", "Nguyễn Minh Anh", "Tiền ăn bán trú", "Tiền mặt", "Không có phí", "+07:00"] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert!(html.contains("&lt;b&gt;Trần&lt;/b&gt; &amp; con") || html.contains("&#60;b&#62;Trần&#60;/b&#62; &#38; con"), "payer name escaped");
        assert!(!html.contains("<b>Trần</b>"));
        let other = app.school("HTX", "QX").await;
        let (s, _) = app.get(&format!("/api/v1/schools/{}/payments/{}/receipt.html", sc.school_id, id(&p)), &other.cashier).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    async fn payment_options_list_free_channels_first_with_a_vietqr(app: TestApp) {
        let sc = app.school("OPT", "QD").await;
        let inv = billed(&app, &sc).await;
        let a = &inv["HD-2509-0001"];
        app.approved_account(&sc, "970436", "0071000123456", "TRUONG THCS LE QUY DON").await;
        let (s, _) = app.post(&format!("/api/v1/schools/{}/accounts", sc.school_id), &sc.accountant,
            json!({"bank_bin": "97043", "account_number": "0071000123456", "account_name": "X"})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        for body in [
            json!({"provider": "vnpay", "channel": "card", "effective_from": "2025-01-01", "percent": "1.1", "min": 2000, "bearer": "parent"}),
            json!({"provider": "vnpay", "channel": "card", "school_id": sc.school_id, "effective_from": "2025-01-01"}),
            json!({"provider": "momo", "channel": "ewallet", "effective_from": "2025-01-01", "percent": "0.8", "bearer": "parent"}),
            json!({"provider": "momo", "channel": "ewallet", "school_id": sc.school_id, "effective_from": "2025-01-01", "bearer": "school"}),
            // Published but without an agreement with this school: not offered.
            json!({"provider": "zalopay", "channel": "ewallet", "effective_from": "2025-01-01", "percent": "0.5", "bearer": "parent"}),
        ] {
            let (s, b) = app.post("/api/v1/fee-schedules", ADMIN, body).await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
        }
        let path = format!("/api/v1/schools/{}/invoices/{}/payment-options", sc.school_id, id(a));
        let (s, opts) = app.get(&path, &sc.cashier).await;
        assert_eq!(s, StatusCode::OK);
        let names: Vec<&str> = opts.as_array().expect("options").iter().map(|o| o["provider"].as_str().expect("provider")).collect();
        assert_eq!(names, vec!["cash", "bank", "momo", "vnpay"]);
        let fees: Vec<i64> = opts.as_array().expect("options").iter().map(|o| o["parent_fee"].as_i64().expect("fee")).collect();
        assert_eq!(fees, vec![0, 0, 0, 13585]);
        let qr = opts[1]["vietqr"]["payload"].as_str().expect("payload");
        let code = a["payment_code"].as_str().expect("code");
        assert!(qr.starts_with("000201010212") && qr.contains("A000000727") && qr.contains("QRIBFTTA"), "{qr}");
        assert!(qr.contains("54071235000") && qr.contains(&format!("0808{code}")), "{qr}");
        assert!(crc_ok(qr), "{qr}");
        let (s, _) = app.call(reqwest::Method::PUT, &format!("/api/v1/schools/{}/settings", sc.school_id), Some(ADMIN), Some(&json!({"accepts_cash": false}))).await;
        assert_eq!(s, StatusCode::OK);
        let (_, opts) = app.get(&path, &sc.cashier).await;
        assert_eq!(opts[0]["provider"], "bank");
    }

    async fn reports_add_up_and_flag_breaches(app: TestApp) {
        let sc = app.school("RPT", "QD").await;
        let inv = billed(&app, &sc).await;
        for body in [
            json!({"provider": "vnpay", "channel": "card", "effective_from": "2025-01-01", "percent": "1.1", "min": 2000, "bearer": "parent"}),
            json!({"provider": "sepay", "channel": "bank_transfer", "effective_from": "2025-01-01", "percent": "0", "fixed": 1100, "bearer": "school"}),
        ] {
            app.post("/api/v1/fee-schedules", ADMIN, body).await;
        }
        let t = "2025-09-10T09:00:00+07:00";
        pay(&app, &sc, &sc.cashier, json!({"channel": "cash", "amount": 1235000, "received_at": t, "allocations": [{"invoice_id": id(&inv["HD-2509-0001"]), "amount": 1235000}]})).await;
        pay(&app, &sc, &sc.accountant, json!({"channel": "card", "provider": "vnpay", "provider_ref": "V1", "amount": 467500, "received_at": t, "allocations": [{"invoice_id": id(&inv["HD-2509-0002"]), "amount": 467500}]})).await;
        pay(&app, &sc, &sc.accountant, json!({"channel": "bank_transfer", "provider": "sepay", "provider_ref": "S1", "amount": 1566800, "received_at": t})).await;
        pay(&app, &sc, &sc.accountant, json!({"channel": "bank_transfer", "provider": "sepay", "provider_ref": "S2", "amount": 100000, "received_at": "2025-10-02T09:00:00+07:00"})).await;
        // A voluntary item billed as mandatory.
        let student = app.student(&sc, "HS9", "Phan Thị Mai", "6A1").await;
        let (s, b) = app.post(&format!("/api/v1/schools/{}/invoices", sc.school_id), &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-20",
            "lines": [{"type": "charge", "item_code": "ENGLISH", "amount": 300000, "mandatory": true}]})).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["lines"][0]["billed_as_mandatory"], true);

        let q = format!("/api/v1/reports/fees?department_id={}&from=2025-09-01&to=2025-09-30", sc.department_id);
        let (s, r) = app.get(&q, &sc.auditor).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let rows = r["channels"].as_array().expect("channels");
        assert_eq!(rows.len(), 3);
        let sum = |k: &str| rows.iter().map(|c| c[k].as_i64().expect("n")).sum::<i64>();
        assert_eq!(r["totals"]["amount"].as_i64(), Some(sum("amount")));
        assert_eq!(r["totals"]["amount"], 1235000 + 467500 + 1566800);
        assert_eq!(r["totals"]["fees_parent"], 5143); // 1.1% of 467,500 = 5,142.5 → 5,143
        assert_eq!(r["totals"]["fees_school"], 1100);
        let sepay = rows.iter().find(|c| c["provider"] == "sepay").expect("sepay");
        assert_eq!(sepay["effective_rate_percent"], "0.0702");
        assert_eq!(r["cash_share"]["cash_amount"], 1235000);
        assert_eq!(r["parent_borne_fees"].as_array().map(Vec::len), Some(1));
        assert_eq!(r["parent_borne_fees"][0]["breach"], false);
        assert_eq!(r["lines_above_cap"][0]["item_code"], "BOARDING");
        assert_eq!(r["voluntary_billed_as_mandatory"][0]["item_code"], "ENGLISH");
        assert_eq!(r["schools_without_free_channel"], json!([]));
        // The report adds up to the ledger to the đồng.
        assert_eq!(app.count("payments WHERE received_at < '2025-09-30T17:00:00Z'").await, 3);

        app.call(reqwest::Method::PUT, &format!("/api/v1/departments/{}/policy", sc.department_id), Some(ADMIN), Some(&json!({"parents_must_not_bear_fees": true}))).await;
        let other = app.school("RP2", "QR").await;
        // A school that refuses cash and has no account of its own, in another department.
        app.call(reqwest::Method::PUT, &format!("/api/v1/schools/{}/settings", other.school_id), Some(ADMIN), Some(&json!({"accepts_cash": false}))).await;
        let (_, r) = app.get(&q, &sc.auditor).await;
        assert_eq!(r["parent_borne_fees"][0]["breach"], true);
        let (_, r2) = app.get(&format!("/api/v1/reports/fees?school_id={}&from=2025-09-01&to=2025-09-30", other.school_id), &other.auditor).await;
        assert_eq!(r2["schools_without_free_channel"][0]["finding"], "refuses cash and offers no free channel");
        // CSV, and scope.
        let r = app.client.get(format!("{}{q}&format=csv", app.base)).bearer_auth(&sc.auditor).send().await.expect("send");
        assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("text/csv"));
        let text = r.text().await.expect("csv");
        assert!(text.starts_with("channel,provider,payments,amount,fees_school,fees_parent,fees_provider,fees_total,effective_rate_percent\n"));
        assert!(text.contains("all,all,3,3269300,1100,5143,0,6243,"), "{text}");
        let (s, _) = app.get(&q, &other.auditor).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app.get(&q, &sc.accountant).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app.get(&format!("/api/v1/reports/fees?school_id={}&from=2025-09-30&to=2025-09-01", sc.school_id), &sc.accountant).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    async fn bad_payments_are_refused_and_write_nothing(app: TestApp) {
        let sc = app.school("BPY", "QD").await;
        let inv = billed(&app, &sc).await;
        let other = app.school("BPZ", "QZ").await;
        let other_inv = billed(&app, &other).await;
        let a = id(&inv["HD-2509-0001"]);
        let cases = vec![
            json!({"channel": "cash", "amount": 0}),
            json!({"channel": "cash", "amount": -1000}),
            json!({"channel": "cash", "amount": 1000.5}),
            json!({"channel": "cash", "amount": 9_223_372_036_854_775_807i64}),
            json!({"channel": "cash", "amount": "1000"}),
            json!({"channel": "cheque", "amount": 1000}),
            json!({"channel": "cash", "amount": 1000, "reported_fee": 10}),
            json!({"channel": "cash", "amount": 1000, "allocations": [{"invoice_id": a, "amount": 1001}]}),
            json!({"channel": "cash", "amount": 2000000, "allocations": [{"invoice_id": a, "amount": 1235001}]}),
            json!({"channel": "cash", "amount": 1000, "allocations": [{"invoice_id": a, "amount": 500}, {"invoice_id": a, "amount": 500}]}),
            json!({"channel": "cash", "amount": 1000, "allocations": [{"invoice_id": id(&other_inv["HD-2509-0001"]), "amount": 1000}]}),
            json!({"channel": "cash", "amount": 1000, "received_at": "2999-01-01T00:00:00Z"}),
            json!({"channel": "card", "provider": "vnpay", "amount": 1000}),
            json!({"channel": "card", "provider": "VN PAY!", "provider_ref": "1", "amount": 1000}),
        ];
        for body in cases {
            let (s, b) = pay(&app, &sc, &sc.accountant, body.clone()).await;
            // 422 for what is wrong in itself, 409 for what does not fit the books (balances,
            // another school's invoice, a time yet to come).
            assert!([StatusCode::UNPROCESSABLE_ENTITY, StatusCode::BAD_REQUEST, StatusCode::CONFLICT].contains(&s), "{body}: {s} {b}");
            assert!(b["error"]["code"].is_string());
        }
        assert_eq!(app.count("payments").await, 0);
        assert_eq!(app.count("audit_log WHERE action LIKE 'payment.%'").await, 0);
        let (s, _) = app.get(&format!("/api/v1/schools/{}/payments/1", other.school_id), &sc.accountant).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    async fn ledger_invariants_hold_for_random_operations(app: TestApp) {
        // proptest generates the operation sequences; each runs against the real API.
        let sc = app.school("PRP", "QD").await;
        let inv = billed(&app, &sc).await;
        let invoices: Vec<i64> = ["HD-2509-0001", "HD-2509-0002", "HD-2509-0003", "HD-2509-0005"].iter().map(|r| id(&inv[*r])).collect();
        let op = (0usize..4, 1i64..=800_000, 0u8..4);
        let strategy = proptest::collection::vec(op, 6..14);
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut payments: Vec<i64> = Vec::new();
        for _case in 0..3 {
            for (which, amount, kind) in strategy.new_tree(&mut runner).expect("tree").current() {
                let invoice = invoices[which];
                match kind {
                    0 | 1 => {
                        let alloc = if kind == 0 { amount } else { amount / 2 };
                        let (s, b) = pay(&app, &sc, &sc.cashier, json!({"channel": "cash", "amount": amount, "allocations": [{"invoice_id": invoice, "amount": alloc}]})).await;
                        assert!(s == StatusCode::CREATED || b["error"]["code"] == "allocation_exceeds_balance", "{b}");
                        if s == StatusCode::CREATED { payments.push(id(&b)); }
                    }
                    2 => if let Some(p) = payments.last() {
                        let (s, b) = app.post(&format!("/api/v1/schools/{}/payments/{p}/allocations", sc.school_id), &sc.accountant, json!({"invoice_id": invoice, "amount": amount})).await;
                        assert!(s == StatusCode::OK || s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::CONFLICT, "{b}");
                    },
                    _ => if let Some(p) = payments.first() {
                        let (s, b) = app.post(&format!("/api/v1/schools/{}/payments/{p}/reverse", sc.school_id), &sc.accountant, json!({"reason": "kiểm tra"})).await;
                        assert!(s == StatusCode::CREATED || s == StatusCode::CONFLICT, "{b}");
                    },
                }
            }
        }
        let (_, list) = app.get(&format!("/api/v1/schools/{}/payments?limit=500", sc.school_id), &sc.accountant).await;
        let mut per_invoice: std::collections::HashMap<i64, i64> = Default::default();
        for p in list["items"].as_array().expect("items") {
            let amount = p["amount"].as_i64().expect("amount");
            let allocated: i64 = p["allocations"].as_array().expect("allocs").iter().map(|a| a["amount"].as_i64().expect("a")).sum();
            assert_eq!(p["allocated"].as_i64(), Some(allocated));
            if amount > 0 { assert!(allocated <= amount, "{p}"); } else { assert!(allocated <= 0, "{p}"); }
            assert_eq!(p["parent_outlay"].as_i64(), Some(amount));
            for a in p["allocations"].as_array().expect("allocs") {
                *per_invoice.entry(a["invoice_id"].as_i64().expect("id")).or_default() += a["amount"].as_i64().expect("a");
            }
        }
        for i in &invoices {
            let (_, got) = app.get(&format!("/api/v1/schools/{}/invoices/{i}", sc.school_id), &sc.accountant).await;
            let paid = got["paid"].as_i64().expect("paid");
            assert_eq!(paid, per_invoice.get(i).copied().unwrap_or(0));
            assert!(paid >= 0 && paid <= got["total"].as_i64().expect("total"), "{got}");
        }
        let (_, r) = app.get(&format!("/api/v1/reports/fees?school_id={}&from=2020-01-01&to=2029-12-31", sc.school_id), &sc.accountant).await;
        let ledger: i64 = list["items"].as_array().expect("items").iter().map(|p| p["amount"].as_i64().expect("a")).sum();
        assert_eq!(r["totals"]["amount"].as_i64(), Some(ledger));
    }
}

/// CRC-16/CCITT-FALSE of a VietQR payload, computed here independently of the service.
fn crc_ok(payload: &str) -> bool {
    let (body, crc) = payload.split_at(payload.len() - 4);
    let mut c: u16 = 0xFFFF;
    for b in body.bytes() {
        c ^= u16::from(b) << 8;
        for _ in 0..8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            };
        }
    }
    format!("{c:04X}") == crc
}
