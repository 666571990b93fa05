//! `GET /.well-known/mta-sts.txt`: the MTA-STS policy (RFC 8461 §3.2) from
//! `[mta_sts]`. Senders fetch it from `https://mta-sts.<domain>/` for each of the
//! local domains; the policy is the same for all of them (one MX host), so any Host
//! gets it. No token: senders are anonymous.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/.well-known/mta-sts.txt", get(policy))
}

/// RFC 8461 §3.3: served as `text/plain`, lines ending in CRLF.
async fn policy(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.config.mta_sts.policy(&state.config.hostname),
    )
}
