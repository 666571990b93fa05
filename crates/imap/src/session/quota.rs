//! QUOTA (RFC 9208) with the STORAGE resource: one quota root per account. The
//! session's own account is the root `""`; a mailbox shared by another account
//! (`Shared/<owner>/...`) counts against its owner's quota, whose root is named by
//! the owner's address. Limits are set by administrators (`mailroom user quota`, or
//! `quota_bytes` of the admin API's `PATCH /api/v1/accounts/{address}`), never over
//! IMAP: SETQUOTA is
//! refused. APPEND, COPY and MOVE past a quota are refused by the store and
//! answered `NO [OVERQUOTA]`. STATUS (DELETED-STORAGE) is answered with the other
//! STATUS items (`mailboxes`).

use mailroom_store::{AccountId, QuotaUsage, Rights};
use tokio::io::{AsyncRead, AsyncWrite};

use super::acl::nonexistent;
use super::{CmdResult, Code, Error, Session, Tagged};
use crate::proto::untagged::Untagged;

/// The capabilities this module answers for.
pub(super) const CAPS: &str = "QUOTA QUOTA=RES-STORAGE";

/// `* QUOTA root (STORAGE used limit)` in KiB (RFC 9208 §5.1), or nothing for an
/// account without a limit.
fn quota_response(root: &str, usage: QuotaUsage) -> Option<Untagged> {
    let limit = usage.limit_bytes?;
    Some(Untagged::Quota {
        root: root.to_string(),
        resources: vec![("STORAGE".into(), usage.used_bytes / 1024, limit / 1024)],
    })
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// The account a quota root names, if the session may see it: `""` is its
    /// own, an owner's address is that owner's when the session may read one of
    /// its mailboxes (as GETQUOTAROOT needs `r`).
    async fn quota_root_account(&self, root: &str) -> Result<Option<AccountId>, Error> {
        if root.is_empty() {
            return Ok(Some(self.account_id()?));
        }
        let shared = self.store.shared_mailboxes(self.account_id()?).await?;
        let Some(owner) = shared
            .iter()
            .find(|s| s.owner.eq_ignore_ascii_case(root) && s.rights.contains(Rights::READ))
        else {
            return Ok(None);
        };
        Ok(self.store.account(&owner.owner).await?.map(|a| a.id))
    }

    /// GETQUOTA (RFC 9208 §4.1.1).
    pub(super) async fn get_quota(&mut self, root: &str) -> CmdResult {
        let Some(account_id) = self.quota_root_account(root).await? else {
            return Err(Tagged::no(Code::Nonexistent, "No such quota root").into());
        };
        let usage = self.store.quota_usage(account_id).await?;
        if let Some(quota) = quota_response(root, usage) {
            self.out.push(quota);
        }
        Ok(Tagged::ok("GETQUOTA completed"))
    }

    /// GETQUOTAROOT (RFC 9208 §4.1.2): needs `r` on the mailbox, as STATUS does.
    pub(super) async fn get_quota_root(&mut self, wire: &str) -> CmdResult {
        let resolved = match self.resolve(wire, Rights::READ).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        let root = resolved.location.owner.clone().unwrap_or_default();
        let usage = self.store.quota_usage(resolved.location.account_id).await?;
        self.out.push(Untagged::QuotaRoot {
            mailbox: self.shown(resolved.location.display()),
            roots: vec![root.clone()],
        });
        if let Some(quota) = quota_response(&root, usage) {
            self.out.push(quota);
        }
        Ok(Tagged::ok("GETQUOTAROOT completed"))
    }

    /// SETQUOTA (RFC 9208 §4.1.3): quotas are the administrator's.
    pub(super) fn set_quota(&self, limits: &[(String, u64)]) -> Tagged {
        if let Some((name, _)) = limits.iter().find(|(n, _)| n != "STORAGE") {
            return Tagged::no(
                Code::Cannot,
                format!("Unknown resource {name}; only STORAGE is supported"),
            );
        }
        Tagged::no(
            Code::NoPerm,
            "Quotas are set by the administrator (mailroom user quota, or the admin API)",
        )
    }
}
