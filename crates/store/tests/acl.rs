#![allow(clippy::unwrap_used)]
//! Access control lists (RFC 4314): grants, the owner's implicit rights, the
//! legacy letters, shared mailbox listing, inheritance and cascading deletes.

use mailroom_store::*;
use tempfile::TempDir;

async fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&StoreOptions::new(dir.path()))
        .await
        .expect("store opens");
    store.add_domain("example.org").await.expect("domain");
    (dir, store)
}

async fn user(store: &Store, address: &str) -> Account {
    store
        .create_account(address, "secret")
        .await
        .expect("account")
}

async fn mailbox(store: &Store, account: &Account, name: &str) -> Mailbox {
    match store.mailbox(account.id, name).await.expect("query") {
        Some(mb) => mb,
        None => store
            .create_mailbox(account.id, name, None)
            .await
            .expect("create"),
    }
}

fn rights(letters: &str) -> Rights {
    Rights::parse(letters).expect("rights")
}

#[test]
fn rights_letters_and_legacy_aliases() {
    assert_eq!(rights("lr").letters(), "lr");
    assert_eq!(rights("arl").letters(), "lra", "RFC order");
    assert_eq!(Rights::ALL.letters(), "lrswipkxtea");
    assert_eq!(Rights::ALL.imap(), "lrswipkxteacd");
    // RFC 4314 §2.1.1: c = k + x, d = e + t in SETACL...
    assert_eq!(rights("c"), rights("kx"));
    assert_eq!(rights("d"), rights("et"));
    assert_eq!(rights("lrcd").letters(), "lrkxte");
    // ...and a response names c (d) when any member of it is present.
    assert_eq!(rights("lrk").imap(), "lrkc");
    assert_eq!(rights("lrt").imap(), "lrtd");
    assert_eq!(rights("lr").imap(), "lr");
    assert_eq!(Rights::parse("lrz"), Err('z'));
    assert_eq!(Rights::parse("L"), Err('L'), "rights are lower case");
    assert!(rights("").is_empty());
    for letters in ["", "l", "lrswipkxtea", "ilr", "ae"] {
        let r = rights(letters);
        assert_eq!(Rights::parse(&r.letters()), Ok(r), "{letters}");
        assert_eq!(Rights::parse(&r.imap()).map(|x| x.contains(r)), Ok(true));
    }
}

#[test]
fn flags_within_rights() {
    let before = Flags::from_names(["\\Flagged", "$Old"]).unwrap_or_default();
    let wanted = Flags::from_names(["\\Seen", "\\Deleted", "$New"]).unwrap_or_default();
    // Only s: \Seen changes, \Flagged and keywords stay, \Deleted not set.
    let after = wanted.within_rights(&before, rights("s"));
    assert_eq!(after.names(), vec!["\\Flagged", "\\Seen", "$Old"]);
    let after = wanted.within_rights(&before, rights("t"));
    assert_eq!(after.names(), vec!["\\Flagged", "\\Deleted", "$Old"]);
    let after = wanted.within_rights(&before, rights("w"));
    assert_eq!(after.names(), vec!["$New"]);
    assert_eq!(wanted.within_rights(&before, Rights::ALL), wanted);
}

#[tokio::test]
async fn set_get_delete_and_my_rights() {
    let (_dir, store) = open().await;
    let bob = user(&store, "bob@example.org").await;
    let alice = user(&store, "alice@example.org").await;
    let carol = user(&store, "carol@example.org").await;
    let projects = mailbox(&store, &bob, "Projects").await;

    assert_eq!(
        store.my_rights(bob.id, projects.id).await.unwrap(),
        Rights::ALL
    );
    assert_eq!(
        store.my_rights(alice.id, projects.id).await.unwrap(),
        Rights::NONE
    );
    assert!(store.acl(projects.id).await.unwrap().is_empty());

    let r = store
        .set_acl(
            projects.id,
            "Alice@Example.org",
            RightsOp::Replace,
            rights("lr"),
        )
        .await
        .unwrap();
    assert_eq!(r, rights("lr"));
    let r = store
        .set_acl(
            projects.id,
            "alice@example.org",
            RightsOp::Add,
            rights("si"),
        )
        .await
        .unwrap();
    assert_eq!(r.letters(), "lrsi");
    let r = store
        .set_acl(
            projects.id,
            "alice@example.org",
            RightsOp::Remove,
            rights("i"),
        )
        .await
        .unwrap();
    assert_eq!(r.letters(), "lrs");
    assert_eq!(
        store.my_rights(alice.id, projects.id).await.unwrap(),
        rights("lrs")
    );
    assert_eq!(
        store.my_rights(carol.id, projects.id).await.unwrap(),
        Rights::NONE
    );

    // anyone and authenticated add to every account's rights.
    store
        .set_acl(projects.id, "ANYONE", RightsOp::Replace, rights("l"))
        .await
        .unwrap();
    store
        .set_acl(projects.id, "authenticated", RightsOp::Replace, rights("w"))
        .await
        .unwrap();
    assert_eq!(
        store.my_rights(carol.id, projects.id).await.unwrap(),
        rights("lw")
    );
    assert_eq!(
        store.my_rights(alice.id, projects.id).await.unwrap(),
        rights("lrsw")
    );
    assert_eq!(
        store.acl(projects.id).await.unwrap(),
        vec![
            AclEntry {
                identifier: "alice@example.org".into(),
                rights: rights("lrs")
            },
            AclEntry {
                identifier: "anyone".into(),
                rights: rights("l")
            },
            AclEntry {
                identifier: "authenticated".into(),
                rights: rights("w")
            },
        ]
    );

    // Removing every right removes the entry; DELETEACL says whether there was one.
    store
        .set_acl(projects.id, "authenticated", RightsOp::Remove, rights("w"))
        .await
        .unwrap();
    assert_eq!(store.acl(projects.id).await.unwrap().len(), 2);
    assert!(store.delete_acl(projects.id, "anyone").await.unwrap());
    assert!(!store.delete_acl(projects.id, "anyone").await.unwrap());
    assert_eq!(
        store.my_rights(carol.id, projects.id).await.unwrap(),
        Rights::NONE
    );

    // Unknown accounts, negative rights and the owner are refused.
    assert!(matches!(
        store
            .set_acl(
                projects.id,
                "nobody@example.org",
                RightsOp::Replace,
                rights("l")
            )
            .await,
        Err(StoreError::NotFound {
            what: mailroom_store::Entity::Account,
            ..
        })
    ));
    assert!(matches!(
        store
            .set_acl(
                projects.id,
                "-alice@example.org",
                RightsOp::Replace,
                rights("l")
            )
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .set_acl(
                projects.id,
                "bob@example.org",
                RightsOp::Replace,
                rights("l")
            )
            .await,
        Err(StoreError::Cannot(_))
    ));
    assert!(matches!(
        store.my_rights(alice.id, 999_999).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn shared_mailboxes_lists_what_an_account_may_look_up() {
    let (_dir, store) = open().await;
    let bob = user(&store, "bob@example.org").await;
    let alice = user(&store, "alice@example.org").await;
    let carol = user(&store, "carol@example.org").await;
    let projects = mailbox(&store, &bob, "Projects").await;
    let secret = mailbox(&store, &bob, "Secret").await;
    let bob_inbox = mailbox(&store, &bob, "INBOX").await;
    let carol_news = mailbox(&store, &carol, "News").await;

    assert!(store.shared_mailboxes(alice.id).await.unwrap().is_empty());
    store
        .set_acl(
            projects.id,
            "alice@example.org",
            RightsOp::Replace,
            rights("lrs"),
        )
        .await
        .unwrap();
    // Without l a mailbox is not listed, whatever else is granted.
    store
        .set_acl(
            secret.id,
            "alice@example.org",
            RightsOp::Replace,
            rights("r"),
        )
        .await
        .unwrap();
    store
        .set_acl(
            bob_inbox.id,
            "authenticated",
            RightsOp::Replace,
            rights("l"),
        )
        .await
        .unwrap();
    store
        .set_acl(carol_news.id, "anyone", RightsOp::Replace, rights("lr"))
        .await
        .unwrap();
    let shared = store.shared_mailboxes(alice.id).await.unwrap();
    let names: Vec<(String, String, String)> = shared
        .iter()
        .map(|s| (s.owner.clone(), s.mailbox.name.clone(), s.rights.letters()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("bob@example.org".into(), "INBOX".into(), "l".into()),
            ("bob@example.org".into(), "Projects".into(), "lrs".into()),
            ("carol@example.org".into(), "News".into(), "lr".into()),
        ]
    );
    // An account never sees its own mailboxes as shared ones.
    let bobs: Vec<String> = store
        .shared_mailboxes(bob.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| format!("{}/{}", s.owner, s.mailbox.name))
        .collect();
    assert_eq!(bobs, vec!["carol@example.org/News"]);
}

#[tokio::test]
async fn children_inherit_and_rename_keeps_the_acl() {
    let (_dir, store) = open().await;
    let bob = user(&store, "bob@example.org").await;
    let alice = user(&store, "alice@example.org").await;
    let projects = mailbox(&store, &bob, "Projects").await;
    store
        .set_acl(
            projects.id,
            "alice@example.org",
            RightsOp::Replace,
            rights("lrk"),
        )
        .await
        .unwrap();
    let child = store
        .create_mailbox(bob.id, "Projects/2026", None)
        .await
        .unwrap();
    assert_eq!(
        store.my_rights(alice.id, child.id).await.unwrap(),
        rights("lrk")
    );
    let top = store.create_mailbox(bob.id, "Other", None).await.unwrap();
    assert_eq!(
        store.my_rights(alice.id, top.id).await.unwrap(),
        Rights::NONE
    );
    let renamed = store
        .rename_mailbox(bob.id, "Projects", "Work")
        .await
        .unwrap();
    assert_eq!(renamed.id, projects.id);
    assert_eq!(
        store.my_rights(alice.id, renamed.id).await.unwrap(),
        rights("lrk")
    );
}

#[tokio::test]
async fn deleting_a_mailbox_or_an_account_removes_its_acl_rows() {
    let (_dir, store) = open().await;
    let bob = user(&store, "bob@example.org").await;
    let alice = user(&store, "alice@example.org").await;
    let carol = user(&store, "carol@example.org").await;
    let projects = mailbox(&store, &bob, "Projects").await;
    let news = mailbox(&store, &carol, "News").await;
    for (mb, who) in [
        (projects.id, "alice@example.org"),
        (news.id, "alice@example.org"),
    ] {
        store
            .set_acl(mb, who, RightsOp::Replace, rights("lr"))
            .await
            .unwrap();
    }
    store
        .set_acl(news.id, "bob@example.org", RightsOp::Replace, rights("lr"))
        .await
        .unwrap();

    store.delete_mailbox(bob.id, "Projects").await.unwrap();
    let again = store
        .create_mailbox(bob.id, "Projects", None)
        .await
        .unwrap();
    assert!(
        store.acl(again.id).await.unwrap().is_empty(),
        "a new mailbox starts private"
    );
    assert_eq!(store.shared_mailboxes(alice.id).await.unwrap().len(), 1);

    // The grantee goes: its entries go with it.
    store.delete_account("alice@example.org").await.unwrap();
    assert_eq!(
        store.acl(news.id).await.unwrap(),
        vec![AclEntry {
            identifier: "bob@example.org".into(),
            rights: rights("lr")
        }]
    );
    // A new account with the old address inherits nothing.
    let alice2 = user(&store, "alice@example.org").await;
    assert_eq!(
        store.my_rights(alice2.id, news.id).await.unwrap(),
        Rights::NONE
    );

    // The owner goes: the entries of its mailboxes go.
    store.delete_account("carol@example.org").await.unwrap();
    assert!(store.shared_mailboxes(bob.id).await.unwrap().is_empty());
    let _ = carol;
    store.integrity_check().await.unwrap();
}

#[tokio::test]
async fn flags_stored_with_rights_keep_what_may_not_change() {
    let (_dir, store) = open().await;
    let bob = user(&store, "bob@example.org").await;
    let delivered = store
        .deliver(b"Subject: x\r\n\r\nbody\r\n".to_vec(), &[bob.id])
        .await
        .unwrap();
    let (_, inbox, uid) = delivered.copies[0];
    let flags = Flags::from_names(["\\Seen", "\\Flagged"]).unwrap();
    let update = store
        .store_flags_with_rights(
            inbox,
            uid_ranges(&[uid]),
            FlagOp::Add,
            flags,
            None,
            rights("lrs"),
        )
        .await
        .unwrap();
    assert_eq!(update.messages[0].flags.names(), vec!["\\Seen"]);
}

#[tokio::test]
async fn copies_carry_only_the_flags_the_copier_may_set() {
    let (_dir, store) = open().await;
    let bob = user(&store, "bob@example.org").await;
    let delivered = store
        .deliver(b"Subject: x\r\n\r\nbody\r\n".to_vec(), &[bob.id])
        .await
        .unwrap();
    let (_, inbox, uid) = delivered.copies[0];
    store
        .store_flags(
            inbox,
            uid_ranges(&[uid]),
            FlagOp::Add,
            Flags::from_names(["\\Seen", "\\Flagged", "$Work"]).unwrap(),
            None,
        )
        .await
        .unwrap();
    let target = mailbox(&store, &bob, "Projects").await;
    store
        .copy_messages_with_rights(inbox, uid_ranges(&[uid]), target.id, rights("is"))
        .await
        .unwrap();
    let other = mailbox(&store, &bob, "Other").await;
    store
        .move_messages_with_rights(inbox, uid_ranges(&[uid]), other.id, rights("iw"))
        .await
        .unwrap();
    let copied = store.message_index(target.id).await.unwrap();
    assert_eq!(copied[0].flags.names(), vec!["\\Seen"]);
    let moved = store.message_index(other.id).await.unwrap();
    assert_eq!(moved[0].flags.names(), vec!["\\Flagged", "$Work"]);
}
