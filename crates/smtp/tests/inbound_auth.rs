//! Sender authentication on the MX listener (RFC 7208 SPF, RFC 6376 DKIM, RFC 7489
//! DMARC, RFC 8617 ARC, reported per RFC 8601), over TCP, against a real DNS server
//! (dnslib) with messages signed by an independent signer (dkimpy). The DNS server
//! stopped (temperror) is in inbound_auth_temperror.rs.
#![allow(clippy::unwrap_used)]

mod common;
mod inbound;

use inbound::*;

fn has(results: &str, what: &str) -> bool {
    results.contains(what)
}

#[tokio::test]
async fn spf_dkim_dmarc_pass_from_the_right_address() {
    let h = mx(|_| {}).await;
    let signed = dns().sign(&message("news@sender.test", "all-pass"));
    let (code, text) = send_from(&h, GOOD_IP, "bounce@sender.test", &signed).await;
    assert_eq!(code, 250, "{text}");
    let ar = our_results(&h).await;
    assert!(has(&ar, "spf=pass"), "{ar}");
    assert!(has(&ar, "smtp.mailfrom=bounce@sender.test"), "{ar}");
    assert!(
        has(&ar, "dkim=pass header.i=@sender.test header.s=sel"),
        "{ar}"
    );
    assert!(has(&ar, "dmarc=pass header.from=sender.test"), "{ar}");
    assert!(has(&ar, "arc=none"), "{ar}");
    // HELO client.test publishes no SPF.
    assert!(has(&ar, "spf=none"), "{ar}");
    h.stop().await;
}

#[tokio::test]
async fn spf_fail_from_the_wrong_address_but_dkim_keeps_dmarc() {
    let h = mx(|_| {}).await;
    let signed = dns().sign(&message("news@sender.test", "spf-fail"));
    let (code, text) = send_from(&h, BAD_IP, "bounce@sender.test", &signed).await;
    assert_eq!(code, 250, "DKIM aligned: DMARC passes: {text}");
    let ar = our_results(&h).await;
    assert!(has(&ar, "spf=fail"), "{ar}");
    assert!(has(&ar, "dkim=pass"), "{ar}");
    assert!(has(&ar, "dmarc=pass"), "{ar}");
    h.stop().await;
}

#[tokio::test]
async fn dkim_fail_when_the_message_changed_but_spf_keeps_dmarc() {
    let h = mx(|_| {}).await;
    // A signed header field changed on the way: the signature does not verify.
    let signed = dns().sign(&message("news@sender.test", "dkim-fail"));
    let text = String::from_utf8(signed).unwrap();
    let tampered = text.replace("Subject: dkim-fail", "Subject: dkim-FAIL");
    let (code, reply) = send_from(&h, GOOD_IP, "bounce@sender.test", tampered.as_bytes()).await;
    assert_eq!(code, 250, "{reply}");
    let ar = our_results(&h).await;
    assert!(has(&ar, "dkim=fail"), "{ar}");
    assert!(has(&ar, "spf=pass"), "{ar}");
    assert!(has(&ar, "dmarc=pass"), "SPF aligned: {ar}");

    // The body changed: mail-auth says neutral (body hash did not verify).
    let mut signed = dns().sign(&message("news@sender.test", "body-changed"));
    signed.extend_from_slice(b"a line added after signing\r\n");
    let (code, reply) = send_from(&h, GOOD_IP, "bounce@sender.test", &signed).await;
    assert_eq!(code, 250, "{reply}");
    let ar = our_results(&h).await;
    assert!(has(&ar, "dkim=neutral (body hash did not verify)"), "{ar}");
    h.stop().await;
}

#[tokio::test]
async fn softfail_and_none_without_signatures() {
    let h = mx(|_| {}).await;
    let (code, text) = send_from(
        &h,
        BAD_IP,
        "someone@soft.test",
        &message("someone@soft.test", "softfail"),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    let ar = our_results(&h).await;
    assert!(has(&ar, "spf=softfail"), "{ar}");
    assert!(has(&ar, "smtp.mailfrom=someone@soft.test"), "{ar}");
    assert!(has(&ar, "dkim=none"), "{ar}");
    assert!(has(&ar, "dmarc=none"), "{ar}");

    let (code, text) = send_from(
        &h,
        GOOD_IP,
        "someone@nospf.test",
        &message("someone@nospf.test", "none"),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    let ar = our_results(&h).await;
    assert!(has(&ar, "spf=none"), "{ar}");
    assert!(!has(&ar, "spf=pass") && !has(&ar, "spf=fail"), "{ar}");
    assert!(has(&ar, "dkim=none"), "{ar}");
    h.stop().await;
}

#[tokio::test]
async fn dmarc_reject_is_enforced_with_550() {
    let h = mx(|_| {}).await;
    let (code, text) = send_from(
        &h,
        BAD_IP,
        "bounce@sender.test",
        &message("ceo@sender.test", "forged"),
    )
    .await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1") && text.contains("DMARC"), "{text}");
    assert!(h.inbox(&h.alice).await.is_empty(), "nothing delivered");
    h.stop().await;

    // Not enforced: delivered, with the failure reported.
    let h = mx(|c| c.inbound.dmarc_enforce = false).await;
    let (code, text) = send_from(
        &h,
        BAD_IP,
        "bounce@sender.test",
        &message("ceo@sender.test", "forged-kept"),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    let ar = our_results(&h).await;
    assert!(has(&ar, "dmarc=fail"), "{ar}");
    assert!(has(&ar, "policy.dmarc=reject"), "{ar}");
    h.stop().await;
}

#[tokio::test]
async fn dmarc_quarantine_files_into_junk() {
    let h = mx(|_| {}).await;
    let (code, text) = send_from(
        &h,
        BAD_IP,
        "bounce@quarantine.test",
        &message("boss@quarantine.test", "quarantined"),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    assert!(h.inbox(&h.alice).await.is_empty(), "not in INBOX");
    let junk = mailbox(&h, &h.alice, "Junk").await;
    assert_eq!(junk.len(), 1);
    let ar = auth_results(&junk[0]);
    assert!(
        ar[0].contains("dmarc=fail") && ar[0].contains("policy.dmarc=quarantine"),
        "{ar:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn spf_hard_fail_is_refused_only_when_enforced() {
    let h = mx(|c| c.inbound.spf_enforce = true).await;
    let (code, text) = send_from(
        &h,
        BAD_IP,
        "someone@hard.test",
        &message("someone@hard.test", "spf-enforced"),
    )
    .await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1") && text.contains("SPF"), "{text}");
    // A passing DKIM signature vouches for the message despite SPF.
    let signed = dns().sign(&message("news@sender.test", "spf-fail-dkim-pass"));
    let (code, text) = send_from(&h, BAD_IP, "bounce@sender.test", &signed).await;
    assert_eq!(code, 250, "{text}");
    // Softfail (~all) is never refused.
    let (code, text) = send_from(
        &h,
        BAD_IP,
        "someone@soft.test",
        &message("someone@soft.test", "soft-enforced"),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    h.stop().await;

    let h = mx(|_| {}).await;
    let (code, text) = send_from(
        &h,
        BAD_IP,
        "someone@hard.test",
        &message("someone@hard.test", "spf-not-enforced"),
    )
    .await;
    assert_eq!(code, 250, "spf_enforce is off by default: {text}");
    assert!(has(&our_results(&h).await, "spf=fail"));
    h.stop().await;
}

#[tokio::test]
async fn arc_chain_sealed_by_dkimpy_passes() {
    let h = mx(|_| {}).await;
    // sender.test signs; relay.test (a mailing list, say) checks it, writes its
    // results and seals them; then it sends from an address sender.test's SPF
    // does not list.
    let signed = dns().sign(&message("news@sender.test", "arc"));
    let mut at_relay =
        b"Authentication-Results: relay.test; dkim=pass header.d=sender.test; spf=pass smtp.mailfrom=sender.test\r\n"
            .to_vec();
    at_relay.extend_from_slice(&signed);
    let sealed = dns().arc_seal(&at_relay);
    assert!(sealed.starts_with(b"ARC-Seal: i=1;"));
    let (code, text) = send_from(&h, BAD_IP, "list-bounce@relay.test", &sealed).await;
    assert_eq!(code, 250, "{text}");
    let ar = our_results(&h).await;
    assert!(has(&ar, "arc=pass"), "{ar}");
    assert!(has(&ar, "dkim=pass"), "{ar}");
    h.stop().await;
}

#[tokio::test]
async fn forged_results_naming_this_host_are_removed() {
    let h = mx(|_| {}).await;
    let mut forged = b"Authentication-Results: mx.example.org; dkim=pass header.d=bank.test;\r\n\tdmarc=pass\r\nAuthentication-Results: other.test; spf=pass smtp.mailfrom=x@other.test\r\n".to_vec();
    forged.extend_from_slice(&message("someone@nospf.test", "forged-results"));
    let (code, text) = send_from(&h, GOOD_IP, "someone@nospf.test", &forged).await;
    assert_eq!(code, 250, "{text}");
    let inbox = h.inbox(&h.alice).await;
    let all = auth_results(&inbox[0]);
    assert_eq!(all.len(), 2, "ours and other.test's: {all:?}");
    assert!(all[0].starts_with("Authentication-Results: mx.example.org;"));
    assert!(!all[0].contains("bank.test"), "{all:?}");
    assert!(all[1].starts_with("Authentication-Results: other.test;"));
    let text = String::from_utf8_lossy(&inbox[0]);
    assert!(!text.contains("bank.test"), "{text}");
    assert!(text.contains("Subject: forged-results\r\n"));
    h.stop().await;
}

#[tokio::test]
async fn lmtp_is_not_checked_unless_configured() {
    use mailroom_smtp::Mode;
    let dns = dns().addr;
    for verify_lmtp in [false, true] {
        let h = common::start_with(Mode::Lmtp, |c| {
            c.inbound.verify = true;
            c.inbound.verify_lmtp = verify_lmtp;
            c.dns.nameservers = vec![dns];
            c.dns.timeout = std::time::Duration::from_secs(3);
        })
        .await;
        let mut client = h.greeted(Mode::Lmtp).await;
        // From: sender.test (p=reject), nothing aligned (LMTP connects from the good
        // address, so the envelope sender is another domain): refused only when
        // LMTP mail is checked.
        let (code, text) = client
            .send_mail(
                "bounce@nospf.test",
                &["alice@example.org"],
                &message("ceo@sender.test", "over-lmtp"),
            )
            .await;
        if verify_lmtp {
            assert_eq!(code, 550, "{text}");
            assert!(text.contains("DMARC"), "{text}");
        } else {
            assert_eq!(code, 250, "{text}");
            let inbox = h.inbox(&h.alice).await;
            assert!(auth_results(&inbox[0]).is_empty(), "not checked");
        }
        h.stop().await;
    }
}

#[tokio::test]
async fn the_relay_resolves_mx_through_the_configured_name_servers() {
    use mailroom_smtp::{MxResolver, SystemResolver};
    let config = mailroom_config::DnsConfig {
        nameservers: vec![dns().addr],
        timeout: std::time::Duration::from_secs(3),
    };
    let resolver = SystemResolver::from_config(&config).unwrap();
    assert_eq!(
        resolver.mx("sender.test").await.unwrap(),
        vec![(10, "mx.sender.test".to_string())]
    );
    assert_eq!(
        resolver.addresses("mx.sender.test").await.unwrap(),
        vec!["192.0.2.25".parse::<std::net::IpAddr>().unwrap()]
    );
}
