//! Probes and metrics: `/healthz`, `/readyz`, `/metrics`. None needs the token, so a
//! load balancer or Prometheus can reach them with no secret.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and serving HTTP.
async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when the store answers a query and the binary has marked the listeners
/// bound; 503 otherwise, saying which part is missing. The answer also describes the
/// served certificate (subject, issuer, serial, validity) and, with ACME, the last
/// attempt's error and the next attempt's time.
async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.ping().await {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store does not answer: {e}"),
        )
        .into_response();
    }
    if !state.readiness.is_ready() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the listeners are not bound yet (or the server is shutting down)",
        )
        .into_response();
    }
    let mut body = json!({"status": "ready"});
    if let Some(tls) = &state.tls {
        // Details, not conditions: a failing ACME renewal leaves the current
        // certificate in service, so it does not make the server unready.
        body["tls"] = json!(tls.status());
    }
    axum::Json(body).into_response()
}

/// Prometheus text exposition format 0.0.4.
async fn metrics(State(state): State<AppState>) -> Response {
    let body = crate::metrics::render(&state.store).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
