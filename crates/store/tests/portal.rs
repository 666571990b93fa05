//! App passwords, the admin flag and portal sessions.

use mailroom_store::*;
use tempfile::TempDir;

async fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&StoreOptions::new(dir.path()))
        .await
        .expect("store opens");
    (dir, store)
}

async fn with_user(store: &Store, address: &str) -> Account {
    let domain = address.rsplit_once('@').expect("address").1;
    if !store.is_local_domain(domain).await.expect("query") {
        store.add_domain(domain).await.expect("domain");
    }
    store
        .create_account(address, "secret")
        .await
        .expect("account")
}

#[tokio::test]
async fn app_passwords_log_in_only_for_their_scope() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let (imap_only, secret) = store
        .create_app_password(alice.id, "Thunderbird", AppPasswordScope::Imap)
        .await
        .expect("create");
    assert_eq!(imap_only.name, "Thunderbird");
    assert_eq!(imap_only.last_used_at, None);
    let imap = store.for_logins(LoginService::Imap);
    let smtp = store.for_logins(LoginService::Smtp);

    // A plain handle takes the account password only.
    assert!(
        store
            .authenticate("alice@example.org", &secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .authenticate("alice@example.org", "secret")
            .await
            .unwrap()
            .is_some()
    );
    // The IMAP handle takes it, with or without dashes, in any case.
    let got = imap
        .authenticate("alice@example.org", &secret)
        .await
        .unwrap();
    assert_eq!(got.map(|a| a.id), Some(alice.id));
    let typed = secret.replace('-', "").to_uppercase();
    assert!(
        imap.authenticate("alice@example.org", &typed)
            .await
            .unwrap()
            .is_some()
    );
    // The account password still works everywhere.
    assert!(
        smtp.authenticate("alice@example.org", "secret")
            .await
            .unwrap()
            .is_some()
    );
    // Not for SMTP, not for another account.
    assert!(
        smtp.authenticate("alice@example.org", &secret)
            .await
            .unwrap()
            .is_none()
    );
    with_user(&store, "bob@example.org").await;
    assert!(
        imap.authenticate("bob@example.org", &secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        imap.authenticate("nobody@example.org", &secret)
            .await
            .unwrap()
            .is_none()
    );

    let listed = store.app_passwords(alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "the login was recorded");
    assert_eq!(listed[0].scope, AppPasswordScope::Imap);

    let (_both, both_secret) = store
        .create_app_password(alice.id, "Phone", AppPasswordScope::Both)
        .await
        .unwrap();
    assert!(
        smtp.authenticate("alice@example.org", &both_secret)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        imap.authenticate("alice@example.org", &both_secret)
            .await
            .unwrap()
            .is_some()
    );

    store
        .revoke_app_password(alice.id, imap_only.id)
        .await
        .unwrap();
    assert!(
        imap.authenticate("alice@example.org", &secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.revoke_app_password(alice.id, imap_only.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.app_passwords(alice.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn app_password_names_and_count_are_bounded() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    assert!(matches!(
        store
            .create_app_password(alice.id, "  ", AppPasswordScope::Both)
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .create_app_password(alice.id, &"x".repeat(101), AppPasswordScope::Both)
            .await,
        Err(StoreError::Invalid { .. })
    ));
    // Someone else may not revoke alice's.
    let bob = with_user(&store, "bob@example.org").await;
    let (app, _) = store
        .create_app_password(alice.id, "laptop", AppPasswordScope::Both)
        .await
        .unwrap();
    assert!(matches!(
        store.revoke_app_password(bob.id, app.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn the_admin_flag() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    assert!(!store.is_admin(alice.id).await.unwrap());
    store.set_admin("ALICE@example.org", true).await.unwrap();
    assert!(store.is_admin(alice.id).await.unwrap());
    assert_eq!(store.admins().await.unwrap(), vec!["alice@example.org"]);
    store.set_admin("alice@example.org", false).await.unwrap();
    assert!(!store.is_admin(alice.id).await.unwrap());
    assert!(matches!(
        store.set_admin("nobody@example.org", true).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn web_sessions_expire_and_end() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let live = [1u8; 32];
    let old = [2u8; 32];
    for (id_hash, expires_at) in [(live, now + 3600), (old, now - 1)] {
        store
            .create_web_session(NewWebSession {
                id_hash,
                account_id: alice.id,
                csrf_secret: "csrf".into(),
                expires_at,
            })
            .await
            .unwrap();
    }
    let session = store.web_session(&live).await.unwrap().expect("live");
    assert_eq!(session.account.id, alice.id);
    assert_eq!(session.csrf_secret, "csrf");
    assert!(!session.admin);
    assert!(store.web_session(&old).await.unwrap().is_none(), "expired");
    assert!(store.web_session(&[3u8; 32]).await.unwrap().is_none());

    let other = [4u8; 32];
    store
        .create_web_session(NewWebSession {
            id_hash: other,
            account_id: alice.id,
            csrf_secret: "x".into(),
            expires_at: now + 3600,
        })
        .await
        .unwrap();
    store
        .delete_other_web_sessions(alice.id, &live)
        .await
        .unwrap();
    assert!(store.web_session(&other).await.unwrap().is_none());
    assert!(store.web_session(&live).await.unwrap().is_some());
    store.delete_web_session(&live).await.unwrap();
    assert!(store.web_session(&live).await.unwrap().is_none());

    // Deleting the account ends its sessions.
    store
        .create_web_session(NewWebSession {
            id_hash: live,
            account_id: alice.id,
            csrf_secret: "csrf".into(),
            expires_at: now + 3600,
        })
        .await
        .unwrap();
    store.delete_account("alice@example.org").await.unwrap();
    assert!(store.web_session(&live).await.unwrap().is_none());
}

/// Single sign-on domains: login handles refuse the account password (and SCRAM,
/// derived from it) and take app passwords; other domains keep passwords.
#[tokio::test]
async fn sso_domains_log_in_with_app_passwords_only() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    with_user(&store, "carol@other.example").await;
    let (_, secret) = store
        .create_app_password(alice.id, "phone", AppPasswordScope::Both)
        .await
        .expect("create");
    let sso = vec!["Example.org".to_string()];
    let imap = store
        .for_logins(LoginService::Imap)
        .without_password_logins_for(&sso);
    let smtp = store
        .for_logins(LoginService::Smtp)
        .without_password_logins_for(&sso);
    for handle in [&imap, &smtp] {
        assert!(
            handle
                .authenticate("alice@example.org", "secret")
                .await
                .expect("query")
                .is_none(),
            "the account password is refused"
        );
        assert!(
            handle
                .authenticate("ALICE@example.org", &secret)
                .await
                .expect("query")
                .is_some(),
            "the app password is taken"
        );
        assert!(
            handle
                .scram_credentials("alice@example.org")
                .await
                .expect("query")
                .is_none(),
            "no SCRAM for an SSO user"
        );
        assert!(
            handle
                .authenticate("carol@other.example", "secret")
                .await
                .expect("query")
                .is_some(),
            "other domains keep their passwords"
        );
        assert!(
            handle
                .scram_credentials("carol@other.example")
                .await
                .expect("query")
                .is_some()
        );
    }
}
