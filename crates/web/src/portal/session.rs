//! Portal sessions: the cookie, sign-in with a password, sign-out.
//!
//! The cookie `mailroom_session` holds a random 256-bit id (hex); the store keeps
//! only its SHA-256, the account, the session's CSRF token and the expiry
//! (`[web] session_ttl`). [`start_session`] is the one way a session begins, whatever
//! proved who the user is: the password form here, a SAML assertion consumer later.
//!
//! The sign-in form has no session yet, so its CSRF token is a random value set in
//! the `mailroom_sign_in` cookie and repeated in the form (a double-submit token):
//! another site can make a browser post the form but can neither read nor set the
//! cookie.

use axum::extract::{Extension, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mailroom_auth::ThrottleVerdict;
use mailroom_store::{Account, NewWebSession, StoreError};
use maud::html;
use serde::Deserialize;

use super::layout::{Notice, page};
use super::{CurrentSession, PortalError, Signed, Visitor, cookie};
use crate::state::{AppState, digest};

pub(crate) const SESSION_COOKIE: &str = "mailroom_session";
pub(crate) const SIGN_IN_COOKIE: &str = "mailroom_sign_in";

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, for the whole site, `Secure` over
/// HTTPS. `max_age` 0 deletes the cookie.
fn set_cookie(name: &str, value: &str, max_age: u64, https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    // Names and values are ours: hex and ASCII.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The session the request's cookie names, if it is live.
pub(crate) async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<CurrentSession>, StoreError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = digest(token);
    Ok(state
        .store
        .web_session(&id_hash)
        .await?
        .map(|s| CurrentSession {
            account: s.account,
            admin: s.admin,
            csrf: s.csrf_secret,
            id_hash,
        }))
}

/// Starts a portal session for `account`, however it proved who it is, and returns
/// the `Set-Cookie` header value that carries it.
pub(crate) async fn start_session(
    state: &AppState,
    account: &Account,
    https: bool,
) -> Result<HeaderValue, StoreError> {
    let token = random_token();
    let ttl = state.config.web.session_ttl.as_secs().max(1);
    let expires_at = time::OffsetDateTime::now_utc().unix_timestamp()
        + i64::try_from(ttl).unwrap_or(i64::MAX / 2);
    state
        .store
        .create_web_session(NewWebSession {
            id_hash: digest(&token),
            account_id: account.id,
            csrf_secret: random_token(),
            expires_at,
        })
        .await?;
    tracing::info!(user = %account.address, "portal: signed in");
    Ok(set_cookie(SESSION_COOKIE, &token, ttl, https))
}

/// The name on the single sign-on button, when SAML is configured.
fn sso_name(state: &AppState) -> Option<&str> {
    state.saml.as_ref().map(|sp| sp.idp_name())
}

fn sign_in_form(
    csrf: &str,
    address: &str,
    notice: Option<Notice>,
    sso: Option<&str>,
) -> maud::Markup {
    page(
        "Sign in",
        None,
        notice,
        html! {
            h1 { "Sign in to your mail" }
            @if let Some(name) = sso {
                p.card {
                    a.button #sso href=(super::sso::LOGIN_PATH) { "Sign in with " (name) }
                }
                p.hint { "Or with your account password:" }
            }
            form.card method="post" action=(super::SIGN_IN_PATH) {
                input type="hidden" name="csrf" value=(csrf);
                label for="address" { "Email address" }
                input #address type="email" name="address" autocomplete="username" required autofocus value=(address);
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            p.hint { "Use your account password here. App passwords are for mail clients only." }
        },
    )
}

/// The sign-in page; a signed-in visitor goes to the overview.
pub(crate) async fn sign_in_page(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    headers: HeaderMap,
) -> Response {
    if visitor.session.is_some() {
        return Redirect::to("/portal/").into_response();
    }
    let (csrf, cookie_header) = sign_in_token(&headers, visitor.https);
    let mut response = sign_in_form(&csrf, "", None, sso_name(&state)).into_response();
    if let Some(value) = cookie_header {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The sign-in form's token: the one the cookie already has, or a new one with its
/// `Set-Cookie`.
fn sign_in_token(headers: &HeaderMap, https: bool) -> (String, Option<HeaderValue>) {
    match cookie(headers, SIGN_IN_COOKIE) {
        Some(token) if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (token.to_string(), None)
        }
        _ => {
            let token = random_token();
            let value = set_cookie(SIGN_IN_COOKIE, &token, 3600, https);
            (token, Some(value))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
}

/// Checks the password (throttled like IMAP and SMTP logins) and starts a session.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, PortalError> {
    let address = form.address.trim().to_string();
    let (csrf, _) = sign_in_token(&headers, visitor.https);
    if let ThrottleVerdict::Locked { retry_after } = state.throttle.check(visitor.peer, &address) {
        tracing::warn!(user = %address, peer = %visitor.peer, "portal sign-in refused: too many failures");
        let minutes = retry_after.as_secs().div_ceil(60).max(1);
        let notice = Notice::Error(format!(
            "Too many failed sign-ins. Try again in {minutes} minutes."
        ));
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            sign_in_form(&csrf, &address, Some(notice), sso_name(&state)),
        )
            .into_response());
    }
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if state.config.saml.password_off_for(domain) {
        tracing::info!(user = %address, peer = %visitor.peer, "portal password sign-in refused: the domain signs in through SAML");
        let name = sso_name(&state).unwrap_or("single sign-on");
        let notice = Notice::Error(format!(
            "Accounts of {domain} sign in with {name}, not with a password."
        ));
        return Ok((
            StatusCode::FORBIDDEN,
            sign_in_form(&csrf, &address, Some(notice), sso_name(&state)),
        )
            .into_response());
    }
    let account = if address.is_empty() || form.password.is_empty() {
        None
    } else {
        // The account password only: app passwords are for mail clients.
        state.store.authenticate(&address, &form.password).await?
    };
    let Some(account) = account else {
        let delay = state.throttle.failure(visitor.peer, &address);
        tracing::info!(user = %address, peer = %visitor.peer, "portal sign-in failed");
        tokio::time::sleep(delay).await;
        let notice = Notice::Error("Wrong email address or password.".into());
        return Ok((
            StatusCode::UNAUTHORIZED,
            sign_in_form(&csrf, &address, Some(notice), sso_name(&state)),
        )
            .into_response());
    };
    state.throttle.success(visitor.peer, &account.address);
    let cookie = start_session(&state, &account, visitor.https).await?;
    let mut response = Redirect::to("/portal/").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// Ends the session and clears its cookie.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    Signed(session, visitor): Signed,
) -> Result<Response, PortalError> {
    state.store.delete_web_session(&session.id_hash).await?;
    tracing::info!(user = %session.account.address, "portal: signed out");
    let mut response = Redirect::to(super::SIGN_IN_PATH).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, visitor.https),
    );
    Ok(response)
}
