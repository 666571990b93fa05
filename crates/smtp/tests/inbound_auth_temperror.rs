//! Sender authentication when the DNS server does not answer: every check says
//! temperror (RFC 8601 §2.7) and the message is delivered, never refused, even
//! with DMARC and SPF enforcement on. In a test binary of its own because it
//! stops the DNS server every other test needs.
#![allow(clippy::unwrap_used)]

mod common;
mod inbound;

use inbound::*;

#[tokio::test]
async fn dns_down_gives_temperror_and_delivers() {
    let dns = dns();
    let h = mx(|c| {
        c.inbound.spf_enforce = true;
        // Each unanswered lookup costs timeout x attempts (2).
        c.dns.timeout = std::time::Duration::from_millis(300);
    })
    .await;
    dns.stop();
    let signed = dns.sign(&message("ceo@sender.test", "dns-down"));
    let started = std::time::Instant::now();
    let (code, text) = send_from(&h, BAD_IP, "bounce@sender.test", &signed).await;
    assert_eq!(code, 250, "a DNS failure never refuses: {text}");
    let ar = our_results(&h).await;
    eprintln!("answered after {:?}: {ar}", started.elapsed());
    assert!(ar.contains("spf=temperror"), "{ar}");
    assert!(ar.contains("dkim=temperror"), "{ar}");
    assert!(ar.contains("dmarc=temperror"), "{ar}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded by [dns] timeout: {:?}",
        started.elapsed()
    );
    h.stop().await;
}

#[tokio::test]
async fn a_silent_name_server_ends_the_checks_at_their_deadline() {
    // A name server that never answers: every lookup runs into [dns] timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let h = common::start_with(mailroom_smtp::Mode::Smtp, |c| {
        c.inbound.verify = true;
        c.dns.nameservers = vec![addr];
        c.dns.timeout = std::time::Duration::from_millis(200);
    })
    .await;
    let started = std::time::Instant::now();
    let (code, text) = send_from(
        &h,
        BAD_IP,
        "bounce@sender.test",
        &message("ceo@sender.test", "silent-dns"),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, 250, "{text}");
    let ar = our_results(&h).await;
    assert!(ar.contains("spf=temperror"), "{ar}");
    assert!(ar.contains("dmarc=temperror"), "{ar}");
    // 6 lookup timeouts of 200 ms, and some slack for a busy machine.
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    h.stop().await;
}
