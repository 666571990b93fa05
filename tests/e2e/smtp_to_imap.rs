#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! Mail flows end to end: an SMTP client (lettre) sends, the store commits, an IMAP
//! session in IDLE hears of it, and FETCH returns exactly the bytes sent plus the
//! trace headers the receiver prepended.

use std::time::Duration;

use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
use mailroom_testkit::TestServer;

fn attachment_message() -> lettre::Message {
    lettre::Message::builder()
        .from("Bob <bob@example.net>".parse().unwrap())
        .to("Alice <alice@example.org>".parse().unwrap())
        .subject("Report with attachment")
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(
                    "Please find the report attached.".to_string(),
                ))
                .singlepart(Attachment::new("report.bin".into()).body(
                    (0u8..=255).collect::<Vec<u8>>(),
                    ContentType::parse("application/octet-stream").unwrap(),
                )),
        )
        .unwrap()
}

#[tokio::test]
async fn idle_sees_new_mail_and_fetch_returns_exact_bytes() {
    let server = TestServer::start().await.unwrap();
    server
        .create_user("alice@example.org", "secret")
        .await
        .unwrap();

    let mut imap = server.imap().await.unwrap();
    imap.login("alice@example.org", "secret").await.unwrap();
    let selected = imap.command("SELECT INBOX").await.unwrap();
    assert!(selected.ok(), "{selected:?}");
    assert!(
        selected.lines.iter().any(|l| l == "* 0 EXISTS"),
        "{selected:?}"
    );
    imap.send_raw(b"I1 IDLE\r\n").await.unwrap();
    let cont = imap.read_response_line().await.unwrap();
    assert!(cont.starts_with('+'), "{cont}");

    let message = attachment_message();
    let sent = message.formatted();
    server.send(message).await.unwrap();

    // RFC 2177: the session in IDLE is told at once.
    let exists = tokio::time::timeout(Duration::from_secs(1), imap.read_response_line())
        .await
        .expect("EXISTS within 1 s")
        .unwrap();
    assert_eq!(exists, "* 1 EXISTS");
    imap.send_raw(b"DONE\r\n").await.unwrap();
    let done = imap.read_until_tagged("I1").await.unwrap();
    assert!(done.ok(), "{done:?}");

    let fetched = imap
        .command("FETCH 1 (BODY.PEEK[] BODYSTRUCTURE)")
        .await
        .unwrap();
    assert!(fetched.ok(), "{fetched:?}");
    let body = fetched.lines.join("\n");
    let raw = server
        .store
        .fetch_info(
            server
                .store
                .mailbox(
                    server
                        .store
                        .account("alice@example.org")
                        .await
                        .unwrap()
                        .unwrap()
                        .id,
                    "INBOX",
                )
                .await
                .unwrap()
                .unwrap()
                .id,
            &[1..=1],
        )
        .await
        .unwrap();
    let stored = server.store.content_raw(raw[0].content_id).await.unwrap();
    // The stored message is the trace headers followed by exactly what was sent.
    assert!(
        stored.starts_with(b"Return-Path: <bob@example.net>\r\nReceived: "),
        "{}",
        String::from_utf8_lossy(&stored[..200])
    );
    // lettre always ends DATA with CRLF "." CRLF after the message, whose last line
    // already ends in CRLF, so one empty line joins the content (RFC 5321 §4.1.1.4).
    let expected_tail = [sent.as_slice(), b"\r\n"].concat();
    assert!(
        stored.ends_with(&expected_tail),
        "the sent bytes are kept unchanged after the trace headers"
    );
    assert!(
        body.contains(&format!("BODY[] {{{}}}", stored.len())),
        "{body}"
    );
    assert!(
        body.contains(&String::from_utf8_lossy(&stored).to_string()),
        "FETCH BODY[] is the stored message"
    );
    assert!(body.to_ascii_lowercase().contains("\"mixed\""), "{body}");
    imap.command("LOGOUT").await.unwrap();
    server.stop().await.unwrap();
}

/// The testkit's HTTP API answers the long poll of the test API (what a test suite
/// in another language would use instead of IMAP).
#[tokio::test]
async fn testkit_serves_the_test_api() {
    let server = TestServer::start().await.unwrap();
    server.create_user("carol@example.org", "pw").await.unwrap();
    let url = "/api/v1/test/wait?to=carol@example.org&subject=Ping&timeout_ms=5000";
    let http = server.http_addr;
    let token = server.admin_token.clone();
    let waiter = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(http).await.unwrap();
        let request = format!(
            "GET {url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server
        .send_raw(
            "dave@example.net",
            &["carol@example.org"],
            b"Subject: Ping\r\n\r\nhello\r\n",
        )
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Ping"), "{answer}");
    server
        .wait_for_messages("carol@example.org", 1, Duration::from_secs(5))
        .await
        .unwrap();
    server.stop().await.unwrap();
}
