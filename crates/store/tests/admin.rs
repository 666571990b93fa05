//! The administrators' and test suites' operations (`mailroom_store::admin`):
//! message listings with envelope fields, filters across accounts, deleting one
//! message, purging all, and the store's size. Deletions must look like expunges to
//! IMAP: a new MODSEQ, the expunge log, and a change event.

use mailroom_store::admin::MessageFilter;
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

fn message(to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: {to}\r\nCc: Carol <carol@example.net>\r\nSubject: {subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <{}@example.org>\r\n\r\nhello\r\n",
        subject.replace(' ', "-")
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
async fn list_messages_has_envelope_fields() {
    let (_dir, store) = open().await;
    let bob = with_user(&store, "bob@example.org").await;
    store
        .deliver(
            message("Bob <bob@example.org>", "=?utf-8?q?caf=C3=A9?= one"),
            &[bob.id],
        )
        .await
        .expect("deliver");
    store
        .deliver(message("bob@example.org", "two"), &[bob.id])
        .await
        .expect("deliver");
    let inbox = inbox(&store, &bob).await;
    let list = store.list_messages(inbox.id).await.expect("list");
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(first.uid, 1);
    assert_eq!(first.account, "bob@example.org");
    assert_eq!(first.mailbox, "INBOX");
    assert_eq!(first.subject.as_deref(), Some("café one"));
    assert_eq!(first.from.as_deref(), Some("Alice <alice@example.org>"));
    assert_eq!(first.to.as_deref(), Some("Bob <bob@example.org>"));
    assert_eq!(first.cc.as_deref(), Some("Carol <carol@example.net>"));
    assert!(
        first
            .message_id
            .as_deref()
            .is_some_and(|id| id.starts_with('<') && id.ends_with("-one@example.org>"))
    );
    assert_eq!(first.sent_date, Some((1_772_442_000, 60)));
    assert!(first.size > 0);
    assert_eq!(list[1].uid, 2);

    let one = store
        .message_entry(inbox.id, 2)
        .await
        .expect("query")
        .expect("uid 2");
    assert_eq!(one.subject.as_deref(), Some("two"));
    assert!(
        store
            .message_entry(inbox.id, 3)
            .await
            .expect("query")
            .is_none()
    );
    assert!(store.list_messages(9999).await.expect("query").is_empty());
}

#[tokio::test]
async fn find_messages_filters_across_accounts() {
    let (_dir, store) = open().await;
    let bob = with_user(&store, "bob@example.org").await;
    let eve = with_user(&store, "eve@example.com").await;
    store
        .add_alias("robert@example.org", "bob@example.org")
        .await
        .expect("alias");
    store
        .deliver(message("bob@example.org", "Invoice 42"), &[bob.id])
        .await
        .expect("deliver");
    store
        .deliver(message("robert@example.org", "Welcome"), &[bob.id])
        .await
        .expect("deliver");
    store
        .deliver(
            message("eve@example.com, bob@example.org", "Invoice 43"),
            &[eve.id, bob.id],
        )
        .await
        .expect("deliver");

    let all = store
        .find_messages(&MessageFilter::default())
        .await
        .expect("all");
    assert_eq!(all.len(), 4, "one entry per copy");
    // Newest first.
    assert!(all[0].subject.as_deref() == Some("Invoice 43"));

    let to_eve = store
        .find_messages(&MessageFilter {
            to: Some("EVE@example.com".into()),
            ..Default::default()
        })
        .await
        .expect("to eve");
    assert_eq!(to_eve.len(), 1, "only eve's copy");
    assert!(
        to_eve
            .iter()
            .all(|m| m.subject.as_deref() == Some("Invoice 43"))
    );

    // An alias matches through the To: field.
    let to_robert = store
        .find_messages(&MessageFilter {
            to: Some("robert@example.org".into()),
            ..Default::default()
        })
        .await
        .expect("to robert");
    assert_eq!(to_robert.len(), 1);
    assert_eq!(to_robert[0].account, "bob@example.org");

    let invoices_for_bob = store
        .find_messages(&MessageFilter {
            to: Some("bob@example.org".into()),
            subject: Some("INVOICE".into()),
            ..Default::default()
        })
        .await
        .expect("invoices");
    assert_eq!(
        invoices_for_bob.len(),
        2,
        "bob's copies only, not eve's copy naming bob in To:"
    );

    let limited = store
        .find_messages(&MessageFilter {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("limit");
    assert_eq!(limited.len(), 1);

    let eve_inbox = inbox(&store, &eve).await;
    let in_mailbox = store
        .find_messages(&MessageFilter {
            mailbox_id: Some(eve_inbox.id),
            ..Default::default()
        })
        .await
        .expect("mailbox");
    assert_eq!(in_mailbox.len(), 1);
    assert_eq!(in_mailbox[0].account, "eve@example.com");

    let none = store
        .find_messages(&MessageFilter {
            subject: Some("no such subject".into()),
            ..Default::default()
        })
        .await
        .expect("none");
    assert!(none.is_empty());
}

#[tokio::test]
async fn delete_message_is_an_expunge() {
    let (_dir, store) = open().await;
    let bob = with_user(&store, "bob@example.org").await;
    store
        .deliver(message("bob@example.org", "one"), &[bob.id])
        .await
        .expect("deliver");
    store
        .deliver(message("bob@example.org", "two"), &[bob.id])
        .await
        .expect("deliver");
    let before = inbox(&store, &bob).await;
    let mut feed = store.subscribe();

    store.delete_message(before.id, 1).await.expect("delete");
    let after = inbox(&store, &bob).await;
    assert!(after.highest_modseq > before.highest_modseq);
    let changes = store
        .changes_since(before.id, before.highest_modseq)
        .await
        .expect("changes");
    assert_eq!(changes.expunged, vec![1]);
    assert_eq!(
        feed.recv().await.expect("event"),
        Change::Mailbox {
            account_id: bob.id,
            mailbox_id: before.id,
            modseq: after.highest_modseq
        }
    );
    let left: Vec<u32> = store
        .list_messages(before.id)
        .await
        .expect("list")
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, vec![2]);

    assert!(matches!(
        store.delete_message(before.id, 1).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_message(9999, 1).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn purge_messages_empties_every_mailbox_and_frees_contents() {
    let (_dir, store) = open().await;
    let bob = with_user(&store, "bob@example.org").await;
    let eve = with_user(&store, "eve@example.com").await;
    store
        .deliver(message("bob@example.org", "one"), &[bob.id, eve.id])
        .await
        .expect("deliver");
    store
        .deliver(message("eve@example.com", "two"), &[eve.id])
        .await
        .expect("deliver");
    let size = store.store_size().await.expect("size");
    assert_eq!(size.messages, 3);
    assert!(size.content_bytes > 0);
    assert!(size.database_bytes > 0);

    let bob_inbox = inbox(&store, &bob).await;
    let mut feed = store.subscribe();
    assert_eq!(store.purge_messages().await.expect("purge"), 3);
    let events = [
        feed.recv().await.expect("event"),
        feed.recv().await.expect("event"),
    ];
    assert!(events.iter().all(|e| matches!(e, Change::Mailbox { .. })));

    let changes = store
        .changes_since(bob_inbox.id, bob_inbox.highest_modseq)
        .await
        .expect("changes");
    assert_eq!(changes.expunged, vec![1]);
    let size = store.store_size().await.expect("size");
    assert_eq!(size.messages, 0);
    assert_eq!(
        size.content_bytes, 0,
        "the last copy takes the content with it"
    );
    assert!(
        store
            .find_messages(&MessageFilter::default())
            .await
            .expect("all")
            .is_empty()
    );
    // Accounts and mailboxes stay; UIDs keep growing.
    let (_, uid) = {
        let d = store
            .deliver(message("bob@example.org", "three"), &[bob.id])
            .await
            .expect("deliver");
        (d.copies[0].1, d.copies[0].2)
    };
    assert_eq!(uid, 2);
    assert_eq!(store.purge_messages().await.expect("purge"), 1);
    assert_eq!(store.purge_messages().await.expect("purge"), 0);
}
