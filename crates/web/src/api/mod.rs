//! The admin API under `/api/v1`: one module per resource. Handlers carry their
//! OpenAPI description (`#[utoipa::path]`) and are registered with `routes!`, so
//! the published document is generated from exactly the routes served.

mod accounts;
mod acl;
mod aliases;
mod dkim;
mod domains;
mod mailboxes;
pub(crate) mod messages;
mod queue;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(domains::router())
        .merge(dkim::router())
        .merge(accounts::router())
        .merge(aliases::router())
        .merge(mailboxes::router())
        .merge(acl::router())
        .merge(messages::router())
        .merge(queue::router())
}

/// Percent-encodes one path segment (mailbox names hold `/`, addresses `@`).
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An account by address, or 404.
pub(crate) async fn account(
    state: &AppState,
    address: &str,
) -> Result<mailroom_store::Account, crate::ApiError> {
    state
        .store
        .account(address)
        .await?
        .ok_or_else(|| crate::ApiError::not_found(format!("account {address:?} does not exist")))
}

/// A mailbox of an account by name, or 404.
pub(crate) async fn mailbox(
    state: &AppState,
    address: &str,
    name: &str,
) -> Result<mailroom_store::Mailbox, crate::ApiError> {
    let account = account(state, address).await?;
    state.store.mailbox(account.id, name).await?.ok_or_else(|| {
        crate::ApiError::not_found(format!(
            "account {address:?} has no mailbox {name:?} (names with `/` are percent-encoded: %2F)"
        ))
    })
}
