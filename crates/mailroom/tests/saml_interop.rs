#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! SAML single sign-on with an independent IdP: pysaml2 (tests/interop/saml/idp.py),
//! started once for this test binary, issues and signs the responses (with the
//! xmlsec1 binary) that `mailroom serve` consumes. One test walks the flow over
//! plain HTTP (tests/interop/saml/login.py), the other in headless Chromium
//! (tests/interop/saml/browser.py), then uses the app password it created over IMAP
//! and SMTP. Screenshots go to `target/screenshots/saml/`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use common::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails, naming how to install it, when a tool the tests need is missing.
fn require(name: &str, check: &mut Command, install: &str) {
    let ok = check.output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "{name} is missing: {install} (.ci/run installs it; see tests/interop/README.md)"
    );
}

/// The pysaml2 IdP of this test binary. It exits when its standard input closes,
/// which happens when this process ends.
struct Idp {
    metadata: PathBuf,
    _child: Child,
    _stdin: ChildStdin,
}

fn idp() -> &'static Idp {
    static IDP: OnceLock<Idp> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    IDP.get_or_init(|| {
        require(
            "pysaml2",
            Command::new("python3").args(["-c", "import saml2"]),
            "python3 -m pip install -r tests/interop/requirements.txt",
        );
        require(
            "xmlsec1",
            Command::new("xmlsec1").arg("--version"),
            "apt-get install xmlsec1",
        );
        let port = free_port();
        let mut child = Command::new("python3")
            .arg("tests/interop/saml/idp.py")
            .args(["--port", &port.to_string()])
            .args(["--user", "alice@example.org:alice-sso:staff,mail-admins"])
            .args(["--user", "bob@example.org:bob-sso"])
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs idp.py");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let metadata = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|rest| rest.split_once(' '))
            .map(|(_, path)| PathBuf::from(path))
            .unwrap_or_else(|| panic!("idp.py did not start: {line:?}"));
        Idp {
            metadata,
            _child: child,
            _stdin: stdin,
        }
    })
}

/// `mailroom serve` with single sign-on through the IdP for example.org.
fn start_sso_server(idp: &Idp) -> (tempfile::TempDir, Server, u16, u16) {
    let dir = tempfile::tempdir().unwrap();
    let (http, submission) = (free_port(), free_port());
    std::fs::write(
        dir.path().join("m.toml"),
        format!(
            r#"data_dir = "store"
hostname = "mx.example.org"

[saml]
idp_metadata = "{}"
idp_name = "pysaml2 test IdP"
base_url = "http://127.0.0.1:{http}"
domains = ["example.org"]
admin_attribute = "groups"
admin_values = ["mail-admins"]
"#,
            idp.metadata.display()
        ),
    )
    .unwrap();
    let mr = |args: &[&str], stdin: Option<&str>| {
        let out = run(
            mailroom(dir.path()).arg("-c").arg("m.toml").args(args),
            stdin,
        );
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    mr(&["domain", "add", "example.org"], None);
    mr(
        &["user", "add", "alice@example.org", "--password-stdin"],
        Some("alice-pw\n"),
    );
    mr(
        &["user", "add", "bob@example.org", "--password-stdin"],
        Some("bob-pw\n"),
    );
    let server = start_server_with(
        dir.path(),
        &[
            ("MAILROOM_HTTP__LISTEN", &format!("127.0.0.1:{http}")),
            (
                "MAILROOM_SUBMISSION__LISTEN",
                &format!("127.0.0.1:{submission}"),
            ),
        ],
    );
    (dir, server, http, submission)
}

fn script(cmd: &mut Command) {
    let out = cmd.current_dir(repo()).output().expect("script runs");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{all}");
    assert!(all.contains("ok:"), "the script reported no checks:\n{all}");
}

/// pysaml2 answers our AuthnRequest; its signed response signs bob in. A replay, a
/// tampered copy and the portal password form for the SSO domain are refused.
#[test]
fn pysaml2_idp_signs_in_over_http() {
    let idp = idp();
    let (_dir, _server, http, _) = start_sso_server(idp);
    script(
        Command::new("python3")
            .arg("tests/interop/saml/login.py")
            .args(["--http-port", &http.to_string()])
            .args(["--user", "bob@example.org", "--password", "bob-sso"])
            .args(["--account-password", "bob-pw"]),
    );
}

/// Headless Chromium signs in through the pysaml2 IdP, creates an app password;
/// IMAP and SMTP take it and refuse the account password.
#[test]
fn sso_in_a_real_browser() {
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
    let idp = idp();
    let (_dir, server, http, submission) = start_sso_server(idp);
    let screenshots = repo().join("target/screenshots/saml");
    script(
        Command::new("python3")
            .arg("tests/interop/saml/browser.py")
            .args(["--http-port", &http.to_string()])
            .args(["--imap-port", &server.imap.to_string()])
            .args(["--submission-port", &submission.to_string()])
            .args(["--user", "alice@example.org"])
            .args(["--idp-password", "alice-sso"])
            .args(["--account-password", "alice-pw"])
            .arg("--screenshots")
            .arg(&screenshots),
    );
}
