//! Receiving accounts under four eyes: proposed by one person, offered to parents only once a
//! second approved them; changes replace, nothing is edited or deleted; every step audited and
//! shown to auditors.

use crate::both_backends;
use crate::helpers::{Backend, School, TestApp, ADMIN};
use crate::webhooks::{account as provider_account, secrets};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NUMBER: &str = "0071000123456";
const NAME: &str = "TRUONG THCS LE QUY DON";

fn accounts(sc: &School) -> String {
    format!("/api/v1/schools/{}/accounts", sc.school_id)
}

async fn propose(app: &TestApp, sc: &School, token: &str, body: Value) -> (StatusCode, Value) {
    app.post(&accounts(sc), token, body).await
}

async fn step(
    app: &TestApp,
    sc: &School,
    token: &str,
    id: &Value,
    what: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.post(&format!("{}/{id}/{what}", accounts(sc)), token, body)
        .await
}

fn code(b: &Value) -> Option<&str> {
    b["error"]["code"].as_str()
}

/// An invoice of the school, to ask how it may be paid.
async fn invoice(app: &TestApp, sc: &School) -> i64 {
    let student = app.student(sc, "HS1", "Nguyễn Minh Anh", "6A1").await;
    let (s, inv) = app
        .post(
            &format!("/api/v1/schools/{}/invoices", sc.school_id),
            &sc.accountant,
            json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
               "lines": [{"type": "charge", "item_code": "MEALS", "amount": 935000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    inv["id"].as_i64().expect("id")
}

/// The bank accounts a parent is offered for the invoice: (number, name) of each VietQR.
async fn offered(app: &TestApp, sc: &School, invoice: i64) -> Vec<(String, String)> {
    let (s, opts) = app
        .get(
            &format!(
                "/api/v1/schools/{}/invoices/{invoice}/payment-options",
                sc.school_id
            ),
            &sc.cashier,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{opts}");
    opts.as_array()
        .expect("options")
        .iter()
        .filter(|o| o["provider"] == "bank")
        .map(|o| {
            (
                o["vietqr"]["account_number"]
                    .as_str()
                    .expect("number")
                    .to_string(),
                o["vietqr"]["account_name"]
                    .as_str()
                    .expect("name")
                    .to_string(),
            )
        })
        .collect()
}

async fn listed(app: &TestApp, sc: &School, id: &Value) -> Value {
    let (s, list) = app.get(&accounts(sc), &sc.auditor).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list.as_array()
        .expect("accounts")
        .iter()
        .find(|a| &a["id"] == id)
        .expect("listed")
        .clone()
}

fn actor_of(b: &Value) -> String {
    b["proposed_by"].as_str().expect("proposed_by").to_string()
}

both_backends! {
    async fn a_receiving_account_needs_a_second_person(app: TestApp) {
        let sc = app.school("AC1", "QD").await;
        let inv = invoice(&app, &sc).await;
        let (s, a) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970436", "account_number": NUMBER, "account_name": NAME})).await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        assert_eq!((a["state"].as_str(), a["approved_by"].is_null()), (Some("pending"), true), "{a}");
        assert!(actor_of(&a).ends_with(":accountant"), "{a}");
        let id = a["id"].clone();
        // Pending: never offered, no statement taken.
        assert_eq!(offered(&app, &sc, inv).await, vec![]);
        let (s, b) = app.post_raw(&format!("{}/{id}/statements", accounts(&sc)), &sc.accountant, "text/csv",
            std::fs::read(format!("{}/fixtures/statements/vietcombank-2025-09.csv", env!("CARGO_MANIFEST_DIR"))).expect("fixture")).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_approved")), "{b}");
        assert_eq!(app.count("statement_lines").await, 0);

        // Not by the proposer, not by a role that never may, not from outside the school.
        let (s, b) = step(&app, &sc, &sc.accountant, &id, "approve", json!({})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_self_approval")), "{b}");
        for token in [&sc.cashier, &sc.auditor] {
            for what in ["approve", "reject", "retire"] {
                let (s, b) = step(&app, &sc, token, &id, what, json!({"reason": "x"})).await;
                assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, Some("forbidden")), "{what}: {b}");
            }
            let (s, _) = propose(&app, &sc, token, json!({"bank_bin": "970436", "account_number": "0071000999999", "account_name": NAME})).await;
            assert_eq!(s, StatusCode::FORBIDDEN);
        }
        let other = app.school("AC2", "QX").await;
        let (s, _) = step(&app, &sc, &other.accountant, &id, "approve", json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, b) = app.post(&format!("{}/{id}/approve", accounts(&other)), ADMIN, json!({})).await;
        assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, Some("account_not_found")), "{b}");
        let (s, b) = step(&app, &sc, ADMIN, &json!(999_999), "approve", json!({})).await;
        assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, Some("account_not_found")), "{b}");
        let second = app.second_accountant(&sc).await;
        for body in [json!({"reason": "  "}), json!({}), json!({"reason": "x", "extra": 1})] {
            let (s, b) = step(&app, &sc, &second, &id, "reject", body.clone()).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        }
        let (s, b) = step(&app, &sc, &second, &id, "retire", json!({"reason": "x"})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_approved")), "{b}");
        assert_eq!(listed(&app, &sc, &id).await["state"], "pending");
        assert_eq!(app.count("audit_log WHERE action LIKE 'school_account.%'").await, 1);

        // The second accountant approves: in force, offered, recorded with both names.
        let (s, b) = step(&app, &sc, &second, &id, "approve", json!({})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["state"], "approved");
        let approver = b["approved_by"].as_str().expect("approved_by").to_string();
        assert!(approver.ends_with(":accountant") && approver != actor_of(&a), "{b}");
        assert!(b["approved_at"].is_string());
        assert_eq!(offered(&app, &sc, inv).await, vec![(NUMBER.to_string(), NAME.to_string())]);
        let (s, b) = step(&app, &sc, ADMIN, &id, "approve", json!({})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_pending")), "{b}");
        let (s, b) = step(&app, &sc, &second, &id, "reject", json!({"reason": "late"})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_pending")), "{b}");

        let (_, list) = app.get(&format!("{}?state=approved", accounts(&sc)), &sc.auditor).await;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
        let (_, list) = app.get(&format!("{}?state=pending", accounts(&sc)), &sc.auditor).await;
        assert_eq!(list, json!([]));
        let (s, _) = app.get(&format!("{}?state=maybe", accounts(&sc)), &sc.auditor).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = app.get(&accounts(&sc), &sc.cashier).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "the cash desk does not read where money goes");
        let (s, _) = app.get(&accounts(&sc), &other.auditor).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(app.count("audit_log WHERE action = 'school_account.approve'").await, 1);
        let (_, chains) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert!(chains.as_array().expect("chains").iter().all(|c| c["intact"] == true), "{chains}");
    }

    async fn a_change_is_a_new_proposal_that_replaces_the_old_one_on_approval(app: TestApp) {
        let sc = app.school("AC3", "QD").await;
        let inv = invoice(&app, &sc).await;
        let old = app.approved_account(&sc, "970436", NUMBER, NAME).await;
        let same = json!({"bank_bin": "970436", "account_number": NUMBER, "account_name": NAME});
        let (s, b) = propose(&app, &sc, &sc.accountant, same.clone()).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_exists")), "{b}");
        let (s, b) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970436", "account_number": NUMBER, "account_name": NAME, "replaces_account_id": old["id"]})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_unchanged")), "{b}");
        let (s, b) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970436", "account_number": NUMBER, "account_name": NAME, "replaces_account_id": 999_999})).await;
        assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, Some("account_not_found")), "{b}");

        // A new name for the same number: pending beside the account in force.
        let renamed = format!("{NAME} Q3");
        let (s, new) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970436", "account_number": NUMBER, "account_name": renamed, "replaces_account_id": old["id"]})).await;
        assert_eq!(s, StatusCode::CREATED, "{new}");
        assert_eq!((new["state"].as_str(), &new["replaces_account_id"]), (Some("pending"), &old["id"]));
        let (s, b) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970436", "account_number": NUMBER, "account_name": "OTHER", "replaces_account_id": old["id"]})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_exists")), "{b}");
        assert_eq!(offered(&app, &sc, inv).await, vec![(NUMBER.to_string(), NAME.to_string())]);

        // Approved by an admin: the old one is retired in the same step; parents see one account.
        let (s, b) = step(&app, &sc, ADMIN, &new["id"], "approve", json!({})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let retired = listed(&app, &sc, &old["id"]).await;
        assert_eq!(retired["state"], "retired");
        assert_eq!(retired["retire_reason"], format!("replaced by account {}", new["id"]));
        assert_eq!(retired["retired_by"], b["approved_by"]);
        assert_eq!(offered(&app, &sc, inv).await, vec![(NUMBER.to_string(), renamed.clone())]);
        let (s, b) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970436", "account_number": "0071000999999", "account_name": NAME, "replaces_account_id": old["id"]})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_approved")), "{b}");

        // A new number, rejected by the second accountant: nothing changes for parents.
        let (s, moved) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970418", "account_number": "1234567890", "account_name": renamed, "replaces_account_id": new["id"]})).await;
        assert_eq!(s, StatusCode::CREATED, "{moved}");
        let second = app.second_accountant(&sc).await;
        let (s, b) = step(&app, &sc, &second, &moved["id"], "reject", json!({"reason": "Số tài khoản không khớp hợp đồng"})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!((b["state"].as_str(), b["reject_reason"].as_str()), (Some("rejected"), Some("Số tài khoản không khớp hợp đồng")));
        for what in ["approve", "reject"] {
            let (s, b) = step(&app, &sc, ADMIN, &moved["id"], what, json!({"reason": "x"})).await;
            assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_pending")), "{what}: {b}");
        }
        let (s, b) = step(&app, &sc, ADMIN, &moved["id"], "retire", json!({"reason": "x"})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_approved")), "{b}");
        assert_eq!(offered(&app, &sc, inv).await, vec![(NUMBER.to_string(), renamed.clone())]);

        // The proposer may withdraw their own proposal.
        let (_, mine) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970418", "account_number": "1234567890", "account_name": renamed})).await;
        let (s, b) = step(&app, &sc, &sc.accountant, &mine["id"], "reject", json!({"reason": "nhầm"})).await;
        assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("rejected")), "{b}");

        // One person may retire: it only takes a destination away.
        let (s, b) = step(&app, &sc, &sc.accountant, &new["id"], "retire", json!({"reason": "Đóng tài khoản"})).await;
        assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("retired")), "{b}");
        assert_eq!(offered(&app, &sc, inv).await, vec![]);
        let (s, b) = step(&app, &sc, &sc.accountant, &new["id"], "retire", json!({"reason": "again"})).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_approved")), "{b}");
        // A retired number may be proposed again, under four eyes again.
        let (s, b) = propose(&app, &sc, &sc.accountant, same).await;
        assert_eq!((s, b["state"].as_str()), (StatusCode::CREATED, Some("pending")), "{b}");

        for (action, n) in [("propose", 5), ("approve", 2), ("reject", 2), ("retire", 2)] {
            assert_eq!(app.count(&format!("audit_log WHERE action = 'school_account.{action}'")).await, n, "{action}");
        }
        assert_eq!(app.count("school_accounts").await, 5);
        let (_, chains) = app.get("/api/v1/audit/verify", ADMIN).await;
        assert!(chains.as_array().expect("chains").iter().all(|c| c["intact"] == true), "{chains}");
    }

    async fn receiving_accounts_are_never_deleted_or_rewritten(app: TestApp) {
        let sc = app.school("AC4", "QD").await;
        let a = app.approved_account(&sc, "970436", NUMBER, NAME).await;
        let (_, p) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970436", "account_number": "0071000999999", "account_name": NAME})).await;
        let (ia, ip) = (&a["id"], &p["id"]);
        let proposer = actor_of(&p);
        for sql in [
            format!("DELETE FROM school_accounts WHERE id = {ia}"),
            format!("UPDATE school_accounts SET account_number = '0071000000001' WHERE id = {ia}"),
            format!("UPDATE school_accounts SET account_name = 'X' WHERE id = {ip}"),
            format!("UPDATE school_accounts SET state = 'pending', approved_by = NULL, approved_at = NULL WHERE id = {ia}"),
            format!("UPDATE school_accounts SET approved_by = 'someone else' WHERE id = {ia}"),
            // The four eyes hold in the database too.
            format!("UPDATE school_accounts SET state = 'approved', approved_by = '{proposer}', approved_at = '2026-01-01T00:00:00.000000Z' WHERE id = {ip}"),
            format!("UPDATE school_accounts SET state = 'retired', retired_by = 'x', retired_at = 'x', retire_reason = 'x' WHERE id = {ip}"),
            format!("UPDATE school_accounts SET state = 'approved' WHERE id = {ip}"),
        ] {
            assert!(app.execute_sql(&sql).await.is_err(), "{sql}");
        }
        assert_eq!(listed(&app, &sc, ia).await, a);
        assert_eq!(listed(&app, &sc, ip).await, p);
    }

    async fn statements_and_pulls_need_an_account_in_force(app: TestApp) {
        let sc = app.school("AC5", "QD").await;
        let key = secrets()["sepay"]["api_key"].as_str().expect("key").to_string();
        let (pa, _) = provider_account(&app, &sc, "sepay", NUMBER, &key, None).await;
        let pull = format!("/api/v1/provider-accounts/{pa}/pull");
        let (_, a) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970436", "account_number": NUMBER, "account_name": NAME})).await;
        for body in [json!({"api_key": "sepay-api-token"}), json!({"api_key": "sepay-api-token", "account_id": a["id"]})] {
            let (s, b) = app.call(Method::PUT, &pull, Some(ADMIN), Some(&body)).await;
            assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_approved")), "{body}: {b}");
        }
        assert_eq!(app.count("pull_sources").await, 0);

        let second = app.second_accountant(&sc).await;
        let (s, _) = step(&app, &sc, &second, &a["id"], "approve", json!({})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, b) = app.call(Method::PUT, &pull, Some(ADMIN), Some(&json!({"api_key": "sepay-api-token", "base_url": "http://127.0.0.1:9"}))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, _) = step(&app, &sc, &second, &a["id"], "retire", json!({"reason": "Đổi ngân hàng"})).await;
        assert_eq!(s, StatusCode::OK);
        // A retired account's pull is not set up again, but may always be turned off.
        let (s, b) = app.call(Method::PUT, &pull, Some(ADMIN), Some(&json!({"interval_seconds": 600}))).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("account_not_approved")), "{b}");
        let (s, b) = app.call(Method::PUT, &pull, Some(ADMIN), Some(&json!({"enabled": false}))).await;
        assert_eq!((s, b["enabled"].as_bool()), (StatusCode::OK, Some(false)), "{b}");
        // Money that reached it while it was in force is still reconciled.
        let (s, b) = app.post_raw(&format!("{}/{}/statements", accounts(&sc), a["id"]), &sc.accountant, "text/csv",
            std::fs::read(format!("{}/fixtures/statements/vietcombank-2025-09.csv", env!("CARGO_MANIFEST_DIR"))).expect("fixture")).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    async fn auditors_see_who_changed_where_money_goes(app: TestApp) {
        let sc = app.school("AC6", "QD").await;
        let a = app.approved_account(&sc, "970436", NUMBER, NAME).await;
        let (_, r) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970418", "account_number": "=1+2", "account_name": "@CMD"})).await;
        // Refused: not an account number a bank gives.
        assert!(r["error"].is_object(), "{r}");
        let (_, p) = propose(&app, &sc, &sc.accountant, json!({"bank_bin": "970418", "account_number": "1234567890", "account_name": "=HYPERLINK(\"http://x\",\"y\")", "replaces_account_id": a["id"]})).await;
        assert_eq!(p["state"], "pending", "{p}");
        let today = chrono::Utc::now().date_naive();
        let q = |id: i64, from: chrono::NaiveDate| format!("/api/v1/reports/fees?department_id={id}&from={from}&to={}", today + chrono::Duration::days(1));
        let (s, report) = app.get(&q(sc.department_id, today - chrono::Duration::days(1)), &sc.auditor).await;
        assert_eq!(s, StatusCode::OK, "{report}");
        let changes = report["receiving_account_changes"].as_array().expect("changes");
        assert_eq!(changes.len(), 2, "{report}");
        assert_eq!((changes[0]["account_id"].clone(), changes[0]["state"].as_str()), (a["id"].clone(), Some("approved")));
        assert_eq!(changes[0]["approved_by"], a["approved_by"]);
        assert_eq!(changes[0]["proposed_by"], a["proposed_by"]);
        assert_eq!(changes[0]["account_number"], NUMBER);
        assert_eq!(changes[0]["bank_bin"], "970436");
        assert_eq!((changes[1]["state"].as_str(), &changes[1]["replaces_account_id"]), (Some("pending"), &a["id"]));
        // Nothing happened in an earlier period.
        let (_, earlier) = app.get(&format!("/api/v1/reports/fees?department_id={}&from=2020-01-01&to=2020-12-31", sc.department_id), &sc.auditor).await;
        assert_eq!(earlier["receiving_account_changes"], json!([]));
        // The same as CSV, with what someone typed shown as text.
        let r = app.client.get(format!("{}{}&format=csv&section=accounts", app.base, q(sc.department_id, today - chrono::Duration::days(1))))
            .bearer_auth(&sc.auditor).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.expect("csv");
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        let header = rows.headers().expect("header").clone();
        let at = |name: &str| header.iter().position(|h| h == name).expect(name);
        let lines: Vec<csv::StringRecord> = rows.records().map(|r| r.expect("row")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(&lines[0][at("account_number")], NUMBER);
        assert_eq!(&lines[0][at("approved_by")], a["approved_by"].as_str().expect("approver"));
        assert_eq!(&lines[1][at("account_name")], "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(&lines[1][at("state")], "pending");
        // Another department's auditor sees none of it.
        let other = app.school("AC7", "QX").await;
        let (s, _) = app.get(&q(sc.department_id, today), &other.auditor).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, theirs) = app.get(&q(other.department_id, today), &other.auditor).await;
        assert_eq!(theirs["receiving_account_changes"], json!([]));
    }
}

/// Accounts added before approvals existed stay in force: migrated as approved by "migration",
/// with their proposer taken from the audit log, and their statements still attached.
async fn accounts_from_before_stay_in_force(backend: Backend) {
    let Some(db) = OldDb::create(backend).await else {
        eprintln!("FEERECON_TEST_POSTGRES_URL not set: skipped");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let source = format!("{}/migrations/{folder}", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&source).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        if name.as_str() < "0008" {
            std::fs::copy(&path, dir.path().join(&name)).expect("copy");
        }
    }
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("pool");
    sqlx::migrate::Migrator::new(dir.path())
        .await
        .expect("migrator")
        .run(&pool)
        .await
        .expect("migrate to 0007");
    let t = "2025-08-01T01:02:03.000004Z";
    for sql in [
        format!("INSERT INTO departments (id, code, name, created_at) VALUES (1, 'SGD', 'Sở', '{t}')"),
        format!("INSERT INTO schools (id, department_id, code, name, payment_prefix, created_at) VALUES (1, 1, 'THCS', 'THCS', 'QD', '{t}')"),
        format!("INSERT INTO school_accounts (id, school_id, bank_bin, account_number, account_name, created_at) VALUES (1, 1, '970436', '{NUMBER}', '{NAME}', '{t}')"),
        format!("INSERT INTO school_accounts (id, school_id, bank_bin, account_number, account_name, created_at) VALUES (2, 1, '970418', '1234567890', '{NAME}', '{t}')"),
        format!("INSERT INTO audit_log (chain, seq, school_id, at, actor, action, entity, entity_id, details, prev_hash, hash)
                 VALUES ('school:1', 1, 1, '{t}', 'token:5:accountant', 'school_account.add', 'school_account', 1, '{{}}', '', 'h')"),
        format!("INSERT INTO statements (id, school_id, account_id, format, file_sha256, lines, imported_at, imported_by) VALUES (1, 1, 1, 'vietcombank', 'x', 1, '{t}', 'a')"),
        format!("INSERT INTO statement_lines (statement_id, school_id, account_id, line_key, booked_at, amount, direction, memo, matched_by)
                 VALUES (1, 1, 1, 'k', '{t}', 5, 'debit', 'fee', 'debit')"),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    pool.close().await;

    let store = feerecon::store::Store::connect(&db.url)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate to the end");
    let accounts = store.school_accounts(1).await.expect("accounts");
    let seen: Vec<_> = accounts
        .iter()
        .map(|a| {
            (
                a.id,
                a.state.as_str(),
                a.proposed_by.as_str(),
                a.approved_by.as_deref(),
                a.approved_at.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                1,
                "approved",
                "token:5:accountant",
                Some("migration"),
                Some(t)
            ),
            (2, "approved", "unrecorded", Some("migration"), Some(t))
        ]
    );
    assert_eq!(
        store
            .school_account(1, 1)
            .await
            .expect("account")
            .account_number,
        NUMBER
    );
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("pool");
    let lines: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM statement_lines l JOIN school_accounts a ON a.id = l.account_id",
    )
    .fetch_one(&pool)
    .await
    .expect("lines");
    assert_eq!(lines, 1);
    // References still hold, and the new rules apply to old rows.
    assert!(sqlx::query("INSERT INTO statements (school_id, account_id, format, file_sha256, lines, imported_at, imported_by) VALUES (1, 99, 'x', 'x', 0, 'x', 'x')").execute(&pool).await.is_err());
    assert!(sqlx::query("DELETE FROM school_accounts WHERE id = 2")
        .execute(&pool)
        .await
        .is_err());
    pool.close().await;
    store.close().await;
}

#[tokio::test]
async fn accounts_from_before_stay_in_force_sqlite() {
    accounts_from_before_stay_in_force(Backend::Sqlite).await
}

#[tokio::test]
async fn accounts_from_before_stay_in_force_postgres() {
    accounts_from_before_stay_in_force(Backend::Postgres).await
}

/// A database of its own for the migration test, dropped afterwards.
struct OldDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    drop: Option<(String, String)>,
}

impl OldDb {
    async fn create(backend: Backend) -> Option<OldDb> {
        sqlx::any::install_default_drivers();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
                Some(OldDb {
                    url,
                    _dir: Some(dir),
                    drop: None,
                })
            }
            Backend::Postgres => {
                let admin = crate::helpers::postgres_url()?;
                let name = format!("feerecon_old_{}", hex::encode(rand::random::<[u8; 8]>()));
                let pool = sqlx::AnyPool::connect(&admin).await.expect("admin");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("create");
                pool.close().await;
                let (base, query) = admin
                    .split_once('?')
                    .map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
                let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
                let url = match query {
                    Some(q) => format!("{base}/{name}?{q}"),
                    None => format!("{base}/{name}"),
                };
                Some(OldDb {
                    url,
                    _dir: None,
                    drop: Some((admin, name)),
                })
            }
        }
    }
}

impl Drop for OldDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&pool)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}
