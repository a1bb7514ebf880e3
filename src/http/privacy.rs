//! Personal data on the way out: every answer that gives a person personal data is written to
//! the processing log (who, when, which route, which students), and auditors get students
//! under a pseudonym instead of names, codes, payer names and memos.
//!
//! One layer on the API's routes does both, after the handler, so a new route is covered
//! without anyone remembering it: it reads the answer, and an answer holding a field of
//! [`PERSONAL`] (or one a handler marked with [`Disclosed`], for HTML and CSV) is logged, with
//! the students it names (`student_id` fields, and the `id` of a student object). The log is
//! written before the answer leaves, in group commits, and an answer whose log write fails is
//! not sent (500): no personal data goes out unrecorded. Webhooks are not behind this layer;
//! they read no personal data for anyone.

use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, Auth, DepartmentReaders};
use super::fields::Reason;
use super::{AppState, List};
use crate::domain::access::{Caller, Role, Scope};
use crate::domain::pseudonym::pseudonym;
use crate::error::{Error, ErrorBody, Result};
use crate::store::processing::{Actor, LogEntry, LogFilter, Read};
use crate::store::subject::{Erasure, PersonalData};
use crate::store::Store;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(processing_log))
        .routes(routes!(open_student))
        .routes(routes!(open_payment))
        .routes(routes!(personal_data))
        .routes(routes!(erase_student))
}

/// Fields that hold personal data: a student's name, code and family key, a payer's name, a
/// memo or a bank line's counterparty, an archived delivery's body, a guardian's contact.
pub const PERSONAL: &[&str] = &[
    "full_name",
    "student_name",
    "student_code",
    "family_key",
    "payer_name",
    "memo",
    "counterparty",
    "body_base64",
    "contact",
];

/// Where the caller extractor leaves the caller, for the layer to read after the handler.
#[derive(Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<Caller>>);

impl CallerSlot {
    pub fn set(&self, caller: Caller) {
        let _ = self.0.set(caller);
    }
}

/// Put in an answer's extensions by a handler whose answer is not JSON (a printable receipt, a
/// CSV report), or that opens a record with a reason: the students it holds.
#[derive(Clone, Debug, Default)]
pub struct Disclosed {
    pub students: Vec<i64>,
    pub reason: Option<String>,
}

impl Disclosed {
    pub fn students(students: impl IntoIterator<Item = i64>) -> Self {
        Self {
            students: students.into_iter().collect(),
            reason: None,
        }
    }

    /// `answer` with this disclosure attached.
    pub fn attach(self, answer: impl IntoResponse) -> Response {
        let mut res = answer.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// What an answer holds, as far as the log goes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub personal: bool,
    pub students: BTreeSet<i64>,
}

/// Finds personal fields and the students an answer names.
pub fn scan(value: &Value, out: &mut Scan) {
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                if PERSONAL.contains(&k.as_str()) && v.as_str().is_some_and(|s| !s.is_empty()) {
                    out.personal = true;
                }
                if k == "student_id" {
                    if let Some(id) = v.as_i64() {
                        out.students.insert(id);
                    }
                }
            }
            // A student object: its own id.
            if fields.contains_key("full_name") && fields.contains_key("student_code") {
                if let Some(id) = fields.get("id").and_then(Value::as_i64) {
                    out.students.insert(id);
                }
            }
            fields.values().for_each(|v| scan(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| scan(v, out)),
        _ => {}
    }
}

/// The largest answer the layer reads back (the largest list page is far smaller).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The layer: see the module's documentation.
pub async fn layer(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let res = next.run(req).await;
    let (Some(caller), Some(route)) = (slot.0.get().copied(), route) else {
        return res;
    };
    if !res.status().is_success() {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let marked = parts.extensions.remove::<Disclosed>();
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let mut value = None;
    let (body, seen) = if json {
        let bytes = match axum::body::to_bytes(body, MAX_ANSWER).await {
            Ok(b) => b,
            Err(_) => return Error::Internal("answer unreadable".into()).into_response(),
        };
        let mut found = Scan::default();
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            return Error::Internal("answer not JSON".into()).into_response();
        };
        scan(&v, &mut found);
        value = Some(v);
        (axum::body::Body::from(bytes), found)
    } else {
        (body, Scan::default())
    };
    let (personal, students, reason) = match marked {
        Some(d) => {
            let mut s = seen.students;
            s.extend(d.students);
            (true, s, d.reason)
        }
        None => (seen.personal, seen.students, None),
    };
    if !personal {
        return Response::from_parts(parts, body);
    }
    // A record opened with a reason is answered in the clear; every other answer to an auditor
    // names students by pseudonym.
    let masked = match (Pseudonyms::for_caller(&st, &caller), &reason, value) {
        (Some(p), None, Some(mut v)) => {
            p.mask(&mut v);
            match serde_json::to_vec(&v) {
                Ok(b) => Some(b),
                Err(_) => return Error::Internal("answer unwritable".into()).into_response(),
            }
        }
        _ => None,
    };
    let read = Read {
        at: st.now(),
        session_id: caller.session_id,
        api_token_id: (caller.role != Role::Parent && caller.token_id > 0)
            .then_some(caller.token_id),
        parent_link_id: (caller.role == Role::Parent).then_some(caller.token_id),
        role: caller.role,
        method,
        route,
        status: parts.status.as_u16(),
        students: students.into_iter().collect(),
        reason,
        request_id,
    };
    if let Err(e) = st.processing.record(read).await {
        return e.into_response();
    }
    match masked {
        Some(b) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(b))
        }
        None => Response::from_parts(parts, body),
    }
}

/// Students as an auditor sees them: a pseudonym per student and department, the class and the
/// amounts; no name, code, family key, payer's name, memo, contact or archived body.
pub struct Pseudonyms {
    key: [u8; 32],
    department: i64,
}

/// Where a name was shown of no student the answer identifies (none is known).
const UNKNOWN: &str = "HS-????????";

impl Pseudonyms {
    /// For an auditor; `None` for everyone else.
    pub fn for_caller(st: &AppState, caller: &Caller) -> Option<Self> {
        match (caller.role, caller.scope) {
            (Role::Auditor, Scope::Department(department)) => Some(Self {
                key: st.sealer.pseudonym_key(),
                department,
            }),
            _ => None,
        }
    }

    pub fn of(&self, student_id: i64) -> String {
        pseudonym(&self.key, self.department, student_id)
    }

    /// Replaces the personal fields of an answer.
    pub fn mask(&self, value: &mut Value) {
        match value {
            Value::Object(fields) => {
                let student = fields
                    .get("student_id")
                    .and_then(Value::as_i64)
                    .or_else(|| {
                        (fields.contains_key("full_name") && fields.contains_key("student_code"))
                            .then(|| fields.get("id").and_then(Value::as_i64))
                            .flatten()
                    });
                let archived = fields.contains_key("body_base64");
                for (k, v) in fields.iter_mut() {
                    match k.as_str() {
                        "full_name" | "student_name" | "student_code" if v.is_string() => {
                            *v = Value::String(
                                student.map_or_else(|| UNKNOWN.to_string(), |s| self.of(s)),
                            )
                        }
                        "family_key" | "payer_name" | "memo" | "counterparty" | "contact" => {
                            *v = Value::Null
                        }
                        "body_base64" => *v = Value::String(String::new()),
                        "query" if archived => *v = Value::String(String::new()),
                        _ => self.mask(v),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask(v)),
            _ => {}
        }
    }
}

type Job = (Read, oneshot::Sender<bool>);

/// The processing log's writer: reads queued by requests in flight are written together, one
/// transaction per batch, and each request waits for its batch's commit.
#[derive(Clone)]
pub struct ProcessingLog {
    store: Store,
    queue: Arc<OnceLock<mpsc::Sender<Job>>>,
}

/// Reads per transaction, at most.
const BATCH: usize = 256;

impl ProcessingLog {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            queue: Arc::default(),
        }
    }

    /// Writes `read`; returns once it is committed.
    pub async fn record(&self, read: Read) -> Result<()> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * BATCH);
            tokio::spawn(write_batches(self.store.clone(), rx));
            tx
        });
        let (done, committed) = oneshot::channel();
        queue
            .send((read, done))
            .await
            .map_err(|_| Error::Internal("the processing log's writer stopped".into()))?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(Error::Internal("the processing log was not written".into())),
        }
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut jobs, BATCH).await > 0 {
        let (reads, waiting): (Vec<Read>, Vec<oneshot::Sender<bool>>) = jobs.drain(..).unzip();
        let ok = match store.record_reads(&reads).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, reads = reads.len(), "processing log write failed; those answers were not sent");
                false
            }
        };
        for w in waiting {
            let _ = w.send(ok);
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only reads whose answer held this student's data.
    #[param(minimum = 1)]
    pub student_id: Option<i64>,
    /// Only reads by `token:<id>` (an API token and every session opened with it),
    /// `session:<id>` (one cookie session) or `parent_link:<id>` (a link's sessions).
    #[param(pattern = "^(token|session|parent_link):[1-9][0-9]{0,17}$")]
    pub actor: Option<String>,
    /// From this instant, inclusive (RFC 3339; default: the beginning).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Up to this instant, exclusive (RFC 3339; default: now and after). Before `from`, the
    /// list is empty.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub cursor: Option<String>,
}

fn instant(text: Option<&str>, field: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(t.trim())
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| Error::BadRequest {
                code: "invalid_query",
                message: format!("{field} is an RFC 3339 date-time, e.g. 2025-09-01T00:00:00Z"),
            })
    })
    .transpose()
}

#[utoipa::path(get, path = "/api/v1/processing-log", tag = "privacy", security(("bearer" = []), ("session" = [])),
    params(LogQuery),
    responses((status = 200, description = "The reads of personal data that match, oldest first: who (token or session, and role), when, which route, which students. `student_id` answers \"who saw student X between from and to\", `actor` \"whose data did this token or session see\".", body = List<LogEntry>),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn processing_log(
    State(st): State<AppState>,
    _caller: Auth<Admins>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<List<LogEntry>>> {
    let bad = |message: &str| Error::BadRequest {
        code: "invalid_query",
        message: message.into(),
    };
    if q.student_id.is_some_and(|s| s < 1) {
        return Err(bad("student_id is a student's id"));
    }
    let actor = match q.actor.as_deref() {
        None => None,
        Some(a) => Some(
            Actor::parse(a)
                .ok_or_else(|| bad("actor is token:<id>, session:<id> or parent_link:<id>"))?,
        ),
    };
    let from = instant(q.from.as_deref(), "from")?.unwrap_or(chrono::DateTime::UNIX_EPOCH);
    // 9999-12-31T23:59:59Z: after every time stored.
    let to = instant(q.to.as_deref(), "to")?.unwrap_or_else(|| {
        chrono::DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(chrono::DateTime::UNIX_EPOCH)
    });
    let page = super::extract::page(q.limit, &q.cursor)?;
    let filter = LogFilter {
        student_id: q.student_id,
        actor,
        from,
        to,
    };
    Ok(Json(st.store.processing_log(&filter, page).await?.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenIn {
    /// Why the record is opened in the clear; kept in the processing log and the audit chain.
    pub reason: Reason<500>,
}

fn reason(body: &OpenIn) -> Result<String> {
    let invalid = |m: String| Error::invalid("invalid_reason", m);
    if body.reason.chars().count() < 10 {
        return Err(invalid("reason is 10 to 500 characters".into()));
    }
    crate::domain::text::clean_text(&body.reason, "reason", 500).map_err(|e| invalid(e.to_string()))
}

/// An auditor opens one student in the clear, saying why: the answer has the name, code and
/// family key, and the processing log and the school's audit chain keep the reason.
#[utoipa::path(post, path = "/api/v1/schools/{school_id}/students/{student_id}/open", tag = "privacy", security(("bearer" = []), ("session" = [])),
    params(("school_id" = i64, Path), ("student_id" = i64, Path)), request_body = OpenIn,
    responses((status = 200, body = crate::store::students::Student), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn open_student(
    State(st): State<AppState>,
    caller: Auth<DepartmentReaders>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<OpenIn>,
) -> Result<Response> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let reason = reason(&body)?;
    let student = st.store.student_in_school(school.id, id).await?;
    st.store
        .audit_opening(&caller.actor(), school.id, "student", id, &reason)
        .await?;
    Ok(Disclosed {
        students: vec![id],
        reason: Some(reason),
    }
    .attach(Json(student)))
}

/// An auditor opens one payment in the clear, saying why: the answer has the payer's name and
/// the memo, and the processing log and the school's audit chain keep the reason.
#[utoipa::path(post, path = "/api/v1/schools/{school_id}/payments/{payment_id}/open", tag = "privacy", security(("bearer" = []), ("session" = [])),
    params(("school_id" = i64, Path), ("payment_id" = i64, Path)), request_body = OpenIn,
    responses((status = 200, body = crate::store::ledger::Payment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn open_payment(
    State(st): State<AppState>,
    caller: Auth<DepartmentReaders>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<OpenIn>,
) -> Result<Response> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let reason = reason(&body)?;
    let payment = st.store.payment_in_school(school.id, id).await?;
    st.store
        .audit_opening(&caller.actor(), school.id, "payment", id, &reason)
        .await?;
    Ok(Disclosed {
        students: payment.allocations.iter().map(|a| a.student_id).collect(),
        reason: Some(reason),
    }
    .attach(Json(payment)))
}

/// Everything held about a student, as JSON: the subject's right to a copy (Law 91/2025
/// Art. 4). Admin only.
#[utoipa::path(get, path = "/api/v1/schools/{school_id}/students/{student_id}/personal-data", tag = "privacy", security(("bearer" = []), ("session" = [])),
    params(("school_id" = i64, Path), ("student_id" = i64, Path)),
    responses((status = 200, description = "The student, their invoices, the payments allocated to them or naming them, their parent links, the archived deliveries and bank statement lines of those payments or naming them, and who read their data", body = PersonalData),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn personal_data(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<PersonalData>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(st.store.personal_data(school.id, id, st.now()).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseIn {
    /// Why: the request it answers (who asked, when). Kept in the audit chain, so it names
    /// nobody.
    pub reason: Reason<500>,
}

/// Erases a student's personal data: their name and code, and the payer names and memos of
/// their payments, the bodies of their archived deliveries and the memos of their bank lines,
/// become their pseudonym. Amounts, receipts, allocations and audit records stay, so the books
/// add up and the audit chain verifies. A second erasure changes nothing. Admin only.
#[utoipa::path(post, path = "/api/v1/schools/{school_id}/students/{student_id}/erase", tag = "privacy", security(("bearer" = []), ("session" = [])),
    params(("school_id" = i64, Path), ("student_id" = i64, Path)), request_body = EraseIn,
    responses((status = 200, description = "Erased now, or before (`already_erased`)", body = Erasure),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn erase_student(
    State(st): State<AppState>,
    caller: Auth<Admins>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<EraseIn>,
) -> Result<Json<Erasure>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let reason = reason(&OpenIn {
        reason: body.reason,
    })?;
    let p = pseudonym(&st.sealer.pseudonym_key(), school.department_id, id);
    Ok(Json(
        st.store
            .erase_student(&caller.actor(), school.id, id, &p, &reason, st.now())
            .await?,
    ))
}
