//! Spam training requests: what users taught by moving messages into and out of
//! Junk, waiting for the learning worker (mailroom-delivery) to tell rspamd.
//!
//! A COPY or MOVE into a `\Junk` mailbox (RFC 6154) from one that is not asks to
//! learn the content as spam; one out of `\Junk` into a mailbox that is neither
//! `\Junk` nor `\Trash` asks to learn it as ham (deleting a spam message is no
//! verdict). The request row is written inside the COPY/MOVE's own transaction, so
//! the user's command waits for nothing but its commit, and a
//! [`Change::SpamTraining`] event wakes the worker after it.
//!
//! Requests are recorded only while a worker has announced itself
//! ([`Store::enable_spam_training`]), so a server without learning configured keeps
//! no queue; the queue holds at most [`MAX_PENDING`] rows.

use std::sync::atomic::Ordering;

use sqlx::{Row, SqliteConnection};

use crate::error::Result;
use crate::types::*;
use crate::{Store, now};

/// Most requests waiting at once; further moves are not recorded (a user sorting
/// a huge mailbox into Junk must not grow the store without bound).
pub const MAX_PENDING: i64 = 10_000;

/// What a request teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpamClass {
    Spam,
    Ham,
}

impl SpamClass {
    pub fn as_str(self) -> &'static str {
        match self {
            SpamClass::Spam => "spam",
            SpamClass::Ham => "ham",
        }
    }

    /// The lesson of copying from `source` into `target`, if any.
    pub fn of_copy(source: &Mailbox, target: &Mailbox) -> Option<SpamClass> {
        let junk = |m: &Mailbox| m.special_use.as_deref() == Some("\\Junk");
        let trash = |m: &Mailbox| m.special_use.as_deref() == Some("\\Trash");
        match (junk(source), junk(target)) {
            (false, true) => Some(SpamClass::Spam),
            (true, false) if !trash(target) => Some(SpamClass::Ham),
            _ => None,
        }
    }
}

/// One waiting request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingRequest {
    pub id: i64,
    pub account_id: AccountId,
    /// The account's address (rspamd's per-user statistics key, `Deliver-To`).
    pub address: String,
    pub content_id: ContentId,
    pub class: SpamClass,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// Records the lesson of a COPY/MOVE from `source` that gave `target` the
/// messages `copied` (their new UIDs) inside the caller's transaction, when
/// `enabled`; pushes the event to publish after its commit.
pub(crate) async fn record(
    enabled: bool,
    conn: &mut SqliteConnection,
    source: &Mailbox,
    target: &Mailbox,
    copied: &[u32],
    events: &mut Vec<Change>,
) -> Result<()> {
    if !enabled || copied.is_empty() {
        return Ok(());
    }
    let Some(class) = SpamClass::of_copy(source, target) else {
        return Ok(());
    };
    let mut contents: Vec<ContentId> = Vec::with_capacity(copied.len());
    for range in crate::message::uid_ranges(copied) {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT content_id FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ?",
        )
        .bind(target.id)
        .bind(*range.start() as i64)
        .bind(*range.end() as i64)
        .fetch_all(&mut *conn)
        .await?;
        contents.extend(ids);
    }
    contents.sort_unstable();
    contents.dedup();
    let created = now();
    let mut recorded = 0;
    for &content_id in &contents {
        // Bounded: the count is read through the index, and the row is left out
        // when the queue is full. A newer lesson about the same content replaces an
        // older one (moved into Junk and back out again: ham).
        sqlx::query("DELETE FROM spam_training WHERE account_id = ? AND content_id = ?")
            .bind(target.account_id)
            .bind(content_id)
            .execute(&mut *conn)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO spam_training (account_id, content_id, class, created_at, next_attempt)
             SELECT ?1, ?2, ?3, ?4, 0 WHERE (SELECT count(*) FROM spam_training) < ?5",
        )
        .bind(target.account_id)
        .bind(content_id)
        .bind(class.as_str())
        .bind(created)
        .bind(MAX_PENDING)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        recorded += inserted;
    }
    if recorded < contents.len() as u64 {
        tracing::warn!(
            account = target.account_id,
            skipped = contents.len() as u64 - recorded,
            "the spam training queue is full; some moves are not learned"
        );
    }
    if recorded > 0 {
        events.push(Change::SpamTraining {
            account_id: target.account_id,
        });
    }
    Ok(())
}

impl Store {
    /// Whether COPY and MOVE record training requests now.
    pub(crate) fn spam_training_enabled(&self) -> bool {
        self.spam_training.load(Ordering::Relaxed)
    }

    /// Called by the learning worker when it starts: from now on, COPY and MOVE
    /// into or out of Junk record training requests.
    pub fn enable_spam_training(&self) {
        self.spam_training.store(true, Ordering::Relaxed);
    }

    /// Up to `limit` requests whose next attempt is due, oldest first.
    pub async fn spam_training_due(&self, limit: u32) -> Result<Vec<TrainingRequest>> {
        let rows = sqlx::query(
            "SELECT t.id, t.account_id, a.address, t.content_id, t.class, t.attempts
             FROM spam_training t JOIN accounts a ON a.id = t.account_id
             WHERE t.next_attempt <= ? ORDER BY t.next_attempt, t.id LIMIT ?",
        )
        .bind(now())
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|row| TrainingRequest {
                id: row.get("id"),
                account_id: row.get("account_id"),
                address: row.get("address"),
                content_id: row.get("content_id"),
                class: if row.get::<&str, _>("class") == "spam" {
                    SpamClass::Spam
                } else {
                    SpamClass::Ham
                },
                attempts: row.get::<i64, _>("attempts").max(0) as u32,
            })
            .collect())
    }

    /// Unix seconds of the earliest waiting request's next attempt, if any waits.
    pub async fn spam_training_next_attempt(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT min(next_attempt) FROM spam_training")
                .fetch_one(&self.read)
                .await?,
        )
    }

    /// Number of waiting requests.
    pub async fn spam_training_pending(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM spam_training")
            .fetch_one(&self.read)
            .await?)
    }

    /// Removes a request: learned, or given up.
    pub async fn spam_training_done(&self, id: i64) -> Result<()> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM spam_training WHERE id = ?")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    Ok(((), vec![]))
                })
            })
            .await
    }

    /// Counts a failed attempt and puts the next one `delay_secs` from now.
    pub async fn spam_training_retry(&self, id: i64, delay_secs: i64) -> Result<()> {
        let at = now() + delay_secs.max(1);
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE spam_training SET attempts = attempts + 1, next_attempt = ? WHERE id = ?",
                    )
                    .bind(at)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                    Ok(((), vec![]))
                })
            })
            .await
    }
}
