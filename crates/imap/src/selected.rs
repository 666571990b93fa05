//! The selected-mailbox view of one session: sequence numbers <-> UIDs, flags as
//! the client last saw them, and changes made elsewhere waiting to be reported.
//!
//! Invariant (RFC 9051 §7.5.1): sequence numbers change only when this session
//! sends EXPUNGE responses, and those are sent only where the RFC allows them
//! (never during FETCH, STORE, SEARCH by sequence number). Until then an
//! expunged message keeps its sequence number and is listed in `pending_expunge`.

use std::collections::{BTreeSet, HashSet};

use mailroom_store::{Flags, Mailbox, MessageMeta, Rights, Store, StoreError};

use crate::proto::response::{Code, Tagged};
use crate::proto::types::SequenceSet;
use crate::proto::untagged::{FetchResponse, Responses, Untagged};

pub struct Selected {
    pub mailbox: Mailbox,
    /// EXAMINE, or SELECT without any right to change messages (RFC 4314 §4).
    pub read_only: bool,
    /// The session's rights on the mailbox when it was selected (all for the owner).
    pub rights: Rights,
    /// The name as this session shows it (`Shared/<owner>/...` for another's).
    pub display_name: String,
    /// Messages in sequence order (ascending UID); index = sequence number - 1.
    messages: Vec<MessageMeta>,
    /// UIDs expunged in the store but not yet reported to the client.
    pending_expunge: BTreeSet<u32>,
    /// UIDs this session reports as \Recent (IMAP4rev1 only).
    recent: HashSet<u32>,
    /// The MODSEQ up to which the view has caught up with the store.
    modseq: u64,
    /// Set when the change feed says the mailbox changed.
    pub dirty: bool,
    /// Keywords announced in the last FLAGS response.
    keywords: BTreeSet<String>,
    /// Keywords that came into the view since (STORE here or elsewhere, new
    /// messages), to announce before the FETCH that shows them (RFC 9051 §7.3.5).
    unannounced: Vec<String>,
    /// SEARCHRES saved result `$` (RFC 5182), as UIDs.
    pub saved: Vec<u32>,
    /// Whether this session claims \Recent (a read-write IMAP4rev1 session).
    claims_recent: bool,
    /// The session enabled QRESYNC: expunges go out as `* VANISHED uids`
    /// (RFC 7162 §3.2.10) instead of `* n EXPUNGE`.
    pub qresync: bool,
}

impl Selected {
    pub fn new(
        mailbox: Mailbox,
        read_only: bool,
        messages: Vec<MessageMeta>,
        recent: HashSet<u32>,
        claims_recent: bool,
    ) -> Self {
        let keywords = messages
            .iter()
            .flat_map(|m| m.flags.keywords.iter().cloned())
            .collect();
        Selected {
            modseq: mailbox.highest_modseq,
            display_name: mailbox.name.clone(),
            mailbox,
            rights: Rights::ALL,
            read_only,
            messages,
            pending_expunge: BTreeSet::new(),
            recent,
            dirty: false,
            keywords,
            unannounced: Vec::new(),
            saved: Vec::new(),
            claims_recent,
            qresync: false,
        }
    }

    /// The MODSEQ the view has caught up to (HIGHESTMODSEQ, RFC 7162 §3.1.2).
    pub fn highest_modseq(&self) -> u64 {
        self.modseq
    }

    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    pub fn recent_count(&self) -> u32 {
        self.recent.len() as u32
    }

    pub fn is_recent(&self, uid: u32) -> bool {
        self.recent.contains(&uid)
    }

    pub fn message(&self, index: usize) -> &MessageMeta {
        &self.messages[index]
    }

    pub fn messages(&self) -> &[MessageMeta] {
        &self.messages
    }

    pub fn is_expunged(&self, uid: u32) -> bool {
        self.pending_expunge.contains(&uid)
    }

    pub fn index_of(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    pub fn first_unseen(&self) -> Option<u32> {
        self.messages
            .iter()
            .position(|m| !m.flags.has(Flags::SEEN))
            .map(|i| i as u32 + 1)
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS]` for the current keywords.
    pub fn flags_responses(&self, out: &mut Responses) {
        let mut names: Vec<String> = Flags::SYSTEM.iter().map(|(_, n)| n.to_string()).collect();
        names.extend(self.keywords.iter().cloned());
        out.push(Untagged::Flags(names.clone()));
        if self.read_only {
            out.status(Tagged::ok_with(
                Code::PermanentFlags(Vec::new()),
                "Read-only mailbox.",
            ));
        } else {
            // Only the flags the session's rights let it change (RFC 4314 §4).
            let write = self.rights.contains(Rights::WRITE);
            let mut permitted: Vec<String> = names
                .into_iter()
                .filter(|n| match Flags::system_bit(n) {
                    Some(Flags::SEEN) => self.rights.contains(Rights::SEEN),
                    Some(Flags::DELETED) => self.rights.contains(Rights::DELETE_MESSAGES),
                    _ => write,
                })
                .collect();
            if write {
                permitted.push("\\*".into());
            }
            out.status(Tagged::ok_with(
                Code::PermanentFlags(permitted),
                "Flags permitted.",
            ));
        }
    }

    /// Resolves a sequence set (by sequence number or by UID) to view indexes,
    /// ascending. Err when a sequence number is out of range (a BAD, RFC 9051 §9).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, String> {
        if *set == SequenceSet::Saved {
            return Ok(self
                .saved
                .iter()
                .filter_map(|&u| self.index_of(u))
                .collect());
        }
        if uid {
            let largest = self.messages.last().map_or(0, |m| m.uid);
            let mut out = Vec::new();
            for (a, b) in set.numbers(largest) {
                let start = self.messages.partition_point(|m| m.uid < a);
                let end = self.messages.partition_point(|m| m.uid <= b);
                out.extend(start..end);
            }
            Ok(out)
        } else {
            let n = self.exists();
            if !set.within(n) {
                return Err(if n == 0 {
                    "No messages in the mailbox".into()
                } else {
                    "Invalid message sequence number".into()
                });
            }
            Ok(set
                .numbers(n)
                .into_iter()
                .flat_map(|(a, b)| (a as usize - 1)..(b as usize))
                .collect())
        }
    }

    /// Records flags this session changed itself (STORE, implicit \Seen), so the
    /// change feed does not report them twice.
    pub fn update_flags(&mut self, meta: &MessageMeta) {
        if let Some(i) = self.index_of(meta.uid) {
            self.note_keywords(&meta.flags);
            self.messages[i] = meta.clone();
        }
    }

    /// Notes the keywords of `flags` the client has not been told about. Only
    /// messages that change are looked at, never the whole mailbox.
    fn note_keywords(&mut self, flags: &Flags) {
        for k in &flags.keywords {
            let known = |x: &String| x.eq_ignore_ascii_case(k);
            if !self.keywords.iter().any(known) && !self.unannounced.iter().any(known) {
                self.unannounced.push(k.clone());
            }
        }
    }

    /// New keywords since the last FLAGS response: announces them, with
    /// PERMANENTFLAGS, before any FETCH that shows them.
    pub fn announce_keywords(&mut self, out: &mut Responses) {
        if self.unannounced.is_empty() {
            return;
        }
        self.keywords.extend(self.unannounced.drain(..));
        self.flags_responses(out);
    }

    /// Removes messages this session expunged itself and writes their EXPUNGE
    /// responses (EXPUNGE, UID EXPUNGE, MOVE, where they are required), or one
    /// VANISHED response under QRESYNC (which renumbers the same way).
    pub fn expunged_by_us(&mut self, uids: &[u32], out: &mut Responses) {
        let mut indexes: Vec<usize> = uids.iter().filter_map(|&u| self.index_of(u)).collect();
        indexes.sort_unstable();
        indexes.dedup();
        if indexes.is_empty() {
            return;
        }
        if self.qresync {
            let uids: Vec<u32> = indexes.iter().map(|&i| self.messages[i].uid).collect();
            out.push(Untagged::Vanished {
                earlier: false,
                uids,
            });
        } else {
            // Each EXPUNGE shifts the later sequence numbers down by one (RFC 9051 §7.5.1).
            for (removed, &i) in indexes.iter().enumerate() {
                out.push(Untagged::Expunge((i - removed + 1) as u32));
            }
        }
        let gone: HashSet<u32> = indexes.iter().map(|&i| self.messages[i].uid).collect();
        self.messages.retain(|m| !gone.contains(&m.uid));
        self.recent.retain(|u| !gone.contains(u));
        self.pending_expunge.retain(|u| !gone.contains(u));
        self.saved.retain(|u| !gone.contains(u));
    }

    /// Catches up with the store and writes the untagged responses the client may
    /// see now: EXPUNGE only if `allow_expunge`, then EXISTS/RECENT for new
    /// messages and FETCH FLAGS for flags changed elsewhere.
    pub async fn refresh(
        &mut self,
        store: &Store,
        allow_expunge: bool,
        rev2: bool,
        condstore: bool,
        out: &mut Responses,
    ) -> Result<(), StoreError> {
        let mut flag_changes = Vec::new();
        let mut added = false;
        if self.dirty {
            self.dirty = false;
            let changes = store.changes_since(self.mailbox.id, self.modseq).await?;
            for uid in changes.expunged {
                if self.index_of(uid).is_some() {
                    self.pending_expunge.insert(uid);
                }
            }
            let max_uid = self.messages.last().map_or(0, |m| m.uid);
            let mut new = Vec::new();
            for meta in changes.changed {
                if meta.uid > max_uid {
                    self.note_keywords(&meta.flags);
                    new.push(meta);
                } else if let Some(i) = self.index_of(meta.uid) {
                    self.note_keywords(&meta.flags);
                    if self.messages[i].flags != meta.flags {
                        flag_changes.push(meta.uid);
                    }
                    self.messages[i] = meta;
                }
            }
            if !new.is_empty() {
                added = true;
                if self.claims_recent && !rev2 {
                    let (before, after) = store.claim_recent(self.mailbox.id).await?;
                    for m in &new {
                        if m.uid > before && m.uid <= after {
                            self.recent.insert(m.uid);
                        }
                    }
                }
                self.messages.extend(new);
            }
            self.modseq = self.modseq.max(changes.highest_modseq);
            self.mailbox.uid_next = changes.uid_next;
        }
        if allow_expunge && !self.pending_expunge.is_empty() {
            let uids: Vec<u32> = std::mem::take(&mut self.pending_expunge)
                .into_iter()
                .collect();
            self.expunged_by_us(&uids, out);
        }
        self.announce_keywords(out);
        if added {
            out.push(Untagged::Exists(self.exists()));
            if !rev2 {
                out.push(Untagged::Recent(self.recent_count()));
            }
        }
        for uid in flag_changes {
            if let Some(i) = self.index_of(uid)
                && !self.pending_expunge.contains(&uid)
            {
                let m = &self.messages[i];
                let recent = !rev2 && self.recent.contains(&uid);
                out.fetch(&FetchResponse::flags_update(
                    i as u32 + 1,
                    Some(uid),
                    Some((&m.flags, recent)),
                    condstore.then_some(m.modseq),
                ));
            }
        }
        Ok(())
    }
}
