//! HTTP: one router per resource, merged once; the OpenAPI document is built from the same
//! route definitions (utoipa-axum), so it lists exactly what the handlers accept and return.

pub mod accounts;
pub mod audit;
pub mod catalog;
pub mod csv_out;
pub mod extract;
pub mod fees;
pub mod health;
pub mod intake;
pub mod invoices;
pub mod org;
pub mod payments;
pub mod provider_accounts;
pub mod pulls;
pub mod recon;
pub mod reports;
pub mod students;
pub mod tokens;
pub mod webhooks;

use crate::error::{Error, ErrorBody};
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Opens the providers' secrets; its key is not in the database.
    pub sealer: crate::sealer::Sealer,
    /// A fixed "now" for signature tolerances, so signed samples can be replayed in tests.
    pub fixed_now: Option<chrono::DateTime<chrono::Utc>>,
    /// Group commit for webhook deliveries.
    pub intake: intake::Intake,
    /// Webhook accounts and secrets recently loaded.
    pub contexts: webhooks::Contexts,
    /// Pulls SePay and Casso accounts' transaction lists.
    pub puller: crate::pull::Puller,
}

impl AppState {
    pub fn new(store: Store, sealer: crate::sealer::Sealer) -> Self {
        Self {
            store,
            sealer,
            fixed_now: None,
            intake: intake::Intake::default(),
            contexts: webhooks::Contexts::default(),
            puller: crate::pull::Puller::default(),
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.fixed_now.unwrap_or_else(chrono::Utc::now)
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> From<(Vec<T>, Option<String>)> for List<T> {
    fn from((items, next_cursor): (Vec<T>, Option<String>)) -> Self {
        Self { items, next_cursor }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "feerecon", description = "School-fee payments: invoices, cash and cashless on one ledger, every fee itemised."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The OpenAPI document and the API routes it describes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(org::router())
        .merge(catalog::router())
        .merge(students::router())
        .merge(invoices::router())
        .merge(payments::router())
        .merge(fees::router())
        .merge(accounts::router())
        .merge(reports::router())
        .merge(provider_accounts::router())
        .merge(pulls::router())
        .merge(recon::router())
        .merge(tokens::router())
        .merge(audit::router())
        .split_for_parts()
}

/// The whole service; `main` and the tests build the same router.
pub fn app(state: AppState) -> Router {
    let (api, doc) = api();
    let doc = Arc::new(doc);
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .route("/api/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        .merge(health::router())
        .merge(webhooks::router())
        .fallback(|| async { Error::not_found("route_not_found", "route") })
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(serde_json::json!({"error": {"code": "method_not_allowed", "message": "this route does not take that method"}})),
            )
        })
        .layer(DefaultBodyLimit::max(extract::JSON_LIMIT))
        .layer(CatchPanicLayer::custom(|_| panic_response()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                // Path only: queries can carry personal data.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

fn panic_response() -> Response {
    tracing::error!("handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({"error": {"code": "internal", "message": "internal error; it has been logged"}})),
    )
        .into_response()
}
