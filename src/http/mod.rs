//! HTTP: one router per resource, merged once; the OpenAPI document is built from the same
//! route definitions (utoipa-axum), so it lists exactly what the handlers accept and return.

pub mod accounts;
pub mod audit;
pub mod catalog;
pub mod csv_out;
pub mod extract;
pub mod fees;
pub mod fields;
pub mod health;
pub mod intake;
pub mod invoices;
pub mod limits;
pub mod openapi;
pub mod org;
pub mod pages;
pub mod parents;
pub mod payments;
pub mod privacy;
pub mod provider_accounts;
pub mod pulls;
pub mod recon;
pub mod reports;
pub mod server;
pub mod session;
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
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
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
    /// Webhook budgets per client address and per account.
    pub webhook_limits: limits::WebhookLimits,
    /// The server's limits (also applied by `server::serve`).
    pub server_limits: limits::ServerLimits,
    /// Signs audit checkpoints; its key is not in the database.
    pub checkpoints: std::sync::Arc<crate::checkpoint::CheckpointSigner>,
    /// Cookie sessions: the public URL, lifetimes.
    pub sessions: session::SessionSettings,
    /// Budgets of failed parent-link attempts.
    pub link_limits: limits::LinkLimits,
    /// Writes the processing log (reads of personal data).
    pub processing: privacy::ProcessingLog,
}

impl AppState {
    /// Installs the sealer's audit MAC key for this process. The checkpoint signer has a fresh
    /// key until the caller sets the configured one (`main` does).
    pub fn new(store: Store, sealer: crate::sealer::Sealer) -> Self {
        crate::audit::install_mac_key(sealer.audit_mac_key());
        Self {
            processing: privacy::ProcessingLog::new(store.clone()),
            store,
            sealer,
            fixed_now: None,
            intake: intake::Intake::default(),
            contexts: webhooks::Contexts::default(),
            puller: crate::pull::Puller::default(),
            webhook_limits: limits::WebhookLimits::default(),
            server_limits: limits::ServerLimits::default(),
            checkpoints: std::sync::Arc::new(crate::checkpoint::CheckpointSigner::ephemeral(
                "feerecon",
            )),
            sessions: session::SessionSettings::default(),
            link_limits: limits::LinkLimits::default(),
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
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-feerecon_session",
                "A cookie session (`POST /api/v1/session`, or a parent link): `__Host-feerecon_session` over https, `feerecon_session` on a loopback http address. Requests other than GET and HEAD carry the session's CSRF token in `X-CSRF-Token`.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "feerecon", description = "School-fee payments: invoices, cash and cashless on one ledger, every fee itemised."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, invoices::LineIn))
)]
struct ApiDoc;

/// The OpenAPI document and the API routes it describes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .merge(session::router())
        .merge(parents::router())
        .merge(audit::router())
        .merge(privacy::router());
    let (router, mut doc) = router.split_for_parts();
    openapi::add_shared_responses(&mut doc);
    (router, doc)
}

/// The whole service; `main` and the tests build the same router.
pub fn app(state: AppState) -> Router {
    let (api, doc) = api();
    let doc = Arc::new(doc);
    let request_id = HeaderName::from_static("x-request-id");
    // Past this many API requests in progress, more are refused at once with 503 rather than
    // queued: a client is better told to come back than left waiting. Webhooks have bounded
    // queues of their own, so an API burst never sheds a payment notification.
    let in_flight = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(
            |_: tower::BoxError| async { Error::Busy },
        ))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            state.server_limits.max_in_flight.max(1),
        ));
    let api = Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        // On matched routes only, so the route's template is known.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            privacy::layer,
        ))
        .layer(in_flight);
    Router::new()
        .merge(api)
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
        .layer(axum::middleware::from_fn(pages::headers))
        // A body not sent in time ends the request: nobody holds a connection open by sending
        // a byte a minute.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.server_limits.body_read_timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| panic_response()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                // Path only: queries can carry personal data. A parent link's path is its
                // token, which is never logged.
                let path = req.uri().path();
                let path = if path.starts_with("/p/") { "/p/{token}" } else { path };
                tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
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
