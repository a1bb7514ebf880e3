//! The audit log: every change leaves a record, chained so that tampering shows.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, ADMIN};
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

/// What an attacker with the database owner's rights does first: the append-only guards go.
async fn drop_guards(app: &TestApp) {
    let sql: &[&str] = match app.backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
            "DROP TRIGGER audit_chains_never_deleted",
            "DROP TRIGGER payments_only_redacted",
            "DROP TRIGGER allocations_no_delete",
        ],
        Backend::Postgres => &[
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "ALTER TABLE audit_chains DISABLE TRIGGER USER",
            "ALTER TABLE payments DISABLE TRIGGER USER",
            "ALTER TABLE allocations DISABLE TRIGGER USER",
        ],
    };
    for s in sql {
        app.execute_sql(s).await.expect(s);
    }
}

/// The link hash, as anyone who has read `src/audit.rs` can recompute it.
#[allow(clippy::too_many_arguments)]
fn link_hash(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: Option<i64>,
    details: &str,
) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let id = entity_id.map(|i| i.to_string()).unwrap_or_default();
    for part in [
        prev,
        &seq.to_string(),
        at,
        actor,
        action,
        entity,
        &id,
        details,
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

type Record = (
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    String,
);

async fn records(app: &TestApp, chain: &str) -> Vec<Record> {
    use sqlx::Row;
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
    let rows = sqlx::query("SELECT seq, at, actor, action, entity, entity_id, details, hash FROM audit_log WHERE chain = $1 ORDER BY seq")
        .bind(chain).fetch_all(&pool).await.expect("records");
    pool.close().await;
    rows.iter()
        .map(|r| {
            (
                r.get("seq"),
                r.get("at"),
                r.get("actor"),
                r.get("action"),
                r.get("entity"),
                r.get("entity_id"),
                r.get("details"),
                r.get("hash"),
            )
        })
        .collect()
}

/// Rewrites `chain` from record `from` on with new details for it and every hash recomputed, as
/// an attacker without the MAC key would; `mac` is what each rewritten record gets.
async fn rewrite(app: &TestApp, chain: &str, from: i64, mac: Option<&str>) {
    let recs = records(app, chain).await;
    let mut prev = recs
        .iter()
        .find(|r| r.0 == from - 1)
        .map(|r| r.7.clone())
        .unwrap_or_default();
    for (seq, at, actor, action, entity, entity_id, details, _) in
        recs.into_iter().filter(|r| r.0 >= from)
    {
        let details = if seq == from {
            details.replace('}', ",\"note\":\"rewritten\"}")
        } else {
            details
        };
        let hash = link_hash(
            &prev, seq, &at, &actor, &action, &entity, entity_id, &details,
        );
        let mac = mac.map(|m| format!("'{m}'")).unwrap_or("NULL".into());
        app.execute_sql(&format!("UPDATE audit_log SET details = '{details}', prev_hash = '{prev}', hash = '{hash}', mac = {mac} WHERE chain = '{chain}' AND seq = {seq}"))
            .await.expect("rewrite");
        prev = hash;
    }
    app.execute_sql(&format!(
        "UPDATE audit_chains SET head = '{prev}' WHERE chain = '{chain}'"
    ))
    .await
    .expect("head");
}

/// A school whose chain has a few records: a student, two invoices, a cash payment.
async fn busy_school(
    app: &TestApp,
    suffix: &str,
    prefix: &str,
) -> (crate::helpers::School, String) {
    let sc = app.school(suffix, prefix).await;
    let student = app.student(&sc, "HS1", "Nguyễn Văn An", "6A1").await;
    let path = format!("/api/v1/schools/{}/invoices", sc.school_id);
    let mut ids = Vec::new();
    for period in ["2025-09", "2025-10"] {
        let (s, inv) = app
            .post(
                &path,
                &sc.accountant,
                json!({"student_id": student, "period": period, "due_date": "2025-09-15",
            "lines": [{"type": "charge", "item_code": "MEALS", "amount": 935000}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");
        ids.push(inv["id"].as_i64().expect("id"));
    }
    let (s, p) = app.post(&format!("/api/v1/schools/{}/payments", sc.school_id), &sc.cashier,
        json!({"channel": "cash", "amount": 935000, "allocations": [{"invoice_id": ids[0], "amount": 935000}]})).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let chain = format!("school:{}", sc.school_id);
    (sc, chain)
}

fn kinds(reports: &Value, chain: &str) -> Vec<String> {
    reports
        .as_array()
        .expect("reports")
        .iter()
        .find(|r| r["chain"] == chain)
        .map(|r| {
            r["problems"]
                .as_array()
                .expect("problems")
                .iter()
                .map(|p| p["kind"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

both_backends! {
    async fn every_kind_of_tampering_is_detected_and_named(app: TestApp) {
        let names = ["CHG", "DEL", "INS", "SWP", "TRN", "GONE", "REW", "LED"];
        let mut schools = Vec::new();
        for (i, n) in names.iter().enumerate() {
            schools.push(busy_school(&app, n, &format!("Q{}", (b'A' + i as u8) as char)).await);
        }
        let chain = |n: &str| schools[names.iter().position(|x| *x == n).expect("name")].1.clone();
        // Untouched, everything verifies, ledger coverage included.
        let (s, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert_eq!(s, StatusCode::OK);
        assert!(reports.as_array().expect("reports").iter().all(|r| r["intact"] == true), "{reports:#}");
        // The service signs every chain's head; auditors keep what it signed.
        feerecon::checkpoint::sign_all(&app.state.store, &app.state.checkpoints).await.expect("sign");
        let (s, cps) = app.get("/api/v1/audit/checkpoints", ADMIN).await;
        assert_eq!(s, StatusCode::OK);
        assert!(cps.as_array().expect("checkpoints").len() >= names.len(), "{cps}");
        let (s, mine) = app.get("/api/v1/audit/checkpoints", &schools[0].0.auditor).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(mine.as_array().map(|a| a.iter().map(|c| c["chain"].clone()).collect::<Vec<_>>()), Some(vec![json!(chain("CHG"))]));
        let (s, key) = app.get("/api/v1/audit/checkpoints/key", &schools[0].0.auditor).await;
        assert_eq!(s, StatusCode::OK);
        let verifier = feerecon::checkpoint::NoteVerifier::from_vkey(key["vkey"].as_str().expect("vkey")).expect("vkey");
        let note = mine[0]["note"].as_str().expect("note");
        assert_eq!(verifier.open(note).map(|c| c.size), Ok(mine[0]["size"].as_i64().expect("size")));
        assert!(app.execute_sql("DELETE FROM audit_checkpoints").await.is_err(), "checkpoints are append-only");

        drop_guards(&app).await;
        // Change a record.
        app.execute_sql(&format!("UPDATE audit_log SET actor = 'someone-else' WHERE chain = '{}' AND seq = 2", chain("CHG"))).await.expect("change");
        // Delete one from the middle.
        app.execute_sql(&format!("DELETE FROM audit_log WHERE chain = '{}' AND seq = 2", chain("DEL"))).await.expect("delete");
        // Append a forged record with a correct hash (and a MAC made up without the key).
        let ins = chain("INS");
        let last = records(&app, &ins).await.pop().expect("last");
        let (seq, at, details) = (last.0 + 1, last.1.clone(), "{\"amount\":1}".to_string());
        let hash = link_hash(&last.7, seq, &at, "token:1:admin", "payment.allocate_credit", "payment", Some(1), &details);
        app.execute_sql(&format!("INSERT INTO audit_log (chain, seq, school_id, at, actor, action, entity, entity_id, details, prev_hash, hash, mac)
            VALUES ('{ins}', {seq}, NULL, '{at}', 'token:1:admin', 'payment.allocate_credit', 'payment', 1, '{details}', '{}', '{hash}', '{}')", last.7, "ab".repeat(32))).await.expect("insert");
        app.execute_sql(&format!("UPDATE audit_chains SET seq = {seq}, head = '{hash}' WHERE chain = '{ins}'")).await.expect("head");
        // Swap two records.
        let swp = chain("SWP");
        for sql in [format!("UPDATE audit_log SET seq = -2 WHERE chain = '{swp}' AND seq = 2"), format!("UPDATE audit_log SET seq = 2 WHERE chain = '{swp}' AND seq = 3"), format!("UPDATE audit_log SET seq = 3 WHERE chain = '{swp}' AND seq = -2")] {
            app.execute_sql(&sql).await.expect("swap");
        }
        // Cut off the tail, and fix the chain table to match.
        let trn = chain("TRN");
        let recs = records(&app, &trn).await;
        app.execute_sql(&format!("DELETE FROM audit_log WHERE chain = '{trn}' AND seq = {}", recs.len())).await.expect("truncate");
        app.execute_sql(&format!("UPDATE audit_chains SET seq = {}, head = '{}' WHERE chain = '{trn}'", recs.len() - 1, recs[recs.len() - 2].7)).await.expect("head");
        // Delete a whole chain and its row in the chain table.
        let gone = chain("GONE");
        app.execute_sql(&format!("DELETE FROM audit_log WHERE chain = '{gone}'")).await.expect("delete chain");
        app.execute_sql(&format!("DELETE FROM audit_chains WHERE chain = '{gone}'")).await.expect("delete chain row");
        // Rewrite a record and every later hash.
        rewrite(&app, &chain("REW"), 2, None).await;
        // The ledger behind the service's back: a payment with no record, one changed, an
        // allocation deleted.
        let led = &schools[names.iter().position(|x| *x == "LED").expect("led")].0;
        app.execute_sql(&format!("INSERT INTO payments (school_id, channel, provider, amount, received_at, recorded_at, recorded_by, receipt_no, receipt_year, receipt_seq)
            VALUES ({}, 'cash', 'cash', 5000000, '2025-09-01T00:00:00.000000Z', '2025-09-01T00:00:00.000000Z', 'nobody', 'FORGED-1', 2025, 999)", led.school_id)).await.expect("forged payment");
        app.execute_sql(&format!("UPDATE payments SET amount = 1 WHERE school_id = {} AND receipt_no <> 'FORGED-1'", led.school_id)).await.expect("changed payment");
        let other = &schools[0].0;
        app.execute_sql(&format!("DELETE FROM allocations WHERE school_id = {}", other.school_id)).await.expect("deleted allocation");

        let (s, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert_eq!(s, StatusCode::OK);
        let has = |n: &str, kind: &str| kinds(&reports, &chain(n)).iter().any(|k| k == kind);
        for (n, kind) in [("CHG", "changed"), ("DEL", "deleted"), ("INS", "forged"), ("SWP", "changed"), ("TRN", "truncated"),
                          ("GONE", "chain_deleted"), ("REW", "unkeyed"), ("REW", "rewritten"), ("LED", "uncovered"), ("LED", "row_changed"),
                          ("CHG", "row_missing")] {
            assert!(has(n, kind), "{n}: {kind} not reported: {:?}", kinds(&reports, &chain(n)));
        }
        for r in reports.as_array().expect("reports") {
            assert_eq!(r["intact"].as_bool(), Some(r["problems"].as_array().is_some_and(|p| p.is_empty())), "{r}");
        }
        // The system chain was not touched.
        assert!(kinds(&reports, "system").is_empty(), "{:?}", kinds(&reports, "system"));
        // A rewrite that keeps the old MACs shows as forged records.
        let swp_kinds = kinds(&reports, &chain("SWP"));
        assert!(!swp_kinds.is_empty());
        rewrite(&app, &chain("SWP"), 2, Some(&"cd".repeat(32))).await;
        let (_, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert!(kinds(&reports, &chain("SWP")).iter().any(|k| k == "forged"), "{:?}", kinds(&reports, &chain("SWP")));
    }
}

both_backends! {
    async fn a_baseline_covers_the_ledger_found_once(app: TestApp) {
        let (_, chain) = busy_school(&app, "BAS", "QB").await;
        let store = &app.state.store;
        // Rows from before coverage (here: written by hand) are uncovered until the baseline.
        drop_guards(&app).await;
        let school: i64 = chain.trim_start_matches("school:").parse().expect("school");
        app.execute_sql(&format!("INSERT INTO refunds (school_id, payment_id, amount, reason, created_at, created_by)
            SELECT school_id, id, 1, 'x', recorded_at, 'nobody' FROM payments WHERE school_id = {school}")).await.expect("old row");
        let (_, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert_eq!(kinds(&reports, &chain), vec!["uncovered".to_string()]);
        assert!(feerecon::coverage::baseline(store).await.expect("baseline").is_some());
        assert_eq!(feerecon::coverage::baseline(store).await.expect("again"), None, "once");
        let (_, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert!(reports.as_array().expect("reports").iter().all(|r| r["intact"] == true), "{reports:#}");
    }
}

// Verification reads a chain in pages of sequence numbers: a gap longer than a page is reported
// as deleted records, and the records after it are still checked and counted.
both_backends! {
    async fn a_gap_longer_than_a_page_is_reported_and_walked_past(app: TestApp) {
        let sc = app.school("GAP", "QG").await;
        let chain = format!("school:{}", sc.school_id);
        let store = &app.state.store;
        let mut tx = store.begin().await.expect("begin");
        let entries = (0..12_000)
            .map(|i| {
                (
                    feerecon::audit::Chain::School(sc.school_id),
                    feerecon::audit::Entry {
                        actor: "token:1:admin",
                        action: "school.note",
                        entity: "school",
                        entity_id: Some(sc.school_id),
                        details: json!({"n": i}),
                    },
                )
            })
            .collect();
        feerecon::audit::record_many(&mut tx, entries).await.expect("records");
        tx.commit().await.expect("commit");
        let total = app.count(&format!("audit_log WHERE chain = '{chain}'")).await;
        assert!(total >= 12_000, "{total}");
        let (_, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert!(kinds(&reports, &chain).is_empty(), "{:?}", kinds(&reports, &chain));

        drop_guards(&app).await;
        app.execute_sql(&format!("DELETE FROM audit_log WHERE chain = '{chain}' AND seq BETWEEN 100 AND 8099")).await.expect("delete");
        let (_, reports) = app.get("/api/v1/audit/verify", ADMIN).await;
        let report = reports.as_array().expect("reports").iter().find(|r| r["chain"] == chain.as_str()).expect("chain").clone();
        assert_eq!(
            (report["first_bad_seq"].as_i64(), report["records"].as_i64()),
            (Some(100), Some(total - 8_000)),
            "{report}"
        );
        assert!(
            report["problems"].as_array().expect("problems").iter()
                .any(|p| p["kind"] == "deleted" && p["message"].as_str().is_some_and(|m| m.contains("100 to 8099"))),
            "{report}"
        );
    }
}
