//! `/api/v1/aliases`: further addresses (and `@domain` catch-alls) delivering to an
//! account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_aliases, create_alias))
        .routes(routes!(delete_alias))
}

/// An alias: mail to `address` is delivered to `account`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Alias {
    /// An address in a local domain, or `@domain` for the domain's catch-all.
    #[schema(example = "postmaster@example.org")]
    pub address: String,
    /// The address of the account receiving the mail.
    #[schema(example = "alice@example.org")]
    pub account: String,
}

/// Lists every alias, by address.
#[utoipa::path(get, path = "/api/v1/aliases", tag = "aliases",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The aliases", body = [Alias]),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
    ))]
async fn list_aliases(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let aliases = state.store.list_aliases().await?;
    Ok(axum::Json(
        aliases
            .into_iter()
            .map(|a| Alias {
                address: a.address,
                account: a.account,
            })
            .collect::<Vec<_>>(),
    ))
}

/// Adds an alias. Its domain must be local and its account must exist; the address
/// must not be taken by an account or another alias.
#[utoipa::path(post, path = "/api/v1/aliases", tag = "aliases",
    security(("bearer" = [])),
    request_body = Alias,
    responses(
        (status = 201, description = "Created", body = Alias),
        (status = 400, description = "Not an address, or its domain or account does not exist", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 409, description = "The address is taken", body = ErrorBody),
        (status = 422, description = "The body is not an alias object", body = ErrorBody),
    ))]
async fn create_alias(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Alias>,
) -> Result<impl IntoResponse, ApiError> {
    let alias = state
        .store
        .add_alias(&body.address, &body.account)
        .await
        .map_err(super::accounts::missing_is_bad_request)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Alias {
            address: alias.address,
            account: alias.account,
        }),
    ))
}

/// Deletes an alias.
#[utoipa::path(delete, path = "/api/v1/aliases/{address}", tag = "aliases",
    security(("bearer" = [])),
    params(("address" = String, Path, description = "The alias address, or `@domain`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such alias", body = ErrorBody),
    ))]
async fn delete_alias(
    State(state): State<AppState>,
    ApiPath(address): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_alias(&address).await?;
    Ok(StatusCode::NO_CONTENT)
}
