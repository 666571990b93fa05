#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! Real third-party clients against the real binary: the scripts of tests/interop
//! (Python imaplib, imapclient, smtplib, swaks) run against `mailroom serve`.
//!
//! A client that is not installed skips its test with a note, except in CI
//! (`CI` set), where `.ci/run` installs them all and a missing one is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// False (after a note) when `check` fails and we are not in CI; panics in CI.
fn tool_available(name: &str, check: &mut Command) -> bool {
    let ok = check.output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{name} is not installed, and CI must run every interop test (.ci/run installs it)"
            );
        }
        eprintln!("skipping: {name} is not installed (see tests/interop/README.md)");
    }
    ok
}

/// The accounts the interop scripts expect (see their READMEs).
fn provision(dir: &Path) {
    let mr = |args: &[&str], stdin: Option<&str>| {
        let out = run(mailroom(dir).arg("-c").arg("m.toml").args(args), stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    mr(&["domain", "add", "example.org"], None);
    mr(&["domain", "add", "catchall.test"], None);
    mr(
        &["user", "add", "joe@example.org", "--password-stdin"],
        Some("secret pass\n"),
    );
    mr(
        &["user", "add", "alice@example.org", "--password-stdin"],
        Some("alice-pw\n"),
    );
    mr(
        &["user", "add", "bob@example.org", "--password-stdin"],
        Some("bob-pw\n"),
    );
    mr(
        &["alias", "add", "info@example.org", "alice@example.org"],
        None,
    );
    mr(&["alias", "add", "@catchall.test", "bob@example.org"], None);
}

fn start(env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "data_dir = \"store\"\nhostname = \"mx.example.org\"\n",
    )
    .unwrap();
    provision(dir.path());
    let server = start_server_with(dir.path(), env);
    (dir, server)
}

fn script(cmd: &mut Command) {
    let out = cmd.current_dir(repo()).output().expect("script runs");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{all}");
    assert!(all.contains("ok"), "the script reported no checks:\n{all}");
}

#[test]
fn python_imaplib_suite() {
    if !tool_available("python3", Command::new("python3").arg("--version")) {
        return;
    }
    let (_dir, server) = start(&[]);
    script(
        Command::new("python3")
            .arg("tests/interop/imap/imaplib_suite.py")
            .env("IMAP_PORT", server.imap.to_string()),
    );
}

#[test]
fn imapclient_suite() {
    if !tool_available(
        "python3 imapclient",
        Command::new("python3").args(["-c", "import imapclient"]),
    ) {
        return;
    }
    let (_dir, server) = start(&[]);
    script(
        Command::new("python3")
            .arg("tests/interop/imap/imapclient_suite.py")
            .env("IMAP_PORT", server.imap.to_string()),
    );
}

#[test]
fn imapclient_qresync() {
    if !tool_available(
        "python3 imapclient",
        Command::new("python3").args(["-c", "import imapclient"]),
    ) {
        return;
    }
    let (_dir, server) = start(&[]);
    script(
        Command::new("python3")
            .arg("tests/interop/imap/imapclient_qresync.py")
            .env("IMAP_PORT", server.imap.to_string()),
    );
}

#[test]
fn python_smtplib_then_imaplib() {
    if !tool_available("python3", Command::new("python3").arg("--version")) {
        return;
    }
    let (_dir, server) = start(&[]);
    script(Command::new("python3").args([
        "tests/interop/smtp/smtplib_send.py",
        "--port",
        &server.smtp.to_string(),
        "--imap-port",
        &server.imap.to_string(),
    ]));
}

#[test]
fn swaks() {
    if !tool_available("swaks", Command::new("swaks").arg("--version")) {
        return;
    }
    let lmtp = free_port();
    let lmtp_listen = format!("127.0.0.1:{lmtp}");
    let (_dir, server) = start(&[("MAILROOM_LMTP__LISTEN", &lmtp_listen)]);
    script(Command::new("bash").args([
        "tests/interop/smtp/swaks.sh",
        &format!("127.0.0.1:{}", server.smtp),
        &lmtp_listen,
    ]));
}

#[test]
fn mbsync_two_way_sync() {
    if !tool_available("mbsync (isync)", Command::new("mbsync").arg("--version")) {
        return;
    }
    let (_dir, server) = start(&[]);
    script(
        Command::new("python3")
            .arg("tests/interop/mbsync/sync_test.py")
            .env("IMAP_PORT", server.imap.to_string()),
    );
}

/// openssl s_client: implicit TLS on imaps and submissions, STARTTLS on IMAP and
/// SMTP, with the certificate mailroom generated on first start.
#[test]
fn openssl_s_client_on_every_tls_listener() {
    if !tool_available("openssl", Command::new("openssl").arg("version")) {
        return;
    }
    let (imaps, submissions, submission) = (free_port(), free_port(), free_port());
    let (imaps_l, subs_l, sub_l) = (
        format!("127.0.0.1:{imaps}"),
        format!("127.0.0.1:{submissions}"),
        format!("127.0.0.1:{submission}"),
    );
    let (dir, server) = start(&[
        ("MAILROOM_IMAPS__LISTEN", &imaps_l),
        ("MAILROOM_SUBMISSIONS__LISTEN", &subs_l),
        ("MAILROOM_SUBMISSION__LISTEN", &sub_l),
    ]);
    let cert = dir.path().join("store/tls/cert.pem");
    assert!(cert.is_file(), "a self-signed certificate was generated");
    let probe = |args: &[&str], input: &str, expect: &str| {
        let mut child = Command::new("openssl")
            .args(["s_client", "-CAfile"])
            .arg(&cert)
            .args(["-verify_return_error", "-servername", "mx.example.org"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            all.contains("Verify return code: 0 (ok)"),
            "{args:?}: certificate not verified:\n{all}"
        );
        assert!(
            all.contains(expect),
            "{args:?}: expected {expect:?}:\n{all}"
        );
    };
    probe(
        &["-connect", &imaps_l],
        "a CAPABILITY\r\na LOGOUT\r\n",
        "AUTH=SCRAM-SHA-256",
    );
    probe(
        &[
            "-connect",
            &format!("127.0.0.1:{}", server.imap),
            "-starttls",
            "imap",
        ],
        "a CAPABILITY\r\na LOGOUT\r\n",
        "a OK",
    );
    probe(&["-connect", &subs_l], "EHLO probe\r\nQUIT\r\n", "AUTH");
    probe(
        &["-connect", &sub_l, "-starttls", "smtp"],
        "EHLO probe\r\nQUIT\r\n",
        "AUTH",
    );
    probe(
        &[
            "-connect",
            &format!("127.0.0.1:{}", server.smtp),
            "-starttls",
            "smtp",
        ],
        "EHLO probe\r\nQUIT\r\n",
        "250",
    );
}

/// curl drives the test API's long poll; openapi-spec-validator (PyPI) checks the
/// published OpenAPI document and every documented route answers.
#[test]
fn http_api_with_curl_and_openapi_validator() {
    if !tool_available("curl", Command::new("curl").arg("--version"))
        || !tool_available(
            "python3 venv",
            Command::new("python3").args(["-c", "import venv, ensurepip"]),
        )
    {
        return;
    }
    let http = free_port();
    let http_l = format!("127.0.0.1:{http}");
    let (dir, server) = start(&[
        ("MAILROOM_HTTP__LISTEN", &http_l),
        ("MAILROOM_HTTP__ADMIN_TOKEN", "interop-token"),
        ("MAILROOM_TEST_MODE__ENABLED", "true"),
    ]);
    let base = format!("http://{http_l}");
    script(
        Command::new("bash")
            .arg("tests/interop/http/long_poll.sh")
            .env("BASE", &base)
            .env("TOKEN", "interop-token")
            .env("SMTP", format!("127.0.0.1:{}", server.smtp)),
    );
    // The validator goes into a virtual environment kept between runs under target/.
    let venv = repo().join("target/interop-venv");
    let out = Command::new("bash")
        .arg("tests/interop/http/validate_openapi.sh")
        .current_dir(repo())
        .env("BASE", &base)
        .env("TOKEN", "interop-token")
        .env("VENV", &venv)
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "validate_openapi.sh failed:\n{all}");
    drop(dir);
}

/// Python's ssl module: imaplib over implicit TLS and STARTTLS, LOGINDISABLED before
/// TLS, the certificate checked against the one mailroom generated, and SCRAM-SHA-256
/// through scramp (an independent implementation, PyPI).
#[test]
fn python_ssl_and_scram_suite() {
    if !tool_available(
        "python3 scramp",
        Command::new("python3").args(["-c", "import scramp"]),
    ) {
        return;
    }
    let imaps = free_port();
    let imaps_l = format!("127.0.0.1:{imaps}");
    let (dir, server) = start(&[
        ("MAILROOM_IMAPS__LISTEN", &imaps_l),
        ("MAILROOM_AUTH__ALLOW_PLAINTEXT", "false"),
    ]);
    script(
        Command::new("python3")
            .arg("tests/interop/imap/tls_suite.py")
            .env("IMAP_HOST", "localhost")
            .env("IMAP_PORT", server.imap.to_string())
            .env("IMAPS_PORT", imaps.to_string())
            .env("IMAP_CAFILE", dir.path().join("store/tls/cert.pem"))
            .env("IMAP_NO_PLAINTEXT", "1"),
    );
}

/// SIGHUP makes `serve` read `[tls] cert`/`key` again: new handshakes get the new
/// certificate, without a restart.
#[test]
fn sighup_reloads_the_certificate() {
    if !tool_available("openssl", Command::new("openssl").arg("version")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let make_cert = |name: &str| {
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
            ])
            .args([
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                &format!("subjectAltName=DNS:{name}"),
            ])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", text(&status.stderr));
    };
    make_cert("first.example");
    std::fs::write(
        dir.path().join("m.toml"),
        "data_dir = \"store\"\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    )
    .unwrap();
    let imaps = free_port();
    let imaps_l = format!("127.0.0.1:{imaps}");
    let server = start_server_with(dir.path(), &[("MAILROOM_IMAPS__LISTEN", &imaps_l)]);
    let subject = || {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("echo | openssl s_client -connect {imaps_l} 2>/dev/null | openssl x509 -noout -subject"))
            .output()
            .unwrap();
        text(&out.stdout)
    };
    assert!(subject().contains("first.example"), "{}", subject());
    make_cert("second.example");
    assert!(
        Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !subject().contains("second.example") {
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served after SIGHUP"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Python smtplib submits with AUTH over STARTTLS and implicit TLS to the binary's
/// submission listeners; the local recipient then reads the message over IMAP.
#[test]
fn smtplib_submission_then_imap_read() {
    if !tool_available("python3", Command::new("python3").arg("--version")) {
        return;
    }
    let (sub, subs) = (free_port(), free_port());
    let (sub_l, subs_l) = (format!("127.0.0.1:{sub}"), format!("127.0.0.1:{subs}"));
    // Passwords only over TLS, as on a real network. The remote recipient must stay
    // in the queue to be seen there: its smarthost refuses connections (a temporary
    // failure), where direct delivery would depend on this machine's DNS.
    let (dir, server) = start(&[
        ("MAILROOM_SUBMISSION__LISTEN", &sub_l),
        ("MAILROOM_SUBMISSIONS__LISTEN", &subs_l),
        ("MAILROOM_AUTH__ALLOW_PLAINTEXT", "false"),
        ("MAILROOM_RELAY__HOST", "127.0.0.1"),
        ("MAILROOM_RELAY__PORT", "1"),
        ("MAILROOM_RELAY__TLS", "none"),
    ]);
    let cafile = dir.path().join("store/tls/cert.pem");
    script(
        Command::new("python3")
            .arg("tests/interop/smtp/submission_smtplib.py")
            .args([
                "--host",
                "localhost",
                "--port",
                &sub.to_string(),
                "--ssl-port",
                &subs.to_string(),
            ])
            .arg("--cafile")
            .arg(&cafile),
    );
    // The remote recipient waits in the queue; bob, local, reads his copy now.
    let read = format!(
        "import imaplib, ssl\nm = imaplib.IMAP4('localhost', {})\nm.starttls(ssl.create_default_context(cafile={:?}))\n\
         m.login('bob@example.org', 'bob-pw')\nm.select('INBOX')\n\
         typ, data = m.search(None, 'FROM', 'alice@example.org')\nassert typ == 'OK' and data[0].split(), data\n\
         typ, msg = m.fetch(data[0].split()[0], '(BODY.PEEK[HEADER])')\nhead = msg[0][1]\n\
         assert b'Message-ID:' in head and b'Date:' in head and b'Bcc' not in head, head\nprint('ok: bob reads the submitted message')\n",
        server.imap,
        cafile.display().to_string()
    );
    script(Command::new("python3").args(["-c", &read]));
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "queue", "list"]),
        None,
    );
    assert!(
        text(&out.stdout).contains("carol@remote.example"),
        "the remote recipient is queued: {}",
        text(&out.stdout)
    );
}

/// Python's imaplib speaks ACL (RFC 4314) and NAMESPACE (RFC 2342): bob shares a
/// mailbox with SETACL, alice finds it in the shared namespace and reads it.
#[test]
fn python_imaplib_shared_mailbox() {
    if !tool_available("python3", Command::new("python3").arg("--version")) {
        return;
    }
    let (_dir, server) = start(&[]);
    let program = r#"
import imaplib, sys
port = int(sys.argv[1])
bob = imaplib.IMAP4("127.0.0.1", port)
bob.login("bob@example.org", "bob-pw")
assert bob.create("Projects")[0] == "OK"
assert bob.append("Projects", None, None, b"Subject: plan\r\n\r\nhello\r\n")[0] == "OK"
typ, data = bob.setacl("Projects", "alice@example.org", "lrs")
assert typ == "OK", data
typ, data = bob.getacl("Projects")
assert data == [b'"Projects" bob@example.org lrswipkxteacd alice@example.org lrs'], data
alice = imaplib.IMAP4("127.0.0.1", port)
alice.login("alice@example.org", "alice-pw")
typ, data = alice.namespace()
assert data == [b'(("" "/")) (("Shared/" "/")) NIL'], data
typ, data = alice.list('""', '"Shared/*"')
assert b'(\\HasNoChildren) "/" "Shared/bob@example.org/Projects"' in data, data
typ, data = alice.myrights('"Shared/bob@example.org/Projects"')
assert data == [b'"Shared/bob@example.org/Projects" lrs'], data
typ, data = alice.select('"Shared/bob@example.org/Projects"')
assert typ == "OK" and data == [b"1"], (typ, data)
typ, data = alice.fetch("1", "(BODY[])")
assert b"hello" in data[0][1], data
typ, data = alice.store("1", "+FLAGS", "(\\Flagged)")
assert typ == "NO" and b"NOPERM" in data[0], (typ, data)
typ, data = alice.getacl('"Shared/bob@example.org/Projects"')
assert typ == "NO", (typ, data)
assert bob.deleteacl("Projects", "alice@example.org")[0] == "OK"
typ, data = alice.list('""', '"Shared/*"')
assert data == [None], data
print("ok: imaplib setacl/getacl/myrights/namespace/deleteacl on a shared mailbox")
"#;
    script(Command::new("python3").args(["-c", program, &server.imap.to_string()]));
}

/// Fails (in CI and on a developer's machine alike) when a tool of the browser test
/// is missing, naming how to install it.
fn require(name: &str, check: &mut Command, install: &str) {
    let ok = check.output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "{name} is missing: {install} (.ci/run installs it; see tests/interop/README.md)"
    );
}

/// The web portal in headless Chromium (Selenium): sign in with a password, create
/// an app password, read it from the page, then log in over IMAP (imaplib) and
/// submit over SMTP (smtplib) with it. Screenshots of the main pages go to
/// `target/screenshots/portal/`.
#[test]
fn portal_in_a_real_browser() {
    require(
        "chromium",
        Command::new("chromium").arg("--version"),
        "apt-get install chromium",
    );
    require(
        "chromedriver",
        Command::new("chromedriver").arg("--version"),
        "apt-get install chromium-driver",
    );
    require(
        "selenium",
        Command::new("python3").args(["-c", "import selenium"]),
        "python3 -m pip install -r tests/interop/requirements.txt",
    );
    let (http, submission) = (free_port(), free_port());
    let (http_l, sub_l) = (
        format!("127.0.0.1:{http}"),
        format!("127.0.0.1:{submission}"),
    );
    let (dir, server) = start(&[
        ("MAILROOM_HTTP__LISTEN", &http_l),
        ("MAILROOM_SUBMISSION__LISTEN", &sub_l),
    ]);
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "user", "admin", "alice@example.org", "on"]),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let screenshots = repo().join("target/screenshots/portal");
    script(
        Command::new("python3")
            .arg("tests/interop/portal/browser.py")
            .args(["--http-port", &http.to_string()])
            .args(["--imap-port", &server.imap.to_string()])
            .args(["--submission-port", &submission.to_string()])
            .args(["--user", "alice@example.org", "--password", "alice-pw"])
            .arg("--screenshots")
            .arg(&screenshots),
    );
}
