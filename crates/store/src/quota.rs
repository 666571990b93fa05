//! What IMAP QUOTA (RFC 9208) reports: an account's storage use and limit. The
//! limit is set by administrators (the admin API's `quota_bytes`); the use is the
//! trigger-maintained `used_bytes` counter that quota checks read too.

use crate::Store;
use crate::error::{Entity, Result, StoreError};
use crate::types::{AccountId, MailboxId};

/// An account's storage: octets used and the limit, if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    pub used_bytes: u64,
    pub limit_bytes: Option<u64>,
}

impl Store {
    /// The account's storage use and quota.
    pub async fn quota_usage(&self, account_id: AccountId) -> Result<QuotaUsage> {
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT used_bytes, quota_bytes FROM accounts WHERE id = ?")
                .bind(account_id)
                .fetch_optional(&self.read)
                .await?;
        let (used, limit) =
            row.ok_or_else(|| StoreError::not_found(Entity::Account, account_id.to_string()))?;
        Ok(QuotaUsage {
            used_bytes: u64::try_from(used).unwrap_or(0),
            limit_bytes: limit.map(|l| u64::try_from(l).unwrap_or(0)),
        })
    }

    /// Octets of the mailbox's messages flagged \Deleted: what an EXPUNGE gives
    /// back to the quota (STATUS DELETED-STORAGE, RFC 9208 §4.2.1).
    pub async fn deleted_size(&self, mailbox_id: MailboxId) -> Result<u64> {
        let size: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox_id = ? AND flags & 8 != 0",
        )
        .bind(mailbox_id)
        .fetch_one(&self.read)
        .await?;
        Ok(u64::try_from(size).unwrap_or(0))
    }
}
