//! `/api/v1/domains`: the domains mail is delivered here for.

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
        .routes(routes!(list_domains, create_domain))
        .routes(routes!(delete_domain))
}

/// A local domain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Domain {
    /// The domain name, lower case.
    #[schema(example = "example.org")]
    pub name: String,
}

/// Lists the local domains, by name.
#[utoipa::path(get, path = "/api/v1/domains", tag = "domains",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The local domains", body = [Domain]),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
    ))]
async fn list_domains(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let domains = state.store.list_domains().await?;
    Ok(axum::Json(
        domains
            .into_iter()
            .map(|d| Domain { name: d.name })
            .collect::<Vec<_>>(),
    ))
}

/// Adds a local domain.
#[utoipa::path(post, path = "/api/v1/domains", tag = "domains",
    security(("bearer" = [])),
    request_body = Domain,
    responses(
        (status = 201, description = "Created", body = Domain),
        (status = 400, description = "Not a domain name", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 409, description = "The domain exists", body = ErrorBody),
        (status = 422, description = "The body is not a domain object", body = ErrorBody),
    ))]
async fn create_domain(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Domain>,
) -> Result<impl IntoResponse, ApiError> {
    let domain = state.store.add_domain(&body.name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Domain { name: domain.name }),
    ))
}

/// Deletes a domain with all its accounts, their mailboxes and messages, and its
/// aliases.
#[utoipa::path(delete, path = "/api/v1/domains/{name}", tag = "domains",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The domain name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such domain", body = ErrorBody),
    ))]
async fn delete_domain(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_domain(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
