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
