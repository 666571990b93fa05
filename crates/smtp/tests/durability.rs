//! Durability (DESIGN.md invariant): a message acknowledged with 250 survives
//! `kill -9`. Several clients deliver to the `mx` example server in a separate
//! process; it is killed with SIGKILL mid-stream, restarted on the same store, and
//! every acknowledged message must be there exactly once.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailroom_store::{Store, StoreOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The `mx` example, built by `cargo test` next to the test binaries.
fn mx_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(|deps| deps.parent()).unwrap();
    debug.join("examples").join("mx")
}

async fn start_mx(data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(mx_binary())
        .env("MX_DATA", data)
        .env("MX_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (cargo test builds the examples)",
                mx_binary().display()
            )
        });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = ready.strip_prefix("ready ").unwrap().to_string();
    (child, addr)
}

async fn reply(reader: &mut BufReader<TcpStream>) -> Option<u16> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line.len() >= 4 && line.as_bytes()[3] == b' ' {
            return line[..3].parse().ok();
        }
    }
}

/// Sends messages until the connection breaks; records the subject of each one
/// answered with 250.
async fn client(addr: String, id: usize, acked: Arc<Mutex<Vec<String>>>) {
    let Ok(stream) = TcpStream::connect(&addr).await else {
        return;
    };
    let mut conn = BufReader::new(stream);
    if reply(&mut conn).await != Some(220) {
        return;
    }
    conn.get_mut()
        .write_all(b"EHLO durability.test\r\n")
        .await
        .ok();
    if reply(&mut conn).await != Some(250) {
        return;
    }
    for n in 0.. {
        let subject = format!("durable-{id}-{n}");
        let envelope = b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n";
        if conn.get_mut().write_all(envelope).await.is_err() {
            return;
        }
        for want in [250, 250, 250, 354] {
            if reply(&mut conn).await != Some(want) {
                return;
            }
        }
        let body = format!("Subject: {subject}\r\n\r\n{}\r\n.\r\n", "x".repeat(2000));
        if conn.get_mut().write_all(body.as_bytes()).await.is_err() {
            return;
        }
        match reply(&mut conn).await {
            Some(250) => acked.lock().unwrap().push(subject),
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start_mx(dir.path()).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|id| tokio::spawn(client(addr.clone(), id, acked.clone())))
        .collect();

    // Let deliveries flow, then SIGKILL in the middle of them.
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if acked.lock().unwrap().len() >= 200 {
            break;
        }
    }
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 10,
        "too few deliveries before the kill: {}",
        acked.len()
    );

    // Restart on the same store: it starts, and answers.
    let (mut server, addr) = start_mx(dir.path()).await;
    let mut conn = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    assert_eq!(reply(&mut conn).await, Some(220));
    server.start_kill().unwrap();
    server.wait().await.unwrap();

    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    store.integrity_check().await.unwrap();
    for address in ["alice@example.org", "bob@example.org"] {
        let account = store.account(address).await.unwrap().unwrap();
        let inbox = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for info in store.fetch_info(inbox.id, &[1..=u32::MAX]).await.unwrap() {
            let raw = store.content_raw(info.content_id).await.unwrap();
            let text = String::from_utf8_lossy(&raw);
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string();
            *seen.entry(subject).or_default() += 1;
        }
        for subject in &acked {
            assert_eq!(
                seen.get(subject),
                Some(&1),
                "{subject} was acknowledged but is in {address}'s INBOX {:?} times",
                seen.get(subject)
            );
        }
        // Unacknowledged in-flight messages may or may not be there, but never twice.
        assert!(
            seen.values().all(|&n| n == 1),
            "a message is stored twice: {seen:?}"
        );
    }
}
