#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! DKIM signing end to end, on the real binary: keys made with `mailroom dkim
//! generate` while `serve` runs, a message submitted with SMTP AUTH (Python
//! smtplib) to the submission listener, relayed through the queue to a smarthost
//! (mailin-embedded), and verified there by dkimpy, an independent verifier, against
//! the TXT records `dkim generate` printed: for RSA, for Ed25519, and for both keys at
//! once. A tampered body fails. The local recipient's copy, read over IMAP, carries
//! the same signatures.
//!
//! Needs python3 with dkimpy and PyNaCl (`python3 -m pip install -r
//! tests/interop/requirements.txt`, which `.ci/run` does); without them the test
//! fails saying so.

mod common;
#[path = "../../smtp/tests/common/peer.rs"]
mod peer;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mr(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(mailroom(dir).arg("-c").arg("m.toml").args(args), stdin);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn python(code: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", code])
        .output()
        .expect("python3 runs (install it: apt-get install python3)");
    assert!(
        out.status.success(),
        "python failed:\n{code}\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn require_dkimpy() {
    let out = Command::new("python3")
        .args(["-c", "import dkim, nacl"])
        .output()
        .expect("python3 runs (install it: apt-get install python3)");
    assert!(
        out.status.success(),
        "dkimpy and PyNaCl are needed: python3 -m pip install -r tests/interop/requirements.txt\n{}",
        text(&out.stderr)
    );
}

/// dkimpy's verdicts, (algorithm, selector, ok) per signature, topmost first.
fn dkimpy(dir: &Path, message: &[u8], records: &str) -> Vec<(String, String, bool)> {
    std::fs::write(dir.join("check.eml"), message).unwrap();
    std::fs::write(dir.join("records.zone"), records).unwrap();
    let out = Command::new("python3")
        .arg(repo().join("tests/interop/dkim/dkimpy_verify.py"))
        .arg(dir.join("check.eml"))
        .arg(dir.join("records.zone"))
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "dkimpy_verify: {}", text(&out.stderr));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.iter()
        .map(|v| {
            (
                v["a"].as_str().unwrap().to_string(),
                v["s"].as_str().unwrap().to_string(),
                v["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The zone-file lines of `dkim generate`'s output (its comments left out).
fn record_lines(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| l.contains(" IN TXT ")).collect();
    assert_eq!(lines.len(), 1, "one record in {output:?}");
    assert!(lines[0].contains("._domainkey."), "{output}");
    format!("{}\n", lines[0])
}

fn signatures(message: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(message);
    let header = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in header.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(c) = current.as_mut() {
                c.push_str(line);
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(c);
        }
        if line.to_ascii_lowercase().starts_with("dkim-signature:") {
            current = Some(line.to_string());
        }
    }
    out.extend(current);
    out
}

struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    submission: u16,
    sink: peer::Sink,
}

fn submit(setup: &Setup, from: &str, to: &[&str], subject: &str) {
    let message = format!(
        "From: Alice <{from}>\r\nTo: {}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHello  there,   \r\n\r\nthe quarterly figures are attached in spirit.\r\n-- \r\nAlice\r\n",
        to.join(", ")
    );
    python(&format!(
        "import smtplib\ns = smtplib.SMTP('127.0.0.1', {})\ns.login({from:?}, 'alice-pw')\n\
         s.sendmail({from:?}, {to:?}, {message:?}.encode())\ns.quit()\n",
        setup.submission,
        to = to.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    ));
}

/// The smarthost's copy of the message with this subject.
fn relayed(setup: &Setup, subject: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((_, _, data)) = setup
            .sink
            .received()
            .into_iter()
            .find(|(_, _, data)| String::from_utf8_lossy(data).contains(subject))
        {
            return data;
        }
        assert!(
            Instant::now() < deadline,
            "the smarthost did not receive {subject:?} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The local recipient's copy, read over IMAP.
fn local_copy(setup: &Setup, user: &str, subject: &str) -> Vec<u8> {
    let code = format!(
        "import imaplib, sys\nm = imaplib.IMAP4('127.0.0.1', {})\nm.login({user:?}, 'bob-pw')\nm.select('INBOX')\n\
         typ, data = m.search(None, 'SUBJECT', {subject:?})\nassert typ == 'OK' and data[0].split(), data\n\
         typ, msg = m.fetch(data[0].split()[-1], '(BODY.PEEK[])')\nsys.stdout.buffer.write(msg[0][1])\n",
        setup.server.imap
    );
    let out = Command::new("python3")
        .args(["-c", &code])
        .output()
        .unwrap();
    assert!(out.status.success(), "imap: {}", text(&out.stderr));
    out.stdout
}

fn start() -> Setup {
    require_dkimpy();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "data_dir = \"store\"\nhostname = \"mx.example.org\"\n",
    )
    .unwrap();
    for domain in ["rsa.example", "ed.example", "both.example"] {
        mr(dir.path(), &["domain", "add", domain], None);
        for (user, pw) in [("alice", "alice-pw"), ("bob", "bob-pw")] {
            mr(
                dir.path(),
                &[
                    "user",
                    "add",
                    &format!("{user}@{domain}"),
                    "--password-stdin",
                ],
                Some(&format!("{pw}\n")),
            );
        }
    }
    let (relay_port, sink) = peer::smarthost(0, false);
    let submission = free_port();
    let server = start_server_with(
        dir.path(),
        &[
            (
                "MAILROOM_SUBMISSION__LISTEN",
                &format!("127.0.0.1:{submission}"),
            ),
            ("MAILROOM_RELAY__HOST", "127.0.0.1"),
            ("MAILROOM_RELAY__PORT", &relay_port.to_string()),
            ("MAILROOM_RELAY__TLS", "none"),
        ],
    );
    Setup {
        dir,
        server,
        submission,
        sink,
    }
}

#[test]
fn submitted_mail_is_signed_and_verifies_with_dkimpy() {
    let setup = start();
    let dir = setup.dir.path();
    // Keys made while serve runs (another process): the next message uses them.
    let rsa = record_lines(&mr(
        dir,
        &["dkim", "generate", "rsa.example", "--selector", "r1"],
        None,
    ));
    let ed = record_lines(&mr(
        dir,
        &["dkim", "generate", "ed.example", "--algorithm", "ed25519"],
        None,
    ));
    let both_rsa = record_lines(&mr(
        dir,
        &["dkim", "generate", "both.example", "--algorithm", "rsa"],
        None,
    ));
    let both_ed = record_lines(&mr(
        dir,
        &["dkim", "generate", "both.example", "--algorithm", "ed25519"],
        None,
    ));
    assert!(
        rsa.contains("\" \""),
        "an RSA record needs two strings: {rsa}"
    );
    let both = format!("{both_rsa}{both_ed}");
    let listed = mr(dir, &["dkim", "list"], None);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert!(
        listed.contains("rsa.example\tr1\trsa-sha256\tactive"),
        "{listed}"
    );
    let shown = mr(dir, &["dkim", "show", "both.example"], None);
    assert_eq!(shown.matches(" IN TXT ").count(), 2, "{shown}");

    for (domain, records, expect) in [
        ("rsa.example", rsa.as_str(), vec!["rsa-sha256"]),
        ("ed.example", ed.as_str(), vec!["ed25519-sha256"]),
        (
            "both.example",
            both.as_str(),
            vec!["ed25519-sha256", "rsa-sha256"],
        ),
    ] {
        let subject = format!("figures from {domain}");
        submit(
            &setup,
            &format!("alice@{domain}"),
            &["carol@remote.example", &format!("bob@{domain}")],
            &subject,
        );
        let message = relayed(&setup, &subject);
        let verdicts = dkimpy(dir, &message, records);
        let mut algorithms: Vec<&str> = verdicts.iter().map(|v| v.0.as_str()).collect();
        algorithms.sort_unstable();
        assert_eq!(algorithms, expect, "{domain}: {verdicts:?}");
        assert!(
            verdicts.iter().all(|v| v.2),
            "{domain}: dkimpy says {verdicts:?}\n{}",
            String::from_utf8_lossy(&message)
        );

        // A tampered body fails: the verifier can say no.
        let tampered = String::from_utf8_lossy(&message).replace("quarterly", "monthly");
        let verdicts = dkimpy(dir, tampered.as_bytes(), records);
        assert!(
            !verdicts.is_empty() && verdicts.iter().all(|v| !v.2),
            "{domain}: a tampered body verified: {verdicts:?}"
        );

        // The local copy carries the very same signatures, and verifies too.
        let local = local_copy(&setup, &format!("bob@{domain}"), &subject);
        assert_eq!(signatures(&local), signatures(&message), "{domain}");
        assert!(
            dkimpy(dir, &local, records).iter().all(|v| v.2),
            "{domain}: the local copy does not verify"
        );
    }

    // Deleting a key stops its signature at the next message.
    let selector = both_ed.split("._domainkey.").next().unwrap().to_string();
    mr(dir, &["dkim", "delete", "both.example", &selector], None);
    submit(
        &setup,
        "alice@both.example",
        &["carol@remote.example"],
        "after delete",
    );
    let message = relayed(&setup, "after delete");
    let verdicts = dkimpy(dir, &message, &both);
    assert_eq!(verdicts.len(), 1, "only the RSA key is left: {verdicts:?}");
    assert!(
        verdicts[0].0 == "rsa-sha256" && verdicts[0].2,
        "{verdicts:?}"
    );
}

#[test]
fn dns_records_lists_what_the_domain_needs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "data_dir = \"store\"\nhostname = \"mx.example.org\"\n[submissions]\nlisten = \"0.0.0.0:465\"\n",
    )
    .unwrap();
    mr(dir.path(), &["domain", "add", "example.org"], None);
    let generated = record_lines(&mr(
        dir.path(),
        &[
            "dkim",
            "generate",
            "example.org",
            "--algorithm",
            "ed25519",
            "--selector",
            "e1",
        ],
        None,
    ));
    let records = mr(dir.path(), &["dns", "records", "example.org"], None);
    for needle in [
        "example.org. 3600 IN MX 10 mx.example.org.",
        "\"v=spf1 mx -all\"",
        generated.trim(),
        "_dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=quarantine;",
        "_mta-sts.example.org. 3600 IN TXT \"v=STSv1; id=",
        "_smtp._tls.example.org. 3600 IN TXT \"v=TLSRPTv1;",
        "_submissions._tcp.example.org. 3600 IN SRV 0 1 465 mx.example.org.",
    ] {
        assert!(records.contains(needle), "missing {needle:?} in\n{records}");
    }
    let out = run(
        mailroom(dir.path()).args(["-c", "m.toml", "dns", "records", "nowhere.example"]),
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("mailroom domain add nowhere.example"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        mailroom(dir.path()).args([
            "-c",
            "m.toml",
            "dkim",
            "generate",
            "example.org",
            "--selector",
            "e1",
        ]),
        None,
    );
    assert!(!out.status.success(), "a taken selector is refused");
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
}
