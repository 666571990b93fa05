//! Shared mailboxes: the shared namespace (RFC 2342), resolving a name to a mailbox
//! and the session's rights on it (RFC 4314 §4), and the ACL commands SETACL,
//! DELETEACL, GETACL, LISTRIGHTS and MYRIGHTS (RFC 4314 §3).
//!
//! The shared namespace is laid out as Dovecot's default one: the mailbox
//! `Projects` of `bob@example.org` is `Shared/bob@example.org/Projects` for the
//! accounts it is shared with. Every mailbox command goes through
//! [`Session::resolve`], so no command reaches another account's mailbox without a
//! rights check. Flags are shared by everybody who sees a mailbox (there is no
//! private `\Seen`).

use mailroom_store::{
    ANYONE, AUTHENTICATED, AccountId, DELIMITER, Entity, Mailbox, Rights, RightsOp, StoreError,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{CmdResult, Code, Error, Session, Tagged};
use crate::proto::untagged::{Namespace, Untagged};
use crate::selected::Selected;

/// The root of the shared namespace; its prefix is `Shared/`.
pub(crate) const SHARED_ROOT: &str = "Shared";

/// The NAMESPACE response (RFC 2342): personal mailboxes at the root, other
/// users' under `Shared/`, no public namespace.
pub(crate) fn namespace_response() -> Untagged {
    let space = |prefix: &str| {
        vec![Namespace {
            prefix: prefix.into(),
            delimiter: DELIMITER,
        }]
    };
    Untagged::Namespace {
        personal: space(""),
        other: space(&format!("{SHARED_ROOT}{DELIMITER}")),
        shared: Vec::new(),
    }
}

/// Whose mailbox a name means: the session's own, or another account's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Location {
    pub account_id: AccountId,
    /// The owner's address when it is another account's mailbox.
    pub owner: Option<String>,
    /// The name inside the owner's account.
    pub name: String,
}

impl Location {
    /// The name as this session shows it.
    pub fn display(&self) -> String {
        display_name(self.owner.as_deref(), &self.name)
    }

    /// The superior mailbox's name inside the owner's account, if any.
    pub fn parent(&self) -> Option<&str> {
        self.name.rsplit_once('/').map(|(p, _)| p)
    }
}

/// `Shared/<owner>/<name>` for another account's mailbox, the name itself otherwise.
pub(super) fn display_name(owner: Option<&str>, name: &str) -> String {
    match owner {
        Some(owner) => format!("{SHARED_ROOT}/{owner}/{name}"),
        None => name.to_string(),
    }
}

/// A name resolved to a mailbox the session may use as asked.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    pub location: Location,
    pub mailbox: Mailbox,
    pub rights: Rights,
}

/// Why a name did not resolve.
pub(super) enum Refused {
    /// No such mailbox of the session's own.
    Missing,
    /// No such mailbox in the shared namespace, or one the session may not even
    /// know of (no `l`): always `[NONEXISTENT]`, never a hint to create it.
    MissingShared,
    /// The session may know the mailbox but lacks a right the command needs.
    NoPerm(Rights),
    /// The name is the shared namespace or one of its user levels: no mailbox.
    Namespace,
    /// An answer for the client already (a bad name).
    Answer(Tagged),
}

impl Refused {
    /// The tagged answer; `missing` is the one for a mailbox that is not there
    /// (`[NONEXISTENT]` or `[TRYCREATE]`).
    pub fn answer(self, missing: Tagged) -> Tagged {
        match self {
            Refused::Missing => missing,
            Refused::MissingShared => nonexistent(),
            Refused::NoPerm(need) => Tagged::no(
                Code::NoPerm,
                format!(
                    "Permission denied (the right{} {} {} needed)",
                    if need.letters().len() > 1 { "s" } else { "" },
                    need.letters(),
                    if need.letters().len() > 1 {
                        "are"
                    } else {
                        "is"
                    }
                ),
            ),
            Refused::Namespace => Tagged::no(Code::Cannot, "That is a namespace, not a mailbox"),
            Refused::Answer(t) => t,
        }
    }
}

/// The answer for a mailbox that is not there, or not to be known of.
pub(super) fn nonexistent() -> Tagged {
    Tagged::no(Code::Nonexistent, "Mailbox does not exist")
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// Where a store-form name leads: `Shared/<owner>/<name>` is `<name>` of the
    /// account `<owner>`, anything else is the session's own (so personal names
    /// `Shared` and `Shared/...` are taken by the namespace). Err(Namespace) for
    /// `Shared` and `Shared/<owner>`, Err(MissingShared) for an unknown owner or
    /// the session's own account under `Shared/`.
    pub(super) async fn locate(&self, name: &str) -> Result<Result<Location, Refused>, Error> {
        let own = Location {
            account_id: self.account_id()?,
            owner: None,
            name: name.to_string(),
        };
        let Some(rest) = name.strip_prefix(SHARED_ROOT) else {
            return Ok(Ok(own));
        };
        let rest = match rest.strip_prefix('/') {
            Some(rest) => rest.trim_end_matches('/'),
            None if rest.is_empty() => return Ok(Err(Refused::Namespace)),
            None => return Ok(Ok(own)),
        };
        let (owner, inner) = rest.split_once('/').unwrap_or((rest, ""));
        if owner.is_empty() {
            return Ok(Err(Refused::Namespace));
        }
        let Some(account) = self.store.account(owner).await? else {
            return Ok(Err(Refused::MissingShared));
        };
        if account.id == self.account_id()? {
            return Ok(Err(Refused::MissingShared));
        }
        if inner.is_empty() {
            return Ok(Err(Refused::Namespace));
        }
        Ok(Ok(Location {
            account_id: account.id,
            owner: Some(account.address),
            name: inner.to_string(),
        }))
    }

    /// Resolves a name from the client (wire form) to a mailbox on which the
    /// session holds every right of `need`. Without them: `[NONEXISTENT]` when the
    /// session may not even look the mailbox up (no `l`), so its existence is not
    /// revealed, `[NOPERM]` otherwise (RFC 4314 §4).
    pub(super) async fn resolve(
        &self,
        wire: &str,
        need: Rights,
    ) -> Result<Result<Resolved, Refused>, Error> {
        let name = match self.mailbox_name(wire) {
            Ok(n) => n,
            Err(t) => return Ok(Err(Refused::Answer(t))),
        };
        self.resolve_name(&name, need).await
    }

    /// [`Session::resolve`] for a name already in store form.
    pub(super) async fn resolve_name(
        &self,
        name: &str,
        need: Rights,
    ) -> Result<Result<Resolved, Refused>, Error> {
        let location = match self.locate(name).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        let Some(mailbox) = self
            .store
            .mailbox(location.account_id, &location.name)
            .await?
        else {
            return Ok(Err(if location.owner.is_some() {
                Refused::MissingShared
            } else {
                Refused::Missing
            }));
        };
        let rights = if location.owner.is_none() {
            Rights::ALL
        } else {
            self.store.my_rights(self.account_id()?, mailbox.id).await?
        };
        if !rights.contains(need) {
            return Ok(Err(if rights.contains(Rights::LOOKUP) {
                Refused::NoPerm(need.difference(rights))
            } else {
                Refused::MissingShared
            }));
        }
        let mut location = location;
        location.name = mailbox.name.clone();
        Ok(Ok(Resolved {
            location,
            mailbox,
            rights,
        }))
    }

    /// The session's current rights on the selected mailbox (they may have
    /// changed since SELECT; an owner's never do).
    pub(super) async fn selected_rights(&self, sel: &Selected) -> Result<Rights, Error> {
        let account = self.account_id()?;
        if sel.mailbox.account_id == account {
            return Ok(Rights::ALL);
        }
        match self.store.my_rights(account, sel.mailbox.id).await {
            Ok(r) => Ok(r),
            Err(StoreError::NotFound { .. }) => Ok(Rights::NONE),
            Err(e) => Err(e.into()),
        }
    }

    /// SETACL (RFC 4314 §3.1): needs `a`.
    pub(super) async fn set_acl(
        &mut self,
        wire: &str,
        identifier: &str,
        op: RightsOp,
        rights: Rights,
    ) -> CmdResult {
        let mb = match self.resolve(wire, Rights::ADMIN).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        match self
            .store
            .set_acl(mb.mailbox.id, identifier, op, rights)
            .await
        {
            Ok(_) => Ok(Tagged::ok("SETACL completed")),
            Err(e) => Ok(acl_error(&e, identifier)),
        }
    }

    /// DELETEACL (RFC 4314 §3.2): needs `a`. Deleting an entry that is not there
    /// is no error.
    pub(super) async fn delete_acl(&mut self, wire: &str, identifier: &str) -> CmdResult {
        let mb = match self.resolve(wire, Rights::ADMIN).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        match self.store.delete_acl(mb.mailbox.id, identifier).await {
            Ok(_) => Ok(Tagged::ok("DELETEACL completed")),
            Err(e) => Ok(acl_error(&e, identifier)),
        }
    }

    /// GETACL (RFC 4314 §3.3): needs `a`. The owner comes first, with every right.
    pub(super) async fn get_acl(&mut self, wire: &str) -> CmdResult {
        let mb = match self.resolve(wire, Rights::ADMIN).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        let owner = match &mb.location.owner {
            Some(owner) => owner.clone(),
            None => self
                .state
                .account()
                .map(|a| a.address.clone())
                .unwrap_or_default(),
        };
        let entries = self.store.acl(mb.mailbox.id).await?;
        let entries = std::iter::once((owner, Rights::ALL))
            .chain(entries.into_iter().map(|e| (e.identifier, e.rights)))
            .collect();
        self.out.push(Untagged::Acl {
            mailbox: self.shown(mb.location.display()),
            entries,
        });
        Ok(Tagged::ok("GETACL completed"))
    }

    /// LISTRIGHTS (RFC 4314 §3.4): needs `a`. The owner always has every right; any
    /// other identifier may be granted each right on its own.
    pub(super) async fn list_rights(&mut self, wire: &str, identifier: &str) -> CmdResult {
        let mb = match self.resolve(wire, Rights::ADMIN).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        let is_owner = match self.store.account(identifier).await? {
            Some(account) => account.id == mb.mailbox.account_id,
            None if identifier.eq_ignore_ascii_case(ANYONE)
                || identifier.eq_ignore_ascii_case(AUTHENTICATED) =>
            {
                false
            }
            None => {
                return Err(Tagged::no(Code::Nonexistent, format!(
                    "No account {identifier}; identifiers are account addresses, anyone and authenticated"
                )).into());
            }
        };
        let (required, optional) = if is_owner {
            (Rights::ALL, Vec::new())
        } else {
            let each = Rights::LETTERS.chars().chain(['c', 'd']);
            (Rights::NONE, each.map(String::from).collect())
        };
        self.out.push(Untagged::ListRights {
            mailbox: self.shown(mb.location.display()),
            identifier: identifier.to_string(),
            required,
            optional,
        });
        Ok(Tagged::ok("LISTRIGHTS completed"))
    }

    /// MYRIGHTS (RFC 4314 §3.5): needs any right at all.
    pub(super) async fn my_rights(&mut self, wire: &str) -> CmdResult {
        let mb = match self.resolve(wire, Rights::NONE).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        if mb.rights.is_empty() {
            return Err(nonexistent().into());
        }
        self.out.push(Untagged::MyRights {
            mailbox: self.shown(mb.location.display()),
            rights: mb.rights,
        });
        Ok(Tagged::ok("MYRIGHTS completed"))
    }
}

/// The answer to a refused ACL change.
fn acl_error(e: &StoreError, identifier: &str) -> Tagged {
    match e {
        StoreError::NotFound {
            what: Entity::Account,
            ..
        } => Tagged::no(
            Code::Nonexistent,
            format!(
                "No account {identifier}; identifiers are account addresses, anyone and authenticated"
            ),
        ),
        StoreError::Invalid { reason, .. } => Tagged::no(Code::Cannot, reason.clone()),
        StoreError::Cannot(msg) => Tagged::no(Code::Cannot, msg.clone()),
        other => super::store_error_response(other),
    }
}
