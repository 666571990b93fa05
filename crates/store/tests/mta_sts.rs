//! The MTA-STS policy cache: one policy per domain (case-insensitive), replaced on
//! refresh, and kept across a restart (RFC 8461 §5.1 downgrade protection).

use mailroom_store::*;

fn policy(domain: &str, id: &str, expires_at: i64) -> CachedMtaStsPolicy {
    CachedMtaStsPolicy {
        domain: domain.into(),
        policy_id: id.into(),
        policy: format!("version: STSv1\r\nmode: enforce\r\nmx: mx.{domain}\r\nmax_age: 86400\r\n"),
        fetched_at: 1_000,
        expires_at,
    }
}

#[tokio::test]
async fn policies_are_cached_replaced_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions::new(dir.path());
    let store = Store::open(&options).await.expect("store opens");
    assert_eq!(
        store.mta_sts_policy("remote.test").await.expect("read"),
        None
    );
    store
        .put_mta_sts_policy(policy("Remote.TEST.", "one", 87_400))
        .await
        .expect("stored");
    let cached = store
        .mta_sts_policy("remote.test")
        .await
        .expect("read")
        .expect("cached");
    assert_eq!(cached.domain, "remote.test");
    assert_eq!(cached.policy_id, "one");
    assert_eq!(cached.expires_at, 87_400);
    store
        .put_mta_sts_policy(policy("remote.test", "two", 99_000))
        .await
        .expect("replaced");
    drop(store);

    let store = Store::open(&options).await.expect("store reopens");
    let cached = store
        .mta_sts_policy("REMOTE.test")
        .await
        .expect("read")
        .expect("still cached after a restart");
    assert_eq!(cached.policy_id, "two");
    assert_eq!(cached.expires_at, 99_000);
    assert!(cached.policy.contains("mx: mx.remote.test"));
    store
        .delete_mta_sts_policy("remote.test")
        .await
        .expect("deleted");
    assert_eq!(
        store.mta_sts_policy("remote.test").await.expect("read"),
        None
    );
}
