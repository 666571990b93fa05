//! Helpers shared by the binary's tests: run `mailroom` with a clean environment,
//! start `serve` on free loopback ports, wait for it.
#![allow(dead_code)] // each test file uses a different part

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mailroom");

/// A command with a clean environment: no MAILROOM_* from the caller's shell.
pub fn mailroom(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("MAILROOM_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("mailroom starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("mailroom ends")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub struct Server {
    pub child: Child,
    pub imap: u16,
    pub smtp: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_server(dir: &Path) -> Server {
    start_server_with(dir, &[])
}

pub fn start_server_with(dir: &Path, env: &[(&str, &str)]) -> Server {
    let (imap, smtp) = (free_port(), free_port());
    let child = mailroom(dir)
        .args(["--config", "m.toml", "serve"])
        .env("MAILROOM_IMAP__LISTEN", format!("127.0.0.1:{imap}"))
        .env("MAILROOM_SMTP__LISTEN", format!("127.0.0.1:{smtp}"))
        // Every other listener is off unless the test turns it on: tests run in
        // parallel and must not collide on the default ports.
        .env("MAILROOM_LMTP__LISTEN", "[]")
        .env("MAILROOM_HTTP__LISTEN", "[]")
        .env("MAILROOM_SUBMISSION__LISTEN", "[]")
        .env("MAILROOM_IMAPS__LISTEN", "[]")
        .env("MAILROOM_SUBMISSIONS__LISTEN", "[]")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", imap)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut log = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut log);
            }
            panic!("serve exited with {status} before listening:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "serve did not listen within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, imap, smtp }
}
