#![allow(clippy::unwrap_used)]
//! Spam training requests: COPY and MOVE into and out of Junk record them in the
//! same transaction, the change feed announces them, and the worker's calls take
//! them away.

use mailroom_store::*;
use tempfile::TempDir;

async fn open() -> (TempDir, Store, Account) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    store.add_domain("example.org").await.unwrap();
    let alice = store
        .create_account("alice@example.org", "secret")
        .await
        .unwrap();
    (dir, store, alice)
}

fn message(subject: &str) -> Vec<u8> {
    format!("From: x@example.net\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n").into_bytes()
}

async fn mailbox(store: &Store, alice: &Account, name: &str) -> Mailbox {
    store.mailbox(alice.id, name).await.unwrap().unwrap()
}

async fn pending(store: &Store) -> Vec<(ContentId, SpamClass)> {
    let mut all: Vec<_> = store
        .spam_training_due(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.content_id, r.class))
        .collect();
    all.sort_by_key(|r| r.0);
    all
}

#[tokio::test]
async fn nothing_is_recorded_without_a_learning_worker() {
    let (_dir, store, alice) = open().await;
    let inbox = mailbox(&store, &alice, "INBOX").await;
    let junk = mailbox(&store, &alice, "Junk").await;
    store.deliver(message("a"), &[alice.id]).await.unwrap();
    store
        .move_messages(inbox.id, vec![1..=1], junk.id)
        .await
        .unwrap();
    assert_eq!(store.spam_training_pending().await.unwrap(), 0);
}

#[tokio::test]
async fn moves_into_and_out_of_junk_teach_spam_and_ham() {
    let (_dir, store, alice) = open().await;
    store.enable_spam_training();
    let inbox = mailbox(&store, &alice, "INBOX").await;
    let junk = mailbox(&store, &alice, "Junk").await;
    let archive = mailbox(&store, &alice, "Archive").await;
    let trash = mailbox(&store, &alice, "Trash").await;
    let a = store.deliver(message("a"), &[alice.id]).await.unwrap();
    let b = store.deliver(message("b"), &[alice.id]).await.unwrap();
    let c = store.deliver(message("c"), &[alice.id]).await.unwrap();

    // INBOX -> Archive teaches nothing.
    store
        .copy_messages(inbox.id, vec![3..=3], archive.id)
        .await
        .unwrap();
    assert!(pending(&store).await.is_empty());

    // MOVE into Junk: spam, announced after the commit.
    let mut feed = store.subscribe();
    store
        .move_messages(inbox.id, vec![1..=2], junk.id)
        .await
        .unwrap();
    let mut announced = false;
    while let Ok(change) = feed.try_recv() {
        announced |= change
            == Change::SpamTraining {
                account_id: alice.id,
            };
    }
    assert!(announced, "the worker is woken by the change feed");
    assert_eq!(
        pending(&store).await,
        vec![
            (a.content_id, SpamClass::Spam),
            (b.content_id, SpamClass::Spam)
        ]
    );

    // Out of Junk into Trash is no verdict; out of Junk into INBOX is ham, and
    // replaces the earlier lesson about the same message.
    store
        .move_messages(junk.id, vec![1..=1], trash.id)
        .await
        .unwrap();
    store
        .copy_messages(junk.id, vec![2..=2], inbox.id)
        .await
        .unwrap();
    assert_eq!(
        pending(&store).await,
        vec![
            (a.content_id, SpamClass::Spam),
            (b.content_id, SpamClass::Ham)
        ]
    );
    // COPY (a client without MOVE) into Junk counts too.
    store
        .copy_messages(archive.id, vec![1..=1], junk.id)
        .await
        .unwrap();
    assert_eq!(pending(&store).await.len(), 3);
    assert!(
        pending(&store)
            .await
            .contains(&(c.content_id, SpamClass::Spam))
    );

    // The worker's calls: a retry hides the request until it is due again; done
    // removes it.
    let due = store.spam_training_due(100).await.unwrap();
    assert!(
        due.iter()
            .all(|r| r.address == "alice@example.org" && r.attempts == 0)
    );
    store.spam_training_retry(due[0].id, 3600).await.unwrap();
    assert_eq!(store.spam_training_due(100).await.unwrap().len(), 2);
    assert!(store.spam_training_next_attempt().await.unwrap().is_some());
    store.spam_training_done(due[1].id).await.unwrap();
    assert_eq!(store.spam_training_due(100).await.unwrap().len(), 1);
    assert_eq!(store.spam_training_pending().await.unwrap(), 2);
    store.integrity_check().await.unwrap();
}

#[tokio::test]
async fn a_request_goes_with_the_last_copy_of_its_message() {
    let (_dir, store, alice) = open().await;
    store.enable_spam_training();
    let inbox = mailbox(&store, &alice, "INBOX").await;
    let junk = mailbox(&store, &alice, "Junk").await;
    store.deliver(message("a"), &[alice.id]).await.unwrap();
    store
        .move_messages(inbox.id, vec![1..=1], junk.id)
        .await
        .unwrap();
    assert_eq!(store.spam_training_pending().await.unwrap(), 1);
    let deleted = Flags::from_names(["\\Deleted"]).unwrap();
    store
        .store_flags(junk.id, vec![1..=1], FlagOp::Add, deleted, None)
        .await
        .unwrap();
    store.expunge(junk.id, None).await.unwrap();
    assert_eq!(store.spam_training_pending().await.unwrap(), 0);
}

#[tokio::test]
async fn the_queue_is_bounded() {
    use sqlx::ConnectOptions;
    let (dir, store, alice) = open().await;
    store.enable_spam_training();
    let inbox = mailbox(&store, &alice, "INBOX").await;
    let junk = mailbox(&store, &alice, "Junk").await;
    store.deliver(message("first"), &[alice.id]).await.unwrap();
    store.deliver(message("second"), &[alice.id]).await.unwrap();
    store
        .move_messages(inbox.id, vec![1..=1], junk.id)
        .await
        .unwrap();
    // Fill the queue to its bound beside the store (as a long outage of rspamd
    // would), with copies of the first request.
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("mailroom.sqlite3"))
        .busy_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
         INSERT INTO spam_training (account_id, content_id, class, created_at)
         SELECT account_id, content_id, class, created_at FROM spam_training, n",
    )
    .bind(MAX_SPAM_TRAINING_PENDING - 1)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        store.spam_training_pending().await.unwrap(),
        MAX_SPAM_TRAINING_PENDING
    );
    // The move still succeeds; its lesson is not recorded.
    let moved = store
        .move_messages(inbox.id, vec![2..=2], junk.id)
        .await
        .unwrap();
    assert_eq!(moved.pairs.len(), 1);
    assert_eq!(
        store.spam_training_pending().await.unwrap(),
        MAX_SPAM_TRAINING_PENDING
    );
}
