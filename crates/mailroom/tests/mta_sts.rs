//! Outbound MTA-STS (RFC 8461) end to end, with real peers over TCP:
//!
//! - DNS: a real name server (Python dnslib, the inbound tests' helper), started
//!   once for this test binary, publishing the MX, `_mta-sts` TXT and address
//!   records of a few recipient domains; the relay asks it through `[dns]`.
//! - Policies: served over HTTPS by mailroom's own HTTP listener (`serve_tls`, the
//!   `[http] tls_listen` path) from `[mta_sts]`, with a certificate for the
//!   `mta-sts.<domain>` names issued by a test CA (rcgen) that the relay trusts
//!   through `[relay] tls_ca`; 127.0.0.5 serves an `enforce` policy, 127.0.0.6 a
//!   `testing` one.
//! - Mail exchangers, all on one port per test (the relay's MX port seam):
//!   127.0.0.2 mailin-embedded without STARTTLS; 127.0.0.3 a mailroom MX with
//!   STARTTLS and a certificate for its MX name from the test CA; 127.0.0.4 the same
//!   with a certificate for another name.
//! - A policy host breaking the rules (`mta_sts/policy_host.py`, Python's http.server
//!   over ssl) on 127.0.0.8: a redirect, the wrong media type, an oversized policy, a
//!   certificate without the policy host's name.
#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.

#[path = "../../smtp/tests/common/peer.rs"]
mod peer;
#[path = "../../smtp/tests/inbound/zone.rs"]
mod zone;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mailroom_auth::TlsManager;
use mailroom_config::{Config, MtaStsMode};
use mailroom_smtp::{Mode, RelayWorker, SmtpServer};
use mailroom_store::{Account, CachedMtaStsPolicy, Store, StoreOptions, Synchronous};
use mailroom_web::WebServer;
use peer::{Sink, wait_for};
use tokio_util::sync::CancellationToken;

const ALICE: &str = "alice@example.org";

/// Domains and where their names point.
const ZONE: &str = r#"
enforce-plain.test. 60 IN MX 10 mx.enforce-plain.test.
mx.enforce-plain.test. 60 IN A 127.0.0.2
_mta-sts.enforce-plain.test. 60 IN TXT "v=STSv1; id=enforce1;"
mta-sts.enforce-plain.test. 60 IN A 127.0.0.5
testing-plain.test. 60 IN MX 10 mx.testing-plain.test.
mx.testing-plain.test. 60 IN A 127.0.0.2
_mta-sts.testing-plain.test. 60 IN TXT "v=STSv1; id=testing1;"
mta-sts.testing-plain.test. 60 IN A 127.0.0.6
enforce-tls.test. 60 IN MX 10 mx.enforce-tls.test.
mx.enforce-tls.test. 60 IN A 127.0.0.3
_mta-sts.enforce-tls.test. 60 IN TXT "v=STSv1; id=enforce1;"
mta-sts.enforce-tls.test. 60 IN A 127.0.0.5
enforce-wrongname.test. 60 IN MX 10 mx1.enforce-wrongname.test.
mx1.enforce-wrongname.test. 60 IN A 127.0.0.4
_mta-sts.enforce-wrongname.test. 60 IN TXT "v=STSv1; id=enforce1;"
mta-sts.enforce-wrongname.test. 60 IN A 127.0.0.5
enforce-unlisted.test. 60 IN MX 10 mail.enforce-unlisted.test.
mail.enforce-unlisted.test. 60 IN A 127.0.0.2
_mta-sts.enforce-unlisted.test. 60 IN TXT "v=STSv1; id=enforce1;"
mta-sts.enforce-unlisted.test. 60 IN A 127.0.0.5
policy-down.test. 60 IN MX 10 mx.policy-down.test.
mx.policy-down.test. 60 IN A 127.0.0.2
_mta-sts.policy-down.test. 60 IN TXT "v=STSv1; id=down1;"
mta-sts.policy-down.test. 60 IN A 127.0.0.7
cached.test. 60 IN MX 10 mx.cached.test.
mx.cached.test. 60 IN A 127.0.0.2
good.test. 60 IN MX 10 mx.good.test.
redirect.test. 60 IN MX 10 mx.redirect.test.
html.test. 60 IN MX 10 mx.html.test.
huge.test. 60 IN MX 10 mx.huge.test.
badcert.test. 60 IN MX 10 mx.badcert.test.
mx.good.test. 60 IN A 127.0.0.2
mx.redirect.test. 60 IN A 127.0.0.2
mx.html.test. 60 IN A 127.0.0.2
mx.huge.test. 60 IN A 127.0.0.2
mx.badcert.test. 60 IN A 127.0.0.2
_mta-sts.good.test. 60 IN TXT "v=STSv1; id=bad1;"
_mta-sts.redirect.test. 60 IN TXT "v=STSv1; id=bad1;"
_mta-sts.html.test. 60 IN TXT "v=STSv1; id=bad1;"
_mta-sts.huge.test. 60 IN TXT "v=STSv1; id=bad1;"
_mta-sts.badcert.test. 60 IN TXT "v=STSv1; id=bad1;"
mta-sts.good.test. 60 IN A 127.0.0.8
mta-sts.redirect.test. 60 IN A 127.0.0.8
mta-sts.html.test. 60 IN A 127.0.0.8
mta-sts.huge.test. 60 IN A 127.0.0.8
mta-sts.badcert.test. 60 IN A 127.0.0.8
"#;

/// The enforce policy's MX patterns (the wildcard covers mx1.enforce-wrongname.test;
/// mail.enforce-unlisted.test is in none).
const ENFORCE_MX: &[&str] = &[
    "mx.enforce-plain.test",
    "mx.enforce-tls.test",
    "*.enforce-wrongname.test",
];

/// The fixture shared by the tests of this binary: the DNS server, the test CA and
/// the certificates it issued, as files.
struct Fixture {
    dns: SocketAddr,
    dir: PathBuf,
    _server: Mutex<Child>,
}

impl Fixture {
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// (cert, key) files issued for `name`.
    fn cert(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        )
    }
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let ok = Command::new("python3")
            .args(["-c", "import dnslib"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "these tests need Python 3 with dnslib: `pip install -r tests/interop/requirements.txt` (.ci/run does)"
        );
        mailroom_auth::install_crypto_provider();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("mta-sts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The test CA and what it issued.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mailroom test: MTA-STS CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let issue = |file: &str, names: &[&str]| {
            let key = rcgen::KeyPair::generate().unwrap();
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let cert = rcgen::CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
        };
        issue(
            "policy",
            &[
                "mta-sts.enforce-plain.test",
                "mta-sts.testing-plain.test",
                "mta-sts.enforce-tls.test",
                "mta-sts.enforce-wrongname.test",
                "mta-sts.enforce-unlisted.test",
            ],
        );
        issue(
            "misbehaving",
            &[
                "mta-sts.good.test",
                "mta-sts.redirect.test",
                "mta-sts.html.test",
                "mta-sts.huge.test",
            ],
        );
        issue("mx-good", &["mx.enforce-tls.test"]);
        issue("mx-wrong", &["somewhere-else.test"]);
        let zonefile = dir.join("zone");
        std::fs::write(&zonefile, ZONE).unwrap();
        let (child, dns) = zone::serve_zone(&zonefile);
        Fixture {
            dns,
            dir,
            _server: Mutex::new(child),
        }
    })
}

/// Listeners on each of `addresses` sharing one free port.
fn same_port(addresses: &[&str]) -> (u16, Vec<TcpListener>) {
    'again: for _ in 0..50 {
        let first = TcpListener::bind((addresses[0], 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for address in &addresses[1..] {
            match TcpListener::bind((*address, port)) {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'again,
            }
        }
        return (port, listeners);
    }
    panic!("no port free on all of {addresses:?}");
}

fn tokio_listener(listener: TcpListener) -> tokio::net::TcpListener {
    listener.set_nonblocking(true).unwrap();
    tokio::net::TcpListener::from_std(listener).unwrap()
}

async fn store_in(dir: &Path) -> Store {
    let mut options = StoreOptions::new(dir);
    options.synchronous = Synchronous::Normal;
    Store::open(&options).await.unwrap()
}

/// Everything one test runs: the sending server's store and relay worker, the
/// policy servers, the exchangers.
struct World {
    store: Store,
    alice: Account,
    /// The mailin-embedded exchanger on 127.0.0.2 (no STARTTLS).
    plain: Sink,
    /// The mailroom exchangers' store (127.0.0.3 and 127.0.0.4).
    mx_store: Store,
    stop: CancellationToken,
    worker: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Connections to the policy host of policy-down.test.
    policy_down_tries: Arc<std::sync::atomic::AtomicU32>,
    /// The policy port on 127.0.0.8, for [`World::misbehaving_policy_host`].
    misbehaving: Option<TcpListener>,
    /// The misbehaving policy host, killed at the end of the test.
    policy_host: Option<Child>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut child) = self.policy_host.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A policy server on `listener`: mailroom's HTTPS listener serving `[mta_sts]`.
async fn policy_server(
    f: &Fixture,
    listener: TcpListener,
    mode: MtaStsMode,
    mx: &[&str],
    stop: &CancellationToken,
    dirs: &mut Vec<tempfile::TempDir>,
) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = f.cert("policy");
    let mut config = Config {
        hostname: "policy.test".into(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.tls.cert = Some(cert);
    config.tls.key = Some(key);
    config.mta_sts.mode = mode;
    config.mta_sts.max_age = Duration::from_secs(86400);
    config.mta_sts.mx = mx.iter().map(|m| m.to_string()).collect();
    let config = Arc::new(config);
    let tls = TlsManager::from_config(&config).unwrap();
    let store = store_in(dir.path()).await;
    let server = WebServer::new(store, config, String::new(), false).with_tls(tls);
    tokio::spawn(server.serve_tls(tokio_listener(listener), stop.clone()));
    dirs.push(dir);
}

/// A mailroom MX with STARTTLS and the certificate `cert` on `listener`.
fn mailroom_mx(
    f: &Fixture,
    store: &Store,
    dir: &Path,
    listener: TcpListener,
    cert: &str,
    stop: &CancellationToken,
) {
    let (cert, key) = f.cert(cert);
    let mut config = Config {
        hostname: "mx.enforce-tls.test".into(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.tls.cert = Some(cert);
    config.tls.key = Some(key);
    let config = Arc::new(config);
    let tls = TlsManager::from_config(&config).unwrap();
    let server = SmtpServer::new(store.clone(), config, Mode::Smtp).with_tls(tls);
    tokio::spawn(server.serve(tokio_listener(listener), stop.clone()));
}

async fn world(expire_after: Duration, tweak: impl FnOnce(&mut Config)) -> World {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("mailroom_smtp=info")
        .with_test_writer()
        .try_init();
    let f = fixture();
    let stop = CancellationToken::new();
    let mut dirs = Vec::new();

    // The policy servers.
    let (policy_port, mut policy) =
        same_port(&["127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"]);
    let misbehaving = policy.pop();
    // 127.0.0.7: a policy host that hangs up at once, counting the attempts.
    let down = tokio_listener(policy.pop().unwrap());
    let policy_down_tries = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let tries = policy_down_tries.clone();
    tokio::spawn(async move {
        while let Ok((connection, _)) = down.accept().await {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(connection);
        }
    });
    let testing = policy.pop().unwrap();
    let enforce = policy.pop().unwrap();
    policy_server(
        f,
        enforce,
        MtaStsMode::Enforce,
        ENFORCE_MX,
        &stop,
        &mut dirs,
    )
    .await;
    policy_server(
        f,
        testing,
        MtaStsMode::Testing,
        &["mx.testing-plain.test"],
        &stop,
        &mut dirs,
    )
    .await;

    // The exchangers.
    let (mx_port, mut mx) = same_port(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let wrong = mx.pop().unwrap();
    let good = mx.pop().unwrap();
    let plain_listener = mx.pop().unwrap();
    let plain = Sink::new(0, false);
    plain.serve("mx-plain.test", plain_listener);
    let mx_dir = tempfile::tempdir().unwrap();
    let mx_store = store_in(mx_dir.path()).await;
    for domain in ["enforce-tls.test", "enforce-wrongname.test"] {
        mx_store.add_domain(domain).await.unwrap();
        mx_store
            .create_account(&format!("x@{domain}"), "pw")
            .await
            .unwrap();
    }
    mailroom_mx(f, &mx_store, mx_dir.path(), good, "mx-good", &stop);
    mailroom_mx(f, &mx_store, mx_dir.path(), wrong, "mx-wrong", &stop);
    dirs.push(mx_dir);

    // The sender.
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store.add_domain("example.org").await.unwrap();
    let alice = store.create_account(ALICE, "pw-alice").await.unwrap();
    let mut config = Config {
        hostname: "mx.example.org".into(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.relay.host = None;
    config.relay.tls_ca = Some(f.ca());
    config.relay.mta_sts_timeout = Duration::from_secs(10);
    config.dns.nameservers = vec![f.dns];
    config.dns.timeout = Duration::from_secs(3);
    config.queue.retry_after = Duration::from_secs(1);
    config.queue.max_retry_interval = Duration::from_secs(1);
    config.queue.expire_after = expire_after;
    tweak(&mut config);
    let worker = RelayWorker::new(store.clone(), Arc::new(config))
        .with_mx_port(mx_port)
        .with_mta_sts_port(policy_port);
    let worker = tokio::spawn(worker.run(stop.clone()));
    dirs.push(dir);
    World {
        store,
        alice,
        plain,
        mx_store,
        stop,
        worker,
        policy_down_tries,
        misbehaving,
        policy_host: None,
        _dirs: dirs,
    }
}

impl World {
    /// Starts `mta_sts/policy_host.py` on 127.0.0.8 (the listener is its stdin).
    fn misbehaving_policy_host(&mut self) {
        let listener = self.misbehaving.take().unwrap();
        let (cert, key) = fixture().cert("misbehaving");
        let child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/mta_sts/policy_host.py"
            ))
            .arg(cert)
            .arg(key)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.policy_host = Some(child);
    }

    async fn send(&self, subject: &str, to: &str) {
        let raw = format!("From: {ALICE}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nhello\r\n");
        self.store
            .enqueue(raw.into_bytes(), ALICE, &[to.to_string()])
            .await
            .unwrap();
    }

    async fn inbox(store: &Store, account: &Account) -> Vec<String> {
        let mb = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
        let mut out = Vec::new();
        for info in store.fetch_info(mb.id, &[1..=u32::MAX]).await.unwrap() {
            let raw = store.content_raw(info.content_id).await.unwrap();
            out.push(String::from_utf8_lossy(&raw).to_string());
        }
        out
    }

    /// The messages of x@`domain` at the mailroom exchangers.
    async fn received_at(&self, domain: &str) -> Vec<String> {
        let account = self
            .mx_store
            .account(&format!("x@{domain}"))
            .await
            .unwrap()
            .unwrap();
        Self::inbox(&self.mx_store, &account).await
    }

    async fn queue_empty(&self) {
        wait_for("the queue to empty", async || {
            self.store.queue_size().await.unwrap() == 0
        })
        .await;
    }

    /// The queue's one entry once it has been tried: its last error.
    async fn deferred(&self) -> String {
        wait_for("a recorded attempt", async || {
            let q = self.store.queue_list().await.unwrap();
            q.first().is_some_and(|e| e.attempts >= 1)
        })
        .await;
        let entry = self.store.queue_list().await.unwrap().remove(0);
        entry.last_error.unwrap_or_default()
    }

    /// The one DSN in alice's INBOX.
    async fn dsn(&self) -> String {
        wait_for("the DSN", async || {
            !Self::inbox(&self.store, &self.alice).await.is_empty()
        })
        .await;
        let inbox = Self::inbox(&self.store, &self.alice).await;
        assert_eq!(inbox.len(), 1);
        inbox[0].clone()
    }

    async fn finish(mut self) {
        self.stop.cancel();
        (&mut self.worker).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn enforce_defers_plain_text_then_bounces_with_5_7_10() {
    let w = world(Duration::from_secs(4), |_| {}).await;
    w.send("plain under enforce", "x@enforce-plain.test").await;
    let error = w.deferred().await;
    assert!(
        error.starts_with("4.7.10 MTA-STS policy of enforce-plain.test (enforce)"),
        "{error}"
    );
    assert!(error.contains("STARTTLS"), "{error}");
    let cached = w
        .store
        .mta_sts_policy("enforce-plain.test")
        .await
        .unwrap()
        .expect("the policy is cached");
    assert_eq!(cached.policy_id, "enforce1");
    assert!(cached.policy.contains("mode: enforce"), "{}", cached.policy);
    let dsn = w.dsn().await;
    assert!(
        dsn.contains("Final-Recipient: rfc822; x@enforce-plain.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.7.10"), "{dsn}");
    assert!(dsn.contains("MTA-STS"), "{dsn}");
    w.queue_empty().await;
    assert!(w.plain.received().is_empty(), "nothing went in plain text");
    assert_eq!(w.plain.rcpt_attempts(), 0);
    w.finish().await;
}

#[tokio::test]
async fn testing_mode_delivers_in_plain_text() {
    let w = world(Duration::from_secs(600), |_| {}).await;
    w.send("plain under testing", "x@testing-plain.test").await;
    w.queue_empty().await;
    let received = w.plain.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1, vec!["x@testing-plain.test"]);
    let cached = w.store.mta_sts_policy("testing-plain.test").await.unwrap();
    assert!(cached.unwrap().policy.contains("mode: testing"));
    assert!(World::inbox(&w.store, &w.alice).await.is_empty(), "no DSN");
    w.finish().await;
}

#[tokio::test]
async fn enforce_delivers_over_starttls_with_a_valid_certificate() {
    let w = world(Duration::from_secs(600), |_| {}).await;
    w.send("validated", "x@enforce-tls.test").await;
    w.queue_empty().await;
    let received = w.received_at("enforce-tls.test").await;
    assert_eq!(received.len(), 1);
    assert!(
        received[0].contains("Subject: validated"),
        "{}",
        received[0]
    );
    assert!(
        received[0].contains("with ESMTPS"),
        "over TLS: {}",
        received[0]
    );
    assert!(World::inbox(&w.store, &w.alice).await.is_empty(), "no DSN");
    w.finish().await;
}

#[tokio::test]
async fn enforce_refuses_a_certificate_for_another_name() {
    let w = world(Duration::from_secs(600), |_| {}).await;
    w.send("wrong name", "x@enforce-wrongname.test").await;
    let error = w.deferred().await;
    assert!(
        error.starts_with("4.7.5 MTA-STS policy of enforce-wrongname.test (enforce): TLS with mx1.enforce-wrongname.test"),
        "{error}"
    );
    assert!(error.contains("invalid peer certificate"), "{error}");
    // A second attempt fails the same way: nothing is delivered meanwhile.
    wait_for("a second attempt", async || {
        let q = w.store.queue_list().await.unwrap();
        q.first().is_some_and(|e| e.attempts >= 2)
    })
    .await;
    assert!(w.received_at("enforce-wrongname.test").await.is_empty());
    assert!(
        World::inbox(&w.store, &w.alice).await.is_empty(),
        "deferred, not bounced"
    );
    w.finish().await;
}

#[tokio::test]
async fn enforce_does_not_contact_mx_hosts_the_policy_does_not_list() {
    let w = world(Duration::from_secs(600), |_| {}).await;
    w.send("unlisted", "x@enforce-unlisted.test").await;
    let error = w.deferred().await;
    assert!(
        error.starts_with("4.7.5 MTA-STS policy of enforce-unlisted.test (enforce): MX host mail.enforce-unlisted.test is not listed"),
        "{error}"
    );
    assert_eq!(w.plain.rcpt_attempts(), 0);
    assert!(w.plain.received().is_empty());
    w.finish().await;
}

/// ... and messages to that domain tried together cause one fetch, not one each,
/// and later ones none for a while (RFC 8461 §3.3: rate-limit fetches).
#[tokio::test]
async fn a_policy_that_cannot_be_fetched_and_was_never_cached_is_no_policy() {
    let w = world(Duration::from_secs(600), |_| {}).await;
    for i in 0..3 {
        w.send(&format!("policy host down {i}"), "x@policy-down.test")
            .await;
    }
    w.queue_empty().await;
    assert_eq!(w.plain.received().len(), 3);
    w.send("policy host still down", "x@policy-down.test").await;
    w.queue_empty().await;
    assert_eq!(w.plain.received().len(), 4);
    let tries = w
        .policy_down_tries
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(tries, 1, "one fetch for four messages");
    assert_eq!(
        w.store.mta_sts_policy("policy-down.test").await.unwrap(),
        None
    );
    w.finish().await;
}

#[tokio::test]
async fn a_cached_policy_outlives_its_txt_record_until_it_expires() {
    let w = world(Duration::from_secs(600), |_| {}).await;
    // cached.test publishes no TXT record (any more): its cached enforce policy
    // stays in force (RFC 8461 §5.1), so the plain-text MX is refused.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let policy = "version: STSv1\r\nmode: enforce\r\nmx: mx.cached.test\r\nmax_age: 86400\r\n";
    w.store
        .put_mta_sts_policy(CachedMtaStsPolicy {
            domain: "cached.test".into(),
            policy_id: "old".into(),
            policy: policy.into(),
            fetched_at: now,
            expires_at: now + 86400,
        })
        .await
        .unwrap();
    w.send("downgrade", "x@cached.test").await;
    let error = w.deferred().await;
    assert!(
        error.starts_with("4.7.10 MTA-STS policy of cached.test"),
        "{error}"
    );
    assert!(w.plain.received().is_empty());
    // Once it has expired it is no policy: the retry delivers.
    w.store
        .put_mta_sts_policy(CachedMtaStsPolicy {
            domain: "cached.test".into(),
            policy_id: "old".into(),
            policy: policy.into(),
            fetched_at: now - 86400,
            expires_at: now - 1,
        })
        .await
        .unwrap();
    w.queue_empty().await;
    assert_eq!(w.plain.received().len(), 1);
    w.finish().await;
}

#[tokio::test]
async fn with_mta_sts_off_enforce_is_not_applied() {
    let w = world(Duration::from_secs(600), |c| c.relay.mta_sts = false).await;
    w.send("off", "x@enforce-plain.test").await;
    w.queue_empty().await;
    assert_eq!(w.plain.received().len(), 1);
    assert_eq!(
        w.store.mta_sts_policy("enforce-plain.test").await.unwrap(),
        None
    );
    w.finish().await;
}

/// Policies fetched against the rules of RFC 8461 §3.3 are no policies: a
/// redirect, a media type other than text/plain, more than 64 KiB, a certificate
/// not valid for the policy host. Each of those hosts serves an enforce policy
/// that lists only nowhere.invalid, so a policy wrongly taken would keep the mail
/// from the real MX; the control domain (good.test, the same policy served
/// properly) shows that it would.
#[tokio::test]
async fn policies_fetched_against_the_rules_are_not_used() {
    let mut w = world(Duration::from_secs(600), |_| {}).await;
    w.misbehaving_policy_host();
    for domain in ["redirect", "html", "huge", "badcert"] {
        w.send(domain, &format!("x@{domain}.test")).await;
    }
    wait_for("four deliveries", async || w.plain.received().len() == 4).await;
    for domain in ["redirect", "html", "huge", "badcert"] {
        let domain = format!("{domain}.test");
        assert_eq!(
            w.store.mta_sts_policy(&domain).await.unwrap(),
            None,
            "{domain}"
        );
    }
    w.send("control", "x@good.test").await;
    wait_for("the control to be deferred", async || {
        let q = w.store.queue_list().await.unwrap();
        q.iter().any(|e| e.attempts >= 1)
    })
    .await;
    let entry = w.store.queue_list().await.unwrap().remove(0);
    let error = entry.last_error.unwrap_or_default();
    assert!(
        error.starts_with("4.7.5 MTA-STS policy of good.test (enforce): MX host mx.good.test is not listed (mx: nowhere.invalid)"),
        "{error}"
    );
    assert_eq!(w.plain.received().len(), 4);
    w.finish().await;
}
