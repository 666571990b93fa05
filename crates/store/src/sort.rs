//! What SORT and THREAD (RFC 5256) need of every message of a mailbox, in one
//! query: the dates, the size, the stored ENVELOPE (for the first From/To/Cc
//! address) and the decoded Subject, Message-ID, In-Reply-To and References.

use sqlx::Row;

use crate::Store;
use crate::error::Result;
use crate::types::MailboxId;

/// The sort and thread keys of one message, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortData {
    pub uid: u32,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// The Date: header, Unix seconds (UTC), if it parsed.
    pub sent_date: Option<i64>,
    /// RFC822.SIZE.
    pub size: u64,
    /// The IMAP ENVELOPE as FETCH sends it.
    pub envelope: String,
    /// The first Subject field, unfolded and RFC 2047-decoded.
    pub subject: Option<String>,
    /// The first Message-ID, In-Reply-To and References fields, unfolded.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
}

impl Store {
    /// The SORT/THREAD keys of every message in the mailbox, ascending by UID.
    pub async fn sort_data(&self, mailbox_id: MailboxId) -> Result<Vec<SortData>> {
        let rows = sqlx::query(
            "SELECT m.uid, m.internal_date, m.size, c.sent_date, c.envelope,
                (SELECT value FROM content_headers h WHERE h.content_id = m.content_id
                    AND h.name = 'subject' ORDER BY position LIMIT 1) AS subject,
                (SELECT value FROM content_headers h WHERE h.content_id = m.content_id
                    AND h.name = 'message-id' ORDER BY position LIMIT 1) AS message_id,
                (SELECT value FROM content_headers h WHERE h.content_id = m.content_id
                    AND h.name = 'in-reply-to' ORDER BY position LIMIT 1) AS in_reply_to,
                (SELECT value FROM content_headers h WHERE h.content_id = m.content_id
                    AND h.name = 'references' ORDER BY position LIMIT 1) AS refs
             FROM messages m JOIN contents c ON c.id = m.content_id
             WHERE m.mailbox_id = ? ORDER BY m.uid",
        )
        .bind(mailbox_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|row| SortData {
                uid: row.get::<i64, _>("uid") as u32,
                internal_date: row.get("internal_date"),
                sent_date: row.get("sent_date"),
                size: row.get::<i64, _>("size") as u64,
                envelope: row.get("envelope"),
                subject: row.get("subject"),
                message_id: row.get("message_id"),
                in_reply_to: row.get("in_reply_to"),
                references: row.get("refs"),
            })
            .collect())
    }
}
