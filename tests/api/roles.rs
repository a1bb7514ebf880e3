//! Each role may call exactly the operations README's access table gives it: every operation of
//! the OpenAPI document is in the table below (a new route fails this test until it is), and
//! each role is tried on each, in its own scope. A role that may not is refused 403 before
//! anything is read or written; a role that may is never refused for its role. Staff call with
//! their bearer tokens, the parent with the cookie session their link opened (and its CSRF
//! token), so the parent column is walked as a browser would.

use crate::helpers::{Backend, School, TestApp, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const ALL: &[&str] = &["admin", "accountant", "cashier", "auditor"];
const OVERSEERS: &[&str] = &["admin", "accountant", "auditor"];
const ACCOUNTANTS: &[&str] = &["admin", "accountant"];
const ADMIN_ONLY: &[&str] = &["admin"];
const DEPARTMENT: &[&str] = &["admin", "auditor"];
const PARENT: &[&str] = &["parent"];
/// Open to anyone: the parent link's page and its POST (which checks the token), and the
/// staff sign-in (which checks the token in its body).
pub(crate) const ANYONE: &[&str] = &["admin", "accountant", "cashier", "auditor", "parent"];
/// The caller's own cookie session: a bearer caller has none (401); the parent walks with one.
pub(crate) const OWN_SESSION: &[&str] = &["own session"];
pub(crate) const ROLES: &[&str] = &["admin", "accountant", "cashier", "auditor", "parent"];

/// (method, path, who may call it): README's access table, operation by operation.
pub(crate) const ACCESS: &[(&str, &str, &[&str])] = &[
    ("get", "/api/v1/audit/checkpoints", DEPARTMENT),
    ("get", "/api/v1/audit/checkpoints/key", DEPARTMENT),
    ("get", "/api/v1/audit/verify", DEPARTMENT),
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
    ("get", "/api/v1/parent", PARENT),
    ("get", "/api/v1/parent/invoices", PARENT),
    ("get", "/api/v1/parent/invoices/{invoice_id}", PARENT),
    (
        "get",
        "/api/v1/parent/invoices/{invoice_id}/payment-options",
        PARENT,
    ),
    (
        "get",
        "/api/v1/parent/payments/{payment_id}/receipt",
        PARENT,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/parent-links",
        ACCOUNTANTS,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/parent-links",
        ACCOUNTANTS,
    ),
    (
        "delete",
        "/api/v1/schools/{school_id}/parent-links/{link_id}",
        ACCOUNTANTS,
    ),
    ("post", "/api/v1/session", ANYONE),
    ("get", "/api/v1/session", OWN_SESSION),
    ("delete", "/api/v1/session", OWN_SESSION),
    ("get", "/p/{token}", ANYONE),
    ("post", "/p/{token}", ANYONE),
    ("get", "/api/v1/processing-log", ADMIN_ONLY),
    (
        "post",
        "/api/v1/schools/{school_id}/students/{student_id}/open",
        DEPARTMENT,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/payments/{payment_id}/open",
        DEPARTMENT,
    ),
    (
        "get",
        "/api/v1/schools/{school_id}/students/{student_id}/personal-data",
        ADMIN_ONLY,
    ),
    (
        "post",
        "/api/v1/schools/{school_id}/students/{student_id}/erase",
        ADMIN_ONLY,
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
    assert_eq!(listed.len(), ACCESS.len(), "an operation listed twice");
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
    /// A parent link of the invoice's student, and its token.
    link: i64,
    token: String,
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
    let l = crate::parents::issue(
        app,
        &sc,
        json!({"for": "student", "student_id": student, "label": "Mẹ"}),
    )
    .await;
    Objects {
        invoice,
        payment: p["id"].as_i64().expect("payment"),
        student,
        link: l["id"].as_i64().expect("link"),
        token: l["token"].as_str().expect("token").to_string(),
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
        .replace("{link_id}", &o.link.to_string())
        .replace("{token}", &o.token)
}

/// Calls every operation as `role` and checks who was refused for their role; returns how many
/// calls it made.
async fn walk(role: &str) -> usize {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let o = objects(&app).await;
    let token = match role {
        "admin" => ADMIN.to_string(),
        "accountant" => o.sc.accountant.clone(),
        "cashier" => o.sc.cashier.clone(),
        "auditor" => o.sc.auditor.clone(),
        _ => String::new(),
    };
    // The parent: the session their link opens, and its CSRF token.
    let session = if role == "parent" {
        let cookie = crate::parents::open(&app, &o.token).await;
        let (s, _, me) = app
            .with_cookie(Method::GET, "/api/v1/session", &cookie, None, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{me}");
        Some((cookie, me["csrf_token"].as_str().expect("csrf").to_string()))
    } else {
        None
    };
    let mut wrong = Vec::new();
    // Signing out last: the walk goes on with the session until then.
    let (last, first): (Vec<_>, Vec<_>) = ACCESS
        .iter()
        .partition(|(m, p, _)| *m == "delete" && *p == "/api/v1/session");
    for (method, path, allowed) in first.into_iter().chain(last) {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
        let before = app.count("audit_log").await;
        let (status, b): (StatusCode, Value) = match &session {
            Some((cookie, csrf)) => {
                let (s, _, b) = app
                    .with_cookie(m, &fill(path, &o), cookie, Some(csrf), body.as_ref())
                    .await;
                (s, b)
            }
            // A signed-in parent is sent on to their page: the walk looks at the POST's answer.
            None if m == Method::POST && path.starts_with("/p/") => {
                let (s, _, b) = crate::parents::post_link(&app, &o.token, &[]).await;
                (s, b)
            }
            None => {
                app.call(m, &fill(path, &o), Some(&token), body.as_ref())
                    .await
            }
        };
        if *allowed == *OWN_SESSION {
            let want_session = session.is_some();
            if want_session == (status == StatusCode::UNAUTHORIZED) {
                wrong.push(format!("{method} {path}: {status} {b}"));
            }
            continue;
        }
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
    ACCESS.len()
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

#[tokio::test]
async fn a_parent_reads_their_family_with_their_session_and_calls_nothing_else() {
    let probes = walk("parent").await;
    eprintln!(
        "{probes} operations, {} route x role probes in all",
        probes * ROLES.len()
    );
}
