//! `/api/v1/queue`: the outbound queue (mail waiting to be relayed), the same
//! operations as `mailroom queue list|show|retry|delete`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queue))
        .routes(routes!(get_queued, delete_queued))
        .routes(routes!(retry_queued))
}

/// A message waiting for delivery to remote recipients.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuedMessage {
    pub id: i64,
    /// Envelope sender; empty for a bounce.
    pub sender: String,
    pub recipients: Vec<QueuedRecipient>,
    pub size: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the next delivery attempt.
    pub next_attempt: i64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// One recipient still waiting, with the last answer its server gave.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuedRecipient {
    pub address: String,
    pub last_response: Option<String>,
}

impl From<mailroom_store::QueueEntry> for QueuedMessage {
    fn from(e: mailroom_store::QueueEntry) -> Self {
        QueuedMessage {
            id: e.id,
            sender: e.sender,
            recipients: e
                .recipients
                .into_iter()
                .map(|r| QueuedRecipient {
                    address: r.address,
                    last_response: r.last_response,
                })
                .collect(),
            size: e.size,
            created_at: e.created_at,
            next_attempt: e.next_attempt,
            attempts: e.attempts,
            last_error: e.last_error,
        }
    }
}

/// Lists the queue, oldest first.
#[utoipa::path(get, path = "/api/v1/queue", tag = "queue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The queued messages", body = [QueuedMessage]),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
    ))]
async fn list_queue(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let entries = state.store.queue_list().await?;
    Ok(axum::Json(
        entries
            .into_iter()
            .map(QueuedMessage::from)
            .collect::<Vec<_>>(),
    ))
}

/// One queued message.
#[utoipa::path(get, path = "/api/v1/queue/{id}", tag = "queue",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Queue id")),
    responses(
        (status = 200, description = "The queued message", body = QueuedMessage),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "Not in the queue", body = ErrorBody),
    ))]
async fn get_queued(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let entry = state
        .store
        .queue_get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("queue entry {id} does not exist")))?;
    Ok(axum::Json(QueuedMessage::from(entry)))
}

/// Makes a queued message due now; the relay worker tries it at once.
#[utoipa::path(post, path = "/api/v1/queue/{id}/retry", tag = "queue",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Queue id")),
    responses(
        (status = 204, description = "Due now"),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "Not in the queue", body = ErrorBody),
    ))]
async fn retry_queued(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.store.queue_retry(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a message from the queue without delivering it (no bounce is sent).
#[utoipa::path(delete, path = "/api/v1/queue/{id}", tag = "queue",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Queue id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "Not in the queue", body = ErrorBody),
    ))]
async fn delete_queued(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.store.queue_delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
