#![allow(clippy::unwrap_used)]
//! Migration 0007 (smaller full-text index and header rows) on a store written by
//! the schema of migration 0006: every message stays searchable, by body (indexed
//! and still pending) and by header, and expunging still frees the content.

use std::path::Path;

use mailroom_store::admin::MessageFilter;
use mailroom_store::*;
use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");

/// A store at schema 0006 holding three messages in alice's INBOX: UID 1 (flagged
/// \Deleted) and 2 with their text in the FTS index, UID 3 with its text still
/// pending. Written with plain SQL, as the code of that version stored them.
async fn store_at_0006(dir: &Path) {
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.join("mailroom.sqlite3"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .connect()
        .await
        .unwrap();
    let migrator = Migrator::new(Path::new(MIGRATIONS)).await.unwrap();
    migrator.run_to(6, &mut conn).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, 6);

    let setup = "
        INSERT INTO domains (id, name, created_at) VALUES (1, 'example.org', 0);
        INSERT INTO accounts (id, domain_id, address, password_hash, created_at)
            VALUES (1, 1, 'alice@example.org', 'x', 0);
        INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq, created_at)
            VALUES (1, 1, 'INBOX', 7, 4, 4, 0);
    ";
    sqlx::raw_sql(setup).execute(&mut conn).await.unwrap();
    let messages = [
        (
            1,
            8,
            "hello wörld, this is zyzzogeton speaking",
            vec![
                ("from", "Alice <Alice@Example.org>"),
                ("subject", "ÜBER Café"),
            ],
        ),
        (
            2,
            0,
            "another text about nothing",
            vec![("from", "Bob <bob@example.org>"), ("subject", "Plain")],
        ),
        (
            3,
            0,
            "pending text with zyzzogeton",
            vec![("from", "Carol <carol@example.net>"), ("subject", "Late")],
        ),
    ];
    for (id, flags, text, headers) in &messages {
        let raw = format!("Subject: {id}\r\n\r\n{text}\r\n");
        sqlx::query(
            "INSERT INTO contents (id, sha256, size, raw, envelope, body_structure, body, created_at)
             VALUES (?, ?, ?, ?, 'NIL', 'NIL', 'NIL', 0)",
        )
        .bind(id)
        .bind(vec![*id as u8; 32])
        .bind(raw.len() as i64)
        .bind(raw.as_bytes())
        .execute(&mut conn)
        .await
        .unwrap();
        for (position, (name, value)) in headers.iter().enumerate() {
            sqlx::query(
                "INSERT INTO content_headers (content_id, position, name, value, value_folded)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(position as i64)
            .bind(name)
            .bind(value)
            .bind(value.to_lowercase())
            .execute(&mut conn)
            .await
            .unwrap();
        }
        let table = if *id == 3 {
            "INSERT INTO content_text_pending (content_id, body) VALUES (?, ?)"
        } else {
            "INSERT INTO content_text (rowid, body) VALUES (?, ?)"
        };
        sqlx::query(sqlx::AssertSqlSafe(table))
            .bind(id)
            .bind(text.to_lowercase())
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO messages (mailbox_id, uid, content_id, modseq, flags, internal_date, size)
             VALUES (1, ?, ?, ?, ?, 0, ?)",
        )
        .bind(id)
        .bind(id)
        .bind(id + 1)
        .bind(flags)
        .bind(raw.len() as i64)
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_0006_store_survives_migration_0007() {
    let dir = tempfile::tempdir().unwrap();
    store_at_0006(dir.path()).await;

    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    store.integrity_check().await.unwrap();
    let inbox = store.mailbox(1, "INBOX").await.unwrap().unwrap();
    assert_eq!(inbox.uid_validity, 7);
    assert_eq!(store.message_index(inbox.id).await.unwrap().len(), 3);

    // Body: indexed and pending texts, long and short needles, any case.
    assert_eq!(
        store.search_body(inbox.id, "ZyzzoGeton").await.unwrap(),
        vec![1, 3]
    );
    assert_eq!(store.search_body(inbox.id, "WÖRLD").await.unwrap(), vec![1]);
    assert_eq!(store.search_body(inbox.id, "ab").await.unwrap(), vec![2]);
    assert_eq!(
        store.search_body(inbox.id, "text").await.unwrap(),
        vec![2, 3]
    );
    assert!(
        store
            .search_body(inbox.id, "absent")
            .await
            .unwrap()
            .is_empty()
    );

    // Headers: non-ASCII capitals keep their folded copy, the rest fold in SQL.
    assert_eq!(
        store
            .search_header(inbox.id, Some("subject"), "über")
            .await
            .unwrap(),
        vec![1]
    );
    assert_eq!(
        store
            .search_header(inbox.id, Some("Subject"), "CAFÉ")
            .await
            .unwrap(),
        vec![1]
    );
    assert_eq!(
        store
            .search_header(inbox.id, Some("from"), "EXAMPLE.ORG")
            .await
            .unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        store.search_header(inbox.id, None, "late").await.unwrap(),
        vec![3]
    );
    // LIKE's wildcards in a needle are plain characters; a needle too long for a
    // LIKE pattern takes the other path and still answers.
    assert!(
        store
            .search_header(inbox.id, Some("from"), "a_i")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search_header(inbox.id, None, "%")
            .await
            .unwrap()
            .is_empty()
    );
    let long = "x".repeat(10_000);
    assert!(
        store
            .search_header(inbox.id, Some("from"), &long)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search_header(inbox.id, None, &long)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .search_header(inbox.id, Some("subject"), "")
            .await
            .unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(store.search_text(inbox.id, "plain").await.unwrap(), vec![2]);
    let found = store
        .find_messages(&MessageFilter {
            subject: Some("über".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].subject.as_deref(), Some("ÜBER Café"));

    // The copies of ASCII-only values are gone; the one that needs it is kept.
    let mut conn = SqliteConnectOptions::new()
        .filename(store.path())
        .read_only(true)
        .connect()
        .await
        .unwrap();
    let folded: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT value, value_folded FROM content_headers ORDER BY content_id, position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let kept: Vec<&str> = folded.iter().filter_map(|(_, f)| f.as_deref()).collect();
    assert_eq!(kept, vec!["über café"]);
    drop(conn);

    // Expunging the last copy still takes its text out of the index.
    assert_eq!(store.expunge(inbox.id, None).await.unwrap(), vec![1]);
    assert_eq!(
        store.search_body(inbox.id, "zyzzogeton").await.unwrap(),
        vec![3]
    );
    assert!(
        store
            .search_body(inbox.id, "hello")
            .await
            .unwrap()
            .is_empty()
    );

    // New mail after the migration is stored and found the same way.
    let raw = b"From: Dora <dora@example.org>\r\nSubject: =?utf-8?q?=C3=84rger?=\r\n\r\nNew zyzzogeton mail\r\n".to_vec();
    store.deliver(raw, &[1]).await.unwrap();
    assert_eq!(
        store.search_body(inbox.id, "zyzzogeton").await.unwrap(),
        vec![3, 4]
    );
    assert_eq!(
        store
            .search_header(inbox.id, Some("subject"), "ärger")
            .await
            .unwrap(),
        vec![4]
    );

    // Reopening runs nothing twice. (The integrity check runs on fresh reader
    // connections: one that read the FTS5 table before the writer changed it can
    // report a checksum mismatch that is not in the file, with or without 0007.)
    drop(store);
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    store.integrity_check().await.unwrap();
    assert_eq!(
        store.search_body(inbox.id, "zyzzogeton").await.unwrap(),
        vec![3, 4]
    );
}
