//! The frame of every portal page: header with navigation and sign-out, notices,
//! and our stylesheet.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::CurrentSession;

/// A message at the top of a page after a form was sent.
#[derive(Debug, Clone)]
pub(crate) enum Notice {
    Done(String),
    Error(String),
}

const STYLESHEET: &str = include_str!("../../static/portal.css");

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Links of the navigation: (path, label, admin only).
const NAV: [(&str, &str, bool); 9] = [
    ("/portal/", "Overview", false),
    ("/portal/app-passwords", "App passwords", false),
    ("/portal/sharing", "Sharing", false),
    ("/portal/password", "Password", false),
    ("/portal/admin/", "Status", true),
    ("/portal/admin/domains", "Domains", true),
    ("/portal/admin/accounts", "Accounts", true),
    ("/portal/admin/aliases", "Aliases", true),
    ("/portal/admin/queue", "Queue", true),
];

/// A whole page. `current` is the path of the page, for the navigation.
pub(crate) fn page(
    title: &str,
    session: Option<(&CurrentSession, &str)>,
    notice: Option<Notice>,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mailroom" }
                link rel="stylesheet" href="/portal/portal.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/portal/" { "mailroom" }
                    @if let Some((session, current)) = session {
                        nav aria-label="Portal" {
                            @for (path, label, admin_only) in NAV {
                                @if !admin_only || session.admin {
                                    @if path == current {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                        span.who { (session.account.address) }
                        form.inline method="post" action="/portal/sign-out" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.plain type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    @match notice {
                        Some(Notice::Done(text)) => div.notice.ok role="status" { (text) },
                        Some(Notice::Error(text)) => div.notice.error role="alert" { (text) },
                        None => {},
                    }
                    (content)
                }
            }
        }
    }
}

/// A page that only says what went wrong, with its status.
pub(crate) fn error_page(
    status: StatusCode,
    message: &str,
    session: Option<&CurrentSession>,
) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = page(
        title,
        session.map(|s| (s, "")),
        Some(Notice::Error(message.to_string())),
        html! {
            h1 { (title) }
            p { a href="/portal/" { "Back to the portal" } }
        },
    );
    (status, body).into_response()
}
