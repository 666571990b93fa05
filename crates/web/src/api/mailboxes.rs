//! `/api/v1/accounts/{address}/mailboxes`: the mailboxes of an account.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_mailboxes))
}

/// A mailbox with its counters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Mailbox {
    /// Full name, `/` between levels; `INBOX` for the inbox.
    #[schema(example = "INBOX")]
    pub name: String,
    /// RFC 6154 special use (`\Sent`, `\Trash`...), if any.
    pub special_use: Option<String>,
    /// A placeholder kept for its children; holds no messages.
    pub noselect: bool,
    pub subscribed: bool,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Sum of the message sizes, bytes.
    pub size: u64,
}

/// Lists the mailboxes of an account, by name.
#[utoipa::path(get, path = "/api/v1/accounts/{address}/mailboxes", tag = "mailboxes",
    security(("bearer" = [])),
    params(("address" = String, Path, description = "The account's address")),
    responses(
        (status = 200, description = "The mailboxes", body = [Mailbox]),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ))]
async fn list_mailboxes(
    State(state): State<AppState>,
    ApiPath(address): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let account = super::account(&state, &address).await?;
    let subscribed = state.store.subscriptions(account.id).await?;
    let mut out = Vec::new();
    for mailbox in state.store.list_mailboxes(account.id).await? {
        let status = state.store.mailbox_status(mailbox.id).await?;
        out.push(Mailbox {
            subscribed: subscribed.contains(&mailbox.name),
            name: mailbox.name,
            special_use: mailbox.special_use,
            noselect: mailbox.noselect,
            uid_validity: mailbox.uid_validity,
            uid_next: mailbox.uid_next,
            highest_modseq: mailbox.highest_modseq,
            messages: status.messages,
            unseen: status.unseen,
            size: status.size,
        });
    }
    Ok(axum::Json(out))
}
