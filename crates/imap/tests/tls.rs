//! TLS and authentication over TCP with a real rustls client: STARTTLS (and the
//! injection case of RFC 9051 §6.2.1), implicit TLS, LOGINDISABLED without TLS,
//! SCRAM-SHA-256 against a client written here from RFC 5802, the lock-out of
//! password guessing, and test mode's account creation.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{PASS, USER, start_tls, start_with};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A line-oriented IMAP client over any stream (plain TCP or TLS).
struct Wire<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    fn new(stream: S) -> Self {
        Wire {
            io: BufReader::new(stream),
        }
    }

    async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut line))
            .await
            .expect("timed out waiting for the server")
            .unwrap();
        (n > 0).then(|| line.trim_end().to_string())
    }

    async fn send(&mut self, data: &str) {
        self.io.get_mut().write_all(data.as_bytes()).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    async fn cmd(&mut self, line: &str) -> Vec<String> {
        let tag = line.split(' ').next().unwrap().to_string();
        self.send(&format!("{line}\r\n")).await;
        self.until_tagged(&tag).await
    }

    async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self
                .line()
                .await
                .unwrap_or_else(|| panic!("closed before {tag}: {out:?}"));
            let done = line.starts_with(&format!("{tag} "));
            out.push(line);
            if done {
                return out;
            }
        }
    }
}

fn connector(cert: &std::path::Path) -> TlsConnector {
    mailroom_auth::install_crypto_provider();
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    stream: TcpStream,
    cert: &std::path::Path,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    connector(cert)
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .expect("TLS handshake with the generated certificate")
}

fn last(r: &[String]) -> &str {
    r.last().map(String::as_str).unwrap_or_default()
}

#[tokio::test]
async fn starttls_upgrades_and_then_allows_passwords() {
    let s = start_tls(|c| c.auth.allow_plaintext = Some(false)).await;
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    let greeting = c.line().await.unwrap();
    for cap in ["STARTTLS", "LOGINDISABLED", "AUTH=SCRAM-SHA-256"] {
        assert!(greeting.contains(cap), "{cap}: {greeting}");
    }
    assert!(!greeting.contains("AUTH=PLAIN"), "{greeting}");
    let r = c.cmd(&format!("a1 LOGIN {USER} \"{PASS}\"")).await;
    assert!(last(&r).starts_with("a1 NO [PRIVACYREQUIRED]"), "{r:?}");
    let r = c
        .cmd("a2 AUTHENTICATE PLAIN AGpvZUBleGFtcGxlLm9yZwBzZWNyZXQgcGFzcw==")
        .await;
    assert!(last(&r).starts_with("a2 NO [PRIVACYREQUIRED]"), "{r:?}");
    let r = c.cmd("a3 AUTHENTICATE LOGIN").await;
    assert!(last(&r).starts_with("a3 NO [PRIVACYREQUIRED]"), "{r:?}");

    let r = c.cmd("a4 STARTTLS").await;
    assert_eq!(r, ["a4 OK Begin TLS negotiation now"]);
    let mut c = Wire::new(tls_connect(c.io.into_inner(), s.cert.as_deref().unwrap()).await);
    // No second greeting after the handshake (RFC 9051 §6.2.1).
    let r = c.cmd("b1 CAPABILITY").await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(last(&r).starts_with("b1 OK"), "{r:?}");
    assert!(
        !r[0].contains("STARTTLS") && !r[0].contains("LOGINDISABLED"),
        "{r:?}"
    );
    for cap in ["AUTH=SCRAM-SHA-256", "AUTH=PLAIN", "AUTH=LOGIN"] {
        assert!(r[0].contains(cap), "{cap}: {r:?}");
    }
    let r = c.cmd("b2 STARTTLS").await;
    assert!(last(&r).starts_with("b2 BAD"), "{r:?}");
    let r = c.cmd(&format!("b3 LOGIN {USER} \"{PASS}\"")).await;
    assert!(last(&r).starts_with("b3 OK"), "{r:?}");
    let r = c.cmd("b4 SELECT INBOX").await;
    assert!(last(&r).starts_with("b4 OK"), "{r:?}");
    let r = c.cmd("b5 LOGOUT").await;
    assert!(last(&r).starts_with("b5 OK"), "{r:?}");
}

#[tokio::test]
async fn starttls_discards_commands_pipelined_before_the_handshake() {
    let s = start_tls(|_| {}).await;
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    // One write: STARTTLS and a LOGIN an attacker injected behind it.
    c.send(&format!(
        "a STARTTLS\r\nb LOGIN {USER} \"{PASS}\"\r\nc SELECT INBOX\r\n"
    ))
    .await;
    assert_eq!(c.line().await.unwrap(), "a OK Begin TLS negotiation now");
    let mut c = Wire::new(tls_connect(c.io.into_inner(), s.cert.as_deref().unwrap()).await);
    // Neither b nor c ran: the session is not authenticated, and the only answers
    // are to what was sent over TLS.
    let r = c.cmd("d SELECT INBOX").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("d BAD"), "{r:?}");
    let r = c.cmd("e NOOP").await;
    assert_eq!(r, ["e OK NOOP completed"]);
}

#[tokio::test]
async fn starttls_without_a_certificate_is_refused() {
    let s = start_with(|_| {}).await;
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    let greeting = c.line().await.unwrap();
    assert!(!greeting.contains("STARTTLS"), "{greeting}");
    let r = c.cmd("a STARTTLS").await;
    assert!(last(&r).starts_with("a BAD"), "{r:?}");
    let r = c.cmd("b NOOP").await;
    assert_eq!(r, ["b OK NOOP completed"]);
}

#[tokio::test]
async fn implicit_tls() {
    let s = start_tls(|c| c.auth.allow_plaintext = Some(false)).await;
    let stream = TcpStream::connect(s.tls_addr.unwrap()).await.unwrap();
    let mut c = Wire::new(tls_connect(stream, s.cert.as_deref().unwrap()).await);
    let greeting = c.line().await.unwrap();
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
        "{greeting}"
    );
    assert!(
        !greeting.contains("STARTTLS") && !greeting.contains("LOGINDISABLED"),
        "{greeting}"
    );
    assert!(greeting.contains("AUTH=PLAIN"), "{greeting}");
    let r = c.cmd("a STARTTLS").await;
    assert!(last(&r).starts_with("a BAD"), "{r:?}");
    let r = c
        .cmd("b AUTHENTICATE PLAIN AGpvZUBleGFtcGxlLm9yZwBzZWNyZXQgcGFzcw==")
        .await;
    assert!(last(&r).starts_with("b OK"), "{r:?}");
    let r = c.cmd("c STATUS INBOX (MESSAGES)").await;
    assert!(last(&r).starts_with("c OK"), "{r:?}");

    // A client that does not speak TLS gets nothing it can use, and the server goes on.
    let mut plain = TcpStream::connect(s.tls_addr.unwrap()).await.unwrap();
    plain.write_all(b"a LOGIN x y\r\n").await.unwrap();
    let stream = TcpStream::connect(s.tls_addr.unwrap()).await.unwrap();
    let mut c = Wire::new(tls_connect(stream, s.cert.as_deref().unwrap()).await);
    assert!(c.line().await.unwrap().starts_with("* OK"));
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The client side of SCRAM-SHA-256 (RFC 5802 §3, RFC 7677) over AUTHENTICATE with
/// SASL-IR; returns the tagged response. Checks the server's signature.
async fn scram_login<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Wire<S>,
    tag: &str,
    user: &str,
    password: &str,
) -> String {
    let client_nonce = "rOprNGfwEbeRWgbNEkqO";
    let first_bare = format!("n={user},r={client_nonce}");
    c.send(&format!(
        "{tag} AUTHENTICATE SCRAM-SHA-256 {}\r\n",
        B64.encode(format!("n,,{first_bare}"))
    ))
    .await;
    let line = c.line().await.unwrap();
    let Some(challenge) = line.strip_prefix("+ ") else {
        return line;
    };
    let server_first = String::from_utf8(B64.decode(challenge).unwrap()).unwrap();
    let (mut nonce, mut salt, mut iterations) = ("", Vec::new(), 0u32);
    for attr in server_first.split(',') {
        match attr.split_once('=') {
            Some(("r", v)) => nonce = v,
            Some(("s", v)) => salt = B64.decode(v).unwrap(),
            Some(("i", v)) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    assert!(
        nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len(),
        "{server_first}"
    );
    assert!(iterations >= 4096, "{server_first}");
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    c.send(&format!(
        "{}\r\n",
        B64.encode(format!("{without_proof},p={}", B64.encode(proof)))
    ))
    .await;
    let line = c.line().await.unwrap();
    let Some(v) = line.strip_prefix("+ ") else {
        return line;
    };
    let server_final = String::from_utf8(B64.decode(v).unwrap()).unwrap();
    let server_key = hmac(&salted, b"Server Key");
    assert_eq!(
        server_final,
        format!(
            "v={}",
            B64.encode(hmac(&server_key, auth_message.as_bytes()))
        ),
        "the server proves it knows the password too"
    );
    c.send("\r\n").await;
    c.until_tagged(tag).await.pop().unwrap()
}

#[tokio::test]
async fn scram_sha_256_without_tls() {
    // SCRAM is allowed where LOGIN is not: the password never crosses the wire.
    let s = start_with(|c| c.auth.allow_plaintext = Some(false)).await;
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    let r = scram_login(&mut c, "a", USER, "wrong password").await;
    assert!(r.starts_with("a NO [AUTHENTICATIONFAILED]"), "{r}");
    let r = scram_login(&mut c, "b", "nobody@example.org", PASS).await;
    assert!(r.starts_with("b NO [AUTHENTICATIONFAILED]"), "{r}");
    let r = scram_login(&mut c, "c", USER, PASS).await;
    assert!(r.starts_with("c OK [CAPABILITY"), "{r}");
    let r = c.cmd("d SELECT INBOX").await;
    assert!(last(&r).starts_with("d OK"), "{r:?}");

    // Cancelling in the middle is BAD, and the session stays usable.
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    c.send("e AUTHENTICATE SCRAM-SHA-256\r\n").await;
    assert_eq!(c.line().await.unwrap(), "+");
    c.send("*\r\n").await;
    let r = c.until_tagged("e").await;
    assert!(last(&r).starts_with("e BAD"), "{r:?}");
    let r = c.cmd("f NOOP").await;
    assert_eq!(r, ["f OK NOOP completed"]);
}

#[tokio::test]
async fn scram_sha_256_over_tls() {
    let s = start_tls(|c| c.auth.allow_plaintext = Some(false)).await;
    let stream = TcpStream::connect(s.tls_addr.unwrap()).await.unwrap();
    let mut c = Wire::new(tls_connect(stream, s.cert.as_deref().unwrap()).await);
    c.line().await.unwrap();
    let r = scram_login(&mut c, "a", USER, PASS).await;
    assert!(r.starts_with("a OK"), "{r}");
}

#[tokio::test]
async fn repeated_failures_slow_down_then_lock_out() {
    let s = start_tls(|c| {
        c.auth.failure_delay = Duration::from_millis(100);
        c.auth.max_failures = 3;
        c.auth.lockout = Duration::from_secs(60);
    })
    .await;
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    // Each failure waits at least the doubled delay (the lower bounds prove the
    // doubling; upper bounds would only measure how busy the machine is).
    for (i, expected) in [100u64, 200, 400].into_iter().enumerate() {
        let started = Instant::now();
        let r = c.cmd(&format!("f{i} LOGIN {USER} wrong")).await;
        let took = started.elapsed();
        assert!(
            last(&r).starts_with(&format!("f{i} NO [AUTHENTICATIONFAILED]")),
            "{r:?}"
        );
        assert!(
            took >= Duration::from_millis(expected),
            "failure {i} answered after {took:?}"
        );
    }
    // Locked: even the right password is refused, without the 800 ms a fourth
    // failure would wait.
    let started = Instant::now();
    let r = c.cmd(&format!("g LOGIN {USER} \"{PASS}\"")).await;
    assert!(last(&r).starts_with("g NO [UNAVAILABLE]"), "{r:?}");
    assert!(started.elapsed() < Duration::from_millis(800));
    let r = c
        .cmd("h AUTHENTICATE PLAIN AGpvZUBleGFtcGxlLm9yZwBzZWNyZXQgcGFzcw==")
        .await;
    assert!(last(&r).starts_with("h NO [UNAVAILABLE]"), "{r:?}");
    // The throttle is shared with the implicit-TLS listener.
    let stream = TcpStream::connect(s.tls_addr.unwrap()).await.unwrap();
    let mut t = Wire::new(tls_connect(stream, s.cert.as_deref().unwrap()).await);
    t.line().await.unwrap();
    let r = t.cmd(&format!("i LOGIN {USER} \"{PASS}\"")).await;
    assert!(last(&r).starts_with("i NO [UNAVAILABLE]"), "{r:?}");
    let r = scram_login(&mut t, "j", USER, PASS).await;
    assert!(r.starts_with("j NO [UNAVAILABLE]"), "{r}");
}

#[tokio::test]
async fn success_resets_the_failure_count() {
    let s = start_with(|c| {
        c.auth.failure_delay = Duration::from_millis(1);
        c.auth.max_failures = 2;
    })
    .await;
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    let r = c.cmd(&format!("a LOGIN {USER} wrong")).await;
    assert!(last(&r).starts_with("a NO [AUTHENTICATIONFAILED]"), "{r:?}");
    let r = c.cmd(&format!("b LOGIN {USER} \"{PASS}\"")).await;
    assert!(last(&r).starts_with("b OK"), "{r:?}");
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    let r = c.cmd(&format!("c LOGIN {USER} wrong")).await;
    assert!(last(&r).starts_with("c NO [AUTHENTICATIONFAILED]"), "{r:?}");
    let r = c.cmd(&format!("d LOGIN {USER} \"{PASS}\"")).await;
    assert!(last(&r).starts_with("d OK"), "{r:?}");
}

#[tokio::test]
async fn test_mode_creates_unknown_users_at_login() {
    let s = start_with(|c| c.test_mode.enabled = true).await;
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    // An unknown user in an unknown domain: created with this password.
    let r = c.cmd("a LOGIN new@fresh.test anything").await;
    assert!(last(&r).starts_with("a OK"), "{r:?}");
    let r = c.cmd("b SELECT INBOX").await;
    assert!(last(&r).starts_with("b OK"), "{r:?}");
    assert!(s.store.account("new@fresh.test").await.unwrap().is_some());
    assert!(s.store.is_local_domain("fresh.test").await.unwrap());

    // Once it exists, its password counts; known users are not taken over.
    for (tag, user, pass) in [
        ("c", "new@fresh.test", "other"),
        ("d", USER, "wrong"),
        ("e", "no-domain-part", "x"),
    ] {
        let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
        c.line().await.unwrap();
        let r = c.cmd(&format!("{tag} LOGIN {user} {pass}")).await;
        assert!(
            last(&r).starts_with(&format!("{tag} NO [AUTHENTICATIONFAILED]")),
            "{r:?}"
        );
    }
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    let r = c.cmd("f LOGIN new@fresh.test anything").await;
    assert!(last(&r).starts_with("f OK"), "{r:?}");

    // AUTHENTICATE PLAIN (SASL-IR) and LOGIN create accounts too.
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    let ir = B64.encode("\0plain@fresh.test\0pw1");
    let r = c.cmd(&format!("g AUTHENTICATE PLAIN {ir}")).await;
    assert!(last(&r).starts_with("g OK"), "{r:?}");
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    c.send("h AUTHENTICATE LOGIN\r\n").await;
    c.line().await.unwrap();
    c.send(&format!("{}\r\n", B64.encode("login@other.test")))
        .await;
    c.line().await.unwrap();
    c.send(&format!("{}\r\n", B64.encode("pw2"))).await;
    let r = c.until_tagged("h").await;
    assert!(last(&r).starts_with("h OK"), "{r:?}");
    assert!(
        s.store
            .authenticate("login@other.test", "pw2")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn test_mode_is_off_by_default() {
    let s = start_with(|_| {}).await;
    let mut c = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    c.line().await.unwrap();
    let r = c.cmd("a LOGIN new@fresh.test anything").await;
    assert!(last(&r).starts_with("a NO [AUTHENTICATIONFAILED]"), "{r:?}");
    assert!(s.store.account("new@fresh.test").await.unwrap().is_none());
}

#[tokio::test]
async fn certificate_reload_keeps_open_sessions() {
    let s = start_tls(|_| {}).await;
    let old_cert = s.cert.clone().unwrap();
    let old_pem = std::fs::read(&old_cert).unwrap();
    let old_trust = std::env::temp_dir().join(format!("mailroom-old-{}.pem", std::process::id()));
    std::fs::write(&old_trust, &old_pem).unwrap();
    let stream = TcpStream::connect(s.tls_addr.unwrap()).await.unwrap();
    let mut before = Wire::new(tls_connect(stream, &old_trust).await);
    before.line().await.unwrap();
    let r = before.cmd(&format!("a LOGIN {USER} \"{PASS}\"")).await;
    assert!(last(&r).starts_with("a OK"), "{r:?}");

    // A new certificate in the same files (as a renewal would put it), then SIGHUP's reload.
    let other = tempfile::tempdir().unwrap();
    let config = mailroom_config::Config {
        data_dir: other.path().to_path_buf(),
        ..mailroom_config::Config::default()
    };
    let new = mailroom_auth::TlsManager::from_config(&config).unwrap();
    let tls = s.tls.as_ref().unwrap();
    let before_fingerprint = tls.fingerprint();
    std::fs::copy(new.cert_path(), &old_cert).unwrap();
    std::fs::copy(
        other.path().join("tls/key.pem"),
        old_cert.with_file_name("key.pem"),
    )
    .unwrap();
    tls.reload().unwrap();
    assert_eq!(tls.fingerprint(), new.fingerprint());
    assert_ne!(tls.fingerprint(), before_fingerprint);

    // New connections get the new certificate, on both listeners.
    let stream = TcpStream::connect(s.tls_addr.unwrap()).await.unwrap();
    let mut c = Wire::new(tls_connect(stream, &new.cert_path()).await);
    assert!(c.line().await.unwrap().starts_with("* OK"));
    let stream = TcpStream::connect(s.tls_addr.unwrap()).await.unwrap();
    assert!(
        connector(&old_trust)
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    let mut p = Wire::new(TcpStream::connect(s.addr).await.unwrap());
    p.line().await.unwrap();
    p.cmd("b STARTTLS").await;
    let mut p = Wire::new(tls_connect(p.io.into_inner(), &new.cert_path()).await);
    let r = p.cmd("c NOOP").await;
    assert_eq!(r, ["c OK NOOP completed"]);

    // The session opened before the reload goes on undisturbed.
    let r = before.cmd("d SELECT INBOX").await;
    assert!(last(&r).starts_with("d OK"), "{r:?}");
    let _ = std::fs::remove_file(old_trust);
}
