//! Each role may call exactly the operations README's access table gives it: every operation of
//! the OpenAPI document is in the table below (a new route fails this test until it is), and
//! each role is tried on each, in its own scope. A role that may not is refused 403 before
//! anything is read or written; a role that may is never refused for its role.

use crate::helpers::{Backend, School, TestApp, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const ALL: &[&str] = &["admin", "accountant", "cashier", "auditor"];
const OVERSEERS: &[&str] = &["admin", "accountant", "auditor"];
const ACCOUNTANTS: &[&str] = &["admin", "accountant"];
const ADMIN_ONLY: &[&str] = &["admin"];
const DEPARTMENT: &[&str] = &["admin", "auditor"];

/// (method, path, who may call it): README's access table, operation by operation.
const ACCESS: &[(&str, &str, &[&str])] = &[
    ("get", "/api/v1/audit/verify", DEPARTMENT),
    ("get", "/api/v1/audit/checkpoints", DEPARTMENT),
    ("get", "/api/v1/audit/checkpoints/key", DEPARTMENT),
    ("get", "/api/v1/departments", DEPARTMENT),
    ("post", "/api/v1/departments", ADMIN_ONLY),
    ("get", "/api/v1/departments/{department_id}", DEPARTMENT),
    (
        "get",
        "/api/v1/departments/{department_id}/fee-items",
        DEPARTMENT,
    ),
    (
        "post",
        "/api/v1/departments/{department_id}/fee-items",
        ADMIN_ONLY,
    ),
    (
        "put",
        "/api/v1/departments/{department_id}/policy",
        ADMIN_ONLY,
    ),
    ("get", "/api/v1/fee-schedules", OVERSEERS),
    ("post", "/api/v1/fee-schedules", ADMIN_ONLY),
    ("get", "/api/v1/payment-codes/{code}", ALL),
    (
        "get",
        "/api/v1/provider-accounts/{account_id}/pull",
        OVERSEERS,
    ),
    (
        "put",
        "/api/v1/provider-accounts/{account_id}/pull",
        ADMIN_ONLY,
    ),
    (
        "post",
        "/api/v1/provider-accounts/{account_id}/pull/run",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/provider-accounts/{account_id}/secrets",
        ADMIN_ONLY,
    ),
    (
        "delete",
        "/api/v1/provider-accounts/{account_id}/secrets/{secret_id}",
        ADMIN_ONLY,
    ),
    ("get", "/api/v1/reports/fees", OVERSEERS),
    ("get", "/api/v1/schools", ALL),
    ("post", "/api/v1/schools", ADMIN_ONLY),
    ("get", "/api/v1/schools/{school_id}", ALL),
    ("get", "/api/v1/schools/{school_id}/accounts", OVERSEERS),
    ("post", "/api/v1/schools/{school_id}/accounts", ACCOUNTANTS),
    (
        "post",
        "/api/v1/schools/{school_id}/accounts/{account_id}/approve",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/accounts/{account_id}/reject",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/accounts/{account_id}/retire",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/accounts/{account_id}/statements",
        ACCOUNTANTS,
    ),
    ("get", "/api/v1/schools/{school_id}/days/{date}", OVERSEERS),
    (
        "post",
        "/api/v1/schools/{school_id}/days/{date}/close",
        ACCOUNTANTS,
    ),
    ("get", "/api/v1/schools/{school_id}/exceptions", OVERSEERS),
    (
        "get",
        "/api/v1/schools/{school_id}/exceptions/{exception_id}",
        OVERSEERS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/exceptions/{exception_id}/dismiss",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/exceptions/{exception_id}/match",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/exceptions/{exception_id}/refund",
        ACCOUNTANTS,
    ),
    ("get", "/api/v1/schools/{school_id}/fee-items", ALL),
    ("post", "/api/v1/schools/{school_id}/fee-items", ACCOUNTANTS),
    ("get", "/api/v1/schools/{school_id}/invoices", ALL),
    ("post", "/api/v1/schools/{school_id}/invoices", ACCOUNTANTS),
    (
        "post",
        "/api/v1/schools/{school_id}/invoices/import",
        ACCOUNTANTS,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/invoices/{invoice_id}",
        ALL,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/invoices/{invoice_id}/payment-options",
        ALL,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/invoices/{invoice_id}/statement",
        ALL,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/invoices/{invoice_id}/void",
        ACCOUNTANTS,
    ),
    ("get", "/api/v1/schools/{school_id}/payments", ALL),
    // Cash for the cash desk; a cashless entry needs an accountant (checked on the body).
    (
        "post",
        "/api/v1/schools/{school_id}/payments",
        &["admin", "accountant", "cashier"],
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/payments/{payment_id}",
        ALL,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/payments/{payment_id}/allocations",
        ACCOUNTANTS,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/payments/{payment_id}/receipt",
        ALL,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/payments/{payment_id}/receipt.html",
        ALL,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/payments/{payment_id}/reconcile",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/payments/{payment_id}/refunds",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/payments/{payment_id}/reverse",
        ACCOUNTANTS,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/provider-accounts",
        OVERSEERS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/provider-accounts",
        ADMIN_ONLY,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/provider-events",
        OVERSEERS,
    ),
    ("put", "/api/v1/schools/{school_id}/settings", ADMIN_ONLY),
    ("get", "/api/v1/schools/{school_id}/students", ALL),
    ("post", "/api/v1/schools/{school_id}/students", ACCOUNTANTS),
    (
        "get",
        "/api/v1/schools/{school_id}/students/{student_id}",
        ALL,
    ),
    ("get", "/api/v1/tokens", ADMIN_ONLY),
    ("post", "/api/v1/tokens", ADMIN_ONLY),
    ("delete", "/api/v1/tokens/{token_id}", ADMIN_ONLY),
];

#[test]
fn the_table_covers_every_operation_of_the_api() {
    let (_, doc) = feerecon::http::api();
    let doc = serde_json::to_value(doc).expect("openapi");
    let mut served = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                served.insert((method.clone(), path.clone()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = ACCESS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        served.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "operations nobody decided the roles of"
    );
    assert_eq!(
        listed.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "operations the API no longer has"
    );
}

/// The caller's own objects, to fill paths with.
struct Objects {
    sc: School,
    invoice: i64,
    payment: i64,
    student: i64,
}

async fn objects(app: &TestApp) -> Objects {
    let sc = app.school("ROLE", "QD").await;
    let (s, b) = app.import_fixture(&sc, "thcs-2025-09.csv").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, inv) = app
        .get("/api/v1/payment-codes/QD3CFPSA", &sc.accountant)
        .await;
    let invoice = inv["id"].as_i64().expect("invoice");
    let (s, p) = app
        .post(
            &format!("/api/v1/schools/{}/payments", sc.school_id),
            &sc.cashier,
            json!({"channel": "cash", "amount": 100_000, "allocations": [{"invoice_id": invoice, "amount": 100_000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let student = inv["student_id"].as_i64().expect("student");
    Objects {
        invoice,
        payment: p["id"].as_i64().expect("payment"),
        student,
        sc,
    }
}

fn fill(path: &str, o: &Objects) -> String {
    path.replace("{school_id}", &o.sc.school_id.to_string())
        .replace("{department_id}", &o.sc.department_id.to_string())
        .replace("{invoice_id}", &o.invoice.to_string())
        .replace("{payment_id}", &o.payment.to_string())
        .replace("{student_id}", &o.student.to_string())
        .replace("{code}", "QD3CFPSA")
        .replace("{date}", "2025-09-10")
        .replace("{account_id}", "1")
        .replace("{exception_id}", "1")
        .replace("{secret_id}", "1")
        .replace("{token_id}", "999999")
}

/// Calls every operation as `role` and checks who was refused for their role.
async fn walk(role: &str) {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let o = objects(&app).await;
    let token = match role {
        "admin" => ADMIN.to_string(),
        "accountant" => o.sc.accountant.clone(),
        "cashier" => o.sc.cashier.clone(),
        _ => o.sc.auditor.clone(),
    };
    let mut wrong = Vec::new();
    for (method, path, allowed) in ACCESS {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
        let before = app.count("audit_log").await;
        let (status, b): (StatusCode, Value) = app
            .call(m, &fill(path, &o), Some(&token), body.as_ref())
            .await;
        let may = allowed.contains(&role);
        let refused = status == StatusCode::FORBIDDEN;
        if may == refused || status == StatusCode::UNAUTHORIZED {
            wrong.push(format!("{method} {path}: {status} {b}"));
        }
        if refused {
            assert_eq!(b["error"]["code"], "forbidden", "{method} {path}");
            assert_eq!(
                app.count("audit_log").await,
                before,
                "{method} {path}: a refusal wrote nothing"
            );
        }
    }
    assert!(wrong.is_empty(), "{role}:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn the_admin_may_call_everything() {
    walk("admin").await;
}

#[tokio::test]
async fn an_accountant_keeps_the_school_s_books_but_runs_no_installation() {
    walk("accountant").await;
}

#[tokio::test]
async fn a_cashier_takes_cash_and_reads_invoices_but_not_the_review_queue_days_reports_or_accounts()
{
    walk("cashier").await;
}

#[tokio::test]
async fn an_auditor_reads_and_changes_nothing() {
    walk("auditor").await;
}
