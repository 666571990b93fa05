//! Access control lists of mailboxes (RFC 4314): who besides the owner may see and
//! use a mailbox. The owner always has every right and never has a row; other
//! accounts get the union of the rights granted to their address, to
//! `authenticated` and to `anyone` (mailroom has no anonymous logins, so the two
//! mean the same here). Negative rights are not supported.

use sqlx::{Row, SqliteConnection};

use crate::Store;
use crate::error::{Entity, Result, StoreError};
use crate::mailbox::{mailbox_by_id, mailbox_from_row};
use crate::types::*;

/// The identifiers that are not account addresses.
pub const ANYONE: &str = "anyone";
pub const AUTHENTICATED: &str = "authenticated";

/// How SETACL changes an identifier's rights (RFC 4314 §3.1 mod-rights).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RightsOp {
    /// `rights`: exactly these.
    Replace,
    /// `+rights`
    Add,
    /// `-rights`
    Remove,
}

/// The union of the letters of several rows.
fn union_of(letters: &[String]) -> Rights {
    letters
        .iter()
        .map(|l| Rights::parse(l).unwrap_or_default())
        .fold(Rights::NONE, Rights::union)
}

/// An identifier as stored, and the account it names (None for anyone and
/// authenticated). Unknown accounts are NotFound; negative rights identifiers
/// (`-bob`) are refused.
async fn resolve_identifier(
    conn: &mut SqliteConnection,
    identifier: &str,
) -> Result<(String, Option<AccountId>)> {
    let identifier = identifier.trim();
    if identifier.starts_with('-') {
        return Err(StoreError::invalid(
            "ACL identifier",
            "negative rights (an identifier starting with -) are not supported",
        ));
    }
    for special in [ANYONE, AUTHENTICATED] {
        if identifier.eq_ignore_ascii_case(special) {
            return Ok((special.to_string(), None));
        }
    }
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, address FROM accounts WHERE address = ? COLLATE NOCASE")
            .bind(identifier)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some((id, address)) => Ok((address, Some(id))),
        None => Err(StoreError::not_found(Entity::Account, identifier)),
    }
}

async fn rights_of(
    conn: &mut SqliteConnection,
    mailbox_id: MailboxId,
    identifier: &str,
) -> Result<Rights> {
    let letters: Option<String> =
        sqlx::query_scalar("SELECT rights FROM acl WHERE mailbox_id = ? AND identifier = ?")
            .bind(mailbox_id)
            .bind(identifier)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(letters.map(|l| union_of(&[l])).unwrap_or_default())
}

/// What an ACL change tells the sessions: the owner's and the grantee's lists of
/// mailboxes changed (the grantee's shared namespace gains or loses a mailbox).
fn acl_changed(owner: AccountId, grantee: Option<AccountId>) -> Vec<Change> {
    std::iter::once(owner)
        .chain(grantee)
        .map(|account_id| Change::MailboxList { account_id })
        .collect()
}

/// Gives a new mailbox the ACL of its parent (as Dovecot does), so a mailbox
/// created inside a shared one is shared the same way.
pub(crate) async fn inherit_acl(
    conn: &mut SqliteConnection,
    parent: MailboxId,
    child: MailboxId,
) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO acl (mailbox_id, identifier, account_id, rights)
         SELECT ?, identifier, account_id, rights FROM acl WHERE mailbox_id = ?",
    )
    .bind(child)
    .bind(parent)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// SETACL (RFC 4314 §3.1): changes the rights of `identifier` (`anyone`,
    /// `authenticated` or an account address) on a mailbox and returns them. Rights
    /// that end up empty remove the entry. The owner cannot be given or refused
    /// rights: it always has all of them.
    pub async fn set_acl(
        &self,
        mailbox_id: MailboxId,
        identifier: &str,
        op: RightsOp,
        rights: Rights,
    ) -> Result<Rights> {
        let identifier = identifier.to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mb = mailbox_by_id(conn, mailbox_id).await?;
                    let (identifier, account) = resolve_identifier(conn, &identifier).await?;
                    if account == Some(mb.account_id) {
                        return Err(StoreError::Cannot(format!(
                            "{identifier} owns {} and always has all rights on it",
                            mb.name
                        )));
                    }
                    let before = rights_of(conn, mailbox_id, &identifier).await?;
                    let after = match op {
                        RightsOp::Replace => rights,
                        RightsOp::Add => before.union(rights),
                        RightsOp::Remove => before.difference(rights),
                    };
                    if after.is_empty() {
                        sqlx::query("DELETE FROM acl WHERE mailbox_id = ? AND identifier = ?")
                            .bind(mailbox_id)
                            .bind(&identifier)
                            .execute(&mut *conn)
                            .await?;
                    } else {
                        sqlx::query(
                            "INSERT INTO acl (mailbox_id, identifier, account_id, rights) VALUES (?, ?, ?, ?)
                             ON CONFLICT (mailbox_id, identifier) DO UPDATE SET rights = excluded.rights",
                        )
                        .bind(mailbox_id)
                        .bind(&identifier)
                        .bind(account)
                        .bind(after.letters())
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok((after, acl_changed(mb.account_id, account)))
                })
            })
            .await
    }

    /// DELETEACL (RFC 4314 §3.2): removes the entry of `identifier`; false when it
    /// had none.
    pub async fn delete_acl(&self, mailbox_id: MailboxId, identifier: &str) -> Result<bool> {
        let identifier = identifier.to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mb = mailbox_by_id(conn, mailbox_id).await?;
                    let (identifier, account) = resolve_identifier(conn, &identifier).await?;
                    let done =
                        sqlx::query("DELETE FROM acl WHERE mailbox_id = ? AND identifier = ?")
                            .bind(mailbox_id)
                            .bind(&identifier)
                            .execute(&mut *conn)
                            .await?;
                    Ok((
                        done.rows_affected() > 0,
                        acl_changed(mb.account_id, account),
                    ))
                })
            })
            .await
    }

    /// GETACL (RFC 4314 §3.3): the entries of a mailbox, by identifier, without
    /// the owner's implicit one.
    pub async fn acl(&self, mailbox_id: MailboxId) -> Result<Vec<AclEntry>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT identifier, rights FROM acl WHERE mailbox_id = ? ORDER BY identifier",
        )
        .bind(mailbox_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(identifier, letters)| AclEntry {
                identifier,
                rights: union_of(&[letters]),
            })
            .collect())
    }

    /// MYRIGHTS (RFC 4314 §3.5): the rights `account_id` has on a mailbox; all of
    /// them for the owner, else the union of its address's, `authenticated`'s and
    /// `anyone`'s entries.
    pub async fn my_rights(&self, account_id: AccountId, mailbox_id: MailboxId) -> Result<Rights> {
        let row = sqlx::query(
            "SELECT m.account_id AS owner,
                    (SELECT group_concat(a.rights, '') FROM acl a
                     WHERE a.mailbox_id = m.id
                       AND (a.account_id = ?1 OR a.identifier IN ('anyone', 'authenticated'))) AS rights
             FROM mailboxes m WHERE m.id = ?2",
        )
        .bind(account_id)
        .bind(mailbox_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::not_found(Entity::Mailbox, mailbox_id.to_string()))?;
        if row.get::<i64, _>("owner") == account_id {
            return Ok(Rights::ALL);
        }
        let letters: Option<String> = row.get("rights");
        Ok(letters.map(|l| union_of(&[l])).unwrap_or_default())
    }

    /// Mailboxes of other accounts that `account_id` may look up (has `l` on),
    /// with its rights on each, by owner and name.
    pub async fn shared_mailboxes(&self, account_id: AccountId) -> Result<Vec<SharedMailbox>> {
        let rows = sqlx::query(
            "SELECT m.id AS id, m.account_id AS account_id, m.name AS name,
                    m.uidvalidity AS uidvalidity, m.uidnext AS uidnext,
                    m.highestmodseq AS highestmodseq, m.special_use AS special_use,
                    m.noselect AS noselect, o.address AS owner,
                    group_concat(a.rights, '') AS rights
             FROM acl a
             JOIN mailboxes m ON m.id = a.mailbox_id
             JOIN accounts o ON o.id = m.account_id
             WHERE (a.account_id = ?1 OR a.identifier IN ('anyone', 'authenticated'))
               AND m.account_id != ?1
             GROUP BY m.id
             ORDER BY o.address, m.name",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|row| SharedMailbox {
                owner: row.get("owner"),
                mailbox: mailbox_from_row(row),
                rights: union_of(&[row.get::<String, _>("rights")]),
            })
            .filter(|s| s.rights.contains(Rights::LOOKUP))
            .collect())
    }
}
