//! Messages: delivery and APPEND, reads by UID range, flag changes with MODSEQ,
//! COPY, MOVE, EXPUNGE, the changes since a MODSEQ, and SEARCH helpers.
//!
//! Invariants kept here, inside the single writer's transactions: per mailbox, UIDs
//! come from `uidnext`, which only grows, so a UID is never reused within one
//! UIDVALIDITY; every change takes `highestmodseq + 1`, so MODSEQ strictly increases.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection};

use crate::error::{Entity, Result, StoreError};
use crate::mailbox::mailbox_by_id;
use crate::types::*;
use crate::{Store, now};

/// An inclusive range of UIDs.
pub type UidRange = RangeInclusive<u32>;

/// Compresses ascending UIDs into ranges (`1,2,3,7` -> `1..=3, 7..=7`).
pub fn uid_ranges(uids: &[u32]) -> Vec<UidRange> {
    let mut out: Vec<UidRange> = Vec::new();
    for &uid in uids {
        match out.last_mut() {
            Some(last) if last.end().checked_add(1) == Some(uid) => *last = *last.start()..=uid,
            Some(last) if last.contains(&uid) => {}
            _ => out.push(uid..=uid),
        }
    }
    out
}

/// A message parsed and hashed outside the writer, ready to be inserted.
pub(crate) struct Prepared {
    sha256: Vec<u8>,
    raw: Vec<u8>,
    summary: mailroom_message::MessageSummary,
}

pub(crate) async fn prepare(raw: Vec<u8>) -> Result<Prepared> {
    tokio::task::spawn_blocking(move || {
        let sha256 = Sha256::digest(&raw).to_vec();
        let summary = mailroom_message::summarize(&raw);
        Prepared {
            sha256,
            raw,
            summary,
        }
    })
    .await
    .map_err(|e| StoreError::Cannot(format!("message parsing failed: {e}")))
}

/// Stores the content unless identical bytes are already stored; returns its id.
async fn insert_content(conn: &mut SqliteConnection, p: &Prepared) -> Result<ContentId> {
    if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM contents WHERE sha256 = ?")
        .bind(&p.sha256)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(id);
    }
    let s = &p.summary;
    let id = sqlx::query(
        "INSERT INTO contents (sha256, size, raw, envelope, body_structure, body, sent_date, sent_offset, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&p.sha256)
    .bind(p.raw.len() as i64)
    .bind(&p.raw)
    .bind(&s.envelope)
    .bind(&s.body_structure)
    .bind(&s.body)
    .bind(s.sent_date.as_ref().map(|d| d.unix))
    .bind(s.sent_date.as_ref().map(|d| d.offset_minutes as i64))
    .bind(now())
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    insert_headers(conn, id, &s.headers).await?;
    sqlx::query("INSERT INTO content_text_pending (content_id, body) VALUES (?, ?)")
        .bind(id)
        .bind(s.text.to_lowercase())
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// Header rows per INSERT statement: one statement for almost every message, and
/// few distinct statements for sqlx to prepare and cache.
const HEADER_ROWS_PER_INSERT: usize = 32;

/// The `value_folded` column for `value`: its Unicode lower-casing, or None when
/// that equals SQLite's `lower(value)` (ASCII-only), which search uses instead.
fn folded_header_value(value: &str) -> Option<String> {
    let folded = value.to_lowercase();
    (folded != value.to_ascii_lowercase()).then_some(folded)
}

/// Stores the top-level header fields of content `id`, a multi-row INSERT per
/// [`HEADER_ROWS_PER_INSERT`] fields.
async fn insert_headers(
    conn: &mut SqliteConnection,
    id: ContentId,
    headers: &[(String, String)],
) -> Result<()> {
    for (chunk_no, chunk) in headers.chunks(HEADER_ROWS_PER_INSERT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO content_headers (content_id, position, name, value, value_folded) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?)"
            });
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, (name, value)) in chunk.iter().enumerate() {
            query = query
                .bind(id)
                .bind((chunk_no * HEADER_ROWS_PER_INSERT + i) as i64)
                .bind(name.to_ascii_lowercase())
                .bind(value)
                .bind(folded_header_value(value));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Moves up to `limit` pending texts into the FTS5 index; returns how many moved.
/// Called by the writer between batches: indexing many rows in one statement costs
/// far less than one FTS5 update per delivery.
pub(crate) async fn index_pending_text(conn: &mut SqliteConnection, limit: i64) -> Result<u64> {
    let moved = sqlx::query(
        "INSERT INTO content_text (rowid, body)
         SELECT content_id, body FROM content_text_pending ORDER BY content_id LIMIT ?",
    )
    .bind(limit)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved > 0 {
        sqlx::query(
            "DELETE FROM content_text_pending WHERE content_id IN
             (SELECT content_id FROM content_text_pending ORDER BY content_id LIMIT ?)",
        )
        .bind(moved as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(moved)
}

/// Number of texts waiting for the index.
pub(crate) async fn pending_text(conn: &mut SqliteConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM content_text_pending")
            .fetch_one(conn)
            .await?,
    )
}

/// Stores the content once and puts a copy in the INBOX of each account (which
/// must be distinct), inside the caller's transaction: the common part of inbound
/// delivery and of submission's local recipients.
pub(crate) async fn deliver_to_inboxes(
    conn: &mut SqliteConnection,
    prepared: &Prepared,
    accounts: &[AccountId],
    received: i64,
    events: &mut Vec<Change>,
) -> Result<Delivered> {
    let targets: Vec<(AccountId, Folder)> = accounts.iter().map(|&a| (a, Folder::Inbox)).collect();
    deliver_to_folders(conn, prepared, &targets, received, events).await
}

/// The mailbox a delivered copy goes to: INBOX, or the account's `\Junk` mailbox
/// (RFC 6154; the one with the lowest id when there are several), INBOX when it has
/// none.
async fn folder_mailbox(
    conn: &mut SqliteConnection,
    account_id: AccountId,
    folder: Folder,
) -> Result<MailboxId> {
    if folder == Folder::Junk {
        let junk: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM mailboxes WHERE account_id = ? AND special_use = '\\Junk' AND noselect = 0
             ORDER BY id LIMIT 1",
        )
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = junk {
            return Ok(id);
        }
    }
    sqlx::query_scalar("SELECT id FROM mailboxes WHERE account_id = ? AND name = 'INBOX'")
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(Entity::Inbox, account_id.to_string()))
}

/// One copy per (account, folder) target, the bytes stored once.
pub(crate) async fn deliver_to_folders(
    conn: &mut SqliteConnection,
    prepared: &Prepared,
    targets: &[(AccountId, Folder)],
    received: i64,
    events: &mut Vec<Change>,
) -> Result<Delivered> {
    let content_id = insert_content(conn, prepared).await?;
    let size = prepared.raw.len() as u64;
    let mut copies = Vec::with_capacity(targets.len());
    for &(account_id, folder) in targets {
        let mailbox = folder_mailbox(conn, account_id, folder).await?;
        check_quota(conn, account_id, size).await?;
        let (uid, modseq) = allocate(conn, mailbox, 1).await?;
        insert_message(
            conn,
            mailbox,
            uid,
            content_id,
            modseq,
            &Flags::default(),
            (received, 0),
            size,
        )
        .await?;
        copies.push((account_id, mailbox, uid));
        events.push(Change::Mailbox {
            account_id,
            mailbox_id: mailbox,
            modseq,
        });
    }
    Ok(Delivered { content_id, copies })
}

/// Takes `count` UIDs and one new MODSEQ in a mailbox: (first UID, MODSEQ).
async fn allocate(
    conn: &mut SqliteConnection,
    mailbox_id: MailboxId,
    count: u32,
) -> Result<(u32, u64)> {
    let row = sqlx::query(
        "UPDATE mailboxes SET uidnext = uidnext + ?1, highestmodseq = highestmodseq + 1
         WHERE id = ?2 AND noselect = 0 RETURNING uidnext - ?1 AS first, highestmodseq",
    )
    .bind(count as i64)
    .bind(mailbox_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found(Entity::Mailbox, mailbox_id.to_string()))?;
    let first: i64 = row.get("first");
    if first + count as i64 > u32::MAX as i64 {
        return Err(StoreError::Cannot("the mailbox has run out of UIDs".into()));
    }
    Ok((first as u32, row.get::<i64, _>("highestmodseq") as u64))
}

/// Takes one new MODSEQ in a mailbox.
async fn bump_modseq(conn: &mut SqliteConnection, mailbox_id: MailboxId) -> Result<u64> {
    let modseq: i64 = sqlx::query_scalar("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq")
        .bind(mailbox_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(Entity::Mailbox, mailbox_id.to_string()))?;
    Ok(modseq as u64)
}

/// Refuses an addition of `adding` bytes that would take the account over quota.
async fn check_quota(
    conn: &mut SqliteConnection,
    account_id: AccountId,
    adding: u64,
) -> Result<()> {
    let quota: Option<i64> = sqlx::query_scalar("SELECT quota_bytes FROM accounts WHERE id = ?")
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
    if let Some(quota) = quota {
        let used: i64 = sqlx::query_scalar("SELECT used_bytes FROM accounts WHERE id = ?")
            .bind(account_id)
            .fetch_one(&mut *conn)
            .await?;
        if used as u64 + adding > quota as u64 {
            return Err(StoreError::OverQuota);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_message(
    conn: &mut SqliteConnection,
    mailbox_id: MailboxId,
    uid: u32,
    content_id: ContentId,
    modseq: u64,
    flags: &Flags,
    internal_date: (i64, i32),
    size: u64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO messages (mailbox_id, uid, content_id, modseq, flags, keywords, internal_date, internal_offset, size)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(mailbox_id)
    .bind(uid as i64)
    .bind(content_id)
    .bind(modseq as i64)
    .bind(flags.system as i64)
    .bind(flags.keywords_column())
    .bind(internal_date.0)
    .bind(internal_date.1 as i64)
    .bind(size as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// SQL condition for UID ranges, and whether rows must still be filtered in Rust
/// (many ranges are read as one span and filtered, to keep the statement small).
fn range_condition(ranges: &[UidRange]) -> (String, Vec<i64>, bool) {
    if ranges.is_empty() {
        return ("0".into(), vec![], false);
    }
    if ranges.len() <= 32 {
        let cond = vec!["uid BETWEEN ? AND ?"; ranges.len()].join(" OR ");
        let binds = ranges
            .iter()
            .flat_map(|r| [*r.start() as i64, *r.end() as i64])
            .collect();
        (format!("({cond})"), binds, false)
    } else {
        let lo = ranges.iter().map(|r| *r.start()).min().unwrap_or(0);
        let hi = ranges.iter().map(|r| *r.end()).max().unwrap_or(0);
        (
            "(uid BETWEEN ? AND ?)".into(),
            vec![lo as i64, hi as i64],
            true,
        )
    }
}

fn in_ranges(ranges: &[UidRange], uid: u32) -> bool {
    ranges.iter().any(|r| r.contains(&uid))
}

fn meta_from_row(row: &sqlx::sqlite::SqliteRow) -> MessageMeta {
    MessageMeta {
        uid: row.get::<i64, _>("uid") as u32,
        modseq: row.get::<i64, _>("modseq") as u64,
        flags: Flags::from_columns(row.get("flags"), row.get::<&str, _>("keywords")),
    }
}

async fn metas_in(
    conn: &mut SqliteConnection,
    mailbox_id: MailboxId,
    ranges: &[UidRange],
) -> Result<Vec<(MessageMeta, ContentId, i64, i32, u64)>> {
    let (cond, binds, filter) = range_condition(ranges);
    let sql = format!(
        "SELECT uid, modseq, flags, keywords, content_id, internal_date, internal_offset, size FROM messages
         WHERE mailbox_id = ? AND {cond} ORDER BY uid"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox_id);
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                meta_from_row(row),
                row.get::<i64, _>("content_id"),
                row.get::<i64, _>("internal_date"),
                row.get::<i64, _>("internal_offset") as i32,
                row.get::<i64, _>("size") as u64,
            )
        })
        .filter(|(m, ..)| !filter || in_ranges(ranges, m.uid))
        .collect())
}

/// Deletes messages (already chosen) from a mailbox, logging them for QRESYNC.
async fn remove(conn: &mut SqliteConnection, mailbox_id: MailboxId, uids: &[u32]) -> Result<u64> {
    let modseq = bump_modseq(conn, mailbox_id).await?;
    for &uid in uids {
        sqlx::query("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?")
            .bind(mailbox_id)
            .bind(uid as i64)
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)")
            .bind(mailbox_id)
            .bind(uid as i64)
            .bind(modseq as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(modseq)
}

/// Expunges every message of a mailbox (DELETE of a mailbox with inferiors).
pub(crate) async fn expunge_all(conn: &mut SqliteConnection, mb: &Mailbox) -> Result<u64> {
    let uids: Vec<i64> = sqlx::query_scalar("SELECT uid FROM messages WHERE mailbox_id = ?")
        .bind(mb.id)
        .fetch_all(&mut *conn)
        .await?;
    let uids: Vec<u32> = uids.into_iter().map(|u| u as u32).collect();
    remove(conn, mb.id, &uids).await
}

/// Copies messages between mailboxes of one transaction; the source keeps them.
/// `moving` says the source copies will be expunged in the same transaction, so a
/// move inside one account uses no more space and is not refused for quota.
async fn copy_within(
    conn: &mut SqliteConnection,
    source: &Mailbox,
    target: &Mailbox,
    ranges: &[UidRange],
    moving: bool,
    rights: Rights,
) -> Result<CopyResult> {
    if target.noselect {
        return Err(StoreError::Cannot(format!(
            "{} cannot hold messages",
            target.name
        )));
    }
    let rows = metas_in(conn, source.id, ranges).await?;
    let mut pairs = Vec::with_capacity(rows.len());
    if !rows.is_empty() {
        let total: u64 = rows.iter().map(|r| r.4).sum();
        if !(moving && source.account_id == target.account_id) {
            check_quota(conn, target.account_id, total).await?;
        }
        let (first, modseq) = allocate(conn, target.id, rows.len() as u32).await?;
        for (i, (meta, content_id, date, offset, size)) in rows.iter().enumerate() {
            let uid = first + i as u32;
            insert_message(
                conn,
                target.id,
                uid,
                *content_id,
                modseq,
                // Flags the copier may not set in the target are not copied.
                &meta.flags.within_rights(&Flags::default(), rights),
                (*date, *offset),
                *size,
            )
            .await?;
            pairs.push((meta.uid, uid));
        }
    }
    Ok(CopyResult {
        uid_validity: target.uid_validity,
        pairs,
    })
}

/// Moves messages: copy, then expunge from the source. Returns the source's MODSEQ.
pub(crate) async fn move_within(
    conn: &mut SqliteConnection,
    source: &Mailbox,
    target: &Mailbox,
    ranges: &[UidRange],
    rights: Rights,
) -> Result<(CopyResult, u64)> {
    let copied = copy_within(conn, source, target, ranges, true, rights).await?;
    let uids: Vec<u32> = copied.pairs.iter().map(|p| p.0).collect();
    let modseq = if uids.is_empty() {
        source.highest_modseq
    } else {
        remove(conn, source.id, &uids).await?
    };
    Ok((copied, modseq))
}

fn offset_of(date: time::OffsetDateTime) -> (i64, i32) {
    (date.unix_timestamp(), date.offset().whole_minutes() as i32)
}

/// Result of a STORE: every matched message with its flags afterwards, and the
/// UIDs refused because they changed after UNCHANGEDSINCE (RFC 7162 §3.1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    pub messages: Vec<MessageMeta>,
    /// UIDs whose flags actually changed.
    pub changed: Vec<u32>,
    pub modified: Vec<u32>,
}

impl Store {
    /// Delivers one message to the INBOX of every distinct account in `recipients`,
    /// in one transaction, storing the bytes once. Returns only after the commit:
    /// the SMTP receiver answers 250 after this returns Ok, never before.
    pub async fn deliver(&self, raw: Vec<u8>, recipients: &[AccountId]) -> Result<Delivered> {
        let targets: Vec<(AccountId, Folder)> =
            recipients.iter().map(|&a| (a, Folder::Inbox)).collect();
        self.deliver_into(raw, &targets).await
    }

    /// Delivers one message to a folder of every distinct account (the inbound
    /// pipeline files spam into Junk), in one transaction, storing the bytes once.
    /// An account named twice gets one copy, in the first folder named for it.
    pub async fn deliver_into(
        &self,
        raw: Vec<u8>,
        targets: &[(AccountId, Folder)],
    ) -> Result<Delivered> {
        let mut distinct: Vec<(AccountId, Folder)> = Vec::with_capacity(targets.len());
        for &(account, folder) in targets {
            if !distinct.iter().any(|(a, _)| *a == account) {
                distinct.push((account, folder));
            }
        }
        distinct.sort_unstable_by_key(|(a, _)| *a);
        if distinct.is_empty() {
            return Err(StoreError::invalid("delivery", "no recipients"));
        }
        let prepared = prepare(raw).await?;
        let received = now();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mut events = Vec::with_capacity(distinct.len());
                    let delivered =
                        deliver_to_folders(conn, &prepared, &distinct, received, &mut events)
                            .await?;
                    Ok((delivered, events))
                })
            })
            .await
    }

    /// True when `size` more bytes fit in the account's quota (SMTP checks this at
    /// RCPT time with the SIZE= the client announced, so one full mailbox does not
    /// refuse a message for every recipient at the end of DATA).
    pub async fn fits_quota(&self, account_id: AccountId, size: u64) -> Result<bool> {
        let mut conn = self.read.acquire().await?;
        match check_quota(&mut conn, account_id, size).await {
            Ok(()) => Ok(true),
            Err(StoreError::OverQuota) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// APPEND (RFC 9051 §6.3.12): stores a message in a mailbox with flags and an
    /// INTERNALDATE (now if None). Returns (UIDVALIDITY, UID) for APPENDUID.
    pub async fn append(
        &self,
        mailbox_id: MailboxId,
        raw: Vec<u8>,
        flags: Flags,
        internal_date: Option<time::OffsetDateTime>,
    ) -> Result<(u32, u32)> {
        let (validity, uids) = self
            .append_many(mailbox_id, vec![(raw, flags, internal_date)])
            .await?;
        let uid = uids
            .first()
            .copied()
            .ok_or_else(|| StoreError::Cannot("nothing was appended".into()))?;
        Ok((validity, uid))
    }

    /// MULTIAPPEND (RFC 3502): stores several messages in one transaction, all or
    /// none, with consecutive UIDs. Returns UIDVALIDITY and the UIDs in order.
    pub async fn append_many(
        &self,
        mailbox_id: MailboxId,
        messages: Vec<(Vec<u8>, Flags, Option<time::OffsetDateTime>)>,
    ) -> Result<(u32, Vec<u32>)> {
        if messages.is_empty() {
            return Err(StoreError::invalid("append", "no messages"));
        }
        let mut prepared = Vec::with_capacity(messages.len());
        for (raw, flags, date) in messages {
            let date = date.map(offset_of).unwrap_or((now(), 0));
            prepared.push((prepare(raw).await?, flags, date));
        }
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mb = mailbox_by_id(conn, mailbox_id).await?;
                    if mb.noselect {
                        return Err(StoreError::Cannot(format!(
                            "{} cannot hold messages",
                            mb.name
                        )));
                    }
                    let total: u64 = prepared.iter().map(|(p, ..)| p.raw.len() as u64).sum();
                    check_quota(conn, mb.account_id, total).await?;
                    let (first, modseq) = allocate(conn, mailbox_id, prepared.len() as u32).await?;
                    let mut uids = Vec::with_capacity(prepared.len());
                    for (i, (p, flags, date)) in prepared.iter().enumerate() {
                        let content_id = insert_content(conn, p).await?;
                        let uid = first + i as u32;
                        insert_message(
                            conn,
                            mailbox_id,
                            uid,
                            content_id,
                            modseq,
                            flags,
                            *date,
                            p.raw.len() as u64,
                        )
                        .await?;
                        uids.push(uid);
                    }
                    let event = Change::Mailbox {
                        account_id: mb.account_id,
                        mailbox_id,
                        modseq,
                    };
                    Ok(((mb.uid_validity, uids), vec![event]))
                })
            })
            .await
    }

    /// UID, MODSEQ and flags of every message, ascending by UID (SELECT).
    pub async fn message_index(&self, mailbox_id: MailboxId) -> Result<Vec<MessageMeta>> {
        let rows = sqlx::query(
            "SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = ? ORDER BY uid",
        )
        .bind(mailbox_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(meta_from_row).collect())
    }

    /// Stored attributes of the messages in `ranges`, ascending by UID.
    pub async fn fetch_info(
        &self,
        mailbox_id: MailboxId,
        ranges: &[UidRange],
    ) -> Result<Vec<MessageInfo>> {
        let (cond, binds, filter) = range_condition(ranges);
        let sql = format!(
            "SELECT m.uid, m.modseq, m.flags, m.keywords, m.content_id, m.internal_date, m.internal_offset, m.size,
                    c.sent_date, c.sent_offset
             FROM messages m JOIN contents c ON c.id = m.content_id
             WHERE m.mailbox_id = ? AND {} ORDER BY m.uid",
            cond.replace("uid", "m.uid")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox_id);
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&self.read).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let meta = meta_from_row(row);
                MessageInfo {
                    uid: meta.uid,
                    modseq: meta.modseq,
                    flags: meta.flags,
                    internal_date: row.get("internal_date"),
                    internal_offset: row.get::<i64, _>("internal_offset") as i32,
                    size: row.get::<i64, _>("size") as u64,
                    content_id: row.get("content_id"),
                    sent_date: row.get::<Option<i64>, _>("sent_date").map(|d| {
                        (
                            d,
                            row.get::<Option<i64>, _>("sent_offset").unwrap_or(0) as i32,
                        )
                    }),
                }
            })
            .filter(|m| !filter || in_ranges(ranges, m.uid))
            .collect())
    }

    /// The pre-computed ENVELOPE, BODYSTRUCTURE and BODY of a content.
    pub async fn content_views(&self, content_id: ContentId) -> Result<ContentViews> {
        let (envelope, body_structure, body): (String, String, String) =
            sqlx::query_as("SELECT envelope, body_structure, body FROM contents WHERE id = ?")
                .bind(content_id)
                .fetch_optional(&self.read)
                .await?
                .ok_or_else(|| {
                    StoreError::not_found(Entity::MessageContent, content_id.to_string())
                })?;
        Ok(ContentViews {
            envelope,
            body_structure,
            body,
        })
    }

    /// The raw RFC 5322 bytes of a content.
    pub async fn content_raw(&self, content_id: ContentId) -> Result<Vec<u8>> {
        sqlx::query_scalar("SELECT raw FROM contents WHERE id = ?")
            .bind(content_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::not_found(Entity::MessageContent, content_id.to_string()))
    }

    /// STORE / UID STORE (RFC 9051 §6.4.6, RFC 7162 UNCHANGEDSINCE). Messages whose
    /// flags change get one new MODSEQ; unchanged ones keep theirs.
    pub async fn store_flags(
        &self,
        mailbox_id: MailboxId,
        ranges: Vec<UidRange>,
        op: FlagOp,
        flags: Flags,
        unchanged_since: Option<u64>,
    ) -> Result<FlagUpdate> {
        self.store_flags_with_rights(mailbox_id, ranges, op, flags, unchanged_since, Rights::ALL)
            .await
    }

    /// STORE by someone holding `rights` on the mailbox (RFC 4314 §4): flags it may
    /// not change keep their value (see [`Flags::within_rights`]).
    pub async fn store_flags_with_rights(
        &self,
        mailbox_id: MailboxId,
        ranges: Vec<UidRange>,
        op: FlagOp,
        flags: Flags,
        unchanged_since: Option<u64>,
        rights: Rights,
    ) -> Result<FlagUpdate> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mb = mailbox_by_id(conn, mailbox_id).await?;
                    let rows = metas_in(conn, mailbox_id, &ranges).await?;
                    let mut update = FlagUpdate::default();
                    let mut new_modseq = None;
                    for (meta, ..) in rows {
                        if let Some(limit) = unchanged_since
                            && meta.modseq > limit
                        {
                            update.modified.push(meta.uid);
                            update.messages.push(meta);
                            continue;
                        }
                        let after = match op {
                            FlagOp::Replace => flags.clone(),
                            FlagOp::Add => meta.flags.union(&flags),
                            FlagOp::Remove => meta.flags.difference(&flags),
                        }
                        .within_rights(&meta.flags, rights);
                        if after == meta.flags {
                            update.messages.push(meta);
                            continue;
                        }
                        let modseq = match new_modseq {
                            Some(m) => m,
                            None => {
                                let m = bump_modseq(conn, mailbox_id).await?;
                                new_modseq = Some(m);
                                m
                            }
                        };
                        sqlx::query("UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?")
                            .bind(after.system as i64)
                            .bind(after.keywords_column())
                            .bind(modseq as i64)
                            .bind(mailbox_id)
                            .bind(meta.uid as i64)
                            .execute(&mut *conn)
                            .await?;
                        update.changed.push(meta.uid);
                        update.messages.push(MessageMeta { uid: meta.uid, modseq, flags: after });
                    }
                    let events = match new_modseq {
                        Some(modseq) => vec![Change::Mailbox { account_id: mb.account_id, mailbox_id, modseq }],
                        None => vec![],
                    };
                    Ok((update, events))
                })
            })
            .await
    }

    /// COPY (RFC 9051 §6.4.7) with the UIDs for COPYUID (RFC 4315).
    pub async fn copy_messages(
        &self,
        source: MailboxId,
        ranges: Vec<UidRange>,
        target: MailboxId,
    ) -> Result<CopyResult> {
        self.copy_messages_with_rights(source, ranges, target, Rights::ALL)
            .await
    }

    /// COPY by someone holding `rights` on the target (RFC 4314 §4): flags it may
    /// not set there are not copied.
    pub async fn copy_messages_with_rights(
        &self,
        source: MailboxId,
        ranges: Vec<UidRange>,
        target: MailboxId,
        rights: Rights,
    ) -> Result<CopyResult> {
        let training = self.spam_training_enabled();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let src = mailbox_by_id(conn, source).await?;
                    let dst = mailbox_by_id(conn, target).await?;
                    let copied = copy_within(conn, &src, &dst, &ranges, false, rights).await?;
                    let mut events = if copied.pairs.is_empty() {
                        vec![]
                    } else {
                        let modseq = mailbox_by_id(conn, target).await?.highest_modseq;
                        vec![Change::Mailbox {
                            account_id: dst.account_id,
                            mailbox_id: target,
                            modseq,
                        }]
                    };
                    let new_uids: Vec<u32> = copied.pairs.iter().map(|p| p.1).collect();
                    crate::spam_training::record(
                        training,
                        conn,
                        &src,
                        &dst,
                        &new_uids,
                        &mut events,
                    )
                    .await?;
                    Ok((copied, events))
                })
            })
            .await
    }

    /// MOVE (RFC 6851): copy and expunge in one transaction.
    pub async fn move_messages(
        &self,
        source: MailboxId,
        ranges: Vec<UidRange>,
        target: MailboxId,
    ) -> Result<CopyResult> {
        self.move_messages_with_rights(source, ranges, target, Rights::ALL)
            .await
    }

    /// MOVE by someone holding `rights` on the target; see
    /// [`Store::copy_messages_with_rights`].
    pub async fn move_messages_with_rights(
        &self,
        source: MailboxId,
        ranges: Vec<UidRange>,
        target: MailboxId,
        rights: Rights,
    ) -> Result<CopyResult> {
        let training = self.spam_training_enabled();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let src = mailbox_by_id(conn, source).await?;
                    let dst = mailbox_by_id(conn, target).await?;
                    if src.id == dst.id {
                        return Err(StoreError::Cannot(
                            "source and destination are the same mailbox".into(),
                        ));
                    }
                    let (copied, modseq) = move_within(conn, &src, &dst, &ranges, rights).await?;
                    let mut events = vec![];
                    if !copied.pairs.is_empty() {
                        let dst_modseq = mailbox_by_id(conn, target).await?.highest_modseq;
                        events.push(Change::Mailbox {
                            account_id: src.account_id,
                            mailbox_id: source,
                            modseq,
                        });
                        events.push(Change::Mailbox {
                            account_id: dst.account_id,
                            mailbox_id: target,
                            modseq: dst_modseq,
                        });
                    }
                    let new_uids: Vec<u32> = copied.pairs.iter().map(|p| p.1).collect();
                    crate::spam_training::record(
                        training,
                        conn,
                        &src,
                        &dst,
                        &new_uids,
                        &mut events,
                    )
                    .await?;
                    Ok((copied, events))
                })
            })
            .await
    }

    /// EXPUNGE / UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9): removes the messages flagged
    /// \Deleted (within `ranges` if given). Returns the expunged UIDs, ascending.
    pub async fn expunge(
        &self,
        mailbox_id: MailboxId,
        ranges: Option<Vec<UidRange>>,
    ) -> Result<Vec<u32>> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mb = mailbox_by_id(conn, mailbox_id).await?;
                    let uids: Vec<i64> = sqlx::query_scalar("SELECT uid FROM messages WHERE mailbox_id = ? AND flags & 8 != 0 ORDER BY uid")
                        .bind(mailbox_id)
                        .fetch_all(&mut *conn)
                        .await?;
                    let uids: Vec<u32> = uids
                        .into_iter()
                        .map(|u| u as u32)
                        .filter(|u| ranges.as_ref().is_none_or(|r| in_ranges(r, *u)))
                        .collect();
                    if uids.is_empty() {
                        return Ok((uids, vec![]));
                    }
                    let modseq = remove(conn, mailbox_id, &uids).await?;
                    Ok((uids, vec![Change::Mailbox { account_id: mb.account_id, mailbox_id, modseq }]))
                })
            })
            .await
    }

    /// Messages added or changed, and UIDs expunged, after `modseq`: what a session
    /// that last knew `modseq` must report (and QRESYNC's VANISHED (EARLIER)).
    pub async fn changes_since(
        &self,
        mailbox_id: MailboxId,
        modseq: u64,
    ) -> Result<MailboxChanges> {
        let mut conn = self.read.acquire().await?;
        // One read transaction so the three reads agree.
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let mb = mailbox_by_id(&mut conn, mailbox_id).await;
        let changed = sqlx::query("SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid")
            .bind(mailbox_id)
            .bind(modseq as i64)
            .fetch_all(&mut *conn)
            .await;
        let expunged: Result<Vec<i64>, _> = sqlx::query_scalar(
            "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
        )
        .bind(mailbox_id)
        .bind(modseq as i64)
        .fetch_all(&mut *conn)
        .await;
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        let mb = mb?;
        Ok(MailboxChanges {
            changed: changed?.iter().map(meta_from_row).collect(),
            expunged: expunged?.into_iter().map(|u| u as u32).collect(),
            highest_modseq: mb.highest_modseq,
            uid_next: mb.uid_next,
        })
    }

    /// UIDs expunged from a mailbox after `modseq`, ascending: QRESYNC's VANISHED
    /// (EARLIER) (RFC 7162 §3.2.5, §3.2.6). The expunge log is never trimmed (it
    /// goes only with its mailbox), so the answer is complete for any `modseq`.
    pub async fn expunged_since(&self, mailbox_id: MailboxId, modseq: u64) -> Result<Vec<u32>> {
        let uids: Vec<i64> = sqlx::query_scalar(
            "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
        )
        .bind(mailbox_id)
        .bind(i64::try_from(modseq).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        Ok(uids.into_iter().map(|u| u as u32).collect())
    }

    /// SEARCH BODY (RFC 9051 §6.4.4): UIDs whose decoded body text contains `needle`,
    /// case-insensitively. Needles of three or more characters are answered by the
    /// FTS5 trigram index (candidates) and instr() on their text; shorter ones by a
    /// scan. Texts still waiting for the index are scanned.
    pub async fn search_body(&self, mailbox_id: MailboxId, needle: &str) -> Result<Vec<u32>> {
        let needle = needle.to_lowercase();
        let mut conn = self.read.acquire().await?;
        // One read transaction: the indexer moving a text between the two tables
        // cannot make a message vanish from (or appear twice in) the answer.
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let indexed: Result<Vec<i64>, _> = if needle.chars().count() >= 3 {
            sqlx::query_scalar(
                // The index (detail=none: no positions) finds the rows holding every
                // trigram of the needle; instr() keeps those really containing it.
                // The lookup runs once, as a subquery; a join lets SQLite's planner
                // run it once per message of the mailbox instead (45 s against
                // 21 ms on 100,000 messages).
                "SELECT m.uid FROM messages m WHERE m.mailbox_id = ?2 AND m.content_id IN
                 (SELECT rowid FROM content_text WHERE content_text MATCH ?1 AND instr(body, ?3) > 0)",
            )
            .bind(trigram_query(&needle))
            .bind(mailbox_id)
            .bind(&needle)
            .fetch_all(&mut *conn)
            .await
        } else {
            sqlx::query_scalar(
                "SELECT m.uid FROM messages m JOIN content_text t ON t.rowid = m.content_id
                 WHERE m.mailbox_id = ? AND instr(t.body, ?) > 0",
            )
            .bind(mailbox_id)
            .bind(&needle)
            .fetch_all(&mut *conn)
            .await
        };
        let pending: Result<Vec<i64>, _> = sqlx::query_scalar(
            "SELECT m.uid FROM messages m JOIN content_text_pending p ON p.content_id = m.content_id
             WHERE m.mailbox_id = ? AND instr(p.body, ?) > 0",
        )
        .bind(mailbox_id)
        .bind(&needle)
        .fetch_all(&mut *conn)
        .await;
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        let mut uids: Vec<u32> = indexed?
            .into_iter()
            .chain(pending?)
            .map(|u| u as u32)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// SEARCH HEADER/FROM/TO/CC/BCC/SUBJECT (RFC 9051 §6.4.4): UIDs with a header
    /// field `field` (any field when None) whose decoded value contains `needle`,
    /// case-insensitively. An empty needle matches every message having the field.
    pub async fn search_header(
        &self,
        mailbox_id: MailboxId,
        field: Option<&str>,
        needle: &str,
    ) -> Result<Vec<u32>> {
        let needle = needle.to_lowercase();
        // Parameters: ?1 mailbox, ?2 needle, ?3 LIKE pattern, ?4 field name.
        let pattern = header_like_pattern(&needle);
        let contains = if pattern.is_some() {
            // A value without a folded copy lower-cases by lower() (ASCII only), and
            // LIKE compares ASCII letters case-insensitively and the rest exactly:
            // the same answer as instr(lower(value), needle), without a copy.
            "((h.value_folded IS NULL AND h.value LIKE ?3 ESCAPE '\\') OR instr(h.value_folded, ?2) > 0)"
        } else {
            // (?3, NULL here, is named so that the parameters keep their numbers.)
            "(instr(coalesce(h.value_folded, lower(h.value)), ?2) > 0 AND ?3 IS NULL)"
        };
        let name = if field.is_some() {
            "AND h.name = ?4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT DISTINCT m.uid FROM messages m JOIN content_headers h ON h.content_id = m.content_id
             WHERE m.mailbox_id = ?1 {name} AND {contains} ORDER BY m.uid"
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(mailbox_id)
            .bind(&needle)
            .bind(pattern);
        if let Some(field) = field {
            query = query.bind(field.to_ascii_lowercase());
        }
        let uids: Vec<i64> = query.fetch_all(&self.read).await?;
        Ok(uids.into_iter().map(|u| u as u32).collect())
    }

    /// SEARCH TEXT: header fields or body contain `needle`.
    pub async fn search_text(&self, mailbox_id: MailboxId, needle: &str) -> Result<Vec<u32>> {
        let mut all: BTreeMap<u32, ()> = BTreeMap::new();
        for uid in self.search_header(mailbox_id, None, needle).await? {
            all.insert(uid, ());
        }
        for uid in self.search_body(mailbox_id, needle).await? {
            all.insert(uid, ());
        }
        Ok(all.into_keys().collect())
    }
}

/// Longest needle (bytes) searched in header values with LIKE, well below SQLite's
/// limit on pattern length (50,000 bytes); longer ones use lower() and instr().
const HEADER_LIKE_MAX: usize = 4_096;

/// `%needle%` with LIKE's `%`, `_` and the escape `\` escaped, or None when the
/// needle is too long for a LIKE pattern.
fn header_like_pattern(needle: &str) -> Option<String> {
    if needle.len() > HEADER_LIKE_MAX {
        return None;
    }
    let mut pattern = String::with_capacity(needle.len() + 8);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

/// Characters of the needle whose trigrams go into the index query: enough to
/// narrow the candidates down, and a bound on the query's size.
const QUERY_CHARS: usize = 256;

/// An FTS5 query for the rows holding every trigram of `needle` (at least three
/// characters): `"abc" AND "bcd" AND ...`, each trigram once. Without positions in
/// the index this is a superset of the rows containing the needle (and a long
/// needle is cut to its start); the caller checks the needle itself with instr().
fn trigram_query(needle: &str) -> String {
    let chars: Vec<char> = needle.chars().take(QUERY_CHARS).collect();
    let mut seen = std::collections::HashSet::new();
    let mut terms = Vec::new();
    for window in chars.windows(3) {
        let trigram: String = window.iter().collect();
        if seen.insert(trigram.clone()) {
            terms.push(format!("\"{}\"", trigram.replace('"', "\"\"")));
        }
    }
    terms.join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigram_queries() {
        assert_eq!(trigram_query("abc"), "\"abc\"");
        assert_eq!(trigram_query("abcd"), "\"abc\" AND \"bcd\"");
        assert_eq!(trigram_query("aaaa"), "\"aaa\"");
        assert_eq!(trigram_query("a\"bc"), "\"a\"\"b\" AND \"\"\"bc\"");
        assert_eq!(trigram_query("é ü"), "\"é ü\"");
        let long = "xyz".repeat(100_000);
        assert_eq!(trigram_query(&long).matches(" AND ").count(), 2);
    }

    #[test]
    fn header_like_patterns_escape_wildcards() {
        assert_eq!(header_like_pattern("abc").as_deref(), Some("%abc%"));
        assert_eq!(
            header_like_pattern("50%_a\\b").as_deref(),
            Some("%50\\%\\_a\\\\b%")
        );
        assert_eq!(header_like_pattern(""), Some("%%".to_string()));
        assert_eq!(header_like_pattern(&"x".repeat(HEADER_LIKE_MAX + 1)), None);
    }

    #[test]
    fn folded_header_values_only_when_lower_differs() {
        assert_eq!(folded_header_value("Hello World"), None);
        assert_eq!(folded_header_value("café"), None);
        assert_eq!(folded_header_value("Über"), Some("über".to_string()));
        // The Kelvin sign lower-cases to an ASCII k.
        assert_eq!(
            folded_header_value("\u{212A}elvin"),
            Some("kelvin".to_string())
        );
    }

    #[test]
    fn ranges_compress() {
        assert_eq!(uid_ranges(&[1, 2, 3, 7, 9, 10]), vec![1..=3, 7..=7, 9..=10]);
        assert_eq!(uid_ranges(&[]), Vec::<UidRange>::new());
        assert_eq!(uid_ranges(&[u32::MAX]), vec![u32::MAX..=u32::MAX]);
    }
}
