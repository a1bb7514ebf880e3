//! One error type for the library, and the one place that turns it into an HTTP status and a
//! `{"error":{"code","message"}}` body. Internals are logged, never sent.

use crate::domain::import::{ImportError, RowError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a bearer API token is required")]
    Unauthenticated,
    #[error("this role may not do that")]
    Forbidden,
    /// 403 for a reason other than the role: a cookie session's request without its CSRF
    /// token, or one made from another site.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// 410: what the path named existed and is over (an expired or revoked parent link).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// 429: too many failed attempts; retry after this many seconds.
    #[error("too many failed attempts; retry in {retry_after} seconds")]
    TooMany { retry_after: u64 },
    /// Also answers for objects outside the caller's scope, so their existence does not leak.
    #[error("{what} not found")]
    NotFound {
        code: &'static str,
        what: &'static str,
    },
    /// Not found, with why in words: a path segment that can name nothing, e.g. a mistyped
    /// payment code.
    #[error("{message}")]
    NoSuch { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("migration error")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the service is busy; retry shortly")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// 422 means the request is invalid in itself, whatever the service holds: what the OpenAPI
// document's schemas state (and a few rules across fields they cannot). A well-formed request
// that does not fit what the service holds is a conflict (409): it names in its body something
// that is not there (404 is for what the path names), or it does not fit the books as they
// stand or the clock; the same request may succeed another time. These rules are raised as
// `Error::invalid` where they are checked, across the store; their status is decided here.
const DEPENDS_ON_WHAT_IS_HELD: &[&str] = &[
    // Named in the body, and not there (or outside the caller's scope).
    "unknown_department",
    "unknown_school",
    "unknown_student",
    "unknown_invoice",
    "unknown_fee_item",
    "unknown_provider_account",
    // Balances and credit.
    "allocation_exceeds_balance",
    "allocation_exceeds_payment",
    "refund_exceeds_credit",
    "not_same_family",
    "not_cash",
    // Invoices already issued.
    "replaces_open_invoice",
    "replaces_other_student",
    "cadence_exceeded",
    // The review queue's suggestions.
    "not_suggested",
    // Accounts as configured.
    "account_unchanged",
    "ambiguous_provider_account",
    "no_receiving_account",
    "pull_account_mismatch",
    "pull_not_supported",
    "missing_api_key",
    // The clock: a day still under way.
    "day_not_over",
];

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, what: &'static str) -> Self {
        Self::NotFound { code, what }
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Error::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Error::Refused { code, .. } => (StatusCode::FORBIDDEN, code),
            Error::Gone { code, .. } => (StatusCode::GONE, code),
            Error::TooMany { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Error::NotFound { code, .. } | Error::NoSuch { code, .. } => {
                (StatusCode::NOT_FOUND, code)
            }
            Error::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Error::Invalid { code, .. } if DEPENDS_ON_WHAT_IS_HELD.contains(code) => {
                (StatusCode::CONFLICT, code)
            }
            Error::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Error::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Error::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::Import(e) => match e {
                ImportError::Empty => (StatusCode::UNPROCESSABLE_ENTITY, "import_empty"),
                ImportError::Encoding { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "import_encoding")
                }
                ImportError::Header(_) => (StatusCode::UNPROCESSABLE_ENTITY, "import_header"),
                ImportError::TooManyRows => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "import_too_many_rows")
                }
                ImportError::Rows(_) => (StatusCode::UNPROCESSABLE_ENTITY, "import_rejected"),
            },
            // A unique key another request won a race for is a conflict, not a failure.
            Error::Db(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                (StatusCode::CONFLICT, "conflict")
            }
            Error::Db(sqlx::Error::PoolTimedOut) | Error::Busy => {
                (StatusCode::SERVICE_UNAVAILABLE, "busy")
            }
            Error::Db(_) | Error::Migrate(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }

    fn public_message(&self) -> String {
        match self {
            Error::Db(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                "the request conflicts with a record another request created; retry".into()
            }
            Error::Db(sqlx::Error::PoolTimedOut) => "the service is busy; retry shortly".into(),
            Error::Db(_) | Error::Migrate(_) | Error::Internal(_) => {
                "internal error; it has been logged".into()
            }
            other => other.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, stable: e.g. `invoice_not_found`, `import_rejected`.
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// For `import_rejected`: every bad row with its line number and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<RowError>>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            // A database error's Debug carries the failing row, which can hold names or memos:
            // log the SQLSTATE and message only.
            match &self {
                Error::Db(sqlx::Error::Database(d)) => {
                    tracing::error!(code = ?d.code(), message = d.message(), "request failed: database error")
                }
                other => {
                    tracing::error!(error = %other, source = ?std::error::Error::source(other).map(|s| s.to_string()), "request failed")
                }
            }
        }
        let rows = match &self {
            Error::Import(ImportError::Rows(rows)) => Some(rows.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message: self.public_message(),
                rows,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if let Error::TooMany { retry_after } = &self {
            if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.max(&1).to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
