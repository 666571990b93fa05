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
