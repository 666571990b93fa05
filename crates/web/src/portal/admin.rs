//! Administration pages: server status, domains and their DKIM keys, accounts,
//! aliases and the outbound queue. Each form does what the JSON admin API does, through the same store calls.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailroom_delivery::sign::{SignError, create_key, dns_record};
use mailroom_store::{DkimAlgorithm, StoreError};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Notice, page};
use super::{AdminSigned, CurrentSession, PortalError, bytes, form_failure, when};
use crate::state::AppState;

type PageResult = Result<Response, PortalError>;
type Outcome = Result<(StatusCode, Notice), PortalError>;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/portal/admin/", get(status))
        .route("/portal/admin", get(status))
        .route("/portal/admin/domains", get(domains).post(add_domain))
        .route("/portal/admin/domains/delete", post(delete_domain))
        .route("/portal/admin/dkim", post(generate_dkim))
        .route("/portal/admin/dkim/delete", post(delete_dkim))
        .route("/portal/admin/accounts", get(accounts).post(create_account))
        .route("/portal/admin/accounts/quota", post(set_quota))
        .route("/portal/admin/accounts/admin", post(set_admin))
        .route("/portal/admin/accounts/delete", post(delete_account))
        .route("/portal/admin/aliases", get(aliases).post(add_alias))
        .route("/portal/admin/aliases/delete", post(delete_alias))
        .route("/portal/admin/queue", get(queue))
        .route("/portal/admin/queue/retry", post(retry_queued))
        .route("/portal/admin/queue/delete", post(delete_queued))
}

fn done(text: String) -> Outcome {
    Ok((StatusCode::OK, Notice::Done(text)))
}

fn refused(status: StatusCode, text: impl Into<String>) -> Outcome {
    Ok((status, Notice::Error(text.into())))
}

fn outcome<T>(result: Result<T, StoreError>, text: impl FnOnce(T) -> String) -> Outcome {
    match result {
        Ok(value) => done(text(value)),
        Err(e) => form_failure(e),
    }
}

/// The "I mean it" box of a destructive form; refused without it.
fn confirmed(confirm: &str) -> bool {
    confirm == "on" || confirm == "yes"
}

fn csrf(session: &CurrentSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

// ---- status ----

pub(crate) async fn status(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
) -> PageResult {
    let store_ok = state.store.ping().await.is_ok();
    let listeners = state.readiness.is_ready();
    let queue = state.store.queue_size().await?;
    let size = state.store.store_size().await?;
    let domains = state.store.list_domains().await?.len();
    let accounts = state.store.list_accounts().await?.len();
    let ready = store_ok && listeners;
    let content = html! {
        h1 { "Server status" }
        div.card {
            dl.facts {
                dt { "Ready" }
                dd { @if ready { "yes" } @else { strong { "no" } } " (" a href="/readyz" { "/readyz" } ")" }
                dt { "Store answers" } dd { @if store_ok { "yes" } @else { strong { "no" } } }
                dt { "Listeners bound" } dd { @if listeners { "yes" } @else { strong { "no" } } }
                dt { "Host name" } dd { code { (state.config.hostname) } }
                dt { "Version" } dd { (env!("CARGO_PKG_VERSION")) }
                dt { "Outbound queue" } dd { (queue) " messages" }
                dt { "Store file" } dd { (bytes(size.database_bytes)) }
                dt { "Message content" } dd { (bytes(size.content_bytes)) " in " (size.messages) " messages" }
                dt { "Domains" } dd { (domains) }
                dt { "Accounts" } dd { (accounts) }
            }
        }
    };
    Ok((
        StatusCode::OK,
        page("Status", Some((&session, "/portal/admin/")), None, content),
    )
        .into_response())
}

// ---- domains ----

async fn domains_view(
    state: &AppState,
    session: &CurrentSession,
    notice: Option<Notice>,
) -> Result<Markup, PortalError> {
    let domains = state.store.list_domains().await?;
    let keys = state.store.list_dkim_keys(None).await?;
    let settings = crate::autoconfig::ClientSettings::from_config(&state.config);
    Ok(page(
        "Domains",
        Some((session, "/portal/admin/domains")),
        notice,
        html! {
            h1 { "Domains" }
            form.row.card method="post" action="/portal/admin/domains" {
                (csrf(session))
                div { label for="domain" { "New domain" } br; input #domain type="text" name="name" required placeholder="example.org"; }
                button type="submit" { "Add domain" }
            }
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Domain" } th scope="col" { "Delete (with all its accounts and mail)" } } }
                    tbody {
                        @for domain in &domains {
                            tr {
                                th scope="row" { (domain.name) }
                                td {
                                    form.row method="post" action="/portal/admin/domains/delete" {
                                        (csrf(session))
                                        input type="hidden" name="name" value=(domain.name);
                                        label.check { input type="checkbox" name="confirm" required; "I am sure" }
                                        button.danger type="submit" aria-label={ "Delete " (domain.name) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (dkim_section(session, &domains, &keys))
            @if !domains.is_empty() {
                h2 #dns { "DNS records for mail clients" }
                p { "With these SRV records (RFC 6186) clients find the servers from the address alone; the ports are those this server listens on. Thunderbird and Outlook also look for " code { "autoconfig." } " and " code { "autodiscover." } " host names pointing at this server's web address." }
                pre.card aria-labelledby="dns" {
                    @for domain in &domains {
                        @for record in crate::autoconfig::srv_records(&settings, &domain.name) { (record) "\n" }
                    }
                }
            }
        },
    ))
}

async fn domains(State(state): State<AppState>, AdminSigned(session): AdminSigned) -> PageResult {
    Ok((StatusCode::OK, domains_view(&state, &session, None).await?).into_response())
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    confirm: String,
}

async fn add_domain(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<NameForm>,
) -> PageResult {
    let (status, notice) = outcome(state.store.add_domain(&form.name).await, |d| {
        format!("Domain {} added.", d.name)
    })?;
    Ok((status, domains_view(&state, &session, Some(notice)).await?).into_response())
}

async fn delete_domain(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<NameForm>,
) -> PageResult {
    let (status, notice) = if confirmed(&form.confirm) {
        outcome(state.store.delete_domain(&form.name).await, |()| {
            format!("Domain {} deleted.", form.name)
        })?
    } else {
        refused(
            StatusCode::BAD_REQUEST,
            "Tick \"I am sure\" to delete a domain.",
        )?
    };
    Ok((status, domains_view(&state, &session, Some(notice)).await?).into_response())
}

// ---- DKIM keys ----

#[derive(Deserialize)]
struct DkimForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    selector: String,
    #[serde(default)]
    confirm: String,
}

/// The DKIM keys of every domain with the TXT records that publish them, a form to
/// generate one and a button to delete each: what `mailroom dkim` and
/// `/api/v1/domains/{name}/dkim` do.
fn dkim_section(
    session: &CurrentSession,
    domains: &[mailroom_store::Domain],
    keys: &[mailroom_store::DkimKey],
) -> Markup {
    html! {
        h2 #dkim { "DKIM signing keys" }
        p { "Mail your users submit is signed with every key of its From: domain (RFC 6376; Ed25519 of RFC 8463 beside RSA). Publish each key's TXT record before relying on it; after deleting a key, keep its record a few days, until mail signed with it has arrived." }
        @if !domains.is_empty() {
            form.row.card method="post" action="/portal/admin/dkim" {
                (csrf(session))
                div { label for="dkim-domain" { "Domain" } br;
                    select #dkim-domain name="domain" required {
                        @for domain in domains { option value=(domain.name) { (domain.name) } }
                    }
                }
                div { label for="dkim-algorithm" { "Algorithm" } br;
                    select #dkim-algorithm name="algorithm" {
                        option value="rsa" selected { "RSA 2048" }
                        option value="ed25519" { "Ed25519" }
                    }
                }
                div { label for="dkim-selector" { "Selector (optional)" } br; input #dkim-selector type="text" name="selector" placeholder="mr202612r"; }
                button type="submit" { "Generate key" }
            }
        }
        @if keys.is_empty() {
            p.hint { "No domain has a key yet: its mail leaves unsigned." }
        } @else {
            div.table-wrap {
                table.cards {
                    thead { tr { th scope="col" { "Domain" } th scope="col" { "Selector" } th scope="col" { "Algorithm" } th scope="col" { "Created" } th scope="col" { "DNS record" } th scope="col" { span.skip { "Action" } } } }
                    tbody {
                        @for key in keys {
                            @let record = dns_record(key);
                            tr {
                                th scope="row" { (key.domain) }
                                td data-label="Selector" { code { (key.selector) } }
                                td data-label="Algorithm" { (key.algorithm.as_str()) @if !key.active { " (inactive)" } }
                                td data-label="Created" { (when(key.created_at)) }
                                td data-label="DNS record" { pre.record { (record.zone_line(3600)) } }
                                td {
                                    form.row method="post" action="/portal/admin/dkim/delete" {
                                        (csrf(session))
                                        input type="hidden" name="domain" value=(key.domain);
                                        input type="hidden" name="selector" value=(key.selector);
                                        label.check { input type="checkbox" name="confirm" required; "I am sure" }
                                        button.danger type="submit" aria-label={ "Delete key " (key.selector) " of " (key.domain) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn generate_dkim(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<DkimForm>,
) -> PageResult {
    let created = match form.algorithm.trim() {
        "" => Ok(DkimAlgorithm::RsaSha256),
        name => name.parse(),
    };
    let created = match created {
        Ok(algorithm) => {
            let selector = Some(form.selector.as_str());
            create_key(&state.store, form.domain.trim(), algorithm, selector).await
        }
        Err(e) => Err(SignError::Store(e)),
    };
    let (status, notice) = match created {
        Ok(key) => done(format!(
            "Key {} of {} generated; it signs from now on. Publish its TXT record: {}",
            key.selector,
            key.domain,
            dns_record(&key).name
        ))?,
        Err(SignError::Store(e)) => form_failure(e)?,
        Err(e) => return Err(PortalError(StoreError::Cannot(e.to_string()))),
    };
    Ok((status, domains_view(&state, &session, Some(notice)).await?).into_response())
}

async fn delete_dkim(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<DkimForm>,
) -> PageResult {
    let (status, notice) = if confirmed(&form.confirm) {
        outcome(
            state
                .store
                .delete_dkim_key(&form.domain, &form.selector)
                .await,
            |()| {
                format!(
                    "Key {} of {} deleted: it no longer signs.",
                    form.selector, form.domain
                )
            },
        )?
    } else {
        refused(
            StatusCode::BAD_REQUEST,
            "Tick \"I am sure\" to delete a key.",
        )?
    };
    Ok((status, domains_view(&state, &session, Some(notice)).await?).into_response())
}

// ---- accounts ----

async fn accounts_view(
    state: &AppState,
    session: &CurrentSession,
    notice: Option<Notice>,
) -> Result<Markup, PortalError> {
    let accounts = state.store.list_accounts().await?;
    let admins = state.store.admins().await?;
    let mut rows = Vec::new();
    for account in accounts {
        let usage = state.store.quota_usage(account.id).await?;
        let admin = admins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&account.address));
        rows.push((account, usage, admin));
    }
    Ok(page(
        "Accounts",
        Some((session, "/portal/admin/accounts")),
        notice,
        html! {
            h1 { "Accounts" }
            form.card method="post" action="/portal/admin/accounts" {
                (csrf(session))
                label for="address" { "Address" }
                input #address type="email" name="address" required placeholder="alice@example.org";
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="new-password" required;
                label for="quota" { "Quota (e.g. 500M, 2G; empty for none)" }
                input #quota type="text" name="quota";
                button type="submit" { "Create account" }
            }
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Account" } th.num scope="col" { "Used" } th scope="col" { "Quota" } th scope="col" { "Administrator" } th scope="col" { "Delete (with its mail)" } } }
                    tbody {
                        @for (account, usage, admin) in &rows {
                            tr {
                                th scope="row" { (account.address) }
                                td.num { (bytes(usage.used_bytes)) }
                                td {
                                    form.row method="post" action="/portal/admin/accounts/quota" {
                                        (csrf(session))
                                        input type="hidden" name="address" value=(account.address);
                                        input.short type="text" name="quota" size="6" aria-label={ "Quota of " (account.address) }
                                            value=(usage.limit_bytes.map(|b| mailroom_config::ByteSize(b).to_string()).unwrap_or_default());
                                        button type="submit" { "Set" }
                                    }
                                }
                                td {
                                    form.row method="post" action="/portal/admin/accounts/admin" {
                                        (csrf(session))
                                        input type="hidden" name="address" value=(account.address);
                                        input type="hidden" name="admin" value=(if *admin { "off" } else { "on" });
                                        span { @if *admin { "yes" } @else { "no" } }
                                        button type="submit" { @if *admin { "Revoke admin" } @else { "Make admin" } }
                                    }
                                }
                                td {
                                    form.row method="post" action="/portal/admin/accounts/delete" {
                                        (csrf(session))
                                        input type="hidden" name="address" value=(account.address);
                                        label.check { input type="checkbox" name="confirm" required; "I am sure" }
                                        button.danger type="submit" aria-label={ "Delete " (account.address) } { "Delete" }
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

async fn accounts(State(state): State<AppState>, AdminSigned(session): AdminSigned) -> PageResult {
    Ok((StatusCode::OK, accounts_view(&state, &session, None).await?).into_response())
}

#[derive(Deserialize)]
struct AccountForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    quota: String,
    #[serde(default)]
    admin: String,
    #[serde(default)]
    confirm: String,
}

/// A quota from the form: empty or `none` for no limit, else a size (`500M`).
fn parse_quota(text: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let size = mailroom_config::ByteSize::parse(text)?;
    i64::try_from(size.0)
        .map(Some)
        .map_err(|_| format!("{text:?} is too large"))
}

async fn create_account(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<AccountForm>,
) -> PageResult {
    let (status, notice) = match parse_quota(&form.quota) {
        Err(why) => refused(StatusCode::BAD_REQUEST, format!("Quota: {why}."))?,
        Ok(quota) => match state
            .store
            .create_account(&form.address, &form.password)
            .await
        {
            Ok(account) => {
                if quota.is_some() {
                    state.store.set_quota(&account.address, quota).await?;
                }
                tracing::info!(admin = %session.account.address, user = %account.address, "portal: account created");
                done(format!("Account {} created.", account.address))?
            }
            Err(e) => form_failure(e)?,
        },
    };
    Ok((status, accounts_view(&state, &session, Some(notice)).await?).into_response())
}

async fn set_quota(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<AccountForm>,
) -> PageResult {
    let (status, notice) = match parse_quota(&form.quota) {
        Err(why) => refused(StatusCode::BAD_REQUEST, format!("Quota: {why}."))?,
        Ok(quota) => outcome(
            state.store.set_quota(&form.address, quota).await,
            |()| match quota {
                Some(q) => format!("Quota of {} set to {}.", form.address, bytes(q as u64)),
                None => format!("{} has no quota now.", form.address),
            },
        )?,
    };
    Ok((status, accounts_view(&state, &session, Some(notice)).await?).into_response())
}

async fn set_admin(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<AccountForm>,
) -> PageResult {
    let on = form.admin == "on";
    let (status, notice) = if !on && form.address.eq_ignore_ascii_case(&session.account.address) {
        refused(
            StatusCode::BAD_REQUEST,
            "You cannot revoke your own administrator rights; ask another administrator, or use `mailroom user admin`.",
        )?
    } else {
        outcome(state.store.set_admin(&form.address, on).await, |()| {
            if on {
                format!("{} is an administrator now.", form.address)
            } else {
                format!("{} is no longer an administrator.", form.address)
            }
        })?
    };
    Ok((status, accounts_view(&state, &session, Some(notice)).await?).into_response())
}

async fn delete_account(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<AccountForm>,
) -> PageResult {
    let (status, notice) = if !confirmed(&form.confirm) {
        refused(
            StatusCode::BAD_REQUEST,
            "Tick \"I am sure\" to delete an account.",
        )?
    } else if form.address.eq_ignore_ascii_case(&session.account.address) {
        refused(
            StatusCode::BAD_REQUEST,
            "You cannot delete the account you are signed in with.",
        )?
    } else {
        outcome(state.store.delete_account(&form.address).await, |()| {
            format!("Account {} deleted.", form.address)
        })?
    };
    Ok((status, accounts_view(&state, &session, Some(notice)).await?).into_response())
}

// ---- aliases ----

async fn aliases_view(
    state: &AppState,
    session: &CurrentSession,
    notice: Option<Notice>,
) -> Result<Markup, PortalError> {
    let aliases = state.store.list_aliases().await?;
    Ok(page(
        "Aliases",
        Some((session, "/portal/admin/aliases")),
        notice,
        html! {
            h1 { "Aliases" }
            form.card method="post" action="/portal/admin/aliases" {
                (csrf(session))
                label for="alias" { "Alias (an address, or @domain for a catch-all)" }
                input #alias type="text" name="alias" required placeholder="info@example.org";
                label for="account" { "Delivers to account" }
                input #account type="email" name="account" required placeholder="alice@example.org";
                button type="submit" { "Add alias" }
            }
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Alias" } th scope="col" { "Account" } th scope="col" { span.skip { "Action" } } } }
                    tbody {
                        @for alias in &aliases {
                            tr {
                                th scope="row" { (alias.address) }
                                td { (alias.account) }
                                td {
                                    form.inline method="post" action="/portal/admin/aliases/delete" {
                                        (csrf(session))
                                        input type="hidden" name="alias" value=(alias.address);
                                        button.danger type="submit" aria-label={ "Delete " (alias.address) } { "Delete" }
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

async fn aliases(State(state): State<AppState>, AdminSigned(session): AdminSigned) -> PageResult {
    Ok((StatusCode::OK, aliases_view(&state, &session, None).await?).into_response())
}

#[derive(Deserialize)]
struct AliasForm {
    #[serde(default)]
    alias: String,
    #[serde(default)]
    account: String,
}

async fn add_alias(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<AliasForm>,
) -> PageResult {
    let (status, notice) = outcome(
        state.store.add_alias(&form.alias, &form.account).await,
        |a| format!("{} delivers to {} now.", a.address, a.account),
    )?;
    Ok((status, aliases_view(&state, &session, Some(notice)).await?).into_response())
}

async fn delete_alias(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<AliasForm>,
) -> PageResult {
    let (status, notice) = outcome(state.store.delete_alias(&form.alias).await, |()| {
        format!("Alias {} deleted.", form.alias)
    })?;
    Ok((status, aliases_view(&state, &session, Some(notice)).await?).into_response())
}

// ---- queue ----

async fn queue_view(
    state: &AppState,
    session: &CurrentSession,
    notice: Option<Notice>,
) -> Result<Markup, PortalError> {
    let entries = state.store.queue_list().await?;
    Ok(page(
        "Queue",
        Some((session, "/portal/admin/queue")),
        notice,
        html! {
            h1 { "Outbound queue" }
            @if entries.is_empty() {
                p.hint { "The queue is empty: all mail went out." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "Id" } th scope="col" { "From" } th scope="col" { "To" } th.num scope="col" { "Size" } th scope="col" { "Attempts" } th scope="col" { "Next attempt" } th scope="col" { "Last error" } th scope="col" { span.skip { "Actions" } } } }
                        tbody {
                            @for entry in &entries {
                                tr {
                                    th scope="row" { (entry.id) }
                                    td { @if entry.sender.is_empty() { "<>" } @else { (entry.sender) } }
                                    td { @for r in &entry.recipients { (r.address) br; } }
                                    td.num { (bytes(entry.size)) }
                                    td { (entry.attempts) }
                                    td { (when(entry.next_attempt)) }
                                    td { (entry.last_error.as_deref().unwrap_or("")) }
                                    td {
                                        form.inline method="post" action="/portal/admin/queue/retry" {
                                            (csrf(session))
                                            input type="hidden" name="id" value=(entry.id);
                                            button type="submit" aria-label={ "Retry " (entry.id) " now" } { "Retry now" }
                                        }
                                        " "
                                        form.inline method="post" action="/portal/admin/queue/delete" {
                                            (csrf(session))
                                            input type="hidden" name="id" value=(entry.id);
                                            button.danger type="submit" aria-label={ "Delete " (entry.id) } { "Delete" }
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

async fn queue(State(state): State<AppState>, AdminSigned(session): AdminSigned) -> PageResult {
    Ok((StatusCode::OK, queue_view(&state, &session, None).await?).into_response())
}

#[derive(Deserialize)]
struct QueueForm {
    #[serde(default)]
    id: String,
}

fn queue_id(form: &QueueForm) -> Result<i64, StoreError> {
    form.id.trim().parse().map_err(|_| StoreError::NotFound {
        what: mailroom_store::Entity::QueuedMessage,
        name: form.id.clone(),
    })
}

async fn retry_queued(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<QueueForm>,
) -> PageResult {
    let result = match queue_id(&form) {
        Ok(id) => state.store.queue_retry(id).await,
        Err(e) => Err(e),
    };
    let (status, notice) = outcome(result, |()| {
        format!("Message {} will be retried now.", form.id)
    })?;
    Ok((status, queue_view(&state, &session, Some(notice)).await?).into_response())
}

async fn delete_queued(
    State(state): State<AppState>,
    AdminSigned(session): AdminSigned,
    Form(form): Form<QueueForm>,
) -> PageResult {
    let result = match queue_id(&form) {
        Ok(id) => state.store.queue_delete(id).await,
        Err(e) => Err(e),
    };
    let (status, notice) = outcome(result, |()| {
        format!("Message {} deleted from the queue.", form.id)
    })?;
    Ok((status, queue_view(&state, &session, Some(notice)).await?).into_response())
}
