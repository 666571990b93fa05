#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! ACME (RFC 8555) against Pebble, Let's Encrypt's test CA (Debian package `pebble`),
//! with the real `mailroom serve`.
//!
//! Pebble runs once for this test binary, with its own HTTPS certificate (from a CA
//! this test makes: `[acme] directory_ca`) and `pebble-challtestsrv` as its DNS
//! server, which answers every name with 127.0.0.1. Pebble really validates: it
//! opens TLS with ALPN `acme-tls/1` to its `tlsPort` (a mailroom's imaps listener)
//! or fetches `http://NAME:httpPort/.well-known/acme-challenge/TOKEN` (a mailroom's
//! HTTP listener). Certificates live 20 seconds, so renewal happens within a test.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use mailroom_auth::tls::{CertificateInfo, CertificateSource};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Seconds a Pebble certificate is valid: renewal (a third before expiry) comes
/// about 13 s after issuance.
const VALIDITY_SECS: u64 = 20;

struct Pebble {
    /// The directory URL.
    directory: String,
    /// Trusted for Pebble's own HTTPS (the directory and the management API).
    directory_ca: PathBuf,
    /// Pebble's issuing root, fetched from its management API.
    root: CertificateDer<'static>,
    /// Where Pebble validates TLS-ALPN-01 and HTTP-01.
    tls_port: u16,
    http_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _children: Vec<Child>,
}

fn installed(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: `apt-get install pebble` (.ci/run installs it)"
    );
}

/// Runs `program` until this test process ends: the shell kills it when its
/// standard input, a pipe only this process holds, closes.
fn spawn_tied(program: &str, args: &[String], env: &[(&str, &str)], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new("sh")
        .arg("-c")
        .arg("\"$@\" & child=$!; read _; kill $child; wait $child")
        .arg("sh")
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pebble() -> &'static Pebble {
    static PEBBLE: OnceLock<Pebble> = OnceLock::new();
    PEBBLE.get_or_init(start_pebble)
}

fn start_pebble() -> Pebble {
    installed("pebble");
    installed("pebble-challtestsrv");
    mailroom_auth::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    // Pebble's HTTPS identity, from a CA of our own (the Debian package ships none).
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "mailroom test: Pebble's HTTPS CA",
    );
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let directory_ca = dir.path().join("pebble-https-ca.pem");
    std::fs::write(&directory_ca, ca.pem()).unwrap();
    std::fs::write(dir.path().join("pebble-cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("pebble-key.pem"), key.serialize_pem()).unwrap();

    let (acme_port, management_port, dns_port, tls_port, http_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.path().join("pebble-cert.pem"),
            "privateKey": dir.path().join("pebble-key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": VALIDITY_SECS,
        }
    });
    let config_path = dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();

    let dns_log = dir.path().join("challtestsrv.log");
    let dns = spawn_tied(
        "pebble-challtestsrv",
        &[
            "-dns01".into(),
            format!("127.0.0.1:{dns_port}"),
            "-defaultIPv4".into(),
            "127.0.0.1".into(),
            "-defaultIPv6".into(),
            String::new(),
            "-http01".into(),
            String::new(),
            "-https01".into(),
            String::new(),
            "-tlsalpn01".into(),
            String::new(),
            "-management".into(),
            format!("127.0.0.1:{}", free_port()),
        ],
        &[],
        &dns_log,
    );
    let log = dir.path().join("pebble.log");
    let pebble = spawn_tied(
        "pebble",
        &[
            "-config".into(),
            config_path.display().to_string(),
            "-dnsserver".into(),
            format!("127.0.0.1:{dns_port}"),
            "-strict=false".into(),
        ],
        // Validation stays on (no PEBBLE_VA_ALWAYS_VALID); only its random sleeps,
        // its deliberate bad nonces and its reuse of valid authorizations are off,
        // so that every order is validated and the test is quick.
        &[
            ("PEBBLE_VA_NOSLEEP", "1"),
            ("PEBBLE_WFE_NONCEREJECT", "0"),
            ("PEBBLE_AUTHZREUSE", "0"),
        ],
        &log,
    );
    wait_for_port(management_port, "pebble", &log);
    wait_for_port(acme_port, "pebble", &log);
    // The root Pebble issues under: made anew at each start, served by its
    // management API.
    let ca_der = CertificateDer::from_pem_file(&directory_ca).unwrap();
    let (_, body) = https_get(management_port, "/roots/0", &client_config(&[ca_der], &[]));
    let root = CertificateDer::from_pem_slice(body.as_bytes())
        .unwrap_or_else(|e| panic!("Pebble's /roots/0 is not PEM ({e}): {body}"));
    Pebble {
        directory: format!("https://localhost:{acme_port}/dir"),
        directory_ca,
        root,
        tls_port,
        http_port,
        log,
        _dir: dir,
        _children: vec![dns, pebble],
    }
}

fn client_config(roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A GET over HTTPS/1.0 (no chunking): status line and body.
fn https_get(port: u16, path: &str, config: &Arc<rustls::ClientConfig>) -> (String, String) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let conn =
        rustls::ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = Vec::new();
    // Go closes without close_notify at times: what arrived is the answer.
    let _ = tls.read_to_end(&mut response);
    split_response(&response)
}

fn http_get(port: u16, path: &str) -> (String, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).unwrap();
    split_response(&response)
}

fn split_response(response: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

/// A running `mailroom serve` with its log in a file (read on failure).
struct Mailroom {
    child: Child,
    dir: tempfile::TempDir,
    imaps: u16,
    http: u16,
}

impl Mailroom {
    fn start(hostname: &str, imaps: u16, http: u16, env: &[(&str, &str)]) -> Mailroom {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("m.toml"),
            format!("data_dir = \"store\"\nhostname = \"{hostname}\"\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = mailroom(dir.path())
            .args(["--config", "m.toml", "serve"])
            .env(
                "MAILROOM_IMAP__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env(
                "MAILROOM_SMTP__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("MAILROOM_IMAPS__LISTEN", format!("127.0.0.1:{imaps}"))
            .env("MAILROOM_HTTP__LISTEN", format!("127.0.0.1:{http}"))
            .env("MAILROOM_LMTP__LISTEN", "[]")
            .env("MAILROOM_SUBMISSION__LISTEN", "[]")
            .env("MAILROOM_SUBMISSIONS__LISTEN", "[]")
            .env("MAILROOM_ACME__ENABLED", "true")
            .env("MAILROOM_ACME__CONTACT", "postmaster@example.com")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Mailroom {
            child,
            dir,
            imaps,
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", http)).is_err() {
            assert!(
                Instant::now() < deadline,
                "serve did not listen:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log(&self) -> String {
        let pebble = std::fs::read_to_string(&pebble().log).unwrap_or_default();
        format!(
            "--- mailroom:\n{}\n--- pebble:\n{pebble}",
            std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
        )
    }

    fn readyz(&self) -> serde_json::Value {
        let (status, body) = http_get(self.http, "/readyz");
        assert!(status.contains("200"), "{status}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// A TLS handshake with the imaps listener, verified against Pebble's root for
    /// `name`: the session (greeting read) and the served leaf, or why it failed.
    fn connect(
        &self,
        name: &str,
    ) -> Result<
        (
            rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
            CertificateInfo,
        ),
        String,
    > {
        let config = client_config(&[pebble().root.clone()], &[]);
        let tcp = TcpStream::connect(("127.0.0.1", self.imaps)).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn =
            rustls::ClientConnection::new(config, ServerName::try_from(name.to_string()).unwrap())
                .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut greeting = [0u8; 256];
        let n = tls.read(&mut greeting).map_err(|e| e.to_string())?;
        let greeting = String::from_utf8_lossy(&greeting[..n]);
        assert!(greeting.starts_with("* OK"), "{greeting}");
        let leaf = tls.conn.peer_certificates().unwrap()[0].clone();
        let info = CertificateInfo::parse(leaf.as_ref(), CertificateSource::Acme).unwrap();
        Ok((tls, info))
    }

    /// Connects until a handshake verifies (and, with `other_than`, serves another
    /// serial): the certificate Pebble issued, as a client sees it.
    fn wait_for_certificate(
        &self,
        name: &str,
        other_than: Option<&str>,
    ) -> (
        rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
        CertificateInfo,
    ) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let last = match self.connect(name) {
                Ok((tls, info)) if Some(info.serial.as_str()) != other_than => return (tls, info),
                Ok((_, info)) => format!("still serial {}", info.serial),
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "no Pebble certificate served for {name} ({last}):\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Mailroom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
}

/// TLS-ALPN-01 on the imaps listener: Pebble issues, an IMAPS client trusting
/// Pebble's root accepts the certificate, and the renewal replaces it on the open
/// listener (no restart) while a connection made before keeps working.
#[test]
fn tls_alpn_01_issues_and_renews_on_the_open_listener() {
    let pebble = pebble();
    let name = "alpn.mailroom.example.com";
    let ca = pebble.directory_ca.display().to_string();
    let server = Mailroom::start(
        name,
        pebble.tls_port,
        free_port(),
        &[
            ("MAILROOM_ACME__DIRECTORY_URL", &pebble.directory),
            ("MAILROOM_ACME__DIRECTORY_CA", &ca),
            ("MAILROOM_ACME__CHALLENGE", "tls-alpn-01"),
        ],
    );
    let (mut first, issued) = server.wait_for_certificate(name, None);
    assert_eq!(issued.names, vec![name.to_string()]);
    assert!(issued.issuer.contains("Pebble"), "{}", issued.issuer);

    // What /readyz tells about it.
    let ready = server.readyz();
    let tls = &ready["tls"];
    assert_eq!(tls["certificate"]["source"], "acme", "{ready}");
    assert_eq!(
        tls["certificate"]["serial"],
        issued.serial.as_str(),
        "{ready}"
    );
    assert!(
        tls["certificate"]["issuer"]
            .as_str()
            .unwrap()
            .contains("Pebble")
    );
    assert!(tls["certificate"]["not_after"].is_string(), "{ready}");
    assert_eq!(
        tls["acme"]["last_error"],
        serde_json::Value::Null,
        "{ready}"
    );
    assert_eq!(tls["acme"]["challenge"], "tls-alpn-01");

    // The files, private ones readable by the owner only.
    let tls_dir = server.dir.path().join("store/tls");
    for file in ["acme-key.pem", "acme-account.json"] {
        assert_eq!(mode(&tls_dir.join(file)) & 0o077, 0, "{file} is private");
    }
    let chain = std::fs::read(tls_dir.join("acme-cert.pem")).unwrap();
    assert!(
        CertificateDer::pem_slice_iter(&chain).count() >= 2,
        "the chain holds the leaf and Pebble's intermediate"
    );

    // The certificate lives VALIDITY_SECS; the renewal comes on the same listener.
    let (mut second, renewed) = server.wait_for_certificate(name, Some(&issued.serial));
    assert_ne!(renewed.serial, issued.serial);
    assert!(renewed.not_after > issued.not_after);
    assert!(
        server_running(&server),
        "serve still runs: the swap needed no restart"
    );
    // The connection made before the renewal keeps its session and certificate.
    for (tls, tag) in [(&mut first, "a1"), (&mut second, "b1")] {
        write!(tls, "{tag} NOOP\r\n").unwrap();
        tls.flush().unwrap();
        let mut answer = [0u8; 256];
        let n = tls.read(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.contains(&format!("{tag} OK")), "{answer}");
    }
    let first_leaf = first.conn.peer_certificates().unwrap()[0].clone();
    assert_eq!(
        CertificateInfo::parse(first_leaf.as_ref(), CertificateSource::Acme)
            .unwrap()
            .serial,
        issued.serial
    );
}

fn server_running(server: &Mailroom) -> bool {
    // /proc/PID exists while the child runs (it is not reaped before Drop).
    Path::new(&format!("/proc/{}", server.child.id())).exists() && {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
            .unwrap_or_default();
        !stat.contains(") Z ")
    }
}

/// HTTP-01 on the HTTP listener: Pebble fetches the key authorization from
/// `/.well-known/acme-challenge/TOKEN`, and the issued certificate is served on imaps.
#[test]
fn http_01_issues_through_the_http_listener() {
    let pebble = pebble();
    let name = "http.mailroom.example.com";
    let ca = pebble.directory_ca.display().to_string();
    let server = Mailroom::start(
        name,
        free_port(),
        pebble.http_port,
        &[
            ("MAILROOM_ACME__DIRECTORY_URL", &pebble.directory),
            ("MAILROOM_ACME__DIRECTORY_CA", &ca),
            ("MAILROOM_ACME__CHALLENGE", "http-01"),
        ],
    );
    let (_tls, issued) = server.wait_for_certificate(name, None);
    assert_eq!(issued.names, vec![name.to_string()]);
    assert!(issued.issuer.contains("Pebble"), "{}", issued.issuer);
    // No pending challenge, no answer.
    let (status, _) = http_get(server.http, "/.well-known/acme-challenge/not-a-token");
    assert!(status.contains("404"), "{status}");
}

/// A directory whose HTTPS certificate is not trusted (no `directory_ca`): the
/// failure is logged and shown on /readyz, the self-signed certificate stays in
/// service, and the server keeps serving.
#[test]
fn failures_are_shown_on_readyz_and_the_server_keeps_serving() {
    let pebble = pebble();
    let name = "fail.mailroom.example.com";
    let server = Mailroom::start(
        name,
        free_port(),
        free_port(),
        &[("MAILROOM_ACME__DIRECTORY_URL", &pebble.directory)],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let ready = server.readyz();
        if ready["tls"]["acme"]["last_error"].is_string() {
            break ready;
        }
        assert!(
            Instant::now() < deadline,
            "no error shown: {ready}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let acme = &ready["tls"]["acme"];
    assert!(
        acme["last_error"]
            .as_str()
            .unwrap()
            .contains(&pebble.directory),
        "the error names the directory: {ready}"
    );
    assert_eq!(acme["failures"], 1, "{ready}");
    assert!(
        acme["next_attempt_at"].is_string(),
        "a retry is planned: {ready}"
    );
    assert_eq!(
        ready["tls"]["certificate"]["source"], "self-signed",
        "{ready}"
    );
    // IMAPS still answers with the self-signed certificate.
    let tcp = TcpStream::connect(("127.0.0.1", server.imaps)).unwrap();
    drop(tcp);
    assert!(
        server_running(&server),
        "serve still runs:\n{}",
        server.log()
    );
    assert!(
        server
            .log()
            .contains("ACME: could not obtain a certificate"),
        "the failure is logged"
    );
}
