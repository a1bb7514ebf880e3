//! Extractors that answer bad input in our error format, and the authenticated caller.

use crate::domain::access::{Caller, Role};
use crate::error::Error;
use crate::http::AppState;
use crate::store::Page;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

/// JSON body; malformed JSON is 400, well-formed but wrong (unknown field, wrong type) is 422,
/// over the body limit is 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

pub const JSON_LIMIT: usize = 1024 * 1024;

fn json_rejection(rej: JsonRejection) -> Error {
    match rej.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge { limit: JSON_LIMIT },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType {
            message: "send the body as application/json".into(),
        },
        StatusCode::UNPROCESSABLE_ENTITY => Error::invalid("invalid_body", rej.body_text()),
        _ => Error::BadRequest {
            code: "malformed_json",
            message: rej.body_text(),
        },
    }
}

pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| Error::BadRequest {
                code: "invalid_path",
                message: e.body_text(),
            })
    }
}

pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| Error::BadRequest {
                code: "invalid_query",
                message: e.body_text(),
            })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Error> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(Error::Unauthenticated)?;
        st.store
            .caller_for_token(token)
            .await?
            .ok_or(Error::Unauthenticated)
    }
}

/// 403 unless the caller has one of `roles`.
pub fn require(caller: &Caller, roles: &[Role]) -> Result<(), Error> {
    if roles.contains(&caller.role) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// Who may call an endpoint: its roles, in one place. Each handler names one set in its
/// [`Auth`] argument, so a route's access is read off its signature.
pub trait RoleSet: Send + Sync + 'static {
    const ROLES: &'static [Role];
}

macro_rules! role_sets {
    ($($(#[$doc:meta])* $name:ident = [$($role:ident),+];)+) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl RoleSet for $name {
                const ROLES: &'static [Role] = &[$(Role::$role),+];
            }
        )+
    };
}

role_sets! {
    /// The installation's operators: departments, schools, tokens, senders' accounts.
    Admins = [Admin];
    /// Who changes a school's books: invoices, students, corrections, reconciliation.
    Accountants = [Admin, Accountant];
    /// Who takes cash at the school office.
    CashDesk = [Admin, Accountant, Cashier];
    /// Everyone who works in or over a school may read its students, invoices, payments,
    /// receipts and catalog.
    Readers = [Admin, Accountant, Cashier, Auditor];
    /// Who reads how a school's money is reconciled: the review queue with its memos, days,
    /// reports, receiving accounts, senders' accounts and deliveries, pulls, fee schedules.
    /// Not the cashier.
    Overseers = [Admin, Accountant, Auditor];
    /// Who reads across a department: departments, audit verification.
    DepartmentReaders = [Admin, Auditor];
}

/// An authenticated caller whose role is in `R`: 401 without a known token, 403 for another
/// role.
pub struct Auth<R: RoleSet>(pub Caller, std::marker::PhantomData<R>);

impl<R: RoleSet> std::ops::Deref for Auth<R> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<R: RoleSet> FromRequestParts<AppState> for Auth<R> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Error> {
        let caller = Caller::from_request_parts(parts, st).await?;
        require(&caller, R::ROLES)?;
        Ok(Auth(caller, std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, Error> {
        page(self.limit, &self.cursor)
    }
}

/// Checks a `limit` and `cursor` pair of query parameters.
pub fn page(limit: Option<i64>, cursor: &Option<String>) -> Result<Page, Error> {
    {
        let limit = limit.unwrap_or(Page::DEFAULT_LIMIT);
        if !(1..=Page::MAX_LIMIT).contains(&limit) {
            return Err(Error::BadRequest {
                code: "invalid_limit",
                message: format!("limit is 1 to {}", Page::MAX_LIMIT),
            });
        }
        let after = match cursor {
            None => 0,
            Some(c) => c
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or(Error::BadRequest {
                    code: "invalid_cursor",
                    message: "cursor is the next_cursor of a previous page".into(),
                })?,
        };
        Ok(Page { after, limit })
    }
}

/// A raw body (an uploaded file) up to the route's limit; over it is 413 in our format.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(JSON_LIMIT);
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge { limit },
                _ => Error::BadRequest {
                    code: "unreadable_body",
                    message: e.body_text(),
                },
            })
    }
}

/// The body limit of a route, put in the request's extensions so errors can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);
