//! The outbound queue: submitted mail for other domains waiting for the relay worker.
//!
//! [`Store::submit`] is the submission listener's one write: local recipients get
//! their copies and remote recipients a queue entry in the SAME transaction, and it
//! returns only after the commit, so the 250 covers both or neither.
//!
//! The worker side: [`Store::queue_claim`] takes due messages (leasing them, so two
//! workers never send the same message and a crashed worker's lease runs out),
//! [`Store::queue_record_attempt`] records what one attempt did per recipient:
//! delivered and permanently failed recipients leave the queue (the message with its
//! last recipient), deferred ones wait for the next attempt.
//!
//! The operator side (`mailroom queue ...`, `/api/v1/queue`): [`Store::queue_list`],
//! [`Store::queue_get`], [`Store::queue_raw`], [`Store::queue_retry`],
//! [`Store::queue_delete`], [`Store::queue_size`].

use sqlx::{Row, SqliteConnection};

use crate::error::{Entity, Result, StoreError};
use crate::types::*;
use crate::{Store, now};

/// One queued message as the operator sees it (without its bytes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueEntry {
    pub id: i64,
    /// The envelope sender; empty for the null sender `<>`.
    pub sender: String,
    /// Recipients not yet delivered, with the last answer each got.
    pub recipients: Vec<QueuedRecipient>,
    pub size: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the next attempt.
    pub next_attempt: i64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// A recipient still waiting in the queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueuedRecipient {
    pub address: String,
    /// The last reply or error for this recipient, if an attempt was made.
    pub last_response: Option<String>,
}

/// A message claimed by a worker: the entry and the bytes to send.
#[derive(Debug, Clone)]
pub struct QueueJob {
    pub entry: QueueEntry,
    pub raw: Vec<u8>,
}

/// What one delivery attempt did, per recipient.
#[derive(Debug, Clone, Default)]
pub struct QueueAttempt {
    /// Accepted by the next hop: they leave the queue.
    pub delivered: Vec<String>,
    /// Refused for good (5xx, or expired): they leave the queue; the worker bounces them.
    pub failed: Vec<(String, String)>,
    /// Temporary failure: (recipient, response); they stay for the next attempt.
    pub deferred: Vec<(String, String)>,
    /// Unix seconds of the next attempt, for the deferred recipients.
    pub next_attempt: i64,
}

/// The outcome of [`Store::submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The local copies, when there were local recipients.
    pub delivered: Option<Delivered>,
    /// The queue entry, when there were remote recipients.
    pub queue_id: Option<i64>,
}

impl Store {
    /// Accepts a submitted message: one copy per distinct local account (in its
    /// INBOX, as [`Store::deliver`] does) and one queue entry for all `remote`
    /// recipients, in ONE transaction; returns only after the commit. `sender` is
    /// the envelope sender (empty for `<>`). Fails with [`StoreError::OverQuota`]
    /// like `deliver` when a local account is full (then nothing is queued either).
    pub async fn submit(
        &self,
        raw: Vec<u8>,
        local: &[AccountId],
        remote: &[String],
        sender: &str,
    ) -> Result<Submitted> {
        let mut accounts = local.to_vec();
        accounts.sort_unstable();
        accounts.dedup();
        let mut remote: Vec<String> = remote.to_vec();
        remote.sort_by_key(|a| a.to_ascii_lowercase());
        remote.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        if accounts.is_empty() && remote.is_empty() {
            return Err(StoreError::invalid("submission", "no recipients"));
        }
        let sender = sender.to_string();
        let prepared = if accounts.is_empty() {
            None
        } else {
            Some(crate::message::prepare(raw.clone()).await?)
        };
        let received = now();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mut events = Vec::new();
                    let delivered = match prepared {
                        Some(p) => Some(
                            crate::message::deliver_to_inboxes(
                                conn,
                                &p,
                                &accounts,
                                received,
                                &mut events,
                            )
                            .await?,
                        ),
                        None => None,
                    };
                    let queue_id = if remote.is_empty() {
                        None
                    } else {
                        Some(insert_queued(conn, &sender, &raw, &remote, received).await?)
                    };
                    Ok((
                        Submitted {
                            delivered,
                            queue_id,
                        },
                        events,
                    ))
                })
            })
            .await
    }

    /// Queues a message for `recipients` (all remote) from `sender`, due now; returns
    /// its queue id. Used for bounces to remote senders.
    pub async fn enqueue(&self, raw: Vec<u8>, sender: &str, recipients: &[String]) -> Result<i64> {
        if recipients.is_empty() {
            return Err(StoreError::invalid("queue entry", "no recipients"));
        }
        let sender = sender.to_string();
        let recipients = recipients.to_vec();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let id = insert_queued(conn, &sender, &raw, &recipients, now()).await?;
                    Ok((id, vec![]))
                })
            })
            .await
    }

    /// Every queued message, oldest first, without their bytes.
    pub async fn queue_list(&self) -> Result<Vec<QueueEntry>> {
        let rows = sqlx::query(
            "SELECT id, sender, size, created_at, next_attempt, attempts, last_error FROM queue ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let recipients = self.queued_recipients(row.get("id")).await?;
            out.push(entry_from_row(&row, recipients));
        }
        Ok(out)
    }

    /// One queued message, or None when it is not (or no longer) queued.
    pub async fn queue_get(&self, id: i64) -> Result<Option<QueueEntry>> {
        let row = sqlx::query(
            "SELECT id, sender, size, created_at, next_attempt, attempts, last_error FROM queue WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(row) => {
                let recipients = self.queued_recipients(id).await?;
                Ok(Some(entry_from_row(&row, recipients)))
            }
            None => Ok(None),
        }
    }

    /// The bytes of a queued message (as they will be sent).
    pub async fn queue_raw(&self, id: i64) -> Result<Vec<u8>> {
        sqlx::query_scalar("SELECT raw FROM queue WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::not_found(Entity::QueuedMessage, id.to_string()))
    }

    /// Makes a queued message due now (the worker picks it up at its next poll).
    pub async fn queue_retry(&self, id: i64) -> Result<()> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE queue SET next_attempt = ?, claimed_until = 0 WHERE id = ?",
                    )
                    .bind(now())
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found(Entity::QueuedMessage, id.to_string()));
                    }
                    Ok(((), vec![]))
                })
            })
            .await
    }

    /// Removes a queued message without delivering it (and without a bounce).
    pub async fn queue_delete(&self, id: i64) -> Result<()> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM queue WHERE id = ?")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found(Entity::QueuedMessage, id.to_string()));
                    }
                    Ok(((), vec![]))
                })
            })
            .await
    }

    /// Number of queued messages (the `mailroom_queue_messages` gauge).
    pub async fn queue_size(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM queue")
            .fetch_one(&self.read)
            .await?;
        Ok(n as u64)
    }

    /// Worker side: claims up to `limit` messages due at `now` and not held by
    /// another worker, holding them for `lease_secs` (a worker that dies leaves them
    /// to be claimed again after that). Each attempt must end with
    /// [`Store::queue_record_attempt`].
    pub async fn queue_claim(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> Result<Vec<QueueJob>> {
        let claimed: Vec<i64> = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let ids: Vec<i64> = sqlx::query_scalar(
                        "UPDATE queue SET claimed_until = ?1 + ?2
                         WHERE id IN (SELECT id FROM queue WHERE next_attempt <= ?1 AND claimed_until <= ?1
                                      ORDER BY next_attempt LIMIT ?3)
                         RETURNING id",
                    )
                    .bind(now)
                    .bind(lease_secs)
                    .bind(limit as i64)
                    .fetch_all(&mut *conn)
                    .await?;
                    Ok((ids, vec![]))
                })
            })
            .await?;
        let mut jobs = Vec::with_capacity(claimed.len());
        for id in claimed {
            if let Some(entry) = self.queue_get(id).await? {
                let raw = self.queue_raw(id).await?;
                jobs.push(QueueJob { entry, raw });
            }
        }
        Ok(jobs)
    }

    /// Worker side: records one attempt on a claimed message and releases the claim.
    /// Returns true when the message left the queue (no recipient is left).
    pub async fn queue_record_attempt(&self, id: i64, attempt: QueueAttempt) -> Result<bool> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    for address in attempt
                        .delivered
                        .iter()
                        .chain(attempt.failed.iter().map(|(a, _)| a))
                    {
                        sqlx::query(
                            "DELETE FROM queue_recipients WHERE queue_id = ? AND address = ?",
                        )
                        .bind(id)
                        .bind(address)
                        .execute(&mut *conn)
                        .await?;
                    }
                    for (address, response) in &attempt.deferred {
                        sqlx::query("UPDATE queue_recipients SET last_response = ? WHERE queue_id = ? AND address = ?")
                            .bind(response)
                            .bind(id)
                            .bind(address)
                            .execute(&mut *conn)
                            .await?;
                    }
                    let left: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM queue_recipients WHERE queue_id = ?",
                    )
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await?;
                    if left == 0 {
                        sqlx::query("DELETE FROM queue WHERE id = ?")
                            .bind(id)
                            .execute(&mut *conn)
                            .await?;
                        return Ok((true, vec![]));
                    }
                    let error = attempt
                        .deferred
                        .first()
                        .map(|(_, r)| r.clone())
                        .or_else(|| attempt.failed.first().map(|(_, r)| r.clone()));
                    sqlx::query(
                        "UPDATE queue SET attempts = attempts + 1, next_attempt = ?, last_error = coalesce(?, last_error), claimed_until = 0 WHERE id = ?",
                    )
                    .bind(attempt.next_attempt)
                    .bind(error)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                    Ok((false, vec![]))
                })
            })
            .await
    }

    async fn queued_recipients(&self, id: i64) -> Result<Vec<QueuedRecipient>> {
        let rows = sqlx::query(
            "SELECT address, last_response FROM queue_recipients WHERE queue_id = ? ORDER BY address",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| QueuedRecipient {
                address: r.get("address"),
                last_response: r.get("last_response"),
            })
            .collect())
    }
}

fn entry_from_row(row: &sqlx::sqlite::SqliteRow, recipients: Vec<QueuedRecipient>) -> QueueEntry {
    QueueEntry {
        id: row.get("id"),
        sender: row.get("sender"),
        recipients,
        size: row.get::<i64, _>("size") as u64,
        created_at: row.get("created_at"),
        next_attempt: row.get("next_attempt"),
        attempts: row.get::<i64, _>("attempts") as u32,
        last_error: row.get("last_error"),
    }
}

async fn insert_queued(
    conn: &mut SqliteConnection,
    sender: &str,
    raw: &[u8],
    recipients: &[String],
    at: i64,
) -> Result<i64> {
    let id = sqlx::query(
        "INSERT INTO queue (sender, raw, size, created_at, next_attempt) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(sender)
    .bind(raw)
    .bind(raw.len() as i64)
    .bind(at)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    for address in recipients {
        sqlx::query("INSERT OR IGNORE INTO queue_recipients (queue_id, address) VALUES (?, ?)")
            .bind(id)
            .bind(address)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}
