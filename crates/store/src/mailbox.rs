//! Mailboxes: hierarchy rules of CREATE, DELETE and RENAME (RFC 9051 §6.3.4-6.3.6),
//! subscriptions, STATUS counters and \Recent bookkeeping.

use sqlx::{Row, SqliteConnection};

use crate::error::{Entity, Result, StoreError};
use crate::types::*;
use crate::{Store, now};

const COLUMNS: &str =
    "id, account_id, name, uidvalidity, uidnext, highestmodseq, special_use, noselect";

pub(crate) fn mailbox_from_row(row: &sqlx::sqlite::SqliteRow) -> Mailbox {
    Mailbox {
        id: row.get("id"),
        account_id: row.get("account_id"),
        name: row.get("name"),
        uid_validity: row.get::<i64, _>("uidvalidity") as u32,
        uid_next: row.get::<i64, _>("uidnext") as u32,
        highest_modseq: row.get::<i64, _>("highestmodseq") as u64,
        special_use: row.get("special_use"),
        noselect: row.get::<i64, _>("noselect") != 0,
    }
}

/// Canonical form of a mailbox name: `INBOX` in any case is `INBOX` (RFC 9051 §5.1),
/// a trailing delimiter is dropped, and empty levels or control characters refused.
pub fn normalize_name(name: &str) -> Result<String> {
    let name = name.strip_suffix(DELIMITER).unwrap_or(name);
    if name.is_empty() {
        return Err(StoreError::invalid("mailbox name", "it is empty"));
    }
    if name.len() > 1000 {
        return Err(StoreError::invalid(
            "mailbox name",
            "it is longer than 1000 octets",
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(StoreError::invalid(
            "mailbox name",
            "it contains control characters",
        ));
    }
    if name.split(DELIMITER).any(str::is_empty) {
        return Err(StoreError::invalid(
            "mailbox name",
            format!("{name:?} has an empty hierarchy level"),
        ));
    }
    let mut levels = name.split(DELIMITER);
    let first = levels.next().unwrap_or_default();
    if first.eq_ignore_ascii_case("INBOX") {
        let rest: Vec<&str> = levels.collect();
        Ok(std::iter::once("INBOX")
            .chain(rest)
            .collect::<Vec<_>>()
            .join("/"))
    } else {
        Ok(name.to_string())
    }
}

/// The names of every superior level of `name` (`a/b/c` -> `a`, `a/b`).
fn parents(name: &str) -> Vec<String> {
    name.match_indices(DELIMITER)
        .map(|(i, _)| name[..i].to_string())
        .collect()
}

async fn next_uidvalidity(conn: &mut SqliteConnection) -> Result<u32> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'uidvalidity'")
            .fetch_optional(&mut *conn)
            .await?;
    // Time-based so values also differ across a store wiped and created again.
    let value = (now().max(1) as u32).max(last.unwrap_or(0) as u32 + 1);
    sqlx::query("INSERT INTO counters (name, value) VALUES ('uidvalidity', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value")
        .bind(value as i64)
        .execute(&mut *conn)
        .await?;
    Ok(value)
}

pub(crate) async fn insert_mailbox(
    conn: &mut SqliteConnection,
    account_id: AccountId,
    name: &str,
    special_use: Option<&str>,
) -> Result<MailboxId> {
    let uidvalidity = next_uidvalidity(conn).await?;
    let id = sqlx::query("INSERT INTO mailboxes (account_id, name, uidvalidity, special_use, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(account_id)
        .bind(name)
        .bind(uidvalidity as i64)
        .bind(special_use)
        .bind(now())
        .execute(&mut *conn)
        .await?
        .last_insert_rowid();
    Ok(id)
}

/// A missing superior of a created or renamed mailbox: a \\Noselect placeholder, as
/// in Dovecot, so a later CREATE of that name succeeds and the placeholder goes away
/// with its last child.
async fn insert_placeholder(
    conn: &mut SqliteConnection,
    account_id: AccountId,
    name: &str,
) -> Result<MailboxId> {
    let id = insert_mailbox(conn, account_id, name, None).await?;
    sqlx::query("UPDATE mailboxes SET noselect = 1 WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

pub(crate) async fn mailbox_by_name(
    conn: &mut SqliteConnection,
    account_id: AccountId,
    name: &str,
) -> Result<Option<Mailbox>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mailboxes WHERE account_id = ? AND name = ?"
    )))
    .bind(account_id)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(mailbox_from_row))
}

pub(crate) async fn mailbox_by_id(conn: &mut SqliteConnection, id: MailboxId) -> Result<Mailbox> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mailboxes WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref()
        .map(mailbox_from_row)
        .ok_or_else(|| StoreError::not_found(Entity::Mailbox, id.to_string()))
}

async fn has_children(
    conn: &mut SqliteConnection,
    account_id: AccountId,
    name: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?",
    )
    .bind(account_id)
    .bind((name.len() + 1) as i64)
    .bind(format!("{name}/"))
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Removes \Noselect placeholders left without children (after DELETE or RENAME).
async fn prune_placeholders(
    conn: &mut SqliteConnection,
    account_id: AccountId,
    name: &str,
) -> Result<()> {
    for parent in parents(name).into_iter().rev() {
        if let Some(mb) = mailbox_by_name(conn, account_id, &parent).await?
            && mb.noselect
            && !has_children(conn, account_id, &parent).await?
        {
            sqlx::query("DELETE FROM mailboxes WHERE id = ?")
                .bind(mb.id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

impl Store {
    /// Every mailbox of an account, sorted by name.
    pub async fn list_mailboxes(&self, account_id: AccountId) -> Result<Vec<Mailbox>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY name"
        )))
        .bind(account_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(mailbox_from_row).collect())
    }

    /// A mailbox by name (`inbox` in any case finds INBOX).
    pub async fn mailbox(&self, account_id: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let Ok(name) = normalize_name(name) else {
            return Ok(None);
        };
        let mut conn = self.read.acquire().await?;
        mailbox_by_name(&mut conn, account_id, &name).await
    }

    pub async fn mailbox_by_id(&self, id: MailboxId) -> Result<Mailbox> {
        let mut conn = self.read.acquire().await?;
        mailbox_by_id(&mut conn, id).await
    }

    /// CREATE (RFC 9051 §6.3.4): creates the mailbox and any missing superiors.
    /// A name that exists (or a \Noselect placeholder being made real) is handled as
    /// the RFC says: existing -> AlreadyExists, placeholder -> becomes selectable.
    pub async fn create_mailbox(
        &self,
        account_id: AccountId,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<Mailbox> {
        let name = normalize_name(name)?;
        if let Some(su) = special_use
            && ![
                "\\All",
                "\\Archive",
                "\\Drafts",
                "\\Flagged",
                "\\Junk",
                "\\Sent",
                "\\Trash",
            ]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(su))
        {
            return Err(StoreError::invalid(
                "special-use attribute",
                format!("{su} is not one of RFC 6154"),
            ));
        }
        let special_use = special_use.map(str::to_string);
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    if name == "INBOX" {
                        return Err(StoreError::exists("mailbox", name));
                    }
                    for parent in parents(&name) {
                        if mailbox_by_name(conn, account_id, &parent).await?.is_none() {
                            insert_placeholder(conn, account_id, &parent).await?;
                        }
                    }
                    match mailbox_by_name(conn, account_id, &name).await? {
                        Some(mb) if mb.noselect => {
                            sqlx::query(
                                "UPDATE mailboxes SET noselect = 0, special_use = ? WHERE id = ?",
                            )
                            .bind(&special_use)
                            .bind(mb.id)
                            .execute(&mut *conn)
                            .await?;
                        }
                        Some(_) => return Err(StoreError::exists("mailbox", name)),
                        None => {
                            let id =
                                insert_mailbox(conn, account_id, &name, special_use.as_deref())
                                    .await?;
                            // A mailbox made inside a shared one is shared alike.
                            if let Some(parent) = parents(&name).last()
                                && let Some(parent) =
                                    mailbox_by_name(conn, account_id, parent).await?
                            {
                                crate::acl::inherit_acl(conn, parent.id, id).await?;
                            }
                        }
                    }
                    let mailbox = mailbox_by_name(conn, account_id, &name)
                        .await?
                        .ok_or_else(|| StoreError::not_found(Entity::Mailbox, name.clone()))?;
                    Ok((mailbox, vec![Change::MailboxList { account_id }]))
                })
            })
            .await
    }

    /// DELETE (RFC 9051 §6.3.5). INBOX cannot be deleted. A mailbox with inferiors
    /// loses its messages and stays as a \Noselect placeholder; deleting such a
    /// placeholder again is refused.
    pub async fn delete_mailbox(&self, account_id: AccountId, name: &str) -> Result<()> {
        let name = normalize_name(name)?;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    if name == "INBOX" {
                        return Err(StoreError::Cannot("INBOX cannot be deleted".into()));
                    }
                    let mb = mailbox_by_name(conn, account_id, &name)
                        .await?
                        .ok_or_else(|| StoreError::not_found(Entity::Mailbox, name.clone()))?;
                    let mut events = vec![Change::MailboxList { account_id }];
                    if has_children(conn, account_id, &name).await? {
                        if mb.noselect {
                            return Err(StoreError::HasChildren(name));
                        }
                        let modseq = crate::message::expunge_all(conn, &mb).await?;
                        sqlx::query(
                            "UPDATE mailboxes SET noselect = 1, special_use = NULL WHERE id = ?",
                        )
                        .bind(mb.id)
                        .execute(&mut *conn)
                        .await?;
                        events.push(Change::Mailbox {
                            account_id,
                            mailbox_id: mb.id,
                            modseq,
                        });
                    } else {
                        // Messages first, while the mailbox still names their
                        // account for the used-bytes trigger.
                        sqlx::query("DELETE FROM messages WHERE mailbox_id = ?")
                            .bind(mb.id)
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("DELETE FROM mailboxes WHERE id = ?")
                            .bind(mb.id)
                            .execute(&mut *conn)
                            .await?;
                        prune_placeholders(conn, account_id, &name).await?;
                        events.push(Change::Mailbox {
                            account_id,
                            mailbox_id: mb.id,
                            modseq: mb.highest_modseq + 1,
                        });
                    }
                    Ok(((), events))
                })
            })
            .await
    }

    /// RENAME (RFC 9051 §6.3.6): renames the mailbox and all its inferiors, creating
    /// missing superiors of the new name. Renaming INBOX moves its messages into a
    /// new mailbox and leaves INBOX empty (its inferiors stay).
    pub async fn rename_mailbox(
        &self,
        account_id: AccountId,
        from: &str,
        to: &str,
    ) -> Result<Mailbox> {
        let from = normalize_name(from)?;
        let to = normalize_name(to)?;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let source = mailbox_by_name(conn, account_id, &from)
                        .await?
                        .ok_or_else(|| StoreError::not_found(Entity::Mailbox, from.clone()))?;
                    if mailbox_by_name(conn, account_id, &to).await?.is_some() || to == "INBOX" {
                        return Err(StoreError::exists("mailbox", to));
                    }
                    if to.starts_with(&format!("{from}/")) {
                        return Err(StoreError::Cannot(format!("{from} cannot be renamed into its own inferior {to}")));
                    }
                    for parent in parents(&to) {
                        if mailbox_by_name(conn, account_id, &parent).await?.is_none() {
                            insert_placeholder(conn, account_id, &parent).await?;
                        }
                    }
                    let mut events = vec![Change::MailboxList { account_id }];
                    if from == "INBOX" {
                        let target = insert_mailbox(conn, account_id, &to, None).await?;
                        let target_mb = mailbox_by_id(conn, target).await?;
                        let uids: Vec<i64> = sqlx::query_scalar("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid")
                            .bind(source.id)
                            .fetch_all(&mut *conn)
                            .await?;
                        let uids: Vec<u32> = uids.into_iter().map(|u| u as u32).collect();
                        let ranges = crate::message::uid_ranges(&uids);
                        let (_, modseq) = crate::message::move_within(conn, &source, &target_mb, &ranges, Rights::ALL).await?;
                        events.push(Change::Mailbox { account_id, mailbox_id: source.id, modseq });
                        events.push(Change::Mailbox { account_id, mailbox_id: target, modseq: 1 });
                    } else {
                        // Rename the mailbox and every inferior in one statement.
                        sqlx::query(
                            "UPDATE mailboxes SET name = ?1 || substr(name, ?3)
                             WHERE account_id = ?4 AND (name = ?2 OR substr(name, 1, ?3) = ?2 || '/')",
                        )
                        .bind(&to)
                        .bind(&from)
                        .bind((from.len() + 1) as i64)
                        .bind(account_id)
                        .execute(&mut *conn)
                        .await?;
                        prune_placeholders(conn, account_id, &from).await?;
                        events.push(Change::Mailbox { account_id, mailbox_id: source.id, modseq: source.highest_modseq });
                    }
                    let renamed = mailbox_by_name(conn, account_id, &to)
                        .await?
                        .ok_or_else(|| StoreError::not_found(Entity::Mailbox, to.clone()))?;
                    Ok((renamed, events))
                })
            })
            .await
    }

    /// Sets a mailbox's RFC 6154 special-use attribute (None clears it).
    pub async fn set_special_use(
        &self,
        mailbox_id: MailboxId,
        special_use: Option<&str>,
    ) -> Result<()> {
        let special_use = special_use.map(str::to_string);
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mb = mailbox_by_id(conn, mailbox_id).await?;
                    sqlx::query("UPDATE mailboxes SET special_use = ? WHERE id = ?")
                        .bind(&special_use)
                        .bind(mailbox_id)
                        .execute(&mut *conn)
                        .await?;
                    Ok((
                        (),
                        vec![Change::MailboxList {
                            account_id: mb.account_id,
                        }],
                    ))
                })
            })
            .await
    }

    /// SUBSCRIBE (RFC 9051 §6.3.7): any valid name, existing or not.
    pub async fn subscribe_mailbox(&self, account_id: AccountId, name: &str) -> Result<()> {
        self.set_subscribed(account_id, name, true).await
    }

    /// UNSUBSCRIBE (RFC 9051 §6.3.8). Unsubscribing a name not subscribed is NotFound.
    pub async fn unsubscribe_mailbox(&self, account_id: AccountId, name: &str) -> Result<()> {
        self.set_subscribed(account_id, name, false).await
    }

    async fn set_subscribed(&self, account_id: AccountId, name: &str, on: bool) -> Result<()> {
        let name = normalize_name(name)?;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    if on {
                        sqlx::query(
                            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                        )
                        .bind(account_id)
                        .bind(&name)
                        .execute(&mut *conn)
                        .await?;
                    } else {
                        let done = sqlx::query(
                            "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
                        )
                        .bind(account_id)
                        .bind(&name)
                        .execute(&mut *conn)
                        .await?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::not_found(Entity::Subscription, name));
                        }
                    }
                    Ok(((), vec![Change::MailboxList { account_id }]))
                })
            })
            .await
    }

    /// Subscribed names of an account, sorted.
    pub async fn subscriptions(&self, account_id: AccountId) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name")
                .bind(account_id)
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// STATUS counters of one mailbox.
    pub async fn mailbox_status(&self, mailbox_id: MailboxId) -> Result<MailboxStatus> {
        let row = sqlx::query(
            "SELECT m.uidnext, m.uidvalidity, m.highestmodseq, m.recent_uid,
                    count(e.uid) AS messages,
                    coalesce(sum(e.flags & 1 = 0), 0) AS unseen,
                    coalesce(sum(e.flags & 8 != 0), 0) AS deleted,
                    coalesce(sum(e.size), 0) AS size,
                    coalesce(sum(e.uid > m.recent_uid), 0) AS recent
             FROM mailboxes m LEFT JOIN messages e ON e.mailbox_id = m.id
             WHERE m.id = ? GROUP BY m.id",
        )
        .bind(mailbox_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::not_found(Entity::Mailbox, mailbox_id.to_string()))?;
        Ok(MailboxStatus {
            messages: row.get::<i64, _>("messages") as u32,
            unseen: row.get::<i64, _>("unseen") as u32,
            deleted: row.get::<i64, _>("deleted") as u32,
            size: row.get::<i64, _>("size") as u64,
            uid_next: row.get::<i64, _>("uidnext") as u32,
            uid_validity: row.get::<i64, _>("uidvalidity") as u32,
            highest_modseq: row.get::<i64, _>("highestmodseq") as u64,
            recent: row.get::<i64, _>("recent") as u32,
        })
    }

    /// Claims the \Recent messages of a mailbox for one IMAP4rev1 session (RFC 3501
    /// §2.3.2: exactly one session sees a message as recent). Returns the UIDs above
    /// which messages are recent for the caller: (previous mark, new mark]. Other
    /// sessions calling later get an empty range for the same messages.
    pub async fn claim_recent(&self, mailbox_id: MailboxId) -> Result<(u32, u32)> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (before, uidnext): (i64, i64) =
                        sqlx::query_as("SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?")
                            .bind(mailbox_id)
                            .fetch_optional(&mut *conn)
                            .await?
                            .ok_or_else(|| {
                                StoreError::not_found(Entity::Mailbox, mailbox_id.to_string())
                            })?;
                    let after = uidnext - 1;
                    if after > before {
                        sqlx::query("UPDATE mailboxes SET recent_uid = ? WHERE id = ?")
                            .bind(after)
                            .bind(mailbox_id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(((before as u32, after.max(before) as u32), vec![]))
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize_name("inbox").unwrap(), "INBOX");
        assert_eq!(normalize_name("Inbox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(normalize_name("a/b/").unwrap(), "a/b");
        assert!(normalize_name("a//b").is_err());
        assert!(normalize_name("").is_err());
        assert!(normalize_name("a\rb").is_err());
        assert_eq!(parents("a/b/c"), vec!["a", "a/b"]);
    }
}
