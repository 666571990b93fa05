//! mailroom's IMAP server: IMAP4rev1 (RFC 3501) by default, IMAP4rev2 (RFC 9051)
//! after `ENABLE IMAP4rev2`, over the SQLite store.
//!
//! Layout: `proto` is the grammar and knows nothing of I/O: the command table
//! (`commands`), the parser (`parse/`, one file per command group), command
//! types, responses as values (`response`: tagged answers and codes;
//! `untagged`: untagged and FETCH responses) and their one encoder, modified
//! UTF-7. Nothing outside `proto` writes protocol text. `connection` frames the
//! byte stream into commands within the configured limits; `session` holds the
//! per-connection state (`State`: the account and the selected mailbox live
//! inside the state that has them) and one module per group of commands;
//! `selected` is the selected-mailbox view that maps sequence numbers to UIDs
//! and decides when changes made elsewhere may be reported (RFC 9051 §7.5.1).
//!
//! Advertised (and tested in `tests/`): IMAP4rev1, IMAP4rev2, LITERAL+, SASL-IR,
//! STARTTLS (plain listener with a certificate, RFC 9051 §6.2.1), AUTH=SCRAM-SHA-256
//! always (it never reveals the password), AUTH=PLAIN and AUTH=LOGIN over TLS or when
//! plaintext is allowed, LOGINDISABLED otherwise, ID,
//! ENABLE, IDLE, NAMESPACE, UNSELECT, UIDPLUS, MOVE, CHILDREN, LIST-EXTENDED,
//! LIST-STATUS, SPECIAL-USE, CREATE-SPECIAL-USE, ESEARCH, SEARCHRES, BINARY,
//! MULTIAPPEND, UTF8=ACCEPT, STATUS=SIZE, CONDSTORE (MODSEQ, CHANGEDSINCE,
//! UNCHANGEDSINCE, SEARCH MODSEQ, HIGHESTMODSEQ), QRESYNC (VANISHED, SELECT
//! QRESYNC), ACL with RIGHTS=texk and the shared namespace, SORT, SORT=DISPLAY,
//! ESORT, THREAD=ORDEREDSUBJECT, THREAD=REFERENCES (algorithms in [`sorting`] and [`threading`]),
//! QUOTA and QUOTA=RES-STORAGE. Not implemented, hence not advertised and answered
//! BAD: CATENATE.
//!
//! Security: [`ImapServer::serve`] is plain IMAP with STARTTLS when
//! [`ImapServer::with_tls`] gave it a certificate, [`ImapServer::serve_tls`] is
//! implicit TLS (imaps, RFC 8314). SASL is mailroom-auth's, shared with SMTP, and so
//! is the login throttle ([`ImapServer::with_throttle`]): a failure is answered after
//! a growing delay, a locked-out account or address gets `NO [UNAVAILABLE]` at once.
//! In test mode an unknown user's LOGIN (or AUTHENTICATE PLAIN/LOGIN) creates it.
//!
//! Metrics (names as documented in mailroom-web): `mailroom_connections_total` and
//! `mailroom_connections_active` with `protocol` = `imap` or `imaps`, and
//! `mailroom_imap_commands_total` with `command` and `result` (`ok`, `no`, `bad`).
//!
//! Where the RFCs leave room the answers follow Dovecot (flag order, implicit
//! FLAGS first in FETCH, `[CLOSED]`, read-only STORE/EXPUNGE answered OK, empty
//! string for a missing section); `tests/interop/imap/compare_dovecot.py` shows
//! the remaining differences.

mod connection;
pub mod proto;
mod selected;
mod session;
pub mod sorting;
pub mod threading;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailroom_auth::{LoginThrottle, TlsManager};
use mailroom_config::Config;
use mailroom_store::Store;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::proto::untagged::Untagged;

/// The IMAP service: accepts connections and runs one session task per connection.
pub struct ImapServer {
    store: Store,
    config: Arc<Config>,
    tls: Option<TlsManager>,
    throttle: Arc<LoginThrottle>,
}

/// Connections currently open per client address (for `max_connections_per_ip`).
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// Releases a per-IP slot when the session ends.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

/// How long `serve` waits for sessions to end after shutdown was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// Plain IMAP, with STARTTLS when a certificate is configured.
    Plain,
    /// Implicit TLS (imaps, RFC 8314).
    Tls,
}

impl Transport {
    fn protocol(self) -> &'static str {
        match self {
            Transport::Plain => "imap",
            Transport::Tls => "imaps",
        }
    }
}

/// What every session of one server shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub store: Store,
    pub config: Arc<Config>,
    pub throttle: Arc<LoginThrottle>,
    tls: Option<TlsManager>,
}

impl ImapServer {
    pub fn new(store: Store, config: Arc<Config>) -> Self {
        let throttle = Arc::new(LoginThrottle::new(&config.auth));
        ImapServer {
            store,
            config,
            tls: None,
            throttle,
        }
    }

    /// Enables STARTTLS on [`serve`](Self::serve) and makes [`serve_tls`](Self::serve_tls) possible.
    pub fn with_tls(mut self, tls: TlsManager) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Uses `throttle` for failed logins (shared with SMTP so a guesser cannot
    /// switch protocols); by default the server has its own from `[auth]`.
    pub fn with_throttle(mut self, throttle: Arc<LoginThrottle>) -> Self {
        self.throttle = throttle;
        self
    }

    /// Serves plain IMAP on `listener` (with STARTTLS when [`with_tls`](Self::with_tls)
    /// was given a certificate) until `shutdown` is cancelled, then tells open
    /// sessions `* BYE` and returns when they have ended.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        self.serve_transport(listener, shutdown, Transport::Plain)
            .await
    }

    /// Serves IMAP over implicit TLS (imaps, RFC 8314 §3.2) on `listener`; needs
    /// [`with_tls`](Self::with_tls).
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        if self.tls.is_none() {
            return Err(std::io::Error::other(
                "IMAP over implicit TLS needs a certificate (ImapServer::with_tls)",
            ));
        }
        self.serve_transport(listener, shutdown, Transport::Tls)
            .await
    }

    async fn serve_transport(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
        transport: Transport,
    ) -> std::io::Result<()> {
        let limits = &self.config.limits;
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let per_ip = Arc::new(PerIp::default());
        let max_per_ip = limits.max_connections_per_ip.max(1);
        let tracker = TaskTracker::new();
        let shared = Shared {
            store: self.store.clone(),
            config: Arc::clone(&self.config),
            throttle: Arc::clone(&self.throttle),
            tls: self.tls.clone(),
        };
        let protocol = transport.protocol();
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "IMAP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            metrics::counter!("mailroom_connections_total", "protocol" => protocol).increment(1);
            let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                tracing::warn!(%peer, "refusing IMAP connection: max_connections reached");
                tracker.spawn(refuse(stream, transport, shared.tls.clone()));
                continue;
            };
            let Some(slot) = per_ip.acquire(peer.ip(), max_per_ip) else {
                tracing::warn!(%peer, "refusing IMAP connection: max_connections_per_ip reached");
                tracker.spawn(refuse(stream, transport, shared.tls.clone()));
                continue;
            };
            let id = SESSION_IDS.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!(
                "imap",
                %peer,
                session = id,
                tls = transport == Transport::Tls,
                user = tracing::field::Empty
            );
            let shared = shared.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(
                async move {
                    let _permit = permit;
                    let _slot = slot;
                    let _active = ActiveConnection::new(protocol);
                    run_connection(stream, peer, shared, transport, shutdown).await;
                }
                .instrument(span),
            );
        }
        tracker.close();
        // Sessions answer the cancellation with BYE at their next read; one blocked
        // writing to a client that stopped reading must not hold the shutdown forever.
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                sessions = tracker.len(),
                "IMAP sessions still open after the shutdown grace period"
            );
        }
        Ok(())
    }
}

/// Counts one open connection in `mailroom_connections_active` while it lives.
struct ActiveConnection(&'static str);

impl ActiveConnection {
    fn new(protocol: &'static str) -> Self {
        metrics::gauge!("mailroom_connections_active", "protocol" => protocol).increment(1.0);
        ActiveConnection(protocol)
    }
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        metrics::gauge!("mailroom_connections_active", "protocol" => self.0).decrement(1.0);
    }
}

async fn refuse(mut stream: TcpStream, transport: Transport, tls: Option<TlsManager>) {
    let mut bye = Vec::new();
    Untagged::Bye("Too many connections".into()).encode(&mut bye);

    match (transport, tls) {
        (Transport::Tls, Some(tls)) => {
            if let Ok(Ok(mut stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await
            {
                let _ = stream.write_all(&bye).await;
                let _ = stream.shutdown().await;
            }
        }
        _ => {
            let _ = stream.write_all(&bye).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// The TLS handshake, bounded in time and by shutdown.
async fn handshake(
    stream: TcpStream,
    tls: &TlsManager,
    shutdown: &CancellationToken,
) -> Option<TlsStream<TcpStream>> {
    let accept = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream));
    tokio::select! {
        _ = shutdown.cancelled() => None,
        r = accept => match r {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::info!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::info!("TLS handshake timed out");
                None
            }
        },
    }
}

async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Shared,
    transport: Transport,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    tracing::debug!(%peer, "IMAP connection opened");
    let tls = shared.tls.clone();
    let result = match (transport, tls) {
        (Transport::Tls, Some(tls)) => {
            let Some(stream) = handshake(stream, &tls, &shutdown).await else {
                return;
            };
            run_tls_session(stream, peer, shared, shutdown, true).await
        }
        (_, tls) => {
            let (reader, writer) = stream.into_split();
            let security = session::Security {
                peer: peer.ip(),
                tls: false,
                starttls: tls.is_some(),
                greet: true,
            };
            match session::Session::new(reader, writer, shared.clone(), security, shutdown.clone())
                .run()
                .await
            {
                Ok(Some((reader, writer))) => match (reader.reunite(writer), tls) {
                    (Ok(stream), Some(tls)) => {
                        // The session and its input buffer are gone: whatever the
                        // client pipelined after STARTTLS is never executed
                        // (RFC 9051 §6.2.1).
                        let Some(stream) = handshake(stream, &tls, &shutdown).await else {
                            return;
                        };
                        tracing::debug!("STARTTLS completed");
                        run_tls_session(stream, peer, shared, shutdown, false).await
                    }
                    _ => Ok(()),
                },
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => tracing::debug!("IMAP connection closed"),
        Err(e) => tracing::debug!(error = %e, "IMAP connection ended with an I/O error"),
    }
}

async fn run_tls_session(
    stream: TlsStream<TcpStream>,
    peer: SocketAddr,
    shared: Shared,
    shutdown: CancellationToken,
    greet: bool,
) -> std::io::Result<()> {
    let (reader, writer) = tokio::io::split(stream);
    let security = session::Security {
        peer: peer.ip(),
        tls: true,
        starttls: false,
        greet,
    };
    session::Session::new(reader, writer, shared, security, shutdown)
        .run()
        .await
        .map(|_| ())
}
