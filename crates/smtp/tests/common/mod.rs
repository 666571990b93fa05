//! A test harness: a temporary store with a few accounts, an SMTP (or LMTP) server on
//! 127.0.0.1:0, and a raw line-based client.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_config::{ByteSize, Config};
use mailroom_smtp::{Mode, SmtpServer};
use mailroom_store::{Account, Store, StoreOptions, Synchronous};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Harness {
    pub store: Store,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<std::io::Result<()>>,
    pub alice: Account,
    pub bob: Account,
    pub config: Arc<Config>,
    _dir: tempfile::TempDir,
}

pub fn test_config() -> Config {
    let mut config = Config {
        hostname: "mx.example.org".into(),
        ..Config::default()
    };
    config.limits.max_message_size = ByteSize(64 * 1024);
    config.limits.max_line_length = ByteSize(1000);
    // These tests send from loopback with made-up domains: no SPF/DKIM/DMARC
    // lookups (tests/inbound_auth*.rs check those against their own DNS server).
    config.inbound.verify = false;
    config
}

pub async fn start(mode: Mode) -> Harness {
    start_with(mode, |_| {}).await
}

/// Starts a server whose configuration `tweak` may change. Accounts: alice and bob
/// at example.org; `info@example.org` is an alias of alice; `@catchall.test` is the
/// catch-all of bob.
pub async fn start_with(mode: Mode, tweak: impl FnOnce(&mut Config)) -> Harness {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("mailroom_smtp=debug")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path());
    options.synchronous = Synchronous::Normal;
    let store = Store::open(&options).await.unwrap();
    store.add_domain("example.org").await.unwrap();
    store.add_domain("catchall.test").await.unwrap();
    let alice = store
        .create_account("alice@example.org", "pw-alice")
        .await
        .unwrap();
    let bob = store
        .create_account("bob@example.org", "pw-bob")
        .await
        .unwrap();
    store
        .add_alias("info@example.org", "alice@example.org")
        .await
        .unwrap();
    store
        .add_alias("@catchall.test", "bob@example.org")
        .await
        .unwrap();

    let mut config = test_config();
    tweak(&mut config);
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = SmtpServer::new(store.clone(), config.clone(), mode);
    let server = tokio::spawn(server.serve(listener, shutdown.clone()));
    Harness {
        store,
        addr,
        shutdown,
        server,
        alice,
        bob,
        config,
        _dir: dir,
    }
}

impl Harness {
    pub async fn connect(&self) -> Client {
        let mut client = Client::connect(self.addr).await;
        let (code, text) = client.reply().await;
        assert_eq!(code, 220, "{text}");
        client
    }

    /// Connects and greets with EHLO (or LHLO).
    pub async fn greeted(&self, mode: Mode) -> Client {
        let mut client = self.connect().await;
        let hello = if mode == Mode::Lmtp {
            "LHLO client.test"
        } else {
            "EHLO client.test"
        };
        let (code, text) = client.cmd(hello).await;
        assert_eq!(code, 250, "{text}");
        client
    }

    /// The raw messages in an account's INBOX, by UID.
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

    /// Content ids of the messages in an account's INBOX.
    pub async fn inbox_contents(&self, account: &Account) -> Vec<i64> {
        let mb = self
            .store
            .mailbox(account.id, "INBOX")
            .await
            .unwrap()
            .unwrap();
        self.store
            .fetch_info(mb.id, &[1..=u32::MAX])
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.content_id)
            .collect()
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
    pub stream: BufReader<TcpStream>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// Sends a command line (CRLF added).
    pub async fn line(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes()).await;
    }

    /// Reads one (possibly multi-line) reply: its code and all its text lines.
    pub async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
                .await
                .expect("reply in time")
                .unwrap();
            assert!(
                n > 0,
                "connection closed while waiting for a reply (so far: {text:?})"
            );
            assert!(
                line.len() >= 4 && line.ends_with("\r\n"),
                "bad reply line {line:?}"
            );
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

    /// True when the server closed the connection (EOF within the timeout).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read_to_end(&mut rest)).await,
            Ok(Ok(_))
        )
    }

    /// MAIL, RCPTs, DATA, the message with dot-stuffing, and the final reply.
    pub async fn send_mail(&mut self, from: &str, rcpts: &[&str], message: &[u8]) -> (u16, String) {
        let (code, text) = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert_eq!(code, 250, "{text}");
        for rcpt in rcpts {
            let (code, text) = self.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            assert_eq!(code, 250, "{text}");
        }
        let (code, text) = self.cmd("DATA").await;
        assert_eq!(code, 354, "{text}");
        self.send(&dot_stuff(message)).await;
        self.send(b".\r\n").await;
        self.reply().await
    }
}

/// Dot-stuffs a message (RFC 5321 §4.5.2) that ends with CRLF.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    out
}

pub fn sample_message(subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@remote.test>\r\nTo: Alice <alice@example.org>\r\nSubject: {subject}\r\nDate: Fri, 27 Nov 2026 20:00:00 +0000\r\nMessage-ID: <{subject}@remote.test>\r\n\r\nHello Alice,\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\nbye\r\n"
    )
    .into_bytes()
}

/// The message after the two trace headers the server prepends.
pub fn strip_trace(raw: &[u8]) -> &[u8] {
    let text = raw;
    assert!(
        text.starts_with(b"Return-Path: <"),
        "no Return-Path first: {:?}",
        String::from_utf8_lossy(raw)
    );
    // Return-Path is one line; Received is folded with TABs and ends at the first
    // line that does not start with a TAB.
    let mut pos = text.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    assert!(text[pos..].starts_with(b"Received: from "));
    loop {
        pos += text[pos..].windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        if text[pos] != b'\t' {
            return &text[pos..];
        }
    }
}
