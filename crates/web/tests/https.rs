//! HTTPS on the HTTP listener (`[http] tls_listen`, `WebServer::serve_tls`): the same
//! routes as plain HTTP with the mail listeners' certificate, a reload of that
//! certificate applies to the next connection, the portal's cookies are `Secure`,
//! and a client that stalls in its handshake holds no one else up. The client is
//! rustls trusting exactly the certificate under test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailroom_auth::TlsManager;
use mailroom_config::Config;
use mailroom_store::{Store, StoreOptions};
use mailroom_web::WebServer;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct Https {
    addr: SocketAddr,
    tls: TlsManager,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    dir: tempfile::TempDir,
}

/// A certificate for `name` (self-signed), written as cert.pem and key.pem in `dir`.
fn certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

async fn start(tweak: impl FnOnce(&mut Config, &Path)) -> Https {
    mailroom_auth::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    let mut config = Config {
        hostname: "mail.example.org".into(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    tweak(&mut config, dir.path());
    let config = Arc::new(config);
    let tls = TlsManager::from_config(&config).unwrap();
    let server = WebServer::new(store, config, "token".into(), false).with_tls(tls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.serve_tls(listener, shutdown.clone()));
    Https {
        addr,
        tls,
        shutdown,
        task,
        dir,
    }
}

impl Https {
    /// A connector trusting exactly the certificate in `cert` (PEM).
    fn connector(cert: &Path) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cert).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// GET `path` over a new TLS connection trusting `cert` as `name`: the whole
    /// response (head and body), or the handshake's error.
    async fn get_trusting(&self, cert: &Path, name: &str, path: &str) -> std::io::Result<String> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut tls = Self::connector(cert).connect(name, tcp).await?;
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: mail.example.org\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response))
            .await
            .expect("a response in time")?;
        Ok(String::from_utf8_lossy(&response).to_string())
    }

    async fn get(&self, path: &str) -> String {
        self.get_trusting(&self.tls.cert_path(), "mail.example.org", path)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn https_serves_the_routes_with_the_mail_certificate() {
    let server = start(|c, _| {
        c.mta_sts.mode = mailroom_config::MtaStsMode::Enforce;
    })
    .await;
    let health = server.get("/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let policy = server.get("/.well-known/mta-sts.txt").await;
    assert!(policy.starts_with("HTTP/1.1 200"), "{policy}");
    assert!(
        policy
            .to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{policy}"
    );
    assert!(
        policy.contains("version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\n"),
        "{policy}"
    );
    // A name the certificate is not for is refused by the client, as it should.
    let wrong = server
        .get_trusting(&server.tls.cert_path(), "other.example.org", "/healthz")
        .await;
    assert!(wrong.is_err(), "{wrong:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_reloaded_certificate_is_served_to_the_next_connection() {
    let server = start(|c, dir| {
        let (cert, key) = certificate(dir, "mail.example.org");
        c.tls.cert = Some(cert);
        c.tls.key = Some(key);
    })
    .await;
    let old = server.dir.path().join("old.pem");
    std::fs::copy(server.tls.cert_path(), &old).unwrap();
    let response = server.get("/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Renewal: new files in place, then the reload SIGHUP or ACME triggers.
    certificate(server.dir.path(), "mail.example.org");
    server.tls.reload().unwrap();
    let response = server.get("/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let stale = server
        .get_trusting(&old, "mail.example.org", "/healthz")
        .await;
    assert!(stale.is_err(), "the old certificate is no longer served");
    server.stop().await;
}

#[tokio::test]
async fn portal_cookies_are_secure_over_https() {
    let server = start(|_, _| {}).await;
    let page = server.get("/portal/sign-in").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let cookie = page
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("a cookie: {page}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_handshake_holds_no_one_up_and_plain_http_gets_nothing() {
    let server = start(|_, _| {}).await;
    // Connected, never says a word.
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    let response = server.get("/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Plain HTTP on the TLS port: no HTTP answer, the connection is closed.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer))
        .await
        .expect("closed in time");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    server.stop().await;
}
