//! SCRAM-SHA-256 against an independent implementation: Python's `scramp` (PyPI)
//! drives AUTH over STARTTLS (tests/interop/smtp/scram_scramp.py). Skipped with a
//! message when python3 or scramp is missing, unless `CI` is set (then it fails).
#![allow(clippy::unwrap_used)]

mod tlsauth;

use mailroom_smtp::Mode;

#[tokio::test]
async fn scram_sha_256_with_python_scramp() {
    let h = tlsauth::start(Mode::Submission, false, |_| {}).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/smtp/scram_scramp.py"
    );
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg("--port")
        .arg(h.addr.port().to_string())
        .arg("--cafile")
        .arg(h.tls.cert_path())
        .args(["--user", "alice@example.org", "--password", "pw-alice"])
        .output()
        .await;
    let in_ci = std::env::var_os("CI").is_some();
    let output = match output {
        Ok(output) => output,
        Err(error) if !in_ci => {
            eprintln!("SKIPPED: python3 is not available ({error})");
            return;
        }
        Err(error) => panic!("python3 is required in CI: {error}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(77) {
        assert!(!in_ci, "scramp is required in CI: {stdout}");
        eprintln!("SKIPPED: {stdout}");
        return;
    }
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("server signature verified by scramp"),
        "{stdout}"
    );
    h.stop().await;
}
