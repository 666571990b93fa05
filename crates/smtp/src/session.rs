//! One SMTP or LMTP session: the state machine of RFC 5321 §4.1.4 over a
//! [`Connection`].
//!
//! States: not greeted -> greeted (EHLO/HELO/LHLO) -> in a transaction (MAIL) with
//! recipients (RCPT) -> message data (DATA or BDAT chunks) -> delivered, back to
//! greeted. A command out of this order gets `503 5.5.1`; nothing is delivered unless
//! the data ended properly and the store committed it.
//!
//! Submission (a later issue) adds an authenticated client; the only decision that
//! depends on it is [`Session::may_relay`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mailroom_store::{AccountId, Recipient, StoreError};
use smtp_proto::{MAIL_BODY_BINARYMIME, MAIL_SMTPUTF8, MailFrom, RcptTo, Request};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::body::BodySink;
use crate::connection::{Connection, DataError, Input};
use crate::reply::Reply;
use crate::trace::{TraceInfo, trace_headers};
use crate::{Mode, Shared, address_literal};

/// Runs a session to its end; errors are the client's problem and only logged.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,

    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let idle = shared.config.limits.smtp_idle_timeout;
    let mut session = Session {
        conn: Connection::new(stream, idle, shutdown.clone()),
        client: address_literal(peer),
        shared,
        shutdown,
        greeting: None,
        transaction: None,
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
    queue_id: String,
    /// Accepted recipients in RCPT order. In SMTP mode an address given twice is
    /// kept once; in LMTP mode each accepted RCPT gets its own reply after the data.
    recipients: Vec<Accepted>,
    /// The message received so far by BDAT chunks.
    chunks: Option<BodySink>,
}

struct Accepted {
    address: String,
    account: AccountId,
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

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn hostname(&self) -> &str {
        &self.shared.config.hostname
    }

    fn max_size(&self) -> u64 {
        self.shared.config.limits.max_message_size.0
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
            Mode::Smtp => "ESMTP",
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
            Request::Lhlo { .. } if mode == Mode::Smtp => {
                self.reply(Reply::new(500, "5.5.1", "Command not recognized"));
            }
            Request::Ehlo { host } | Request::Lhlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from),
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
            Reply::plain(
                250,
                vec![
                    first,
                    format!("SIZE {}", self.max_size()),
                    "8BITMIME".into(),
                    "PIPELINING".into(),
                    "ENHANCEDSTATUSCODES".into(),
                    "SMTPUTF8".into(),
                    "CHUNKING".into(),
                ],
            )
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
    fn mail(&mut self, from: MailFrom<String>) {
        if self.greeting.is_none() {
            return self.reply(Reply::bad_sequence("Send EHLO or HELO first"));
        }
        if self.transaction.is_some() {
            return self.reply(Reply::bad_sequence("Nested MAIL command: send RSET first"));
        }
        let limit = self.max_size();
        if from.size as u64 > limit {
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
            queue_id: format!("{:016X}", rand::random::<u64>()),
            recipients: Vec::new(),
            chunks: None,
        });
        self.reply(reply);
    }

    /// Whether mail for other domains may be accepted: only from an authenticated
    /// client, which the MX never has (no open relay). Submission will change this.
    fn may_relay(&self) -> bool {
        false
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
        match self
            .shared
            .store
            .resolve_recipient(&address, self.shared.policy)
            .await
        {
            Ok(Recipient::Local(account)) => {
                let mode = self.shared.mode;
                if let Some(tx) = &mut self.transaction {
                    let duplicate = tx
                        .recipients
                        .iter()
                        .any(|r| r.address.eq_ignore_ascii_case(&address));
                    if mode == Mode::Lmtp || !duplicate {
                        tx.recipients.push(Accepted {
                            address,
                            account: account.id,
                        });
                    }
                }
                self.reply(Reply::new(250, "2.1.5", format!("Recipient <{shown}> OK")));
            }
            Ok(Recipient::UnknownLocal) => self.reply(Reply::new(
                550,
                "5.1.1",
                format!("<{shown}>: no such user here"),
            )),
            Ok(Recipient::Remote) if self.may_relay() => self.reply(Reply::new(
                550,
                "5.7.1",
                format!("<{shown}>: relaying is not implemented yet"),
            )),
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
                    self.reply(Reply::new(
                        550,
                        "5.1.1",
                        format!("<{shown}>: no such user here"),
                    ))
                } else {
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

    /// The buffer a message is received into, starting with the trace headers.
    fn new_sink(&self, tx: &Transaction) -> BodySink {
        let helo = self
            .greeting
            .as_ref()
            .map(|g| g.name.as_str())
            .unwrap_or("unknown");
        let extended = self.greeting.as_ref().is_some_and(|g| g.extended);
        let protocol = match (self.shared.mode, extended, tx.smtputf8) {
            (Mode::Lmtp, _, false) => "LMTP",
            (Mode::Lmtp, _, true) => "UTF8LMTP",
            (Mode::Smtp, _, true) => "UTF8SMTP",
            (Mode::Smtp, true, false) => "ESMTP",
            (Mode::Smtp, false, false) => "SMTP",
        };
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
        let size = sink.received();
        let replies_for = |reply: Reply, tx: &Transaction, mode: Mode| -> Vec<Reply> {
            match mode {
                Mode::Smtp => vec![reply],
                Mode::Lmtp => tx.recipients.iter().map(|_| reply.clone()).collect(),
            }
        };
        let mode = self.shared.mode;
        if sink.overflowed() {
            let limit = self.max_size();
            info!(queue_id = %tx.queue_id, size, limit, "message too big; nothing delivered");
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
        let accounts: Vec<AccountId> = tx.recipients.iter().map(|r| r.account).collect();
        let mut distinct = accounts.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let raw = sink.into_message();
        // LMTP can answer per recipient: keep a copy to deliver account by account when
        // the one-transaction delivery fails because one of them is over quota.
        let retry_copy = (mode == Mode::Lmtp && distinct.len() > 1).then(|| raw.clone());
        let started = Instant::now();
        let result = self.shared.store.deliver(raw, &accounts).await;
        let rcpts: Vec<&str> = tx.recipients.iter().map(|r| r.address.as_str()).collect();
        let from = format!("<{}>", tx.reverse_path);
        let delivered_reply = |address: &str| {
            let text = format!("<{}> delivered as {}", sanitize(address), tx.queue_id);
            Reply::new(250, "2.1.5", text)
        };
        let error = match result {
            Ok(delivered) => {
                let ms = started.elapsed().as_millis() as u64;
                info!(queue_id = %tx.queue_id, size, %from, rcpts = ?rcpts, copies = delivered.copies.len(), ms, "message accepted");
                self.delivered += 1;
                self.commands = 0;
                match mode {
                    Mode::Smtp => self.reply(Reply::ok(format!("OK queued as {}", tx.queue_id))),
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
        let Some(copy) = retry_copy.filter(|_| matches!(error, StoreError::OverQuota)) else {
            let reply = delivery_error_reply(&error);
            match mode {
                Mode::Smtp => self.reply(reply),
                Mode::Lmtp => tx.recipients.iter().for_each(|_| self.reply(reply.clone())),
            }
            return;
        };
        let mut outcome: HashMap<AccountId, Result<(), Reply>> = HashMap::new();
        for account in distinct {
            let result = self.shared.store.deliver(copy.clone(), &[account]).await;
            outcome.insert(
                account,
                result.map(|_| ()).map_err(|e| delivery_error_reply(&e)),
            );
        }
        let ms = started.elapsed().as_millis() as u64;
        let accepted: Vec<&str> = tx
            .recipients
            .iter()
            .filter(|r| matches!(outcome.get(&r.account), Some(Ok(()))))
            .map(|r| r.address.as_str())
            .collect();
        info!(queue_id = %tx.queue_id, size, %from, rcpts = ?accepted, ms, "message accepted for some recipients");
        if !accepted.is_empty() {
            self.delivered += 1;
            self.commands = 0;
        }
        for r in &tx.recipients {
            let reply = match outcome.get(&r.account) {
                Some(Ok(())) => delivered_reply(&r.address),
                Some(Err(reply)) => reply.clone(),
                None => delivery_error_reply(&error),
            };
            self.reply(reply);
        }
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
