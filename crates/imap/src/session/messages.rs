//! Message commands of the selected state: STORE, COPY, MOVE (RFC 6851), EXPUNGE,
//! UID EXPUNGE (RFC 4315), CLOSE and UNSELECT.

use mailroom_store::{FlagOp, Flags, Rights, StoreError, uid_ranges};
use tokio::io::{AsyncRead, AsyncWrite};

use super::acl::Refused;
use super::acl::nonexistent;
use super::{CmdResult, Code, Session, Tagged};
use crate::proto::types::SequenceSet;
use crate::proto::untagged::FetchResponse;
use crate::selected::Selected;

/// The rights a STORE of `flags` calls on (RFC 4314 §4): `s` for \Seen, `t` for
/// \Deleted, `w` for the others; replacing the flags touches all three.
fn rights_for_store(op: FlagOp, flags: &Flags) -> Rights {
    if op == FlagOp::Replace {
        return Rights::SEEN
            .union(Rights::DELETE_MESSAGES)
            .union(Rights::WRITE);
    }
    let mut need = Rights::NONE;
    if flags.has(Flags::SEEN) {
        need = need.union(Rights::SEEN);
    }
    if flags.has(Flags::DELETED) {
        need = need.union(Rights::DELETE_MESSAGES);
    }
    if flags.system & !(Flags::SEEN | Flags::DELETED) != 0 || !flags.keywords.is_empty() {
        need = need.union(Rights::WRITE);
    }
    need
}

/// The UIDs a sequence set names in the selected mailbox, or the BAD for it.
fn resolve_uids(sel: &Selected, set: &SequenceSet, uid: bool) -> Result<Vec<u32>, Tagged> {
    let indexes = sel.resolve(set, uid).map_err(Tagged::bad)?;
    Ok(indexes.into_iter().map(|i| sel.message(i).uid).collect())
}

/// What a STORE does to the flags of the messages it names.
pub(super) struct FlagChange<'a> {
    pub op: FlagOp,
    /// `.SILENT`: no untagged FETCH with the new flags.
    pub silent: bool,
    pub names: &'a [String],
    /// `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3).
    pub unchanged_since: Option<u64>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub(super) async fn store_flags(
        &mut self,
        sel: &mut Selected,
        uid: bool,
        set: &SequenceSet,
        change: FlagChange<'_>,
    ) -> CmdResult {
        let FlagChange {
            op,
            silent,
            names,
            unchanged_since,
        } = change;
        if unchanged_since.is_some() {
            self.enable_condstore(Some(sel.highest_modseq()));
        }
        let flags = match Flags::from_names(names) {
            Ok(f) => f,
            Err(e) => return Err(Tagged::bad(format!("Invalid flag: {e}")).into()),
        };
        let uids = resolve_uids(sel, set, uid)?;
        // RFC 4314 §4: a STORE fails only when the session may change none of the
        // flags it names; flags it may not change are left as they are.
        let rights = self.selected_rights(sel).await?;
        let need = rights_for_store(op, &flags);
        if !need.is_empty() && !rights.intersects(need) {
            return Err(Refused::NoPerm(need).answer(nonexistent()).into());
        }
        if sel.read_only {
            // Dovecot's answer: nothing changes, and that is no error (RFC 9051 §6.3.3
            // forbids the change, not the command).
            return Ok(Tagged::ok("Store ignored with read-only mailbox"));
        }
        let live: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| !sel.is_expunged(*u))
            .collect();
        let expunged = live.len() != uids.len();
        let mut modified = Vec::new();
        let mut changed = Vec::new();
        if !live.is_empty() {
            let update = self
                .store
                .store_flags_with_rights(
                    sel.mailbox.id,
                    uid_ranges(&live),
                    op,
                    flags,
                    unchanged_since,
                    rights,
                )
                .await?;
            for meta in &update.messages {
                sel.update_flags(meta);
            }
            modified = update.modified;
            changed = update.changed;
        }
        sel.announce_keywords(&mut self.out);
        for u in &live {
            if modified.contains(u) {
                continue;
            }
            // .SILENT still reports the new MODSEQ of changed messages to a CONDSTORE
            // client (RFC 7162 §3.1.3), without the flags.
            if silent && !(self.condstore && changed.contains(u)) {
                continue;
            }
            if let Some(i) = sel.index_of(*u) {
                let m = sel.message(i);
                let recent = !self.rev2 && sel.is_recent(m.uid);
                self.out.fetch(&FetchResponse::flags_update(
                    i as u32 + 1,
                    uid.then_some(m.uid),
                    (!silent).then_some((&m.flags, recent)),
                    self.condstore.then_some(m.modseq),
                ));
            }
        }
        if !modified.is_empty() {
            // RFC 7162 §3.1.3: the messages not stored because they changed meanwhile.
            let numbers: Vec<u32> = if uid {
                modified
            } else {
                let mut seqs: Vec<u32> = modified
                    .iter()
                    .filter_map(|u| sel.index_of(*u))
                    .map(|i| i as u32 + 1)
                    .collect();
                seqs.sort_unstable();
                seqs
            };
            return Ok(Tagged::ok_with(
                Code::Modified(numbers),
                "Conditional STORE failed",
            ));
        }
        if expunged && !uid {
            return Err(Tagged::no(
                Code::ExpungeIssued,
                "Some of the requested messages no longer exist",
            )
            .into());
        }
        Ok(Tagged::ok("STORE completed"))
    }

    pub(super) async fn copy(
        &mut self,
        sel: &mut Selected,
        uid: bool,
        set: &SequenceSet,
        wire: &str,
        is_move: bool,
    ) -> CmdResult {
        let name = self.mailbox_name(wire)?;
        let uids = resolve_uids(sel, set, uid)?;
        // The `i` right on the target (RFC 4314 §4); MOVE also takes the messages
        // out of the source, which needs `t` and `e` there.
        let (target, target_rights) = match self.resolve_name(&name, Rights::INSERT).await? {
            Ok(r) => (r.mailbox, r.rights),
            Err(r) => {
                return Err(r
                    .answer(Tagged::no(Code::TryCreate, "Mailbox does not exist"))
                    .into());
            }
        };
        if is_move {
            let need = Rights::DELETE_MESSAGES.union(Rights::EXPUNGE);
            if !self.selected_rights(sel).await?.contains(need) {
                return Err(Refused::NoPerm(need).answer(nonexistent()).into());
            }
        }
        if target.noselect {
            return Err(Tagged::no(Code::Cannot, "Mailbox is not selectable").into());
        }
        if is_move && sel.read_only {
            return Err(Tagged::no(Code::ReadOnly, "Mailbox is read-only").into());
        }
        let verb = if is_move { "MOVE" } else { "COPY" };
        let live: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| !sel.is_expunged(*u))
            .collect();
        if live.is_empty() {
            if uids.is_empty() {
                return Ok(Tagged::ok(format!("{verb} completed, no messages")));
            }
            return Err(Tagged::no(Code::ExpungeIssued, "The messages no longer exist").into());
        }
        let result = if is_move {
            if target.id == sel.mailbox.id {
                return Err(Tagged::no(
                    Code::Cannot,
                    "Source and destination are the same mailbox",
                )
                .into());
            }
            self.store
                .move_messages_with_rights(
                    sel.mailbox.id,
                    uid_ranges(&live),
                    target.id,
                    target_rights,
                )
                .await
        } else {
            // Flags the session may not set in the target are not copied (RFC 4314 §4).
            self.store
                .copy_messages_with_rights(
                    sel.mailbox.id,
                    uid_ranges(&live),
                    target.id,
                    target_rights,
                )
                .await
        };
        let result = match result {
            Ok(r) => r,
            Err(StoreError::OverQuota) => {
                return Err(Tagged::no(Code::OverQuota, "Quota exceeded").into());
            }
            Err(e) => return Err(e.into()),
        };
        let src: Vec<u32> = result.pairs.iter().map(|p| p.0).collect();
        let dst: Vec<u32> = result.pairs.iter().map(|p| p.1).collect();
        let code = (!src.is_empty()).then(|| Code::CopyUid {
            validity: result.uid_validity,
            source: src.clone(),
            destination: dst,
        });
        if is_move {
            // RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs.
            if let Some(code) = code {
                self.out.status(Tagged::ok_with(code, "Moved"));
            }
            sel.expunged_by_us(&src, &mut self.out);
            Ok(Tagged::ok("MOVE completed"))
        } else {
            Ok(match code {
                Some(code) => Tagged::ok_with(code, "COPY completed"),
                None => Tagged::ok("COPY completed"),
            })
        }
    }

    pub(super) async fn expunge(
        &mut self,
        sel: &mut Selected,
        uids: Option<&SequenceSet>,
    ) -> CmdResult {
        let ranges = match uids {
            None => None,
            Some(set) => Some(uid_ranges(&resolve_uids(sel, set, true)?)),
        };
        // The `e` right (RFC 4314 §4).
        if !self.selected_rights(sel).await?.contains(Rights::EXPUNGE) {
            return Err(Refused::NoPerm(Rights::EXPUNGE)
                .answer(nonexistent())
                .into());
        }
        if sel.read_only {
            // As Dovecot: nothing is expunged from a read-only mailbox, and that is no error.
            return Ok(Tagged::ok("EXPUNGE completed"));
        }
        if ranges.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Tagged::ok("EXPUNGE completed"));
        }
        let expunged = self.store.expunge(sel.mailbox.id, ranges).await?;
        sel.expunged_by_us(&expunged, &mut self.out);
        Ok(Tagged::ok("EXPUNGE completed"))
    }

    /// CLOSE (`expunge` = true) and UNSELECT. The session is Authenticated again
    /// once the mailbox is closed; it stays selected if the rights cannot be read.
    pub(super) async fn close(&mut self, sel: Box<Selected>, expunge: bool) -> CmdResult {
        // CLOSE expunges only with the `e` right, silently skipping it without.
        let may_expunge = if expunge {
            match self.selected_rights(&sel).await {
                Ok(rights) => rights.contains(Rights::EXPUNGE),
                Err(e) => {
                    self.state.select(sel);
                    return Err(e);
                }
            }
        } else {
            false
        };
        if may_expunge && !sel.read_only {
            // CLOSE expunges silently (RFC 9051 §6.4.1).
            self.store.expunge(sel.mailbox.id, None).await?;
        }
        Ok(Tagged::ok(if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        }))
    }
}
