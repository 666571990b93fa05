//! DKIM signing on the submission listener over TCP: a message submitted with AUTH is
//! signed before the store, so the local copy and the queued copy carry the same
//! signature; a key that cannot sign answers 451 and stores nothing (no unsigned
//! mail leaves for a domain that publishes keys).
#![allow(clippy::unwrap_used)]

mod tlsauth;

use mailroom_delivery::sign::generate_key;
use mailroom_smtp::Mode;
use mailroom_store::{DkimAlgorithm, NewDkimKey};
use tlsauth::*;

const MSG: &str =
    "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: signed\r\n\r\nhello\r\n";

async fn authenticated(h: &Harness) -> Client {
    let mut c = h.connect_starttls().await;
    let ir = b64(b"\0alice@example.org\0pw-alice");
    let (code, text) = c.cmd(&format!("AUTH PLAIN {ir}")).await;
    assert_eq!(code, 235, "{text}");
    c
}

/// The `DKIM-Signature:` fields of a message, unfolded.
fn signatures(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let header = text.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = header.replace("\r\n\t", "\t").replace("\r\n ", " ");
    unfolded
        .split("\r\n")
        .filter(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn local_and_queued_copies_carry_the_same_signatures() {
    let h = start(Mode::Submission, false, |_| {}).await;
    // Keys added while the listener runs are used for the next message.
    for (selector, algorithm) in [
        ("r1", DkimAlgorithm::RsaSha256),
        ("e1", DkimAlgorithm::Ed25519Sha256),
    ] {
        h.store
            .add_dkim_key("example.org", generate_key(selector, algorithm).unwrap())
            .await
            .unwrap();
    }
    let mut c = authenticated(&h).await;
    let (code, text) = c
        .send_mail(
            "alice@example.org",
            &["bob@example.org", "carol@remote.example"],
            MSG,
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let inbox = h.inbox(&h.bob).await;
    let local = signatures(&inbox[0]);
    assert_eq!(local.len(), 2, "{}", String::from_utf8_lossy(&inbox[0]));
    assert!(local[0].contains("a=rsa-sha256; s=r1; d=example.org; c=relaxed/relaxed"));
    assert!(local[1].contains("a=ed25519-sha256; s=e1; d=example.org;"));
    let queue = h.store.queue_list().await.unwrap();
    let queued = h.store.queue_raw(queue[0].id).await.unwrap();
    assert_eq!(
        signatures(&queued),
        local,
        "the relay sends what was signed"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_signing_failure_answers_451_and_stores_nothing() {
    let h = start(Mode::Submission, false, |_| {}).await;
    h.store
        .add_dkim_key(
            "example.org",
            NewDkimKey {
                selector: "broken".into(),
                algorithm: DkimAlgorithm::RsaSha256,
                private_key: b"not a PKCS#8 document".to_vec(),
                public_key: b"x".to_vec(),
            },
        )
        .await
        .unwrap();
    let mut c = authenticated(&h).await;
    let (code, text) = c
        .send_mail(
            "alice@example.org",
            &["bob@example.org", "carol@remote.example"],
            MSG,
        )
        .await;
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.3.0"), "{text}");
    assert!(h.inbox(&h.bob).await.is_empty());
    assert_eq!(h.store.queue_size().await.unwrap(), 0);
    // The session goes on: once the key is fixed, the retry is signed and accepted.
    h.store
        .delete_dkim_key("example.org", "broken")
        .await
        .unwrap();
    h.store
        .add_dkim_key(
            "example.org",
            generate_key("e2", DkimAlgorithm::Ed25519Sha256).unwrap(),
        )
        .await
        .unwrap();
    let (code, text) = c
        .send_mail("alice@example.org", &["bob@example.org"], MSG)
        .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(signatures(&h.inbox(&h.bob).await[0]).len(), 1);
    h.stop().await;
}
