//! Operations for administrators and test suites (the HTTP admin and test API):
//! messages listed with their envelope fields, within one mailbox or across every
//! account; one message deleted; every message purged; the size of the store.
//!
//! Deleting here is an expunge as IMAP sees it: each deleted message is logged in
//! the expunge log with a new MODSEQ of its mailbox, and a [`Change::Mailbox`] is
//! published, so selected sessions report EXPUNGE and QRESYNC stays correct.

use sqlx::{Row, SqliteConnection};

use crate::Store;
use crate::error::{Entity, Result, StoreError};
use crate::types::*;

/// One message as an administrator sees it: where it is, its stored attributes and
/// the header fields people look for. Header values are decoded (RFC 2047) and
/// trimmed; a missing field is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEntry {
    pub account_id: AccountId,
    /// The address of the account holding this copy.
    pub account: String,
    pub mailbox_id: MailboxId,
    pub mailbox: String,
    pub uid: u32,
    pub modseq: u64,
    pub flags: Flags,
    /// RFC822.SIZE
    pub size: u64,
    /// INTERNALDATE as Unix seconds and the zone offset it was given in, in minutes.
    pub internal_date: i64,
    pub internal_offset: i32,
    pub content_id: ContentId,
    /// Date: header as Unix seconds and zone offset, when it parses.
    pub sent_date: Option<(i64, i32)>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
}

/// Which messages [`Store::find_messages`] returns. Empty filters match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// Only this mailbox.
    pub mailbox_id: Option<MailboxId>,
    /// The recipient. When it is an account's address (case-insensitive), that
    /// account's copies; otherwise copies whose To: or Cc: field contains it,
    /// case-insensitively (so aliases, `+tag` addresses and names match).
    pub to: Option<String>,
    /// The Subject: field contains this, case-insensitively.
    pub subject: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<u32>,
}

/// How big the store is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSize {
    /// Size of the main database file (page count x page size); the WAL is extra.
    pub database_bytes: u64,
    /// Sum of the sizes of the distinct message contents (each stored once).
    pub content_bytes: u64,
    /// Message entries across all mailboxes (a message in two mailboxes counts twice).
    pub messages: u64,
}

/// Columns of a [`MessageEntry`]; the query must join `messages m`, `mailboxes mb`,
/// `accounts a` and `contents c`.
const ENTRY_COLUMNS: &str = "a.id AS account_id, a.address AS account, mb.id AS mailbox_id, mb.name AS mailbox,
    m.uid, m.modseq, m.flags, m.keywords, m.size, m.internal_date, m.internal_offset, m.content_id,
    c.sent_date, c.sent_offset,
    (SELECT value FROM content_headers h WHERE h.content_id = m.content_id AND h.name = 'from' ORDER BY position LIMIT 1) AS h_from,
    (SELECT value FROM content_headers h WHERE h.content_id = m.content_id AND h.name = 'to' ORDER BY position LIMIT 1) AS h_to,
    (SELECT value FROM content_headers h WHERE h.content_id = m.content_id AND h.name = 'cc' ORDER BY position LIMIT 1) AS h_cc,
    (SELECT value FROM content_headers h WHERE h.content_id = m.content_id AND h.name = 'subject' ORDER BY position LIMIT 1) AS h_subject,
    (SELECT value FROM content_headers h WHERE h.content_id = m.content_id AND h.name = 'message-id' ORDER BY position LIMIT 1) AS h_message_id";

const ENTRY_FROM: &str = "messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
    JOIN accounts a ON a.id = mb.account_id JOIN contents c ON c.id = m.content_id";

fn header(row: &sqlx::sqlite::SqliteRow, column: &str) -> Option<String> {
    row.get::<Option<String>, _>(column)
        .map(|v| v.trim().to_string())
}

fn entry_from_row(row: &sqlx::sqlite::SqliteRow) -> MessageEntry {
    MessageEntry {
        account_id: row.get("account_id"),
        account: row.get("account"),
        mailbox_id: row.get("mailbox_id"),
        mailbox: row.get("mailbox"),
        uid: row.get::<i64, _>("uid") as u32,
        modseq: row.get::<i64, _>("modseq") as u64,
        flags: Flags::from_columns(row.get("flags"), row.get::<&str, _>("keywords")),
        size: row.get::<i64, _>("size") as u64,
        internal_date: row.get("internal_date"),
        internal_offset: row.get::<i64, _>("internal_offset") as i32,
        content_id: row.get("content_id"),
        sent_date: row.get::<Option<i64>, _>("sent_date").map(|d| {
            (
                d,
                row.get::<Option<i64>, _>("sent_offset").unwrap_or(0) as i32,
            )
        }),
        from: header(row, "h_from"),
        to: header(row, "h_to"),
        cc: header(row, "h_cc"),
        subject: header(row, "h_subject"),
        message_id: header(row, "h_message_id"),
    }
}

/// Deletes every message of one mailbox, logging the UIDs as expunged under one new
/// MODSEQ. Returns (messages deleted, that MODSEQ); nothing changes when it is empty.
async fn purge_mailbox(conn: &mut SqliteConnection, mailbox_id: MailboxId) -> Result<(u64, u64)> {
    let modseq: i64 = sqlx::query_scalar(
        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq",
    )
    .bind(mailbox_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) SELECT mailbox_id, uid, ? FROM messages WHERE mailbox_id = ?",
    )
    .bind(modseq)
    .bind(mailbox_id)
    .execute(&mut *conn)
    .await?;
    let deleted = sqlx::query("DELETE FROM messages WHERE mailbox_id = ?")
        .bind(mailbox_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok((deleted, modseq as u64))
}

impl Store {
    /// Messages matching `filter`, newest first (by INTERNALDATE, then by arrival).
    pub async fn find_messages(&self, filter: &MessageFilter) -> Result<Vec<MessageEntry>> {
        // Only fixed fragments are pasted into the statement; values are bound.
        let mut conditions: Vec<&str> = vec!["1"];
        if filter.mailbox_id.is_some() {
            conditions.push("m.mailbox_id = ?");
        }
        if filter.to.is_some() {
            conditions.push(
                "(a.address = ? COLLATE NOCASE
                  OR (NOT EXISTS (SELECT 1 FROM accounts WHERE address = ? COLLATE NOCASE)
                      AND EXISTS (SELECT 1 FROM content_headers h
                          WHERE h.content_id = m.content_id AND h.name IN ('to', 'cc') AND instr(coalesce(h.value_folded, lower(h.value)), ?) > 0)))",
            );
        }
        if filter.subject.is_some() {
            conditions.push(
                "EXISTS (SELECT 1 FROM content_headers h
                   WHERE h.content_id = m.content_id AND h.name = 'subject' AND instr(coalesce(h.value_folded, lower(h.value)), ?) > 0)",
            );
        }
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM {ENTRY_FROM} WHERE {}
             ORDER BY m.internal_date DESC, m.content_id DESC, a.address, mb.name, m.uid DESC LIMIT ?",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(mailbox_id) = filter.mailbox_id {
            query = query.bind(mailbox_id);
        }
        if let Some(to) = &filter.to {
            let to = to.trim();
            query = query.bind(to).bind(to).bind(to.to_lowercase());
        }
        if let Some(subject) = &filter.subject {
            query = query.bind(subject.to_lowercase());
        }
        let limit = filter.limit.map(i64::from).unwrap_or(-1);
        let rows = query.bind(limit).fetch_all(&self.read).await?;
        Ok(rows.iter().map(entry_from_row).collect())
    }

    /// Every message of a mailbox with its envelope fields, ascending by UID.
    pub async fn list_messages(&self, mailbox_id: MailboxId) -> Result<Vec<MessageEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM {ENTRY_FROM} WHERE m.mailbox_id = ? ORDER BY m.uid"
        )))
        .bind(mailbox_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(entry_from_row).collect())
    }

    /// One message of a mailbox by UID.
    pub async fn message_entry(
        &self,
        mailbox_id: MailboxId,
        uid: u32,
    ) -> Result<Option<MessageEntry>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM {ENTRY_FROM} WHERE m.mailbox_id = ? AND m.uid = ?"
        )))
        .bind(mailbox_id)
        .bind(uid as i64)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(entry_from_row))
    }

    /// Deletes one message at once, whatever its flags (an administrator's expunge).
    /// `NotFound` when the mailbox has no such UID.
    pub async fn delete_message(&self, mailbox_id: MailboxId, uid: u32) -> Result<()> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let account_id: i64 =
                        sqlx::query_scalar("SELECT account_id FROM mailboxes WHERE id = ?")
                            .bind(mailbox_id)
                            .fetch_optional(&mut *conn)
                            .await?
                            .ok_or_else(|| StoreError::not_found(Entity::Mailbox, mailbox_id.to_string()))?;
                    let exists: Option<i64> =
                        sqlx::query_scalar("SELECT uid FROM messages WHERE mailbox_id = ? AND uid = ?")
                            .bind(mailbox_id)
                            .bind(uid as i64)
                            .fetch_optional(&mut *conn)
                            .await?;
                    if exists.is_none() {
                        return Err(StoreError::not_found(Entity::Message, format!("UID {uid}")));
                    }
                    let modseq: i64 = sqlx::query_scalar(
                        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq",
                    )
                    .bind(mailbox_id)
                    .fetch_one(&mut *conn)
                    .await?;
                    sqlx::query("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?")
                        .bind(mailbox_id)
                        .bind(uid as i64)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)")
                        .bind(mailbox_id)
                        .bind(uid as i64)
                        .bind(modseq)
                        .execute(&mut *conn)
                        .await?;
                    Ok((
                        (),
                        vec![Change::Mailbox {
                            account_id,
                            mailbox_id,
                            modseq: modseq as u64,
                        }],
                    ))
                })
            })
            .await
    }

    /// Deletes every message of every mailbox of every account (the test API's
    /// "start from empty"); accounts and mailboxes stay. Returns how many message
    /// entries were deleted.
    pub async fn purge_messages(&self) -> Result<u64> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mailboxes: Vec<(i64, i64)> = sqlx::query_as(
                        "SELECT id, account_id FROM mailboxes WHERE id IN (SELECT DISTINCT mailbox_id FROM messages) ORDER BY id",
                    )
                    .fetch_all(&mut *conn)
                    .await?;
                    let mut total = 0;
                    let mut events = Vec::with_capacity(mailboxes.len());
                    for (mailbox_id, account_id) in mailboxes {
                        let (deleted, modseq) = purge_mailbox(conn, mailbox_id).await?;
                        total += deleted;
                        events.push(Change::Mailbox {
                            account_id,
                            mailbox_id,
                            modseq,
                        });
                    }
                    Ok((total, events))
                })
            })
            .await
    }

    /// The size of the store, for metrics and the admin API.
    pub async fn store_size(&self) -> Result<StoreSize> {
        let page_count: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&self.read)
            .await?;
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&self.read)
            .await?;
        let (content_bytes, messages): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(sum(size), 0) FROM contents), (SELECT count(*) FROM messages)",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(StoreSize {
            database_bytes: (page_count.max(0) * page_size.max(0)) as u64,
            content_bytes: content_bytes.max(0) as u64,
            messages: messages.max(0) as u64,
        })
    }
}
