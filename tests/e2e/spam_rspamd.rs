#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! Spam filtering with the real rspamd daemon (Debian package `rspamd`), started by
//! this test binary with a minimal local configuration: no Lua rules, hence no
//! network lookups (no DNS lists, no fuzzy, no SPF/DKIM of its own), a DNS resolver
//! that answers nothing, and Bayes statistics in SQLite files of a temporary
//! directory. What it does is rspamd's own: the GTUBE test patterns (reject,
//! add header, rewrite subject) and Bayes learning.
//!
//! One rspamd serves the whole binary; the test that stops rspamd starts its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailroom_testkit::TestServer;

const PASSWORD: &str = "learn-secret";

/// The GTUBE patterns rspamd recognises (its `enable_test_patterns` option).
const GTUBE_REJECT: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const GTUBE_ADD_HEADER: &str =
    "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const GTUBE_REWRITE_SUBJECT: &str =
    "ZJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// A running rspamd: its normal worker (scans) and controller (learning, stats).
struct Rspamd {
    normal: SocketAddr,
    controller: SocketAddr,
    dir: tempfile::TempDir,
    /// The watchdog shell: rspamd is stopped when its standard input closes, which
    /// happens when this process exits, however it exits.
    watchdog: Child,
    stdin: Option<ChildStdin>,
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn write_config(dir: &Path, normal: SocketAddr, controller: SocketAddr) {
    // A handful of top-level domains instead of the public suffix list, whose
    // compilation takes minutes on a small machine.
    std::fs::write(
        dir.join("tld.dat"),
        "com\norg\nnet\ninvalid\ntest\nexample\n",
    )
    .unwrap();
    let d = dir.display();
    let config = format!(
        r#"
options {{
  pidfile = "{d}/rspamd.pid";
  dns {{ nameserver = ["127.0.0.1:1"]; timeout = 0.1s; retransmits = 0; }}
  enable_test_patterns = true;
  url_tld = "{d}/tld.dat";
  hs_cache_dir = "{d}/";
  tempdir = "{d}/";
}}
logging {{ type = "file"; filename = "{d}/rspamd.log"; level = "info"; }}
worker "normal" {{ bind_socket = "{normal}"; count = 1; task_timeout = 8s; }}
worker "controller" {{
  bind_socket = "{controller}"; count = 1;
  password = "{PASSWORD}"; enable_password = "{PASSWORD}"; secure_ip = [];
}}
actions {{ reject = 15; add_header = 6; greylist = 4; }}
classifier "bayes" {{
  tokenizer {{ name = "osb"; }}
  backend = "sqlite3";
  min_tokens = 11;
  min_learns = 1;
  statfile {{ symbol = "BAYES_HAM"; spam = false; path = "{d}/bayes.ham.sqlite"; }}
  statfile {{ symbol = "BAYES_SPAM"; spam = true; path = "{d}/bayes.spam.sqlite"; }}
}}
"#
    );
    std::fs::write(dir.join("rspamd.conf"), config).unwrap();
}

impl Rspamd {
    /// Starts rspamd on fresh ports and waits until both workers answer. With
    /// `shared`, its directory is removed by the watchdog when rspamd stops.
    fn start(shared: bool) -> Rspamd {
        let dir = tempfile::tempdir().unwrap();
        let (normal, controller) = (free_port(), free_port());
        write_config(dir.path(), normal, controller);
        let mut rspamd = Rspamd::spawn(dir, normal, controller, shared);
        rspamd.wait_ready();
        rspamd
    }

    fn spawn(
        dir: tempfile::TempDir,
        normal: SocketAddr,
        controller: SocketAddr,
        remove_dir: bool,
    ) -> Rspamd {
        let found = Command::new("rspamd")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "rspamd is not installed: `apt-get install rspamd` (.ci/run installs it)"
        );
        let d = dir.path().display().to_string();
        let cleanup = if remove_dir {
            format!("; rm -rf {d}")
        } else {
            String::new()
        };
        // `-f`: stay in the foreground; `-i`: allowed to run as root (CI runs as
        // root). The shell stops rspamd when its standard input reaches EOF.
        let script = format!(
            "rspamd -f -i -c {d}/rspamd.conf --var=DBDIR={d} --var=RUNDIR={d} --var=LOGDIR={d} \
             >{d}/stdout.log 2>&1 & pid=$!; cat >/dev/null; kill $pid; wait $pid{cleanup}"
        );
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = watchdog.stdin.take();
        Rspamd {
            normal,
            controller,
            dir,
            watchdog,
            stdin,
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        for addr in [self.normal, self.controller] {
            loop {
                if http_get(addr, "/ping", "").is_some_and(|body| body.contains("pong")) {
                    break;
                }
                if let Ok(Some(status)) = self.watchdog.try_wait() {
                    panic!("rspamd exited ({status}): {}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "rspamd did not answer on {addr} within 180 s: {}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let text = read("stdout.log") + &read("rspamd.log");
        text.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    }

    /// Stops rspamd and waits until it is gone.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.watchdog.wait();
    }

    /// Starts it again, same ports, same statistics.
    fn restart(&mut self) {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        *self = Rspamd::spawn(dir, self.normal, self.controller, false);
        self.wait_ready();
    }

    fn url(&self) -> String {
        format!("http://{}", self.normal)
    }

    fn controller_url(&self) -> String {
        format!("http://{}", self.controller)
    }

    /// The controller's `/stat` revision (learn count) of the BAYES_SPAM or
    /// BAYES_HAM statistics file (asked again while the controller is busy).
    fn learned(&self, symbol: &str) -> i64 {
        let mut last = String::new();
        for _ in 0..50 {
            if let Some(body) = http_get(self.controller, "/stat", PASSWORD) {
                let revision = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|stat| {
                        stat["statfiles"]
                            .as_array()?
                            .iter()
                            .find(|s| s["symbol"] == symbol)?["revision"]
                            .as_i64()
                    });
                if let Some(revision) = revision {
                    return revision;
                }
                last = body;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("no {symbol} revision in /stat: {last}");
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The body of a GET, or None when rspamd does not answer (yet). HTTP/1.0, so the
/// answer ends with the connection.
fn http_get(addr: SocketAddr, path: &str, password: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nPassword: {password}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The rspamd every test but the stopping one shares. It is never dropped: its
/// watchdog stops it, and removes its directory, when this process exits.
fn shared() -> &'static Rspamd {
    static SHARED: OnceLock<Rspamd> = OnceLock::new();
    SHARED.get_or_init(|| Rspamd::start(true))
}

async fn server(rspamd: &Rspamd, timeout: Duration) -> TestServer {
    // mailroom's log in the output of a failing test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_test_writer()
        .try_init();
    let (url, controller) = (rspamd.url(), rspamd.controller_url());
    let server = TestServer::start_with(move |c| {
        c.spam.rspamd_url = Some(url);
        c.spam.controller_url = Some(controller);
        c.spam.password = Some(mailroom_config::Secret(PASSWORD.into()));
        c.spam.timeout = timeout;
    })
    .await
    .unwrap();
    server
        .create_user("alice@example.org", "secret")
        .await
        .unwrap();
    server
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.net>\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The raw bytes of every message in one of alice's mailboxes, by UID.
async fn messages_in(server: &TestServer, name: &str) -> Vec<String> {
    let account = server
        .store
        .account("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    let mailbox = server
        .store
        .mailbox(account.id, name)
        .await
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    for info in server
        .store
        .fetch_info(mailbox.id, &[1..=u32::MAX])
        .await
        .unwrap()
    {
        let raw = server.store.content_raw(info.content_id).await.unwrap();
        out.push(String::from_utf8(raw).unwrap());
    }
    out
}

#[tokio::test]
async fn gtube_is_refused_with_550_and_nothing_is_stored() {
    let rspamd = shared();
    let server = server(rspamd, Duration::from_secs(10)).await;
    let err = server
        .send_raw(
            "bob@example.net",
            &["alice@example.org"],
            &message("gtube", GTUBE_REJECT),
        )
        .await
        .expect_err("GTUBE is refused");
    let text = err.to_string();
    assert!(text.contains("550") && text.contains("5.7.1"), "{text}");
    assert!(text.contains("Gtube pattern"), "rspamd's message: {text}");
    assert!(messages_in(&server, "INBOX").await.is_empty());
    assert!(messages_in(&server, "Junk").await.is_empty());
}

#[tokio::test]
async fn a_clean_message_reaches_inbox_with_the_scan_headers() {
    let rspamd = shared();
    let server = server(rspamd, Duration::from_secs(10)).await;
    server
        .send_raw(
            "bob@example.net",
            &["alice@example.org"],
            &message("lunch", "Shall we have lunch at noon on Friday?"),
        )
        .await
        .unwrap();
    let inbox = messages_in(&server, "INBOX").await;
    assert_eq!(inbox.len(), 1);
    let m = &inbox[0];
    assert!(m.contains("X-Spam-Status: No, score="), "{m}");
    assert!(m.contains("X-Spam-Action: no action\r\n"), "{m}");
    assert!(m.contains("X-Spam-Score: "), "{m}");
    assert!(
        m.contains("\r\n\r\nShall we have lunch at noon on Friday?\r\n"),
        "{m}"
    );
}

#[tokio::test]
async fn add_header_and_rewrite_subject_land_in_junk() {
    let rspamd = shared();
    let server = server(rspamd, Duration::from_secs(10)).await;
    for (subject, pattern) in [
        ("add-header", GTUBE_ADD_HEADER),
        ("rewrite-subject", GTUBE_REWRITE_SUBJECT),
    ] {
        server
            .send_raw(
                "bob@example.net",
                &["alice@example.org"],
                &message(subject, pattern),
            )
            .await
            .unwrap();
    }
    assert!(messages_in(&server, "INBOX").await.is_empty());
    let junk = messages_in(&server, "Junk").await;
    assert_eq!(junk.len(), 2);
    assert!(
        junk[0].contains("X-Spam-Status: Yes, score="),
        "{}",
        junk[0]
    );
    assert!(junk[0].contains("X-Spam-Action: add header\r\n"));
    assert!(junk[0].contains("X-Spam-Symbols: GTUBE("), "{}", junk[0]);
    assert!(junk[1].contains("X-Spam-Action: rewrite subject\r\n"));
}

/// Words enough for Bayes (rspamd learns nothing from fewer than 11 tokens), unique
/// to this run so that rspamd has not learned them before.
fn long_text(topic: &str) -> String {
    let nonce = std::process::id();
    format!(
        "Dear customer {nonce}, our {topic} offer ends tonight: order now and receive \
         the exclusive {topic} discount, free shipping worldwide, no prescription, \
         satisfaction guaranteed, reply today to claim reward number {nonce}."
    )
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn moves_into_and_out_of_junk_over_imap_are_learned() {
    let rspamd = shared();
    let server = server(rspamd, Duration::from_secs(10)).await;
    server
        .send_raw(
            "bob@example.net",
            &["alice@example.org"],
            &message("pills", &long_text("pharmacy")),
        )
        .await
        .unwrap();
    let (spam_before, ham_before) = (rspamd.learned("BAYES_SPAM"), rspamd.learned("BAYES_HAM"));

    let mut imap = server.imap().await.unwrap();
    imap.login("alice@example.org", "secret").await.unwrap();
    assert!(imap.command("SELECT INBOX").await.unwrap().ok());
    let started = Instant::now();
    let moved = imap.command("UID MOVE 1 Junk").await.unwrap();
    assert!(moved.ok(), "{moved:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "MOVE does not wait for rspamd"
    );
    wait_for("learnspam", async || {
        rspamd.learned("BAYES_SPAM") > spam_before
    })
    .await;
    wait_for("the training queue to empty", async || {
        server.store.spam_training_pending().await.unwrap() == 0
    })
    .await;

    // Out of Junk again (a false positive): learned as ham.
    assert!(imap.command("SELECT Junk").await.unwrap().ok());
    assert!(imap.command("UID MOVE 1 INBOX").await.unwrap().ok());
    wait_for("learnham", async || {
        rspamd.learned("BAYES_HAM") > ham_before
    })
    .await;
    // Into Trash from Junk teaches nothing.
    assert!(imap.command("SELECT INBOX").await.unwrap().ok());
    assert!(imap.command("UID MOVE 2 Trash").await.unwrap().ok());
    assert_eq!(server.store.spam_training_pending().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rspamd_stopped_mid_test_loses_nothing() {
    let mut rspamd = Rspamd::start(false);
    let server = server(&rspamd, Duration::from_secs(10)).await;
    server
        .send_raw(
            "bob@example.net",
            &["alice@example.org"],
            &message("before", "Scanned while rspamd runs."),
        )
        .await
        .unwrap();
    rspamd.stop();

    // Down: the message is accepted, delivered to INBOX, marked unscanned.
    server
        .send_raw(
            "bob@example.net",
            &["alice@example.org"],
            &message("during", &long_text("outage")),
        )
        .await
        .unwrap();
    let inbox = messages_in(&server, "INBOX").await;
    assert_eq!(inbox.len(), 2);
    assert!(inbox[0].contains("X-Spam-Action: no action"));
    assert!(
        inbox[1].contains("X-Spam-Status: Unscanned, reason=unavailable\r\n"),
        "{}",
        inbox[1]
    );
    let metrics = reqwest::get(format!("{}/metrics", server.http_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mailroom_spam_unscanned_total{reason=\"unavailable\"} 1"),
        "{metrics}"
    );

    // A move into Junk while rspamd is down waits in the queue...
    let mut imap = server.imap().await.unwrap();
    imap.login("alice@example.org", "secret").await.unwrap();
    assert!(imap.command("SELECT INBOX").await.unwrap().ok());
    assert!(imap.command("UID MOVE 2 Junk").await.unwrap().ok());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server.store.spam_training_pending().await.unwrap(), 1);

    // ...and is learned once rspamd is back.
    tokio::task::block_in_place(|| rspamd.restart());
    wait_for("learnspam after the restart", async || {
        server.store.spam_training_pending().await.unwrap() == 0
    })
    .await;
    assert_eq!(
        rspamd.learned("BAYES_SPAM"),
        1,
        "this rspamd learned that message"
    );
}
