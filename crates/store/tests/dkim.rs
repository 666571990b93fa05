//! DKIM keys in the store: per domain and selector, unique selectors, cascading with
//! the domain, active/inactive, and the id list the signer's cache checks.

use mailroom_store::*;
use tempfile::TempDir;

async fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&StoreOptions::new(dir.path()))
        .await
        .expect("store opens");
    (dir, store)
}

fn key(selector: &str, algorithm: DkimAlgorithm) -> NewDkimKey {
    NewDkimKey {
        selector: selector.into(),
        algorithm,
        private_key: vec![1, 2, 3],
        public_key: vec![4, 5, 6],
    }
}

#[tokio::test]
async fn keys_are_stored_listed_and_deleted() {
    let (_dir, store) = open().await;
    store.add_domain("example.org").await.expect("domain");
    store.add_domain("example.net").await.expect("domain");
    let rsa = store
        .add_dkim_key("Example.ORG", key("MR202612R", DkimAlgorithm::RsaSha256))
        .await
        .expect("rsa key");
    assert_eq!(rsa.domain, "example.org");
    assert_eq!(rsa.selector, "mr202612r");
    assert!(rsa.active);
    let ed = store
        .add_dkim_key(
            "example.org",
            key("mr202612e", DkimAlgorithm::Ed25519Sha256),
        )
        .await
        .expect("ed25519 key");
    store
        .add_dkim_key("example.net", key("s1", DkimAlgorithm::RsaSha256))
        .await
        .expect("other domain");

    let all = store.list_dkim_keys(None).await.expect("list");
    let names: Vec<(String, String)> = all
        .iter()
        .map(|k| (k.domain.clone(), k.selector.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("example.net".into(), "s1".into()),
            ("example.org".into(), "mr202612e".into()),
            ("example.org".into(), "mr202612r".into()),
        ]
    );
    let org = store
        .list_dkim_keys(Some("example.org"))
        .await
        .expect("list");
    assert_eq!(org.len(), 2);
    assert_eq!(org[0].algorithm, DkimAlgorithm::Ed25519Sha256);
    assert_eq!(org[0].private_key, vec![1, 2, 3]);
    assert_eq!(org[0].public_key, vec![4, 5, 6]);

    let active = store.active_dkim_keys("example.org").await.expect("active");
    assert_eq!(
        active.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![rsa.id, ed.id]
    );
    assert_eq!(
        store.active_dkim_key_ids("EXAMPLE.org").await.expect("ids"),
        vec![rsa.id, ed.id]
    );

    store
        .delete_dkim_key("example.org", "MR202612R")
        .await
        .expect("delete");
    assert_eq!(
        store.active_dkim_key_ids("example.org").await.expect("ids"),
        vec![ed.id]
    );
    assert!(matches!(
        store.delete_dkim_key("example.org", "mr202612r").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn selectors_are_unique_per_domain_and_valid() {
    let (_dir, store) = open().await;
    store.add_domain("example.org").await.expect("domain");
    store.add_domain("example.net").await.expect("domain");
    store
        .add_dkim_key("example.org", key("sel", DkimAlgorithm::RsaSha256))
        .await
        .expect("first");
    assert!(matches!(
        store
            .add_dkim_key("example.org", key("SEL", DkimAlgorithm::Ed25519Sha256))
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    store
        .add_dkim_key("example.net", key("sel", DkimAlgorithm::RsaSha256))
        .await
        .expect("same selector in another domain");
    for bad in ["", "-x", "a b", "x_y", "a..b", "sel;p=evil"] {
        assert!(
            matches!(
                store
                    .add_dkim_key("example.org", key(bad, DkimAlgorithm::RsaSha256))
                    .await,
                Err(StoreError::Invalid { .. })
            ),
            "{bad:?} accepted"
        );
    }
    assert!(matches!(
        store
            .add_dkim_key("nowhere.example", key("s", DkimAlgorithm::RsaSha256))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        "ed25519".parse::<DkimAlgorithm>().expect("parses"),
        DkimAlgorithm::Ed25519Sha256
    );
    assert!("dsa".parse::<DkimAlgorithm>().is_err());
}

#[tokio::test]
async fn keys_go_with_their_domain() {
    let (_dir, store) = open().await;
    store.add_domain("example.org").await.expect("domain");
    store
        .add_dkim_key("example.org", key("s", DkimAlgorithm::RsaSha256))
        .await
        .expect("key");
    store.delete_domain("example.org").await.expect("delete");
    assert!(store.list_dkim_keys(None).await.expect("list").is_empty());
    // A domain of the same name added again starts without keys.
    store.add_domain("example.org").await.expect("domain again");
    assert!(
        store
            .active_dkim_keys("example.org")
            .await
            .expect("active")
            .is_empty()
    );
}

#[tokio::test]
async fn inactive_keys_do_not_sign_and_ids_are_never_reused() {
    let (_dir, store) = open().await;
    store.add_domain("example.org").await.expect("domain");
    let first = store
        .add_dkim_key("example.org", key("a", DkimAlgorithm::RsaSha256))
        .await
        .expect("key");
    store
        .set_dkim_key_active("example.org", "a", false)
        .await
        .expect("deactivate");
    assert!(
        store
            .active_dkim_key_ids("example.org")
            .await
            .expect("ids")
            .is_empty()
    );
    let listed = store
        .list_dkim_keys(Some("example.org"))
        .await
        .expect("list");
    assert!(!listed[0].active);
    store
        .delete_dkim_key("example.org", "a")
        .await
        .expect("delete");
    let again = store
        .add_dkim_key("example.org", key("a", DkimAlgorithm::RsaSha256))
        .await
        .expect("key again");
    assert!(again.id > first.id, "{} reused", again.id);
    assert!(matches!(
        store.set_dkim_key_active("example.org", "zz", true).await,
        Err(StoreError::NotFound { .. })
    ));
    // Debug output never shows the private key.
    let shown = format!("{again:?}");
    assert!(
        shown.contains("<hidden>") && !shown.contains("[1, 2, 3]"),
        "{shown}"
    );
}
