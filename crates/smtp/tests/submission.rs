//! TLS, AUTH and submission over TCP with a real rustls client: STARTTLS on the MX
//! and on submission, implicit TLS (RFC 8314), the STARTTLS injection case, AUTH
//! PLAIN/LOGIN/SCRAM-SHA-256, refused AUTH without TLS, lock-out, 530 before AUTH,
//! 550 5.7.1 for someone else's address, no relay through the MX, Message-ID/Date
//! added and Bcc removed, remote recipients queued in the same transaction.
#![allow(clippy::unwrap_used)]

mod tlsauth;

use mailroom_smtp::Mode;
use tlsauth::*;

const MSG: &str = "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nBcc: secret@example.net\r\nSubject: hi\r\n\r\nhello\r\n";

async fn auth_plain(c: &mut Client, user: &str, password: &str) -> (u16, String) {
    let ir = b64(format!("\0{user}\0{password}").as_bytes());
    c.cmd(&format!("AUTH PLAIN {ir}")).await
}

#[tokio::test]
async fn starttls_on_the_mx_then_delivery_with_esmtps() {
    let h = start(Mode::Smtp, false, |_| {}).await;
    let mut c = h.connect_starttls().await;
    let (code, text) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    assert!(!text.contains("AUTH"), "the MX offers no AUTH: {text}");
    let (code, text) = c.cmd("AUTH PLAIN AGFsaWNlAHB3").await;
    assert_eq!(code, 502, "{text}");
    let (code, text) = c
        .send_mail("x@remote.example", &["alice@example.org"], MSG)
        .await;
    assert_eq!(code, 250, "{text}");
    let inbox = h.inbox(&h.alice).await;
    let text = String::from_utf8_lossy(&inbox[0]).to_string();
    assert!(text.contains("with ESMTPS id"), "{text}");
    h.stop().await;
}

#[tokio::test]
async fn no_relay_through_the_inbound_port() {
    let h = start(Mode::Smtp, false, |_| {}).await;
    let mut c = h.connect_starttls().await;
    let (code, _) = c.cmd("MAIL FROM:<alice@example.org>").await;
    assert_eq!(code, 250);
    let (code, text) = c.cmd("RCPT TO:<x@remote.example>").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1"), "{text}");
    assert_eq!(h.store.queue_size().await.unwrap(), 0);
    h.stop().await;
}

#[tokio::test]
async fn commands_pipelined_after_starttls_are_not_executed() {
    for mode in [Mode::Smtp, Mode::Submission] {
        let h = start(mode, false, |_| {}).await;
        let mut c = h.connect().await;
        let (code, _) = c.cmd("EHLO client.test").await;
        assert_eq!(code, 250);
        // The injection: commands in the same packet as STARTTLS.
        c.send(b"STARTTLS\r\nEHLO evil.test\r\nMAIL FROM:<alice@example.org>\r\n")
            .await;
        let (code, text) = c.reply().await;
        assert_eq!(code, 220, "{text}");
        let mut c = c.upgrade(&h).await;
        // Had the injected EHLO run, this MAIL would be accepted (or answered twice).
        let (code, text) = c.cmd("MAIL FROM:<alice@example.org>").await;
        assert_eq!(code, 503, "state must be reset after STARTTLS: {text}");
        let (code, text) = c.cmd("NOOP").await;
        assert_eq!(code, 250, "{text}");
        h.stop().await;
    }
}

#[tokio::test]
async fn submission_refuses_auth_without_tls_and_mail_before_auth() {
    let h = start(Mode::Submission, false, |_| {}).await;
    let mut c = h.connect().await;
    let (code, text) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    assert!(!text.contains("AUTH"), "no AUTH in clear text: {text}");
    let (code, text) = auth_plain(&mut c, "alice@example.org", "pw-alice").await;
    assert_eq!(code, 502, "{text}");
    let (code, text) = c.cmd("MAIL FROM:<alice@example.org>").await;
    assert_eq!(code, 530, "{text}");
    assert!(text.contains("5.7.0"), "{text}");
    // Over TLS: AUTH is offered, MAIL still needs it.
    let mut c = h.connect_starttls().await;
    let (code, text) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    assert!(text.contains("AUTH SCRAM-SHA-256 PLAIN LOGIN"), "{text}");
    let (code, text) = c.cmd("MAIL FROM:<alice@example.org>").await;
    assert_eq!(code, 530, "{text}");
    h.stop().await;
}

#[tokio::test]
async fn auth_plain_and_login_and_bad_credentials() {
    let h = start(Mode::Submission, false, |_| {}).await;
    let mut c = h.connect_starttls().await;
    let (code, text) = auth_plain(&mut c, "alice@example.org", "wrong").await;
    assert_eq!(code, 535, "{text}");
    assert!(text.contains("5.7.8"), "{text}");
    let (code, text) = auth_plain(&mut c, "alice@example.org", "pw-alice").await;
    assert_eq!(code, 235, "{text}");
    let (code, text) = auth_plain(&mut c, "alice@example.org", "pw-alice").await;
    assert_eq!(code, 502, "no second AUTH: {text}");

    let mut c = h.connect_starttls().await;
    let (code, text) = c.cmd("AUTH LOGIN").await;
    assert_eq!(code, 334, "{text}");
    assert_eq!(unb64(&text[4..]), b"Username:");
    let (code, _) = c.cmd(&b64(b"bob@example.org")).await;
    assert_eq!(code, 334);
    let (code, text) = c.cmd(&b64(b"pw-bob")).await;
    assert_eq!(code, 235, "{text}");
    let (code, text) = c
        .send_mail(
            "bob@example.org",
            &["alice@example.org"],
            "From: bob@example.org\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let inbox = h.inbox(&h.alice).await;
    let text = String::from_utf8_lossy(&inbox[0]).to_string();
    assert!(text.contains("with ESMTPSA id"), "{text}");
    assert!(!text.contains("Return-Path"), "{text}");
    h.stop().await;
}

/// SCRAM-SHA-256 client side (RFC 5802), written from the RFC, not from the server.
#[tokio::test]
async fn auth_scram_sha_256() {
    use sha2::{Digest, Sha256};
    let h = start(Mode::Submission, false, |_| {}).await;
    let mut c = h.connect_starttls().await;
    let nonce = "rOprNGfwEbeRWgbNEkqO";
    let first_bare = format!("n=alice@example.org,r={nonce}");
    let (code, text) = c
        .cmd(&format!(
            "AUTH SCRAM-SHA-256 {}",
            b64(format!("n,,{first_bare}").as_bytes())
        ))
        .await;
    assert_eq!(code, 334, "{text}");
    let server_first = String::from_utf8(unb64(&text[4..])).unwrap();
    let mut r = "";
    let mut salt = Vec::new();
    let mut iterations = 0u32;
    for part in server_first.split(',') {
        match part.split_once('=') {
            Some(("r", v)) => r = v,
            Some(("s", v)) => salt = unb64(v),
            Some(("i", v)) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    assert!(r.starts_with(nonce));
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(b"pw-alice", &salt, iterations, &mut salted);
    let client_key = mailroom_store::hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let without_proof = format!("c=biws,r={r}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = mailroom_store::hmac_sha256(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let (code, text) = c
        .cmd(&b64(format!("{without_proof},p={}", b64(&proof)).as_bytes()))
        .await;
    assert_eq!(code, 334, "{text}");
    let server_final = String::from_utf8(unb64(&text[4..])).unwrap();
    let server_key = mailroom_store::hmac_sha256(&salted, b"Server Key");
    let expected = mailroom_store::hmac_sha256(&server_key, auth_message.as_bytes());
    assert_eq!(server_final, format!("v={}", b64(&expected)));
    let (code, text) = c.cmd("").await;
    assert_eq!(code, 235, "{text}");
    h.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_out_with_454() {
    let h = start(Mode::Submission, false, |c| c.auth.max_failures = 2).await;
    let mut c = h.connect_starttls().await;
    for _ in 0..2 {
        let (code, text) = auth_plain(&mut c, "alice@example.org", "wrong").await;
        assert_eq!(code, 535, "{text}");
    }
    let (code, text) = auth_plain(&mut c, "alice@example.org", "pw-alice").await;
    assert_eq!(code, 454, "{text}");
    assert!(text.contains("4.7.0"), "{text}");
    h.stop().await;
}

#[tokio::test]
async fn implicit_tls_submission_adds_message_id_and_date_and_drops_bcc() {
    let h = start(Mode::Submission, true, |_| {}).await;
    let mut c = h.connect_tls().await;
    let (code, text) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    assert!(!text.contains("STARTTLS"), "{text}");
    let (code, text) = auth_plain(&mut c, "alice@example.org", "pw-alice").await;
    assert_eq!(code, 235, "{text}");
    let (code, text) = c
        .send_mail(
            "alice@example.org",
            &["bob@example.org", "secret@example.net"],
            MSG,
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let inbox = h.inbox(&h.bob).await;
    assert_eq!(inbox.len(), 1);
    let text = String::from_utf8_lossy(&inbox[0]).to_string();
    assert!(!text.contains("secret@"), "Bcc leaked: {text}");
    assert!(text.contains("\r\nMessage-ID: <"), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");
    // The remote recipient is queued by the same transaction, Bcc removed there too.
    let queue = h.store.queue_list().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].sender, "alice@example.org");
    assert_eq!(queue[0].recipients[0].address, "secret@example.net");
    let raw = h.store.queue_raw(queue[0].id).await.unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("Bcc"));
    h.stop().await;
}

#[tokio::test]
async fn sending_as_someone_else_is_refused() {
    let h = start(Mode::Submission, false, |_| {}).await;
    let mut c = h.connect_starttls().await;
    let (code, _) = auth_plain(&mut c, "alice@example.org", "pw-alice").await;
    assert_eq!(code, 235);
    let (code, text) = c.cmd("MAIL FROM:<bob@example.org>").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1"), "{text}");
    // Her alias is hers.
    let (code, text) = c
        .send_mail(
            "info@example.org",
            &["bob@example.org"],
            "From: info@example.org\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
    // The From: header must be hers too.
    let (code, text) = c
        .send_mail(
            "alice@example.org",
            &["bob@example.org"],
            "From: Bob <bob@example.org>\r\n\r\nforged\r\n",
        )
        .await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1"), "{text}");
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn an_account_allowed_to_send_as_any_may_while_others_still_may_not() {
    let h = start(Mode::Submission, false, |_| {}).await;
    h.store
        .set_send_as_any("alice@example.org", true)
        .await
        .unwrap();
    let mut c = h.connect_starttls().await;
    let (code, _) = auth_plain(&mut c, "alice@example.org", "pw-alice").await;
    assert_eq!(code, 235);
    // Envelope and From: of another local account and of a remote address.
    let (code, text) = c
        .send_mail(
            "bob@example.org",
            &["bob@example.org"],
            "From: Bob <bob@example.org>\r\n\r\nas bob\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let (code, text) = c
        .send_mail(
            "noreply@remote.example",
            &["bob@example.org"],
            "From: noreply@remote.example\r\n\r\nas remote\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(h.inbox(&h.bob).await.len(), 2);
    // Bob is a normal account: still refused, envelope and From: alike.
    let mut c = h.connect_starttls().await;
    let (code, _) = auth_plain(&mut c, "bob@example.org", "pw-bob").await;
    assert_eq!(code, 235);
    let (code, text) = c.cmd("MAIL FROM:<alice@example.org>").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1"), "{text}");
    let (code, text) = c
        .send_mail(
            "bob@example.org",
            &["alice@example.org"],
            "From: alice@example.org\r\n\r\nforged\r\n",
        )
        .await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1"), "{text}");
    assert!(h.inbox(&h.alice).await.is_empty());
    // Withdrawn: alice is refused again.
    h.store
        .set_send_as_any("alice@example.org", false)
        .await
        .unwrap();
    let mut c = h.connect_starttls().await;
    let (code, _) = auth_plain(&mut c, "alice@example.org", "pw-alice").await;
    assert_eq!(code, 235);
    let (code, text) = c.cmd("MAIL FROM:<bob@example.org>").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1"), "{text}");
    h.stop().await;
}

#[tokio::test]
async fn test_mode_creates_accounts_on_the_mx() {
    let h = start(Mode::Smtp, false, |c| c.test_mode.enabled = true).await;
    let mut c = h.connect().await;
    let (code, _) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    let (code, text) = c
        .send_mail(
            "x@remote.example",
            &["new@fresh.test"],
            "Subject: t\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let account = h.store.account("new@fresh.test").await.unwrap().unwrap();
    assert_eq!(h.inbox(&account).await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn announced_size_over_quota_is_refused_at_rcpt() {
    let h = start(Mode::Smtp, false, |_| {}).await;
    h.store
        .set_quota("alice@example.org", Some(1000))
        .await
        .unwrap();
    let mut c = h.connect().await;
    let (code, _) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    let (code, _) = c.cmd("MAIL FROM:<x@remote.example> SIZE=5000").await;
    assert_eq!(code, 250);
    let (code, text) = c.cmd("RCPT TO:<alice@example.org>").await;
    assert_eq!(code, 452, "{text}");
    assert!(text.contains("4.2.2"), "{text}");
    let (code, text) = c.cmd("RCPT TO:<bob@example.org>").await;
    assert_eq!(code, 250, "{text}");
    h.stop().await;
}
