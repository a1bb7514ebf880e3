//! The database itself refuses what the service never does, whoever asks: ledger and audit rows
//! are never deleted, rewritten or truncated, and an invoice changes only by being voided while
//! nothing is paid on it. Each statement is run straight in SQL, and nothing changes. Also: a
//! fresh SQLite start leaves its files readable by their owner only.

use crate::helpers::{Backend, School, TestApp, ADMIN};
use crate::webhooks::sepay_school;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Tables whose rows are never deleted, with a column to try rewriting (`None`: the row is
/// updated in place by design, only never deleted).
const NEVER_DELETED: &[(&str, Option<&str>)] = &[
    ("payments", Some("amount")),
    ("payment_fees", Some("amount")),
    ("allocations", Some("amount")),
    ("refunds", Some("amount")),
    ("invoices", Some("total")),
    ("invoice_lines", Some("amount")),
    ("audit_log", Some("details")),
    ("audit_chains", None),
    ("counters", None),
    ("statement_lines", Some("amount")),
    ("day_closes", Some("summary")),
    ("provider_events", Some("outcome")),
];

const BANK_ACCOUNT: &str = "6868123456789";

/// A school's books with at least one row in every table above: invoices, a SePay transfer
/// (archived delivery, payment, fee line, allocation), cash with a refund of its credit, a bank
/// statement line and a closed day.
async fn books(app: &TestApp) -> School {
    let (sc, key, path) = sepay_school(app, BANK_ACCOUNT).await;
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header("authorization", format!("Apikey {key}"))
        .json(&json!({"id": 501, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
            "accountNumber": BANK_ACCOUNT, "code": null, "content": "QD3CFPSA hoc phi", "transferType": "in",
            "transferAmount": 1_235_000, "referenceCode": "FT501", "description": ""}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let (s, b) = app
        .get("/api/v1/payment-codes/QDPHYRXY", &sc.accountant)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, p) = app
        .post(
            &format!("/api/v1/schools/{}/payments", sc.school_id),
            &sc.cashier,
            json!({"channel": "cash", "amount": b["total"].as_i64().expect("total") + 50_000,
                "allocations": [{"invoice_id": b["id"], "amount": b["total"]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, b) = app
        .post(
            &format!(
                "/api/v1/schools/{}/payments/{}/refunds",
                sc.school_id, p["id"]
            ),
            &sc.accountant,
            json!({"amount": 50_000, "reason": "Trả lại tiền thừa"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let acct = app
        .approved_account(&sc, "970436", "0071000123456", "TRUONG THCS LE QUY DON")
        .await;
    let csv = "STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả\n\
        1,05/09/2025,FT259100,,489.000,60.000.000,\"ung ho quy lop 6A1\"\n";
    let (s, b) = app
        .upload_statement(
            &sc,
            &acct,
            "?format=vietcombank",
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post(
            &format!("/api/v1/schools/{}/days/2025-09-01/close", sc.school_id),
            &sc.accountant,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for (table, _) in NEVER_DELETED {
        assert!(app.count(table).await > 0, "{table} has rows to protect");
    }
    sc
}

/// Every row of every table above, as text: proof that a refused statement changed nothing.
async fn contents(app: &TestApp) -> Vec<String> {
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
    let mut all = Vec::new();
    for (table, _) in NEVER_DELETED {
        let key = match *table {
            "audit_chains" => "chain, seq, head",
            "counters" => "school_id, name, value",
            "day_closes" => "school_id, day, summary",
            "audit_log" => "id, hash",
            "provider_events" => "id, outcome, payment_id",
            "invoices" => "id, school_id, student_id, payment_code, period, due_date, total, content_digest, voided_at, voided_by, void_reason",
            _ => "id, amount",
        };
        let cols: Vec<String> = key
            .split(", ")
            .map(|c| format!("COALESCE(CAST({c} AS TEXT), '-')"))
            .collect();
        let sql = format!(
            "SELECT {} FROM {table} ORDER BY 1",
            cols.join(" || '|' || ")
        );
        let rows: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&pool)
            .await
            .expect("contents");
        all.extend(rows.into_iter().map(|r| format!("{table}: {r}")));
    }
    pool.close().await;
    all
}

/// Runs `sql`, which the database must refuse; returns its error text.
async fn refused(app: &TestApp, sql: &str) -> String {
    match app.execute_sql(sql).await {
        Ok(()) => panic!("the database accepted: {sql}"),
        Err(e) => e.to_string(),
    }
}

async fn never_deleted_flow(app: TestApp) {
    books(&app).await;
    let before = contents(&app).await;
    for (table, column) in NEVER_DELETED {
        refused(&app, &format!("DELETE FROM {table}")).await;
        if let Some(c) = column {
            refused(&app, &format!("UPDATE {table} SET {c} = {c}")).await;
        }
        if app.backend == Backend::Postgres {
            // CASCADE, or a table others refer to would be refused for its foreign keys
            // before its own trigger is asked.
            let e = refused(&app, &format!("TRUNCATE {table} CASCADE")).await;
            assert!(e.contains("never truncated"), "{table}: {e}");
        }
    }
    if app.backend == Backend::Postgres {
        // Every table refuses TRUNCATE, not only these: the service empties none.
        let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
        let open: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::TEXT FROM pg_class c
             WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
               AND c.relname <> '_sqlx_migrations'
               AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgtype & 32 <> 0)
             ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .expect("catalog");
        pool.close().await;
        assert_eq!(open, Vec::<String>::new(), "tables that may be truncated");
    }
    assert_eq!(contents(&app).await, before);
    let (_, chains) = app.get("/api/v1/audit/verify", ADMIN).await;
    for chain in chains.as_array().expect("chains") {
        assert_eq!(chain["intact"], true, "{chains}");
    }
}

async fn invoice_id(app: &TestApp, sc: &School, code: &str) -> i64 {
    let (s, b) = app
        .get(&format!("/api/v1/payment-codes/{code}"), &sc.accountant)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["id"].as_i64().expect("id")
}

async fn invoices_flow(app: TestApp) {
    let sc = books(&app).await;
    let other = app.school("DB2", "QE").await;
    let stranger = app.student(&other, "HS9001", "Lê Văn Khác", "7A2").await;
    // QD3CFPSA is paid in full; HD-2509-0003 (QD…) gets cash that is then reversed (net 0);
    // another is untouched.
    let paid = invoice_id(&app, &sc, "QD3CFPSA").await;
    let (_, list) = app
        .get(
            &format!("/api/v1/schools/{}/invoices?status=open", sc.school_id),
            &sc.accountant,
        )
        .await;
    let open: Vec<i64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["paid"] == 0)
        .map(|i| i["id"].as_i64().expect("id"))
        .collect();
    assert!(open.len() >= 2, "{list}");
    let (reversed, untouched) = (open[0], open[1]);
    let (s, p) = app
        .post(
            &format!("/api/v1/schools/{}/payments", sc.school_id),
            &sc.cashier,
            json!({"channel": "cash", "amount": 300_000, "allocations": [{"invoice_id": reversed, "amount": 300_000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, b) = app
        .post(
            &format!(
                "/api/v1/schools/{}/payments/{}/reverse",
                sc.school_id, p["id"]
            ),
            &sc.accountant,
            json!({"reason": "Thu nhầm"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let before = contents(&app).await;
    let void =
        "voided_at = '2025-09-20T00:00:00.000000Z', voided_by = 'sql', void_reason = 'by hand'";
    for id in [paid, untouched] {
        for change in [
            format!("school_id = {}", other.school_id),
            format!("student_id = {stranger}"),
            "payment_code = 'QDZZZZZZ'".to_string(),
            "total = total + 1".to_string(),
            "total = 0".to_string(),
            "period = '2025-10'".to_string(),
            "due_date = '2030-01-01'".to_string(),
            "external_ref = 'HD-OTHER'".to_string(),
            "content_digest = 'x'".to_string(),
            "issued_at = '2020-01-01T00:00:00.000000Z'".to_string(),
            "issued_by = 'someone'".to_string(),
            "import_batch_id = NULL".to_string(),
            format!("replaces_invoice_id = {paid}"),
            // A void that also changes something else.
            format!("{void}, total = 0"),
            format!("{void}, school_id = {}", other.school_id),
            // A void that does not say who or why.
            "voided_at = '2025-09-20T00:00:00.000000Z'".to_string(),
            "voided_at = '2025-09-20T00:00:00.000000Z', voided_by = 'sql', void_reason = ''"
                .to_string(),
        ] {
            refused(
                &app,
                &format!("UPDATE invoices SET {change} WHERE id = {id}"),
            )
            .await;
        }
    }
    // Paid in full: neither the API nor SQL voids it.
    let e = refused(
        &app,
        &format!("UPDATE invoices SET {void} WHERE id = {paid}"),
    )
    .await;
    assert!(e.contains("allocated"), "{e}");
    let (s, b) = app
        .post(
            &format!("/api/v1/schools/{}/invoices/{paid}/void", sc.school_id),
            &sc.accountant,
            json!({"reason": "Sai"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invoice_has_payments"))
    );
    assert_eq!(contents(&app).await, before);

    // Paid and reversed (net nothing), the service voids it, with its reason.
    let (s, b) = app
        .post(
            &format!("/api/v1/schools/{}/invoices/{reversed}/void", sc.school_id),
            &sc.accountant,
            json!({"reason": "Trùng hóa đơn"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "void", "{b}");
    let before = contents(&app).await;
    // Void is final: not un-voided, not re-voided, not edited.
    for change in [
        "voided_at = NULL, voided_by = NULL, void_reason = NULL",
        "voided_at = NULL",
        "void_reason = 'another reason'",
        "voided_at = '2030-01-01T00:00:00.000000Z'",
        "total = 0",
    ] {
        refused(
            &app,
            &format!("UPDATE invoices SET {change} WHERE id = {reversed}"),
        )
        .await;
    }
    refused(&app, &format!("DELETE FROM invoices WHERE id = {reversed}")).await;
    assert_eq!(contents(&app).await, before);
    // An unpaid invoice voided straight in SQL, with who and why, is what the service does.
    app.execute_sql(&format!(
        "UPDATE invoices SET {void} WHERE id = {untouched}"
    ))
    .await
    .expect("a void of an unpaid invoice");
    let (_, got) = app
        .get(
            &format!("/api/v1/schools/{}/invoices/{untouched}", sc.school_id),
            &sc.accountant,
        )
        .await;
    assert_eq!(got["status"], Value::from("void"), "{got}");
}

crate::on_both_backends!(never_deleted, never_deleted_flow);
crate::on_both_backends!(invoices_only_voided, invoices_flow);

/// A first start of the real binary on SQLite: the data folder is 0700, the database, its WAL
/// and shared-memory files and the key file 0600.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_after_a_fresh_start() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/feerecon.db", data.display()),
        )
        .env("FEERECON_SECRET_KEY_FILE", data.join("secret.key"))
        .env("FEERECON_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .env_remove("FEERECON_SECRET_KEY")
        .env_remove("FEERECON_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start feerecon");
    let stdout = child.stdout.take().expect("stdout");
    // The admin token is printed once migrations and the first write are done.
    let printed = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("frk_"))
    });
    let printed = tokio::time::timeout(std::time::Duration::from_secs(60), printed).await;
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .map(|m| m.permissions().mode() & 0o777)
            .map_err(|e| format!("{name}: {e}"))
    };
    let modes: Vec<(&str, Result<u32, String>)> = [
        "",
        "feerecon.db",
        "feerecon.db-wal",
        "feerecon.db-shm",
        "secret.key",
    ]
    .into_iter()
    .map(|n| (n, mode(n)))
    .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        matches!(printed, Ok(Ok(true))),
        "the service started: {printed:?}"
    );
    for (name, m) in modes {
        let want = if name.is_empty() { 0o700 } else { 0o600 };
        assert_eq!(m, Ok(want), "mode of data/{name}");
    }
}

/// SQLite's writer never checkpoints (it would stall every delivery queued behind it); a task
/// beside it copies the WAL into the database file. Within seconds of a write, the database
/// file alone, copied without its WAL, holds what was committed.
#[tokio::test]
async fn sqlite_wal_is_copied_into_the_database_beside_the_writer() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let sc = app.school("WAL", "WAX").await;
    let path = app
        .db_url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .expect("path")
        .to_string();
    let copy = tempfile::tempdir().expect("tempdir");
    let alone = copy.path().join("alone.db");
    let mut found = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        std::fs::copy(&path, &alone).expect("copy the database file");
        let pool = sqlx::AnyPool::connect(&format!("sqlite://{}?mode=rw", alone.display()))
            .await
            .expect("open the copy");
        let n: Result<i64, _> = sqlx::query_scalar("SELECT COUNT(*) FROM schools WHERE id = $1")
            .bind(sc.school_id)
            .fetch_one(&pool)
            .await;
        pool.close().await;
        if let Ok(1) = n {
            found = Some(());
            break;
        }
    }
    assert!(
        found.is_some(),
        "the school created is not in the database file 5 s later: the WAL was not checkpointed"
    );
}
