//! One IMAP session: the state machine of RFC 9051 §3 and the commands valid in
//! any state, authentication and ENABLE. Mailbox commands live in `mailboxes`,
//! message commands in `messages`, SEARCH in `search`.

mod acl;
mod fetch;
mod mailboxes;
mod messages;
mod quota;
mod search;
mod sort;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailroom_auth::sasl::SaslFailure;
use mailroom_auth::{LoginThrottle, Mechanism, SaslOutcome, SaslSession, ThrottleVerdict};
use mailroom_config::Config;
use mailroom_store::{Account, AccountId, Change, Entity, Store, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::connection::{Connection, FrameLimits, Incoming, Line};
use crate::proto::commands::{CommandSpec, StateKind};
use crate::proto::parse::{ParseErrorKind, SEARCH_CHARSETS, command_of};
use crate::proto::types::{Command, CommandBody};
use crate::proto::untagged::{MailboxName, Responses, Untagged};
use crate::proto::{parse_command, utf7};
use crate::selected::Selected;

/// RFC 9051 §3 connection states (Logout is the end of `run`). The account and
/// the selected mailbox live inside the state that has them, so no command can
/// see a selected mailbox without an account, or an account before login.
///
/// While a Selected-state command runs, its handler holds the `Selected` (lent
/// by `with_selected!`, given back when it ends) and the state is
/// `Authenticated` meanwhile: the handler's `&mut Selected` is the only way to
/// the mailbox view, so none re-checks that a mailbox is selected.
enum State {
    NotAuthenticated,
    Authenticated(Account),
    Selected(Account, Box<Selected>),
}

impl State {
    fn kind(&self) -> StateKind {
        match self {
            State::NotAuthenticated => StateKind::NotAuthenticated,
            State::Authenticated(_) => StateKind::Authenticated,
            State::Selected(..) => StateKind::Selected,
        }
    }

    fn account(&self) -> Option<&Account> {
        match self {
            State::NotAuthenticated => None,
            State::Authenticated(a) | State::Selected(a, _) => Some(a),
        }
    }

    fn selected(&self) -> Option<&Selected> {
        match self {
            State::Selected(_, sel) => Some(sel.as_ref()),
            _ => None,
        }
    }

    fn selected_mut(&mut self) -> Option<&mut Selected> {
        match self {
            State::Selected(_, sel) => Some(sel.as_mut()),
            _ => None,
        }
    }

    /// Enters Selected with `sel` (from Authenticated or Selected; nothing to
    /// select before login).
    fn select(&mut self, sel: Box<Selected>) {
        *self = match std::mem::replace(self, State::NotAuthenticated) {
            State::Authenticated(a) | State::Selected(a, _) => State::Selected(a, sel),
            State::NotAuthenticated => State::NotAuthenticated,
        };
    }

    /// Back to Authenticated; the mailbox that was selected, if any.
    fn unselect(&mut self) -> Option<Box<Selected>> {
        match std::mem::replace(self, State::NotAuthenticated) {
            State::Selected(a, sel) => {
                *self = State::Authenticated(a);
                Some(sel)
            }
            other => {
                *self = other;
                None
            }
        }
    }
}

pub(crate) use crate::proto::response::{Code, Status, Tagged, continuation};

/// Runs a Selected-state handler with the selected mailbox lent to it as
/// `$sel`, and gives the mailbox back to the state when the handler ends,
/// whatever its result.
macro_rules! with_selected {
    ($session:ident, $sel:ident => $call:expr) => {{
        #[allow(unused_mut)]
        let mut $sel = $session.lend_selected()?;
        let result = $call.await;
        $session.state.select($sel);
        result
    }};
}

/// How a command fails: I/O ends the session, store errors become NO, and a
/// refusal (NO or BAD) is the tagged answer, so `?` carries it out of a handler.
pub(crate) enum Error {
    Io(io::Error),
    Store(StoreError),
    Reply(Tagged),
    /// The session must end after the untagged responses already written
    /// (e.g. the selected mailbox vanished).
    Bye(String),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Tagged> for Error {
    fn from(t: Tagged) -> Self {
        Error::Reply(t)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

pub(crate) type CmdResult = Result<Tagged, Error>;

/// The answer to a store error, with the RFC 5530 response code that fits:
/// `[UNAVAILABLE]` for what may work later, `[CANNOT]` for what will not.
fn store_error_response(e: &StoreError) -> Tagged {
    match e {
        StoreError::NotFound {
            what: Entity::Mailbox,
            ..
        } => Tagged::no(Code::Nonexistent, "Mailbox does not exist"),
        StoreError::NotFound { .. } => Tagged::no(Code::Nonexistent, e.to_string()),
        StoreError::AlreadyExists { .. } => Tagged::no(Code::AlreadyExists, e.to_string()),
        StoreError::Invalid { .. } => Tagged::no(Code::Cannot, e.to_string()),
        StoreError::Cannot(msg) => Tagged::no(Code::Cannot, msg.clone()),
        StoreError::Unavailable(_) => {
            tracing::warn!(error = %e, "transient store failure");
            Tagged::no(Code::Unavailable, e.to_string())
        }
        StoreError::HasChildren(_) => Tagged::no(
            Code::HasChildren,
            "Mailbox has inferior mailboxes; delete them first",
        ),
        StoreError::OverQuota => Tagged::no(Code::OverQuota, "Quota exceeded"),
        StoreError::Closed => Tagged::no(Code::Unavailable, "The server is shutting down"),
        _ => {
            tracing::error!(error = %e, "store error");
            Tagged::no(Code::ServerBug, "Internal error, try again later")
        }
    }
}

/// What the session knows about its transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Security {
    /// The client's address (throttling, logs).
    pub peer: IpAddr,
    /// The connection is encrypted (implicit TLS or after STARTTLS).
    pub tls: bool,
    /// STARTTLS may be offered (a certificate is configured).
    pub starttls: bool,
    /// Send the greeting; not after STARTTLS, where the client goes on with its
    /// next command (RFC 9051 §6.2.1).
    pub greet: bool,
}

/// The `command` label of a command's metric: a name of the command table, never
/// the client's own text (bounded label values), `UNKNOWN` otherwise.
fn command_label(spec: Option<&'static CommandSpec>) -> &'static str {
    spec.map_or("UNKNOWN", |s| s.name)
}

/// Counts a command's answer in `mailroom_imap_commands_total`.
fn record_command(label: &'static str, status: Status) {
    let result = match status {
        Status::Ok => "ok",
        Status::No => "no",
        Status::Bad => "bad",
    };
    metrics::counter!("mailroom_imap_commands_total", "command" => label, "result" => result)
        .increment(1);
}

pub(crate) struct Session<R, W> {
    conn: Connection<R, W>,
    store: Store,
    config: Arc<Config>,
    throttle: Arc<LoginThrottle>,
    security: Security,
    /// STARTTLS was answered OK: `run` hands the transport back for the handshake.
    begin_tls: bool,
    shutdown: CancellationToken,
    state: State,
    /// ENABLE IMAP4rev2 (RFC 9051 Appendix E differences apply).
    rev2: bool,
    /// CONDSTORE enabled (RFC 7162 §3.1): MODSEQ in every FETCH with FLAGS.
    condstore: bool,
    /// ENABLE QRESYNC (RFC 7162 §3.2): expunges are reported as VANISHED, and
    /// SELECT/EXAMINE and UID FETCH take their QRESYNC forms.
    qresync: bool,
    /// UTF-8 mailbox names and strings (UTF8=ACCEPT, implied by IMAP4rev2).
    utf8: bool,
    changes: broadcast::Receiver<Change>,
    /// Untagged responses of the command being executed.
    out: Responses,
}

const BASE_CAPS: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE";
const AUTH_CAPS: &str = "CONDSTORE QRESYNC NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE ESEARCH SEARCHRES BINARY MULTIAPPEND UTF8=ACCEPT STATUS=SIZE ACL RIGHTS=texk";

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub fn new(
        reader: R,
        writer: W,
        shared: Shared,
        security: Security,
        shutdown: CancellationToken,
    ) -> Self {
        let Shared {
            store,
            config,
            throttle,
            ..
        } = shared;
        let limits = FrameLimits {
            max_line: usize::try_from(config.limits.max_line_length.0)
                .unwrap_or(usize::MAX)
                .max(1024),
            max_message: usize::try_from(config.limits.max_message_size.0).unwrap_or(usize::MAX),
        };
        let changes = store.subscribe();
        Session {
            conn: Connection::new(reader, writer, limits),
            store,
            config,
            throttle,
            security,
            begin_tls: false,
            shutdown,
            state: State::NotAuthenticated,
            rev2: false,
            utf8: false,
            condstore: false,
            qresync: false,
            changes,
            out: Responses::default(),
        }
    }

    /// Passwords may be sent: over TLS, or in clear when the configuration allows it.
    fn passwords_allowed(&self) -> bool {
        self.security.tls || self.config.plaintext_auth_allowed()
    }

    fn capabilities(&self) -> String {
        let mut caps = BASE_CAPS.to_string();
        if matches!(self.state, State::NotAuthenticated) {
            if self.security.starttls && !self.security.tls {
                caps.push_str(" STARTTLS");
            }
            // SCRAM never reveals the password, so it is offered without TLS too.
            if self.passwords_allowed() {
                caps.push_str(" AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN");
            } else {
                caps.push_str(" AUTH=SCRAM-SHA-256 LOGINDISABLED");
            }
        } else {
            caps.push(' ');
            caps.push_str(AUTH_CAPS);
            caps.push(' ');
            caps.push_str(sort::CAPS);
            caps.push(' ');
            caps.push_str(quota::CAPS);
        }
        caps
    }

    /// Runs the session to its end. After STARTTLS was answered OK it returns the
    /// transport for the TLS handshake; the input buffer, and with it anything the
    /// client pipelined after STARTTLS, is dropped (RFC 9051 §6.2.1).
    pub async fn run(mut self) -> io::Result<Option<(R, W)>> {
        if self.security.greet {
            let greeting = Tagged::ok_with(
                Code::Capability(self.capabilities()),
                format!("{} mailroom IMAP ready", self.config.hostname),
            );
            self.write_untagged(Untagged::Status(greeting)).await?;
            self.conn.flush().await?;
        }
        let autologout = self.config.imap.autologout.max(Duration::from_secs(1));
        loop {
            let incoming = tokio::select! {
                _ = self.shutdown.cancelled() => {
                    self.write_untagged(Untagged::Bye("Server shutting down".into())).await?;
                    return self.conn.shutdown().await.map(|()| None);
                }
                r = tokio::time::timeout(autologout, self.conn.read_command()) => match r {
                    Err(_) => {
                        self.write_untagged(Untagged::Bye("Autologout; idle for too long".into())).await?;
                        return self.conn.shutdown().await.map(|()| None);
                    }
                    Ok(r) => r?,
                },
            };
            let Some(incoming) = incoming else {
                return Ok(None);
            };
            let input = match incoming {
                Incoming::Refused(refusal) => {
                    let line = refusal.encode();
                    tracing::info!(response = %String::from_utf8_lossy(line.trim_ascii_end()), "command refused by framing");
                    record_command(command_label(None), refusal.answer.status);
                    self.conn.write(&line).await?;
                    self.conn.flush().await?;
                    continue;
                }
                Incoming::Command(input) => input,
            };
            let command = match parse_command(&input) {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!(error = %e.kind, "bad command");
                    let answer = match e.kind {
                        ParseErrorKind::BadCharset(_) => Tagged::no(
                            Code::BadCharset(
                                SEARCH_CHARSETS.iter().map(|c| c.to_string()).collect(),
                            ),
                            "Unsupported charset",
                        ),
                        ParseErrorKind::Syntax(text) => {
                            Tagged::bad(format!("Error in IMAP command: {text}"))
                        }
                    };
                    record_command(command_label(command_of(&input)), answer.status);
                    let line = answer.encode(e.tag.as_deref().unwrap_or("*"));
                    self.conn.write(&line).await?;
                    self.conn.flush().await?;
                    continue;
                }
            };
            if !self.execute(command).await? {
                return self.conn.shutdown().await.map(|()| None);
            }
            if self.begin_tls {
                return Ok(Some(self.conn.into_parts()));
            }
        }
    }

    /// Executes one command and writes all its responses; false when the
    /// session must end.
    async fn execute(&mut self, command: Command) -> io::Result<bool> {
        let Command { tag, spec, body } = command;
        let name = spec.name;
        let label = spec.name;
        tracing::debug!(tag = %tag, command = name, "command");
        if matches!(body, CommandBody::Logout) {
            record_command(label, Status::Ok);
            self.write_untagged(Untagged::Bye("Logging out".into()))
                .await?;
            self.conn
                .write(&Tagged::ok("Logout completed").encode(&tag))
                .await?;
            self.conn.flush().await?;
            return Ok(false);
        }
        let result = if !spec.states.allow(self.state.kind()) {
            Err(Tagged::bad(format!("{name} is not valid in this state")).into())
        } else {
            // Learn of changes made elsewhere first (without renumbering), so the
            // command works on the current state and knows what was expunged.
            match self.sync_selected(false).await {
                Ok(()) => self.dispatch(&tag, body).await,
                Err(text) => Err(Error::Bye(text)),
            }
        };
        let tagged = match result {
            Ok(t) => t,
            Err(Error::Io(e)) => return Err(e),
            Err(Error::Store(e)) => store_error_response(&e),
            Err(Error::Reply(t)) => t,
            Err(Error::Bye(text)) => {
                self.flush_out().await?;
                self.write_untagged(Untagged::Bye(text)).await?;
                self.conn.flush().await?;
                return Ok(false);
            }
        };
        if tagged.status != Status::Bad
            && let Err(e) = self.sync_selected(spec.expunge).await
        {
            self.flush_out().await?;
            self.write_untagged(Untagged::Bye(e)).await?;
            self.conn.flush().await?;
            return Ok(false);
        }
        self.flush_out().await?;
        let line = tagged.encode(&tag);
        record_command(label, tagged.status);
        self.conn.write(&line).await?;
        self.conn.flush().await?;
        Ok(true)
    }

    /// Writes the collected untagged responses.
    async fn flush_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let out = self.out.take();
            self.conn.write(&out).await?;
        }
        Ok(())
    }

    /// Drains the change feed and reports what changed in the selected mailbox.
    /// Err(text) when the mailbox is gone and the session must end.
    async fn sync_selected(&mut self, allow_expunge: bool) -> Result<(), String> {
        let Some(sel) = self.state.selected_mut() else {
            while self.changes.try_recv().is_ok() {}
            return Ok(());
        };
        loop {
            match self.changes.try_recv() {
                Ok(Change::Mailbox { mailbox_id, .. }) if mailbox_id == sel.mailbox.id => {
                    sel.dirty = true
                }
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(_)) => sel.dirty = true,
                Err(_) => break,
            }
        }
        match sel
            .refresh(
                &self.store,
                allow_expunge,
                self.rev2,
                self.condstore,
                &mut self.out,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound { .. }) => {
                self.state.unselect();
                Err("Selected mailbox was deleted, have to disconnect".into())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the selected mailbox");
                Ok(())
            }
        }
    }

    async fn dispatch(&mut self, tag: &str, body: CommandBody) -> CmdResult {
        match body {
            CommandBody::Capability => {
                self.out.push(Untagged::Capability(self.capabilities()));
                Ok(Tagged::ok("Capability completed"))
            }
            CommandBody::Noop => Ok(Tagged::ok("NOOP completed")),
            CommandBody::StartTls => Ok(self.starttls()),
            CommandBody::Logout => Ok(Tagged::ok("Logout completed")),
            CommandBody::Id(params) => {
                if !params.is_empty() {
                    tracing::info!(?params, "client ID");
                }
                self.out.push(Untagged::Id(vec![
                    ("name".into(), "mailroom".into()),
                    ("version".into(), env!("CARGO_PKG_VERSION").into()),
                ]));
                Ok(Tagged::ok("ID completed"))
            }
            CommandBody::Login { user, password } => self.login(&user, &password).await,
            CommandBody::Authenticate { mechanism, initial } => {
                self.authenticate(&mechanism, initial).await
            }
            CommandBody::Enable(caps) => Ok(self.enable(&caps)),
            CommandBody::Namespace => {
                self.out.push(acl::namespace_response());
                Ok(Tagged::ok("Namespace completed"))
            }
            CommandBody::Idle => self.idle(tag).await,
            CommandBody::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                // RFC 7162 §3.2.5: the QRESYNC parameter needs ENABLE QRESYNC first.
                // BAD before anything happens: the current mailbox stays selected.
                if qresync.is_some() && !self.qresync {
                    return Err(
                        Tagged::bad("QRESYNC parameter without ENABLE QRESYNC first").into(),
                    );
                }
                if condstore {
                    let highest = self.state.selected().map(Selected::highest_modseq);
                    self.enable_condstore(highest);
                }
                self.select(&mailbox, read_only, qresync.as_ref()).await
            }
            CommandBody::Create {
                mailbox,
                special_use,
            } => self.create(&mailbox, &special_use).await,
            CommandBody::Delete(mailbox) => self.delete(&mailbox).await,
            CommandBody::Rename { from, to } => self.rename(&from, &to).await,
            CommandBody::Subscribe(mailbox) => self.subscribe(&mailbox, true).await,
            CommandBody::Unsubscribe(mailbox) => self.subscribe(&mailbox, false).await,
            CommandBody::List {
                reference,
                patterns,
                selection,
                returns,
                extended,
            } => {
                self.list(&reference, &patterns, selection, returns, extended)
                    .await
            }
            CommandBody::Lsub { reference, pattern } => self.lsub(&reference, &pattern).await,
            CommandBody::Status { mailbox, items } => self.status(&mailbox, &items).await,
            CommandBody::Append { mailbox, messages } => self.append(&mailbox, messages).await,
            // Every write is committed at once; CHECK has nothing left to do.
            CommandBody::Check => Ok(Tagged::ok("CHECK completed")),
            // CLOSE and UNSELECT keep the mailbox they close.
            CommandBody::Close => {
                let sel = self.lend_selected()?;
                self.close(sel, true).await
            }
            CommandBody::Unselect => {
                let sel = self.lend_selected()?;
                self.close(sel, false).await
            }
            CommandBody::Expunge { uids } => {
                with_selected!(self, sel => self.expunge(&mut sel, uids.as_ref()))
            }
            CommandBody::Search { uid, returns, key } => {
                with_selected!(self, sel => self.search(&mut sel, tag, uid, returns, key))
            }
            CommandBody::Fetch {
                uid,
                set,
                attrs,
                changed_since,
                vanished,
            } => {
                // RFC 7162 §3.2.6: VANISHED needs ENABLE QRESYNC first.
                if vanished && !self.qresync {
                    return Err(
                        Tagged::bad("VANISHED modifier without ENABLE QRESYNC first").into(),
                    );
                }
                with_selected!(self, sel => self.fetch(&mut sel, uid, &set, attrs, changed_since, vanished))
            }
            CommandBody::Store {
                uid,
                set,
                op,
                silent,
                flags,
                unchanged_since,
            } => {
                let change = messages::FlagChange {
                    op,
                    silent,
                    names: &flags,
                    unchanged_since,
                };
                with_selected!(self, sel => self.store_flags(&mut sel, uid, &set, change))
            }
            CommandBody::Copy { uid, set, mailbox } => {
                with_selected!(self, sel => self.copy(&mut sel, uid, &set, &mailbox, false))
            }
            CommandBody::Move { uid, set, mailbox } => {
                with_selected!(self, sel => self.copy(&mut sel, uid, &set, &mailbox, true))
            }
            CommandBody::SetAcl {
                mailbox,
                identifier,
                op,
                rights,
            } => self.set_acl(&mailbox, &identifier, op, rights).await,
            CommandBody::DeleteAcl {
                mailbox,
                identifier,
            } => self.delete_acl(&mailbox, &identifier).await,
            CommandBody::GetAcl(mailbox) => self.get_acl(&mailbox).await,
            CommandBody::ListRights {
                mailbox,
                identifier,
            } => self.list_rights(&mailbox, &identifier).await,
            CommandBody::MyRights(mailbox) => self.my_rights(&mailbox).await,
            CommandBody::Sort {
                uid,
                returns,
                criteria,
                key,
            } => {
                with_selected!(self, sel => self.sort(&mut sel, tag, uid, returns, &criteria, key))
            }
            CommandBody::Thread {
                uid,
                algorithm,
                key,
            } => with_selected!(self, sel => self.thread(&sel, uid, algorithm, key)),
            CommandBody::GetQuota(root) => self.get_quota(&root).await,
            CommandBody::GetQuotaRoot(mailbox) => self.get_quota_root(&mailbox).await,
            CommandBody::SetQuota { limits, .. } => Ok(self.set_quota(&limits)),
        }
    }

    // ---- TLS and authentication (RFC 9051 §6.2) ----

    /// STARTTLS: the OK is the last plaintext; `run` then hands the transport over
    /// for the handshake.
    fn starttls(&mut self) -> Tagged {
        if self.security.tls {
            return Tagged::bad("TLS is already active");
        }
        if !self.security.starttls {
            return Tagged::bad("STARTTLS is not available: no certificate is configured");
        }
        self.begin_tls = true;
        Tagged::ok("Begin TLS negotiation now")
    }

    fn privacy_required() -> Tagged {
        Tagged::no(
            Code::PrivacyRequired,
            "Plaintext authentication disallowed on non-secure connections; use STARTTLS or port 993",
        )
    }

    fn locked_out(&self, user: &str, mechanism: &str, retry_after: Duration) -> Tagged {
        tracing::warn!(
            user,
            peer = %self.security.peer,
            mechanism,
            retry_after_s = retry_after.as_secs(),
            "login refused: too many failures"
        );
        Tagged::no(
            Code::Unavailable,
            format!(
                "Too many failed logins; try again in {} minutes",
                retry_after.as_secs().div_ceil(60).max(1)
            ),
        )
    }

    async fn login(&mut self, user: &str, password: &str) -> CmdResult {
        if !self.passwords_allowed() {
            return Err(Self::privacy_required().into());
        }
        if let ThrottleVerdict::Locked { retry_after } =
            self.throttle.check(self.security.peer, user)
        {
            return Err(self.locked_out(user, "LOGIN", retry_after).into());
        }
        let account = match self.store.authenticate(user, password).await? {
            Some(account) => Some(account),
            None => self.test_mode_account(user, password).await?,
        };
        match account {
            Some(account) => Ok(self.logged_in(account, "LOGIN")),
            None => Ok(self.auth_failed(user, "LOGIN").await),
        }
    }

    fn logged_in(&mut self, account: Account, mechanism: &str) -> Tagged {
        self.throttle.success(self.security.peer, &account.address);
        tracing::Span::current().record("user", account.address.as_str());
        tracing::info!(
            user = %account.address,
            peer = %self.security.peer,
            mechanism,
            tls = self.security.tls,
            "logged in"
        );
        self.state = State::Authenticated(account);
        Tagged::ok_with(Code::Capability(self.capabilities()), "Logged in")
    }

    /// Records the failure and answers it after the throttle's delay.
    async fn auth_failed(&mut self, user: &str, mechanism: &str) -> Tagged {
        let delay = self.throttle.failure(self.security.peer, user);
        tracing::info!(
            user,
            peer = %self.security.peer,
            mechanism,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "authentication failed"
        );
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = tokio::time::sleep(delay) => {}
        }
        Tagged::no(Code::AuthenticationFailed, "Authentication failed")
    }

    /// Test mode (GreenMail behaviour): an unknown user is created, with its domain,
    /// and the password it logged in with. A known user keeps its password.
    async fn test_mode_account(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<Account>, Error> {
        if !self.config.test_mode.enabled || self.store.account(user).await?.is_some() {
            return Ok(None);
        }
        let Some((local, domain)) = user.rsplit_once('@') else {
            return Ok(None);
        };
        if local.is_empty() || domain.is_empty() {
            return Ok(None);
        }
        if !self.store.is_local_domain(domain).await? {
            match self.store.add_domain(domain).await {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(StoreError::Invalid { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        match self.store.create_account(user, password).await {
            Ok(account) => {
                tracing::warn!(user = %account.address, "test mode: account created at its first login");
                Ok(Some(account))
            }
            // Another session created it meanwhile: its password decides.
            Err(StoreError::AlreadyExists { .. }) => {
                Ok(self.store.authenticate(user, password).await?)
            }
            Err(StoreError::Invalid { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// In test mode, creates the account a PLAIN or LOGIN response names before the
    /// SASL exchange checks its password.
    async fn test_mode_sasl(&self, sasl: &SaslSession, response: &str) -> Result<(), Error> {
        if !self.config.test_mode.enabled {
            return Ok(());
        }
        let Ok(data) = BASE64.decode(response.trim_end()) else {
            return Ok(());
        };
        let (user, password) = match (sasl.mechanism(), sasl.user()) {
            (Mechanism::Plain, _) => {
                let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
                let [_, user, password] = parts.as_slice() else {
                    return Ok(());
                };
                (
                    String::from_utf8_lossy(user).into_owned(),
                    String::from_utf8_lossy(password).into_owned(),
                )
            }
            (Mechanism::Login, Some(user)) => (
                user.to_string(),
                String::from_utf8_lossy(&data).into_owned(),
            ),
            _ => return Ok(()),
        };
        if matches!(
            self.throttle.check(self.security.peer, &user),
            ThrottleVerdict::Allow { .. }
        ) && self.store.authenticate(&user, &password).await?.is_none()
        {
            self.test_mode_account(&user, &password).await?;
        }
        Ok(())
    }

    /// Sends a `+` challenge and reads the client's one-line answer (base64, or `*`).
    async fn sasl_response(&mut self, challenge: &str) -> Result<String, Error> {
        self.conn.write(&continuation(challenge)).await?;
        self.conn.flush().await?;
        let max = self.conn.limits().max_line;
        // The client may take its time, but not forever, and not past shutdown.
        let wait = self.config.imap.autologout.max(Duration::from_secs(1));
        let line = tokio::select! {
            _ = self.shutdown.cancelled() => return Err(Error::Bye("Server shutting down".into())),
            _ = tokio::time::sleep(wait) => return Err(Error::Bye("Autologout; idle for too long".into())),
            line = self.conn.read_line(max) => line?,
        };
        match line {
            None => Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
            // Not base64: the mechanism answers it as malformed.
            Some(Line::TooLong(_)) => Ok("!".into()),
            Some(Line::Complete(l)) => Ok(String::from_utf8(l).unwrap_or_else(|_| "!".into())),
        }
    }

    /// AUTHENTICATE (RFC 9051 §6.2.2) with SASL-IR (RFC 4959), through the SASL
    /// mechanisms shared with SMTP.
    async fn authenticate(&mut self, mechanism: &str, initial: Option<String>) -> CmdResult {
        let Some(mech) = Mechanism::from_name(mechanism) else {
            return Err(Tagged::no_text(format!(
                "Unsupported authentication mechanism {mechanism}"
            ))
            .into());
        };
        if mech.sends_password() && !self.passwords_allowed() {
            return Err(Self::privacy_required().into());
        }
        let ip = self.security.peer;
        if let ThrottleVerdict::Locked { retry_after } = self.throttle.check(ip, "") {
            return Err(self.locked_out("", mech.name(), retry_after).into());
        }
        let mut sasl = SaslSession::new(mech, self.store.clone());
        let mut outcome = match initial {
            Some(ir) => {
                self.test_mode_sasl(&sasl, &ir).await?;
                sasl.start(Some(&ir)).await
            }
            None => sasl.start(None).await,
        };
        let mut checked = false;
        loop {
            // As soon as the user is known: a locked-out account goes no further,
            // whatever the password.
            if !checked && let Some(user) = sasl.user() {
                checked = true;
                if let ThrottleVerdict::Locked { retry_after } = self.throttle.check(ip, user) {
                    let user = user.to_string();
                    return Err(self.locked_out(&user, mech.name(), retry_after).into());
                }
            }
            outcome = match outcome {
                SaslOutcome::Challenge(challenge) => {
                    let response = self.sasl_response(&challenge).await?;
                    self.test_mode_sasl(&sasl, &response).await?;
                    sasl.step(&response).await
                }
                SaslOutcome::Success(account) => return Ok(self.logged_in(account, mech.name())),
                SaslOutcome::Failure(SaslFailure::Credentials) => {
                    let user = sasl.user().unwrap_or_default().to_string();
                    return Ok(self.auth_failed(&user, mech.name()).await);
                }
                SaslOutcome::Failure(SaslFailure::Malformed(why)) => {
                    tracing::info!(peer = %ip, mechanism = mech.name(), why, "malformed SASL exchange");
                    return Err(
                        Tagged::bad(format!("Invalid {} exchange: {why}", mech.name())).into(),
                    );
                }
                SaslOutcome::Failure(SaslFailure::Cancelled) => {
                    return Err(Tagged::bad("Authentication cancelled").into());
                }
                SaslOutcome::Failure(SaslFailure::Unavailable) => {
                    return Err(Tagged::no(
                        Code::Unavailable,
                        "Authentication is unavailable, try again later",
                    )
                    .into());
                }
            };
        }
    }

    fn enable(&mut self, caps: &[String]) -> Tagged {
        let mut enabled = Vec::new();
        for cap in caps {
            if cap.eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                self.rev2 = true;
                self.utf8 = true;
                enabled.push("IMAP4rev2");
            } else if cap.eq_ignore_ascii_case("CONDSTORE") && !self.condstore {
                // ENABLE is valid only with no mailbox selected (RFC 5161 §3.1).
                self.enable_condstore(None);
                enabled.push("CONDSTORE");
            } else if cap.eq_ignore_ascii_case("QRESYNC") && !self.qresync {
                // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3); ENABLED names only
                // what was asked for.
                self.enable_condstore(None);
                self.qresync = true;
                enabled.push("QRESYNC");
            } else if cap.eq_ignore_ascii_case("UTF8=ACCEPT") && !self.utf8 {
                self.utf8 = true;
                enabled.push("UTF8=ACCEPT");
            }
        }
        self.out.push(Untagged::Enabled(
            enabled.into_iter().map(String::from).collect(),
        ));
        Tagged::ok("Enabled")
    }

    // ---- IDLE (RFC 2177, RFC 9051 §6.3.13) ----

    async fn idle(&mut self, tag: &str) -> CmdResult {
        let _ = tag;
        self.sync_selected(true).await.map_err(Error::Bye)?;
        self.flush_out().await?;
        self.conn.write(&continuation("idling")).await?;
        self.conn.flush().await?;
        let keepalive = self.config.imap.idle_keepalive.max(Duration::from_secs(1));
        let timeout = tokio::time::sleep(self.config.imap.idle_timeout.max(Duration::from_secs(1)));
        tokio::pin!(timeout);
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        let max_line = self.conn.limits().max_line;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err(Error::Bye("Server shutting down".into())),
                _ = &mut timeout => return Err(Error::Bye("IDLE timed out".into())),
                _ = ticker.tick() => {
                    self.write_untagged(Untagged::Status(Tagged::ok("Still here"))).await?;
                    self.conn.flush().await?;
                }
                change = self.changes.recv(), if self.state.selected().is_some() => {
                    let relevant = match change {
                        Ok(Change::Mailbox { mailbox_id, .. }) => self.state.selected().is_some_and(|s| s.mailbox.id == mailbox_id),
                        Ok(_) => false,
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => false,
                    };
                    if relevant {
                        if let Some(sel) = self.state.selected_mut() {
                            sel.dirty = true;
                        }
                        self.sync_selected(true).await.map_err(Error::Bye)?;
                        self.flush_out().await?;
                        self.conn.flush().await?;
                    }
                }
                line = self.conn.read_line(max_line) => {
                    return match line? {
                        None => Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                        Some(Line::Complete(l)) if l.eq_ignore_ascii_case(b"DONE") => Ok(Tagged::ok("Idle completed")),
                        Some(_) => Err(Tagged::bad("Expected DONE").into()),
                    };
                }
            }
        }
    }

    // ---- helpers shared by the command modules ----

    /// A CONDSTORE-enabling command (RFC 7162 §3.1): from now on MODSEQ goes with
    /// FLAGS; with a mailbox selected (`highest` its HIGHESTMODSEQ) the client
    /// learns its HIGHESTMODSEQ at once.
    fn enable_condstore(&mut self, highest: Option<u64>) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(highest) = highest {
            self.out
                .status(Tagged::ok_with(Code::HighestModSeq(highest), "Highest"));
        }
    }

    /// Takes the selected mailbox out of the state for a Selected-state command
    /// (see `State`). The command table lets those commands through only in
    /// Selected state, so the error is a bug, answered as one.
    fn lend_selected(&mut self) -> Result<Box<Selected>, Error> {
        self.state.unselect().ok_or_else(|| {
            tracing::error!("a Selected-state command ran with no mailbox selected");
            Error::Reply(Tagged::no(Code::ServerBug, "No mailbox selected"))
        })
    }

    /// The logged-in account. The command table lets only authenticated
    /// commands reach the callers, so the error is a bug, answered as one.
    fn account_id(&self) -> Result<AccountId, Error> {
        self.state.account().map(|a| a.id).ok_or_else(|| {
            tracing::error!("an authenticated command ran before login");
            Error::Reply(Tagged::no(Code::ServerBug, "Not authenticated"))
        })
    }

    /// A mailbox name from the client, in the store's UTF-8 form.
    fn mailbox_name(&self, wire: &str) -> Result<String, Tagged> {
        if self.utf8 {
            return Ok(wire.to_string());
        }
        utf7::decode(wire)
            .ok_or_else(|| Tagged::no(Code::Cannot, "Mailbox name is not valid modified UTF-7"))
    }

    /// A mailbox name as this session shows it.
    fn shown(&self, name: impl Into<String>) -> MailboxName {
        MailboxName::new(name, self.utf8)
    }

    /// Writes one untagged response straight to the client (greeting, BYE,
    /// IDLE keepalive), not waiting for the end of a command.
    async fn write_untagged(&mut self, response: Untagged) -> io::Result<()> {
        let mut line = Vec::new();
        response.encode(&mut line);
        self.conn.write(&line).await
    }
}

#[cfg(test)]
mod size_tests {
    #[tokio::test]
    async fn session_future_sizes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = mailroom_store::Store::open(&mailroom_store::StoreOptions::new(dir.path()))
            .await
            .expect("store");
        let config = std::sync::Arc::new(mailroom_config::Config::default());
        let (a, _b) = tokio::io::duplex(64);
        let (r, w) = tokio::io::split(a);
        let shared = crate::Shared {
            throttle: std::sync::Arc::new(mailroom_auth::LoginThrottle::new(&config.auth)),
            store,
            config,
            tls: None,
        };
        let security = super::Security {
            peer: std::net::Ipv4Addr::LOCALHOST.into(),
            tls: false,
            starttls: false,
            greet: true,
        };
        let session = super::Session::new(
            r,
            w,
            shared,
            security,
            tokio_util::sync::CancellationToken::new(),
        );
        // Every idle connection holds one of these: keep them small (the command
        // futures are part of it while a command, IDLE included, runs).
        assert!(
            std::mem::size_of_val(&session) < 2048,
            "Session is {} bytes",
            std::mem::size_of_val(&session)
        );
        let run = session.run();
        assert!(
            std::mem::size_of_val(&run) < 16 * 1024,
            "the session future is {} bytes",
            std::mem::size_of_val(&run)
        );
    }
}

#[cfg(test)]
mod store_error_tests {
    use mailroom_store::{Entity, StoreError};

    use super::{Code, Status, store_error_response};

    #[test]
    fn transient_faults_are_unavailable_and_permanent_ones_cannot() {
        let answer = store_error_response(&StoreError::Unavailable(
            "the transaction could not be committed".into(),
        ));
        assert_eq!(
            (answer.status, answer.code),
            (Status::No, Some(Code::Unavailable))
        );
        let answer = store_error_response(&StoreError::Cannot("INBOX cannot be deleted".into()));
        assert_eq!(answer.code, Some(Code::Cannot));
        let answer = store_error_response(&StoreError::NotFound {
            what: Entity::Mailbox,
            name: "7".into(),
        });
        assert_eq!(
            answer.encode("a"),
            b"a NO [NONEXISTENT] Mailbox does not exist\r\n"
        );
    }
}
