//! ACME HTTP-01 (RFC 8555 §8.3): the CA fetches
//! `http://NAME/.well-known/acme-challenge/TOKEN` and expects the key authorization
//! of a challenge the renewal task has pending. No token, no answer (404).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/.well-known/acme-challenge/{token}", get(challenge))
}

async fn challenge(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state
        .tls
        .as_ref()
        .and_then(|tls| tls.http_challenge(&token))
    {
        Some(key_authorization) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            key_authorization,
        )
            .into_response(),
        None => {
            tracing::info!(token = %token, "HTTP-01: no pending ACME challenge with this token");
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no pending ACME challenge with this token",
            )
            .into_response()
        }
    }
}
