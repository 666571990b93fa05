#![allow(clippy::unwrap_used)]
//! A spam scanner that is slow, answers garbage or is not there never costs a
//! message: the pipeline delivers to INBOX, marked unscanned, within `[spam]
//! timeout`. (rspamd's real answers are tested in tests/e2e/spam_rspamd.rs; these
//! listeners stand for a broken network or a wrong port, not for rspamd.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_config::Config;
use mailroom_delivery::{Envelope, Folder, Inbound, Verdict, Via};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn envelope(via: Via) -> Envelope {
    Envelope {
        via,
        client_ip: "192.0.2.7".parse().unwrap(),
        helo: "mx.example.net".into(),
        mail_from: "bob@example.net".into(),
        recipients: vec!["alice@example.org".into()],
        authenticated: None,
        queue_id: "0123456789ABCDEF".into(),
    }
}

fn inbound(url: String, timeout: Duration) -> Inbound {
    let mut config = Config::default();
    config.spam.rspamd_url = Some(url);
    config.spam.timeout = timeout;
    Inbound::without_sender_checks(Arc::new(config))
}

const RAW: &[u8] = b"From: bob@example.net\r\nSubject: hi\r\n\r\nhello\r\n";

/// A listener that accepts, reads, and then does `answer` with the connection.
async fn listener(answer: &'static [u8], hold: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 65536];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer).await;
                if hold {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            });
        }
    });
    addr
}

/// Delivered to INBOX with the unscanned field (after whatever earlier stages
/// prepended).
fn unscanned(verdict: Verdict, reason: &str) {
    let Verdict::Deliver {
        prepend, folder, ..
    } = verdict
    else {
        panic!("refused: {verdict:?}");
    };
    assert_eq!(folder, Folder::Inbox);
    let prepend = String::from_utf8(prepend).unwrap();
    assert!(
        prepend.ends_with(&format!("X-Spam-Status: Unscanned, reason={reason}\r\n")),
        "{prepend}"
    );
}

#[tokio::test]
async fn a_silent_scanner_times_out_and_the_message_is_delivered() {
    let addr = listener(b"", true).await;
    let inbound = inbound(format!("http://{addr}"), Duration::from_millis(300));
    let started = Instant::now();
    let verdict = inbound.check(RAW, &envelope(Via::Mx)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    unscanned(verdict, "timeout");
}

#[tokio::test]
async fn a_report_that_never_ends_times_out_too() {
    let addr = listener(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"action\":",
        true,
    )
    .await;
    let inbound = inbound(format!("http://{addr}"), Duration::from_millis(300));
    unscanned(inbound.check(RAW, &envelope(Via::Mx)).await, "timeout");
}

#[tokio::test]
async fn garbage_and_errors_are_not_verdicts() {
    let addr = listener(
        b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\n<html>no</html",
        false,
    )
    .await;
    let inbound1 = inbound(format!("http://{addr}"), Duration::from_secs(5));
    unscanned(
        inbound1.check(RAW, &envelope(Via::Mx)).await,
        "invalid_answer",
    );

    let addr = listener(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        false,
    )
    .await;
    let inbound2 = inbound(format!("http://{addr}"), Duration::from_secs(5));
    unscanned(inbound2.check(RAW, &envelope(Via::Mx)).await, "http_error");

    let addr = listener(b"SSH-2.0-OpenSSH_9.2\r\n", false).await;
    let inbound3 = inbound(format!("http://{addr}"), Duration::from_secs(5));
    unscanned(inbound3.check(RAW, &envelope(Via::Mx)).await, "unavailable");
}

#[tokio::test]
async fn nobody_listening_and_too_large_are_unscanned() {
    // A port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let inbound1 = inbound(format!("http://{addr}"), Duration::from_secs(5));
    unscanned(inbound1.check(RAW, &envelope(Via::Mx)).await, "unavailable");

    let mut config = Config::default();
    config.spam.rspamd_url = Some(format!("http://{addr}"));
    config.spam.max_size = mailroom_config::ByteSize(10);
    let inbound2 = Inbound::without_sender_checks(Arc::new(config));
    unscanned(inbound2.check(RAW, &envelope(Via::Mx)).await, "too_large");
}

#[tokio::test]
async fn lmtp_and_unconfigured_servers_do_not_scan() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let not_scanned = |verdict: Verdict| match verdict {
        Verdict::Deliver {
            prepend, folder, ..
        } => {
            assert_eq!(folder, Folder::Inbox);
            let prepend = String::from_utf8(prepend).unwrap();
            assert!(!prepend.contains("X-Spam-"), "{prepend}");
        }
        refused => panic!("{refused:?}"),
    };
    let inbound1 = inbound(format!("http://{addr}"), Duration::from_secs(5));
    not_scanned(inbound1.check(RAW, &envelope(Via::Lmtp)).await);
    let inbound2 = Inbound::without_sender_checks(Arc::new(Config::default()));
    not_scanned(inbound2.check(RAW, &envelope(Via::Mx)).await);
}
