//! Harness for the TLS, AUTH and submission tests: a store with alice and bob at
//! example.org (info@ is alice's alias), an SMTP/submission server on 127.0.0.1:0
//! with the generated self-signed certificate, and a client that can switch to TLS
//! (rustls, trusting exactly that certificate).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mailroom_auth::{LoginThrottle, TlsManager};
use mailroom_config::{ByteSize, Config};
use mailroom_smtp::{Mode, SmtpServer};
use mailroom_store::{Account, Store, StoreOptions, Synchronous};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Harness {
    pub store: Store,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<std::io::Result<()>>,
    pub alice: Account,
    pub bob: Account,
    pub config: Arc<Config>,
    pub tls: TlsManager,
    pub dir: tempfile::TempDir,
}

pub fn config_in(dir: &std::path::Path) -> Config {
    let mut config = Config {
        hostname: "mx.example.org".into(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.limits.max_message_size = ByteSize(64 * 1024);
    config.limits.max_line_length = ByteSize(1000);
    config.auth.failure_delay = Duration::from_millis(10);
    config.auth.allow_plaintext = Some(false);
    config
}

pub async fn store_in(dir: &std::path::Path) -> (Store, Account, Account) {
    let mut options = StoreOptions::new(dir);
    options.synchronous = Synchronous::Normal;
    let store = Store::open(&options).await.unwrap();
    if store.account("alice@example.org").await.unwrap().is_none() {
        store.add_domain("example.org").await.unwrap();
        store
            .create_account("alice@example.org", "pw-alice")
            .await
            .unwrap();
        store
            .create_account("bob@example.org", "pw-bob")
            .await
            .unwrap();
        store
            .add_alias("info@example.org", "alice@example.org")
            .await
            .unwrap();
    }
    let alice = store.account("alice@example.org").await.unwrap().unwrap();
    let bob = store.account("bob@example.org").await.unwrap().unwrap();
    (store, alice, bob)
}

/// Starts `mode` with TLS; `implicit` serves implicit TLS (serve_tls).
pub async fn start(mode: Mode, implicit: bool, tweak: impl FnOnce(&mut Config)) -> Harness {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("mailroom_smtp=debug")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let (store, alice, bob) = store_in(dir.path()).await;
    let mut config = config_in(dir.path());
    tweak(&mut config);
    let config = Arc::new(config);
    let tls = TlsManager::from_config(&config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let throttle = Arc::new(LoginThrottle::new(&config.auth));
    let server = SmtpServer::new(store.clone(), config.clone(), mode)
        .with_tls(tls.clone())
        .with_throttle(throttle);
    let server = if implicit {
        tokio::spawn(server.serve_tls(listener, shutdown.clone()))
    } else {
        tokio::spawn(server.serve(listener, shutdown.clone()))
    };
    Harness {
        store,
        addr,
        shutdown,
        server,
        alice,
        bob,
        config,
        tls,
        dir,
    }
}

impl Harness {
    /// A rustls connector trusting exactly the server's certificate.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        mailroom_auth::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.tls.cert_path()).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// A plain connection, greeting read.
    pub async fn connect(&self) -> Client {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let mut client = Client {
            stream: BufReader::new(Box::pin(tcp)),
        };
        let (code, text) = client.reply().await;
        assert_eq!(code, 220, "{text}");
        client
    }

    /// An implicit-TLS connection, greeting read.
    pub async fn connect_tls(&self) -> Client {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = ServerName::try_from("mx.example.org").unwrap();
        let tls = self.connector().connect(name, tcp).await.unwrap();
        let mut client = Client {
            stream: BufReader::new(Box::pin(tls)),
        };
        let (code, text) = client.reply().await;
        assert_eq!(code, 220, "{text}");
        client
    }

    /// Plain connection, EHLO, STARTTLS, handshake, EHLO again.
    pub async fn connect_starttls(&self) -> Client {
        let mut c = self.connect().await;
        let (code, text) = c.cmd("EHLO client.test").await;
        assert_eq!(code, 250, "{text}");
        assert!(text.contains("STARTTLS"), "{text}");
        let (code, text) = c.cmd("STARTTLS").await;
        assert_eq!(code, 220, "{text}");
        let mut c = c.upgrade(self).await;
        let (code, text) = c.cmd("EHLO client.test").await;
        assert_eq!(code, 250, "{text}");
        assert!(!text.contains("STARTTLS"), "{text}");
        c
    }

    pub async fn inbox(&self, account: &Account) -> Vec<Vec<u8>> {
        let mb = self
            .store
            .mailbox(account.id, "INBOX")
            .await
            .unwrap()
            .unwrap();
        let infos = self.store.fetch_info(mb.id, &[1..=u32::MAX]).await.unwrap();
        let mut out = Vec::new();
        for info in infos {
            out.push(self.store.content_raw(info.content_id).await.unwrap());
        }
        out
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

pub struct Client {
    pub stream: BufReader<Pin<Box<dyn Io>>>,
}

impl Client {
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
        self.stream.get_mut().flush().await.unwrap();
    }

    pub async fn line(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
                .await
                .expect("reply in time")
                .unwrap();
            assert!(n > 0, "connection closed (so far: {text:?})");
            let code: u16 = line[..3].parse().unwrap();
            text.push_str(&line);
            if line.as_bytes()[3] == b' ' {
                return (code, text);
            }
        }
    }

    pub async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.line(line).await;
        self.reply().await
    }

    /// Runs the TLS handshake on this connection (after a 220 to STARTTLS). Bytes
    /// still buffered from the plain connection are a test failure.
    pub async fn upgrade(self, h: &Harness) -> Client {
        assert!(self.stream.buffer().is_empty(), "data after the 220");
        let inner = self.stream.into_inner();
        let name = ServerName::try_from("mx.example.org").unwrap();
        let tls = h.connector().connect(name, inner).await.unwrap();
        Client {
            stream: BufReader::new(Box::pin(tls)),
        }
    }

    /// MAIL, RCPTs, DATA with `body`; the final reply.
    pub async fn send_mail(&mut self, from: &str, to: &[&str], body: &str) -> (u16, String) {
        let (code, text) = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        if code != 250 {
            return (code, text);
        }
        for rcpt in to {
            let (code, text) = self.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            assert_eq!(code, 250, "{text}");
        }
        let (code, text) = self.cmd("DATA").await;
        assert_eq!(code, 354, "{text}");
        self.send(body.as_bytes()).await;
        self.cmd(".").await
    }
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
}
