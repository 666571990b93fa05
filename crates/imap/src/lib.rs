//! mailroom's IMAP server: IMAP4rev1 (RFC 3501) by default, IMAP4rev2 (RFC 9051)
//! after `ENABLE IMAP4rev2`, over the SQLite store.
//!
//! Layout: `proto` is the grammar (types, parser, response encoding, modified
//! UTF-7) and knows nothing of I/O; `connection` frames the byte stream into
//! commands within the configured limits; `session` holds the per-connection
//! state machine and one module per group of commands; `selected` is the
//! selected-mailbox view that maps sequence numbers to UIDs and decides when
//! changes made elsewhere may be reported (RFC 9051 §7.5.1).
//!
//! Advertised (and tested in `tests/`): IMAP4rev1, IMAP4rev2, LITERAL+, SASL-IR
//! (AUTH=PLAIN, AUTH=LOGIN, or LOGINDISABLED when plaintext is not allowed), ID,
//! ENABLE, IDLE, NAMESPACE, UNSELECT, UIDPLUS, MOVE, CHILDREN, LIST-EXTENDED,
//! LIST-STATUS, SPECIAL-USE, CREATE-SPECIAL-USE, ESEARCH, SEARCHRES, BINARY,
//! MULTIAPPEND, UTF8=ACCEPT, STATUS=SIZE, CONDSTORE (MODSEQ, CHANGEDSINCE,
//! UNCHANGEDSINCE, SEARCH MODSEQ, HIGHESTMODSEQ). Not implemented, hence not
//! advertised and answered BAD: QRESYNC, STARTTLS (no TLS yet), CATENATE, ACL,
//! QUOTA, SORT/THREAD.
//!
//! Where the RFCs leave room the answers follow Dovecot (flag order, implicit
//! FLAGS first in FETCH, `[CLOSED]`, read-only STORE/EXPUNGE answered OK, empty
//! string for a missing section); `tests/interop/imap/compare_dovecot.py` shows
//! the remaining differences.

mod connection;
pub mod proto;
mod selected;
mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailroom_config::Config;
use mailroom_store::Store;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// The IMAP service: accepts connections and runs one session task per connection.
pub struct ImapServer {
    store: Store,
    config: Arc<Config>,
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

impl ImapServer {
    pub fn new(store: Store, config: Arc<Config>) -> Self {
        ImapServer { store, config }
    }

    /// Serves connections on `listener` until `shutdown` is cancelled, then tells
    /// open sessions `* BYE` and returns when they have ended.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let limits = &self.config.limits;
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let per_ip = Arc::new(PerIp::default());
        let max_per_ip = limits.max_connections_per_ip.max(1);
        let tracker = TaskTracker::new();
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
            let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                tracing::warn!(%peer, "refusing IMAP connection: max_connections reached");
                tracker.spawn(refuse(stream));
                continue;
            };
            let Some(slot) = per_ip.acquire(peer.ip(), max_per_ip) else {
                tracing::warn!(%peer, "refusing IMAP connection: max_connections_per_ip reached");
                tracker.spawn(refuse(stream));
                continue;
            };
            let id = SESSION_IDS.fetch_add(1, Ordering::Relaxed);
            let span =
                tracing::info_span!("imap", %peer, session = id, user = tracing::field::Empty);
            let store = self.store.clone();
            let config = Arc::clone(&self.config);
            let shutdown = shutdown.clone();
            tracker.spawn(
                async move {
                    let _permit = permit;
                    let _slot = slot;
                    run_connection(stream, peer, store, config, shutdown).await;
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

async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(b"* BYE Too many connections\r\n").await;
    let _ = stream.shutdown().await;
}

async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    store: Store,
    config: Arc<Config>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    tracing::debug!(%peer, "IMAP connection opened");
    let (reader, writer) = stream.into_split();
    match session::Session::new(reader, writer, store, config, shutdown)
        .run()
        .await
    {
        Ok(()) => tracing::debug!("IMAP connection closed"),
        Err(e) => tracing::debug!(error = %e, "IMAP connection ended with an I/O error"),
    }
}
