//! Bulk import from a spreadsheet: all or nothing, every bad row named, re-import creates nothing.

use crate::both_backends;
use reqwest::StatusCode;
use serde_json::Value;

both_backends! {
    async fn imports_the_fixture_once(app: TestApp) {
        let sc = app.school("IMP", "QD").await;
        let (s, sum) = app.import_fixture(&sc, "thcs-2025-09.csv").await;
        assert_eq!(s, StatusCode::CREATED, "{sum}");
        assert_eq!(sum["rows"], 13);
        assert_eq!(sum["invoices_created"], 6);
        assert_eq!(sum["students_created"], 6);
        assert_eq!(app.count("invoice_lines").await, 13);

        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        let (_, list) = app.get(&path, &sc.accountant).await;
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 6);
        let by_ref = |r: &str| items.iter().find(|i| i["external_ref"] == r).expect("invoice").clone();
        // 935,000 − 50 % = 467,500; 100 % exemption leaves 0; 935,000 − 70 % + 300,000 = 580,500.
        assert_eq!(by_ref("HD-2509-0002")["total"], 467500);
        assert_eq!(by_ref("HD-2509-0004")["total"], 0);
        assert_eq!(by_ref("HD-2509-0006")["total"], 580500);
        assert_eq!(by_ref("HD-2509-0005")["has_line_above_cap"], true);
        assert_eq!(by_ref("HD-2509-0001")["student_name"], "Nguyễn Minh Anh");
        let (_, siblings) = app.get(&format!("/api/v1/schools/{}/students?family_key=GD-NGUYEN-01", sc.school_id), &sc.accountant).await;
        assert_eq!(siblings["items"].as_array().map(Vec::len), Some(2));

        // The same file again: nothing new, nothing twice.
        let (s, again) = app.import_fixture(&sc, "thcs-2025-09.csv").await;
        assert_eq!(s, StatusCode::OK, "{again}");
        assert_eq!((again["invoices_created"].as_i64(), again["invoices_unchanged"].as_i64()), (Some(0), Some(6)));
        assert_eq!(app.count("invoices").await, 6);
        assert_eq!(app.count("students").await, 6);
        assert_eq!(app.count("import_batches").await, 1);
    }

    async fn a_bad_file_is_rejected_whole_with_every_bad_line(app: TestApp) {
        let sc = app.school("BDF", "QD").await;
        let (s, b) = app.import_fixture(&sc, "bad-rows.csv").await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("import_rejected")), "{b}");
        let rows = b["error"]["rows"].as_array().expect("rows");
        let mut lines: Vec<i64> = rows.iter().map(|r| r["line"].as_i64().expect("line")).collect();
        lines.dedup();
        assert_eq!(lines, vec![3, 4, 5, 6, 7], "{b}");
        let message_of = |line: i64| rows.iter().find(|r| r["line"] == line).expect("row")["message"].as_str().expect("msg").to_string();
        assert!(message_of(3).contains("YYYY-MM"));
        assert!(message_of(5).contains("cap"));
        assert!(message_of(6).contains("PARKING"));
        assert!(message_of(7).contains("whole"));
        for table in ["invoices", "invoice_lines", "students", "import_batches"] {
            assert_eq!(app.count(table).await, 0, "{table}");
        }
    }

    async fn wrong_header_encoding_and_garbage_are_refused(app: TestApp) {
        let sc = app.school("HDR", "QD").await;
        let path = format!("/api/v1/schools/{}/invoices/import", sc.school_id);
        let good = std::fs::read(format!("{}/fixtures/invoices/thcs-2025-09.csv", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
        let text = String::from_utf8(good.clone()).expect("utf8");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (text.replacen("student_code", "ma_hs", 1).into_bytes(), "import_header"),
            (text.replacen("invoice_ref,", "", 1).into_bytes(), "import_header"),
            (text.replacen("amount", "amount,amount", 1).into_bytes(), "import_header"),
            // Windows-1258 / Latin-1 bytes instead of UTF-8.
            ([text.lines().next().expect("header").as_bytes(), b"\nHD-9,HS9,L\xea V\xe2n,6A1,,2025-09,2025-09-15,MEALS,charge,1000,,,,,\n"].concat(), "import_encoding"),
            (vec![0xff, 0xfe, b'i', 0, b'n', 0], "import_encoding"),
            (Vec::new(), "import_empty"),
            (b"invoice_ref,student_code,period,due_date,item_code,amount\n".to_vec(), "import_empty"),
        ];
        for (body, code) in cases {
            let (s, b) = app.post_raw(&path, &sc.accountant, "text/csv", body).await;
            assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{b}");
        }
        // 10 MB of garbage: refused with a clear code, the service stays up.
        let garbage: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| b"a,b;\"\n\xc3"[(i.wrapping_mul(2_654_435_761) >> 29) as usize % 7]).collect();
        let (s, b) = app.post_raw(&path, &sc.accountant, "text/csv", garbage).await;
        assert!(s.is_client_error(), "{s} {b}");
        assert!(b["error"]["code"].as_str().is_some_and(|c| c.starts_with("import_")), "{b}");
        // A multipart upload is told how to send the file.
        let (s, _) = app.post_raw(&path, &sc.accountant, "multipart/form-data; boundary=x", good.clone()).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // A cashier may not import.
        let (s, _) = app.post_raw(&path, &sc.cashier, "text/csv", good).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(app.count("invoices").await, 0);
    }

    async fn changed_content_under_an_imported_ref_is_refused(app: TestApp) {
        let sc = app.school("CHG", "QD").await;
        let (s, _) = app.import_fixture(&sc, "thcs-2025-09.csv").await;
        assert_eq!(s, StatusCode::CREATED);
        let text = std::fs::read_to_string(format!("{}/fixtures/invoices/thcs-2025-09.csv", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
        let edited = text.replacen("HD-2509-0001,HS0001,Nguyễn Minh Anh,6A1,GD-NGUYEN-01,2025-09,2025-09-15,MEALS,charge,935.000",
            "HD-2509-0001,HS0001,Nguyễn Minh Anh,6A1,GD-NGUYEN-01,2025-09,2025-09-15,MEALS,charge,900.000", 1);
        let (s, b) = app.post_raw(&format!("/api/v1/schools/{}/invoices/import", sc.school_id), &sc.accountant, "text/csv", edited.into_bytes()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let rows: &Vec<Value> = b["error"]["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 1, "{b}");
        assert!(rows[0]["message"].as_str().expect("msg").contains("void it"), "{b}");
        assert_eq!(app.count("invoices").await, 6);
    }
}
