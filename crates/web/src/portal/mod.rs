//! The web portal under `/portal`: pages rendered on the server (maud), every form
//! a plain HTML POST, no JavaScript needed.
//!
//! | Page | Who |
//! |---|---|
//! | `/portal/sign-in`, `POST /portal/sign-out` | anyone / signed in |
//! | `/portal/` overview: mailboxes, quota, shared with me, client set-up | signed in |
//! | `/portal/password`, `/portal/app-passwords`, `/portal/sharing` | signed in |
//! | `/portal/mailroom.mobileconfig` (Apple profile) | signed in |
//! | `/portal/admin/...` status, domains, accounts, aliases, queue | administrators |
//!
//! [`guard`] runs before every portal route: it finds the session from its cookie
//! and refuses, with 403, every POST whose `csrf` field is not the session's token
//! (or, for the sign-in form, the token of the sign-in cookie). Handlers therefore
//! never see a forged form.

mod account;
mod admin;
mod layout;
pub(crate) mod session;
mod sso;

pub(crate) use sso::router as sso_router;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mailroom_store::{Account, StoreError};
use subtle::ConstantTimeEq;

use crate::state::AppState;

pub(crate) use layout::Notice;

/// Largest form body accepted (the biggest form is a few hundred bytes).
const MAX_FORM_BYTES: usize = 64 * 1024;

pub(crate) const SIGN_IN_PATH: &str = "/portal/sign-in";

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(account::overview))
        .route(
            SIGN_IN_PATH,
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/portal/sign-out", post(session::sign_out))
        .route(
            "/portal/password",
            get(account::password_page).post(account::change_password),
        )
        .route(
            "/portal/app-passwords",
            get(account::app_passwords_page).post(account::create_app_password),
        )
        .route(
            "/portal/app-passwords/revoke",
            post(account::revoke_app_password),
        )
        .route(
            "/portal/sharing",
            get(account::sharing_page).post(account::grant),
        )
        .route("/portal/sharing/revoke", post(account::revoke_grant))
        .route(
            "/portal/mailroom.mobileconfig",
            get(crate::autoconfig::mobileconfig),
        )
        .route("/portal/portal.css", get(layout::stylesheet))
        .merge(admin::router())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), guard))
}

/// Who is asking, found by [`guard`] for every portal request.
#[derive(Clone)]
pub(crate) struct Visitor {
    pub session: Option<CurrentSession>,
    pub peer: IpAddr,
    /// The request came over HTTPS (as far as we can tell): cookies get `Secure`.
    pub https: bool,
}

/// A signed-in portal session.
#[derive(Clone)]
pub(crate) struct CurrentSession {
    pub account: Account,
    pub admin: bool,
    pub csrf: String,
    pub id_hash: [u8; 32],
}

/// Whether the request came over HTTPS: `[web] secure_cookies`, a TLS-terminating
/// proxy's `X-Forwarded-Proto: https`, or an `https` request URI.
fn is_https(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    state.config.web.secure_cookies
        || uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The value of cookie `name`, if the request sent it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The first value of field `name` in a form body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn tokens_match(given: Option<&str>, expected: Option<&str>) -> bool {
    match (given, expected) {
        (Some(given), Some(expected)) if !expected.is_empty() => {
            bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
        }
        _ => false,
    }
}

/// Before every portal route: the session, the CSRF check of every POST, and the
/// headers every page carries.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        // Without connection info (a router driven in-process) every visitor shares
        // one throttle record: stricter, never looser.
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let https = request.extensions().get::<crate::ServedOverTls>().is_some()
        || is_https(&state, request.headers(), request.uri());
    let session = match session::current(&state, request.headers()).await {
        Ok(session) => session,
        Err(e) => return PortalError::from(e).into_response(),
    };
    let mut request = request;
    if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return layout::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.",
                session.as_ref(),
            );
        };
        let given = form_field(&bytes, "csrf");
        let expected = if parts.uri.path() == SIGN_IN_PATH {
            cookie(&parts.headers, session::SIGN_IN_COOKIE).map(str::to_string)
        } else {
            session.as_ref().map(|s| s.csrf.clone())
        };
        if !tokens_match(given.as_deref(), expected.as_deref()) {
            tracing::warn!(
                path = parts.uri.path(),
                %peer,
                signed_in = session.is_some(),
                "portal form refused: missing or wrong CSRF token"
            );
            return layout::error_page(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back, reload the page and send it again.",
                session.as_ref(),
            );
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(Visitor {
        session,
        peer,
        https,
    });
    with_security_headers(next.run(request).await)
}

/// The headers every portal page carries (and the SAML pages: their errors are
/// portal pages): no caching, no framing, no sniffing, a strict CSP.
pub(crate) fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Extractor: the signed-in session; a visitor without one is sent to sign in.
pub(crate) struct Signed(pub CurrentSession, pub Visitor);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        let visitor = parts
            .extensions
            .get::<Visitor>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        match visitor.session.clone() {
            Some(session) => Ok(Signed(session, visitor)),
            None => Err(Redirect::to(SIGN_IN_PATH).into_response()),
        }
    }
}

/// Extractor: a signed-in administrator; others get 403.
pub(crate) struct AdminSigned(pub CurrentSession);

impl FromRequestParts<AppState> for AdminSigned {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Signed(session, visitor) = Signed::from_request_parts(parts, state).await?;
        if !session.admin {
            tracing::warn!(user = %session.account.address, peer = %visitor.peer, path = parts.uri.path(), "portal: administration refused to a non-admin");
            return Err(layout::error_page(
                StatusCode::FORBIDDEN,
                "Only administrators may use these pages.",
                Some(&session),
            ));
        }
        Ok(AdminSigned(session))
    }
}

/// A failure that is not the user's: the store failed.
#[derive(Debug)]
pub(crate) struct PortalError(StoreError);

impl From<StoreError> for PortalError {
    fn from(e: StoreError) -> Self {
        PortalError(e)
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "portal: store failure");
        layout::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server could not answer just now. Try again in a moment.",
            None,
        )
    }
}

/// What a store error means for a form: a notice and status for the user's own
/// mistakes (no such thing, already exists, invalid), a [`PortalError`] otherwise.
pub(crate) fn form_failure(e: StoreError) -> Result<(StatusCode, Notice), PortalError> {
    let status = match &e {
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::AlreadyExists { .. } => StatusCode::CONFLICT,
        StoreError::Invalid { .. } | StoreError::Cannot(_) => StatusCode::BAD_REQUEST,
        StoreError::OverQuota => StatusCode::CONFLICT,
        _ => return Err(PortalError(e)),
    };
    Ok((status, Notice::Error(capitalise(&e.to_string()))))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Seconds since the Unix epoch as `2026-03-02 10:00 UTC`.
pub(crate) fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A byte count for people: `1.5 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("xmailroom_session=no; mailroom_session=yes"),
        );
        assert_eq!(cookie(&headers, "mailroom_session"), Some("yes"));
        assert_eq!(cookie(&headers, "other"), None);
    }

    #[test]
    fn tokens_must_be_present_and_equal() {
        assert!(tokens_match(Some("abc"), Some("abc")));
        assert!(!tokens_match(Some("abd"), Some("abc")));
        assert!(!tokens_match(None, Some("abc")));
        assert!(!tokens_match(Some(""), Some("")));
        assert!(!tokens_match(Some("abc"), None));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
