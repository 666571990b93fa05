//! The pages of a signed-in user: overview, password, app passwords, sharing.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mailroom_auth::ThrottleVerdict;
use mailroom_store::{AppPasswordScope, Rights, RightsOp};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Notice, page};
use super::{CurrentSession, PortalError, Signed, bytes, form_failure, when};
use crate::state::AppState;

type PageResult = Result<Response, PortalError>;

fn respond(status: StatusCode, markup: Markup) -> PageResult {
    Ok((status, markup).into_response())
}

// ---- overview ----

pub(crate) async fn overview(
    State(state): State<AppState>,
    Signed(session, _): Signed,
) -> PageResult {
    let store = &state.store;
    let account = &session.account;
    let usage = store.quota_usage(account.id).await?;
    let mut mailboxes = Vec::new();
    for mailbox in store.list_mailboxes(account.id).await? {
        if mailbox.noselect {
            continue;
        }
        let status = store.mailbox_status(mailbox.id).await?;
        mailboxes.push((mailbox, status));
    }
    let shared = store.shared_mailboxes(account.id).await?;
    let settings = crate::autoconfig::ClientSettings::from_config(&state.config);
    let content = html! {
        h1 { "Your mail" }
        section.card aria-labelledby="usage" {
            h2 #usage { "Storage" }
            @match usage.limit_bytes {
                Some(limit) => {
                    label for="quota" { (bytes(usage.used_bytes)) " of " (bytes(limit)) " used" }
                    br;
                    progress #quota max=(limit.max(1)) value=(usage.used_bytes.min(limit)) {
                        (usage.used_bytes * 100 / limit.max(1)) "%"
                    }
                }
                None => p { (bytes(usage.used_bytes)) " used; no quota." },
            }
        }
        h2 { "Mailboxes" }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Mailbox" } th.num scope="col" { "Messages" } th.num scope="col" { "Unread" } th.num scope="col" { "Size" } } }
                tbody {
                    @for (mailbox, status) in &mailboxes {
                        tr {
                            th scope="row" { (mailbox.name) }
                            td.num { (status.messages) }
                            td.num { (status.unseen) }
                            td.num { (bytes(status.size)) }
                        }
                    }
                }
            }
        }
        h2 { "Shared with you" }
        @if shared.is_empty() {
            p.hint { "No one shares a mailbox with you." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Mailbox" } th scope="col" { "Owner" } th scope="col" { "Your rights" } } }
                    tbody {
                        @for s in &shared {
                            tr { th scope="row" { (s.mailbox.name) } td { (s.owner) } td { code { (s.rights.letters()) } } }
                        }
                    }
                }
            }
        }
        h2 { "Set up a mail client" }
        div.card {
            p { "Most clients (Thunderbird, Outlook, iOS) find these settings by themselves from your address. Sign in with an " a href="/portal/app-passwords" { "app password" } "." }
            dl.facts {
                @for server in &settings.servers {
                    dt { (server.label()) }
                    dd { code { (settings.hostname) } " port " (server.port) ", " (server.security_label()) }
                }
                dt { "User name" }
                dd { code { (account.address) } }
            }
            p { a href="/portal/mailroom.mobileconfig" download="mailroom.mobileconfig" { "Download the profile for iPhone, iPad and Mac" } }
        }
    };
    respond(
        StatusCode::OK,
        page("Overview", Some((&session, "/portal/")), None, content),
    )
}

// ---- password ----

/// Whether the signed-in user's domain signs in through the identity provider only
/// (`[saml] domains` without `allow_password`): their password is the IdP's.
fn password_at_idp(state: &AppState, session: &CurrentSession) -> bool {
    let domain = session
        .account
        .address
        .rsplit_once('@')
        .map_or("", |(_, d)| d);
    state.config.saml.password_off_for(domain)
}

fn sso_password_view(session: &CurrentSession, notice: Option<Notice>) -> Markup {
    page(
        "Password",
        Some((session, "/portal/password")),
        notice,
        html! {
            h1 { "Your password" }
            p.card { "Your organisation's identity provider signs you in, so your password is changed there, not here. Mail clients use app passwords." }
            p { a href="/portal/app-passwords" { "Manage your app passwords" } }
        },
    )
}

fn password_view(session: &CurrentSession, notice: Option<Notice>) -> Markup {
    page(
        "Password",
        Some((session, "/portal/password")),
        notice,
        html! {
            h1 { "Change your password" }
            form.card method="post" action="/portal/password" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="current" { "Current password" }
                input #current type="password" name="current" autocomplete="current-password" required;
                label for="new" { "New password" }
                input #new type="password" name="new" autocomplete="new-password" required minlength="8";
                label for="repeat" { "New password again" }
                input #repeat type="password" name="repeat" autocomplete="new-password" required minlength="8";
                button type="submit" { "Change password" }
            }
            p.hint { "Your other portal sessions end; app passwords keep working." }
        },
    )
}

pub(crate) async fn password_page(
    State(state): State<AppState>,
    Signed(session, _): Signed,
) -> PageResult {
    if password_at_idp(&state, &session) {
        return respond(StatusCode::OK, sso_password_view(&session, None));
    }
    respond(StatusCode::OK, password_view(&session, None))
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

pub(crate) async fn change_password(
    State(state): State<AppState>,
    Signed(session, visitor): Signed,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    if password_at_idp(&state, &session) {
        // Not a password this server checks at sign-in: changing it would do nothing.
        let notice = Notice::Error("Change your password at your identity provider.".into());
        return respond(
            StatusCode::FORBIDDEN,
            sso_password_view(&session, Some(notice)),
        );
    }
    let address = session.account.address.clone();
    let fail = |status, text: &str| {
        respond(
            status,
            password_view(&session, Some(Notice::Error(text.to_string()))),
        )
    };
    if form.new.chars().count() < 8 {
        return fail(
            StatusCode::BAD_REQUEST,
            "Choose a new password of at least 8 characters.",
        );
    }
    if form.new != form.repeat {
        return fail(
            StatusCode::BAD_REQUEST,
            "The two new passwords differ; type the same one twice.",
        );
    }
    if let ThrottleVerdict::Locked { .. } = state.throttle.check(visitor.peer, &address) {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong passwords. Try again later.",
        );
    }
    if state
        .store
        .authenticate(&address, &form.current)
        .await?
        .is_none()
    {
        let delay = state.throttle.failure(visitor.peer, &address);
        tokio::time::sleep(delay).await;
        return fail(StatusCode::FORBIDDEN, "The current password is wrong.");
    }
    if let Err(e) = state.store.set_password(&address, &form.new).await {
        let (status, notice) = form_failure(e)?;
        return respond(status, password_view(&session, Some(notice)));
    }
    state
        .store
        .delete_other_web_sessions(session.account.id, &session.id_hash)
        .await?;
    tracing::info!(user = %address, "portal: password changed");
    respond(
        StatusCode::OK,
        password_view(
            &session,
            Some(Notice::Done("Your password is changed.".into())),
        ),
    )
}

// ---- app passwords ----

fn scope_label(scope: AppPasswordScope) -> &'static str {
    match scope {
        AppPasswordScope::Imap => "Reading mail (IMAP)",
        AppPasswordScope::Smtp => "Sending mail (SMTP)",
        AppPasswordScope::Both => "Reading and sending",
    }
}

async fn app_passwords_view(
    state: &AppState,
    session: &CurrentSession,
    notice: Option<Notice>,
    created: Option<(&str, &str)>,
) -> Result<Markup, PortalError> {
    let list = state.store.app_passwords(session.account.id).await?;
    Ok(page(
        "App passwords",
        Some((session, "/portal/app-passwords")),
        notice,
        html! {
            h1 { "App passwords" }
            p { "An app password lets one mail client sign in without your account password. Create one per client, and revoke it when you stop using the client." }
            @if let Some((name, secret)) = created {
                section.card #created aria-labelledby="created-title" {
                    h2 #created-title { "New app password for " (name) }
                    p { "Copy it into your mail client now. It is not shown again." }
                    p { output #new-secret.secret { (secret) } }
                }
            }
            form.card method="post" action="/portal/app-passwords" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="name" { "Name" }
                input #name type="text" name="name" required maxlength="100" placeholder="e.g. Thunderbird on my laptop";
                label for="scope" { "May be used for" }
                select #scope name="scope" {
                    option value="both" selected { (scope_label(AppPasswordScope::Both)) }
                    option value="imap" { (scope_label(AppPasswordScope::Imap)) }
                    option value="smtp" { (scope_label(AppPasswordScope::Smtp)) }
                }
                button type="submit" { "Create app password" }
            }
            h2 { "Your app passwords" }
            @if list.is_empty() {
                p.hint { "You have none yet." }
            } @else {
                div.table-wrap {
                    table.cards {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Used for" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { span.skip { "Action" } } } }
                        tbody {
                            @for app in &list {
                                tr {
                                    th scope="row" { (app.name) }
                                    td data-label="Used for" { (scope_label(app.scope)) }
                                    td data-label="Created" { (when(app.created_at)) }
                                    td data-label="Last used" { @match app.last_used_at { Some(t) => (when(t)), None => "never" } }
                                    td {
                                        form.inline method="post" action="/portal/app-passwords/revoke" {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            input type="hidden" name="id" value=(app.id);
                                            button.danger type="submit" aria-label={ "Revoke " (app.name) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.hint { "App passwords work with IMAP LOGIN and AUTHENTICATE PLAIN, and SMTP AUTH PLAIN and LOGIN. Clients that insist on SCRAM-SHA-256 need the account password." }
        },
    ))
}

pub(crate) async fn app_passwords_page(
    State(state): State<AppState>,
    Signed(session, _): Signed,
) -> PageResult {
    respond(
        StatusCode::OK,
        app_passwords_view(&state, &session, None, None).await?,
    )
}

#[derive(Deserialize)]
pub(crate) struct NewAppPassword {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
}

pub(crate) async fn create_app_password(
    State(state): State<AppState>,
    Signed(session, _): Signed,
    Form(form): Form<NewAppPassword>,
) -> PageResult {
    let Some(scope) = AppPasswordScope::parse(&form.scope) else {
        let notice = Notice::Error("Choose what the app password may be used for.".into());
        return respond(
            StatusCode::BAD_REQUEST,
            app_passwords_view(&state, &session, Some(notice), None).await?,
        );
    };
    match state
        .store
        .create_app_password(session.account.id, &form.name, scope)
        .await
    {
        Ok((app, secret)) => {
            tracing::info!(user = %session.account.address, name = %app.name, scope = scope.as_str(), "portal: app password created");
            respond(
                StatusCode::OK,
                app_passwords_view(&state, &session, None, Some((&app.name, &secret))).await?,
            )
        }
        Err(e) => {
            let (status, notice) = form_failure(e)?;
            respond(
                status,
                app_passwords_view(&state, &session, Some(notice), None).await?,
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    id: String,
}

pub(crate) async fn revoke_app_password(
    State(state): State<AppState>,
    Signed(session, _): Signed,
    Form(form): Form<RevokeForm>,
) -> PageResult {
    let result = match form.id.parse::<i64>() {
        Ok(id) => state
            .store
            .revoke_app_password(session.account.id, id)
            .await
            .map(|()| id),
        Err(_) => Err(mailroom_store::StoreError::NotFound {
            what: mailroom_store::Entity::AppPassword,
            name: form.id.clone(),
        }),
    };
    let (status, notice) = match result {
        Ok(id) => {
            tracing::info!(user = %session.account.address, id, "portal: app password revoked");
            (
                StatusCode::OK,
                Notice::Done("The app password is revoked.".into()),
            )
        }
        Err(e) => form_failure(e)?,
    };
    respond(
        status,
        app_passwords_view(&state, &session, Some(notice), None).await?,
    )
}

// ---- sharing ----

/// Sets of rights offered in the form (RFC 4314 letters).
const RIGHT_SETS: [(&str, &str); 3] = [
    ("lrs", "Read (see, open, mark read)"),
    (
        "lrswit",
        "Read and file (also flag, add and delete messages)",
    ),
    ("lrswipkxte", "Full (also create, rename and expunge)"),
];

async fn sharing_view(
    state: &AppState,
    session: &CurrentSession,
    notice: Option<Notice>,
) -> Result<Markup, PortalError> {
    let mut mailboxes = Vec::new();
    for mailbox in state.store.list_mailboxes(session.account.id).await? {
        if mailbox.noselect {
            continue;
        }
        let acl = state.store.acl(mailbox.id).await?;
        mailboxes.push((mailbox, acl));
    }
    Ok(page(
        "Sharing",
        Some((session, "/portal/sharing")),
        notice,
        html! {
            h1 { "Share your mailboxes" }
            p { "People you share a mailbox with see it in their mail client under " code { "Shared/" (session.account.address) } "." }
            form.card method="post" action="/portal/sharing" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="mailbox" { "Mailbox" }
                select #mailbox name="mailbox" {
                    @for (mailbox, _) in &mailboxes { option value=(mailbox.name) { (mailbox.name) } }
                }
                label for="identifier" { "Share with (address, or " code { "anyone" } ")" }
                input #identifier type="text" name="identifier" required placeholder="bob@example.org";
                label for="rights" { "Rights" }
                select #rights name="rights" {
                    @for (letters, label) in RIGHT_SETS { option value=(letters) { (label) } }
                }
                button type="submit" { "Share" }
            }
            h2 { "Shared now" }
            @let shared: Vec<_> = mailboxes.iter().filter(|(_, acl)| !acl.is_empty()).collect();
            @if shared.is_empty() {
                p.hint { "You share no mailbox." }
            } @else {
                div.table-wrap {
                    table.cards {
                        thead { tr { th scope="col" { "Mailbox" } th scope="col" { "With" } th scope="col" { "Rights" } th scope="col" { span.skip { "Action" } } } }
                        tbody {
                            @for (mailbox, acl) in shared {
                                @for entry in acl {
                                    tr {
                                        th scope="row" { (mailbox.name) }
                                        td data-label="With" { (entry.identifier) }
                                        td data-label="Rights" { code { (entry.rights.letters()) } }
                                        td {
                                            form.inline method="post" action="/portal/sharing/revoke" {
                                                input type="hidden" name="csrf" value=(session.csrf);
                                                input type="hidden" name="mailbox" value=(mailbox.name);
                                                input type="hidden" name="identifier" value=(entry.identifier);
                                                button.danger type="submit" aria-label={ "Stop sharing " (mailbox.name) " with " (entry.identifier) } { "Stop sharing" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

pub(crate) async fn sharing_page(
    State(state): State<AppState>,
    Signed(session, _): Signed,
) -> PageResult {
    respond(StatusCode::OK, sharing_view(&state, &session, None).await?)
}

#[derive(Deserialize)]
pub(crate) struct GrantForm {
    #[serde(default)]
    mailbox: String,
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    rights: String,
}

pub(crate) async fn grant(
    State(state): State<AppState>,
    Signed(session, _): Signed,
    Form(form): Form<GrantForm>,
) -> PageResult {
    let outcome = async {
        let Ok(rights) = Rights::parse(&form.rights) else {
            return Ok((
                StatusCode::BAD_REQUEST,
                Notice::Error("Choose the rights to give.".into()),
            ));
        };
        let Some(mailbox) = state
            .store
            .mailbox(session.account.id, &form.mailbox)
            .await?
        else {
            return Ok((
                StatusCode::NOT_FOUND,
                Notice::Error(format!("You have no mailbox {:?}.", form.mailbox)),
            ));
        };
        let identifier = form.identifier.trim();
        match state
            .store
            .set_acl(mailbox.id, identifier, RightsOp::Replace, rights)
            .await
        {
            Ok(_) => Ok((
                StatusCode::OK,
                Notice::Done(format!("{} is shared with {identifier}.", mailbox.name)),
            )),
            Err(e) => form_failure(e),
        }
    }
    .await?;
    respond(
        outcome.0,
        sharing_view(&state, &session, Some(outcome.1)).await?,
    )
}

#[derive(Deserialize)]
pub(crate) struct RevokeGrantForm {
    #[serde(default)]
    mailbox: String,
    #[serde(default)]
    identifier: String,
}

pub(crate) async fn revoke_grant(
    State(state): State<AppState>,
    Signed(session, _): Signed,
    Form(form): Form<RevokeGrantForm>,
) -> PageResult {
    let outcome = async {
        let Some(mailbox) = state
            .store
            .mailbox(session.account.id, &form.mailbox)
            .await?
        else {
            return Ok((
                StatusCode::NOT_FOUND,
                Notice::Error(format!("You have no mailbox {:?}.", form.mailbox)),
            ));
        };
        match state.store.delete_acl(mailbox.id, &form.identifier).await {
            Ok(true) => Ok((
                StatusCode::OK,
                Notice::Done(format!(
                    "{} is no longer shared with {}.",
                    mailbox.name, form.identifier
                )),
            )),
            Ok(false) => Ok((
                StatusCode::NOT_FOUND,
                Notice::Error(format!(
                    "{} was not shared with {}.",
                    mailbox.name, form.identifier
                )),
            )),
            Err(e) => form_failure(e),
        }
    }
    .await?;
    respond(
        outcome.0,
        sharing_view(&state, &session, Some(outcome.1)).await?,
    )
}
