//! SMTP delivery benchmark: concurrent clients deliver messages over TCP to an
//! in-process receiver on a temporary store; prints messages per second end to end
//! (counted when the 250 arrives, i.e. after the commit) and the process's peak
//! memory.
//!
//! ```text
//! cargo run --release -p mailroom-smtp --example smtp_bench [-- --json]
//! ```
//!
//! Environment: `BENCH_MESSAGES` (10000), `BENCH_CLIENTS` (8), `BENCH_SIZE` (10240
//! bytes per message), `BENCH_SYNC` (`full`, the default, or `normal`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_config::Config;
use mailroom_smtp::{Mode, SmtpServer};
use mailroom_store::{Store, StoreOptions, Synchronous};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

async fn reply(conn: &mut BufReader<TcpStream>) -> u16 {
    loop {
        let mut line = String::new();
        assert!(
            conn.read_line(&mut line).await.unwrap() > 0,
            "server closed the connection"
        );
        if line.as_bytes().get(3) == Some(&b' ') {
            return line[..3].parse().unwrap();
        }
    }
}

async fn client(addr: std::net::SocketAddr, id: usize, count: usize, size: usize) -> Vec<Duration> {
    let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
    conn.get_ref().set_nodelay(true).unwrap();
    assert_eq!(reply(&mut conn).await, 220);
    conn.get_mut()
        .write_all(b"EHLO bench.test\r\n")
        .await
        .unwrap();
    assert_eq!(reply(&mut conn).await, 250);
    let line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n";
    let mut latencies = Vec::with_capacity(count);
    for n in 0..count {
        let header = format!(
            "From: bench@remote.test\r\nTo: alice@example.org\r\nSubject: bench {id}-{n}\r\nMessage-ID: <{id}.{n}@bench.test>\r\n\r\n"
        );
        let mut body = header.into_bytes();
        while body.len() + line.len() <= size {
            body.extend_from_slice(line.as_bytes());
        }
        body.extend_from_slice(b".\r\n");
        let started = Instant::now();
        // PIPELINING: the envelope in one write, then the data after 354.
        conn.get_mut()
            .write_all(b"MAIL FROM:<bench@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
            .await
            .unwrap();
        for want in [250, 250, 354] {
            assert_eq!(reply(&mut conn).await, want);
        }
        conn.get_mut().write_all(&body).await.unwrap();
        assert_eq!(reply(&mut conn).await, 250);
        latencies.push(started.elapsed());
    }
    conn.get_mut().write_all(b"QUIT\r\n").await.unwrap();
    latencies
}

#[tokio::main]
async fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let messages = env("BENCH_MESSAGES", 10_000);
    let clients = env("BENCH_CLIENTS", 8).max(1);
    let size = env("BENCH_SIZE", 10_240);
    let sync = if std::env::var("BENCH_SYNC").as_deref() == Ok("normal") {
        Synchronous::Normal
    } else {
        Synchronous::Full
    };

    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path());
    options.synchronous = sync;
    let store = Store::open(&options).await.unwrap();
    store.add_domain("example.org").await.unwrap();
    store
        .create_account("alice@example.org", "pw")
        .await
        .unwrap();
    let config = Arc::new(Config {
        hostname: "bench.example.org".into(),
        ..Config::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(
        SmtpServer::new(store.clone(), config, Mode::Smtp).serve(listener, shutdown.clone()),
    );

    let started = Instant::now();
    let per_client = messages / clients;
    let tasks: Vec<_> = (0..clients)
        .map(|id| {
            tokio::spawn(client(
                addr,
                id,
                per_client + usize::from(id < messages % clients),
                size,
            ))
        })
        .collect();
    let mut latencies = Vec::with_capacity(messages);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    server.await.unwrap().unwrap();

    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    let peak_mib = peak_rss_kib() as f64 / 1024.0;
    let db_mib = std::fs::metadata(options.database_path())
        .map(|m| m.len())
        .unwrap_or(0) as f64
        / 1048576.0;
    let sync_name = if sync == Synchronous::Full {
        "full"
    } else {
        "normal"
    };
    if json {
        println!(
            "{{\"scenario\":\"smtp_deliver\",\"messages\":{},\"clients\":{clients},\"size\":{size},\"synchronous\":\"{sync_name}\",\"seconds\":{:.3},\"messages_per_second\":{rate:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"peak_rss_mib\":{peak_mib:.1},\"db_mib\":{db_mib:.1}}}",
            latencies.len(),
            elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.99)
        );
    } else {
        println!(
            "scenario      messages  clients  size   sync    seconds  msg/s    p50 ms  p99 ms  peak RSS MiB  db MiB"
        );
        println!(
            "smtp_deliver  {:<8}  {clients:<7}  {size:<5}  {sync_name:<6}  {:<7.2}  {rate:<7.0}  {:<6.2}  {:<6.2}  {peak_mib:<12.1}  {db_mib:.1}",
            latencies.len(),
            elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.99)
        );
    }
}
