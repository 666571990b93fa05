//! mailroom's SMTP receiver: the inbound MX (RFC 5321) and LMTP (RFC 2033) for local
//! delivery behind another MTA, both delivering into the store.
//!
//! The pieces, in the mini-redis manner:
//! - [`connection`] frames bytes: bounded command lines, dot-stuffed DATA, BDAT chunks,
//!   and buffered replies (flushed only when the client's pipelined input runs out).
//! - `smtp-proto` (the sans-I/O parser Stalwart runs) turns one line into a request.
//! - [`session`] is the state machine of one connection: greeting, transaction,
//!   recipient checks against the store, delivery at end of data.
//! - this module accepts connections, enforces the connection limits and drains the
//!   sessions on shutdown.
//!
//! Nothing is acknowledged that is not on disk: the 250 after DATA is written only
//! after [`mailroom_store::Store::deliver`] returned Ok, i.e. after the commit.

mod body;
mod connection;
mod dsn;
pub mod mta_sts;
mod mx;
mod relay;
mod reply;
mod session;
mod stream;
mod submission;
mod trace;

pub use mx::{Lookup, LookupError, MxResolver, StaticResolver, SystemResolver};
pub use relay::RelayWorker;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailroom_auth::{LoginThrottle, TlsManager};
use mailroom_config::Config;
use mailroom_delivery::Inbound;
use mailroom_delivery::sign::DkimSigner;
use mailroom_store::{AddressPolicy, Store};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

/// Which protocol a listener speaks. Both share the session code; they differ in the
/// greeting command (EHLO/HELO vs LHLO) and in the replies after the message data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inbound MX (RFC 5321): one reply for the whole message.
    Smtp,
    /// LMTP (RFC 2033): a reply per accepted recipient after the message data.
    Lmtp,
    /// Message submission (RFC 6409) on 587 (STARTTLS) and, with
    /// [`SmtpServer::serve_tls`], 465 (RFC 8314): AUTH required before MAIL, the
    /// sender must be the account's, remote recipients are queued for the relay.
    Submission,
}

impl Mode {
    /// The listener's name in logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Smtp => "smtp",
            Mode::Lmtp => "lmtp",
            Mode::Submission => "submission",
        }
    }
}

/// An SMTP, LMTP or submission service over the store; [`SmtpServer::serve`] runs
/// it on a listener.
pub struct SmtpServer {
    shared: Shared,
}

/// What every session of one listener shares.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) config: Arc<Config>,
    pub(crate) mode: Mode,
    pub(crate) policy: AddressPolicy,
    /// The certificate for STARTTLS and implicit TLS, when TLS is configured.
    pub(crate) tls: Option<TlsManager>,
    /// Failed-login bookkeeping, shared with the other listeners.
    pub(crate) throttle: Arc<LoginThrottle>,
    /// The checks between a received message and the store (MX and LMTP).
    pub(crate) inbound: Inbound,
    /// DKIM signing of submitted mail.
    pub(crate) signer: DkimSigner,
    /// Open sessions per client address, for `limits.max_connections_per_ip`.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl SmtpServer {
    pub fn new(store: Store, config: Arc<Config>, mode: Mode) -> Self {
        let policy = AddressPolicy {
            sub_addressing: config.smtp.sub_addressing,
            case_sensitive_local_part: config.smtp.case_sensitive_local_part,
        };
        let throttle = Arc::new(LoginThrottle::new(&config.auth));
        // `serve` builds one pipeline for MX and LMTP and fails on a bad `[dns]`
        // (`with_inbound`); a server built alone checks without, rather than not run.
        let inbound = Inbound::new(config.clone()).unwrap_or_else(|error| {
            warn!(%error, "incoming mail is not checked for its sender's authenticity");
            Inbound::without_sender_checks(config.clone())
        });
        let signer = DkimSigner::new(store.clone());
        SmtpServer {
            shared: Shared {
                signer,
                store,
                config,
                mode,
                policy,
                tls: None,
                throttle,
                inbound,
                per_ip: Mutex::new(HashMap::new()),
            },
        }
    }

    /// Offers STARTTLS (RFC 3207) on the SMTP and submission listeners, and is the
    /// certificate of [`SmtpServer::serve_tls`]. LMTP never offers it.
    pub fn with_tls(mut self, tls: TlsManager) -> Self {
        self.shared.tls = Some(tls);
        self
    }

    /// Shares one inbound pipeline (its resolver cache, its spam engine client)
    /// between the MX and LMTP listeners.
    pub fn with_inbound(mut self, inbound: Inbound) -> Self {
        self.shared.inbound = inbound;
        self
    }

    /// Shares the failed-login bookkeeping with the other listeners (IMAP...).
    pub fn with_throttle(mut self, throttle: Arc<LoginThrottle>) -> Self {
        self.shared.throttle = throttle;
        self
    }

    /// Serves with implicit TLS (RFC 8314, port 465): the handshake comes first.
    /// Needs [`SmtpServer::with_tls`].
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        if self.shared.tls.is_none() {
            return Err(std::io::Error::other(
                "implicit TLS needs a certificate: call with_tls first",
            ));
        }
        self.run(listener, shutdown, true).await
    }

    /// Serves until `shutdown` is cancelled; in-flight DATA finishes, idle sessions get
    /// 421; returns when all sessions ended.
    ///
    /// A client over the connection limits gets `421 4.7.0` at once and is
    /// disconnected: it never waits silently in a queue (RFC 5321 §3.8).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        self.run(listener, shutdown, false).await
    }

    async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
        implicit_tls: bool,
    ) -> std::io::Result<()> {
        let shared = Arc::new(self.shared);
        let limits = &shared.config.limits;
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let tracker = TaskTracker::new();
        let local = listener.local_addr()?;
        info!(protocol = shared.mode.name(), %local, implicit_tls, "listening");
        if shared.mode == Mode::Submission
            && shared.tls.is_none()
            && !shared.config.plaintext_auth_allowed()
        {
            warn!(%local, "submission without TLS and with plaintext passwords refused: no client can authenticate (configure [tls] or [auth] allow_plaintext)");
        }
        let mut next_session: u64 = 0;
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning; sessions that
                    // end free descriptors.
                    warn!(protocol = shared.mode.name(), %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            next_session += 1;
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                info!(protocol = shared.mode.name(), %peer, reason = "max_connections", "connection refused");
                refuse(
                    stream,
                    &shared.config.hostname,
                    "Too many connections, try again later",
                );
                continue;
            };
            let Some(ip_slot) = IpSlot::take(&shared, peer.ip()) else {
                info!(protocol = shared.mode.name(), %peer, reason = "max_connections_per_ip", "connection refused");
                refuse(
                    stream,
                    &shared.config.hostname,
                    "Too many connections from your address, try again later",
                );
                continue;
            };
            let span = info_span!("session", protocol = shared.mode.name(), %peer, id = next_session, account = tracing::field::Empty);
            let shared = shared.clone();
            let shutdown = shutdown.clone();
            let protocol = shared.mode.name();
            metrics::counter!("mailroom_connections_total", "protocol" => protocol).increment(1);
            metrics::gauge!("mailroom_connections_active", "protocol" => protocol).increment(1.0);
            tracker.spawn(
                async move {
                    session::run(stream, peer, shared, shutdown, implicit_tls).await;
                    metrics::gauge!("mailroom_connections_active", "protocol" => protocol)
                        .decrement(1.0);
                    drop(ip_slot);
                    drop(permit);
                }
                .instrument(span),
            );
        }
        tracker.close();
        info!(
            protocol = shared.mode.name(),
            sessions = tracker.len(),
            "draining sessions"
        );
        tracker.wait().await;
        info!(protocol = shared.mode.name(), %local, "stopped");
        Ok(())
    }
}

/// Answers `421 4.7.0` on a connection over the limits and closes it. The write
/// cannot block: a freshly accepted socket has an empty send buffer.
fn refuse(stream: TcpStream, hostname: &str, why: &str) {
    let line = format!("421 4.7.0 {hostname} {why}\r\n");
    let _ = stream.try_write(line.as_bytes());
    drop(stream);
}

/// One counted session from a client address; the count drops with it.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl IpSlot {
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Option<IpSlot> {
        let mut map = shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry(ip).or_insert(0);
        if *count >= shared.config.limits.max_connections_per_ip.max(1) {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            shared: shared.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The address as a Received: header writes it (RFC 5321 §4.1.3 address literal).
pub(crate) fn address_literal(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("[{ip}]"),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{ip}]"),
        },
    }
}
