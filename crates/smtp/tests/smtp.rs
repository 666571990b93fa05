//! The SMTP receiver over TCP: raw SMTP against a server on 127.0.0.1:0 with a
//! temporary store.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use mailroom_smtp::Mode;
use mailroom_store::Change;

#[tokio::test]
async fn accepted_message_lands_in_inbox_with_trace_headers_and_exact_bytes() {
    let h = start(Mode::Smtp).await;
    let mut changes = h.store.subscribe();
    let mut c = h.greeted(Mode::Smtp).await;
    let message = sample_message("accepted");
    let (code, text) = c
        .send_mail("sender@remote.test", &["alice@example.org"], &message)
        .await;
    assert_eq!(code, 250, "{text}");
    assert!(text.starts_with("250 2.0.0 "), "{text}");

    let inbox = h.inbox(&h.alice).await;
    assert_eq!(inbox.len(), 1);
    let raw = &inbox[0];
    assert_eq!(
        strip_trace(raw),
        &message[..],
        "the stored message is the sent one, byte for byte"
    );
    let head = String::from_utf8_lossy(&raw[..raw.len() - message.len()]).into_owned();
    assert!(
        head.starts_with("Return-Path: <sender@remote.test>\r\n"),
        "{head}"
    );
    assert!(head.contains("Received: from client.test ([127.0.0.1])\r\n\tby mx.example.org (mailroom) with ESMTP id "), "{head}");
    assert!(head.contains("\tfor <alice@example.org>;\r\n"), "{head}");
    assert!(h.inbox(&h.bob).await.is_empty());

    // The change feed fired for alice's INBOX (IMAP IDLE relies on it).
    let change = tokio::time::timeout(Duration::from_secs(1), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(change, Change::Mailbox { account_id, .. } if account_id == h.alice.id),
        "{change:?}"
    );

    let (code, _) = c.cmd("QUIT").await;
    assert_eq!(code, 221);
    assert!(c.closed().await);
    h.stop().await;
}

#[tokio::test]
async fn null_sender_is_accepted() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    let (code, text) = c
        .send_mail("", &["bob@example.org"], &sample_message("bounce"))
        .await;
    assert_eq!(code, 250, "{text}");
    let inbox = h.inbox(&h.bob).await;
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].starts_with(b"Return-Path: <>\r\n"));
    h.stop().await;
}

#[tokio::test]
async fn helo_works_and_records_smtp() {
    let h = start(Mode::Smtp).await;
    let mut c = h.connect().await;
    let (code, text) = c.cmd("HELO old.client.test").await;
    assert_eq!(code, 250, "{text}");
    assert!(!text.contains("PIPELINING"));
    let (code, _) = c
        .send_mail(
            "a@remote.test",
            &["alice@example.org"],
            b"Subject: x\r\n\r\nhi\r\n",
        )
        .await;
    assert_eq!(code, 250);
    let raw = &h.inbox(&h.alice).await[0];
    assert!(String::from_utf8_lossy(raw).contains("with SMTP id"));
    h.stop().await;
}

#[tokio::test]
async fn ehlo_advertises_the_extensions() {
    let h = start(Mode::Smtp).await;
    let mut c = h.connect().await;
    let (code, text) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    for ext in [
        "SIZE 65536",
        "8BITMIME",
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
    ] {
        assert!(
            text.contains(&format!("250-{ext}\r\n")) || text.contains(&format!("250 {ext}\r\n")),
            "{ext} missing in {text}"
        );
    }
    assert!(
        !text.contains("STARTTLS") && !text.contains("AUTH"),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test]
async fn unknown_user_gets_550_5_1_1() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    let (code, text) = c.cmd("RCPT TO:<nobody@example.org>").await;
    assert_eq!(code, 550);
    assert!(text.starts_with("550 5.1.1 "), "{text}");
    // DATA without any accepted recipient is refused.
    let (code, text) = c.cmd("DATA").await;
    assert_eq!(code, 554, "{text}");
    h.stop().await;
}

#[tokio::test]
async fn relay_is_denied() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").await.0, 250);
    let (code, text) = c.cmd("RCPT TO:<someone@elsewhere.test>").await;
    assert!(text.starts_with("550 5.7.1 "), "{code} {text}");
    // Address literals are never local: refused as syntax (smtp-proto) or relay.
    let (_, text) = c.cmd("RCPT TO:<x@[192.0.2.1]>").await;
    assert!(
        text.starts_with("501 5.1.3 ") || text.starts_with("550 5.7.1 "),
        "{text}"
    );
    // A transaction with only refused recipients delivers nothing.
    let (code, _) = c.cmd("DATA").await;
    assert_eq!(code, 554);
    h.stop().await;
}

#[tokio::test]
async fn size_parameter_over_the_limit_gets_552() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    let (code, text) = c.cmd("MAIL FROM:<s@remote.test> SIZE=10000000").await;
    assert_eq!(code, 552);
    assert!(text.starts_with("552 5.3.4 "), "{text}");
    // Within the limit, with the other parameters, is fine.
    let (code, text) = c
        .cmd("MAIL FROM:<s@remote.test> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc123")
        .await;
    assert_eq!(code, 250, "{text}");
    let (code, text) = c
        .cmd("RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.org")
        .await;
    assert_eq!(code, 250, "{text}");
    h.stop().await;
}

#[tokio::test]
async fn oversize_stream_is_read_to_the_end_and_refused() {
    let h = start_with(Mode::Smtp, |c| {
        c.limits.max_message_size = mailroom_config::ByteSize(4096)
    })
    .await;
    let mut c = h.greeted(Mode::Smtp).await;
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..2000 {
        big.extend_from_slice(format!("line {i} of a message that is far too big\r\n").as_bytes());
    }
    let (code, text) = c
        .send_mail("s@remote.test", &["alice@example.org"], &big)
        .await;
    assert_eq!(code, 552, "{text}");
    assert!(text.starts_with("552 5.3.4 "), "{text}");
    assert!(h.inbox(&h.alice).await.is_empty());
    // The session is still in step: the next message goes through.
    let (code, text) = c
        .send_mail(
            "s@remote.test",
            &["alice@example.org"],
            b"Subject: small\r\n\r\nok\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn bdat_chunks_deliver_the_exact_bytes() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
    // BDAT is not dot-stuffed: a line with a lone dot is content.
    let part1 = b"Subject: chunks\r\n\r\n.\r\n";
    let part2 = b"..not unstuffed\r\nend\r\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes()).await;
    c.send(part1).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes())
        .await;
    c.send(part2).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    let inbox = h.inbox(&h.alice).await;
    assert_eq!(
        strip_trace(&inbox[0]),
        [&part1[..], &part2[..]].concat().as_slice()
    );

    // BDAT without a transaction: the chunk is still consumed, then refused.
    c.send(b"BDAT 5 LAST\r\nhello").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 503, "{text}");
    assert_eq!(c.cmd("NOOP").await.0, 250);

    // BDAT over the size limit: 552, the session goes on.
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
    let chunk = vec![b'x'; 70 * 1024];
    c.send(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes())
        .await;
    c.send(&chunk).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 552, "{text}");
    assert_eq!(c.cmd("RSET").await.0, 250);
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    c.send(b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n").await;
    let expected = [250, 250, 550, 250, 354];
    for code in expected {
        let (got, text) = c.reply().await;
        assert_eq!(got, code, "{text}");
    }
    c.send(b"Subject: piped\r\n\r\nbody\r\n.\r\nMAIL FROM:<s2@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n").await;
    for code in [250, 250, 250, 354] {
        let (got, text) = c.reply().await;
        assert_eq!(got, code, "{text}");
    }
    c.send(b"Subject: second\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        .await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 221);
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    assert_eq!(h.inbox(&h.bob).await.len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn many_recipients_are_deduplicated_into_one_stored_copy() {
    let h = start_with(Mode::Smtp, |c| c.limits.max_recipients = 5).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    // alice four ways (twice verbatim, in other case, by alias) and bob.
    for rcpt in [
        "alice@example.org",
        "alice@example.org",
        "ALICE@Example.ORG",
        "info@example.org",
        "bob@example.org",
    ] {
        let (code, text) = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(code, 250, "{rcpt}: {text}");
    }
    for rcpt in ["x1@catchall.test", "x2@catchall.test"] {
        let (code, text) = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        if code == 452 {
            assert!(text.starts_with("452 4.5.3 "), "{text}");
        }
    }
    // Keep adding: the limit must bite at some point.
    let mut limited = false;
    for i in 0..10 {
        let (code, text) = c.cmd(&format!("RCPT TO:<more{i}@catchall.test>")).await;
        if code == 452 {
            assert!(text.starts_with("452 4.5.3 "), "{text}");
            limited = true;
        }
    }
    assert!(limited, "max_recipients was never enforced");
    let (code, _) = c.cmd("DATA").await;
    assert_eq!(code, 354);
    c.send(b"Subject: many\r\n\r\nhi all\r\n.\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");

    let alice = h.inbox_contents(&h.alice).await;
    let bob = h.inbox_contents(&h.bob).await;
    assert_eq!(alice.len(), 1, "alice gets one copy");
    assert_eq!(bob.len(), 1, "bob gets one copy");
    assert_eq!(alice[0], bob[0], "the content is stored once");
    h.stop().await;
}

#[tokio::test]
async fn alias_and_catch_all_deliver() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(
        c.send_mail(
            "s@remote.test",
            &["info@example.org"],
            b"Subject: alias\r\n\r\n1\r\n"
        )
        .await
        .0,
        250
    );
    assert_eq!(
        c.send_mail(
            "s@remote.test",
            &["whatever@catchall.test"],
            b"Subject: catch-all\r\n\r\n2\r\n"
        )
        .await
        .0,
        250
    );
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn sub_addressing_delivers_to_the_base_address() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    let (code, text) = c
        .send_mail(
            "s@remote.test",
            &["alice+lists@example.org"],
            b"Subject: tagged\r\n\r\n1\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    h.stop().await;

    let h = start_with(Mode::Smtp, |c| c.smtp.sub_addressing = false).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    let (code, text) = c.cmd("RCPT TO:<alice+lists@example.org>").await;
    assert_eq!(code, 550, "{text}");
    h.stop().await;
}

#[tokio::test]
async fn postmaster_without_domain_is_resolved_at_our_hostname() {
    let h = start(Mode::Smtp).await;
    h.store.add_domain("mx.example.org").await.unwrap();
    h.store
        .add_alias("postmaster@mx.example.org", "alice@example.org")
        .await
        .unwrap();
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    let (code, text) = c.cmd("RCPT TO:<Postmaster>").await;
    assert_eq!(code, 250, "{text}");
    h.stop().await;
}

#[tokio::test]
async fn malformed_commands_and_addresses_get_clear_5xx() {
    let h = start(Mode::Smtp).await;
    let mut c = h.connect().await;
    // Before EHLO.
    let (code, text) = c.cmd("MAIL FROM:<s@remote.test>").await;
    assert!(text.starts_with("503 5.5.1 "), "{code} {text}");
    let (_, text) = c.cmd("EHLO").await;
    assert!(text.starts_with("501 5.5.2 "), "{text}");
    let (_, text) = c.cmd("XYZZY plugh").await;
    assert!(text.starts_with("500 5.5.1 "), "{text}");
    let (_, text) = c.cmd("").await;
    assert!(text.starts_with("500 5.5.1 "), "{text}");
    assert_eq!(c.cmd("EHLO client.test").await.0, 250);
    let (_, text) = c.cmd("RCPT TO:<alice@example.org>").await;
    assert!(text.starts_with("503 5.5.1 "), "RCPT before MAIL: {text}");
    let (_, text) = c.cmd("DATA").await;
    assert!(text.starts_with("503 5.5.1 "), "DATA before MAIL: {text}");
    let (code, text) = c.cmd("MAIL FROM:<no-at-sign>").await;
    assert!(code == 501 || code == 553, "{text}");
    let (code, text) = c.cmd("MAIL FROM:<a@b..c>").await;
    assert_eq!(code / 100, 5, "{text}");
    let (_, text) = c.cmd("MAIL FROM:s@remote.test").await;
    assert!(text.starts_with("501 "), "{text}");
    let (_, text) = c.cmd("MAIL FROM:<s@remote.test> SIZE=abc").await;
    assert!(text.starts_with("501 5.5.4 "), "{text}");
    let (code, text) = c.cmd("MAIL FROM:<s@remote.test> FOO=BAR").await;
    assert_eq!(code / 100, 5, "{text}");
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    let (_, text) = c.cmd("MAIL FROM:<s@remote.test>").await;
    assert!(text.starts_with("503 5.5.1 "), "nested MAIL: {text}");
    let (code, text) = c.cmd("RCPT TO:<@>").await;
    assert_eq!(code / 100, 5, "{text}");
    let (code, text) = c.cmd("RCPT TO:<alice@example.org").await;
    assert_eq!(code / 100, 5, "{text}");
    let (code, text) = c.cmd("RCPT TO:<>").await;
    assert_eq!(code / 100, 5, "{text}");
    // Binary junk.
    c.send(b"\x00\xff\xfe garbage\r\n").await;
    let (code, _) = c.reply().await;
    assert_eq!(code, 500);
    // An over-long line: 500 5.5.6, and the session goes on.
    let long = format!("NOOP {}", "x".repeat(5000));
    let (_, text) = c.cmd(&long).await;
    assert!(text.starts_with("500 5.5.6 "), "{text}");
    let (code, _) = c.cmd("NOOP").await;
    assert_eq!(code, 250);
    let (_, text) = c.cmd("VRFY alice").await;
    assert!(text.starts_with("252 "), "{text}");
    let (_, text) = c.cmd("HELP").await;
    assert!(text.starts_with("214 "), "{text}");
    let (_, text) = c.cmd("STARTTLS").await;
    assert!(text.starts_with("502 5.5.1 "), "{text}");
    let (_, text) = c.cmd("LHLO client.test").await;
    assert!(text.starts_with("500 5.5.1 "), "{text}");
    h.stop().await;
}

#[tokio::test]
async fn disconnect_in_the_middle_of_data_delivers_nothing() {
    let h = start(Mode::Smtp).await;
    let mut changes = h.store.subscribe();
    {
        let mut c = h.greeted(Mode::Smtp).await;
        assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
        assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
        assert_eq!(c.cmd("DATA").await.0, 354);
        c.send(b"Subject: cut\r\n\r\nhalf a message\r\n").await;
    }
    {
        // Mid-BDAT too.
        let mut c = h.greeted(Mode::Smtp).await;
        assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
        assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
        c.send(b"BDAT 1000 LAST\r\nSubject: cut\r\n").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.inbox(&h.alice).await.is_empty());
    assert!(changes.try_recv().is_err(), "nothing was committed");
    // The server is fine and the connection slots were freed.
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(
        c.send_mail(
            "s@remote.test",
            &["alice@example.org"],
            b"Subject: ok\r\n\r\nok\r\n"
        )
        .await
        .0,
        250
    );
    h.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_get_421_at_once() {
    let h = start_with(Mode::Smtp, |c| {
        c.limits.max_connections = 2;
        c.limits.max_connections_per_ip = 2;
    })
    .await;
    let first = h.connect().await;
    let _second = h.connect().await;
    let mut third = Client::connect(h.addr).await;
    let (code, text) = third.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.starts_with("421 4.7.0 "), "{text}");
    assert!(third.closed().await);
    // A slot frees when a session ends.
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = h.connect().await;
    assert_eq!(again.cmd("QUIT").await.0, 221);
    h.stop().await;
}

#[tokio::test]
async fn connections_per_ip_are_limited() {
    let h = start_with(Mode::Smtp, |c| {
        c.limits.max_connections = 100;
        c.limits.max_connections_per_ip = 1;
    })
    .await;
    let _first = h.connect().await;
    let mut second = Client::connect(h.addr).await;
    let (code, text) = second.reply().await;
    assert!(text.starts_with("421 4.7.0 "), "{code} {text}");
    h.stop().await;
}

#[tokio::test]
async fn idle_clients_get_421_and_are_disconnected() {
    let h = start_with(Mode::Smtp, |c| {
        c.limits.smtp_idle_timeout = Duration::from_millis(300)
    })
    .await;
    let mut c = h.greeted(Mode::Smtp).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (code, text) = c.reply().await;
    assert!(text.starts_with("421 4.4.2 "), "{code} {text}");
    assert!(c.closed().await);
    h.stop().await;
}

#[tokio::test]
async fn too_many_commands_close_the_session() {
    let h = start_with(Mode::Smtp, |c| c.limits.max_smtp_commands = 5).await;
    let mut c = h.greeted(Mode::Smtp).await;
    for _ in 0..4 {
        assert_eq!(c.cmd("NOOP").await.0, 250);
    }
    let (code, text) = c.cmd("NOOP").await;
    assert!(text.starts_with("421 4.7.0 "), "{code} {text}");
    assert!(c.closed().await);
    h.stop().await;
}

#[tokio::test]
async fn lmtp_answers_per_recipient_after_data() {
    let h = start(Mode::Lmtp).await;
    let mut c = h.connect().await;
    let (code, text) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 500, "LMTP wants LHLO: {text}");
    assert_eq!(c.cmd("LHLO client.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<nobody@example.org>").await.0, 550);
    assert_eq!(c.cmd("RCPT TO:<bob@example.org>").await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(b"Subject: lmtp\r\n\r\nhi\r\n.\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("<alice@example.org>"), "{text}");
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("<bob@example.org>"), "{text}");
    assert_eq!(
        c.cmd("NOOP").await.0,
        250,
        "exactly one reply per accepted recipient"
    );
    // RFC 2033 §4.2: DATA without a successful RCPT is 503.
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<nobody@example.org>").await.0, 550);
    assert_eq!(c.cmd("DATA").await.0, 503);
    let raw = &h.inbox(&h.alice).await[0];
    assert!(String::from_utf8_lossy(raw).contains("with LMTP id"));
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_data_finish_and_closes_idle_sessions() {
    let h = start(Mode::Smtp).await;
    let mut idle = h.greeted(Mode::Smtp).await;
    let mut busy = h.greeted(Mode::Smtp).await;
    assert_eq!(busy.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(busy.cmd("RCPT TO:<alice@example.org>").await.0, 250);
    assert_eq!(busy.cmd("DATA").await.0, 354);
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    h.shutdown.cancel();
    let (code, text) = idle.reply().await;
    assert!(text.starts_with("421 4.3.2 "), "{code} {text}");
    assert!(idle.closed().await);
    // New connections are no longer accepted (the listener is gone or refuses).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !h.server.is_finished(),
        "serve waits for the in-flight DATA"
    );

    busy.send(b"second half\r\n.\r\n").await;
    let (code, text) = busy.reply().await;
    assert_eq!(code, 250, "{text}");
    let (code, text) = busy.reply().await;
    assert!(text.starts_with("421 4.3.2 "), "{code} {text}");
    tokio::time::timeout(Duration::from_secs(5), h.server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mb = h.store.mailbox(h.alice.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(h.store.message_index(mb.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_bare_lf_dot_does_not_end_the_data() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    // "\n.\n" and "\n.\r\n" are not the end of data (SMTP smuggling).
    c.send(b"Subject: smuggle\r\n\r\nbody\n.\nMAIL FROM:<x@y.test>\n.\r\nstill body\r\n.\r\n")
        .await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(c.cmd("NOOP").await.0, 250);
    let inbox = h.inbox(&h.alice).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        strip_trace(&inbox[0]),
        b"Subject: smuggle\r\n\r\nbody\n.\nMAIL FROM:<x@y.test>\n.\r\nstill body\r\n"
    );
    h.stop().await;
}

#[tokio::test]
async fn data_arriving_in_tiny_pieces_is_unstuffed_correctly() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    let message = sample_message("tiny");
    let mut wire = dot_stuff(&message);
    wire.extend_from_slice(b".\r\n");
    c.stream.get_ref().set_nodelay(true).unwrap();
    for byte in wire {
        c.send(&[byte]).await;
        c.stream.get_mut().flush().await.unwrap();
    }
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(strip_trace(&h.inbox(&h.alice).await[0]), &message[..]);
    h.stop().await;
}

use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn over_quota_is_a_temporary_failure_and_lmtp_answers_per_recipient() {
    let h = start(Mode::Smtp).await;
    h.store
        .set_quota("bob@example.org", Some(10))
        .await
        .unwrap();
    let mut c = h.greeted(Mode::Smtp).await;
    let (code, text) = c
        .send_mail(
            "s@remote.test",
            &["bob@example.org"],
            b"Subject: q\r\n\r\ntoo big for bob\r\n",
        )
        .await;
    assert!(text.starts_with("452 4.2.2 "), "{code} {text}");
    assert!(h.inbox(&h.bob).await.is_empty());
    h.stop().await;

    let h = start(Mode::Lmtp).await;
    h.store
        .set_quota("bob@example.org", Some(10))
        .await
        .unwrap();
    let mut c = h.greeted(Mode::Lmtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.org>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<info@example.org>").await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(b"Subject: quota\r\n\r\nalice yes, bob no\r\n.\r\n")
        .await;
    let replies = [c.reply().await, c.reply().await, c.reply().await];
    assert_eq!(replies[0].0, 250, "{:?}", replies);
    assert!(replies[1].1.starts_with("452 4.2.2 "), "{:?}", replies);
    assert_eq!(replies[2].0, 250, "{:?}", replies);
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
    assert!(h.inbox(&h.bob).await.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn internationalized_addresses_need_smtputf8() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    let (_, text) = c.cmd("MAIL FROM:<jösé@remote.test>").await;
    assert!(text.starts_with("553 5.6.7 "), "{text}");
    let (code, text) = c.cmd("MAIL FROM:<jösé@remote.test> SMTPUTF8").await;
    assert_eq!(code, 250, "{text}");
    let (code, text) = c.cmd("RCPT TO:<alice@example.org>").await;
    assert_eq!(code, 250, "{text}");
    let (code, text) = c.cmd("DATA").await;
    assert_eq!(code, 354, "{text}");
    c.send("Subject: héllo\r\n\r\nünïcödé\r\n.\r\n".as_bytes())
        .await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    let raw = String::from_utf8(h.inbox(&h.alice).await.remove(0)).unwrap();
    assert!(
        raw.starts_with("Return-Path: <jösé@remote.test>\r\n"),
        "{raw}"
    );
    assert!(raw.contains("with UTF8SMTP id"), "{raw}");
    h.stop().await;
}

#[tokio::test]
async fn a_client_trickling_data_cannot_hold_the_shutdown() {
    let h = start_with(Mode::Smtp, |c| {
        c.limits.smtp_idle_timeout = Duration::from_millis(800)
    })
    .await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>").await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(b"Subject: slow\r\n\r\n").await;
    h.shutdown.cancel();
    // Each byte comes well within the idle timeout; the grace still ends it.
    let started = std::time::Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if c.stream.get_mut().write_all(b"x").await.is_err() || h.server.is_finished() {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the server still waits after {:?}",
        started.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(5), h.server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mb = h.store.mailbox(h.alice.id, "INBOX").await.unwrap().unwrap();
    assert!(h.store.message_index(mb.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_command_limit_counts_from_the_last_delivered_message() {
    let h = start_with(Mode::Smtp, |c| c.limits.max_smtp_commands = 6).await;
    let mut c = h.greeted(Mode::Smtp).await;
    // Each message takes MAIL, RCPT, DATA (+ the EHLO before the first): 3 or 4
    // commands, so three messages exceed 6 commands but each delivery resets.
    for n in 0..3 {
        let (code, text) = c
            .send_mail(
                "s@remote.test",
                &["alice@example.org"],
                format!("Subject: {n}\r\n\r\nx\r\n").as_bytes(),
            )
            .await;
        assert_eq!(code, 250, "{text}");
    }
    assert_eq!(h.inbox(&h.alice).await.len(), 3);
    for _ in 0..7 {
        let (code, text) = c.cmd("NOOP").await;
        if code == 421 {
            assert!(text.starts_with("421 4.7.0 "), "{text}");
            assert!(c.closed().await);
            return h.stop().await;
        }
    }
    panic!("seven NOOPs after a delivery should pass the limit of six");
}

#[tokio::test]
async fn unparsable_addresses_in_a_local_domain_are_unknown_users_not_relay() {
    let h = start(Mode::Smtp).await;
    let mut c = h.greeted(Mode::Smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").await.0, 250);
    let long = format!("RCPT TO:<{}@example.org>", "x".repeat(70));
    for rcpt in [
        "RCPT TO:<\"a b\"@example.org>",
        long.as_str(),
        "RCPT TO:<alice@example.org.>",
    ] {
        let (_, text) = c.cmd(rcpt).await;
        assert!(text.starts_with("550 5.1.1 "), "{rcpt}: {text}");
    }
    let (_, text) = c.cmd("RCPT TO:<alice@EXAMPLE.org>").await;
    assert!(text.starts_with("250 2.1.5 "), "{text}");
    h.stop().await;
}
