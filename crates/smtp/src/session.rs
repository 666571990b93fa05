//! One SMTP or LMTP session: the state machine of RFC 5321 §4.1.4 over a
//! [`Connection`].
//!
//! States: not greeted -> greeted (EHLO/HELO/LHLO) -> in a transaction (MAIL) with
//! recipients (RCPT) -> message data (DATA or BDAT chunks) -> delivered, back to
//! greeted. A command out of this order gets `503 5.5.1`; nothing is delivered unless
//! the data ended properly and the store committed it.
//!
//! Submission adds AUTH (RFC 4954) before MAIL, the check that the sender is the
//! account's own, and recipients in other domains, which go to the outbound queue
//! ([`Session::may_relay`]). STARTTLS (RFC 3207) resets the session to its start.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mailroom_auth::sasl::SaslFailure;
use mailroom_auth::{Mechanism, SaslOutcome, SaslSession, ThrottleVerdict};
use mailroom_delivery::{Envelope, Verdict, Via};
use mailroom_store::{Account, AccountId, Folder, Recipient, StoreError};
use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, AUTH_SCRAM_SHA_256, MAIL_BODY_BINARYMIME, MAIL_SMTPUTF8, MailFrom,
    RcptTo, Request,
};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::body::BodySink;
use crate::connection::{Connection, DataError, Input};
use crate::reply::Reply;
use crate::stream::Stream;
use crate::trace::{TraceInfo, trace_headers};
use crate::{Mode, Shared, address_literal};

/// Runs a session to its end; errors are the client's problem and only logged.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    implicit_tls: bool,
) {
    let _ = stream.set_nodelay(true);
    let idle = shared.config.limits.smtp_idle_timeout;
    let stream = match (&shared.tls, implicit_tls) {
        (Some(tls), true) => {
            match tokio::time::timeout(idle, tls.acceptor().accept(stream)).await {
                Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                Ok(Err(error)) => {
                    info!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    info!("TLS handshake timed out");
                    return;
                }
            }
        }
        _ => Stream::Plain(stream),
    };
    let mut session = Session {
        conn: Connection::new(stream, idle, shutdown.clone()),
        client: address_literal(peer),
        peer,
        shared,
        shutdown,
        greeting: None,
        transaction: None,
        auth: None,
        commands: 0,
        delivered: 0,
    };
    debug!("session started");
    match session.serve().await {
        Ok(()) => debug!(delivered = session.delivered, "session ended"),
        Err(error) => {
            debug!(delivered = session.delivered, %error, "session ended by an I/O error")
        }
    }
}

/// What the client said in EHLO/HELO/LHLO.
struct Greeting {
    name: String,
    /// EHLO or LHLO (extended), not HELO.
    extended: bool,
}

/// A mail transaction, from MAIL to the end of the message data.
struct Transaction {
    reverse_path: String,
    smtputf8: bool,
    /// The SIZE= the client announced (0 when it did not), for RCPT-time quota checks.
    size: u64,
    queue_id: String,
    /// Accepted recipients in RCPT order. In SMTP mode an address given twice is
    /// kept once; in LMTP mode each accepted RCPT gets its own reply after the data.
    recipients: Vec<Accepted>,
    /// The message received so far by BDAT chunks.
    chunks: Option<BodySink>,
}

struct Accepted {
    address: String,
    /// The local account, or None for a remote recipient (submission only).
    account: Option<AccountId>,
}

/// Whether the session goes on after a command.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

struct Session<S> {
    conn: Connection<S>,
    shared: Arc<Shared>,
    /// The client's address literal for replies and the Received: header.
    client: String,
    peer: SocketAddr,
    /// The account this client authenticated as (submission).
    auth: Option<Account>,
    shutdown: CancellationToken,
    greeting: Option<Greeting>,
    transaction: Option<Transaction>,
    /// Commands since the session began or since the last delivered message, for
    /// `limits.max_smtp_commands`. A delivery resets it: a client that keeps
    /// delivering mail over one connection (an MTA, a test suite with a pooled
    /// transport) is doing useful work; the limit is for sessions that only talk.
    commands: usize,
    /// Messages delivered in this session (for the log).
    delivered: usize,
}

impl Session<Stream> {
    fn hostname(&self) -> &str {
        &self.shared.config.hostname
    }

    fn max_size(&self) -> u64 {
        self.shared.config.limits.max_message_size.0
    }

    /// Counts a refusal in `mailroom_smtp_messages_refused_total`.
    fn refused(&self, reason: &'static str) {
        metrics::counter!("mailroom_smtp_messages_refused_total", "listener" => self.shared.mode.name(), "reason" => reason).increment(1);
    }

    /// Queues a reply; refusals are logged with their reason.
    fn reply(&mut self, reply: Reply) {
        if reply.is_error() {
            info!(code = reply.code, status = reply.status.unwrap_or(""), reason = %reply.lines.join(" "), "refused");
        }
        self.conn.queue(reply.to_string().as_bytes());
    }

    /// Says goodbye with a 421 and ends the session.
    async fn close_with(&mut self, reply: Reply) -> std::io::Result<()> {
        self.reply(reply);
        self.conn.flush().await
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let protocol = match self.shared.mode {
            Mode::Smtp | Mode::Submission => "ESMTP",
            Mode::Lmtp => "LMTP",
        };
        let banner = format!("{} {protocol} mailroom ready", self.hostname());
        self.reply(Reply::plain(220, vec![banner]));
        let max_line = usize::try_from(self.shared.config.limits.max_line_length.0)
            .unwrap_or(usize::MAX)
            .max(512);
        let max_commands = self.shared.config.limits.max_smtp_commands;
        loop {
            let input = self.conn.read_line(max_line).await?;
            let line = match input {
                Input::Line(line) => Some(line),
                Input::TooLong => None,
                Input::Closed => {
                    if self.transaction.is_some() {
                        info!("client disconnected inside a transaction; nothing delivered");
                    }
                    return Ok(());
                }
                Input::Timeout => {
                    let text = format!("{} Idle timeout, closing connection", self.hostname());
                    return self.close_with(Reply::new(421, "4.4.2", text)).await;
                }
                Input::Shutdown => {
                    let text =
                        format!("{} Service shutting down, try again later", self.hostname());
                    return self.close_with(Reply::new(421, "4.3.2", text)).await;
                }
            };
            self.commands += 1;
            if self.commands > max_commands {
                let text = format!("{} Too many commands, closing connection", self.hostname());
                return self.close_with(Reply::new(421, "4.7.0", text)).await;
            }
            let flow = match line {
                Some(line) => self.command(&line).await?,
                None => {
                    self.reply(Reply::new(
                        500,
                        "5.5.6",
                        format!("Line too long (at most {max_line} octets)"),
                    ));
                    Flow::Continue
                }
            };
            if flow == Flow::Close {
                return self.conn.flush().await;
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> std::io::Result<Flow> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request.into_owned(),
            Err(error) => {
                let shown = String::from_utf8_lossy(&line[..line.len().min(80)]);
                debug!(line = %sanitize(shown.trim_end()), ?error, "unparsable command");
                self.reply(Reply::from_parse_error(&error));
                return Ok(Flow::Continue);
            }
        };
        let mode = self.shared.mode;
        match request {
            Request::Ehlo { .. } | Request::Helo { .. } if mode == Mode::Lmtp => {
                self.reply(Reply::new(500, "5.5.1", "This is an LMTP server: use LHLO"));
            }
            Request::Lhlo { .. } if mode != Mode::Lmtp => {
                self.reply(Reply::new(500, "5.5.1", "Command not recognized"));
            }
            Request::Ehlo { host } | Request::Lhlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => return self.data().await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => return self.bdat(chunk_size, is_last).await,
            Request::Rset => {
                self.transaction = None;
                self.reply(Reply::ok("OK"));
            }
            Request::Noop { .. } => self.reply(Reply::ok("OK")),
            Request::Quit => {
                let text = format!("{} closing connection", self.hostname());
                self.reply(Reply::new(221, "2.0.0", text));
                return Ok(Flow::Close);
            }
            // RFC 5321 §3.5.3: a server that will not verify says so with 252.
            Request::Vrfy { .. } => self.reply(Reply::new(
                252,
                "2.5.2",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Request::Expn { .. } => self.reply(Reply::new(502, "5.5.1", "EXPN is not available")),
            Request::Help { .. } => {
                let hello = if mode == Mode::Lmtp {
                    "LHLO"
                } else {
                    "EHLO HELO"
                };
                let text = format!(
                    "Commands: {hello} MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP (RFC 5321)"
                );
                self.reply(Reply::new(214, "2.0.0", text));
            }
            Request::StartTls if self.starttls_offered() => return self.starttls().await,
            Request::Auth {
                mechanism,
                initial_response,
            } if self.auth_offered() => {
                return self.authenticate(mechanism, initial_response).await;
            }
            other @ (Request::StartTls
            | Request::Auth { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. }) => {
                self.reply(Reply::new(
                    502,
                    "5.5.1",
                    format!("{} is not available here", other.name()),
                ));
            }
        }
        Ok(Flow::Continue)
    }

    /// EHLO, HELO, LHLO (RFC 5321 §4.1.1.1): a new greeting resets any transaction.
    fn hello(&mut self, host: String, extended: bool) {
        self.transaction = None;
        let first = format!(
            "{} Hello {} {}",
            self.hostname(),
            sanitize(&host),
            self.client
        );
        let reply = if extended {
            let mut lines = vec![
                first,
                format!("SIZE {}", self.max_size()),
                "8BITMIME".into(),
                "PIPELINING".into(),
                "ENHANCEDSTATUSCODES".into(),
                "SMTPUTF8".into(),
                "CHUNKING".into(),
            ];
            if self.starttls_offered() {
                lines.push("STARTTLS".into());
            }
            if self.auth_offered() {
                let names: Vec<&str> = Mechanism::ALL.iter().map(|m| m.name()).collect();
                lines.push(format!("AUTH {}", names.join(" ")));
            }
            Reply::plain(250, lines)
        } else {
            Reply::plain(250, vec![first])
        };
        self.greeting = Some(Greeting {
            name: host,
            extended,
        });
        self.reply(reply);
    }

    /// MAIL FROM (RFC 5321 §4.1.1.2). `<>`, the null reverse-path of bounces, MUST
    /// be accepted (§4.5.5). SIZE (RFC 1870) over the limit is refused here, before
    /// any data is sent.
    async fn mail(&mut self, from: MailFrom<String>) {
        if self.greeting.is_none() {
            return self.reply(Reply::bad_sequence("Send EHLO or HELO first"));
        }
        if self.transaction.is_some() {
            return self.reply(Reply::bad_sequence("Nested MAIL command: send RSET first"));
        }
        if self.shared.mode == Mode::Submission {
            let Some(account) = self.auth.clone() else {
                self.refused("auth_required");
                return self.reply(Reply::new(530, "5.7.0", "Authentication required"));
            };
            match self.owns(&account, &from.address).await {
                Ok(true) => {}
                Ok(false) => {
                    self.refused("sender_not_owned");
                    return self.reply(Reply::new(
                        550,
                        "5.7.1",
                        format!(
                            "<{}> is not an address of {}",
                            sanitize(&from.address),
                            account.address
                        ),
                    ));
                }
                Err(error) => {
                    warn!(%error, "sender lookup failed");
                    return self.reply(Reply::new(
                        451,
                        "4.3.0",
                        "Temporary lookup failure, try again later",
                    ));
                }
            }
        }
        let limit = self.max_size();
        if from.size as u64 > limit {
            self.refused("too_large");
            return self.reply(Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({limit} octets)"),
            ));
        }
        // RFC 6531 §3.5: an internationalized address needs SMTPUTF8.
        if from.flags & MAIL_SMTPUTF8 == 0 && !from.address.is_ascii() {
            return self.reply(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires the SMTPUTF8 parameter",
            ));
        }
        if from.flags & MAIL_BODY_BINARYMIME != 0 {
            return self.reply(Reply::new(555, "5.5.4", "BODY=BINARYMIME is not supported"));
        }
        let reply = Reply::new(
            250,
            "2.1.0",
            format!("Sender <{}> OK", sanitize(&from.address)),
        );
        self.transaction = Some(Transaction {
            reverse_path: from.address,
            smtputf8: from.flags & MAIL_SMTPUTF8 != 0,
            size: from.size as u64,
            queue_id: format!("{:016X}", rand::random::<u64>()),
            recipients: Vec::new(),
            chunks: None,
        });
        self.reply(reply);
    }

    /// Whether mail for other domains may be accepted: only from an authenticated
    /// client on the submission listener; the MX never relays (no open relay).
    fn may_relay(&self) -> bool {
        self.shared.mode == Mode::Submission && self.auth.is_some()
    }

    /// RCPT TO (RFC 5321 §4.1.1.3), checked against the store.
    async fn rcpt(&mut self, to: RcptTo<String>) {
        let Some(tx) = &self.transaction else {
            return self.reply(Reply::bad_sequence("Need MAIL before RCPT"));
        };
        if tx.chunks.is_some() {
            return self.reply(Reply::bad_sequence("RCPT is not allowed during BDAT"));
        }
        if !tx.smtputf8 && !to.address.is_ascii() {
            return self.reply(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8 in MAIL FROM",
            ));
        }
        if tx.recipients.len() >= self.shared.config.limits.max_recipients {
            return self.reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        // `RCPT TO:<Postmaster>` without a domain (smtp-proto gives "") MUST be
        // accepted (RFC 5321 §4.5.1): it means the postmaster of this host.
        let address = if to.address.is_empty() {
            format!("postmaster@{}", self.hostname())
        } else {
            to.address
        };
        let shown = sanitize(&address);
        let mut resolved = self
            .shared
            .store
            .resolve_recipient(&address, self.shared.policy)
            .await;
        if self.shared.config.test_mode.enabled
            && self.shared.mode != Mode::Submission
            && matches!(resolved, Ok(Recipient::Remote | Recipient::UnknownLocal))
        {
            resolved = self.auto_create(&address).await;
        }
        let announced = tx.size;
        match resolved {
            Ok(Recipient::Local(account)) => {
                if announced > 0 {
                    match self.shared.store.fits_quota(account.id, announced).await {
                        Ok(true) => {}
                        Ok(false) => {
                            self.refused("over_quota");
                            return self.reply(Reply::new(
                                452,
                                "4.2.2",
                                format!("<{shown}>: mailbox full"),
                            ));
                        }
                        Err(error) => warn!(%error, "quota lookup failed"),
                    }
                }
                self.accept(address, Some(account.id));
                self.reply(Reply::new(250, "2.1.5", format!("Recipient <{shown}> OK")));
            }
            Ok(Recipient::UnknownLocal) => {
                self.refused("unknown_recipient");
                self.reply(Reply::new(
                    550,
                    "5.1.1",
                    format!("<{shown}>: no such user here"),
                ))
            }
            Ok(Recipient::Remote) if self.may_relay() => {
                self.accept(address, None);
                self.reply(Reply::new(
                    250,
                    "2.1.5",
                    format!("Recipient <{shown}> OK, will relay"),
                ));
            }
            Ok(Recipient::Remote) => {
                // The store answers Remote for any address it cannot parse, also in
                // a local domain (a local part over 64 octets, with spaces...): that
                // is an unknown user here, not a relay attempt.
                let domain = address
                    .rsplit_once('@')
                    .map(|(_, d)| d.trim_end_matches('.'));
                let local = match domain {
                    Some(domain) => self
                        .shared
                        .store
                        .is_local_domain(domain)
                        .await
                        .unwrap_or(false),
                    None => false,
                };
                if local {
                    self.refused("unknown_recipient");
                    self.reply(Reply::new(
                        550,
                        "5.1.1",
                        format!("<{shown}>: no such user here"),
                    ))
                } else {
                    self.refused("relay_denied");
                    self.reply(Reply::new(
                        550,
                        "5.7.1",
                        format!("<{shown}>: relaying denied"),
                    ))
                }
            }
            Err(error) => {
                warn!(%error, rcpt = %shown, "recipient lookup failed");
                self.reply(Reply::new(
                    451,
                    "4.3.0",
                    "Temporary lookup failure, try again later",
                ));
            }
        }
    }

    /// Adds an accepted recipient (an address given twice is kept once, except in
    /// LMTP, where each RCPT gets its own reply).
    fn accept(&mut self, address: String, account: Option<AccountId>) {
        let mode = self.shared.mode;
        if let Some(tx) = &mut self.transaction {
            let duplicate = tx
                .recipients
                .iter()
                .any(|r| r.address.eq_ignore_ascii_case(&address));
            if mode == Mode::Lmtp || !duplicate {
                tx.recipients.push(Accepted { address, account });
            }
        }
    }

    /// Test mode (GreenMail behaviour): creates the domain and the account of a
    /// recipient nobody has, with a random password (set it later to log in).
    async fn auto_create(&self, address: &str) -> Result<Recipient, StoreError> {
        let store = &self.shared.store;
        let Some((_, domain)) = address.rsplit_once('@') else {
            return Ok(Recipient::UnknownLocal);
        };
        if !store.is_local_domain(domain).await? {
            match store.add_domain(domain).await {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(StoreError::Invalid { .. }) => return Ok(Recipient::UnknownLocal),
                Err(e) => return Err(e),
            }
        }
        let password = format!("{:032x}", rand::random::<u128>());
        match store.create_account(address, &password).await {
            Ok(account) => {
                info!(account = %account.address, "test mode: account created on first delivery");
            }
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(StoreError::Invalid { .. }) => return Ok(Recipient::UnknownLocal),
            Err(e) => return Err(e),
        }
        store.resolve_recipient(address, self.shared.policy).await
    }

    /// Whether `account` may send as `address` (envelope sender or From:): its own
    /// address, an address that delivers to it (alias, sub-address, catch-all), or
    /// any non-empty address for an account allowed to send as any
    /// (`Store::set_send_as_any`, for admins).
    async fn owns(&self, account: &Account, address: &str) -> Result<bool, StoreError> {
        if address.eq_ignore_ascii_case(&account.address) {
            return Ok(true);
        }
        if address.is_empty() {
            return Ok(false);
        }
        if self.shared.store.may_send_as_any(account.id).await? {
            return Ok(true);
        }
        Ok(matches!(
            self.shared.store.resolve_recipient(address, self.shared.policy).await?,
            Recipient::Local(owner) if owner.id == account.id
        ))
    }

    fn starttls_offered(&self) -> bool {
        self.shared.mode != Mode::Lmtp && self.shared.tls.is_some() && !self.conn.is_tls()
    }

    /// AUTH only on submission, only before authenticating, and only over TLS
    /// unless plaintext passwords are allowed.
    fn auth_offered(&self) -> bool {
        self.shared.mode == Mode::Submission
            && self.auth.is_none()
            && (self.conn.is_tls() || self.shared.config.plaintext_auth_allowed())
    }

    /// STARTTLS (RFC 3207): 220, handshake, and a session as new: no greeting, no
    /// transaction, no authentication; whatever the client pipelined after the
    /// command is discarded by the connection.
    async fn starttls(&mut self) -> std::io::Result<Flow> {
        let Some(tls) = self.shared.tls.clone() else {
            return Ok(Flow::Continue);
        };
        self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"));
        if let Err(error) = self.conn.start_tls(tls.acceptor()).await {
            info!(%error, "STARTTLS handshake failed");
            return Ok(Flow::Close);
        }
        debug!("TLS established");
        self.greeting = None;
        self.transaction = None;
        self.auth = None;
        Ok(Flow::Continue)
    }

    /// AUTH (RFC 4954) through the SASL mechanisms of mailroom-auth, throttled.
    async fn authenticate(&mut self, mechanism: u64, initial: String) -> std::io::Result<Flow> {
        if self.greeting.is_none() {
            self.reply(Reply::bad_sequence("Send EHLO first"));
            return Ok(Flow::Continue);
        }
        if self.transaction.is_some() {
            self.reply(Reply::bad_sequence(
                "AUTH is not allowed during a mail transaction",
            ));
            return Ok(Flow::Continue);
        }
        let mechanism = match mechanism {
            AUTH_PLAIN => Mechanism::Plain,
            AUTH_LOGIN => Mechanism::Login,
            AUTH_SCRAM_SHA_256 => Mechanism::ScramSha256,
            _ => {
                self.reply(Reply::new(504, "5.5.4", "Unrecognized authentication type"));
                return Ok(Flow::Continue);
            }
        };
        let ip = self.peer.ip();
        // The client address alone (a user name no client can send: an empty one
        // would share one record among all clients that sent none).
        if let ThrottleVerdict::Locked { .. } = self.shared.throttle.check(ip, "\0") {
            info!(
                mechanism = mechanism.name(),
                "authentication refused: locked out"
            );
            self.refused("rate_limited");
            self.reply(Reply::new(
                454,
                "4.7.0",
                "Too many failed logins, try again later",
            ));
            return Ok(Flow::Continue);
        }
        let mut sasl = SaslSession::new(mechanism, self.shared.store.clone());
        let initial = (!initial.is_empty()).then_some(initial);
        let mut outcome = sasl.start(initial.as_deref()).await;
        let max_line = 12 * 1024;
        loop {
            match outcome {
                SaslOutcome::Challenge(challenge) => {
                    self.conn.queue(format!("334 {challenge}\r\n").as_bytes());
                    let line = match self.conn.read_line(max_line).await? {
                        Input::Line(line) => line,
                        Input::TooLong => {
                            self.reply(Reply::new(500, "5.5.6", "Authentication line too long"));
                            return Ok(Flow::Continue);
                        }
                        _ => return Ok(Flow::Close),
                    };
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    outcome = sasl.step(&text).await;
                }
                SaslOutcome::Success(account) => {
                    let user = account.address.clone();
                    if let ThrottleVerdict::Locked { .. } = self.shared.throttle.check(ip, &user) {
                        info!(user = %user, mechanism = mechanism.name(), "authentication refused: locked out");
                        self.refused("rate_limited");
                        self.reply(Reply::new(
                            454,
                            "4.7.0",
                            "Too many failed logins, try again later",
                        ));
                        return Ok(Flow::Continue);
                    }
                    self.shared.throttle.success(ip, &user);
                    info!(user = %user, mechanism = mechanism.name(), "authenticated");
                    tracing::Span::current().record("account", user.as_str());
                    self.auth = Some(account);
                    self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
                    return Ok(Flow::Continue);
                }
                SaslOutcome::Failure(failure) => {
                    let user = sasl.user().unwrap_or("").to_string();
                    let reply = match failure {
                        SaslFailure::Credentials => {
                            if let ThrottleVerdict::Locked { .. } =
                                self.shared.throttle.check(ip, &user)
                            {
                                info!(user = %sanitize(&user), mechanism = mechanism.name(), "authentication refused: locked out");
                                self.refused("rate_limited");
                                Reply::new(454, "4.7.0", "Too many failed logins, try again later")
                            } else {
                                let delay = self.shared.throttle.failure(ip, &user);
                                info!(user = %sanitize(&user), mechanism = mechanism.name(), delay_ms = delay.as_millis() as u64, "authentication failed");
                                self.conn.flush().await?;
                                tokio::time::sleep(delay).await;
                                Reply::new(535, "5.7.8", "Authentication credentials invalid")
                            }
                        }
                        SaslFailure::Malformed(why) => {
                            info!(mechanism = mechanism.name(), %why, "malformed authentication");
                            Reply::new(501, "5.5.2", format!("Malformed authentication: {why}"))
                        }
                        SaslFailure::Cancelled => {
                            Reply::new(501, "5.0.0", "Authentication cancelled")
                        }
                        SaslFailure::Unavailable => Reply::new(
                            454,
                            "4.7.0",
                            "Temporary authentication failure, try again later",
                        ),
                    };
                    self.reply(reply);
                    return Ok(Flow::Continue);
                }
            }
        }
    }

    /// The buffer a message is received into, starting with the trace headers.
    fn new_sink(&self, tx: &Transaction) -> BodySink {
        let helo = self
            .greeting
            .as_ref()
            .map(|g| g.name.as_str())
            .unwrap_or("unknown");
        let extended = self.greeting.as_ref().is_some_and(|g| g.extended);
        // RFC 3848: S for TLS, A for an authenticated client.
        let base = match (self.shared.mode, extended, tx.smtputf8) {
            (Mode::Lmtp, _, false) => "LMTP",
            (Mode::Lmtp, _, true) => "UTF8LMTP",
            (_, _, true) => "UTF8SMTP",
            (_, true, false) => "ESMTP",
            (_, false, false) => "SMTP",
        };
        let protocol = if base == "SMTP" {
            base.to_string()
        } else {
            format!(
                "{base}{}{}",
                if self.conn.is_tls() { "S" } else { "" },
                if self.auth.is_some() { "A" } else { "" }
            )
        };
        let protocol = protocol.as_str();
        let single = match tx.recipients.as_slice() {
            [one] => Some(one.address.as_str()),
            _ => None,
        };
        let info = TraceInfo {
            helo,
            client: &self.client,
            hostname: self.hostname(),
            protocol,
            queue_id: &tx.queue_id,
            single_recipient: single,
            reverse_path: &tx.reverse_path,
            // Return-Path is written at final delivery (RFC 5321 §4.4), not on
            // mail that is submitted and may travel on.
            return_path: self.shared.mode != Mode::Submission,
        };
        BodySink::new(
            trace_headers(&info, time::OffsetDateTime::now_utc()),
            self.max_size(),
        )
    }

    /// Checks that a transaction may send its message now.
    fn ready_for_data(&self) -> Result<(), Reply> {
        match &self.transaction {
            None => Err(Reply::bad_sequence("Need MAIL and RCPT first")),
            // RFC 5321 §3.3 allows 554 or 503; RFC 2033 §4.2 requires 503 for LMTP.
            Some(tx) if tx.recipients.is_empty() && self.shared.mode == Mode::Lmtp => {
                Err(Reply::bad_sequence("No valid recipients"))
            }
            Some(tx) if tx.recipients.is_empty() => {
                Err(Reply::new(554, "5.5.1", "No valid recipients"))
            }
            Some(_) => Ok(()),
        }
    }

    /// DATA (RFC 5321 §4.1.1.4).
    async fn data(&mut self) -> std::io::Result<Flow> {
        if let Err(reply) = self.ready_for_data() {
            self.reply(reply);
            return Ok(Flow::Continue);
        }
        let Some(tx) = self.transaction.take() else {
            return Ok(Flow::Continue);
        };
        if tx.chunks.is_some() {
            self.transaction = Some(tx);
            self.reply(Reply::bad_sequence("DATA is not allowed after BDAT"));
            return Ok(Flow::Continue);
        }
        let mut sink = self.new_sink(&tx);
        self.reply(Reply::plain(
            354,
            vec!["End data with <CR><LF>.<CR><LF>".into()],
        ));
        match self.conn.read_data(&mut sink).await {
            Ok(()) => {}
            Err(error) => return self.data_failed(error, &tx).await,
        }
        self.finish(tx, sink).await;
        Ok(Flow::Continue)
    }

    /// BDAT (RFC 3030). The chunk is always read, even when it will be refused, so the
    /// session stays in step with the client.
    async fn bdat(&mut self, size: usize, last: bool) -> std::io::Result<Flow> {
        let size = size as u64;
        let refusal = self.ready_for_data().err();
        let (mut sink, tx) = match (refusal, self.transaction.take()) {
            (None, Some(mut tx)) => {
                let sink = match tx.chunks.take() {
                    Some(sink) => sink,
                    None => self.new_sink(&tx),
                };
                (sink, Ok(tx))
            }
            (refusal, tx) => {
                self.transaction = tx;
                let reply =
                    refusal.unwrap_or_else(|| Reply::bad_sequence("Need MAIL and RCPT first"));
                (BodySink::new(Vec::new(), 0), Err(reply))
            }
        };
        if let Err(error) = self.conn.read_chunk(size, &mut sink).await {
            let Ok(tx) = tx else {
                return Ok(Flow::Close);
            };
            return self.data_failed(error, &tx).await;
        }
        let mut tx = match tx {
            Ok(tx) => tx,
            Err(reply) => {
                self.reply(reply);
                return Ok(Flow::Continue);
            }
        };
        if sink.overflowed() {
            // The transaction fails now (RFC 3030 §2: the client should RSET); later
            // chunks are read and refused with 503.
            let limit = self.max_size();
            self.reply(Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({limit} octets)"),
            ));
            return Ok(Flow::Continue);
        }
        if last {
            self.finish(tx, sink).await;
        } else {
            tx.chunks = Some(sink);
            self.transaction = Some(tx);
            self.reply(Reply::ok(format!("{size} octets received")));
        }
        Ok(Flow::Continue)
    }

    /// Counts an accepted message and its delivery time.
    fn accepted(&self, started: Instant) {
        let listener = self.shared.mode.name();
        metrics::counter!("mailroom_smtp_messages_accepted_total", "listener" => listener)
            .increment(1);
        metrics::histogram!("mailroom_delivery_duration_seconds", "listener" => listener)
            .record(started.elapsed().as_secs_f64());
    }

    /// End of a submitted message (RFC 6409): the From: addresses must be the
    /// account's, Bcc: goes, Message-ID:/Date: are added when missing; local
    /// recipients get their copies and remote ones a queue entry in one transaction,
    /// and 250 comes only after that commit.
    async fn finish_submission(&mut self, tx: Transaction, sink: BodySink) {
        let size = sink.received();
        if sink.overflowed() {
            let limit = self.max_size();
            info!(queue_id = %tx.queue_id, size, limit, "message too big; nothing delivered");
            self.refused("too_large");
            return self.reply(Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({limit} octets)"),
            ));
        }
        let Some(account) = self.auth.clone() else {
            self.refused("auth_required");
            return self.reply(Reply::new(530, "5.7.0", "Authentication required"));
        };
        let raw = sink.into_message();
        for from in crate::submission::from_addresses(&raw) {
            match self.owns(&account, &from).await {
                Ok(true) => {}
                Ok(false) => {
                    info!(queue_id = %tx.queue_id, account = %account.address, from = %sanitize(&from), "From: is not the account's; nothing delivered");
                    self.refused("sender_not_owned");
                    return self.reply(Reply::new(
                        550,
                        "5.7.1",
                        format!(
                            "From: <{}> is not an address of {}",
                            sanitize(&from),
                            account.address
                        ),
                    ));
                }
                Err(error) => {
                    warn!(%error, "sender lookup failed");
                    return self.reply(Reply::new(
                        451,
                        "4.3.0",
                        "Temporary lookup failure, try again later",
                    ));
                }
            }
        }
        let raw =
            crate::submission::rewrite(&raw, self.hostname(), time::OffsetDateTime::now_utc());
        // DKIM (RFC 6376) once, here, before the store: local copies and every relay
        // attempt carry these very bytes. A failure answers 451 instead of sending the
        // message unsigned: the domain has published keys, so receivers expect its
        // signature, and unsigned mail from it would be junked or refused by DMARC far
        // from the sender's sight. With 451 the client keeps the message, retries and
        // shows the error; the log names the key to fix.
        let raw = match self.shared.signer.sign(&raw).await {
            Ok(signatures) if signatures.is_empty() => raw,
            Ok(mut signed) => {
                signed.extend_from_slice(&raw);
                signed
            }
            Err(error) => {
                warn!(queue_id = %tx.queue_id, account = %account.address, %error, "DKIM signing failed; nothing delivered");
                self.refused("dkim");
                return self.reply(Reply::new(
                    451,
                    "4.3.0",
                    "The message could not be signed (DKIM), try again later",
                ));
            }
        };
        let local: Vec<AccountId> = tx.recipients.iter().filter_map(|r| r.account).collect();
        let remote: Vec<String> = tx
            .recipients
            .iter()
            .filter(|r| r.account.is_none())
            .map(|r| r.address.clone())
            .collect();
        let started = Instant::now();
        let from = format!("<{}>", tx.reverse_path);
        match self
            .shared
            .store
            .submit(raw, &local, &remote, &tx.reverse_path)
            .await
        {
            Ok(done) => {
                let ms = started.elapsed().as_millis() as u64;
                self.accepted(started);
                info!(queue_id = %tx.queue_id, size, %from, account = %account.address, local = local.len(), remote = ?remote, outbound_id = ?done.queue_id, ms, "message submitted");
                self.delivered += 1;
                self.commands = 0;
                self.reply(Reply::ok(format!("OK queued as {}", tx.queue_id)));
            }
            Err(error) => {
                warn!(queue_id = %tx.queue_id, size, %from, %error, "submission failed");
                self.refused(refusal_reason(&error));
                self.reply(delivery_error_reply(&error));
            }
        }
    }

    /// Message data did not arrive whole: nothing is delivered.
    async fn data_failed(&mut self, error: DataError, tx: &Transaction) -> std::io::Result<Flow> {
        match error {
            DataError::Closed => {
                info!(queue_id = %tx.queue_id, "client disconnected during message data; nothing delivered");
            }
            DataError::Timeout if self.shutdown.is_cancelled() => {
                info!(queue_id = %tx.queue_id, "shutdown grace over during message data; nothing delivered");
                let text = format!("{} Service shutting down, try again later", self.hostname());
                self.reply(Reply::new(421, "4.3.2", text));
            }
            DataError::Timeout => {
                info!(queue_id = %tx.queue_id, "timeout during message data; nothing delivered");
                let text = format!(
                    "{} Timeout waiting for message data, closing connection",
                    self.hostname()
                );
                self.reply(Reply::new(421, "4.4.2", text));
            }
            DataError::Io(error) => {
                info!(queue_id = %tx.queue_id, %error, "connection failed during message data; nothing delivered");
            }
        }
        Ok(Flow::Close)
    }

    /// End of the message data: deliver, then answer (SMTP: once; LMTP: per
    /// recipient, RFC 2033 §4.2). 250 is written only after the store committed.
    async fn finish(&mut self, tx: Transaction, sink: BodySink) {
        if self.shared.mode == Mode::Submission {
            return self.finish_submission(tx, sink).await;
        }
        let size = sink.received();
        let replies_for = |reply: Reply, tx: &Transaction, mode: Mode| -> Vec<Reply> {
            match mode {
                Mode::Smtp | Mode::Submission => vec![reply],
                Mode::Lmtp => tx.recipients.iter().map(|_| reply.clone()).collect(),
            }
        };
        let mode = self.shared.mode;
        if sink.overflowed() {
            let limit = self.max_size();
            info!(queue_id = %tx.queue_id, size, limit, "message too big; nothing delivered");
            self.refused("too_large");
            let reply = Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({limit} octets)"),
            );
            for r in replies_for(reply, &tx, mode) {
                self.reply(r);
            }
            return;
        }
        let accounts: Vec<AccountId> = tx.recipients.iter().filter_map(|r| r.account).collect();
        let mut distinct = accounts.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let raw = sink.into_message();
        let started = Instant::now();
        let rcpts: Vec<&str> = tx.recipients.iter().map(|r| r.address.as_str()).collect();
        let from = format!("<{}>", tx.reverse_path);
        let envelope = Envelope {
            via: if mode == Mode::Lmtp {
                Via::Lmtp
            } else {
                Via::Mx
            },
            client_ip: self.peer.ip(),
            helo: self
                .greeting
                .as_ref()
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            mail_from: tx.reverse_path.clone(),
            recipients: tx.recipients.iter().map(|r| r.address.clone()).collect(),
            authenticated: self.auth.as_ref().map(|a| a.address.clone()),
            queue_id: tx.queue_id.clone(),
        };
        let (raw, folder) = match self.shared.inbound.check(&raw, &envelope).await {
            Verdict::Deliver {
                prepend,
                drop,
                folder,
            } => (Verdict::rewrite(prepend, &raw, &drop), folder),
            Verdict::Refuse(refusal) => {
                info!(queue_id = %tx.queue_id, size, %from, rcpts = ?rcpts, code = refusal.code, reason = %refusal.text, "message refused by the inbound checks; nothing delivered");
                self.refused("policy");
                let reply = Reply::new(refusal.code, refusal.status, refusal.text);
                for r in replies_for(reply, &tx, mode) {
                    self.reply(r);
                }
                return;
            }
        };
        // LMTP can answer per recipient: keep a copy to deliver account by account when
        // the one-transaction delivery fails because one of them is over quota.
        let retry_copy = (mode == Mode::Lmtp && distinct.len() > 1).then(|| raw.clone());
        let targets: Vec<(AccountId, Folder)> = accounts.iter().map(|&a| (a, folder)).collect();
        let result = self.shared.store.deliver_into(raw, &targets).await;
        let delivered_reply = |address: &str| {
            let text = format!("<{}> delivered as {}", sanitize(address), tx.queue_id);
            Reply::new(250, "2.1.5", text)
        };
        let error = match result {
            Ok(delivered) => {
                let ms = started.elapsed().as_millis() as u64;
                self.accepted(started);
                info!(queue_id = %tx.queue_id, size, %from, rcpts = ?rcpts, copies = delivered.copies.len(), ms, "message accepted");
                self.delivered += 1;
                self.commands = 0;
                match mode {
                    Mode::Smtp | Mode::Submission => {
                        self.reply(Reply::ok(format!("OK queued as {}", tx.queue_id)))
                    }
                    Mode::Lmtp => {
                        for r in &tx.recipients {
                            self.reply(delivered_reply(&r.address));
                        }
                    }
                }
                return;
            }
            Err(error) => error,
        };
        warn!(queue_id = %tx.queue_id, size, %from, rcpts = ?rcpts, %error, "delivery failed");
        self.refused(refusal_reason(&error));
        let Some(copy) = retry_copy.filter(|_| matches!(error, StoreError::OverQuota)) else {
            let reply = delivery_error_reply(&error);
            match mode {
                Mode::Smtp | Mode::Submission => self.reply(reply),
                Mode::Lmtp => tx.recipients.iter().for_each(|_| self.reply(reply.clone())),
            }
            return;
        };
        let mut outcome: HashMap<AccountId, Result<(), Reply>> = HashMap::new();
        for account in distinct {
            let result = self
                .shared
                .store
                .deliver_into(copy.clone(), &[(account, folder)])
                .await;
            outcome.insert(
                account,
                result.map(|_| ()).map_err(|e| delivery_error_reply(&e)),
            );
        }
        let ms = started.elapsed().as_millis() as u64;
        let accepted: Vec<&str> = tx
            .recipients
            .iter()
            .filter(|r| matches!(r.account.and_then(|a| outcome.get(&a)), Some(Ok(()))))
            .map(|r| r.address.as_str())
            .collect();
        info!(queue_id = %tx.queue_id, size, %from, rcpts = ?accepted, ms, "message accepted for some recipients");
        if !accepted.is_empty() {
            self.accepted(started);
            self.delivered += 1;
            self.commands = 0;
        }
        for r in &tx.recipients {
            let reply = match r.account.and_then(|a| outcome.get(&a)) {
                Some(Ok(())) => delivered_reply(&r.address),
                Some(Err(reply)) => reply.clone(),
                None => delivery_error_reply(&error),
            };
            self.reply(reply);
        }
    }
}

/// The `reason` label of a refusal caused by the store.
fn refusal_reason(error: &StoreError) -> &'static str {
    match error {
        StoreError::OverQuota => "over_quota",
        _ => "store_error",
    }
}

/// The reply for a failed delivery: the sender should retry (RFC 5321 §4.2.5).
fn delivery_error_reply(error: &StoreError) -> Reply {
    match error {
        StoreError::OverQuota => Reply::new(452, "4.2.2", "Mailbox full, try again later"),
        _ => Reply::new(
            451,
            "4.3.0",
            "Temporary failure storing the message, try again later",
        ),
    }
}

/// Text from the client made safe to echo in a reply line.
fn sanitize(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(256).collect()
}
