//! Direct delivery to the recipient domains' mail exchangers (RFC 5321 §5.1), with no
//! smarthost configured. DNS is a `StaticResolver`; the exchangers are
//! mailin-embedded peers on several loopback addresses (127.0.0.2, 127.0.0.3, ...)
//! sharing one ephemeral port, which the worker is told to use instead of 25.
//! 127.0.0.9 has no listener: connecting there is refused.
#![allow(clippy::unwrap_used)]

#[path = "common/peer.rs"]
mod peer;
mod tlsauth;

use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailroom_smtp::{LookupError, Mode, RelayWorker, StaticResolver};
use peer::{Sink, wait_for};
use tlsauth::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

const ALICE: &str = "alice@example.org";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Starts one exchanger per (address, sink), all on one port, and returns the port.
fn exchangers(peers: &[(&str, &Sink)]) -> u16 {
    'again: for _ in 0..20 {
        let first = TcpListener::bind((peers[0].0, 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for (address, _) in &peers[1..] {
            match TcpListener::bind((*address, port)) {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'again,
            }
        }
        for ((address, sink), listener) in peers.iter().zip(listeners) {
            sink.serve(&format!("mx-{address}.test"), listener);
        }
        return port;
    }
    panic!(
        "no port free on all of {peers:?}",
        peers = peers.iter().map(|p| p.0).collect::<Vec<_>>()
    );
}

/// A server with alice and bob at example.org, no smarthost, quick retries.
async fn harness() -> Harness {
    start(Mode::Submission, false, |c| {
        c.relay.host = None;
        c.queue.retry_after = Duration::from_secs(1);
        c.queue.max_retry_interval = Duration::from_secs(2);
    })
    .await
}

/// A relay worker resolving with `dns` and reaching exchangers on `port`.
fn worker(
    h: &Harness,
    dns: &StaticResolver,
    port: u16,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let stop = CancellationToken::new();
    let w = RelayWorker::new(h.store.clone(), h.config.clone())
        .with_resolver(Arc::new(dns.clone()))
        .with_mx_port(port);
    (stop.clone(), tokio::spawn(w.run(stop)))
}

/// Queues a message from alice to `to`.
async fn enqueue(h: &Harness, subject: &str, to: &[&str]) {
    let raw = format!("From: {ALICE}\r\nTo: someone\r\nSubject: {subject}\r\n\r\nhello\r\n");
    let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
    h.store.enqueue(raw.into_bytes(), ALICE, &to).await.unwrap();
}

async fn queue_empty(h: &Harness) {
    wait_for("the queue to empty", async || {
        h.store.queue_size().await.unwrap() == 0
    })
    .await;
}

/// The one DSN in alice's INBOX.
async fn the_dsn(h: &Harness) -> String {
    wait_for("the DSN", async || !h.inbox(&h.alice).await.is_empty()).await;
    let inbox = h.inbox(&h.alice).await;
    assert_eq!(inbox.len(), 1);
    let dsn = String::from_utf8_lossy(&inbox[0]).to_string();
    assert!(
        dsn.contains("multipart/report; report-type=delivery-status"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed"), "{dsn}");
    dsn
}

async fn finish(
    h: Harness,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
) {
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test]
async fn mail_goes_to_the_most_preferred_mx() {
    let (best, other) = (Sink::new(0, false), Sink::new(0, false));
    let port = exchangers(&[("127.0.0.2", &best), ("127.0.0.3", &other)]);
    let dns = StaticResolver::new();
    dns.set_mx(
        "remote.test",
        &[(20, "mx2.remote.test."), (10, "mx1.remote.test.")],
    )
    .set_addresses("mx1.remote.test", &[ip("127.0.0.2")])
    .set_addresses("mx2.remote.test", &[ip("127.0.0.3")]);
    let h = harness().await;
    enqueue(&h, "direct", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    let received = best.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, ALICE);
    assert_eq!(received[0].1, vec!["x@remote.test"]);
    assert!(String::from_utf8_lossy(&received[0].2).contains("Subject: direct"));
    assert_eq!(other.rcpt_attempts(), 0, "the backup MX was not needed");
    assert!(h.inbox(&h.alice).await.is_empty());
    finish(h, stop, task).await;
}

#[tokio::test]
async fn an_unreachable_mx_passes_the_message_to_the_next() {
    let up = Sink::new(0, false);
    let port = exchangers(&[("127.0.0.2", &up)]);
    let dns = StaticResolver::new();
    dns.set_mx(
        "remote.test",
        &[
            (5, "unresolvable.remote.test"),
            (10, "down.remote.test"),
            (20, "up.remote.test"),
        ],
    )
    .set_addresses_error(
        "unresolvable.remote.test",
        LookupError::Temporary("SERVFAIL".into()),
    )
    .set_addresses("down.remote.test", &[ip("127.0.0.9")])
    .set_addresses("up.remote.test", &[ip("127.0.0.2")]);
    let h = harness().await;
    enqueue(&h, "fallback", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    assert_eq!(up.received().len(), 1);
    assert!(h.inbox(&h.alice).await.is_empty(), "no DSN");
    finish(h, stop, task).await;
}

#[tokio::test]
async fn a_4xx_from_the_first_mx_passes_the_message_to_the_next() {
    let (busy, backup) = (Sink::new(u32::MAX, false), Sink::new(0, false));
    let port = exchangers(&[("127.0.0.2", &busy), ("127.0.0.3", &backup)]);
    let dns = StaticResolver::new();
    dns.set_mx(
        "remote.test",
        &[(10, "busy.remote.test"), (20, "backup.remote.test")],
    )
    .set_addresses("busy.remote.test", &[ip("127.0.0.2")])
    .set_addresses("backup.remote.test", &[ip("127.0.0.3")]);
    let h = harness().await;
    enqueue(&h, "busy", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    assert_eq!(busy.rcpt_attempts(), 1);
    assert!(busy.received().is_empty());
    assert_eq!(backup.received().len(), 1);
    assert!(h.inbox(&h.alice).await.is_empty(), "no DSN");
    finish(h, stop, task).await;
}

#[tokio::test]
async fn every_address_of_an_mx_host_is_tried() {
    let mx = Sink::new(0, false);
    let port = exchangers(&[("127.0.0.3", &mx)]);
    let dns = StaticResolver::new();
    dns.set_mx("remote.test", &[(10, "mx.remote.test")])
        .set_addresses("mx.remote.test", &[ip("127.0.0.9"), ip("127.0.0.3")]);
    let h = harness().await;
    enqueue(&h, "second address", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    assert_eq!(mx.received().len(), 1);
    finish(h, stop, task).await;
}

#[tokio::test]
async fn a_domain_without_mx_is_its_own_mail_server() {
    let host = Sink::new(0, false);
    let port = exchangers(&[("127.0.0.2", &host)]);
    let dns = StaticResolver::new();
    // No MX records (NODATA), but an address: the implicit MX.
    dns.set_addresses("plain.test", &[ip("127.0.0.2")]);
    let h = harness().await;
    enqueue(&h, "implicit", &["x@plain.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    assert_eq!(host.received()[0].1, vec!["x@plain.test"]);
    finish(h, stop, task).await;
}

#[tokio::test]
async fn recipients_are_split_per_domain() {
    let (a, b) = (Sink::new(0, false), Sink::new(0, false));
    let port = exchangers(&[("127.0.0.2", &a), ("127.0.0.3", &b)]);
    let dns = StaticResolver::new();
    dns.set_mx("a.test", &[(10, "mx.a.test")])
        .set_addresses("mx.a.test", &[ip("127.0.0.2")])
        .set_addresses("b.test", &[ip("127.0.0.3")])
        .set_mx("nullmx.test", &[(0, ".")]);
    let h = harness().await;
    enqueue(
        &h,
        "three domains",
        &["x@a.test", "z@B.Test", "y@a.test", "n@nullmx.test"],
    )
    .await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    let at_a = a.received();
    assert_eq!(
        at_a.len(),
        1,
        "one transaction for both recipients at a.test"
    );
    let mut rcpts = at_a[0].1.clone();
    rcpts.sort();
    assert_eq!(rcpts, vec!["x@a.test", "y@a.test"]);
    let at_b = b.received();
    assert_eq!(at_b.len(), 1);
    assert_eq!(at_b[0].1, vec!["z@B.Test"]);
    // Only the recipient at the domain that takes no mail bounces.
    let dsn = the_dsn(&h).await;
    assert!(
        dsn.contains("Final-Recipient: rfc822; n@nullmx.test"),
        "{dsn}"
    );
    assert!(!dsn.contains("Final-Recipient: rfc822; x@a.test"), "{dsn}");
    assert!(!dsn.contains("Final-Recipient: rfc822; z@B.Test"), "{dsn}");
    finish(h, stop, task).await;
}

#[tokio::test]
async fn the_null_mx_bounces_at_once() {
    let dns = StaticResolver::new();
    dns.set_mx("nullmx.test", &[(0, ".")]);
    let h = harness().await;
    enqueue(&h, "null mx", &["x@nullmx.test"]).await;
    // No exchanger at all: nothing may be contacted.
    let (stop, task) = worker(&h, &dns, 9);
    let dsn = the_dsn(&h).await;
    assert!(
        dsn.contains("Final-Recipient: rfc822; x@nullmx.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.10"), "{dsn}");
    assert!(dsn.contains("null MX"), "{dsn}");
    assert!(dsn.contains("Subject: null mx"), "original headers: {dsn}");
    queue_empty(&h).await;
    finish(h, stop, task).await;
}

#[tokio::test]
async fn a_domain_that_does_not_exist_bounces() {
    let dns = StaticResolver::new();
    dns.set_mx_error("nowhere.test", LookupError::NoSuchDomain);
    let h = harness().await;
    enqueue(&h, "nxdomain", &["x@nowhere.test"]).await;
    let (stop, task) = worker(&h, &dns, 9);
    let dsn = the_dsn(&h).await;
    assert!(dsn.contains("Status: 5.1.2"), "{dsn}");
    assert!(dsn.contains("does not exist"), "{dsn}");
    queue_empty(&h).await;
    finish(h, stop, task).await;
}

#[tokio::test]
async fn mx_hosts_without_addresses_bounce() {
    let dns = StaticResolver::new();
    // mx1 does not exist, mx2 has no A/AAAA: no usable exchanger, for good.
    dns.set_mx(
        "remote.test",
        &[(10, "mx1.remote.test"), (20, "mx2.remote.test")],
    )
    .set_addresses_error("mx2.remote.test", LookupError::NoRecords);
    let h = harness().await;
    enqueue(&h, "no address", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, 9);
    let dsn = the_dsn(&h).await;
    assert!(dsn.contains("Status: 5.4.4"), "{dsn}");
    assert!(dsn.contains("mx1.remote.test"), "{dsn}");
    queue_empty(&h).await;
    finish(h, stop, task).await;
}

#[tokio::test]
async fn a_temporary_dns_failure_keeps_the_message_queued() {
    let mx = Sink::new(0, false);
    let port = exchangers(&[("127.0.0.2", &mx)]);
    let dns = StaticResolver::new();
    dns.set_mx_error("remote.test", LookupError::Temporary("SERVFAIL".into()))
        .set_addresses("mx.remote.test", &[ip("127.0.0.2")]);
    let h = harness().await;
    enqueue(&h, "dns down", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    wait_for("the first attempt to be recorded", async || {
        let q = h.store.queue_list().await.unwrap();
        q.first().is_some_and(|e| e.attempts >= 1)
    })
    .await;
    let entry = h.store.queue_list().await.unwrap().remove(0);
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("SERVFAIL"),
        "{entry:?}"
    );
    assert!(
        h.inbox(&h.alice).await.is_empty(),
        "no DSN for a DNS failure"
    );
    // DNS recovers: the retry delivers.
    dns.set_mx("remote.test", &[(10, "mx.remote.test")]);
    queue_empty(&h).await;
    assert_eq!(mx.received().len(), 1);
    assert!(h.inbox(&h.alice).await.is_empty());
    finish(h, stop, task).await;
}

/// A domain whose exchanger takes the connection and never says a word: the attempt
/// ends at its time limit (below the claim's lease, so no other worker can take the
/// message while it is still being sent), the silent domain is deferred, and the
/// other domain of the same message is delivered meanwhile, not after it.
#[tokio::test]
async fn a_silent_mx_is_deferred_at_the_attempt_limit_without_holding_the_others() {
    let fast = Sink::new(0, false);
    let (silent, port) = loop {
        let silent = tokio::net::TcpListener::bind(("127.0.0.3", 0))
            .await
            .unwrap();
        let port = silent.local_addr().unwrap().port();
        if let Ok(listener) = TcpListener::bind(("127.0.0.2", port)) {
            fast.serve("mx-fast.test", listener);
            break (silent, port);
        }
    };
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = held.clone();
    let mute = tokio::spawn(async move {
        while let Ok((stream, _)) = silent.accept().await {
            holder.lock().unwrap().push(stream);
        }
    });
    let dns = StaticResolver::new();
    dns.set_mx("fast.test", &[(10, "mx.fast.test")])
        .set_addresses("mx.fast.test", &[ip("127.0.0.2")])
        .set_mx("silent.test", &[(10, "mx.silent.test")])
        .set_addresses("mx.silent.test", &[ip("127.0.0.3")]);
    let h = harness().await;
    enqueue(&h, "two domains", &["y@silent.test", "x@fast.test"]).await;
    let stop = CancellationToken::new();
    let w = RelayWorker::new(h.store.clone(), h.config.clone())
        .with_resolver(Arc::new(dns.clone()))
        .with_mx_port(port)
        .with_attempt_limit(Duration::from_secs(2));
    let task = tokio::spawn(w.run(stop.clone()));
    wait_for("the first attempt to be recorded", async || {
        let q = h.store.queue_list().await.unwrap();
        q.first().is_some_and(|e| e.attempts >= 1)
    })
    .await;
    let received = fast.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1, vec!["x@fast.test"]);
    assert!(!held.lock().unwrap().is_empty(), "the silent MX was tried");
    let entry = h.store.queue_list().await.unwrap().remove(0);
    let left: Vec<&str> = entry
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(left, ["y@silent.test"]);
    let error = entry.last_error.unwrap_or_default();
    assert!(
        error.contains("no answer from the MX of silent.test"),
        "{error}"
    );
    assert!(h.inbox(&h.alice).await.is_empty(), "deferred, not bounced");
    mute.abort();
    finish(h, stop, task).await;
}

#[tokio::test]
async fn a_5xx_from_the_mx_bounces_without_trying_the_next() {
    let (refusing, backup) = (Sink::new(0, true), Sink::new(0, false));
    let port = exchangers(&[("127.0.0.2", &refusing), ("127.0.0.3", &backup)]);
    let dns = StaticResolver::new();
    dns.set_mx(
        "remote.test",
        &[(10, "mx1.remote.test"), (20, "mx2.remote.test")],
    )
    .set_addresses("mx1.remote.test", &[ip("127.0.0.2")])
    .set_addresses("mx2.remote.test", &[ip("127.0.0.3")]);
    let h = harness().await;
    enqueue(&h, "refused", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    let dsn = the_dsn(&h).await;
    assert!(
        dsn.contains("Final-Recipient: rfc822; x@remote.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(dsn.contains("550"), "{dsn}");
    queue_empty(&h).await;
    assert_eq!(refusing.rcpt_attempts(), 1);
    assert_eq!(backup.rcpt_attempts(), 0, "a 5xx is final");
    finish(h, stop, task).await;
}

#[tokio::test]
async fn mx_hosts_of_equal_preference_share_the_mail() {
    let (one, two) = (Sink::new(0, false), Sink::new(0, false));
    let port = exchangers(&[("127.0.0.2", &one), ("127.0.0.3", &two)]);
    let dns = StaticResolver::new();
    dns.set_mx(
        "remote.test",
        &[(10, "one.remote.test"), (10, "two.remote.test")],
    )
    .set_addresses("one.remote.test", &[ip("127.0.0.2")])
    .set_addresses("two.remote.test", &[ip("127.0.0.3")]);
    let h = harness().await;
    for i in 0..16 {
        enqueue(&h, &format!("message {i}"), &["x@remote.test"]).await;
    }
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    let (n1, n2) = (one.received().len(), two.received().len());
    assert_eq!(n1 + n2, 16);
    // Each has 1 chance in 2^16 of getting none when the order is random.
    assert!(n1 > 0 && n2 > 0, "{n1} and {n2}");
    finish(h, stop, task).await;
}

#[tokio::test]
async fn an_address_literal_is_its_own_mail_server() {
    let host = Sink::new(0, false);
    let port = exchangers(&[("127.0.0.2", &host)]);
    // DNS knows nothing: none is asked.
    let dns = StaticResolver::new();
    let h = harness().await;
    enqueue(&h, "literal", &["x@[127.0.0.2]"]).await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    assert_eq!(host.received()[0].1, vec!["x@[127.0.0.2]"]);
    assert!(h.inbox(&h.alice).await.is_empty());
    finish(h, stop, task).await;
}

#[tokio::test]
async fn an_ipv6_only_mx_is_reached() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let mx = Sink::new(0, false);
    let port = exchangers(&[("::1", &mx)]);
    let dns = StaticResolver::new();
    dns.set_mx("remote.test", &[(10, "mx.remote.test")])
        .set_addresses("mx.remote.test", &[ip("::1")]);
    let h = harness().await;
    enqueue(&h, "v6", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    assert_eq!(mx.received().len(), 1);
    finish(h, stop, task).await;
}

#[tokio::test]
async fn at_most_five_addresses_are_tried_per_attempt() {
    let mx = Sink::new(0, false);
    let port = exchangers(&[("127.0.0.2", &mx)]);
    let dns = StaticResolver::new();
    let mut addresses: Vec<IpAddr> = (9..14).map(|i| ip(&format!("127.0.0.{i}"))).collect();
    addresses.push(ip("127.0.0.2"));
    dns.set_mx("remote.test", &[(10, "mx.remote.test")])
        .set_addresses("mx.remote.test", &addresses);
    let h = harness().await;
    enqueue(&h, "many addresses", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    wait_for("two attempts", async || {
        let q = h.store.queue_list().await.unwrap();
        q.first().is_some_and(|e| e.attempts >= 2)
    })
    .await;
    assert!(mx.received().is_empty(), "the sixth address is not tried");
    let entry = h.store.queue_list().await.unwrap().remove(0);
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("connection"),
        "{entry:?}"
    );
    assert!(h.inbox(&h.alice).await.is_empty(), "no DSN");
    finish(h, stop, task).await;
}

/// An exchanger on 127.0.0.2 that offers STARTTLS but cannot do it: it answers
/// STARTTLS with `starttls_reply`, and after a 220 sends bytes that are no TLS and
/// hangs up. Otherwise it speaks plain SMTP and records the recipients of every
/// message it accepts, and how often STARTTLS was asked for.
async fn broken_tls_exchanger(
    starttls_reply: &'static str,
) -> (u16, Arc<Mutex<Vec<Vec<String>>>>, Arc<Mutex<u32>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let starttls: Arc<Mutex<u32>> = Arc::default();
    let (a, t) = (accepted.clone(), starttls.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (accepted, starttls) = (a.clone(), t.clone());
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut rcpts = Vec::new();
                stream
                    .get_mut()
                    .write_all(b"220 broken-tls.test ESMTP\r\n")
                    .await
                    .unwrap();
                loop {
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &str = match verb.as_str() {
                        "EHLO" => "250-broken-tls.test\r\n250 STARTTLS\r\n",
                        "STAR" => {
                            *starttls.lock().unwrap() += 1;
                            let out = stream.get_mut();
                            out.write_all(starttls_reply.as_bytes()).await.unwrap();
                            if starttls_reply.starts_with("220") {
                                let _ = out.write_all(b"this is no TLS record\r\n").await;
                                return;
                            }
                            continue;
                        }
                        "RCPT" => {
                            let to = line.trim_end();
                            let to =
                                to[to.find('<').unwrap() + 1..to.rfind('>').unwrap()].to_string();
                            rcpts.push(to);
                            "250 2.1.5 ok\r\n"
                        }
                        "DATA" => {
                            stream.get_mut().write_all(b"354 go on\r\n").await.unwrap();
                            loop {
                                let mut data = String::new();
                                if stream.read_line(&mut data).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if data == ".\r\n" {
                                    break;
                                }
                            }
                            accepted.lock().unwrap().push(std::mem::take(&mut rcpts));
                            "250 2.0.0 accepted\r\n"
                        }
                        "QUIT" => {
                            let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
                            return;
                        }
                        "MAIL" | "RSET" | "NOOP" => "250 2.0.0 ok\r\n",
                        _ => "500 5.5.1 what?\r\n",
                    };
                    stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (port, accepted, starttls)
}

/// An exchanger whose STARTTLS fails gets the message in plain text (RFC 7435),
/// rather than never.
async fn plain_text_after(starttls_reply: &'static str) {
    let (port, accepted, starttls) = broken_tls_exchanger(starttls_reply).await;
    let dns = StaticResolver::new();
    dns.set_mx("remote.test", &[(10, "mx.remote.test")])
        .set_addresses("mx.remote.test", &[ip("127.0.0.2")]);
    let h = harness().await;
    enqueue(&h, "tls broken", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    queue_empty(&h).await;
    assert_eq!(
        *accepted.lock().unwrap(),
        vec![vec!["x@remote.test".to_string()]]
    );
    assert_eq!(
        *starttls.lock().unwrap(),
        1,
        "one try with TLS, then plain text"
    );
    assert!(h.inbox(&h.alice).await.is_empty(), "no DSN");
    finish(h, stop, task).await;
}

#[tokio::test]
async fn a_broken_starttls_handshake_falls_back_to_plain_text() {
    plain_text_after("220 2.0.0 go ahead\r\n").await;
}

#[tokio::test]
async fn a_refused_starttls_falls_back_to_plain_text() {
    plain_text_after("454 4.7.0 TLS not available\r\n").await;
}

#[tokio::test]
async fn mail_whose_best_mx_is_this_host_bounces_instead_of_looping() {
    let backup = Sink::new(0, false);
    let port = exchangers(&[("127.0.0.3", &backup)]);
    let dns = StaticResolver::new();
    // The harness's hostname is mx.example.org.
    dns.set_mx(
        "remote.test",
        &[(10, "MX.example.org"), (20, "backup.remote.test")],
    )
    .set_addresses("mx.example.org", &[ip("127.0.0.2")])
    .set_addresses("backup.remote.test", &[ip("127.0.0.3")]);
    let h = harness().await;
    enqueue(&h, "loop", &["x@remote.test"]).await;
    let (stop, task) = worker(&h, &dns, port);
    let dsn = the_dsn(&h).await;
    assert!(dsn.contains("Status: 5.4.6"), "{dsn}");
    assert!(dsn.contains("would loop"), "{dsn}");
    queue_empty(&h).await;
    assert_eq!(
        backup.rcpt_attempts(),
        0,
        "a less preferred MX is no way out"
    );
    finish(h, stop, task).await;
}
