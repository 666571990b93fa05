//! The fixture of the sender-authentication tests: a real DNS server (Python
//! `dnslib`, started once per test binary) serving SPF, DKIM and DMARC records of a
//! few sender domains, keys made with `openssl`, messages signed and ARC-sealed with
//! `dkimpy`, and an SMTP client that connects from a chosen loopback address.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use mailroom_config::Config;
use mailroom_smtp::Mode;
use mailroom_store::Account;
use tokio::io::BufReader;
use tokio::net::TcpSocket;

use crate::common::{Client, Harness, start_with};

mod zone;

/// The address in every sender domain's SPF record: mail from 127.0.0.1 passes,
/// from 127.0.0.2 (also loopback) it does not.
pub const GOOD_IP: &str = "127.0.0.1";
pub const BAD_IP: &str = "127.0.0.2";

const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/inbound/dnsauth.py");

pub struct Dns {
    pub addr: SocketAddr,
    dir: PathBuf,
    /// The server; it stops when its standard input closes (at `stop`, or when
    /// this test process exits).
    child: Mutex<Option<Child>>,
}

static DNS: OnceLock<Dns> = OnceLock::new();

/// The DNS server of this test binary, started on first use.
pub fn dns() -> &'static Dns {
    DNS.get_or_init(Dns::start)
}

fn need(tool: &str, args: &[&str], install: &str) {
    let ok = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{tool} {}` failed: these tests need it; {install} (.ci/run does)",
        args.join(" ")
    );
}

/// A 1024-bit RSA key (PKCS#1 PEM for dkimpy) and its DKIM `p=` value.
fn rsa_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let pem = dir.join(format!("{name}.pem"));
    let status = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&pem)
        .arg("1024")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl genrsa failed");
    let der = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&pem)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(der.status.success(), "openssl rsa -pubout failed");
    use base64::Engine;
    let public = base64::engine::general_purpose::STANDARD.encode(der.stdout);
    (pem, public)
}

impl Dns {
    fn start() -> Dns {
        need(
            "python3",
            &["-c", "import dnslib, dkim, authres"],
            "install Python 3 and `pip install -r tests/interop/requirements.txt` (dnslib, dkimpy, authres)",
        );
        need(
            "openssl",
            &["version"],
            "install it with `apt-get install openssl`",
        );
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("inbound-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (_, sender_key) = rsa_key(&dir, "sender");
        let (_, relay_key) = rsa_key(&dir, "relay");
        let zone = format!(
            r#"sender.test. 300 IN TXT "v=spf1 ip4:{GOOD_IP} -all"
sel._domainkey.sender.test. 300 IN TXT "v=DKIM1; k=rsa; p={sender_key}"
_dmarc.sender.test. 300 IN TXT "v=DMARC1; p=reject"
soft.test. 300 IN TXT "v=spf1 ip4:{GOOD_IP} ~all"
hard.test. 300 IN TXT "v=spf1 ip4:{GOOD_IP} -all"
quarantine.test. 300 IN TXT "v=spf1 ip4:{GOOD_IP} -all"
_dmarc.quarantine.test. 300 IN TXT "v=DMARC1; p=quarantine"
arc._domainkey.relay.test. 300 IN TXT "v=DKIM1; k=rsa; p={relay_key}"
sender.test. 300 IN MX 10 mx.sender.test.
mx.sender.test. 300 IN A 192.0.2.25
"#
        );
        let zonefile = dir.join("zone");
        std::fs::write(&zonefile, zone).unwrap();
        let (child, addr) = zone::serve_zone(&zonefile);
        Dns {
            addr,
            dir,
            child: Mutex::new(Some(child)),
        }
    }

    /// Stops the server (its port stays unanswered).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            drop(child.stdin.take());
            child.wait().unwrap();
        }
    }

    fn run_helper(&self, args: &[&str], message: &[u8]) -> Vec<u8> {
        let mut child = Command::new("python3")
            .arg(HELPER)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(message).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "dnsauth.py {args:?} failed");
        out.stdout
    }

    /// `message` with a DKIM signature of sender.test (selector `sel`) by dkimpy.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let key = self.dir.join("sender.pem");
        self.run_helper(
            &["sign", key.to_str().unwrap(), "sender.test", "sel"],
            message,
        )
    }

    /// `message` with an ARC set sealed by relay.test (selector `arc`) by dkimpy;
    /// the message must carry relay.test's Authentication-Results.
    pub fn arc_seal(&self, message: &[u8]) -> Vec<u8> {
        let key = self.dir.join("relay.pem");
        self.run_helper(
            &[
                "arc",
                key.to_str().unwrap(),
                "relay.test",
                "arc",
                "relay.test",
            ],
            message,
        )
    }
}

/// An MX server checking senders against the test DNS server.
pub async fn mx(tweak: impl FnOnce(&mut Config)) -> Harness {
    let dns = dns().addr;
    start_with(Mode::Smtp, |config| {
        config.inbound.verify = true;
        config.dns.nameservers = vec![dns];
        // Generous: the machine running the tests may be busy.
        config.dns.timeout = std::time::Duration::from_secs(3);
        tweak(config);
    })
    .await
}

/// A message from `from` to alice.
pub fn message(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: Alice <alice@example.org>\r\nSubject: {subject}\r\nDate: Thu, 03 Dec 2026 18:00:00 +0000\r\nMessage-ID: <{subject}@test>\r\n\r\nHello Alice,\r\nthis is {subject}.\r\n"
    )
    .into_bytes()
}

/// Sends `message` to alice from the loopback address `source`, with MAIL FROM
/// `mail_from`, after `EHLO client.test`; the reply to the message data.
pub async fn send_from(
    harness: &Harness,
    source: &str,
    mail_from: &str,
    message: &[u8],
) -> (u16, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    let stream = socket.connect(harness.addr).await.unwrap();
    let mut client = Client {
        stream: BufReader::new(stream),
    };
    let (code, text) = client.reply().await;
    assert_eq!(code, 220, "{text}");
    let (code, text) = client.cmd("EHLO client.test").await;
    assert_eq!(code, 250, "{text}");
    let reply = client
        .send_mail(mail_from, &["alice@example.org"], message)
        .await;
    let _ = client.cmd("QUIT").await;
    reply
}

/// The raw messages in one of an account's mailboxes.
pub async fn mailbox(harness: &Harness, account: &Account, name: &str) -> Vec<Vec<u8>> {
    let mb = harness
        .store
        .mailbox(account.id, name)
        .await
        .unwrap()
        .unwrap();
    let infos = harness
        .store
        .fetch_info(mb.id, &[1..=u32::MAX])
        .await
        .unwrap();
    let mut out = Vec::new();
    for info in infos {
        out.push(harness.store.content_raw(info.content_id).await.unwrap());
    }
    out
}

/// Every `Authentication-Results:` field of the header section, unfolded, in order.
pub fn auth_results(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let header = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in header.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            fields.push(line.to_string());
        }
    }
    fields
        .into_iter()
        .filter(|f| {
            f.to_ascii_lowercase()
                .starts_with("authentication-results:")
        })
        .collect()
}

/// The one Authentication-Results field of the last message in alice's INBOX,
/// which must come right after Return-Path (the first field at final delivery, RFC
/// 5321 §4.4), above our Received:, and name this host.
pub async fn our_results(harness: &Harness) -> String {
    let inbox = harness.inbox(&harness.alice).await;
    let raw = inbox.last().expect("a message in INBOX");
    let second = raw
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&raw[..0], |i| &raw[i + 1..]);
    assert!(
        raw.starts_with(b"Return-Path: <")
            && second.starts_with(b"Authentication-Results: mx.example.org;"),
        "Return-Path, then our field: {}",
        String::from_utf8_lossy(raw)
    );
    let ours: Vec<String> = auth_results(raw)
        .into_iter()
        .filter(|f| f.starts_with("Authentication-Results: mx.example.org;"))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    ours[0].clone()
}
