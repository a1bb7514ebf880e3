//! Nobody sees what is not theirs. Every route the router knows (each operation of `ACCESS` in
//! `roles.rs`, which a test holds to the OpenAPI document, and the routes outside it, which a
//! test holds to the `.route(` calls of the source) is called by every role, the parent with the
//! cookie session their link opened, against objects of another school of the same department,
//! of another department, and (for the parent) of another family of the same school:
//!
//! - an object in the path that is not the caller's is 404, as a missing one (403 for a role that
//!   may never call the operation); another school's object under the caller's own school is
//!   404 too, for the admin as well;
//! - another school's object named in a body (an invoice to allocate to, a student to bill, a
//!   link or account to replace) is answered exactly as an id that does not exist, and never
//!   2xx;
//! - a list, and a list filtered by another school's object, holds only the caller's objects;
//! - a capability that is not the caller's is what its documentation says: the link's page is
//!   the same page for every token, a revoked link of another family is 410 with the school's
//!   contact, a revoked token of another school signs nobody in (401); a webhook not signed by
//!   the account's sender is refused in the sender's format;
//! - no answer holds the foreign objects' data (names, codes, payment codes, memos, payers'
//!   names, account numbers, distinctive amounts, labels and contacts), in its body or headers;
//! - nothing is written: every table's row count and the states a write would change are the
//!   same after each call. The one row allowed is the processing log's, of an answer that gave
//!   the caller their own data, and it must name no foreign student; a refused webhook delivery
//!   is archived (cut short), as `webhooks.rs` documents.
//!
//! The probes are planned from the tables, so a new operation is walked without anyone
//! remembering it: a new path parameter, or a body the walk cannot fill, fails it until the
//! walk is told which object it names.

use crate::helpers::{Backend, School, TestApp, ADMIN};
use crate::roles::{ACCESS, ANYONE, OWN_SESSION, ROLES};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The routes the router serves outside the OpenAPI document.
const OTHER_ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/webhooks/{provider}/{account_id}"),
];

#[test]
fn every_route_outside_the_openapi_document_is_walked() {
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut sources = Vec::new();
    files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut sources,
    );
    let mut routed = BTreeSet::new();
    for file in sources {
        let text = std::fs::read_to_string(&file).expect("source");
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            if let Some(t) = rest.trim_start().strip_prefix('"') {
                if let Some(end) = t.find('"') {
                    routed.insert(t[..end].to_string());
                }
            }
        }
    }
    let listed: BTreeSet<String> = OTHER_ROUTES.iter().map(|(_, p)| p.to_string()).collect();
    assert_eq!(
        routed, listed,
        "routes outside the OpenAPI document: walk each in OTHER_ROUTES"
    );
}

// ---------------------------------------------------------------------------------------------
// The objects.

/// One set of objects: a school's (or a family's) student, invoice, payments, links, accounts,
/// with the data of theirs that must never reach anyone they are foreign to.
#[derive(Clone, Debug)]
struct Objects {
    name: &'static str,
    school_id: i64,
    department_id: i64,
    student_id: i64,
    invoice_id: i64,
    /// A cash payment to the invoice, with the payer's name and a memo.
    payment_id: i64,
    /// A transfer nobody could match, waiting in the review queue.
    exception_id: i64,
    receiving_account_id: i64,
    provider_account_id: i64,
    secret_id: i64,
    /// An active parent link of the student, and its token.
    link_id: i64,
    link_token: String,
    /// A link of the student that was revoked.
    revoked_link_token: String,
    /// A staff token that was revoked (for a family: its revoked link's token), and a token id.
    api_token: String,
    api_token_id: i64,
    payment_code: String,
    student_code: String,
    family_key: String,
    strings: Vec<String>,
    students: Vec<i64>,
}

impl Objects {
    /// Ids that name nothing, for the answer a foreign id must look like.
    fn missing() -> Objects {
        let none = 999_999_999;
        Objects {
            name: "missing",
            school_id: none,
            department_id: none,
            student_id: none,
            invoice_id: none,
            payment_id: none,
            exception_id: none,
            receiving_account_id: none,
            provider_account_id: none,
            secret_id: none,
            link_id: none,
            link_token: "A".repeat(43),
            revoked_link_token: "A".repeat(43),
            api_token: "frk_not-a-token-of-this-service-0000000000".into(),
            api_token_id: none,
            payment_code: "QZ0000000".into(),
            student_code: "KHONG-CO-9999".into(),
            family_key: "GD-KHONG-CO-9999".into(),
            strings: Vec::new(),
            students: Vec::new(),
        }
    }

    /// What `{name}` in a path, query or body names here.
    fn get(&self, name: &str, path: &str, method: &str) -> Value {
        match name {
            "school_id" => self.school_id.into(),
            "department_id" => self.department_id.into(),
            "student_id" => self.student_id.into(),
            "invoice_id" => self.invoice_id.into(),
            "payment_id" => self.payment_id.into(),
            "exception_id" => self.exception_id.into(),
            "account_id"
                if path.starts_with("/api/v1/provider-accounts/")
                    || path.starts_with("/webhooks/") =>
            {
                self.provider_account_id.into()
            }
            "account_id" | "receiving_account_id" => self.receiving_account_id.into(),
            "secret_id" => self.secret_id.into(),
            "link_id" => self.link_id.into(),
            "token_id" => self.api_token_id.into(),
            "code" => self.payment_code.clone().into(),
            // The page of a live link; the POST of a revoked one (a live one is a capability:
            // whoever holds it opens the family, by design).
            "token" if method == "get" => self.link_token.clone().into(),
            "token" => self.revoked_link_token.clone().into(),
            "api_token" => self.api_token.clone().into(),
            "student_code" => self.student_code.clone().into(),
            "family_key" => self.family_key.clone().into(),
            other => panic!("{method} {path}: the walk does not know what {{{other}}} names"),
        }
    }
}

/// Parameters that name no object, filled the same whoever calls.
fn neutral(name: &str) -> Option<&'static str> {
    match name {
        "date" => Some("2025-09-10"),
        "provider" => Some("sepay"),
        _ => None,
    }
}

fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let end = rest[i..].find('}').expect("closing brace") + i;
        out.push(rest[i + 1..end].to_string());
        rest = &rest[end + 1..];
    }
    out
}

/// The path's objects (parameters that name one), in order.
fn objects_of(path: &str) -> Vec<String> {
    placeholders(path)
        .into_iter()
        .filter(|p| neutral(p).is_none())
        .collect()
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fill(
    template: &str,
    path: &str,
    method: &str,
    pick: impl Fn(usize, &str) -> Option<Value>,
) -> String {
    let mut out = String::new();
    let mut rest = template;
    let mut index = 0;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closing brace") + i;
        let name = &rest[i + 1..end];
        match neutral(name) {
            Some(v) => out.push_str(v),
            None => {
                let v = pick(index, name)
                    .unwrap_or_else(|| panic!("{method} {path}: nothing fills {{{name}}}"));
                out.push_str(&text_of(&v));
                index += 1;
            }
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A body template's `"$name"` (this probe's objects) and `"$own.name"` (the caller's).
fn fill_body(v: &Value, refs: &Objects, own: &Objects, path: &str, method: &str) -> Value {
    match v {
        Value::String(s) if s.starts_with("$own.") => own.get(&s[5..], path, method),
        Value::String(s) if s.starts_with('$') => refs.get(&s[1..], path, method),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| fill_body(i, refs, own, path, method))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, x)| (k.clone(), fill_body(x, refs, own, path, method)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn body_refs(v: &Value) -> bool {
    match v {
        Value::String(s) => s.starts_with('$') && !s.starts_with("$own."),
        Value::Array(items) => items.iter().any(body_refs),
        Value::Object(fields) => fields.values().any(body_refs),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// What each operation is sent: a query naming an object where it takes one, and a body its
// handler accepts, so the only reason left to refuse is whose the objects are.

#[derive(Clone, Debug)]
struct Variant {
    query: &'static str,
    body: Option<Value>,
}

impl Variant {
    fn refs(&self) -> bool {
        !placeholders(self.query).is_empty() || self.body.as_ref().is_some_and(body_refs)
    }
}

fn fee_item() -> Value {
    json!({"code": "PROBE", "name": "Thử", "category": "other", "mandatory": false, "cadence": "monthly"})
}

fn variants(method: &str, path: &str) -> Vec<Variant> {
    let q = |query: &'static str| Variant { query, body: None };
    let b = |body: Value| Variant {
        query: "",
        body: Some(body),
    };
    let reason = || json!({"reason": "kiểm tra phạm vi truy cập"});
    match (method, path) {
        ("get", "/api/v1/audit/checkpoints") => vec![q("?chain=school:{school_id}")],
        ("get", "/api/v1/fee-schedules") => vec![q("?school_id={school_id}")],
        ("get", "/api/v1/reports/fees") => vec![
            q("?school_id={school_id}&from=2025-09-01&to=2025-09-30"),
            q("?department_id={department_id}&from=2025-09-01&to=2025-09-30"),
        ],
        ("get", "/api/v1/schools") => vec![q("?department_id={department_id}")],
        ("get", "/api/v1/schools/{school_id}/invoices") => vec![q("?student_id={student_id}")],
        ("get", "/api/v1/schools/{school_id}/students") => vec![
            q("?student_code={student_code}"),
            q("?family_key={family_key}"),
        ],
        ("get", "/api/v1/schools/{school_id}/parent-links") => {
            vec![q("?student_id={student_id}")]
        }
        ("get", "/api/v1/processing-log") => vec![q("?student_id={student_id}")],
        ("post", "/api/v1/departments") => vec![b(json!({"code": "SGD-PROBE", "name": "Thử"}))],
        ("post", "/api/v1/departments/{department_id}/fee-items")
        | ("post", "/api/v1/schools/{school_id}/fee-items") => vec![b(fee_item())],
        ("put", "/api/v1/departments/{department_id}/policy") => {
            vec![b(json!({"parents_must_not_bear_fees": true}))]
        }
        ("post", "/api/v1/fee-schedules") => vec![b(
            json!({"provider": "sepay", "channel": "bank_transfer", "school_id": "$school_id", "effective_from": "2025-09-01", "percent": "0.5"}),
        )],
        ("put", "/api/v1/provider-accounts/{account_id}/pull") => vec![b(
            json!({"account_id": "$receiving_account_id", "api_key": "pull-api-token-0123456789"}),
        )],
        ("post", "/api/v1/provider-accounts/{account_id}/secrets") => {
            vec![b(json!({"secret": "probe-secret-0123456789abcdef"}))]
        }
        ("post", "/api/v1/schools") => vec![b(
            json!({"department_id": "$department_id", "code": "THCS-PROBE", "name": "Thử", "payment_prefix": "QZ"}),
        )],
        ("post", "/api/v1/schools/{school_id}/accounts") => vec![b(
            json!({"bank_bin": "970436", "account_number": "0071009000001", "account_name": "TRUONG THU", "replaces_account_id": "$receiving_account_id"}),
        )],
        ("post", "/api/v1/schools/{school_id}/accounts/{account_id}/reject")
        | ("post", "/api/v1/schools/{school_id}/accounts/{account_id}/retire")
        | ("post", "/api/v1/schools/{school_id}/invoices/{invoice_id}/void")
        | ("post", "/api/v1/schools/{school_id}/payments/{payment_id}/reverse")
        | ("post", "/api/v1/schools/{school_id}/students/{student_id}/open")
        | ("post", "/api/v1/schools/{school_id}/payments/{payment_id}/open")
        | ("post", "/api/v1/schools/{school_id}/students/{student_id}/erase") => vec![b(reason())],
        ("post", "/api/v1/schools/{school_id}/exceptions/{exception_id}/dismiss") => vec![b(
            json!({"reason": "kiểm tra", "invoice_ids": ["$invoice_id"]}),
        )],
        ("post", "/api/v1/schools/{school_id}/exceptions/{exception_id}/match") => vec![b(
            json!({"allocations": [{"invoice_id": "$invoice_id", "amount": 1000}]}),
        )],
        ("post", "/api/v1/schools/{school_id}/exceptions/{exception_id}/refund")
        | ("post", "/api/v1/schools/{school_id}/payments/{payment_id}/refunds") => {
            vec![b(json!({"amount": 1000, "reason": "kiểm tra"}))]
        }
        ("post", "/api/v1/schools/{school_id}/invoices") => {
            let lines = json!([{"type": "charge", "item_code": "MEALS", "amount": 100_000}]);
            vec![
                b(
                    json!({"student_id": "$student_id", "period": "2025-10", "due_date": "2025-10-15", "lines": lines}),
                ),
                b(
                    json!({"student_id": "$own.student_id", "period": "2025-10", "due_date": "2025-10-15", "replaces_invoice_id": "$invoice_id", "lines": lines}),
                ),
            ]
        }
        ("post", "/api/v1/schools/{school_id}/payments") => vec![b(
            json!({"channel": "cash", "amount": 1000, "allocations": [{"invoice_id": "$invoice_id", "amount": 1000}]}),
        )],
        ("post", "/api/v1/schools/{school_id}/payments/{payment_id}/allocations") => {
            vec![b(json!({"invoice_id": "$invoice_id", "amount": 1000}))]
        }
        ("post", "/api/v1/schools/{school_id}/provider-accounts") => vec![b(
            json!({"provider": "sepay", "account": "0071009000002", "label": "thử", "secret": "probe-secret-0123456789abcdef"}),
        )],
        ("put", "/api/v1/schools/{school_id}/settings") => {
            vec![b(json!({"accepts_cash": false}))]
        }
        ("post", "/api/v1/schools/{school_id}/students") => vec![b(
            json!({"student_code": "PROBE-1", "full_name": "Thử Nghiệm", "class_name": "6A1"}),
        )],
        ("post", "/api/v1/schools/{school_id}/parent-links") => vec![
            b(json!({"for": "student", "student_id": "$student_id", "label": "Mẹ"})),
            b(json!({"for": "family", "family_key": "$family_key", "label": "Mẹ"})),
            b(
                json!({"for": "student", "student_id": "$own.student_id", "label": "Mẹ", "replaces_link_id": "$link_id"}),
            ),
        ],
        ("post", "/api/v1/session") => vec![b(json!({"token": "$api_token"}))],
        ("post", "/api/v1/tokens") => vec![b(
            json!({"role": "accountant", "school_id": "$school_id", "label": "thử"}),
        )],
        ("post", "/webhooks/{provider}/{account_id}") => vec![b(
            json!({"id": 990_001, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00", "accountNumber": "0071009000003", "code": null, "content": "thu", "transferType": "in", "transferAmount": 1000, "referenceCode": "FT990001", "description": ""}),
        )],
        ("get" | "delete", _) => vec![q("")],
        // Any other body the handler takes: a new operation with a body fails the walk (422)
        // until it is given one here.
        _ => vec![b(json!({}))],
    }
}

// ---------------------------------------------------------------------------------------------
// The plan: which calls each role makes.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every object is of the foreign set.
    Foreign,
    /// The first (the school, or the account the rest hang from) is the caller's own; the
    /// rest, and what the query and body name, are of the foreign set.
    Nested,
    /// The path is the caller's own; what the query and body name is foreign.
    Body,
    /// Names nothing: a list, or the caller's own session.
    Plain,
    /// A token that is not the caller's (a link, a staff token).
    Capability,
}

#[derive(Clone, Debug)]
struct Probe {
    method: &'static str,
    path: &'static str,
    allowed: &'static [&'static str],
    variant: Variant,
    mode: Mode,
    /// Index into `World::foreign`.
    set: Option<usize>,
}

const FAMILY: usize = 0;
const SCHOOL: usize = 1;
const DEPARTMENT: usize = 2;

/// The sets the role may see nothing of.
fn foreign_to(role: &str) -> &'static [usize] {
    match role {
        "admin" => &[],
        "accountant" | "cashier" => &[SCHOOL, DEPARTMENT],
        "auditor" => &[DEPARTMENT],
        "parent" => &[FAMILY, SCHOOL, DEPARTMENT],
        other => panic!("role {other}"),
    }
}

fn operations() -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    let mut ops: Vec<_> = ACCESS.to_vec();
    ops.extend(OTHER_ROUTES.iter().map(|(m, p)| (*m, *p, ANYONE)));
    // Signing out last: the parent walks on with the session until then.
    let (last, mut first): (Vec<_>, Vec<_>) = ops
        .into_iter()
        .partition(|(m, p, _)| *m == "delete" && *p == "/api/v1/session");
    first.extend(last);
    first
}

fn capability(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        ("get", "/p/{token}")
            | ("post", "/p/{token}")
            | ("post", "/api/v1/session")
            | ("post", "/webhooks/{provider}/{account_id}")
    )
}

fn plan(role: &str) -> Vec<Probe> {
    let mut out = Vec::new();
    for (method, path, allowed) in operations() {
        let objects = objects_of(path);
        for variant in variants(method, path) {
            let probe = |mode, set| Probe {
                method,
                path,
                allowed,
                variant: variant.clone(),
                mode,
                set,
            };
            if capability(method, path) {
                for set in [FAMILY, SCHOOL, DEPARTMENT] {
                    out.push(probe(Mode::Capability, Some(set)));
                }
                continue;
            }
            if objects.is_empty() && !variant.refs() {
                // Nothing named: a list (or the caller's own session). What names nothing and
                // writes is the admin's to do, with nothing foreign to it.
                if method == "get" || allowed == OWN_SESSION || !allowed.contains(&role) {
                    out.push(probe(Mode::Plain, None));
                }
                continue;
            }
            for &set in foreign_to(role) {
                out.push(probe(Mode::Foreign, Some(set)));
            }
            if role == "parent" || objects.is_empty() {
                continue;
            }
            // Under the caller's own school (or account): another school's objects.
            for set in [SCHOOL, DEPARTMENT] {
                if objects.len() > 1 || variant.refs() {
                    out.push(probe(Mode::Nested, Some(set)));
                }
                if objects.len() > 1 && variant.refs() {
                    out.push(probe(Mode::Body, Some(set)));
                }
            }
        }
    }
    out
}

#[test]
fn the_walk_calls_every_route_with_every_role() {
    let mut total = 0;
    let mut uncalled = Vec::new();
    for role in ROLES {
        let p = plan(role);
        let called: BTreeSet<(&str, &str)> = p.iter().map(|x| (x.method, x.path)).collect();
        for (m, path, _) in operations() {
            if !called.contains(&(m, path)) {
                uncalled.push(format!("{role}: {m} {path}"));
            }
        }
        let n = p.len() + if *role == "parent" { SPLIT_PROBES } else { 0 };
        eprintln!("{role}: {n} probes");
        total += n;
    }
    eprintln!(
        "{total} probes in all, on each backend, of {} routes by {} roles",
        operations().len(),
        ROLES.len()
    );
    // The admin's scope is the installation: what it is not called on names nothing that can
    // be another's (a department, a school, a token by itself). Everyone else is called on
    // every route.
    assert!(
        uncalled.iter().all(|u| u.starts_with("admin: ")),
        "{uncalled:#?}"
    );
    eprintln!(
        "the admin, whose scope is the installation, is not called on {} routes that name nothing but the installation's objects",
        uncalled.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The world: school A (the caller's), school B in A's department, school C in another
// department, and in A a family other than the parent's.

/// A school in an existing department, with an accountant's and a cashier's token.
async fn school_in(app: &TestApp, department_id: i64, code: &str, prefix: &str) -> School {
    let (s, sc) = app
        .post(
            "/api/v1/schools",
            ADMIN,
            json!({"department_id": department_id, "code": code, "name": "THCS Lê Quý Đôn", "payment_prefix": prefix}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sc}");
    let school_id = sc["id"].as_i64().expect("school");
    let token = |role: &str| {
        let body = json!({"role": role, "school_id": school_id, "label": role});
        async move {
            let (s, t) = app.post("/api/v1/tokens", ADMIN, body).await;
            assert_eq!(s, StatusCode::CREATED, "{t}");
            t["token"].as_str().expect("token").to_string()
        }
    };
    School {
        department_id,
        school_id,
        code: code.to_string(),
        accountant: token("accountant").await,
        cashier: token("cashier").await,
        auditor: String::new(),
    }
}

fn sepay_key() -> String {
    crate::webhooks::secrets()["sepay"]["api_key"]
        .as_str()
        .expect("key")
        .to_string()
}

/// A SePay transfer into `account` that names no invoice: it waits in the review queue.
async fn unmatched_transfer(
    app: &TestApp,
    path: &str,
    account: &str,
    id: i64,
    memo: &str,
    amount: i64,
) -> (i64, i64) {
    let body = json!({"id": id, "gateway": "MBBank", "transactionDate": "2025-09-10 08:30:00",
        "accountNumber": account, "code": null, "content": memo, "transferType": "in",
        "transferAmount": amount, "referenceCode": format!("FT{id}"), "description": ""});
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header("authorization", format!("Apikey {}", sepay_key()))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let payment = crate::privacy::scalar(
        app,
        &format!("SELECT id FROM payments WHERE provider_ref = '{account}:{id}'"),
    )
    .await;
    let exception = crate::privacy::scalar(
        app,
        &format!("SELECT id FROM exceptions WHERE payment_id = {payment} AND status = 'open'"),
    )
    .await;
    (payment, exception)
}

/// A school's accounts: a receiving account approved by two people, the SePay account that
/// watches it with its secret and pull, and a transfer in the review queue.
struct Accounts {
    receiving: i64,
    provider: i64,
    secret: i64,
    transfer: i64,
    exception: i64,
}

async fn accounts(app: &TestApp, sc: &School, number: &str, name: &str, memo: &str) -> Accounts {
    let receiving = app.approved_account(sc, "970422", number, name).await["id"]
        .as_i64()
        .expect("account");
    let (provider, path) =
        crate::webhooks::account(app, sc, "sepay", number, &sepay_key(), None).await;
    let (_, list) = app
        .get(
            &format!("/api/v1/schools/{}/provider-accounts", sc.school_id),
            ADMIN,
        )
        .await;
    let secret = list[0]["active_secret_ids"][0].as_i64().expect("secret");
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/api/v1/provider-accounts/{provider}/pull"),
            Some(ADMIN),
            Some(&json!({"account_id": receiving, "api_key": "pull-api-token-0123456789", "enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let txn = sc.school_id * 1000 + 1;
    let amount = 1_300_000 + sc.school_id * 11_111;
    let (transfer, exception) = unmatched_transfer(app, &path, number, txn, memo, amount).await;
    Accounts {
        receiving,
        provider,
        secret,
        transfer,
        exception,
    }
}

/// A student of their own family with an invoice, a cash payment with the payer's name and a
/// memo, an active link and a revoked one; all of it distinctive.
struct Family {
    student: i64,
    invoice: i64,
    payment: i64,
    link: i64,
    link_token: String,
    revoked_token: String,
    payment_code: String,
    strings: Vec<String>,
}

fn amounts(n: i64) -> Vec<String> {
    let dotted = {
        let d = n.to_string();
        let mut out = String::new();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && (d.len() - i) % 3 == 0 {
                out.push('.');
            }
            out.push(c);
        }
        out
    };
    vec![n.to_string(), dotted]
}

async fn family(app: &TestApp, sc: &School, tag: &str, n: i64) -> Family {
    let code = format!("NGOAI-{tag}-{n}");
    let name = format!("Lâm Ngoại {tag}{n}");
    let family_key = format!("GD-NGOAI-{tag}");
    let (s, st) = app
        .post(
            &format!("/api/v1/schools/{}/students", sc.school_id),
            &sc.accountant,
            json!({"student_code": code, "full_name": name, "class_name": "9Z9", "family_key": family_key}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{st}");
    let student = st["id"].as_i64().expect("student");
    let billed = 1_100_000 + n;
    let (s, inv) = app
        .post(
            &format!("/api/v1/schools/{}/invoices", sc.school_id),
            &sc.accountant,
            json!({"student_id": student, "period": "2025-09", "due_date": "2025-09-15",
                "lines": [{"type": "charge", "item_code": "BHYT", "amount": billed, "description": format!("BHYT Ngoại {tag}")}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    let invoice = inv["id"].as_i64().expect("invoice");
    let payment_code = inv["payment_code"].as_str().expect("code").to_string();
    let paid = 1_000_000 + n;
    let payer = format!("Ông Lâm Ngoại {tag}");
    let memo = format!("tien hoc be Ngoai {tag} {n}");
    let (s, p) = app
        .post(
            &format!("/api/v1/schools/{}/payments", sc.school_id),
            &sc.cashier,
            json!({"channel": "cash", "amount": paid, "payer_name": payer, "memo": memo,
                "allocations": [{"invoice_id": invoice, "amount": paid}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let label = format!("Bà nội Ngoại {tag}");
    let contact = format!("Cô Ngoại {tag}, 0909 {n}");
    let live = crate::parents::issue(
        app,
        sc,
        json!({"for": "student", "student_id": student, "label": label, "contact": contact}),
    )
    .await;
    let revoked = crate::parents::revoked(
        app,
        sc,
        json!({"for": "student", "student_id": student, "label": label}),
    )
    .await;
    let mut strings = vec![
        code,
        name,
        family_key,
        payment_code.clone(),
        payer,
        memo,
        label,
        contact,
        format!("BHYT Ngoại {tag}"),
    ];
    strings.extend(amounts(billed));
    strings.extend(amounts(paid));
    Family {
        student,
        invoice,
        payment: p["id"].as_i64().expect("payment"),
        link: live["id"].as_i64().expect("link"),
        link_token: live["token"].as_str().expect("token").to_string(),
        revoked_token: revoked["token"].as_str().expect("token").to_string(),
        payment_code,
        strings,
    }
}

/// A staff token of the school that was revoked: (its id, the token).
async fn revoked_token(app: &TestApp, sc: &School) -> (i64, String) {
    let (s, t) = app
        .post(
            "/api/v1/tokens",
            ADMIN,
            json!({"role": "accountant", "school_id": sc.school_id, "label": "revoked"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().expect("id");
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    (id, t["token"].as_str().expect("token").to_string())
}

struct World {
    a: School,
    own: Objects,
    /// The other family of A, school B, school C.
    foreign: [Objects; 3],
    /// The parent's session (HS0001 and HS0002's family link): cookie and CSRF token.
    parent: (String, String),
    /// A cash payment to the parent's invoice and to the other family's.
    split: i64,
}

async fn world(app: &TestApp) -> World {
    let a = app.school("ISO-A", "QD").await;
    let (s, b) = app.import_fixture(&a, "thcs-2025-09.csv").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut b_school = school_in(app, a.department_id, "THCS-ISO-B", "QB").await;
    b_school.auditor = a.auditor.clone();
    let c = app.school("ISO-C", "QC").await;

    let a_accounts = accounts(
        app,
        &a,
        "6868111111111",
        "TRUONG ISO A",
        "tien hoc chua ro A",
    )
    .await;
    let mut sets = Vec::new();
    // The family of A the parent does not belong to: one student, no siblings.
    let y = family(app, &a, "Y", 5501).await;
    let (y_token_id, _) = revoked_token(app, &a).await;
    sets.push(Objects {
        name: "another family of the school",
        school_id: a.school_id,
        department_id: a.department_id,
        student_id: y.student,
        invoice_id: y.invoice,
        payment_id: y.payment,
        exception_id: a_accounts.exception,
        receiving_account_id: a_accounts.receiving,
        provider_account_id: a_accounts.provider,
        secret_id: a_accounts.secret,
        link_id: y.link,
        link_token: y.link_token,
        // A family has no staff token: its revoked link's token is offered for one.
        api_token: y.revoked_token.clone(),
        revoked_link_token: y.revoked_token,
        api_token_id: y_token_id,
        payment_code: y.payment_code,
        student_code: "NGOAI-Y-5501".into(),
        family_key: "GD-NGOAI-Y".into(),
        strings: y.strings,
        students: vec![y.student],
    });
    for (sc, tag, n, number) in [
        (&b_school, "B", 5502, "6868222222222"),
        (&c, "C", 5503, "6868333333333"),
    ] {
        let memo = format!("chuyen khoan Ngoai {tag} {n} khong ro");
        let account_name = format!("TRUONG NGOAI {tag}");
        let acc = accounts(app, sc, number, &account_name, &memo).await;
        let f = family(app, sc, tag, n).await;
        let (token_id, token) = revoked_token(app, sc).await;
        let note = format!("Thoa thuan rieng Ngoai {tag}");
        let (s, b) = app
            .post(
                "/api/v1/fee-schedules",
                ADMIN,
                json!({"provider": "sepay", "channel": "bank_transfer", "school_id": sc.school_id,
                    "effective_from": "2025-09-01", "percent": "0.3", "note": note}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let mut strings = f.strings;
        strings.extend([memo, account_name, number.to_string(), note]);
        strings.extend(amounts(1_300_000 + sc.school_id * 11_111));
        sets.push(Objects {
            name: if tag == "B" {
                "another school of the department"
            } else {
                "a school of another department"
            },
            school_id: sc.school_id,
            department_id: sc.department_id,
            student_id: f.student,
            invoice_id: f.invoice,
            payment_id: f.payment,
            exception_id: acc.exception,
            receiving_account_id: acc.receiving,
            provider_account_id: acc.provider,
            secret_id: acc.secret,
            link_id: f.link,
            link_token: f.link_token,
            revoked_link_token: f.revoked_token,
            api_token: token,
            api_token_id: token_id,
            payment_code: f.payment_code,
            student_code: format!("NGOAI-{tag}-{n}"),
            family_key: format!("GD-NGOAI-{tag}"),
            strings,
            students: vec![f.student],
        });
    }

    // The caller's own: HS0001 of A, its invoice, A's transfer with credit in the review queue.
    let student = crate::parents::student_id(app, &a, "HS0001").await;
    let invoice = crate::parents::invoices_of(app, &a, student).await[0];
    let link = crate::parents::issue(
        app,
        &a,
        json!({"for": "family", "family_key": "GD-NGUYEN-01", "label": "Mẹ"}),
    )
    .await;
    let link_token = link["token"].as_str().expect("token").to_string();
    let cookie = crate::parents::open(app, &link_token).await;
    let (s, _, me) = app
        .with_cookie(Method::GET, "/api/v1/session", &cookie, None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let csrf = me["csrf_token"].as_str().expect("csrf").to_string();
    let (s, split) = app
        .post(
            &format!("/api/v1/schools/{}/payments", a.school_id),
            &a.cashier,
            json!({"channel": "cash", "amount": 20_000, "allocations": [
                {"invoice_id": invoice, "amount": 10_000}, {"invoice_id": sets[0].invoice_id, "amount": 10_000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{split}");
    let own = Objects {
        name: "own",
        school_id: a.school_id,
        department_id: a.department_id,
        student_id: student,
        invoice_id: invoice,
        payment_id: a_accounts.transfer,
        exception_id: a_accounts.exception,
        receiving_account_id: a_accounts.receiving,
        provider_account_id: a_accounts.provider,
        secret_id: a_accounts.secret,
        link_id: link["id"].as_i64().expect("link"),
        link_token: link_token.clone(),
        revoked_link_token: link_token,
        api_token: a.accountant.clone(),
        api_token_id: 0,
        payment_code: String::new(),
        student_code: "HS0001".into(),
        family_key: "GD-NGUYEN-01".into(),
        strings: Vec::new(),
        students: vec![student],
    };
    let foreign: [Objects; 3] = sets.try_into().expect("three sets");
    // The data is distinctive: nothing of a foreign set is in another's, or in the
    // caller's school.
    for (i, f) in foreign.iter().enumerate() {
        for (j, g) in foreign.iter().enumerate() {
            if i != j {
                for s in &f.strings {
                    assert!(!g.strings.contains(s), "{s} in {} and {}", f.name, g.name);
                }
            }
        }
    }
    World {
        a,
        own,
        foreign,
        parent: (cookie, csrf),
        split: split["id"].as_i64().expect("payment"),
    }
}

// ---------------------------------------------------------------------------------------------
// The database, before and after each call.

struct Db {
    pool: sqlx::AnyPool,
    snapshot: String,
}

impl Db {
    async fn new(app: &TestApp) -> Db {
        let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("pool");
        let sql = match app.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'"
            }
            Backend::Postgres => {
                "SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE '_sqlx%'"
            }
        };
        let tables: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&pool).await.expect("tables");
        let mut parts: Vec<String> = tables
            .into_iter()
            .map(|(t,)| t)
            .filter(|t| !t.starts_with("processing_log"))
            .map(|t| format!("SELECT CAST('{t}' AS TEXT) AS k, COUNT(*) AS n FROM {t}"))
            .collect();
        assert!(parts.len() > 20, "tables: {parts:?}");
        // What a write changes without adding a row.
        for (label, from) in [
            ("invoices void", "invoices WHERE voided_at IS NOT NULL"),
            ("exceptions open", "exceptions WHERE status = 'open'"),
            ("links revoked", "parent_links WHERE revoked_at IS NOT NULL"),
            ("tokens revoked", "api_tokens WHERE revoked_at IS NOT NULL"),
            (
                "secrets retired",
                "provider_secrets WHERE retired_at IS NOT NULL",
            ),
            (
                "accounts approved",
                "school_accounts WHERE state = 'approved'",
            ),
            (
                "accounts pending",
                "school_accounts WHERE state = 'pending'",
            ),
            ("students erased", "students WHERE erased_at IS NOT NULL"),
            ("schools taking cash", "schools WHERE accepts_cash"),
            (
                "departments sparing parents",
                "departments WHERE parents_must_not_bear_fees",
            ),
            ("pulls enabled", "pull_sources WHERE enabled = 1"),
            ("sessions ended", "sessions WHERE ended_at IS NOT NULL"),
        ] {
            parts.push(format!(
                "SELECT CAST('{label}' AS TEXT) AS k, COUNT(*) AS n FROM {from}"
            ));
        }
        parts.push(
            "SELECT CAST('processing_log last' AS TEXT) AS k, COALESCE(MAX(id), 0) AS n FROM processing_log"
                .into(),
        );
        Db {
            pool,
            snapshot: parts.join(" UNION ALL "),
        }
    }

    async fn snapshot(&self) -> BTreeMap<String, i64> {
        let rows: Vec<(String, i64)> = sqlx::query_as(&self.snapshot)
            .fetch_all(&self.pool)
            .await
            .expect("snapshot");
        rows.into_iter().collect()
    }

    async fn students_logged_after(&self, log_id: i64) -> Vec<i64> {
        let rows: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT student_id FROM processing_log_students WHERE log_id > {log_id}"
        ))
        .fetch_all(&self.pool)
        .await
        .expect("processing log");
        rows.into_iter().map(|(s,)| s).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The walk.

/// What a probe must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Status(u16),
    /// As an id that names nothing: the same status and error code, never 2xx.
    AsMissing,
    /// A list of the caller's own (2xx), or 404.
    OwnOnly,
    /// 2xx: the caller's own.
    Own,
    /// The link's page, the same for every token.
    Page,
}

fn want(role: &str, p: &Probe) -> Want {
    match (p.mode, p.method, p.path) {
        (Mode::Capability, "get", "/p/{token}") => return Want::Page,
        (Mode::Capability, "post", "/p/{token}") => return Want::Status(410),
        (Mode::Capability, "post", "/api/v1/session") => return Want::Status(401),
        // Senders authenticate by their signature, never by our tokens or sessions.
        (Mode::Capability, _, p) if p.starts_with("/webhooks/") => return Want::Status(401),
        _ => {}
    }
    if p.allowed == OWN_SESSION {
        return if role == "parent" {
            Want::Own
        } else {
            Want::Status(401)
        };
    }
    if p.allowed != ANYONE && !p.allowed.contains(&role) {
        return Want::Status(403);
    }
    let objects = objects_of(p.path);
    let foreign_path = match p.mode {
        Mode::Foreign => !objects.is_empty(),
        Mode::Nested => objects.len() > 1,
        _ => false,
    };
    if foreign_path {
        Want::Status(404)
    } else if p.variant.body.as_ref().is_some_and(body_refs) {
        Want::AsMissing
    } else if !placeholders(p.variant.query).is_empty() {
        Want::OwnOnly
    } else {
        Want::Own
    }
}

struct Answer {
    status: StatusCode,
    /// Headers and body, as text.
    text: String,
    code: Option<String>,
}

struct Walker<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    db: Db,
    role: &'a str,
    world: &'a World,
    token: Option<String>,
    page: String,
}

impl Walker<'_> {
    fn request(&self, p: &Probe, refs: &Objects) -> (String, Option<Value>) {
        let own = &self.world.own;
        let foreign = p.set.map(|s| &self.world.foreign[s]);
        let path_objects = |index: usize, name: &str| -> Option<Value> {
            let from = match (p.mode, index) {
                (Mode::Foreign | Mode::Capability, _) | (Mode::Nested, 1..) => foreign?,
                _ => own,
            };
            Some(from.get(name, p.path, p.method))
        };
        let path = fill(p.path, p.path, p.method, path_objects);
        let query = fill(p.variant.query, p.path, p.method, |_, name| {
            Some(refs.get(name, p.path, p.method))
        });
        let body = p
            .variant
            .body
            .as_ref()
            .map(|b| fill_body(b, refs, own, p.path, p.method));
        (format!("{path}{query}"), body)
    }

    async fn send(&self, method: &str, url: &str, body: Option<&Value>) -> Answer {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let mut req = self.client.request(m, format!("{}{url}", self.app.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if self.role == "parent" {
            let (cookie, csrf) = &self.world.parent;
            req = req
                .header("cookie", format!("feerecon_session={cookie}"))
                .header("x-csrf-token", csrf);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let mut text = String::new();
        for (k, v) in r.headers() {
            text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        let body = r.text().await.expect("body");
        let code = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
        text.push_str(&body);
        Answer { status, text, code }
    }

    /// Makes one probe on the database as `before` it; returns what was wrong with its answer,
    /// and the database after it.
    async fn probe(
        &self,
        p: &Probe,
        before: BTreeMap<String, i64>,
    ) -> (Vec<String>, BTreeMap<String, i64>) {
        let mut wrong = Vec::new();
        let set = p.set.map(|s| &self.world.foreign[s]);
        let refs = set.unwrap_or(&self.world.own);
        let (url, body) = self.request(p, refs);
        let a = self.send(p.method, &url, body.as_ref()).await;
        let after = self.db.snapshot().await;
        let what = format!(
            "{} {} {url} ({}, {:?})",
            self.role,
            p.method,
            set.map_or("nothing foreign", |s| s.name),
            p.mode
        );
        let status = a.status.as_u16();
        let w = want(self.role, p);
        let ok = match w {
            Want::Status(s) => status == s,
            Want::Own => a.status.is_success(),
            Want::OwnOnly => a.status.is_success() || status == 404,
            Want::Page => status == 200 && a.text.ends_with(&self.page),
            Want::AsMissing => {
                // The same call naming objects that do not exist.
                let (twin_url, twin_body) = self.request(p, &Objects::missing());
                let twin = self.send(p.method, &twin_url, twin_body.as_ref()).await;
                let same = (twin.status, &twin.code) == (a.status, &a.code);
                if !same {
                    wrong.push(format!(
                        "{what}: {status} {:?}, but {} {:?} for an id that names nothing",
                        a.code, twin.status, twin.code
                    ));
                }
                same && a.status.is_client_error()
            }
        };
        if !ok {
            wrong.push(format!("{what}: want {w:?}, got {status}: {}", a.text));
        }
        if status == 403 && a.code.as_deref() != Some("forbidden") {
            wrong.push(format!("{what}: 403 {:?}", a.code));
        }
        // None of the foreign objects' data.
        let mut sets: BTreeSet<usize> = foreign_to(self.role).iter().copied().collect();
        sets.extend(p.set);
        for s in &sets {
            let f = &self.world.foreign[*s];
            for text in &f.strings {
                if a.text.contains(text.as_str()) {
                    wrong.push(format!("{what}: the answer holds {text:?} of {}", f.name));
                }
            }
        }
        // Nothing written but the processing log of the caller's own data (and a refused
        // delivery's archive).
        let mut changed: Vec<String> = Vec::new();
        for (k, v) in &after {
            let was = before.get(k).copied().unwrap_or(0);
            if *v == was || k == "processing_log last" {
                continue;
            }
            if p.path.starts_with("/webhooks/") && k == "provider_events" && *v == was + 1 {
                continue;
            }
            // The parent signing out ends their own session.
            if p.allowed == OWN_SESSION && p.method == "delete" && k == "sessions ended" {
                continue;
            }
            changed.push(format!("{k} {was} -> {v}"));
        }
        if !changed.is_empty() {
            wrong.push(format!("{what}: written: {}", changed.join(", ")));
        }
        let last = before["processing_log last"];
        if after["processing_log last"] != last {
            if !a.status.is_success() {
                wrong.push(format!("{what}: a refusal in the processing log"));
            }
            let named = self.db.students_logged_after(last).await;
            for s in &sets {
                let f = &self.world.foreign[*s];
                if named.iter().any(|n| f.students.contains(n)) {
                    wrong.push(format!(
                        "{what}: the processing log says it showed a student of {}",
                        f.name
                    ));
                }
            }
        }
        (wrong, after)
    }
}

/// The parent's calls besides the plan: a payment to their family and another's.
const SPLIT_PROBES: usize = 2;

/// Walks the plan as `role`; returns the number of probes.
async fn walk(app: TestApp, role: &str) -> usize {
    let world = world(&app).await;
    let token = match role {
        "admin" => Some(ADMIN.to_string()),
        "accountant" => Some(world.a.accountant.clone()),
        "cashier" => Some(world.a.cashier.clone()),
        "auditor" => Some(world.a.auditor.clone()),
        _ => None,
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = client
        .get(format!("{}/p/{}", app.base, "Z".repeat(43)))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page");
    let walker = Walker {
        db: Db::new(&app).await,
        app: &app,
        client,
        role,
        world: &world,
        token,
        page,
    };
    let probes = plan(role);
    let mut wrong = Vec::new();
    let mut db = walker.db.snapshot().await;
    let mut count = probes.len();
    // Before the plan, which ends with the parent signing out.
    if role == "parent" {
        // A payment to both families: their receipt and invoice show the parent's part only.
        let (y, own) = (&world.foreign[FAMILY], &world.own);
        let urls = [
            format!("/api/v1/parent/payments/{}/receipt", world.split),
            format!("/api/v1/parent/invoices/{}", own.invoice_id),
        ];
        assert_eq!(urls.len(), SPLIT_PROBES);
        for url in urls {
            let a = walker.send("get", &url, None).await;
            let after = walker.db.snapshot().await;
            if a.status != StatusCode::OK {
                wrong.push(format!("parent get {url}: {}: {}", a.status, a.text));
            }
            let ids = [
                format!("\"invoice_id\":{}", y.invoice_id),
                format!("\"student_id\":{}", y.student_id),
            ];
            for text in y.strings.iter().chain(&ids) {
                if a.text.contains(text.as_str()) {
                    wrong.push(format!(
                        "parent get {url}: the answer holds {text:?} of {}",
                        y.name
                    ));
                }
            }
            let logged = walker
                .db
                .students_logged_after(db["processing_log last"])
                .await;
            if logged.contains(&y.student_id) {
                wrong.push(format!("parent get {url}: logged as showing {}", y.name));
            }
            db = after;
            count += 1;
        }
    }
    for p in &probes {
        let (w, after) = walker.probe(p, db).await;
        wrong.extend(w);
        db = after;
    }
    assert!(
        wrong.is_empty(),
        "{role}: {} of {count} probes:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    eprintln!("{role} on {:?}: {count} probes", app.backend);
    count
}

macro_rules! walks {
    ($($name:ident: $role:literal,)*) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite)
                        .await
                        .expect("sqlite");
                    super::walk(app, $role).await;
                }

                #[tokio::test]
                async fn postgres() {
                    match crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await {
                        Some(app) => {
                            super::walk(app, $role).await;
                        }
                        None => eprintln!("FEERECON_TEST_POSTGRES_URL not set: skipped"),
                    }
                }
            }
        )*
    };
}

walks! {
    the_admin_finds_no_school_s_object_under_another_school: "admin",
    an_accountant_sees_nothing_of_another_school: "accountant",
    a_cashier_sees_nothing_of_another_school: "cashier",
    an_auditor_sees_nothing_of_another_department: "auditor",
    a_parent_sees_nothing_of_another_family: "parent",
}

/// A transfer into one school's account whose memo gives another school's payment code and
/// pupil: nothing of the other school is allocated, suggested or shown.
async fn a_memo_naming_another_school_s_invoice_books_nothing_there(app: TestApp) {
    let world = world(&app).await;
    let b = &world.foreign[SCHOOL];
    let a = &world.a;
    let before = crate::privacy::scalar(
        &app,
        &format!(
            "SELECT COUNT(*) FROM allocations WHERE invoice_id = {}",
            b.invoice_id
        ),
    )
    .await;
    let (_, list) = app
        .get(
            &format!("/api/v1/schools/{}/provider-accounts", a.school_id),
            ADMIN,
        )
        .await;
    let path = list[0]["webhook_path"].as_str().expect("path").to_string();
    let memo = format!("{} hoc phi {}", b.payment_code, b.strings[1]);
    let (payment, exception) =
        unmatched_transfer(&app, &path, "6868111111111", 777_001, &memo, 100_000).await;
    let after = crate::privacy::scalar(
        &app,
        &format!(
            "SELECT COUNT(*) FROM allocations WHERE invoice_id = {}",
            b.invoice_id
        ),
    )
    .await;
    assert_eq!(
        after, before,
        "nothing allocated to the other school's invoice"
    );
    let (s, e) = app
        .get(
            &format!("/api/v1/schools/{}/exceptions/{exception}", a.school_id),
            &a.accountant,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["payment_id"].as_i64(), Some(payment));
    let suggestions = e["suggestions"].to_string();
    assert!(
        !suggestions.contains(&format!("\"invoice_id\":{}", b.invoice_id)),
        "{suggestions}"
    );
    for text in &b.strings[..2] {
        assert!(!suggestions.contains(text.as_str()), "{suggestions}");
    }
}

crate::on_both_backends!(
    a_memo_naming_another_school_s_invoice,
    a_memo_naming_another_school_s_invoice_books_nothing_there
);
