//! The audit log: every change leaves a record, chained so that tampering shows.

use crate::both_backends;
use crate::helpers::{Backend, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends! {
    async fn changes_are_audited_and_the_chain_verifies(app: TestApp) {
        let sc = app.school("AUD", "QD").await;
        let student = app.student(&sc, "HS1", "Nguyễn Văn An", "6A1").await;
        let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
        let (_, inv) = app.post(&path, &sc.accountant, json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
            "lines": [{"type": "charge", "item_code": "MEALS", "amount": 935000}]})).await;
        let id = inv["id"].as_i64().expect("id");
        app.post(&format!("{path}/{id}/void"), &sc.accountant, json!({"reason": "Nhập sai"})).await;
        app.import_fixture(&sc, "thcs-2025-09.csv").await;
        let chain = format!("school:{}", sc.school_id);
        for action in ["student.create", "invoice.issue", "invoice.void", "invoice.import"] {
            assert_eq!(app.count(&format!("audit_log WHERE chain = '{chain}' AND action = '{action}'")).await, 1, "{action}");
        }
        // Personal names never enter the audit log, which auditors read across schools.
        assert_eq!(app.count("audit_log WHERE details LIKE '%Nguyễn%'").await, 0);

        let (s, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert_eq!(s, StatusCode::OK);
        let reports = reports.as_array().expect("reports");
        assert!(reports.iter().all(|r| r["intact"] == true), "{reports:?}");
        let school_chain = reports.iter().find(|r| r["chain"] == chain.as_str()).expect("school chain");
        assert_eq!(school_chain["records"], 4);
        // An auditor verifies the chains of their department's schools; others may not.
        let (s, mine) = app.get("/api/v1/audit/verify", &sc.auditor).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(mine.as_array().map(|a| a.iter().map(|r| r["chain"].clone()).collect::<Vec<Value>>()), Some(vec![json!(chain)]));
        let (s, _) = app.get("/api/v1/audit/verify", &sc.accountant).await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // Rewriting history (past the append-only triggers) breaks the chain at that record.
        assert!(app.execute_sql("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2").await.is_err());
        let disable = match app.backend {
            Backend::Sqlite => "DROP TRIGGER audit_log_no_update",
            Backend::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        };
        app.execute_sql(disable).await.expect("disable trigger");
        app.execute_sql(&format!("UPDATE audit_log SET details = '{{\"reason\":\"x\"}}' WHERE chain = '{chain}' AND seq = 3")).await.expect("tamper");
        let (_, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        let broken = reports.as_array().expect("reports").iter().find(|r| r["chain"] == chain.as_str()).expect("chain").clone();
        assert_eq!((broken["intact"].as_bool(), broken["first_bad_seq"].as_i64()), (Some(false), Some(3)), "{broken}");
    }
}
