//! DKIM signing against the store: every active key of the From: domain signs, the
//! signatures verify with dkimpy (an independent verifier) against the records
//! `dns_record` makes, a changed body fails, and key changes made by another handle
//! on the store (as the CLI's process is) take effect at the next message.

use std::path::Path;
use std::process::Command;

use mailroom_delivery::sign::{DkimSigner, dns_record, generate_key};
use mailroom_store::{DkimAlgorithm, DkimKey, Store, StoreOptions};

const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: signed\r\nDate: Thu, 03 Dec 2026 17:00:00 +0000\r\nMessage-ID: <1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello   Bob,\r\n\r\nsee you.\r\n\r\n";

#[derive(Debug)]
struct Verified {
    selector: String,
    algorithm: String,
    ok: bool,
}

/// dkimpy's verdict on each signature, topmost first.
fn dkimpy(dir: &Path, message: &[u8], keys: &[DkimKey]) -> Vec<Verified> {
    let records: String = keys
        .iter()
        .map(|k| dns_record(k).zone_line(3600) + "\n")
        .collect();
    std::fs::write(dir.join("records.zone"), records).expect("write records");
    std::fs::write(dir.join("message.eml"), message).expect("write message");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/dkim/dkimpy_verify.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir.join("message.eml"))
        .arg(dir.join("records.zone"))
        .output()
        .expect("python3 runs (install it: apt-get install python3)");
    assert!(
        out.status.success(),
        "dkimpy_verify.py failed (python3 -m pip install -r tests/interop/requirements.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let list: Vec<serde_json::Value> =
        serde_json::from_str(text.trim()).expect("JSON from the script");
    list.iter()
        .map(|v| Verified {
            selector: v["s"].as_str().unwrap_or_default().to_string(),
            algorithm: v["a"].as_str().unwrap_or_default().to_string(),
            ok: v["ok"].as_bool().unwrap_or(false),
        })
        .collect()
}

async fn store_with_keys(dir: &Path, algorithms: &[DkimAlgorithm]) -> (Store, Vec<DkimKey>) {
    let store = Store::open(&StoreOptions::new(dir.join("store")))
        .await
        .expect("store opens");
    store.add_domain("example.org").await.expect("domain");
    let mut keys = Vec::new();
    for (i, algorithm) in algorithms.iter().enumerate() {
        let new = generate_key(&format!("s{i}"), *algorithm).expect("key");
        keys.push(
            store
                .add_dkim_key("example.org", new)
                .await
                .expect("stored"),
        );
    }
    (store, keys)
}

fn signed(signatures: Vec<u8>) -> Vec<u8> {
    let mut out = signatures;
    out.extend_from_slice(MESSAGE);
    out
}

#[tokio::test]
async fn rsa_and_ed25519_signatures_verify_with_dkimpy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, keys) = store_with_keys(
        dir.path(),
        &[DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256],
    )
    .await;
    let signer = DkimSigner::new(store);
    let signatures = signer.sign(MESSAGE).await.expect("signs");
    let text = String::from_utf8_lossy(&signatures).into_owned();
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
    assert!(text.contains("c=relaxed/relaxed"), "{text}");
    // The present fields (mail-auth lists them bottom-up), From once more.
    for line in text.split("DKIM-Signature:").skip(1) {
        let unfolded = line.replace("\r\n\t", "");
        let h = unfolded
            .split("h=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("an h= tag");
        let mut names: Vec<&str> = h.split(':').collect();
        names.sort_unstable();
        assert_eq!(
            names,
            vec![
                "Content-Type",
                "Date",
                "From",
                "From",
                "MIME-Version",
                "Message-ID",
                "Subject",
                "To"
            ],
            "present headers, From over-signed: {text}"
        );
    }
    let message = signed(signatures);
    let verdicts = dkimpy(dir.path(), &message, &keys);
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert!(verdicts.iter().all(|v| v.ok), "{verdicts:?}");
    let mut algorithms: Vec<&str> = verdicts.iter().map(|v| v.algorithm.as_str()).collect();
    algorithms.sort_unstable();
    assert_eq!(algorithms, vec!["ed25519-sha256", "rsa-sha256"]);

    // A changed body breaks both signatures: the verifier can say no.
    let tampered = String::from_utf8_lossy(&message).replace("see you.", "send money.");
    let verdicts = dkimpy(dir.path(), tampered.as_bytes(), &keys);
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert!(verdicts.iter().all(|v| !v.ok), "{verdicts:?}");

    // So does a second From: added below the signed one (over-signing).
    let added = String::from_utf8_lossy(&message).replace(
        "To: bob@example.net\r\n",
        "To: bob@example.net\r\nFrom: ceo@example.org\r\n",
    );
    let verdicts = dkimpy(dir.path(), added.as_bytes(), &keys);
    assert!(verdicts.iter().all(|v| !v.ok), "{verdicts:?}");
}

#[tokio::test]
async fn other_domains_and_keyless_domains_are_not_signed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _keys) = store_with_keys(dir.path(), &[DkimAlgorithm::Ed25519Sha256]).await;
    store.add_domain("example.com").await.expect("domain");
    let signer = DkimSigner::new(store);
    let other = b"From: x@example.com\r\nSubject: s\r\n\r\nbody\r\n";
    assert!(signer.sign(other).await.expect("no error").is_empty());
    let remote = b"From: x@remote.example\r\n\r\nbody\r\n";
    assert!(signer.sign(remote).await.expect("no error").is_empty());
    assert!(
        signer
            .sign(b"Subject: no from\r\n\r\n")
            .await
            .expect("no error")
            .is_empty()
    );
}

#[tokio::test]
async fn key_changes_by_another_store_handle_apply_to_the_next_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, keys) = store_with_keys(dir.path(), &[DkimAlgorithm::RsaSha256]).await;
    let signer = DkimSigner::new(store);
    let count = |s: &[u8]| {
        String::from_utf8_lossy(s)
            .matches("DKIM-Signature:")
            .count()
    };
    assert_eq!(count(&signer.sign(MESSAGE).await.expect("signs")), 1);

    // The CLI opens the same database in its own process; a second handle is alike.
    let cli = Store::open(&StoreOptions::new(dir.path().join("store")))
        .await
        .expect("second handle");
    let ed = cli
        .add_dkim_key(
            "example.org",
            generate_key("e1", DkimAlgorithm::Ed25519Sha256).expect("key"),
        )
        .await
        .expect("stored");
    let both = signer.sign(MESSAGE).await.expect("signs");
    assert_eq!(count(&both), 2);
    let verdicts = dkimpy(dir.path(), &signed(both), &[keys[0].clone(), ed.clone()]);
    assert!(
        verdicts.iter().all(|v| v.ok) && verdicts.len() == 2,
        "{verdicts:?}"
    );

    cli.delete_dkim_key("example.org", &keys[0].selector)
        .await
        .expect("deleted");
    let only_ed = signer.sign(MESSAGE).await.expect("signs");
    assert_eq!(count(&only_ed), 1);
    let verdicts = dkimpy(dir.path(), &signed(only_ed), std::slice::from_ref(&ed));
    assert_eq!(verdicts.len(), 1);
    assert!(
        verdicts[0].ok && verdicts[0].selector == "e1",
        "{verdicts:?}"
    );

    cli.set_dkim_key_active("example.org", "e1", false)
        .await
        .expect("deactivated");
    assert_eq!(count(&signer.sign(MESSAGE).await.expect("no error")), 0);
}

#[tokio::test]
async fn a_broken_stored_key_is_an_error_not_an_unsigned_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&StoreOptions::new(dir.path().join("store")))
        .await
        .expect("store opens");
    store.add_domain("example.org").await.expect("domain");
    store
        .add_dkim_key(
            "example.org",
            mailroom_store::NewDkimKey {
                selector: "broken".into(),
                algorithm: DkimAlgorithm::RsaSha256,
                private_key: b"not a key".to_vec(),
                public_key: b"x".to_vec(),
            },
        )
        .await
        .expect("stored");
    let error = DkimSigner::new(store)
        .sign(MESSAGE)
        .await
        .expect_err("a key that does not parse fails");
    let text = error.to_string();
    assert!(text.contains("broken._domainkey.example.org"), "{text}");
}
