//! The outbound queue: submit delivers locally and queues remote recipients in one
//! transaction; claims lease messages; attempts remove delivered and failed
//! recipients and reschedule the rest; the queue survives reopening the store.

use mailroom_store::*;
use tempfile::TempDir;

async fn open(dir: &TempDir) -> Store {
    Store::open(&StoreOptions::new(dir.path()))
        .await
        .expect("store opens")
}

const MSG: &[u8] = b"From: a@example.org\r\nTo: x@remote.example\r\nSubject: q\r\n\r\nhello\r\n";

#[tokio::test]
async fn submit_delivers_locally_and_queues_remote_in_one_go() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(&dir).await;
    store.add_domain("example.org").await.expect("domain");
    let a = store
        .create_account("a@example.org", "pw")
        .await
        .expect("a");
    let b = store
        .create_account("b@example.org", "pw")
        .await
        .expect("b");
    let remote = vec![
        "x@remote.example".to_string(),
        "X@remote.example".to_string(),
        "y@other.example".to_string(),
    ];
    let done = store
        .submit(MSG.to_vec(), &[b.id], &remote, "a@example.org")
        .await
        .expect("submit");
    assert_eq!(done.delivered.expect("local copy").copies.len(), 1);
    let id = done.queue_id.expect("queued");
    let inbox = store
        .mailbox(b.id, "INBOX")
        .await
        .expect("q")
        .expect("inbox");
    assert_eq!(store.list_messages(inbox.id).await.expect("list").len(), 1);
    assert_eq!(store.queue_size().await.expect("size"), 1);
    let entry = store.queue_get(id).await.expect("get").expect("entry");
    assert_eq!(entry.sender, "a@example.org");
    assert_eq!(entry.recipients.len(), 2, "duplicates folded: {entry:?}");
    assert_eq!(store.queue_raw(id).await.expect("raw"), MSG);

    // Over quota locally: nothing is queued either.
    store
        .set_quota("b@example.org", Some(1))
        .await
        .expect("quota");
    let err = store
        .submit(MSG.to_vec(), &[b.id], &remote, "a@example.org")
        .await
        .expect_err("over quota");
    assert!(matches!(err, StoreError::OverQuota), "{err}");
    assert_eq!(store.queue_size().await.expect("size"), 1);
    let _ = a;
}

#[tokio::test]
async fn claim_attempt_retry_delete_and_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(&dir).await;
    let rcpts = vec![
        "x@r.example".to_string(),
        "y@r.example".to_string(),
        "z@s.example".to_string(),
    ];
    let id = store
        .enqueue(MSG.to_vec(), "", &rcpts)
        .await
        .expect("enqueue");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let jobs = store.queue_claim(now, 60, 10).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].raw, MSG);
    // Claimed: a second worker gets nothing.
    assert!(
        store
            .queue_claim(now, 60, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let gone = store
        .queue_record_attempt(
            id,
            QueueAttempt {
                delivered: vec!["x@r.example".into()],
                failed: vec![("y@r.example".into(), "550 no".into())],
                deferred: vec![("z@s.example".into(), "451 later".into())],
                next_attempt: now + 100,
            },
        )
        .await
        .expect("record");
    assert!(!gone);
    let entry = store
        .queue_get(id)
        .await
        .expect("get")
        .expect("still queued");
    assert_eq!(entry.attempts, 1);
    assert_eq!(entry.next_attempt, now + 100);
    assert_eq!(entry.last_error.as_deref(), Some("451 later"));
    assert_eq!(entry.recipients.len(), 1);
    assert_eq!(
        entry.recipients[0].last_response.as_deref(),
        Some("451 later")
    );
    assert!(
        store
            .queue_claim(now, 60, 10)
            .await
            .expect("claim")
            .is_empty(),
        "not due"
    );

    // The queue is in the database: a reopened store has it.
    drop(store);
    let store = open(&dir).await;
    assert_eq!(store.queue_list().await.expect("list").len(), 1);
    store.queue_retry(id).await.expect("retry");
    let later = time::OffsetDateTime::now_utc().unix_timestamp();
    let jobs = store.queue_claim(later, 60, 10).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    let gone = store
        .queue_record_attempt(
            id,
            QueueAttempt {
                delivered: vec!["z@s.example".into()],
                ..QueueAttempt::default()
            },
        )
        .await
        .expect("record");
    assert!(gone);
    assert_eq!(store.queue_size().await.expect("size"), 0);
    assert!(matches!(
        store.queue_delete(id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.queue_retry(id).await,
        Err(StoreError::NotFound { .. })
    ));
    let id = store
        .enqueue(MSG.to_vec(), "a@b", &rcpts)
        .await
        .expect("enqueue");
    store.queue_delete(id).await.expect("delete");
    assert_eq!(store.queue_size().await.expect("size"), 0);
}
