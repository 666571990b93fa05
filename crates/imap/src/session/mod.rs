//! One IMAP session: the state machine of RFC 9051 §3 and the commands valid in
//! any state, authentication and ENABLE. Mailbox commands live in `mailboxes`,
//! message commands in `messages`, SEARCH in `search`.

mod fetch;
mod mailboxes;
mod messages;
mod search;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailroom_config::Config;
use mailroom_store::{Account, Change, Store, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::connection::{Connection, FrameLimits, Incoming, Line};
use crate::proto::types::{Command, CommandBody};
use crate::proto::{encode, parse_command, utf7};
use crate::selected::Selected;

/// RFC 9051 §3 connection states (Logout is the end of `run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
}

/// How a command ends: the tagged response's status and text.
pub(crate) enum Tagged {
    Ok(String),
    No(String),
    Bad(String),
}

/// Errors of a command: I/O ends the session, store errors become NO.
pub(crate) enum Error {
    Io(io::Error),
    Store(StoreError),
    /// The session must end after the untagged responses already written
    /// (e.g. the selected mailbox vanished).
    Bye(String),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

pub(crate) type CmdResult = Result<Tagged, Error>;

/// The answer to a store error, with the RFC 5530 response code that fits.
fn store_error_response(e: &StoreError) -> String {
    match e {
        StoreError::NotFound { what, .. } if *what == "mailbox" => {
            "[NONEXISTENT] Mailbox does not exist".to_string()
        }
        StoreError::NotFound { .. } => format!("[NONEXISTENT] {e}"),
        StoreError::AlreadyExists { .. } => format!("[ALREADYEXISTS] {e}"),
        StoreError::Invalid { .. } => format!("[CANNOT] {e}"),
        StoreError::Cannot(msg) => format!("[CANNOT] {msg}"),
        StoreError::OverQuota => "[OVERQUOTA] Quota exceeded".to_string(),
        StoreError::Closed => "[UNAVAILABLE] The server is shutting down".to_string(),
        _ => {
            tracing::error!(error = %e, "store error");
            "[SERVERBUG] Internal error, try again later".to_string()
        }
    }
}

pub(crate) struct Session<R, W> {
    conn: Connection<R, W>,
    store: Store,
    config: Arc<Config>,
    shutdown: CancellationToken,
    state: State,
    account: Option<Account>,
    selected: Option<Selected>,
    /// ENABLE IMAP4rev2 (RFC 9051 Appendix E differences apply).
    rev2: bool,
    /// CONDSTORE enabled (RFC 7162 §3.1): MODSEQ in every FETCH with FLAGS.
    condstore: bool,
    /// UTF-8 mailbox names and strings (UTF8=ACCEPT, implied by IMAP4rev2).
    utf8: bool,
    changes: broadcast::Receiver<Change>,
    /// Untagged responses of the command being executed.
    out: Vec<u8>,
}

const BASE_CAPS: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE";
const AUTH_CAPS: &str = "CONDSTORE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE ESEARCH SEARCHRES BINARY MULTIAPPEND UTF8=ACCEPT STATUS=SIZE";

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub fn new(
        reader: R,
        writer: W,
        store: Store,
        config: Arc<Config>,
        shutdown: CancellationToken,
    ) -> Self {
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
            shutdown,
            state: State::NotAuthenticated,
            account: None,
            selected: None,
            rev2: false,
            utf8: false,
            condstore: false,
            changes,
            out: Vec::new(),
        }
    }

    fn capabilities(&self) -> String {
        let mut caps = BASE_CAPS.to_string();
        if self.state == State::NotAuthenticated {
            if self.config.plaintext_auth_allowed() {
                caps.push_str(" AUTH=PLAIN AUTH=LOGIN");
            } else {
                caps.push_str(" LOGINDISABLED");
            }
        } else {
            caps.push(' ');
            caps.push_str(AUTH_CAPS);
        }
        caps
    }

    /// Runs the session to its end.
    pub async fn run(mut self) -> io::Result<()> {
        let greeting = format!(
            "* OK [CAPABILITY {}] {} mailroom IMAP ready\r\n",
            self.capabilities(),
            self.config.hostname
        );
        self.conn.write(greeting.as_bytes()).await?;
        self.conn.flush().await?;
        let autologout = self.config.imap.autologout.max(Duration::from_secs(1));
        loop {
            let incoming = tokio::select! {
                _ = self.shutdown.cancelled() => {
                    self.conn.write(b"* BYE Server shutting down\r\n").await?;
                    return self.conn.shutdown().await;
                }
                r = tokio::time::timeout(autologout, self.conn.read_command()) => match r {
                    Err(_) => {
                        self.conn.write(b"* BYE Autologout; idle for too long\r\n").await?;
                        return self.conn.shutdown().await;
                    }
                    Ok(r) => r?,
                },
            };
            let Some(incoming) = incoming else {
                return Ok(());
            };
            let input = match incoming {
                Incoming::Refused(line) => {
                    tracing::info!(response = %line, "command refused by framing");
                    self.conn.write(line.as_bytes()).await?;
                    self.conn.write(b"\r\n").await?;
                    self.conn.flush().await?;
                    continue;
                }
                Incoming::Command(input) => input,
            };
            let command = match parse_command(&input) {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!(error = %e.message, "bad command");
                    let line = match (e.tag, e.message.strip_prefix("BADCHARSET:")) {
                        (Some(tag), Some(_)) => format!(
                            "{tag} NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
                        ),
                        (Some(tag), None) => {
                            format!("{tag} BAD Error in IMAP command: {}\r\n", e.message)
                        }
                        (None, _) => format!("* BAD Error in IMAP command: {}\r\n", e.message),
                    };
                    self.conn.write(line.as_bytes()).await?;
                    self.conn.flush().await?;
                    continue;
                }
            };
            if !self.execute(command).await? {
                return self.conn.shutdown().await;
            }
        }
    }

    /// Executes one command and writes all its responses; false when the
    /// session must end.
    async fn execute(&mut self, command: Command) -> io::Result<bool> {
        let Command { tag, body } = command;
        let name = body.name();
        tracing::debug!(tag = %tag, command = name, "command");
        if matches!(body, CommandBody::Logout) {
            self.conn.write(b"* BYE Logging out\r\n").await?;
            self.conn
                .write(format!("{tag} OK Logout completed\r\n").as_bytes())
                .await?;
            self.conn.flush().await?;
            return Ok(false);
        }
        // Expunges may be reported at the end of any command except FETCH, STORE,
        // SEARCH, COPY and MOVE by sequence number (RFC 9051 §7.5.1).
        let allow_expunge = match &body {
            CommandBody::Fetch { uid, .. }
            | CommandBody::Store { uid, .. }
            | CommandBody::Search { uid, .. }
            | CommandBody::Copy { uid, .. }
            | CommandBody::Move { uid, .. } => *uid,
            _ => true,
        };
        let result = if !self.valid_in_state(&body) {
            Ok(Tagged::Bad(format!("{name} is not valid in this state")))
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
            Err(Error::Store(e)) => Tagged::No(store_error_response(&e)),
            Err(Error::Bye(text)) => {
                self.flush_out().await?;
                self.conn
                    .write(format!("* BYE {text}\r\n").as_bytes())
                    .await?;
                self.conn.flush().await?;
                return Ok(false);
            }
        };
        if !matches!(tagged, Tagged::Bad(_))
            && let Err(e) = self.sync_selected(allow_expunge).await
        {
            self.flush_out().await?;
            self.conn.write(format!("* BYE {e}\r\n").as_bytes()).await?;
            self.conn.flush().await?;
            return Ok(false);
        }
        self.flush_out().await?;
        let line = match tagged {
            Tagged::Ok(text) => format!("{tag} OK {text}\r\n"),
            Tagged::No(text) => format!("{tag} NO {text}\r\n"),
            Tagged::Bad(text) => format!("{tag} BAD {text}\r\n"),
        };
        self.conn.write(line.as_bytes()).await?;
        self.conn.flush().await?;
        Ok(true)
    }

    /// Writes the collected untagged responses.
    async fn flush_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.conn.write(&out).await?;
        }
        Ok(())
    }

    /// Drains the change feed and reports what changed in the selected mailbox.
    /// Err(text) when the mailbox is gone and the session must end.
    async fn sync_selected(&mut self, allow_expunge: bool) -> Result<(), String> {
        let Some(sel) = self.selected.as_mut() else {
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
                self.selected = None;
                self.state = State::Authenticated;
                Err("Selected mailbox was deleted, have to disconnect".into())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the selected mailbox");
                Ok(())
            }
        }
    }

    fn valid_in_state(&self, body: &CommandBody) -> bool {
        use CommandBody::*;
        match body {
            Capability | Noop | Logout | Id(_) => true,
            Login { .. } | Authenticate { .. } => self.state == State::NotAuthenticated,
            Enable(_) => self.state == State::Authenticated,
            Namespace
            | Select { .. }
            | Create { .. }
            | Delete(_)
            | Rename { .. }
            | Subscribe(_)
            | Unsubscribe(_)
            | List { .. }
            | Lsub { .. }
            | Status { .. }
            | Append { .. }
            | Idle => self.state != State::NotAuthenticated,
            Check
            | Close
            | Unselect
            | Expunge { .. }
            | Search { .. }
            | Fetch { .. }
            | Store { .. }
            | Copy { .. }
            | Move { .. } => self.state == State::Selected,
        }
    }

    async fn dispatch(&mut self, tag: &str, body: CommandBody) -> CmdResult {
        match body {
            CommandBody::Capability => {
                self.out.extend_from_slice(
                    format!("* CAPABILITY {}\r\n", self.capabilities()).as_bytes(),
                );
                Ok(Tagged::Ok("Capability completed".into()))
            }
            CommandBody::Noop => Ok(Tagged::Ok("NOOP completed".into())),
            CommandBody::Logout => Ok(Tagged::Ok("Logout completed".into())),
            CommandBody::Id(params) => {
                if !params.is_empty() {
                    tracing::info!(?params, "client ID");
                }
                self.out.extend_from_slice(
                    format!(
                        "* ID (\"name\" \"mailroom\" \"version\" \"{}\")\r\n",
                        env!("CARGO_PKG_VERSION")
                    )
                    .as_bytes(),
                );
                Ok(Tagged::Ok("ID completed".into()))
            }
            CommandBody::Login { user, password } => self.login(&user, &password).await,
            CommandBody::Authenticate { mechanism, initial } => {
                self.authenticate(&mechanism, initial).await
            }
            CommandBody::Enable(caps) => Ok(self.enable(&caps)),
            CommandBody::Namespace => {
                self.out
                    .extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                Ok(Tagged::Ok("Namespace completed".into()))
            }
            CommandBody::Idle => self.idle(tag).await,
            CommandBody::Select {
                mailbox,
                read_only,
                condstore,
            } => {
                if condstore {
                    self.enable_condstore();
                }
                self.select(&mailbox, read_only).await
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
            CommandBody::Check => Ok(Tagged::Ok("CHECK completed".into())),
            CommandBody::Close => self.close(true).await,
            CommandBody::Unselect => self.close(false).await,
            CommandBody::Expunge { uids } => self.expunge(uids.as_ref()).await,
            CommandBody::Search { uid, returns, key } => self.search(tag, uid, returns, key).await,
            CommandBody::Fetch {
                uid,
                set,
                attrs,
                changed_since,
            } => self.fetch(uid, &set, attrs, changed_since).await,
            CommandBody::Store {
                uid,
                set,
                op,
                silent,
                flags,
                unchanged_since,
            } => {
                self.store_flags(uid, &set, op, silent, &flags, unchanged_since)
                    .await
            }
            CommandBody::Copy { uid, set, mailbox } => self.copy(uid, &set, &mailbox, false).await,
            CommandBody::Move { uid, set, mailbox } => self.copy(uid, &set, &mailbox, true).await,
        }
    }

    // ---- authentication ----

    async fn login(&mut self, user: &str, password: &str) -> CmdResult {
        if !self.config.plaintext_auth_allowed() {
            return Ok(Tagged::No(
                "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections"
                    .into(),
            ));
        }
        self.finish_auth(user, password).await
    }

    async fn finish_auth(&mut self, user: &str, password: &str) -> CmdResult {
        match self.store.authenticate(user, password).await? {
            Some(account) => {
                tracing::Span::current().record("user", account.address.as_str());
                tracing::info!("logged in");
                self.account = Some(account);
                self.state = State::Authenticated;
                Ok(Tagged::Ok(format!(
                    "[CAPABILITY {}] Logged in",
                    self.capabilities()
                )))
            }
            None => {
                tracing::info!(user, "authentication failed");
                // Slow down password guessing a little.
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(Tagged::No(
                    "[AUTHENTICATIONFAILED] Authentication failed".into(),
                ))
            }
        }
    }

    /// Reads one SASL response line after a `+` challenge; None when cancelled (`*`).
    async fn sasl_response(&mut self, challenge: &str) -> Result<Option<Vec<u8>>, Error> {
        self.conn
            .write(format!("+ {challenge}\r\n").as_bytes())
            .await?;
        self.conn.flush().await?;
        let max = self.conn.limits().max_line;
        // The client may take its time, but not forever, and not past shutdown.
        let wait = self.config.imap.autologout.max(Duration::from_secs(1));
        let line = tokio::select! {
            _ = self.shutdown.cancelled() => return Err(Error::Bye("Server shutting down".into())),
            _ = tokio::time::sleep(wait) => return Err(Error::Bye("Autologout; idle for too long".into())),
            line = self.conn.read_line(max) => line?,
        };
        let line = match line {
            None => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
            Some(Line::TooLong(_)) => return Ok(Some(b"\x00invalid".to_vec())),
            Some(Line::Complete(l)) => l,
        };
        if line == b"*" {
            return Ok(None);
        }
        Ok(Some(
            BASE64
                .decode(&line)
                .unwrap_or_else(|_| b"\x00invalid".to_vec()),
        ))
    }

    async fn authenticate(&mut self, mechanism: &str, initial: Option<String>) -> CmdResult {
        if !self.config.plaintext_auth_allowed() {
            return Ok(Tagged::No(
                "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections"
                    .into(),
            ));
        }
        let decode = |s: &str| -> Option<Vec<u8>> {
            if s == "=" {
                Some(Vec::new())
            } else {
                BASE64.decode(s).ok()
            }
        };
        match mechanism {
            "PLAIN" => {
                let response = match initial {
                    Some(ir) => match decode(&ir) {
                        Some(r) => r,
                        None => {
                            return Ok(Tagged::Bad(
                                "Invalid base64 in the initial response".into(),
                            ));
                        }
                    },
                    None => match self.sasl_response("").await? {
                        Some(r) => r,
                        None => return Ok(Tagged::Bad("Authentication cancelled".into())),
                    },
                };
                let parts: Vec<&[u8]> = response.split(|&b| b == 0).collect();
                let [authz, user, pass] = parts.as_slice() else {
                    return Ok(Tagged::Bad("Invalid PLAIN response".into()));
                };
                let (Ok(authz), Ok(user), Ok(pass)) = (
                    std::str::from_utf8(authz),
                    std::str::from_utf8(user),
                    std::str::from_utf8(pass),
                ) else {
                    return Ok(Tagged::No(
                        "[AUTHENTICATIONFAILED] Authentication failed".into(),
                    ));
                };
                if !authz.is_empty() && !authz.eq_ignore_ascii_case(user) {
                    return Ok(Tagged::No(
                        "[AUTHORIZATIONFAILED] Cannot act as another user".into(),
                    ));
                }
                self.finish_auth(user, pass).await
            }
            "LOGIN" => {
                let user = match initial {
                    Some(ir) => match decode(&ir) {
                        Some(u) => u,
                        None => {
                            return Ok(Tagged::Bad(
                                "Invalid base64 in the initial response".into(),
                            ));
                        }
                    },
                    None => match self.sasl_response("VXNlcm5hbWU6").await? {
                        Some(u) => u,
                        None => return Ok(Tagged::Bad("Authentication cancelled".into())),
                    },
                };
                let Some(pass) = self.sasl_response("UGFzc3dvcmQ6").await? else {
                    return Ok(Tagged::Bad("Authentication cancelled".into()));
                };
                let user = String::from_utf8_lossy(&user).into_owned();
                let pass = String::from_utf8_lossy(&pass).into_owned();
                self.finish_auth(&user, &pass).await
            }
            _ => Ok(Tagged::No(format!(
                "Unsupported authentication mechanism {mechanism}"
            ))),
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
                self.enable_condstore();
                enabled.push("CONDSTORE");
            } else if cap.eq_ignore_ascii_case("UTF8=ACCEPT") && !self.utf8 {
                self.utf8 = true;
                enabled.push("UTF8=ACCEPT");
            }
        }
        self.out.extend_from_slice(
            format!(
                "* ENABLED{}{}\r\n",
                if enabled.is_empty() { "" } else { " " },
                enabled.join(" ")
            )
            .as_bytes(),
        );
        Tagged::Ok("Enabled".into())
    }

    // ---- IDLE (RFC 2177, RFC 9051 §6.3.13) ----

    async fn idle(&mut self, tag: &str) -> CmdResult {
        let _ = tag;
        self.sync_selected(true).await.map_err(Error::Bye)?;
        self.flush_out().await?;
        self.conn.write(b"+ idling\r\n").await?;
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
                    self.conn.write(b"* OK Still here\r\n").await?;
                    self.conn.flush().await?;
                }
                change = self.changes.recv(), if self.selected.is_some() => {
                    let relevant = match change {
                        Ok(Change::Mailbox { mailbox_id, .. }) => self.selected.as_ref().is_some_and(|s| s.mailbox.id == mailbox_id),
                        Ok(_) => false,
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => false,
                    };
                    if relevant {
                        if let Some(sel) = self.selected.as_mut() {
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
                        Some(Line::Complete(l)) if l.eq_ignore_ascii_case(b"DONE") => Ok(Tagged::Ok("Idle completed".into())),
                        Some(_) => Ok(Tagged::Bad("Expected DONE".into())),
                    };
                }
            }
        }
    }

    // ---- helpers shared by the command modules ----

    /// A CONDSTORE-enabling command (RFC 7162 §3.1): from now on MODSEQ goes with
    /// FLAGS; with a mailbox selected the client learns its HIGHESTMODSEQ at once.
    fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(sel) = &self.selected {
            self.out.extend_from_slice(
                format!("* OK [HIGHESTMODSEQ {}] Highest\r\n", sel.highest_modseq()).as_bytes(),
            );
        }
    }

    fn account_id(&self) -> i64 {
        self.account.as_ref().map_or(0, |a| a.id)
    }

    /// A mailbox name from the client, in the store's UTF-8 form.
    fn mailbox_name(&self, wire: &str) -> Result<String, Tagged> {
        if self.utf8 {
            return Ok(wire.to_string());
        }
        utf7::decode(wire)
            .ok_or_else(|| Tagged::No("[CANNOT] Mailbox name is not valid modified UTF-7".into()))
    }

    /// Writes a mailbox name as this session shows it.
    fn write_mailbox(&self, out: &mut Vec<u8>, name: &str) {
        encode::write_mailbox(out, name, self.utf8);
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
        let session = super::Session::new(
            r,
            w,
            store,
            config,
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
