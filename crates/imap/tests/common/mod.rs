//! A temporary store, an IMAP server on 127.0.0.1:0 and a raw IMAP client.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_config::Config;
use mailroom_imap::ImapServer;
use mailroom_store::{Account, Store, StoreOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const USER: &str = "joe@example.org";
pub const PASS: &str = "secret pass";

pub struct TestServer {
    pub store: Store,
    pub account: Account,
    pub addr: SocketAddr,
    /// The implicit-TLS listener and the certificate to trust (`start_tls`).
    pub tls_addr: Option<SocketAddr>,
    pub cert: Option<std::path::PathBuf>,
    pub tls: Option<mailroom_auth::TlsManager>,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
    start_full(configure, false).await
}

/// A server with a generated certificate: STARTTLS on `addr`, implicit TLS on `tls_addr`.
pub async fn start_tls(configure: impl FnOnce(&mut Config)) -> TestServer {
    start_full(configure, true).await
}

async fn start_full(configure: impl FnOnce(&mut Config), tls: bool) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path());
    options.synchronous = mailroom_store::Synchronous::Normal;
    let store = Store::open(&options).await.unwrap();
    store.add_domain("example.org").await.unwrap();
    let account = store.create_account(USER, PASS).await.unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.imap.idle_keepalive = Duration::from_secs(1);
    // Tests fail logins on purpose; keep the throttle quick and out of the way.
    config.auth.failure_delay = Duration::from_millis(1);
    config.auth.max_failures = 1000;
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let config = Arc::new(config);
    let (mut tls_addr, mut cert, mut tls_manager) = (None, None, None);
    let handle = if tls {
        mailroom_auth::install_crypto_provider();
        let manager = mailroom_auth::TlsManager::from_config(&config).unwrap();
        cert = Some(manager.cert_path().to_path_buf());
        tls_manager = Some(manager.clone());
        let throttle = Arc::new(mailroom_auth::LoginThrottle::new(&config.auth));
        let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tls_addr = Some(tls_listener.local_addr().unwrap());
        let implicit = ImapServer::new(store.clone(), Arc::clone(&config))
            .with_tls(manager.clone())
            .with_throttle(Arc::clone(&throttle));
        tokio::spawn(implicit.serve_tls(tls_listener, shutdown.clone()));
        let server = ImapServer::new(store.clone(), config)
            .with_tls(manager)
            .with_throttle(throttle);
        tokio::spawn(server.serve(listener, shutdown.clone()))
    } else {
        let server = ImapServer::new(store.clone(), config);
        tokio::spawn(server.serve(listener, shutdown.clone()))
    };
    TestServer {
        store,
        account,
        addr,
        tls_addr,
        cert,
        tls: tls_manager,
        shutdown,
        handle,
        _dir: dir,
    }
}

impl TestServer {
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A client logged in as USER.
    pub async fn login(&self) -> Client {
        let mut c = self.client().await;
        let r = c.cmd("L1 LOGIN joe@example.org \"secret pass\"").await;
        assert!(r.last().unwrap().starts_with("L1 OK"), "{r:?}");
        c
    }

    /// Delivers a test message into INBOX.
    pub async fn deliver(&self, raw: &[u8]) -> u32 {
        let d = self
            .store
            .deliver(raw.to_vec(), &[self.account.id])
            .await
            .unwrap();
        d.copies[0].2
    }
}

pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub greeting: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (r, w) = stream.into_split();
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
            greeting: String::new(),
        };
        c.greeting = c.read_response().await.unwrap_or_default();
        c
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.writer.write_all(data).await.unwrap();
    }

    /// One response, with literals inlined; None at end of stream.
    pub async fn read_response(&mut self) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(10), self.read_response_inner())
            .await
            .expect("timed out waiting for the server")
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    async fn read_response_inner(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line).await.unwrap();
            if n == 0 {
                return if out.is_empty() { None } else { Some(out) };
            }
            out.extend_from_slice(&line);
            let trimmed = line.strip_suffix(b"\r\n").unwrap_or(&line);
            if let Some(inner) = trimmed.strip_suffix(b"}")
                && let Some(open) = inner.iter().rposition(|&b| b == b'{')
                && let Ok(n) = std::str::from_utf8(&inner[open + 1..])
                    .unwrap_or("x")
                    .parse::<usize>()
            {
                let mut lit = vec![0; n];
                self.reader.read_exact(&mut lit).await.unwrap();
                out.extend_from_slice(&lit);
                continue;
            }
            return Some(out);
        }
    }

    /// Sends `line` and collects responses up to and including the tagged one.
    pub async fn cmd(&mut self, line: &str) -> Vec<String> {
        let tag = line.split(' ').next().unwrap().to_string();
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.until_tagged(&tag).await
    }

    pub async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let Some(r) = self.read_response().await else {
                panic!("connection closed before {tag}; got {out:?}");
            };
            let r = r.trim_end().to_string();
            let done = r.starts_with(&format!("{tag} "));
            out.push(r);
            if done {
                return out;
            }
        }
    }

    pub async fn select(&mut self, mailbox: &str) -> Vec<String> {
        let r = self.cmd(&format!("S1 SELECT {mailbox}")).await;
        assert!(r.last().unwrap().starts_with("S1 OK"), "{r:?}");
        r
    }
}
