//! The bearer token check in front of `/api/v1`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::{AppState, digest};

/// Lets the request through when `Authorization: Bearer <token>` carries the admin
/// token; answers 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3) otherwise.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    let problem = match (&given, &state.token_digest) {
        (None, _) => Some("missing `Authorization: Bearer <admin token>` header"),
        (Some(_), None) => Some("the API is disabled: the server has no admin token"),
        (Some(token), Some(expected)) => {
            if bool::from(digest(token).ct_eq(expected)) {
                None
            } else {
                Some("wrong admin token")
            }
        }
    };
    match problem {
        None => next.run(request).await,
        Some(message) => {
            let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mailroom\""),
            );
            response
        }
    }
}
