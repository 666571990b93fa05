//! SAML 2.0 single sign-on to the portal (see `mailroom_auth::saml`).
//!
//! | Route | What |
//! |---|---|
//! | `GET /saml/metadata` | this service provider's metadata, for the IdP |
//! | `GET /saml/login` | starts an SP-initiated sign-in: redirect to the IdP with an AuthnRequest (HTTP-Redirect binding) |
//! | `POST /saml/acs` | the assertion consumer (HTTP-POST binding): checks the response, finds or creates the account, starts a portal session |
//!
//! The consumer is outside the portal's CSRF guard: the IdP's page posts it, from
//! another site. What protects it is the signed response answering a request this
//! server issued, once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mailroom_auth::{SamlError, SamlLogin, SamlServiceProvider};
use mailroom_store::{Account, StoreError};

use super::layout::error_page;
use super::session::start_session;
use super::{PortalError, form_field, is_https};
use crate::state::AppState;

pub(crate) const LOGIN_PATH: &str = "/saml/login";

/// The SAML routes; none when SAML is not configured.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    if state.saml.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/saml/metadata", get(metadata))
        .route(LOGIN_PATH, get(login))
        .route("/saml/acs", post(acs))
        .layer(axum::middleware::map_response(
            |response: Response| async move { super::with_security_headers(response) },
        ))
}

/// The SP; the routes exist only when it does.
fn sp(state: &AppState) -> Option<Arc<SamlServiceProvider>> {
    state.saml.clone()
}

async fn metadata(State(state): State<AppState>) -> Response {
    let Some(sp) = sp(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match sp.metadata_xml() {
        Ok(xml) => (
            [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
            xml,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "SAML: could not write the SP metadata");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn login(State(state): State<AppState>) -> Response {
    let Some(sp) = sp(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match sp.start_login() {
        Ok(redirect) => {
            tracing::info!(request_id = %redirect.request_id, idp = sp.idp_entity_id(), "SAML: sign-in started");
            Redirect::to(&redirect.url).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "SAML: could not start a sign-in");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Single sign-on could not start. Try again, or ask your administrator.",
                None,
            )
        }
    }
}

/// The assertion consumer: everything between the IdP's POST and the portal.
async fn acs(State(state): State<AppState>, request: Request) -> Response {
    let Some(sp) = sp(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let https = is_https(&state, request.headers(), request.uri());
    let limit = usize::try_from(state.config.saml.max_response_size.0).unwrap_or(usize::MAX);
    let Ok(body) = axum::body::to_bytes(request.into_body(), limit).await else {
        tracing::warn!(%peer, limit, "SAML: response refused: larger than saml.max_response_size");
        return error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The sign-in answer from your identity provider is too large.",
            None,
        );
    };
    let Some(saml_response) = form_field(&body, "SAMLResponse") else {
        tracing::warn!(%peer, "SAML: POST without SAMLResponse");
        return error_page(
            StatusCode::BAD_REQUEST,
            "This page takes the answer of your identity provider; none came. Start again from the sign-in page.",
            None,
        );
    };
    // XML parsing and signature checks are CPU work.
    let checked = tokio::task::spawn_blocking(move || sp.finish_login(&saml_response)).await;
    let login = match checked {
        Ok(Ok(login)) => login,
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "SAML: sign-in refused");
            return refused(&e);
        }
        Err(e) => {
            tracing::error!(%peer, error = %e, "SAML: the check of a response failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    match sign_in(&state, &login, https).await {
        Ok(response) => response,
        Err(SignInError::NoAccount) => {
            tracing::warn!(%peer, user = %login.address, assertion = %login.assertion_id, "SAML: no account for the signed-in user");
            error_page(
                StatusCode::FORBIDDEN,
                &format!(
                    "Your identity provider signed you in as {}, but this server has no mail account for that address. Ask your administrator.",
                    login.address
                ),
                None,
            )
        }
        Err(SignInError::Store(e)) => PortalError::from(e).into_response(),
    }
}

fn refused(e: &SamlError) -> Response {
    if let SamlError::Refused { check, .. } = e {
        return error_page(
            StatusCode::FORBIDDEN,
            &format!(
                "The answer of your identity provider was refused: {check}. Start again from the sign-in page; if it keeps failing, ask your administrator."
            ),
            None,
        );
    }
    let (status, message) = match e {
        SamlError::Malformed(_) => (
            StatusCode::BAD_REQUEST,
            "The answer of your identity provider could not be read. Start again from the sign-in page.",
        ),
        SamlError::UnknownRequest(_) => (
            StatusCode::FORBIDDEN,
            "This sign-in answer does not match a sign-in started here, or it was already used or is too old. Start again from the sign-in page.",
        ),
        SamlError::Replayed(_) => (
            StatusCode::FORBIDDEN,
            "This sign-in answer was already used. Start again from the sign-in page.",
        ),
        SamlError::NoAddress(_) => (
            StatusCode::FORBIDDEN,
            "Your identity provider did not say which email address you have. Ask your administrator.",
        ),
        _ => (
            StatusCode::FORBIDDEN,
            "The answer of your identity provider was refused. Start again from the sign-in page; if it keeps failing, ask your administrator.",
        ),
    };
    error_page(status, message, None)
}

enum SignInError {
    NoAccount,
    Store(StoreError),
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        SignInError::Store(e)
    }
}

/// Finds (or, for `[saml] jit_domains`, creates) the account, applies the admin
/// attribute and starts the session.
async fn sign_in(
    state: &AppState,
    login: &SamlLogin,
    https: bool,
) -> Result<Response, SignInError> {
    let account = account_for(state, &login.address).await?;
    if login.admin && !state.store.is_admin(account.id).await? {
        state.store.set_admin(&account.address, true).await?;
        tracing::info!(user = %account.address, "SAML: administrator by the IdP's admin attribute");
    }
    let cookie = start_session(state, &account, https).await?;
    tracing::info!(user = %account.address, assertion = %login.assertion_id, "SAML: signed in");
    let mut response = Redirect::to("/portal/").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

async fn account_for(state: &AppState, address: &str) -> Result<Account, SignInError> {
    if let Some(account) = state.store.account(address).await? {
        return Ok(account);
    }
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let jit = state
        .config
        .saml
        .jit_domains
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain));
    if !jit || !state.store.is_local_domain(domain).await? {
        return Err(SignInError::NoAccount);
    }
    // Nobody knows this password: the user signs in through the IdP and gives mail
    // clients app passwords.
    let password = hex::encode(rand::random::<[u8; 32]>());
    match state.store.create_account(address, &password).await {
        Ok(account) => {
            tracing::info!(user = %account.address, "SAML: account created at first sign-in");
            Ok(account)
        }
        // Two first sign-ins at once: the other one created it.
        Err(StoreError::AlreadyExists { .. }) => state
            .store
            .account(address)
            .await?
            .ok_or(SignInError::NoAccount),
        Err(e) => Err(e.into()),
    }
}
