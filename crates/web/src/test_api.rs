//! `/api/v1/test`: helpers for test suites, served only in test mode. What
//! GreenMail's `waitForIncomingEmail` and Mailpit's message list offer, over HTTP:
//! list received messages across all accounts, purge them, and wait for one.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use mailroom_store::Change;
use mailroom_store::admin::MessageFilter;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::messages::Message;
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::state::AppState;

/// The wait's timeout when none is given.
pub const DEFAULT_WAIT_MS: u64 = 10_000;
/// The longest wait allowed; longer timeouts are cut to this.
pub const MAX_WAIT_MS: u64 = 120_000;
/// Most messages one list returns when no `limit` is given.
pub const DEFAULT_LIMIT: u32 = 1000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_test_messages, purge_test_messages))
        .routes(routes!(wait_for_message))
}

/// Which messages to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Recipient, case-insensitive: an account's address selects that account's
    /// copies; anything else (an alias, a `+tag` address, a name) is looked for in
    /// To: and Cc:.
    to: Option<String>,
    /// A substring of the Subject:, case-insensitive.
    subject: Option<String>,
    /// At most this many (default 1000), newest first.
    limit: Option<u32>,
}

/// What to wait for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitQuery {
    /// Recipient, case-insensitive: an account's address selects that account's
    /// copies; anything else (an alias, a `+tag` address, a name) is looked for in
    /// To: and Cc:.
    to: Option<String>,
    /// A substring of the Subject:, case-insensitive.
    subject: Option<String>,
    /// How long to wait, in milliseconds (default 10000, at most 120000; more is cut
    /// to 120000).
    timeout_ms: Option<u64>,
}

/// How many messages a purge deleted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Purged {
    pub deleted: u64,
}

fn filter(to: Option<String>, subject: Option<String>) -> MessageFilter {
    MessageFilter {
        to: to.filter(|s| !s.trim().is_empty()),
        subject: subject.filter(|s| !s.is_empty()),
        ..MessageFilter::default()
    }
}

/// Lists received messages across all accounts and mailboxes, newest first.
#[utoipa::path(get, path = "/api/v1/test/messages", tag = "test",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The matching messages", body = [Message]),
        (status = 400, description = "Unknown or malformed query parameter", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
    ))]
async fn list_test_messages(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let mut filter = filter(query.to, query.subject);
    filter.limit = Some(query.limit.unwrap_or(DEFAULT_LIMIT));
    let found = state.store.find_messages(&filter).await?;
    Ok(axum::Json(
        found.iter().map(Message::from).collect::<Vec<_>>(),
    ))
}

/// Deletes every message of every account (accounts and mailboxes stay).
#[utoipa::path(delete, path = "/api/v1/test/messages", tag = "test",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Purged", body = Purged),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
    ))]
async fn purge_test_messages(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let deleted = state.store.purge_messages().await?;
    Ok(axum::Json(Purged { deleted }))
}

/// Waits until a matching message is in the store and returns it: at once when one
/// is already there (the newest), else the first to arrive. Purge first to wait
/// only for new mail.
#[utoipa::path(get, path = "/api/v1/test/wait", tag = "test",
    security(("bearer" = [])),
    params(WaitQuery),
    responses(
        (status = 200, description = "A matching message", body = Message),
        (status = 400, description = "Unknown or malformed query parameter", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 408, description = "No matching message arrived in time", body = ErrorBody),
        (status = 503, description = "The server is shutting down", body = ErrorBody),
    ))]
async fn wait_for_message(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let timeout_ms = query.timeout_ms.unwrap_or(DEFAULT_WAIT_MS).min(MAX_WAIT_MS);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let mut filter = filter(query.to, query.subject);
    filter.limit = Some(1);

    // Subscribe before the first look, so a message committed in between is seen
    // on the feed rather than missed.
    let mut feed = state.store.subscribe();
    let mut look_in = None; // None: everywhere; Some(id): only that mailbox
    loop {
        filter.mailbox_id = look_in;
        if let Some(found) = state.store.find_messages(&filter).await?.first() {
            return Ok(axum::Json(Message::from(found)));
        }
        // Wait for a change to a mailbox; a lagging receiver looks everywhere again.
        look_in = loop {
            let event = tokio::select! {
                event = feed.recv() => event,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!("no matching message arrived within {timeout_ms} ms"),
                    ));
                }
                () = state.shutdown.cancelled() => {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the server is shutting down",
                    ));
                }
            };
            match event {
                Ok(Change::Mailbox { mailbox_id, .. }) => break Some(mailbox_id),
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => break None,
                Err(RecvError::Closed) => {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the store is shutting down",
                    ));
                }
            }
        };
    }
}
