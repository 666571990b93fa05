//! The store's API, operation by operation, and the invariants of DESIGN.md:
//! UIDs and MODSEQ strictly increase, content is stored once and freed with its last
//! copy, and the change feed reports committed writes.

use std::collections::HashSet;

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

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: {subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn inbox(store: &Store, account: &Account) -> Mailbox {
    store
        .mailbox(account.id, "INBOX")
        .await
        .expect("query")
        .expect("INBOX exists")
}

#[tokio::test]
async fn domains_accounts_and_passwords() {
    let (_dir, store) = open().await;
    store.add_domain("Example.ORG").await.expect("add");
    assert!(matches!(
        store.add_domain("example.org").await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.add_domain("not a domain").await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(
        store
            .list_domains()
            .await
            .unwrap()
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["example.org"]
    );

    let alice = store
        .create_account("alice@EXAMPLE.org", "pw1")
        .await
        .expect("create");
    assert_eq!(alice.address, "alice@example.org");
    assert!(matches!(
        store.create_account("ALICE@example.org", "x").await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.create_account("bob@nowhere.test", "x").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.create_account("bob@example.org", "").await,
        Err(StoreError::Invalid { .. })
    ));

    assert_eq!(
        store
            .authenticate("alice@example.org", "pw1")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(alice.id)
    );
    assert_eq!(
        store
            .authenticate("Alice@Example.org", "pw1")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(alice.id)
    );
    assert!(
        store
            .authenticate("alice@example.org", "wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .authenticate("nobody@example.org", "pw1")
            .await
            .unwrap()
            .is_none()
    );

    store
        .set_password("alice@example.org", "pw2")
        .await
        .expect("passwd");
    assert!(
        store
            .authenticate("alice@example.org", "pw1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .authenticate("alice@example.org", "pw2")
            .await
            .unwrap()
            .is_some()
    );

    store
        .delete_account("alice@example.org")
        .await
        .expect("delete");
    assert!(store.account("alice@example.org").await.unwrap().is_none());
    assert!(matches!(
        store.delete_account("alice@example.org").await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .delete_domain("example.org")
        .await
        .expect("delete domain");
    assert!(store.list_domains().await.unwrap().is_empty());
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_only() {
    // A password no schema text or comment could contain by chance.
    const PASSWORD: &str = "plain-Xq7vK2mZ";
    let (dir, store) = open().await;
    store.add_domain("example.org").await.expect("domain");
    store
        .create_account("alice@example.org", PASSWORD)
        .await
        .expect("account");
    drop(store);
    let db = std::fs::read(dir.path().join("mailroom.sqlite3")).expect("db");
    let wal = std::fs::read(dir.path().join("mailroom.sqlite3-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(PASSWORD),
            "the plaintext password is on disk"
        );
    }
}

#[tokio::test]
async fn new_accounts_get_special_use_mailboxes() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let boxes = store.list_mailboxes(alice.id).await.unwrap();
    let got: Vec<(String, Option<String>)> = boxes
        .iter()
        .map(|m| (m.name.clone(), m.special_use.clone()))
        .collect();
    for (name, special) in [
        ("INBOX", None),
        ("Sent", Some("\\Sent")),
        ("Drafts", Some("\\Drafts")),
        ("Trash", Some("\\Trash")),
        ("Junk", Some("\\Junk")),
        ("Archive", Some("\\Archive")),
    ] {
        assert!(
            got.contains(&(name.to_string(), special.map(str::to_string))),
            "{name} missing in {got:?}"
        );
    }
    let subs = store.subscriptions(alice.id).await.unwrap();
    assert_eq!(subs.len(), 6);
}

#[tokio::test]
async fn recipients_resolve_through_accounts_aliases_tags_and_catch_all() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let bob = with_user(&store, "bob@example.org").await;
    store.add_domain("other.test").await.unwrap();
    store
        .add_alias("info@example.org", "bob@example.org")
        .await
        .expect("alias");
    assert!(matches!(
        store
            .add_alias("alice@example.org", "bob@example.org")
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.add_alias("x@remote.test", "bob@example.org").await,
        Err(StoreError::NotFound { .. })
    ));
    let policy = AddressPolicy::default();
    let local = |r: Recipient| match r {
        Recipient::Local(a) => Some(a.id),
        _ => None,
    };
    assert_eq!(
        local(
            store
                .resolve_recipient("alice@example.org", policy)
                .await
                .unwrap()
        ),
        Some(alice.id)
    );
    assert_eq!(
        local(
            store
                .resolve_recipient("ALICE@Example.Org", policy)
                .await
                .unwrap()
        ),
        Some(alice.id)
    );
    assert_eq!(
        local(
            store
                .resolve_recipient("alice+lists@example.org", policy)
                .await
                .unwrap()
        ),
        Some(alice.id)
    );
    assert_eq!(
        local(
            store
                .resolve_recipient("info@example.org", policy)
                .await
                .unwrap()
        ),
        Some(bob.id)
    );
    assert_eq!(
        local(
            store
                .resolve_recipient("info+x@example.org", policy)
                .await
                .unwrap()
        ),
        Some(bob.id)
    );
    assert_eq!(
        store
            .resolve_recipient("carol@example.org", policy)
            .await
            .unwrap(),
        Recipient::UnknownLocal
    );
    assert_eq!(
        store
            .resolve_recipient("carol@other.test", policy)
            .await
            .unwrap(),
        Recipient::UnknownLocal
    );
    assert_eq!(
        store
            .resolve_recipient("carol@remote.test", policy)
            .await
            .unwrap(),
        Recipient::Remote
    );

    let strict = AddressPolicy {
        sub_addressing: false,
        case_sensitive_local_part: true,
    };
    assert_eq!(
        store
            .resolve_recipient("alice+lists@example.org", strict)
            .await
            .unwrap(),
        Recipient::UnknownLocal
    );
    assert_eq!(
        store
            .resolve_recipient("ALICE@example.org", strict)
            .await
            .unwrap(),
        Recipient::UnknownLocal
    );
    assert_eq!(
        local(
            store
                .resolve_recipient("alice@EXAMPLE.ORG", strict)
                .await
                .unwrap()
        ),
        Some(alice.id)
    );

    store
        .add_alias("@other.test", "alice@example.org")
        .await
        .expect("catch-all");
    assert_eq!(
        local(
            store
                .resolve_recipient("anyone@other.test", policy)
                .await
                .unwrap()
        ),
        Some(alice.id)
    );
    let aliases = store.list_aliases().await.unwrap();
    assert_eq!(aliases.len(), 2);
    store.delete_alias("@other.test").await.unwrap();
    assert_eq!(
        store
            .resolve_recipient("anyone@other.test", policy)
            .await
            .unwrap(),
        Recipient::UnknownLocal
    );
    assert!(matches!(
        store.delete_alias("@other.test").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn delivery_stores_content_once_and_frees_it_with_the_last_copy() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let bob = with_user(&store, "bob@example.org").await;
    let carol = with_user(&store, "carol@example.org").await;
    let raw = message("shared", "one content for three");
    // Alice twice: duplicates collapse into one copy.
    let delivered = store
        .deliver(raw.clone(), &[alice.id, bob.id, carol.id, alice.id])
        .await
        .expect("deliver");
    assert_eq!(delivered.copies.len(), 3);
    let content = delivered.content_id;
    for account in [&alice, &bob, &carol] {
        let mb = inbox(&store, account).await;
        let info = store.fetch_info(mb.id, &[1..=u32::MAX]).await.unwrap();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].content_id, content, "every copy shares the content");
        assert_eq!(info[0].size, raw.len() as u64);
        assert_eq!(store.content_raw(info[0].content_id).await.unwrap(), raw);
    }
    let views = store.content_views(content).await.unwrap();
    assert!(views.envelope.contains("\"shared\""), "{}", views.envelope);
    assert!(
        views
            .body_structure
            .to_ascii_lowercase()
            .contains("\"text\" \"plain\""),
        "{}",
        views.body_structure
    );

    // Expunge two copies: the content stays; the last one takes it.
    for (i, account) in [&alice, &bob, &carol].into_iter().enumerate() {
        let mb = inbox(&store, account).await;
        store
            .store_flags(
                mb.id,
                vec![1..=1],
                FlagOp::Add,
                Flags::from_names(["\\Deleted"]).unwrap(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(store.expunge(mb.id, None).await.unwrap(), vec![1]);
        let still_there = store.content_raw(content).await;
        if i < 2 {
            assert!(still_there.is_ok(), "content freed too early");
        } else {
            assert!(
                matches!(still_there, Err(StoreError::NotFound { .. })),
                "content outlived its last copy"
            );
        }
    }
    assert!(
        store
            .search_body(inbox(&store, &alice).await.id, "three")
            .await
            .unwrap()
            .is_empty()
    );
    store.integrity_check().await.expect("integrity");
}

#[tokio::test]
async fn concurrent_deliveries_never_share_a_uid() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut uids = Vec::new();
            for i in 0..40 {
                let d = store
                    .deliver(message(&format!("t{t}-{i}"), "body"), &[alice.id])
                    .await
                    .expect("deliver");
                uids.push(d.copies[0].2);
            }
            uids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let uids = t.await.unwrap();
        assert!(
            uids.windows(2).all(|w| w[0] < w[1]),
            "one sender sees increasing UIDs: {uids:?}"
        );
        all.extend(uids);
    }
    let distinct: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(distinct.len(), 320, "no UID handed out twice");
    let mb = inbox(&store, &alice).await;
    let index = store.message_index(mb.id).await.unwrap();
    assert_eq!(index.len(), 320);
    assert!(index.windows(2).all(|w| w[0].uid < w[1].uid));
    let modseqs: HashSet<u64> = index.iter().map(|m| m.modseq).collect();
    assert_eq!(modseqs.len(), 320, "every append took its own MODSEQ");
    assert_eq!(mb.uid_next, 321);
    assert!(mb.highest_modseq >= index.iter().map(|m| m.modseq).max().unwrap());
}

#[tokio::test]
async fn uids_are_never_reused_and_modseq_always_grows() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mb = inbox(&store, &alice).await;
    for i in 0..3 {
        store
            .deliver(message(&format!("m{i}"), "x"), &[alice.id])
            .await
            .unwrap();
    }
    let deleted = Flags::from_names(["\\Deleted"]).unwrap();
    store
        .store_flags(mb.id, vec![3..=3], FlagOp::Add, deleted, None)
        .await
        .unwrap();
    let before = store.mailbox_by_id(mb.id).await.unwrap().highest_modseq;
    assert_eq!(store.expunge(mb.id, None).await.unwrap(), vec![3]);
    let after = store.mailbox_by_id(mb.id).await.unwrap().highest_modseq;
    assert!(after > before, "expunge takes a MODSEQ");
    let d = store
        .deliver(message("m3", "x"), &[alice.id])
        .await
        .unwrap();
    assert_eq!(d.copies[0].2, 4, "UID 3 is not reused after its expunge");
    let changes = store.changes_since(mb.id, before).await.unwrap();
    assert_eq!(changes.expunged, vec![3]);
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(changes.uid_next, 5);
}

#[tokio::test]
async fn expunged_since_lists_the_expunge_log_after_a_modseq() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mb = inbox(&store, &alice).await;
    for i in 0..5 {
        store
            .deliver(message(&format!("m{i}"), "x"), &[alice.id])
            .await
            .unwrap();
    }
    let deleted = Flags::from_names(["\\Deleted"]).unwrap();
    let start = store.mailbox_by_id(mb.id).await.unwrap().highest_modseq;
    for uid in [2, 4] {
        store
            .store_flags(mb.id, vec![uid..=uid], FlagOp::Add, deleted.clone(), None)
            .await
            .unwrap();
        store.expunge(mb.id, None).await.unwrap();
    }
    let middle = store.mailbox_by_id(mb.id).await.unwrap().highest_modseq - 1;
    assert_eq!(
        store.expunged_since(mb.id, start).await.unwrap(),
        vec![2, 4]
    );
    assert_eq!(store.expunged_since(mb.id, 0).await.unwrap(), vec![2, 4]);
    assert_eq!(store.expunged_since(mb.id, middle).await.unwrap(), vec![4]);
    assert!(
        store
            .expunged_since(mb.id, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn flags_change_with_modseq_and_unchangedsince() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mb = inbox(&store, &alice).await;
    for i in 0..3 {
        store
            .deliver(message(&format!("m{i}"), "x"), &[alice.id])
            .await
            .unwrap();
    }
    let seen = Flags::from_names(["\\Seen", "$Forwarded"]).unwrap();
    let up = store
        .store_flags(mb.id, vec![1..=2], FlagOp::Add, seen.clone(), None)
        .await
        .unwrap();
    assert_eq!(up.changed, vec![1, 2]);
    assert_eq!(up.messages[0].flags.names(), vec!["\\Seen", "$Forwarded"]);
    let m1 = up.messages[0].modseq;

    // Adding what is there already changes nothing and takes no MODSEQ.
    let again = store
        .store_flags(mb.id, vec![1..=1], FlagOp::Add, seen.clone(), None)
        .await
        .unwrap();
    assert!(again.changed.is_empty());
    assert_eq!(again.messages[0].modseq, m1);

    let up = store
        .store_flags(
            mb.id,
            vec![1..=1],
            FlagOp::Remove,
            Flags::from_names(["$forwarded"]).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        up.messages[0].flags.names(),
        vec!["\\Seen"],
        "keywords compare case-insensitively"
    );
    assert!(up.messages[0].modseq > m1);

    let up = store
        .store_flags(
            mb.id,
            vec![1..=3],
            FlagOp::Replace,
            Flags::from_names(["\\Flagged"]).unwrap(),
            Some(m1),
        )
        .await
        .unwrap();
    assert_eq!(
        up.modified,
        vec![1],
        "message 1 changed after UNCHANGEDSINCE"
    );
    assert_eq!(up.changed, vec![2, 3]);

    assert!(Flags::from_names(["\\Bogus"]).is_err());
    assert!(Flags::from_names(["bad(keyword"]).is_err());
    let index = store.message_index(mb.id).await.unwrap();
    assert_eq!(index[2].flags.to_string(), "(\\Flagged)");
}

#[tokio::test]
async fn copy_move_and_uid_expunge() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mb = inbox(&store, &alice).await;
    let archive = store.mailbox(alice.id, "Archive").await.unwrap().unwrap();
    for i in 0..4 {
        store
            .deliver(message(&format!("m{i}"), "x"), &[alice.id])
            .await
            .unwrap();
    }
    store
        .store_flags(
            mb.id,
            vec![2..=2],
            FlagOp::Add,
            Flags::from_names(["\\Flagged"]).unwrap(),
            None,
        )
        .await
        .unwrap();
    let copied = store
        .copy_messages(mb.id, vec![1..=2], archive.id)
        .await
        .unwrap();
    assert_eq!(copied.uid_validity, archive.uid_validity);
    assert_eq!(copied.pairs, vec![(1, 1), (2, 2)]);
    let in_archive = store.message_index(archive.id).await.unwrap();
    assert!(in_archive[1].flags.has(Flags::FLAGGED), "COPY keeps flags");

    let moved = store
        .move_messages(mb.id, vec![3..=4], archive.id)
        .await
        .unwrap();
    assert_eq!(moved.pairs, vec![(3, 3), (4, 4)]);
    assert_eq!(
        store
            .message_index(mb.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(store.message_index(archive.id).await.unwrap().len(), 4);

    // UID EXPUNGE removes only \Deleted messages inside the given set.
    let deleted = Flags::from_names(["\\Deleted"]).unwrap();
    store
        .store_flags(archive.id, vec![1..=4], FlagOp::Add, deleted, None)
        .await
        .unwrap();
    assert_eq!(
        store.expunge(archive.id, Some(vec![2..=3])).await.unwrap(),
        vec![2, 3]
    );
    assert_eq!(store.expunge(archive.id, None).await.unwrap(), vec![1, 4]);
    assert!(store.message_index(archive.id).await.unwrap().is_empty());
    store.integrity_check().await.unwrap();
}

#[tokio::test]
async fn mailbox_hierarchy_rules() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let id = alice.id;
    let names = |store: Store| async move {
        store
            .list_mailboxes(id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.name, m.noselect))
            .collect::<Vec<_>>()
    };

    store
        .create_mailbox(id, "Projects/2026/Q1", None)
        .await
        .expect("create with parents");
    let got = names(store.clone()).await;
    // Missing superiors are \Noselect placeholders (as in Dovecot)...
    for (n, noselect) in [
        ("Projects", true),
        ("Projects/2026", true),
        ("Projects/2026/Q1", false),
    ] {
        assert!(got.contains(&(n.to_string(), noselect)), "{n} in {got:?}");
    }
    // ...which a CREATE makes real; a second CREATE finds it there.
    assert!(
        !store
            .create_mailbox(id, "Projects", None)
            .await
            .unwrap()
            .noselect
    );
    assert!(matches!(
        store.create_mailbox(id, "Projects", None).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(
        !store
            .create_mailbox(id, "Projects/2026", None)
            .await
            .unwrap()
            .noselect
    );
    assert!(matches!(
        store.create_mailbox(id, "inbox", None).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.create_mailbox(id, "a//b", None).await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(
        store
            .create_mailbox(id, "Trailing/", None)
            .await
            .unwrap()
            .name,
        "Trailing"
    );

    // DELETE with inferiors leaves a \Noselect placeholder; again is refused.
    let p2026 = store.mailbox(id, "Projects/2026").await.unwrap().unwrap();
    store
        .append(p2026.id, message("kept?", "no"), Flags::default(), None)
        .await
        .unwrap();
    store
        .delete_mailbox(id, "Projects/2026")
        .await
        .expect("delete parent");
    let mb = store.mailbox(id, "Projects/2026").await.unwrap().unwrap();
    assert!(mb.noselect);
    assert!(
        store.message_index(mb.id).await.unwrap().is_empty(),
        "its messages are gone"
    );
    assert!(matches!(
        store.delete_mailbox(id, "Projects/2026").await,
        Err(StoreError::HasChildren(_))
    ));
    assert!(
        store
            .append(mb.id, message("x", "y"), Flags::default(), None)
            .await
            .is_err()
    );
    // Deleting the last child takes the placeholder with it.
    store.delete_mailbox(id, "Projects/2026/Q1").await.unwrap();
    assert!(store.mailbox(id, "Projects/2026").await.unwrap().is_none());
    assert!(matches!(
        store.delete_mailbox(id, "INBOX").await,
        Err(StoreError::Cannot(_))
    ));
    assert!(matches!(
        store.delete_mailbox(id, "Nope").await,
        Err(StoreError::NotFound { .. })
    ));

    // CREATE on a placeholder name makes it real again.
    store.create_mailbox(id, "A/B", None).await.unwrap();
    assert!(
        matches!(
            store.delete_mailbox(id, "A").await,
            Err(StoreError::HasChildren(_))
        ),
        "a placeholder cannot be deleted"
    );
    store.create_mailbox(id, "A", None).await.unwrap();
    store.delete_mailbox(id, "A").await.unwrap();
    assert!(store.mailbox(id, "A").await.unwrap().unwrap().noselect);
    assert!(!store.create_mailbox(id, "A", None).await.unwrap().noselect);

    // RENAME carries inferiors and keeps UIDVALIDITY and messages.
    let ab = store.mailbox(id, "A/B").await.unwrap().unwrap();
    store
        .append(ab.id, message("in-b", "z"), Flags::default(), None)
        .await
        .unwrap();
    let renamed = store.rename_mailbox(id, "A", "X/Y").await.expect("rename");
    assert_eq!(renamed.name, "X/Y");
    let xb = store
        .mailbox(id, "X/Y/B")
        .await
        .unwrap()
        .expect("inferior renamed");
    assert_eq!(xb.id, ab.id);
    assert_eq!(xb.uid_validity, ab.uid_validity);
    assert_eq!(store.message_index(xb.id).await.unwrap().len(), 1);
    assert!(store.mailbox(id, "A/B").await.unwrap().is_none());
    assert!(matches!(
        store.rename_mailbox(id, "X", "Sent").await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.rename_mailbox(id, "X", "X/Z").await,
        Err(StoreError::Cannot(_))
    ));
    assert!(matches!(
        store.rename_mailbox(id, "Nope", "Z").await,
        Err(StoreError::NotFound { .. })
    ));

    // RENAME INBOX moves the messages and leaves INBOX empty.
    store.deliver(message("i1", "a"), &[id]).await.unwrap();
    store.deliver(message("i2", "b"), &[id]).await.unwrap();
    let old = store
        .rename_mailbox(id, "INBOX", "Old Inbox")
        .await
        .expect("rename INBOX");
    assert_eq!(store.message_index(old.id).await.unwrap().len(), 2);
    let inbox_mb = inbox(&store, &alice).await;
    assert!(store.message_index(inbox_mb.id).await.unwrap().is_empty());
    assert_eq!(inbox_mb.uid_next, 3, "INBOX's UIDs are not reused");
}

#[tokio::test]
async fn uidvalidity_differs_when_a_name_is_recreated() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let first = store.create_mailbox(alice.id, "Temp", None).await.unwrap();
    store.delete_mailbox(alice.id, "Temp").await.unwrap();
    let second = store.create_mailbox(alice.id, "Temp", None).await.unwrap();
    assert_ne!(first.uid_validity, second.uid_validity);
}

#[tokio::test]
async fn subscriptions_are_names() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    store
        .subscribe_mailbox(alice.id, "Does/Not/Exist")
        .await
        .expect("subscribe any name");
    assert!(
        store
            .subscriptions(alice.id)
            .await
            .unwrap()
            .contains(&"Does/Not/Exist".to_string())
    );
    store
        .unsubscribe_mailbox(alice.id, "Does/Not/Exist")
        .await
        .unwrap();
    assert!(matches!(
        store.unsubscribe_mailbox(alice.id, "Does/Not/Exist").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn status_and_recent() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mb = inbox(&store, &alice).await;
    for i in 0..3 {
        store
            .deliver(message(&format!("m{i}"), "x"), &[alice.id])
            .await
            .unwrap();
    }
    store
        .store_flags(
            mb.id,
            vec![1..=1],
            FlagOp::Add,
            Flags::from_names(["\\Seen"]).unwrap(),
            None,
        )
        .await
        .unwrap();
    store
        .store_flags(
            mb.id,
            vec![2..=2],
            FlagOp::Add,
            Flags::from_names(["\\Deleted"]).unwrap(),
            None,
        )
        .await
        .unwrap();
    let s = store.mailbox_status(mb.id).await.unwrap();
    assert_eq!(
        (s.messages, s.unseen, s.deleted, s.recent, s.uid_next),
        (3, 2, 1, 3, 4)
    );
    assert!(s.size > 0);

    // Exactly one claimant sees each message as \Recent.
    assert_eq!(store.claim_recent(mb.id).await.unwrap(), (0, 3));
    assert_eq!(store.claim_recent(mb.id).await.unwrap(), (3, 3));
    store
        .deliver(message("m3", "x"), &[alice.id])
        .await
        .unwrap();
    assert_eq!(store.claim_recent(mb.id).await.unwrap(), (3, 4));
    assert_eq!(store.mailbox_status(mb.id).await.unwrap().recent, 0);
}

#[tokio::test]
async fn search_body_and_headers() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mb = inbox(&store, &alice).await;
    store
        .deliver(
            message("Quarterly report", "The numbers look Excellent this year."),
            &[alice.id],
        )
        .await
        .unwrap();
    store
        .deliver(
            message("Lunch", "Pizza at noon? Ünïcödé works too."),
            &[alice.id],
        )
        .await
        .unwrap();
    store
        .deliver(message("Re: lunch", "ok"), &[alice.id])
        .await
        .unwrap();

    assert_eq!(
        store.search_body(mb.id, "excellent").await.unwrap(),
        vec![1],
        "case-insensitive via the trigram index"
    );
    assert_eq!(
        store.search_body(mb.id, "NUMBERS LOOK").await.unwrap(),
        vec![1],
        "phrases are substrings"
    );
    assert_eq!(
        store.search_body(mb.id, "ook exc").await.unwrap(),
        vec![1],
        "substring across words"
    );
    assert_eq!(
        store.search_body(mb.id, "ÜNÏCÖDÉ").await.unwrap(),
        vec![2],
        "non-ASCII case folding"
    );
    assert_eq!(
        store.search_body(mb.id, "ok").await.unwrap(),
        vec![1, 3],
        "short needles scan"
    );
    assert!(
        store
            .search_body(mb.id, "\"quoted\"")
            .await
            .unwrap()
            .is_empty(),
        "quotes are escaped, not syntax"
    );
    assert_eq!(
        store
            .search_header(mb.id, Some("Subject"), "LUNCH")
            .await
            .unwrap(),
        vec![2, 3]
    );
    assert_eq!(
        store
            .search_header(mb.id, Some("from"), "alice@")
            .await
            .unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(
        store
            .search_header(mb.id, Some("x-missing"), "")
            .await
            .unwrap(),
        Vec::<u32>::new()
    );
    assert_eq!(
        store
            .search_header(mb.id, Some("subject"), "")
            .await
            .unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(store.search_text(mb.id, "pizza").await.unwrap(), vec![2]);
    assert_eq!(
        store.search_text(mb.id, "quarterly").await.unwrap(),
        vec![1]
    );
    let info = store.fetch_info(mb.id, &[1..=1]).await.unwrap();
    assert_eq!(
        info[0].sent_date,
        Some((1772442000, 60)),
        "Date: header kept with its zone"
    );
}

#[tokio::test]
async fn change_feed_reports_committed_writes() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mb = inbox(&store, &alice).await;
    let mut feed = store.subscribe();
    let d = store
        .deliver(message("hello", "x"), &[alice.id])
        .await
        .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(1), feed.recv())
        .await
        .expect("event in time")
        .unwrap();
    match event {
        Change::Mailbox {
            account_id,
            mailbox_id,
            modseq,
        } => {
            assert_eq!((account_id, mailbox_id), (alice.id, mb.id));
            // The event follows the commit: a read now sees the message.
            let changes = store.changes_since(mb.id, modseq - 1).await.unwrap();
            assert_eq!(changes.changed[0].uid, d.copies[0].2);
        }
        other => panic!("unexpected {other:?}"),
    }
    store.create_mailbox(alice.id, "New", None).await.unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(1), feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event,
        Change::MailboxList {
            account_id: alice.id
        }
    );
}

#[tokio::test]
async fn a_failed_request_does_not_spoil_its_batch() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    // Many concurrent writes, some of which fail, land in shared transactions.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                store
                    .create_mailbox(alice.id, "INBOX", None)
                    .await
                    .map(|_| ())
                    .is_err()
            } else {
                store
                    .deliver(message(&format!("b{i}"), "x"), &[alice.id])
                    .await
                    .is_ok()
            }
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    let mb = inbox(&store, &alice).await;
    assert_eq!(store.message_index(mb.id).await.unwrap().len(), 30);
}

#[tokio::test]
async fn quota_refuses_what_does_not_fit() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let raw = message("big", &"x".repeat(1000));
    store
        .set_quota("alice@example.org", Some(raw.len() as i64 + 10))
        .await
        .unwrap();
    assert!(store.fits_quota(alice.id, raw.len() as u64).await.unwrap());
    store.deliver(raw.clone(), &[alice.id]).await.expect("fits");
    assert!(!store.fits_quota(alice.id, 11).await.unwrap());
    assert!(store.fits_quota(alice.id, 10).await.unwrap());
    assert!(matches!(
        store.deliver(raw.clone(), &[alice.id]).await,
        Err(StoreError::OverQuota)
    ));
    let mb = inbox(&store, &alice).await;
    assert!(matches!(
        store
            .append(mb.id, raw.clone(), Flags::default(), None)
            .await,
        Err(StoreError::OverQuota)
    ));

    // Moving, deleting and expunging keep the used-bytes count right.
    let folder = store
        .create_mailbox(alice.id, "Folder", None)
        .await
        .unwrap();
    store
        .move_messages(mb.id, vec![1..=1], folder.id)
        .await
        .unwrap();
    assert!(
        !store.fits_quota(alice.id, 11).await.unwrap(),
        "a move does not free space"
    );
    store.delete_mailbox(alice.id, "Folder").await.unwrap();
    assert!(
        store.fits_quota(alice.id, raw.len() as u64).await.unwrap(),
        "deleting the mailbox frees its space"
    );
    store
        .deliver(raw.clone(), &[alice.id])
        .await
        .expect("fits again");
    store
        .store_flags(
            mb.id,
            vec![2..=2],
            FlagOp::Add,
            Flags::from_names(["\\Deleted"]).unwrap(),
            None,
        )
        .await
        .unwrap();
    store.expunge(mb.id, None).await.unwrap();
    assert!(
        store.fits_quota(alice.id, raw.len() as u64).await.unwrap(),
        "expunge frees space"
    );
}

#[tokio::test]
async fn body_search_is_the_same_before_and_after_indexing() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let mb = inbox(&store, &alice).await;
    let mut expected = Vec::new();
    // Deliveries race the indexer: every search must see every message either way.
    for i in 0..60u32 {
        let body = if i % 3 == 0 {
            "needle in a haystack"
        } else {
            "just hay"
        };
        store
            .deliver(message(&format!("m{i}"), body), &[alice.id])
            .await
            .unwrap();
        if i % 3 == 0 {
            expected.push(i + 1);
        }
        assert_eq!(store.search_body(mb.id, "NEEDLE").await.unwrap(), expected);
        assert_eq!(store.search_body(mb.id, "ne").await.unwrap(), expected);
    }
    // After the writer had idle time the answers are unchanged.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    store.create_mailbox(alice.id, "poke", None).await.unwrap();
    assert_eq!(store.search_body(mb.id, "needle").await.unwrap(), expected);
    assert_eq!(
        store.search_body(mb.id, "haystack").await.unwrap(),
        expected
    );
}

#[tokio::test]
async fn append_keeps_flags_and_internal_date() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let drafts = store.mailbox(alice.id, "Drafts").await.unwrap().unwrap();
    let date = time::OffsetDateTime::from_unix_timestamp(1_700_000_000)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(-5, 0, 0).unwrap());
    let (validity, uid) = store
        .append(
            drafts.id,
            message("draft", "x"),
            Flags::from_names(["\\Draft", "\\Seen"]).unwrap(),
            Some(date),
        )
        .await
        .unwrap();
    assert_eq!((validity, uid), (drafts.uid_validity, 1));
    let info = store.fetch_info(drafts.id, &[1..=1]).await.unwrap();
    assert_eq!(
        (info[0].internal_date, info[0].internal_offset),
        (1_700_000_000, -300)
    );
    assert!(info[0].flags.has(Flags::DRAFT) && info[0].flags.has(Flags::SEEN));
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path());
    let id = {
        let store = Store::open(&options).await.unwrap();
        let alice = with_user(&store, "alice@example.org").await;
        store
            .deliver(message("persist", "x"), &[alice.id])
            .await
            .unwrap();
        alice.id
    };
    let store = Store::open(&options)
        .await
        .expect("reopen runs no migration twice");
    let mb = store.mailbox(id, "INBOX").await.unwrap().unwrap();
    assert_eq!(store.message_index(mb.id).await.unwrap().len(), 1);
    store.integrity_check().await.unwrap();
}

#[tokio::test]
async fn multiappend_is_all_or_nothing() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let drafts = store.mailbox(alice.id, "Drafts").await.unwrap().unwrap();
    let (validity, uids) = store
        .append_many(
            drafts.id,
            vec![
                (message("a", "1"), Flags::default(), None),
                (
                    message("b", "2"),
                    Flags::from_names(["\\Seen"]).unwrap(),
                    None,
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!((validity, uids), (drafts.uid_validity, vec![1, 2]));
    // Over quota as a whole: nothing is stored, no UID is used up.
    store
        .set_quota(
            "alice@example.org",
            Some(message("a", "1").len() as i64 * 3),
        )
        .await
        .unwrap();
    let batch = vec![
        (message("c", "3"), Flags::default(), None),
        (message("d", "4"), Flags::default(), None),
    ];
    assert!(matches!(
        store.append_many(drafts.id, batch).await,
        Err(StoreError::OverQuota)
    ));
    assert_eq!(store.message_index(drafts.id).await.unwrap().len(), 2);
    assert_eq!(store.mailbox_by_id(drafts.id).await.unwrap().uid_next, 3);
}

#[tokio::test]
async fn send_as_any_is_off_by_default_and_set_per_account() {
    let (_dir, store) = open().await;
    let admin = with_user(&store, "admin@example.org").await;
    let alice = with_user(&store, "alice@example.org").await;
    assert!(!store.may_send_as_any(admin.id).await.unwrap());
    assert!(!store.may_send_as_any(alice.id).await.unwrap());
    store
        .set_send_as_any(" Admin@Example.org ", true)
        .await
        .unwrap();
    assert!(store.may_send_as_any(admin.id).await.unwrap());
    assert!(!store.may_send_as_any(alice.id).await.unwrap());
    store
        .set_send_as_any("admin@example.org", false)
        .await
        .unwrap();
    assert!(!store.may_send_as_any(admin.id).await.unwrap());
    assert!(matches!(
        store.set_send_as_any("nobody@example.org", true).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn search_treats_query_syntax_as_text_and_folds_unicode() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let inbox = inbox(&store, &alice).await;
    // Subject: the Kelvin sign (U+212A), whose lower case is an ASCII k.
    let odd = b"From: Alice <alice@example.org>\r\nSubject: =?utf-8?q?=E2=84=AAelvin_scale?=\r\n\r\nSay \"hi\" to 100% of them; A_B AND c*d.\r\n".to_vec();
    store.deliver(odd, &[alice.id]).await.unwrap();
    store
        .deliver(message("plain", "nothing special: hi 100 ab"), &[alice.id])
        .await
        .unwrap();
    // Twice: once maybe before the indexer ran, once surely after it had time.
    for round in 0..2 {
        for (needle, expected) in [
            ("\"hi\"", vec![1]),
            ("100%", vec![1]),
            ("0% o", vec![1]),
            ("a_b", vec![1]),
            ("a_", vec![1]),
            ("AND C*D", vec![1]),
            ("hi", vec![1, 2]),
            ("100 ab", vec![2]),
            ("\"", vec![1]),
        ] {
            assert_eq!(
                store.search_body(inbox.id, needle).await.unwrap(),
                expected,
                "BODY {needle:?}, round {round}"
            );
        }
        assert_eq!(
            store
                .search_header(inbox.id, Some("subject"), "KELVIN")
                .await
                .unwrap(),
            vec![1]
        );
        assert_eq!(
            store.search_header(inbox.id, None, "k").await.unwrap(),
            vec![1]
        );
        assert_eq!(
            store
                .search_header(inbox.id, Some("subject"), "%")
                .await
                .unwrap(),
            Vec::<u32>::new()
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn deliver_into_files_each_copy_in_its_folder() {
    let (_dir, store) = open().await;
    let alice = with_user(&store, "alice@example.org").await;
    let bob = with_user(&store, "bob@example.org").await;
    let carol = with_user(&store, "carol@example.org").await;
    // Carol has no \Junk mailbox any more: her copy falls back to INBOX.
    store
        .delete_mailbox(carol.id, "Junk")
        .await
        .expect("delete Junk");
    let delivered = store
        .deliver_into(
            message("spam", "cheap watches"),
            &[
                (alice.id, Folder::Junk),
                (bob.id, Folder::Inbox),
                (carol.id, Folder::Junk),
                // Named twice: one copy, in the first folder named.
                (alice.id, Folder::Inbox),
            ],
        )
        .await
        .expect("deliver");
    assert_eq!(delivered.copies.len(), 3);
    let count = |mb: Mailbox| {
        let store = store.clone();
        async move {
            store
                .fetch_info(mb.id, &[1..=u32::MAX])
                .await
                .unwrap()
                .len()
        }
    };
    let alice_junk = store
        .mailbox(alice.id, "Junk")
        .await
        .unwrap()
        .expect("Junk");
    assert_eq!(alice_junk.special_use.as_deref(), Some("\\Junk"));
    assert_eq!(count(alice_junk).await, 1, "alice's copy is in Junk");
    assert_eq!(count(inbox(&store, &alice).await).await, 0);
    assert_eq!(count(inbox(&store, &bob).await).await, 1);
    let bob_junk = store.mailbox(bob.id, "Junk").await.unwrap().expect("Junk");
    assert_eq!(count(bob_junk).await, 0);
    assert_eq!(
        count(inbox(&store, &carol).await).await,
        1,
        "no Junk: INBOX"
    );

    // The \Junk special use, not the name, decides: a renamed Junk still gets spam.
    let spam = store.mailbox(bob.id, "Junk").await.unwrap().expect("Junk");
    store.set_special_use(spam.id, None).await.unwrap();
    let archive = store
        .mailbox(bob.id, "Archive")
        .await
        .unwrap()
        .expect("Archive");
    store
        .set_special_use(archive.id, Some("\\Junk"))
        .await
        .unwrap();
    store
        .deliver_into(message("spam2", "more"), &[(bob.id, Folder::Junk)])
        .await
        .expect("deliver");
    assert_eq!(count(archive).await, 1);
}
