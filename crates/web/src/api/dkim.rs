//! `/api/v1/domains/{name}/dkim`: the DKIM signing keys of a local domain (RFC 6376,
//! RFC 8463), as `mailroom dkim` manages them. Private keys never leave the store:
//! the API shows the public half as the DNS record to publish.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use mailroom_delivery::sign::{SignError, create_key, dns_record};
use mailroom_store::{DkimAlgorithm, DkimKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, generate))
        .routes(routes!(delete_key))
}

/// One DKIM key of a domain and the DNS record publishing it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Key {
    #[schema(example = "example.org")]
    pub domain: String,
    #[schema(example = "mr202612r")]
    pub selector: String,
    /// `rsa-sha256` or `ed25519-sha256`.
    #[schema(example = "rsa-sha256")]
    pub algorithm: String,
    /// Active keys sign every message submitted for the domain.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// The TXT record's owner name, absolute.
    #[schema(example = "mr202612r._domainkey.example.org.")]
    pub record_name: String,
    /// The TXT record's text, whole.
    #[schema(example = "v=DKIM1; k=rsa; p=MIIBIjANBgkq...")]
    pub record_value: String,
    /// The record in zone-file syntax, its text split into strings of at most 255
    /// octets.
    pub zone_line: String,
}

impl From<&DkimKey> for Key {
    fn from(key: &DkimKey) -> Self {
        let record = dns_record(key);
        Key {
            domain: key.domain.clone(),
            selector: key.selector.clone(),
            algorithm: key.algorithm.as_str().to_string(),
            active: key.active,
            created_at: key.created_at,
            zone_line: record.zone_line(3600),
            record_name: record.name,
            record_value: record.value,
        }
    }
}

/// What to generate; both fields are optional.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct GenerateKey {
    /// Default: `mr<yyyymm>r` for RSA, `mr<yyyymm>e` for Ed25519.
    pub selector: Option<String>,
    /// `rsa` (2048 bits, the default) or `ed25519`.
    #[schema(example = "rsa")]
    pub algorithm: Option<String>,
}

async fn local_domain(state: &AppState, domain: &str) -> Result<(), ApiError> {
    if state.store.is_local_domain(domain).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "domain {domain:?} is not a local domain; add it first (POST /api/v1/domains)"
        )))
    }
}

/// Lists the domain's DKIM keys with their DNS records.
#[utoipa::path(get, path = "/api/v1/domains/{name}/dkim", tag = "domains",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The domain name")),
    responses(
        (status = 200, description = "The domain's keys, by selector", body = [Key]),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such domain", body = ErrorBody),
    ))]
async fn list_keys(
    State(state): State<AppState>,
    ApiPath(domain): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    local_domain(&state, &domain).await?;
    let keys = state.store.list_dkim_keys(Some(&domain)).await?;
    Ok(axum::Json(keys.iter().map(Key::from).collect::<Vec<_>>()))
}

/// Generates a signing key for the domain; it signs from now on. Publish the
/// returned DNS record before sending mail that receivers should verify.
#[utoipa::path(post, path = "/api/v1/domains/{name}/dkim", tag = "domains",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The domain name")),
    request_body = GenerateKey,
    responses(
        (status = 201, description = "Generated", body = Key),
        (status = 400, description = "Bad selector or algorithm", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such domain", body = ErrorBody),
        (status = 409, description = "The selector is taken", body = ErrorBody),
        (status = 422, description = "The body is not a generate object", body = ErrorBody),
    ))]
async fn generate(
    State(state): State<AppState>,
    ApiPath(domain): ApiPath<String>,
    ApiJson(body): ApiJson<GenerateKey>,
) -> Result<impl IntoResponse, ApiError> {
    local_domain(&state, &domain).await?;
    let algorithm: DkimAlgorithm = match &body.algorithm {
        Some(name) => name.parse()?,
        None => DkimAlgorithm::RsaSha256,
    };
    let key = match create_key(&state.store, &domain, algorithm, body.selector.as_deref()).await {
        Ok(key) => key,
        Err(SignError::Store(e)) => return Err(e.into()),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            ));
        }
    };
    Ok((StatusCode::CREATED, axum::Json(Key::from(&key))))
}

/// Deletes a key: it no longer signs. Keep its DNS record published for a few days,
/// until mail signed with it has been delivered.
#[utoipa::path(delete, path = "/api/v1/domains/{name}/dkim/{selector}", tag = "domains",
    security(("bearer" = [])),
    params(
        ("name" = String, Path, description = "The domain name"),
        ("selector" = String, Path, description = "The key's selector"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such domain or key", body = ErrorBody),
    ))]
async fn delete_key(
    State(state): State<AppState>,
    ApiPath((domain, selector)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_dkim_key(&domain, &selector).await?;
    Ok(StatusCode::NO_CONTENT)
}
