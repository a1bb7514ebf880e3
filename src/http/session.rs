//! Sessions in a cookie, for browsers: a staff member exchanges an API token for one
//! (`POST /api/v1/session`), a parent their link (`POST /p/{token}`); an OpenID Connect sign-in
//! will start the same kind. Requests with `Authorization: Bearer` are unchanged and never read
//! the cookie.
//!
//! The cookie is `__Host-feerecon_session` (HttpOnly, Secure, Path=/, SameSite=Strict) when the
//! public URL is https. Whether the service is reached over https is configuration
//! (`FEERECON_PUBLIC_URL`), not a request header: a header can be forged where no proxy strips
//! it. Over http (a service on the loopback address only) the cookie is `feerecon_session`
//! without Secure, since browsers refuse a `__Host-` cookie that is not Secure.
//!
//! CSRF: every request of a cookie session that is not GET or HEAD carries the session's CSRF
//! token in `X-CSRF-Token` (a synchronizer token, returned at sign-in and by `GET
//! /api/v1/session`), and is refused when its `Origin` is not the public URL's or its
//! `Sec-Fetch-Site` says another site. The token is an HMAC of the cookie's value, so it is
//! stored nowhere, belongs to one session and dies with it.

use super::extract::ApiJson;
use super::AppState;
use crate::domain::access::{Caller, Role};
use crate::error::{Error, ErrorBody, Result};
use crate::store::sessions::{Found, NewSession, SessionInfo, SessionKind};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const CSRF_HEADER: &str = "x-csrf-token";

/// How sessions are kept, from the configuration (`config::SessionConfig`).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The public URL's origin (`https://host[:port]`), without a trailing slash.
    pub origin: String,
    /// Whether the service is reached over https: the cookie is then `__Host-` and Secure.
    pub secure: bool,
    /// Longest a staff session lasts.
    pub staff_ttl: chrono::Duration,
    /// Longest a parent session lasts.
    pub parent_ttl: chrono::Duration,
    /// Longest a session lasts unused.
    pub idle: chrono::Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self::for_url("http://127.0.0.1:8080").unwrap_or_else(|_| unreachable!("a valid URL"))
    }
}

impl SessionSettings {
    /// Settings for a service reached at `url`: https anywhere, or http on a loopback address.
    pub fn for_url(url: &str) -> std::result::Result<Self, String> {
        let url = url.trim().trim_end_matches('/');
        let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("must start with https:// (or http:// on a loopback address)".into());
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.contains('@') {
            return Err("names no host".into());
        }
        if rest.contains('/') {
            return Err("is an origin only: scheme, host and port, no path".into());
        }
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let loopback = matches!(name, "localhost" | "[::1]") || name.starts_with("127.");
        if !secure && !loopback {
            return Err(
                "must be https:// unless the host is a loopback address (localhost, 127.x, [::1])"
                    .into(),
            );
        }
        Ok(Self {
            origin: format!("{}://{}", if secure { "https" } else { "http" }, host),
            secure,
            staff_ttl: chrono::Duration::hours(8),
            parent_ttl: chrono::Duration::hours(2),
            idle: chrono::Duration::minutes(30),
        })
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-feerecon_session"
        } else {
            "feerecon_session"
        }
    }

    /// The `Set-Cookie` value that holds `token` for `ttl`.
    pub fn set_cookie(&self, token: &str, ttl: chrono::Duration) -> Result<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.cookie_name(),
            ttl.num_seconds().max(1)
        ))
        .map_err(|_| Error::Internal("cookie value".into()))
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            self.cookie_name()
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("feerecon_session=; Max-Age=0"))
    }

    /// The session cookie's value in `headers`, if one was sent.
    pub fn cookie<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty() && v.len() <= 128)
    }

    /// A request made from another site: refused on a cookie session whatever it carries.
    pub fn cross_site(&self, headers: &HeaderMap) -> bool {
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if site.is_some_and(|s| s != "same-origin" && s != "none") {
            return true;
        }
        match headers.get(header::ORIGIN).map(|v| v.to_str()) {
            None => false,
            Some(Ok(origin)) => origin.trim_end_matches('/') != self.origin,
            Some(Err(_)) => true,
        }
    }
}

type HmacSha256 = Hmac<Sha256>;
use sha2::Sha256;

/// The CSRF token of the session whose cookie holds `session_token`.
pub fn csrf_token(session_token: &str) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(session_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(b"feerecon csrf v1");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session of a request's cookie, checked: current, and for a state-changing request
/// made from this site with the session's CSRF token. 401 without a current session, 403 for
/// a cross-site request or a missing or wrong CSRF token.
pub async fn authenticate(parts: &Parts, st: &AppState, token: &str) -> Result<Found> {
    let settings = &st.sessions;
    let found = st
        .store
        .session_for_cookie(token, st.now(), settings.idle)
        .await?
        .ok_or(Error::Unauthenticated)?;
    if !safe(&parts.method) {
        if settings.cross_site(&parts.headers) {
            return Err(Error::Refused {
                code: "cross_site_request",
                message: "a request of a cookie session must come from the service's own pages"
                    .into(),
            });
        }
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(Error::Refused {
                code: "csrf_token_missing",
                message: "send the session's CSRF token in X-CSRF-Token".into(),
            })?;
        let want = csrf_token(token);
        if !bool::from(sent.as_bytes().ct_eq(want.as_bytes())) {
            return Err(Error::Refused {
                code: "csrf_token_invalid",
                message: "X-CSRF-Token is not this session's".into(),
            });
        }
    }
    Ok(found)
}

/// The caller's cookie session: for the routes that manage the session itself.
pub struct CurrentSession {
    pub caller: Caller,
    pub info: SessionInfo,
    pub csrf_token: String,
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self> {
        let token = st
            .sessions
            .cookie(&parts.headers)
            .ok_or(Error::Unauthenticated)?
            .to_string();
        let found = authenticate(parts, st, &token).await?;
        Ok(CurrentSession {
            caller: found.caller,
            info: found.info,
            csrf_token: csrf_token(&token),
        })
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sign_in, current, sign_out))
}

/// An API token to exchange for a cookie session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// A staff API token (`frk_…`).
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    #[serde(flatten)]
    pub session: SessionInfo,
    /// Send it in `X-CSRF-Token` with every request of this session that is not GET or HEAD.
    pub csrf_token: String,
}

/// Starts a session for `caller`'s API token and answers it with its cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "sessions", request_body = SignIn,
    responses((status = 201, description = "Signed in: the cookie is set (`Set-Cookie`), the CSRF token is in the body", body = SessionOut,
        headers(("Set-Cookie" = String, description = "The session cookie: HttpOnly, SameSite=Strict, Path=/; `__Host-` and Secure over https"))),
        (status = 401, description = "Not a token the service knows, or a revoked one (`unauthenticated`)", body = ErrorBody,
            headers(("WWW-Authenticate" = String))),
        (status = 403, description = "Sent from another site (`cross_site_request`)", body = ErrorBody)))]
async fn sign_in(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response> {
    if st.sessions.cross_site(&headers) {
        return Err(Error::Refused {
            code: "cross_site_request",
            message: "sign in from the service's own pages".into(),
        });
    }
    let token = body.token.trim();
    if token.is_empty() || token.len() > 256 {
        return Err(Error::Unauthenticated);
    }
    let caller = st
        .store
        .caller_for_token(token)
        .await?
        .ok_or(Error::Unauthenticated)?;
    if caller.role == Role::Parent {
        return Err(Error::Unauthenticated);
    }
    let ttl = st.sessions.staff_ttl;
    let (info, cookie) = st
        .store
        .start_session(
            NewSession {
                kind: SessionKind::ApiToken,
                subject: caller.actor(),
                role: caller.role,
                scope: caller.scope,
                api_token_id: Some(caller.token_id),
                parent_link_id: None,
                ttl,
            },
            st.now(),
            st.sessions.idle,
        )
        .await?;
    let set = st.sessions.set_cookie(&cookie, ttl)?;
    let out = SessionOut {
        session: info,
        csrf_token: csrf_token(&cookie),
    };
    Ok((
        StatusCode::CREATED,
        [
            (header::SET_COOKIE, set),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(out),
    )
        .into_response())
}

/// The caller's cookie session, with its CSRF token.
#[utoipa::path(get, path = "/api/v1/session", tag = "sessions", security(("session" = [])),
    responses((status = 200, body = SessionOut)))]
async fn current(session: CurrentSession) -> Result<Response> {
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(SessionOut {
            session: session.info,
            csrf_token: session.csrf_token,
        }),
    )
        .into_response())
}

/// Ends the caller's cookie session on the server and clears the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "sessions", security(("session" = [])),
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses((status = 204, description = "Signed out: the session is over and the cookie cleared",
        headers(("Set-Cookie" = String, description = "Clears the session cookie")))))]
async fn sign_out(State(st): State<AppState>, session: CurrentSession) -> Result<Response> {
    st.store
        .end_session(session.info.id, "signed out", st.now())
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, st.sessions.clear_cookie())],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_decides_the_cookie() {
        let s = SessionSettings::for_url("https://hocphi.example.vn/").unwrap();
        assert!(s.secure && s.cookie_name() == "__Host-feerecon_session");
        assert_eq!(s.origin, "https://hocphi.example.vn");
        let local = SessionSettings::for_url("http://127.0.0.1:8080").unwrap();
        assert!(!local.secure && local.cookie_name() == "feerecon_session");
        assert!(SessionSettings::for_url("http://hocphi.example.vn").is_err());
        assert!(SessionSettings::for_url("https://hocphi.example.vn/app").is_err());
        assert!(SessionSettings::for_url("ftp://x").is_err());
        let c = s.set_cookie("abc", chrono::Duration::minutes(5)).unwrap();
        assert_eq!(
            c.to_str().unwrap(),
            "__Host-feerecon_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=300; Secure"
        );
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        let s = SessionSettings::for_url("https://hocphi.example.vn").unwrap();
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(!s.cross_site(&h(&[])));
        assert!(!s.cross_site(&h(&[
            ("origin", "https://hocphi.example.vn"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(s.cross_site(&h(&[("origin", "https://evil.example")])));
        assert!(s.cross_site(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(s.cross_site(&h(&[("sec-fetch-site", "same-site")])));
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a").len(), 43);
    }
}
