#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! The binary as a user runs it: configuration errors before binding, management
//! commands against the store of a running server, clean shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::*;

fn http_get(port: u16, path: &str, token: Option<&str>) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("http connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("http answer");
    answer
}

fn write_config(dir: &Path) {
    std::fs::write(
        dir.join("m.toml"),
        "data_dir = \"store\"\n[submission]\nlisten = []\n[http]\nlisten = []\n",
    )
    .expect("config");
}

fn imap_login(port: u16, user: &str, password: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut greeting = String::new();
    reader.read_line(&mut greeting).expect("greeting");
    assert!(greeting.starts_with("* OK"), "{greeting}");
    write!(stream, "a LOGIN \"{user}\" \"{password}\"\r\n").expect("send");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("answer");
        if line.starts_with("a ") {
            return line;
        }
    }
}

#[test]
fn management_commands_work_while_serve_runs() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let mut server = start_server(dir.path());

    // `--config` after the subcommand works as well as before it.
    let out = run(
        mailroom(dir.path()).args(["domain", "add", "example.org", "--config", "m.toml"]),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        mailroom(dir.path()).args([
            "--config",
            "m.toml",
            "user",
            "add",
            "alice@example.org",
            "--password-stdin",
        ]),
        Some("s3cret\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "added user alice@example.org");

    // The running server sees the new account at once.
    assert!(imap_login(server.imap, "alice@example.org", "s3cret").starts_with("a OK"));
    assert!(imap_login(server.imap, "alice@example.org", "wrong").starts_with("a NO"));

    let out = run(
        mailroom(dir.path()).args([
            "-c",
            "m.toml",
            "user",
            "passwd",
            "alice@example.org",
            "--password-stdin",
        ]),
        Some("n3w\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(imap_login(server.imap, "alice@example.org", "n3w").starts_with("a OK"));

    let out = run(
        mailroom(dir.path()).args([
            "-c",
            "m.toml",
            "alias",
            "add",
            "info@example.org",
            "alice@example.org",
        ]),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "alias", "list"]),
        None,
    );
    assert_eq!(
        text(&out.stdout).trim(),
        "info@example.org -> alice@example.org"
    );

    // SMTP to the alias is accepted by the running server.
    let mut smtp = TcpStream::connect(("127.0.0.1", server.smtp)).expect("smtp");
    smtp.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(smtp, "EHLO test\r\nMAIL FROM:<>\r\nRCPT TO:<info@example.org>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n").unwrap();
    let mut all = String::new();
    smtp.read_to_string(&mut all).expect("smtp answers");
    assert!(all.contains("\r\n250 2.0.0"), "{all}");

    // Errors: one line, non-zero exit.
    let out = run(
        mailroom(dir.path()).args([
            "-c",
            "m.toml",
            "user",
            "add",
            "bob@unknown.test",
            "--password-stdin",
        ]),
        Some("x\n"),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unknown.test"), "{err}");
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "user", "add", "bob@example.org"]),
        None,
    );
    assert!(
        !out.status.success(),
        "no password source and no terminal is an error"
    );
    assert!(text(&out.stderr).contains("--password-stdin"));

    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "user", "list"]),
        None,
    );
    assert_eq!(text(&out.stdout).trim(), "alice@example.org");
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "domain", "list"]),
        None,
    );
    assert_eq!(text(&out.stdout).trim(), "example.org");

    // SIGTERM drains and exits 0, logging each listener's address on the way.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains(&format!("127.0.0.1:{}", server.imap))
            && log.contains(&format!("127.0.0.1:{}", server.smtp)),
        "{log}"
    );
    assert!(
        !log.contains("s3cret") && !log.contains("n3w"),
        "passwords never reach the log"
    );
}

#[test]
fn bad_configuration_stops_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("bad.toml"),
        format!("[imap]\nlisten = \"127.0.0.1:{port}\"\n[limits]\nmax_conections = 5\n"),
    )
    .unwrap();
    let out = run(
        mailroom(dir.path()).args(["--config", "bad.toml", "serve"]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("max_conections") && err.contains("bad.toml"),
        "{err}"
    );
    TcpListener::bind(("127.0.0.1", port)).expect("nothing was bound");
    assert!(!dir.path().join("data").exists(), "no store was created");

    let out = run(
        mailroom(dir.path())
            .args(["serve"])
            .env("MAILROOM_LIMITS__MAX_MESSAGE_SIZE", "lots"),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("MAILROOM_LIMITS__MAX_MESSAGE_SIZE"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        mailroom(dir.path()).args(["--config", "missing.toml", "domain", "list"]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.toml"));
}

#[test]
fn a_port_in_use_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = run(
        mailroom(dir.path())
            .args(["serve"])
            .env("MAILROOM_IMAP__LISTEN", format!("127.0.0.1:{port}"))
            .env("MAILROOM_SMTP__LISTEN", "[]")
            .env("MAILROOM_LMTP__LISTEN", "[]"),
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("127.0.0.1:{port}")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn zero_configuration_uses_data_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        mailroom(dir.path()).args(["domain", "add", "example.org"]),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("data/mailroom.sqlite3").is_file());
}

#[test]
fn config_show_prints_effective_values_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mailroom.toml"),
        "hostname = \"mx.example.org\"\n",
    )
    .unwrap();
    let out = run(
        mailroom(dir.path())
            .args(["config", "show"])
            .env("MAILROOM_HTTP__ADMIN_TOKEN", "tok-123")
            .env("MAILROOM_LIMITS__MAX_RECIPIENTS", "7"),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("hostname = \"mx.example.org\""), "{shown}");
    assert!(shown.contains("max_recipients = 7"), "{shown}");
    assert!(shown.contains("admin_token = \"********\""), "{shown}");
    assert!(!shown.contains("tok-123"));
}

#[test]
fn version_is_printed() {
    let out = run(Command::new(BIN).arg("--version"), None);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with(&format!("mailroom {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn bootstrap_creates_the_first_account_once() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let bootstrap = [
        ("MAILROOM_BOOTSTRAP__USER", "admin@example.org"),
        ("MAILROOM_BOOTSTRAP__PASSWORD", "first-pw"),
    ];
    let server = start_server_with(dir.path(), &bootstrap);
    assert!(imap_login(server.imap, "admin@example.org", "first-pw").starts_with("a OK"));
    drop(server);
    // A store that has accounts is left alone: the password is not reset.
    let out = run(
        mailroom(dir.path()).args([
            "-c",
            "m.toml",
            "user",
            "passwd",
            "admin@example.org",
            "--password-stdin",
        ]),
        Some("changed\n"),
    );
    assert!(out.status.success());
    let server = start_server_with(dir.path(), &bootstrap);
    assert!(imap_login(server.imap, "admin@example.org", "changed").starts_with("a OK"));
}

#[test]
fn http_is_ready_and_the_admin_token_is_generated_once() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    std::fs::write(dir.path().join("m.toml"), "data_dir = \"store\"\n").unwrap();
    let http = free_port();
    let server = start_server_with(
        dir.path(),
        &[
            ("MAILROOM_HTTP__LISTEN", &format!("127.0.0.1:{http}")),
            ("MAILROOM_SUBMISSION__LISTEN", "[]"),
            ("MAILROOM_IMAPS__LISTEN", "[]"),
            ("MAILROOM_SUBMISSIONS__LISTEN", "[]"),
        ],
    );
    let ready = http_get(http, "/readyz", None);
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let token = std::fs::read_to_string(dir.path().join("store/admin-token"))
        .expect("token file")
        .trim()
        .to_string();
    assert_eq!(token.len(), 64);
    assert!(http_get(http, "/api/v1/domains", None).starts_with("HTTP/1.1 401"));
    assert!(http_get(http, "/api/v1/domains", Some(&token)).starts_with("HTTP/1.1 200"));
    assert!(
        http_get(http, "/api/v1/test/messages", Some(&token)).starts_with("HTTP/1.1 404"),
        "no test API outside test mode"
    );
    drop(server);
    let _server = start_server_with(
        dir.path(),
        &[
            ("MAILROOM_HTTP__LISTEN", &format!("127.0.0.1:{http}")),
            ("MAILROOM_SUBMISSION__LISTEN", "[]"),
            ("MAILROOM_IMAPS__LISTEN", "[]"),
            ("MAILROOM_SUBMISSIONS__LISTEN", "[]"),
        ],
    );
    let again = std::fs::read_to_string(dir.path().join("store/admin-token")).unwrap();
    assert_eq!(again.trim(), token, "the token survives a restart");
    assert!(http_get(http, "/api/v1/domains", Some(&token)).starts_with("HTTP/1.1 200"));
}

/// `[http] tls_listen`: `serve` puts the same routes behind HTTPS with the one
/// certificate of the mail listeners (here the generated one for `hostname`).
#[test]
fn https_serves_the_mta_sts_policy_with_the_mail_certificate() {
    use rustls_pki_types::pem::PemObject;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "data_dir = \"store\"\nhostname = \"mail.example.org\"\n[mta_sts]\nmode = \"enforce\"\n",
    )
    .unwrap();
    let https = free_port();
    let _server = start_server_with(
        dir.path(),
        &[("MAILROOM_HTTP__TLS_LISTEN", &format!("127.0.0.1:{https}"))],
    );
    mailroom_auth::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls_pki_types::CertificateDer::pem_file_iter(dir.path().join("store/tls/cert.pem"))
            .unwrap()
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("mail.example.org").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", https)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    write!(
        tls,
        "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.org\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\n"),
        "{answer}"
    );
}

#[test]
fn queue_commands_work_on_an_empty_queue() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "queue", "list"]),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "the queue is empty");
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "queue", "show", "42"]),
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("42"), "{}", text(&out.stderr));
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "queue", "delete", "42"]),
        None,
    );
    assert!(!out.status.success());
}

/// Sends IMAP commands after a LOGIN and returns every line up to the tagged
/// answer of the last one.
fn imap_session(port: u16, user: &str, password: &str, commands: &[&str]) -> Vec<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut lines = Vec::new();
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    write!(stream, "a LOGIN \"{user}\" \"{password}\"\r\n").expect("send");
    let mut tags = vec!["a".to_string()];
    for (i, c) in commands.iter().enumerate() {
        write!(stream, "c{i} {c}\r\n").expect("send");
        tags.push(format!("c{i}"));
    }
    let last = format!("{} ", tags.last().expect("a tag"));
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("answer");
        assert!(!line.is_empty(), "connection closed: {lines:?}");
        let done = line.starts_with(&last);
        lines.push(line.trim_end().to_string());
        if done {
            return lines;
        }
    }
}

#[test]
fn acl_commands_make_a_workgroup_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let server = start_server(dir.path());
    let ok = |args: &[&str], stdin: Option<&str>| {
        let out = run(
            mailroom(dir.path()).args(["-c", "m.toml"]).args(args),
            stdin,
        );
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    ok(&["domain", "add", "example.org"], None);
    for user in ["team", "alice", "bob", "carol"] {
        ok(
            &[
                "user",
                "add",
                &format!("{user}@example.org"),
                "--password-stdin",
            ],
            Some("pw\n"),
        );
    }
    for user in ["alice", "bob"] {
        let out = ok(
            &[
                "acl",
                "set",
                "team@example.org",
                "INBOX",
                &format!("{user}@example.org"),
                "lrswipkxte",
            ],
            None,
        );
        assert_eq!(
            out.trim(),
            format!("{user}@example.org has lrswipkxte on team@example.org's INBOX")
        );
    }
    ok(
        &[
            "acl",
            "set",
            "team@example.org",
            "INBOX",
            "bob@example.org",
            "-x",
        ],
        None,
    );
    let out = ok(&["acl", "list", "team@example.org", "inbox"], None);
    assert_eq!(
        out.trim(),
        "team@example.org lrswipkxtea (owner)\nalice@example.org lrswipkxte\nbob@example.org lrswipkte"
    );

    // The running server shows it to alice in the shared namespace, not to carol.
    let r = imap_session(
        server.imap,
        "alice@example.org",
        "pw",
        &[
            "LIST \"\" \"Shared/*\"",
            "MYRIGHTS \"Shared/team@example.org/INBOX\"",
        ],
    );
    assert!(
        r.iter()
            .any(|l| l == "* LIST (\\HasNoChildren) \"/\" \"Shared/team@example.org/INBOX\""),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|l| l == "* MYRIGHTS \"Shared/team@example.org/INBOX\" lrswipkxtecd"),
        "{r:?}"
    );
    let r = imap_session(
        server.imap,
        "carol@example.org",
        "pw",
        &["LIST \"\" \"Shared/*\""],
    );
    assert!(!r.iter().any(|l| l.contains("team@")), "{r:?}");

    let out = ok(
        &[
            "acl",
            "delete",
            "team@example.org",
            "INBOX",
            "alice@example.org",
        ],
        None,
    );
    assert_eq!(
        out.trim(),
        "deleted alice@example.org from team@example.org's INBOX"
    );
    let r = imap_session(
        server.imap,
        "alice@example.org",
        "pw",
        &["LIST \"\" \"Shared/*\""],
    );
    assert!(!r.iter().any(|l| l.contains("team@")), "{r:?}");

    // Errors are one line and a failure status.
    for (args, needle) in [
        (
            vec![
                "acl",
                "set",
                "team@example.org",
                "INBOX",
                "nobody@example.org",
                "lr",
            ],
            "nobody@example.org",
        ),
        (
            vec![
                "acl",
                "set",
                "team@example.org",
                "INBOX",
                "bob@example.org",
                "lrq",
            ],
            "'q'",
        ),
        (
            vec!["acl", "list", "team@example.org", "Nothing"],
            "Nothing",
        ),
        (
            vec!["acl", "list", "ghost@example.org", "INBOX"],
            "ghost@example.org",
        ),
    ] {
        let out = run(
            mailroom(dir.path()).args(["-c", "m.toml"]).args(&args),
            None,
        );
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    drop(server);
}

/// `user quota` shows an account's use, sets and lifts its quota, and the running
/// server's IMAP QUOTA answers (RFC 9208) follow at once.
#[test]
fn user_quota_shows_sets_and_lifts_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let server = start_server(dir.path());
    let cli = |args: &[&str], stdin: Option<&str>| {
        run(
            mailroom(dir.path()).args(["-c", "m.toml"]).args(args),
            stdin,
        )
    };
    let ok = |args: &[&str], stdin: Option<&str>| {
        let out = cli(args, stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    ok(&["domain", "add", "example.org"], None);
    ok(
        &["user", "add", "alice@example.org", "--password-stdin"],
        Some("pw\n"),
    );
    assert_eq!(
        ok(&["user", "quota", "alice@example.org"], None),
        "alice@example.org: 0 bytes used (0), no quota"
    );
    assert_eq!(
        ok(&["user", "quota", "alice@example.org", "2M"], None),
        "alice@example.org: 0 bytes used of 2097152 (2M, 0.0%)"
    );
    let r = imap_session(
        server.imap,
        "alice@example.org",
        "pw",
        &["GETQUOTAROOT INBOX"],
    );
    assert!(
        r.iter().any(|l| l == "* QUOTA \"\" (STORAGE 0 2048)"),
        "{r:?}"
    );
    assert_eq!(
        ok(&["user", "quota", "alice@example.org", "none"], None),
        "alice@example.org: 0 bytes used (0), no quota"
    );
    let r = imap_session(
        server.imap,
        "alice@example.org",
        "pw",
        &["GETQUOTAROOT INBOX"],
    );
    assert!(!r.iter().any(|l| l.starts_with("* QUOTA ")), "{r:?}");

    for (args, says) in [
        (&["user", "quota", "alice@example.org", "lots"][..], "lots"),
        (&["user", "quota", "nobody@example.org", "1G"][..], "nobody"),
    ] {
        let out = cli(args, None);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
}

/// `user admin` turns the portal's admin flag on and off; an unknown account is an
/// error that names it.
#[test]
fn user_admin_sets_and_clears_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let cli = |args: &[&str], stdin: Option<&str>| {
        run(
            mailroom(dir.path()).args(["-c", "m.toml"]).args(args),
            stdin,
        )
    };
    let ok = |args: &[&str], stdin: Option<&str>| {
        let out = cli(args, stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    ok(&["domain", "add", "example.org"], None);
    ok(
        &["user", "add", "alice@example.org", "--password-stdin"],
        Some("pw\n"),
    );
    assert_eq!(
        ok(&["user", "admin", "alice@example.org", "on"], None),
        "alice@example.org is a portal administrator: on"
    );
    let store_dir = dir.path().join("store");
    let admins = || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = mailroom_store::Store::open(&mailroom_store::StoreOptions::new(&store_dir))
                .await
                .unwrap();
            store.admins().await.unwrap()
        })
    };
    assert_eq!(admins(), vec!["alice@example.org"]);
    assert_eq!(
        ok(&["user", "admin", "alice@example.org", "off"], None),
        "alice@example.org is a portal administrator: off"
    );
    assert!(admins().is_empty());
    for (args, says) in [
        (&["user", "admin", "nobody@example.org", "on"][..], "nobody"),
        (
            &["user", "admin", "alice@example.org", "maybe"][..],
            "maybe",
        ),
    ] {
        let out = cli(args, None);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
}
