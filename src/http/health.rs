//! Liveness and readiness, outside the API and without a token.

use super::extract::ApiQuery;
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Ready {
    /// `1`: also check that every payment with credit is allocated or in the review queue.
    deep: Option<u8>,
}

/// The database answers; 503 otherwise, so a load balancer stops sending traffic here. With
/// `?deep=1`, also the ledger's invariant: no payment with credit that nobody will see.
async fn readyz(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<Ready>,
) -> (StatusCode, Json<Value>) {
    if q.deep == Some(1) {
        return match st.store.unaccounted_payments().await {
            Ok(found) if found.is_empty() => (
                StatusCode::OK,
                Json(json!({"status": "ready", "unaccounted_payments": 0})),
            ),
            Ok(found) => {
                tracing::error!(
                    count = found.len(),
                    "payments with credit neither allocated nor in review"
                );
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": {"code": "unaccounted_payments",
                        "message": format!("{} payment(s) with credit are neither allocated nor in the review queue", found.len()),
                        "payment_ids": found.iter().map(|(id, _)| id).collect::<Vec<_>>()}})),
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "deep readiness check failed");
                not_ready()
            }
        };
    }
    match st.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            not_ready()
        }
    }
}

fn not_ready() -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": {"code": "not_ready", "message": "the database does not answer"}})),
    )
}
