//! The transparency report's CSV, as an auditor opens it in a spreadsheet.

use crate::both_backends;
use reqwest::StatusCode;
use serde_json::json;

both_backends! {
    async fn report_csv_cells_never_run_as_formulas(app: TestApp) {
        let sc = app.school("CSV", "QD").await;
        let student = app.student(&sc, "HS1", "Phạm Gia Huy", "6A2").await;
        let formula = r#"=HYPERLINK("http://x","y")"#;
        let (s, inv) = app.post(&format!("/api/v1/schools/{}/invoices", sc.school_id), &sc.accountant,
            json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
                   "lines": [{"type": "charge", "item_code": "BOARDING", "amount": 450000, "cap_override_reason": formula}]})).await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");

        let q = format!("/api/v1/reports/fees?department_id={}&from=2025-09-01&to=2025-09-30", sc.department_id);
        let r = app.client.get(format!("{}{q}&format=csv&section=above_cap", app.base)).bearer_auth(&sc.auditor).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.expect("csv");
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        let header = rows.headers().expect("header").clone();
        let at = |name: &str| header.iter().position(|h| h == name).expect(name);
        let lines: Vec<csv::StringRecord> = rows.records().map(|r| r.expect("row")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        // Shown as text, not run: the cell starts with a quote.
        assert_eq!(&lines[0][at("cap_override_reason")], format!("'{formula}"), "{text}");
        // Figures we wrote stay figures.
        assert_eq!(&lines[0][at("amount")], "450000");
        assert_eq!(&lines[0][at("payment_code")], inv["payment_code"].as_str().expect("code"));
        // The JSON report carries the reason as it was given.
        let (_, report) = app.get(&q, &sc.auditor).await;
        assert_eq!(report["lines_above_cap"][0]["cap_override_reason"], formula);
    }
}
