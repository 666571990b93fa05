//! `/api/v1/accounts` and `/api/v1/accounts/{address}`: user accounts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use mailroom_store::StoreError;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, update_account, delete_account))
}

/// An account in a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AccountSummary {
    /// Login name and primary address.
    #[schema(example = "alice@example.org")]
    pub address: String,
    /// Storage quota in bytes; null for none.
    pub quota_bytes: Option<i64>,
}

/// One account with its usage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Account {
    #[schema(example = "alice@example.org")]
    pub address: String,
    /// Storage quota in bytes; null for none.
    pub quota_bytes: Option<i64>,
    /// Bytes of all messages in all its mailboxes.
    pub used_bytes: u64,
    /// Messages in all its mailboxes.
    pub messages: u64,
    /// Number of mailboxes.
    pub mailboxes: u64,
}

/// A new account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccount {
    /// `local@domain`; the domain must be local.
    #[schema(example = "alice@example.org")]
    pub address: String,
    /// The password (stored only as an argon2id hash).
    pub password: String,
    /// Storage quota in bytes; omit or null for none.
    #[serde(default)]
    pub quota_bytes: Option<i64>,
}

/// Changes to an account; absent fields stay as they are.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountUpdate {
    /// A new password.
    #[serde(default)]
    pub password: Option<String>,
    /// A new quota in bytes; null removes the quota.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub quota_bytes: Option<Option<i64>>,
}

/// Tells a field given as `null` (Some(None)) from an absent one (None).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// When creating something that refers to a missing domain or account, the request
/// is at fault (400), not the URL (404).
pub(super) fn missing_is_bad_request(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::bad_request(format!(
            "{e}: create it first (POST /api/v1/domains or /api/v1/accounts)"
        )),
        other => other.into(),
    }
}

fn check_quota(quota: Option<i64>) -> Result<(), ApiError> {
    match quota {
        Some(q) if q < 0 => Err(ApiError::bad_request(
            "quota_bytes must be a number of bytes, 0 or more (null for no quota)",
        )),
        _ => Ok(()),
    }
}

/// Lists every account, by address.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The accounts", body = [AccountSummary]),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
    ))]
async fn list_accounts(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let accounts = state.store.list_accounts().await?;
    Ok(axum::Json(
        accounts
            .into_iter()
            .map(|a| AccountSummary {
                address: a.address,
                quota_bytes: a.quota_bytes,
            })
            .collect::<Vec<_>>(),
    ))
}

/// Creates an account with the default mailboxes (INBOX, Sent, Drafts, Trash, Junk,
/// Archive).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts",
    security(("bearer" = [])),
    request_body = NewAccount,
    responses(
        (status = 201, description = "Created", body = Account),
        (status = 400, description = "Bad address, empty password, negative quota, or the domain is not local", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 409, description = "The address is taken by an account or alias", body = ErrorBody),
        (status = 422, description = "The body is not an account object", body = ErrorBody),
    ))]
async fn create_account(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewAccount>,
) -> Result<impl IntoResponse, ApiError> {
    check_quota(body.quota_bytes)?;
    let account = state
        .store
        .create_account(&body.address, &body.password)
        .await
        .map_err(missing_is_bad_request)?;
    if body.quota_bytes.is_some() {
        state
            .store
            .set_quota(&account.address, body.quota_bytes)
            .await?;
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(describe(&state, &account.address).await?),
    ))
}

/// The account with its usage.
async fn describe(state: &AppState, address: &str) -> Result<Account, ApiError> {
    let account = super::account(state, address).await?;
    let mailboxes = state.store.list_mailboxes(account.id).await?;
    let (mut used_bytes, mut messages) = (0, 0);
    for mailbox in &mailboxes {
        let status = state.store.mailbox_status(mailbox.id).await?;
        used_bytes += status.size;
        messages += u64::from(status.messages);
    }
    Ok(Account {
        address: account.address,
        quota_bytes: account.quota_bytes,
        used_bytes,
        messages,
        mailboxes: mailboxes.len() as u64,
    })
}

/// One account with its usage.
#[utoipa::path(get, path = "/api/v1/accounts/{address}", tag = "accounts",
    security(("bearer" = [])),
    params(("address" = String, Path, description = "The account's address")),
    responses(
        (status = 200, description = "The account", body = Account),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ))]
async fn get_account(
    State(state): State<AppState>,
    ApiPath(address): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(describe(&state, &address).await?))
}

/// Sets the password and/or the quota of an account.
#[utoipa::path(patch, path = "/api/v1/accounts/{address}", tag = "accounts",
    security(("bearer" = [])),
    params(("address" = String, Path, description = "The account's address")),
    request_body = AccountUpdate,
    responses(
        (status = 200, description = "Changed; the account as it is now", body = Account),
        (status = 400, description = "Empty password or negative quota", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "The body is not an account update", body = ErrorBody),
    ))]
async fn update_account(
    State(state): State<AppState>,
    ApiPath(address): ApiPath<String>,
    ApiJson(body): ApiJson<AccountUpdate>,
) -> Result<impl IntoResponse, ApiError> {
    let account = super::account(&state, &address).await?;
    if let Some(quota) = body.quota_bytes {
        check_quota(quota)?;
    }
    if let Some(password) = &body.password {
        state.store.set_password(&account.address, password).await?;
    }
    if let Some(quota) = body.quota_bytes {
        state.store.set_quota(&account.address, quota).await?;
    }
    Ok(axum::Json(describe(&state, &account.address).await?))
}

/// Deletes an account with its mailboxes, messages and aliases.
#[utoipa::path(delete, path = "/api/v1/accounts/{address}", tag = "accounts",
    security(("bearer" = [])),
    params(("address" = String, Path, description = "The account's address")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ))]
async fn delete_account(
    State(state): State<AppState>,
    ApiPath(address): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_account(&address).await?;
    Ok(StatusCode::NO_CONTENT)
}
