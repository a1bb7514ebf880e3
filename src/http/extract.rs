//! Extractors that answer bad input in our error format, and the authenticated caller.

use crate::domain::access::{Caller, Role};
use crate::error::Error;
use crate::http::AppState;
use crate::store::Page;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

/// JSON body; malformed JSON is 400, well-formed but wrong (unknown field, wrong type) is 422,
/// over the body limit is 413.
///
/// A whole number written with a fraction (`25832.0`) is read as the integer it is, as JSON
/// Schema counts it (an `integer` schema accepts `1.0`): within ±2^53, where every integer has
/// one exact float. `1.5` is still refused wherever an integer is expected, and money stays
/// integer arithmetic throughout.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let mut value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(rej) => return Err(json_rejection(rej)),
        };
        whole_floats_as_integers(&mut value);
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let message = if path == "." {
                    format!("Failed to deserialize the JSON body into the target type: {inner}")
                } else {
                    format!(
                        "Failed to deserialize the JSON body into the target type: {path}: {inner}"
                    )
                };
                Error::invalid("invalid_body", message)
            })
    }
}

/// 2^53: up to here every integer is exactly one float, so `25832.0` can only mean 25832.
const EXACT_FLOAT_INTEGERS: f64 = 9_007_199_254_740_992.0;

fn whole_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() <= EXACT_FLOAT_INTEGERS {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_floats_as_integers),
        _ => {}
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

/// Path parameters. A segment that is not what the route takes (`/schools/abc`, `/schools/None`)
/// names no resource, so it is answered 404 like any other missing one, not 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_: PathRejection| Error::not_found("not_found", "resource"))
    }
}

/// Query parameters; one that is unknown or not of its type is 400. As in bodies, a whole number
/// written with a fraction (`3.0`) is read as the integer it is.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), query::Value(v.into_owned())));
        serde_path_to_error::deserialize(serde::de::value::MapDeserializer::new(pairs))
            .map(ApiQuery)
            .map_err(
                |e: serde_path_to_error::Error<serde::de::value::Error>| Error::BadRequest {
                    code: "invalid_query",
                    message: format!("Failed to deserialize query string: {e}"),
                },
            )
    }
}

/// A query parameter's text, read as the type its field asks for.
mod query {
    use serde::de::value::{Error, StringDeserializer};
    use serde::de::{self, IntoDeserializer, Visitor};

    /// `3.0` is the integer 3, as JSON Schema counts it: the text without its zero fraction.
    pub fn whole(text: &str) -> &str {
        match text.split_once('.') {
            Some((int, fraction))
                if !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') =>
            {
                int
            }
            _ => text,
        }
    }

    pub struct Value(pub String);

    impl Value {
        fn integer<N: std::str::FromStr>(&self) -> Result<N, Error> {
            let t = self.0.as_str();
            whole(t)
                .parse()
                .map_err(|_| de::Error::custom(format!("{t:?} is not an integer")))
        }
    }

    impl<'de> IntoDeserializer<'de, Error> for Value {
        type Deserializer = Self;
        fn into_deserializer(self) -> Self {
            self
        }
    }

    macro_rules! integers {
        ($($method:ident => $visit:ident),+) => {$(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.$visit(self.integer()?)
            }
        )+};
    }

    impl<'de> de::Deserializer<'de> for Value {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_string(self.0)
        }

        fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.as_str() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                other => Err(de::Error::custom(format!("{other:?} is not true or false"))),
            }
        }

        integers!(
            deserialize_i8 => visit_i8, deserialize_i16 => visit_i16,
            deserialize_i32 => visit_i32, deserialize_i64 => visit_i64,
            deserialize_u8 => visit_u8, deserialize_u16 => visit_u16,
            deserialize_u32 => visit_u32, deserialize_u64 => visit_u64
        );

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_some(self)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            let text: StringDeserializer<Error> = self.0.into_deserializer();
            de::Deserializer::deserialize_enum(text, name, variants, visitor)
        }

        serde::forward_to_deserialize_any! {
            f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
            map struct identifier ignored_any
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    /// A bearer token when the request has an `Authorization` header (as integrations send);
    /// otherwise the session of its cookie, with the CSRF checks of `session::authenticate`.
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Error> {
        let caller = authenticate(parts, st).await?;
        // For the processing log, which reads it after the handler.
        if let Some(slot) = parts.extensions.get::<super::privacy::CallerSlot>() {
            slot.set(caller);
        }
        Ok(caller)
    }
}

async fn authenticate(parts: &mut Parts, st: &AppState) -> Result<Caller, Error> {
    if parts.headers.get(header::AUTHORIZATION).is_none() {
        if let Some(cookie) = st.sessions.cookie(&parts.headers) {
            let cookie = cookie.to_string();
            return Ok(super::session::authenticate(parts, st, &cookie)
                .await?
                .caller);
        }
    }
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
        // A parent never holds an API token; were one stored, it would open nothing.
        .filter(|c| c.role != Role::Parent)
        .ok_or(Error::Unauthenticated)
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
    /// A parent, with the session their link opened: their family's students, invoices,
    /// payment options and receipts.
    Parents = [Parent];
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
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[param(value_type = Option<i64>, minimum = 0)]
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
            Some(c) => query::whole(c)
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
