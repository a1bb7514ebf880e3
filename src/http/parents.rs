//! Parents without passwords. An accountant issues a parent link (a capability: a random token
//! in a URL, printed on the fee notice with its QR code); the parent's browser opens a page
//! that shows nothing of the family and one button, whose POST exchanges the token for a
//! session cookie; with it the parent reads their family's invoices, fee lines, payment
//! options and receipts, and nothing else.

use super::extract::{Accountants, ApiJson, ApiPath, ApiQuery, Auth, Parents};
use super::fields::{tagged, Code, Date, OptionalText, Text};
use super::limits::ClientAddr;
use super::payments::{statement_of, InvoiceStatement};
use super::{AppState, List};
use crate::domain::access::{Caller, Role, Scope};
use crate::domain::fee::Channel;
use crate::domain::money::Vnd;
use crate::domain::parent_link::{self, ExpiryError};
use crate::domain::text::{clean_text, identifier, optional_text};
use crate::domain::words::vnd_in_words;
use crate::error::{Error, ErrorBody, Result};
use crate::store::fees::PaymentOption;
use crate::store::ledger::FeeLine;
use crate::store::parents::{FamilyStudent, LinkTarget, NewLink, Opened, ParentLink};
use crate::store::sessions::{NewSession, SessionKind};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_link, list_links))
        .routes(routes!(revoke_link))
        .routes(routes!(link_page, open_link))
        .routes(routes!(family))
        .routes(routes!(family_invoices))
        .routes(routes!(family_invoice))
        .routes(routes!(family_payment_options))
        .routes(routes!(family_receipt))
}

// ---------------------------------------------------------------------------------------------
// Issuing, listing and revoking links (the school's accountant).

/// A link to issue: for one student, or for every student of the school sharing a family key.
#[derive(Debug, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum IssueLink {
    Student(StudentLink),
    Family(FamilyLink),
}

/// The fields of both kinds of link (serde's `flatten` does not go with
/// `deny_unknown_fields`, so each struct lists them).
macro_rules! link_body {
    ($(#[$doc:meta])* $name:ident { $(#[$fdoc:meta])* $field:ident: $ty:ty }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(#[$fdoc])*
            pub $field: $ty,
            /// Whose link it is, e.g. "Mẹ", "Bà ngoại": each guardian gets their own, so one
            /// leaked link is revoked alone.
            pub label: Text<100>,
            /// The last day the link works; by default 31 August, the end of the school year
            /// (from August on, the coming one). From today to 400 days ahead.
            #[schema(value_type = Option<Date>)]
            pub expires_on: Option<String>,
            /// Who to ask once the link no longer works, e.g. "Phòng kế toán, 028 3829 xxxx".
            /// Shown with the school's name and nothing else.
            pub contact: Option<OptionalText<200>>,
            /// A link of the school to revoke in the same step (a re-issue).
            #[schema(minimum = 1)]
            pub replaces_link_id: Option<i64>,
        }

        impl $name {
            fn common(self) -> ($ty, LinkCommon) {
                (
                    self.$field,
                    LinkCommon {
                        label: self.label,
                        expires_on: self.expires_on,
                        contact: self.contact,
                        replaces_link_id: self.replaces_link_id,
                    },
                )
            }
        }
    };
}

link_body!(
    /// A link for one student.
    StudentLink {
        #[schema(minimum = 1)]
        student_id: i64
    }
);

link_body!(
    /// A link for a family: every student of the school with this family key.
    FamilyLink { family_key: Code<64> }
);

pub struct LinkCommon {
    pub label: Text<100>,
    pub expires_on: Option<String>,
    pub contact: Option<OptionalText<200>>,
    pub replaces_link_id: Option<i64>,
}

impl PartialSchema for IssueLink {
    fn schema() -> RefOr<Schema> {
        tagged(
            "for",
            [
                ("student", StudentLink::schema()),
                ("family", FamilyLink::schema()),
            ],
        )
    }
}

impl ToSchema for IssueLink {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        StudentLink::schemas(out);
        FamilyLink::schemas(out);
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedLink {
    #[serde(flatten)]
    pub link: ParentLink,
    /// The token, shown only in this response: only its hash is stored.
    pub token: String,
    /// What the notice prints: `FEERECON_PUBLIC_URL` + `/p/` + the token.
    pub url: String,
    /// The URL as a QR code, an SVG document to print beside it.
    pub qr_svg: String,
}

fn invalid(e: crate::domain::text::TextError) -> Error {
    Error::invalid("invalid_body", e.to_string())
}

/// The URL as a QR code (medium error correction, which survives a smudged printout), as SVG.
/// `qrcode` is kept because it is pure Rust, renders SVG without an image library, and is the
/// QR encoder most used on crates.io.
pub fn qr_svg(url: &str) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::Internal(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[utoipa::path(post, path = "/api/v1/schools/{school_id}/parent-links", tag = "parents", security(("bearer" = [])),
    params(("school_id" = i64, Path)), request_body = IssueLink,
    responses((status = 201, description = "Issued: the token, its URL and QR code, shown only now", body = IssuedLink),
        (status = 409, description = "No such student or family in the school (`unknown_student`, `unknown_family`), no unrevoked link to replace (`unknown_parent_link`), or an expiry in the past or over 400 days ahead (`invalid_expiry`)", body = ErrorBody)))]
async fn issue_link(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(school_id): ApiPath<i64>,
    ApiJson(body): ApiJson<IssueLink>,
) -> Result<(StatusCode, Json<IssuedLink>)> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    let (target, common) = match body {
        IssueLink::Student(b) => {
            let (id, common) = b.common();
            (LinkTarget::Student(id), common)
        }
        IssueLink::Family(b) => {
            let (key, common) = b.common();
            (
                LinkTarget::Family(identifier(&key, "family_key", 64).map_err(invalid)?),
                common,
            )
        }
    };
    let label = clean_text(&common.label, "label", 100).map_err(invalid)?;
    let contact = optional_text(common.contact.as_deref(), "contact", 200).map_err(invalid)?;
    let now = st.now();
    let today = parent_link::today(now);
    let requested = common
        .expires_on
        .as_deref()
        .map(|t| {
            chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .map_err(|_| Error::invalid("invalid_date", "expires_on is YYYY-MM-DD"))
        })
        .transpose()?;
    let last_day = parent_link::last_day(today, requested).map_err(|e| {
        Error::conflict(
            "invalid_expiry",
            match e {
                ExpiryError::Past => "expires_on is before today",
                ExpiryError::TooFar => "expires_on is more than 400 days ahead",
            },
        )
    })?;
    let (link, token) = st
        .store
        .issue_parent_link(
            &caller.actor(),
            school.id,
            NewLink {
                target,
                label,
                contact,
                expires_at: parent_link::expires_at(last_day),
                replaces_link_id: common.replaces_link_id,
            },
            now,
        )
        .await?;
    let url = format!("{}/p/{token}", st.sessions.origin);
    let qr_svg = qr_svg(&url)?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedLink {
            link,
            token,
            url,
            qr_svg,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    /// Only the links that open this student's data (theirs and their family's).
    #[param(minimum = 1)]
    pub student_id: Option<i64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub cursor: Option<String>,
}

/// Who has access: every link of the school with its state, never its token.
#[utoipa::path(get, path = "/api/v1/schools/{school_id}/parent-links", tag = "parents", security(("bearer" = [])),
    params(("school_id" = i64, Path), LinkQuery),
    responses((status = 200, body = List<ParentLink>)))]
async fn list_links(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath(school_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<LinkQuery>,
) -> Result<Json<List<ParentLink>>> {
    let page = super::extract::page(q.limit, &q.cursor)?;
    if q.student_id.is_some_and(|id| id < 1) {
        return Err(Error::BadRequest {
            code: "invalid_query",
            message: "student_id is a positive id".into(),
        });
    }
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(
        st.store
            .list_parent_links(school.id, q.student_id, page, st.now())
            .await?
            .into(),
    ))
}

/// Revokes one link; the sessions it opened end with it.
#[utoipa::path(delete, path = "/api/v1/schools/{school_id}/parent-links/{link_id}", tag = "parents", security(("bearer" = [])),
    params(("school_id" = i64, Path), ("link_id" = i64, Path)),
    responses((status = 200, description = "Revoked", body = ParentLink),
        (status = 409, description = "Already revoked (`parent_link_already_revoked`)", body = ErrorBody)))]
async fn revoke_link(
    State(st): State<AppState>,
    caller: Auth<Accountants>,
    ApiPath((school_id, id)): ApiPath<(i64, i64)>,
) -> Result<Json<ParentLink>> {
    let school = st.store.school_in_scope(&caller, school_id).await?;
    Ok(Json(
        st.store
            .revoke_parent_link(&caller.actor(), school.id, id, st.now())
            .await?,
    ))
}

// ---------------------------------------------------------------------------------------------
// Opening a link (anyone holding it).

/// The page behind every link, the same whatever the token: messaging apps, mail scanners and
/// link previews fetch links, so it names nobody, says nothing of whether the token is good
/// and uses nothing up. Its form posts back to the same URL.
const LINK_PAGE: &str = r#"<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>Học phí</title></head>
<body><main>
<h1>Học phí</h1>
<p>Đường dẫn này mở thông tin học phí của gia đình bạn. Đừng chia sẻ nó: ai có đường dẫn đều xem được.</p>
<form method="post"><button type="submit">Xem học phí</button></form>
</main></body></html>
"#;

/// Headers of every answer under `/p/`: nothing cached, no referrer sent on, not indexed, not
/// framed, no scripts.
fn private_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, super::pages::STRICT_POLICY),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
}

/// The link's page: no personal data and one button. A GET (or HEAD) reads nothing and writes
/// nothing.
#[utoipa::path(get, path = "/p/{token}", tag = "parents",
    params(("token" = String, Path, description = "The link's token; any text gets the same page")),
    responses((status = 200, description = "The same page for every token: no name, one button that posts back", content_type = "text/html", body = String,
        headers(("Referrer-Policy" = String), ("Cache-Control" = String), ("X-Robots-Tag" = String)))))]
async fn link_page(ApiPath(_token): ApiPath<String>) -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        LINK_PAGE,
    )
        .into_response();
    private_headers(response.headers_mut());
    response
}

/// Exchanges the link's token for a parent session in a cookie, then sends the browser to a
/// URL without the token.
#[utoipa::path(post, path = "/p/{token}", tag = "parents",
    params(("token" = String, Path, pattern = "^[A-Za-z0-9_-]{43}$", description = "The link's token")),
    responses(
        (status = 303, description = "Signed in: the session cookie is set, and the browser sent to `/api/v1/parent`",
            headers(("Location" = String), ("Set-Cookie" = String, description = "The session cookie: HttpOnly, SameSite=Strict, Path=/; `__Host-` and Secure over https"))),
        (status = 403, description = "Posted from another site (`cross_site_request`)", body = ErrorBody),
        (status = 404, description = "No such link (`link_not_found`)", body = ErrorBody),
        (status = 410, description = "The link expired or was revoked (`link_gone`): the message gives the school's name and contact, nothing else", body = ErrorBody),
        (status = 429, description = "Too many failed attempts from this address or at this link (`too_many_attempts`)", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds to wait")))))]
async fn open_link(
    State(st): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Response {
    let mut response = match open(&st, client, &headers, &token).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    private_headers(response.headers_mut());
    response
}

async fn open(
    st: &AppState,
    client: Option<Extension<ClientAddr>>,
    headers: &HeaderMap,
    token: &str,
) -> Result<Response> {
    if st.sessions.cross_site(headers) {
        return Err(Error::Refused {
            code: "cross_site_request",
            message: "open the link from its own page".into(),
        });
    }
    let ip = client
        .map(|Extension(ClientAddr(a))| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let prefix = parent_link::prefix(token);
    if let Some(wait) = st.link_limits.refused_for(ip, prefix) {
        return Err(Error::TooMany {
            retry_after: wait.as_secs().max(1),
        });
    }
    // Malformed text goes down the same path as a wrong token: hashed and looked up.
    let now = st.now();
    match st.store.open_parent_link(token, now).await? {
        Opened::Missing => {
            st.link_limits.fail(ip, prefix);
            Err(Error::not_found("link_not_found", "link"))
        }
        Opened::Gone {
            school_name,
            contact,
        } => {
            st.link_limits.fail(ip, prefix);
            let ask = match contact {
                Some(c) => format!("{school_name}: {c}"),
                None => school_name,
            };
            Err(Error::Gone {
                code: "link_gone",
                message: format!("this link no longer works; ask the school for a new one ({ask})"),
            })
        }
        Opened::Valid { link_id, .. } => {
            let ttl = st.sessions.parent_ttl;
            let (_, cookie) = st
                .store
                .start_session(
                    NewSession {
                        kind: SessionKind::ParentLink,
                        subject: format!("parent_link:{link_id}"),
                        role: Role::Parent,
                        scope: Scope::Family(link_id),
                        api_token_id: None,
                        parent_link_id: Some(link_id),
                        ttl,
                    },
                    now,
                    st.sessions.idle,
                )
                .await?;
            Ok((
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, HeaderValue::from_static("/api/v1/parent")),
                    (header::SET_COOKIE, st.sessions.set_cookie(&cookie, ttl)?),
                ],
            )
                .into_response())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What a parent reads, with the session their link opened.

fn link_of(caller: &Caller) -> Result<i64> {
    match caller.scope {
        Scope::Family(link) => Ok(link),
        _ => Err(Error::Forbidden),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Family {
    /// The students the link opens.
    pub students: Vec<FamilyStudent>,
}

/// The family's students.
#[utoipa::path(get, path = "/api/v1/parent", tag = "parents", security(("session" = [])),
    responses((status = 200, body = Family)))]
async fn family(State(st): State<AppState>, caller: Auth<Parents>) -> Result<Response> {
    let students = st
        .store
        .family_students(link_of(&caller)?, st.now())
        .await?;
    Ok(private(Json(Family { students })))
}

fn private(body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// The family's invoices, newest first, each with its lines: charges, caps, reductions.
#[utoipa::path(get, path = "/api/v1/parent/invoices", tag = "parents", security(("session" = [])),
    responses((status = 200, body = Vec<crate::store::invoices::Invoice>)))]
async fn family_invoices(State(st): State<AppState>, caller: Auth<Parents>) -> Result<Response> {
    let invoices = st
        .store
        .family_invoices(link_of(&caller)?, st.now())
        .await?;
    Ok(private(Json(invoices)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineBasis {
    pub line_no: i64,
    /// The legal basis of the line's fee item, in words (e.g. the resolution that sets its cap).
    pub legal_basis: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParentInvoice {
    /// The invoice with its lines, each payment to it with its fees and who bore them, and what
    /// the parent paid out.
    #[serde(flatten)]
    pub statement: InvoiceStatement,
    /// The legal basis of each line.
    pub bases: Vec<LineBasis>,
}

/// One invoice of the family: each line with its basis, cap and reductions, and the payments
/// to it with each fee, who charged it and who bore it. Another family's invoice is 404, as a
/// missing one.
#[utoipa::path(get, path = "/api/v1/parent/invoices/{invoice_id}", tag = "parents", security(("session" = [])),
    params(("invoice_id" = i64, Path)),
    responses((status = 200, body = ParentInvoice)))]
async fn family_invoice(
    State(st): State<AppState>,
    caller: Auth<Parents>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response> {
    let invoice = st
        .store
        .family_invoice(link_of(&caller)?, st.now(), id)
        .await?;
    let bases = st.store.legal_bases(invoice.id).await?;
    let lines: Vec<LineBasis> = invoice
        .lines
        .iter()
        .flatten()
        .map(|l| LineBasis {
            line_no: l.line_no,
            legal_basis: bases.get(&l.fee_item_id).cloned().flatten(),
        })
        .collect();
    let statement = statement_of(&st, invoice).await?;
    Ok(private(Json(ParentInvoice {
        statement,
        bases: lines,
    })))
}

/// How to pay one invoice of the family: every channel with the fee the parent would bear,
/// free options first.
#[utoipa::path(get, path = "/api/v1/parent/invoices/{invoice_id}/payment-options", tag = "parents", security(("session" = [])),
    params(("invoice_id" = i64, Path)),
    responses((status = 200, body = Vec<PaymentOption>)))]
async fn family_payment_options(
    State(st): State<AppState>,
    caller: Auth<Parents>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response> {
    let invoice = st
        .store
        .family_invoice(link_of(&caller)?, st.now(), id)
        .await?;
    let school = st.store.school_by_id(invoice.school_id).await?;
    Ok(private(Json(
        st.store.payment_options(&school, &invoice).await?,
    )))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParentReceiptInvoice {
    pub invoice_id: i64,
    pub student_id: i64,
    pub payment_code: String,
    pub period: String,
    pub student_code: String,
    pub student_name: String,
    pub class_name: String,
    /// What this payment paid on the invoice.
    #[schema(value_type = i64)]
    pub paid_here: Vnd,
    pub paid_here_formatted: String,
}

/// A receipt as the family sees it: their invoices only, no memo and no payer's name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParentReceipt {
    pub payment_id: i64,
    pub receipt_no: String,
    pub school_name: String,
    pub channel: Channel,
    /// `cash`, or who carried the money.
    pub provider: String,
    #[schema(value_type = i64)]
    pub amount: Vnd,
    pub amount_formatted: String,
    /// "Một triệu năm trăm nghìn đồng".
    pub amount_in_words: String,
    /// Asia/Ho_Chi_Minh.
    pub received_at_local: String,
    /// Each fee: who charged it, how it was computed, the amount and who bore it.
    pub fees: Vec<FeeLine>,
    pub no_fees_reason: Option<String>,
    /// Amount plus the fees the parent bore.
    #[schema(value_type = i64)]
    pub parent_outlay: Vnd,
    pub parent_outlay_formatted: String,
    pub reverses_payment_id: Option<i64>,
    pub reversed_by_payment_id: Option<i64>,
    pub invoices: Vec<ParentReceiptInvoice>,
}

/// The receipt of a payment to the family's invoices. A payment to no invoice of the family
/// is 404, as a missing one.
#[utoipa::path(get, path = "/api/v1/parent/payments/{payment_id}/receipt", tag = "parents", security(("session" = [])),
    params(("payment_id" = i64, Path)),
    responses((status = 200, body = ParentReceipt)))]
async fn family_receipt(
    State(st): State<AppState>,
    caller: Auth<Parents>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response> {
    let link = link_of(&caller)?;
    let now = st.now();
    let (payment, ids) = st.store.family_payment(link, now, id).await?;
    let school = st.store.school_by_id(payment.school_id).await?;
    let mut invoices = Vec::new();
    for invoice_id in ids {
        let inv = st.store.invoice_in_school(school.id, invoice_id).await?;
        let here: i64 = payment
            .allocations
            .iter()
            .filter(|a| a.invoice_id == invoice_id)
            .map(|a| a.amount.dong())
            .sum();
        let here = Vnd::new(here).unwrap_or_default();
        invoices.push(ParentReceiptInvoice {
            invoice_id,
            student_id: inv.student_id,
            payment_code: inv.payment_code,
            period: inv.period,
            student_code: inv.student_code,
            student_name: inv.student_name,
            class_name: inv.class_name,
            paid_here: here,
            paid_here_formatted: here.formatted(),
        });
    }
    Ok(private(Json(ParentReceipt {
        payment_id: payment.id,
        receipt_no: payment.receipt_no,
        school_name: school.name,
        channel: payment.channel,
        provider: payment.provider,
        amount: payment.amount,
        amount_formatted: payment.amount_formatted,
        amount_in_words: vnd_in_words(payment.amount.dong()),
        received_at_local: payment.received_at_local,
        fees: payment.fees,
        no_fees_reason: payment.no_fees_reason,
        parent_outlay: payment.parent_outlay,
        parent_outlay_formatted: payment.parent_outlay.formatted(),
        reverses_payment_id: payment.reverses_payment_id,
        reversed_by_payment_id: payment.reversed_by_payment_id,
        invoices,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_of_the_url() {
        let svg = qr_svg("https://hocphi.example.vn/p/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .expect("svg");
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }

    #[test]
    fn the_link_page_names_nobody_and_holds_no_token() {
        assert!(!LINK_PAGE.contains("{{") && !LINK_PAGE.contains("action="));
        assert!(LINK_PAGE.contains("<title>Học phí</title>"));
    }
}
