//! `/api/v1/accounts/{address}/mailboxes/{name}/messages[/{uid}[/raw]]`: messages
//! of a mailbox. A mailbox name with `/` is percent-encoded in the URL (`%2F`).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use mailroom_store::admin::MessageEntry;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages))
        .routes(routes!(get_message, delete_message))
        .routes(routes!(get_raw_message))
}

/// A message with its envelope fields. Header values are decoded (RFC 2047).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// The account holding this copy.
    #[schema(example = "alice@example.org")]
    pub account: String,
    #[schema(example = "INBOX")]
    pub mailbox: String,
    pub uid: u32,
    pub modseq: u64,
    /// IMAP flags (`\Seen`, `\Flagged`, keywords...).
    pub flags: Vec<String>,
    /// Size in bytes (RFC822.SIZE).
    pub size: u64,
    /// When it arrived (INTERNALDATE), RFC 3339.
    #[schema(example = "2026-03-02T10:00:00Z")]
    pub received: String,
    /// The Date: field, RFC 3339; null when missing or unparsable.
    pub date: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// Where to fetch the raw RFC 5322 bytes.
    #[schema(example = "/api/v1/accounts/alice@example.org/mailboxes/INBOX/messages/1/raw")]
    pub raw_url: String,
}

fn rfc3339(unix: i64, offset_minutes: i32) -> Option<String> {
    let offset = UtcOffset::from_whole_seconds(offset_minutes.saturating_mul(60)).ok()?;
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .to_offset(offset)
        .format(&Rfc3339)
        .ok()
}

impl From<&MessageEntry> for Message {
    fn from(m: &MessageEntry) -> Self {
        Message {
            account: m.account.clone(),
            mailbox: m.mailbox.clone(),
            uid: m.uid,
            modseq: m.modseq,
            flags: m.flags.names(),
            size: m.size,
            received: rfc3339(m.internal_date, m.internal_offset).unwrap_or_default(),
            date: m.sent_date.and_then(|(unix, offset)| rfc3339(unix, offset)),
            from: m.from.clone(),
            to: m.to.clone(),
            cc: m.cc.clone(),
            subject: m.subject.clone(),
            message_id: m.message_id.clone(),
            raw_url: format!(
                "/api/v1/accounts/{}/mailboxes/{}/messages/{}/raw",
                super::path_segment(&m.account),
                super::path_segment(&m.mailbox),
                m.uid
            ),
        }
    }
}

/// Lists the messages of a mailbox, ascending by UID.
#[utoipa::path(get, path = "/api/v1/accounts/{address}/mailboxes/{name}/messages", tag = "messages",
    security(("bearer" = [])),
    params(
        ("address" = String, Path, description = "The account's address"),
        ("name" = String, Path, description = "The mailbox name, `/` percent-encoded as %2F"),
    ),
    responses(
        (status = 200, description = "The messages", body = [Message]),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account or mailbox", body = ErrorBody),
    ))]
async fn list_messages(
    State(state): State<AppState>,
    ApiPath((address, name)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let mailbox = super::mailbox(&state, &address, &name).await?;
    let messages = state.store.list_messages(mailbox.id).await?;
    Ok(axum::Json(
        messages.iter().map(Message::from).collect::<Vec<_>>(),
    ))
}

async fn entry(
    state: &AppState,
    address: &str,
    name: &str,
    uid: u32,
) -> Result<MessageEntry, ApiError> {
    let mailbox = super::mailbox(state, address, name).await?;
    state
        .store
        .message_entry(mailbox.id, uid)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "mailbox {name:?} of {address:?} has no message with UID {uid}"
            ))
        })
}

/// One message with its envelope fields.
#[utoipa::path(get, path = "/api/v1/accounts/{address}/mailboxes/{name}/messages/{uid}", tag = "messages",
    security(("bearer" = [])),
    params(
        ("address" = String, Path, description = "The account's address"),
        ("name" = String, Path, description = "The mailbox name, `/` percent-encoded as %2F"),
        ("uid" = u32, Path, description = "The message's UID"),
    ),
    responses(
        (status = 200, description = "The message", body = Message),
        (status = 400, description = "The UID is not a number", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account, mailbox or message", body = ErrorBody),
    ))]
async fn get_message(
    State(state): State<AppState>,
    ApiPath((address, name, uid)): ApiPath<(String, String, u32)>,
) -> Result<impl IntoResponse, ApiError> {
    let entry = entry(&state, &address, &name, uid).await?;
    Ok(axum::Json(Message::from(&entry)))
}

/// The raw message, as received (RFC 5322 bytes).
#[utoipa::path(get, path = "/api/v1/accounts/{address}/mailboxes/{name}/messages/{uid}/raw", tag = "messages",
    security(("bearer" = [])),
    params(
        ("address" = String, Path, description = "The account's address"),
        ("name" = String, Path, description = "The mailbox name, `/` percent-encoded as %2F"),
        ("uid" = u32, Path, description = "The message's UID"),
    ),
    responses(
        (status = 200, description = "The message", content_type = "message/rfc822", body = String),
        (status = 400, description = "The UID is not a number", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account, mailbox or message", body = ErrorBody),
    ))]
async fn get_raw_message(
    State(state): State<AppState>,
    ApiPath((address, name, uid)): ApiPath<(String, String, u32)>,
) -> Result<impl IntoResponse, ApiError> {
    let entry = entry(&state, &address, &name, uid).await?;
    let raw = state.store.content_raw(entry.content_id).await?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], raw))
}

/// Deletes one message at once, whatever its flags; IMAP sessions see it expunged.
#[utoipa::path(delete, path = "/api/v1/accounts/{address}/mailboxes/{name}/messages/{uid}", tag = "messages",
    security(("bearer" = [])),
    params(
        ("address" = String, Path, description = "The account's address"),
        ("name" = String, Path, description = "The mailbox name, `/` percent-encoded as %2F"),
        ("uid" = u32, Path, description = "The message's UID"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The UID is not a number", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account, mailbox or message", body = ErrorBody),
    ))]
async fn delete_message(
    State(state): State<AppState>,
    ApiPath((address, name, uid)): ApiPath<(String, String, u32)>,
) -> Result<StatusCode, ApiError> {
    let mailbox = super::mailbox(&state, &address, &name).await?;
    state.store.delete_message(mailbox.id, uid).await?;
    Ok(StatusCode::NO_CONTENT)
}
