//! `/api/v1/accounts/{address}/mailboxes/{name}/acl`: who besides the owner may use a
//! mailbox (RFC 4314), for setting up workgroup mailboxes without an IMAP client that
//! speaks ACL. The same entries IMAP's SETACL/GETACL change and show; the owner
//! always has every right and has no entry.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use mailroom_store::{Rights, RightsOp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_acl))
        .routes(routes!(set_acl, delete_acl))
}

/// One entry of a mailbox's access control list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AclEntry {
    /// An account address, `anyone` or `authenticated` (the same here: there are no
    /// anonymous logins).
    #[schema(example = "bob@example.org")]
    pub identifier: String,
    /// RFC 4314 rights letters from `lrswipkxtea`, in that order.
    #[schema(example = "lrswi")]
    pub rights: String,
}

/// The rights to give an identifier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RightsBody {
    /// RFC 4314 letters: `l` lookup, `r` read, `s` keep \Seen, `w` write other
    /// flags, `i` insert, `p` post, `k` create children, `x` delete the mailbox,
    /// `t` set \Deleted, `e` expunge, `a` administer; `c` stands for `kx` and `d`
    /// for `te`. They replace the identifier's rights; empty removes the entry.
    #[schema(example = "lrswipkxte")]
    pub rights: String,
}

fn entry(identifier: String, rights: Rights) -> AclEntry {
    AclEntry {
        identifier,
        rights: rights.letters(),
    }
}

/// The access control list of a mailbox, by identifier.
#[utoipa::path(get, path = "/api/v1/accounts/{address}/mailboxes/{name}/acl", tag = "mailboxes",
    security(("bearer" = [])),
    params(
        ("address" = String, Path, description = "The owner's address"),
        ("name" = String, Path, description = "The mailbox name, `/` percent-encoded as %2F"),
    ),
    responses(
        (status = 200, description = "The entries (the owner is not among them: it has every right)", body = [AclEntry]),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such account or mailbox", body = ErrorBody),
    ))]
async fn list_acl(
    State(state): State<AppState>,
    ApiPath((address, name)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let mailbox = super::mailbox(&state, &address, &name).await?;
    let entries = state.store.acl(mailbox.id).await?;
    Ok(axum::Json(
        entries
            .into_iter()
            .map(|e| entry(e.identifier, e.rights))
            .collect::<Vec<_>>(),
    ))
}

/// Gives an identifier exactly these rights on a mailbox (SETACL). Children created
/// later inherit their parent's entries.
#[utoipa::path(put, path = "/api/v1/accounts/{address}/mailboxes/{name}/acl/{identifier}", tag = "mailboxes",
    security(("bearer" = [])),
    params(
        ("address" = String, Path, description = "The owner's address"),
        ("name" = String, Path, description = "The mailbox name, `/` percent-encoded as %2F"),
        ("identifier" = String, Path, description = "An account address, `anyone` or `authenticated`"),
    ),
    request_body = RightsBody,
    responses(
        (status = 200, description = "The entry as it is now (empty rights: removed)", body = AclEntry),
        (status = 400, description = "Not a rights letter, an unknown account, or a negative-rights identifier", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such owner or mailbox", body = ErrorBody),
        (status = 409, description = "The identifier is the owner, which always has every right", body = ErrorBody),
        (status = 422, description = "The body is not a rights object", body = ErrorBody),
    ))]
async fn set_acl(
    State(state): State<AppState>,
    ApiPath((address, name, identifier)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<RightsBody>,
) -> Result<impl IntoResponse, ApiError> {
    let rights = Rights::parse(&body.rights).map_err(|c| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{c:?} is not an RFC 4314 right; the letters are lrswipkxtea (and c, d)"),
        )
    })?;
    let mailbox = super::mailbox(&state, &address, &name).await?;
    let rights = state
        .store
        .set_acl(mailbox.id, &identifier, RightsOp::Replace, rights)
        .await
        .map_err(super::accounts::missing_is_bad_request)?;
    Ok(axum::Json(entry(identifier, rights)))
}

/// Removes an identifier's entry (DELETEACL).
#[utoipa::path(delete, path = "/api/v1/accounts/{address}/mailboxes/{name}/acl/{identifier}", tag = "mailboxes",
    security(("bearer" = [])),
    params(
        ("address" = String, Path, description = "The owner's address"),
        ("name" = String, Path, description = "The mailbox name, `/` percent-encoded as %2F"),
        ("identifier" = String, Path, description = "An account address, `anyone` or `authenticated`"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such owner, mailbox or entry", body = ErrorBody),
    ))]
async fn delete_acl(
    State(state): State<AppState>,
    ApiPath((address, name, identifier)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let mailbox = super::mailbox(&state, &address, &name).await?;
    let removed = state.store.delete_acl(mailbox.id, &identifier).await?;
    if !removed {
        return Err(ApiError::not_found(format!(
            "mailbox {name:?} of {address:?} has no entry for {identifier:?}"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}
