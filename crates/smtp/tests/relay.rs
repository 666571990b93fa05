//! The relay worker against an independent SMTP server on loopback: mailin-embedded
//! plays the smarthost. Mail submitted over the submission listener arrives there
//! with the right envelope; a 451 (at RCPT) is retried; a 550 bounces with an RFC 3464 DSN into
//! the sender's INBOX; a new worker over a reopened store finishes the queue.
#![allow(clippy::unwrap_used)]

#[path = "common/peer.rs"]
mod peer;
mod tlsauth;

use std::sync::atomic::Ordering;
use std::time::Duration;

use mailroom_config::{Config, RelayTls};
use mailroom_smtp::{Mode, RelayWorker};
use peer::{smarthost, wait_for};
use tlsauth::*;
use tokio_util::sync::CancellationToken;

fn relay_to(port: u16) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.relay.host = Some("127.0.0.1".into());
        c.relay.port = Some(port);
        c.relay.tls = RelayTls::None;
        c.queue.retry_after = Duration::from_secs(1);
        c.queue.max_retry_interval = Duration::from_secs(2);
    }
}

async fn submit_as_alice(h: &Harness, to: &[&str]) {
    let mut c = h.connect_starttls().await;
    let ir = b64(b"\0alice@example.org\0pw-alice");
    let (code, text) = c.cmd(&format!("AUTH PLAIN {ir}")).await;
    assert_eq!(code, 235, "{text}");
    let (code, text) = c
        .send_mail(
            "alice@example.org",
            to,
            "From: alice@example.org\r\nTo: x@remote.example\r\nBcc: y@remote.example\r\nSubject: relayed\r\n\r\nhello\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
}

fn worker(
    h: &Harness,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let stop = CancellationToken::new();
    let w = RelayWorker::new(h.store.clone(), h.config.clone());
    (stop.clone(), tokio::spawn(w.run(stop)))
}

#[tokio::test]
async fn submitted_mail_reaches_the_smarthost_with_its_envelope() {
    let (port, sink) = smarthost(0, false);
    let h = start(Mode::Submission, false, relay_to(port)).await;
    submit_as_alice(
        &h,
        &["x@remote.example", "y@remote.example", "bob@example.org"],
    )
    .await;
    let (stop, task) = worker(&h);
    wait_for("the smarthost", async || {
        !sink.received.lock().unwrap().is_empty()
    })
    .await;
    let (from, mut to, data) = sink.received.lock().unwrap()[0].clone();
    to.sort();
    assert_eq!(from, "alice@example.org");
    assert_eq!(to, vec!["x@remote.example", "y@remote.example"]);
    let text = String::from_utf8_lossy(&data);
    assert!(text.contains("Subject: relayed"), "{text}");
    assert!(!text.contains("Bcc"), "{text}");
    assert!(text.contains("Message-ID: <"), "{text}");
    // The local recipient got it directly, not through the relay.
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
    wait_for("the queue to empty", async || {
        h.store.queue_size().await.unwrap() == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test]
async fn a_temporary_failure_is_retried() {
    let (port, sink) = smarthost(1, false);
    let h = start(Mode::Submission, false, relay_to(port)).await;
    submit_as_alice(&h, &["x@remote.example"]).await;
    let (stop, task) = worker(&h);
    wait_for("the first attempt to be recorded", async || {
        let q = h.store.queue_list().await.unwrap();
        q.first().is_some_and(|e| e.attempts == 1)
    })
    .await;
    let entry = h.store.queue_list().await.unwrap().remove(0);
    assert!(
        entry.last_error.as_deref().unwrap_or("").contains("451"),
        "{entry:?}"
    );
    wait_for("the retry", async || {
        !sink.received.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(sink.attempts.load(Ordering::SeqCst), 2);
    wait_for("the queue to empty", async || {
        h.store.queue_size().await.unwrap() == 0
    })
    .await;
    assert!(
        h.inbox(&h.alice).await.is_empty(),
        "no bounce for a retried message"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test]
async fn a_permanent_failure_bounces_into_the_senders_inbox() {
    let (port, _sink) = smarthost(0, true);
    let h = start(Mode::Submission, false, relay_to(port)).await;
    submit_as_alice(&h, &["x@remote.example"]).await;
    let (stop, task) = worker(&h);
    wait_for("the DSN", async || !h.inbox(&h.alice).await.is_empty()).await;
    let dsn = String::from_utf8_lossy(&h.inbox(&h.alice).await[0]).to_string();
    assert!(
        dsn.contains("multipart/report; report-type=delivery-status"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Final-Recipient: rfc822; x@remote.example"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("550"), "{dsn}");
    // The enhanced status code of the reply, not a generic 5.0.0.
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(dsn.contains("Subject: relayed"), "original headers: {dsn}");
    assert_eq!(h.store.queue_size().await.unwrap(), 0);
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test]
async fn a_bounce_is_never_bounced() {
    let (port, sink) = smarthost(0, true);
    let h = start(Mode::Submission, false, relay_to(port)).await;
    h.store
        .enqueue(
            b"Subject: dsn\r\n\r\nx\r\n".to_vec(),
            "",
            &["x@remote.example".into()],
        )
        .await
        .unwrap();
    let (stop, task) = worker(&h);
    wait_for("the queue to empty", async || {
        h.store.queue_size().await.unwrap() == 0
    })
    .await;
    assert!(sink.received.lock().unwrap().is_empty());
    assert!(h.inbox(&h.alice).await.is_empty());
    assert_eq!(h.store.queue_size().await.unwrap(), 0);
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test]
async fn the_queue_survives_a_restart() {
    let (port, sink) = smarthost(u32::MAX, false);
    let h = start(Mode::Submission, false, relay_to(port)).await;
    submit_as_alice(&h, &["x@remote.example"]).await;
    let (stop, task) = worker(&h);
    wait_for("a failed attempt", async || {
        sink.attempts.load(Ordering::SeqCst) >= 1
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(h.store.queue_size().await.unwrap(), 1);

    // A new process: the store opened again, a new worker; the smarthost recovers.
    sink.fail.store(0, Ordering::SeqCst);
    let (store, _, _) = store_in(h.dir.path()).await;
    assert_eq!(store.queue_size().await.unwrap(), 1);
    let stop = CancellationToken::new();
    let task = tokio::spawn(RelayWorker::new(store.clone(), h.config.clone()).run(stop.clone()));
    wait_for("delivery after the restart", async || {
        !sink.received.lock().unwrap().is_empty()
    })
    .await;
    wait_for("the queue to empty", async || {
        store.queue_size().await.unwrap() == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test]
async fn an_expired_message_bounces_with_4_4_7() {
    let (port, sink) = smarthost(u32::MAX, false);
    let h = start(Mode::Submission, false, |c| {
        relay_to(port)(c);
        c.queue.expire_after = Duration::from_secs(1);
    })
    .await;
    submit_as_alice(&h, &["x@remote.example"]).await;
    let (stop, task) = worker(&h);
    wait_for("the DSN", async || !h.inbox(&h.alice).await.is_empty()).await;
    let dsn = String::from_utf8_lossy(&h.inbox(&h.alice).await[0]).to_string();
    assert!(dsn.contains("Status: 4.4.7"), "{dsn}");
    assert!(dsn.contains("giving up after"), "{dsn}");
    assert!(sink.attempts.load(Ordering::SeqCst) >= 1);
    assert_eq!(h.store.queue_size().await.unwrap(), 0);
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test]
async fn one_refused_recipient_does_not_bounce_the_others() {
    let (port, sink) = smarthost(0, false);
    let h = start(Mode::Submission, false, relay_to(port)).await;
    submit_as_alice(&h, &["x@remote.example", "bad@remote.example"]).await;
    let (stop, task) = worker(&h);
    wait_for("the DSN", async || !h.inbox(&h.alice).await.is_empty()).await;
    wait_for("the queue to empty", async || {
        h.store.queue_size().await.unwrap() == 0
    })
    .await;
    let received = sink.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1, vec!["x@remote.example"]);
    let dsn = String::from_utf8_lossy(&h.inbox(&h.alice).await[0]).to_string();
    assert!(
        dsn.contains("Final-Recipient: rfc822; bad@remote.example"),
        "{dsn}"
    );
    assert!(
        !dsn.contains("Final-Recipient: rfc822; x@remote.example"),
        "{dsn}"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}
