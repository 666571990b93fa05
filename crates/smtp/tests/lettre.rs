//! A real SMTP client (lettre) sends a message with an attachment.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mailroom_smtp::Mode;

#[tokio::test]
async fn lettre_sends_a_message_with_an_attachment() {
    let h = start(Mode::Smtp).await;
    // Binary content with every byte value, and lines starting with a dot.
    let attachment: Vec<u8> = (0..=255u8).cycle().take(4000).collect();
    let email = Message::builder()
        .from("Sender <sender@remote.test>".parse().unwrap())
        .to("Alice <alice@example.org>".parse().unwrap())
        .cc("Bob <bob+cc@example.org>".parse().unwrap())
        .subject("Report with attachment")
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(String::from(
                    "Hello Alice,\n.\n..see attached.\n",
                )))
                .singlepart(Attachment::new(String::from("data.bin")).body(
                    attachment,
                    ContentType::parse("application/octet-stream").unwrap(),
                )),
        )
        .unwrap();
    let expected = email.formatted();

    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(h.addr.port())
        .build();
    let response = transport.send(email).await.unwrap();
    assert!(response.is_positive());

    let alice = h.inbox(&h.alice).await;
    let bob = h.inbox(&h.bob).await;
    assert_eq!(alice.len(), 1);
    assert_eq!(bob.len(), 1);
    // lettre ends the data with CRLF . CRLF after the formatted message, so the
    // message as received is the formatted one plus that CRLF.
    let mut sent = expected.clone();
    sent.extend_from_slice(b"\r\n");
    assert_eq!(
        String::from_utf8_lossy(strip_trace(&alice[0])),
        String::from_utf8_lossy(&sent)
    );
    assert_eq!(
        h.inbox_contents(&h.alice).await,
        h.inbox_contents(&h.bob).await,
        "stored once"
    );
    let text = String::from_utf8_lossy(&alice[0]);
    assert!(
        text.contains("Content-Disposition: attachment; filename=\"data.bin\""),
        "{text}"
    );
    h.stop().await;
}
