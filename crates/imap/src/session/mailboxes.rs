//! Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
//! UNSUBSCRIBE, LIST (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154
//! SPECIAL-USE), LSUB, STATUS and APPEND (RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID).

use std::collections::{BTreeMap, HashSet};

use mailroom_store::{DELIMITER, Flags, Mailbox, Rights, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};

use super::acl::{SHARED_ROOT, display_name, nonexistent};
use super::{CmdResult, Code, Error, Session, Tagged};
use crate::proto::types::{AppendMessage, ListReturn, ListSelection, Qresync, StatusItem};
use crate::proto::untagged::{FetchResponse, Responses, Untagged};
use crate::selected::Selected;

/// `*` matches anything, `%` anything but the delimiter (RFC 9051 §6.3.9).
/// Dynamic programming over (pattern, name) positions: O(p * n) whatever the
/// pattern, so hostile patterns cannot make LIST slow.
fn pattern_matches(pattern: &[char], name: &[char]) -> bool {
    // Consecutive `*` are one `*`; a pattern with more literal characters than
    // the name has cannot match.
    let mut p: Vec<char> = Vec::with_capacity(pattern.len());
    for &c in pattern {
        if c == '*' && p.last() == Some(&'*') {
            continue;
        }
        p.push(c);
    }
    if p.iter().filter(|c| **c != '*' && **c != '%').count() > name.len() {
        return false;
    }
    // row[j]: p[i..] matches name[j..], computed from the last pattern position back.
    let n = name.len();
    let mut next = vec![false; n + 1];
    next[n] = true;
    for &c in p.iter().rev() {
        let mut row = vec![false; n + 1];
        for j in (0..=n).rev() {
            row[j] = match c {
                '*' => next[j] || (j < n && row[j + 1]),
                '%' => next[j] || (j < n && name[j] != DELIMITER && row[j + 1]),
                _ => j < n && name[j] == c && next[j + 1],
            };
        }
        next = row;
    }
    next[0]
}

/// Matches a mailbox name against a pattern, treating a leading INBOX in
/// either case-insensitively.
fn matches(pattern: &str, name: &str) -> bool {
    let canon = |s: &str| -> Vec<char> {
        if let (Some(head), Some(tail)) = (s.get(..5), s.get(5..))
            && head.eq_ignore_ascii_case("INBOX")
            && (tail.is_empty() || tail.starts_with(DELIMITER))
        {
            format!("INBOX{tail}").chars().collect()
        } else {
            s.chars().collect()
        }
    };
    pattern_matches(&canon(pattern), &canon(name))
}

/// Names with LIST wildcards could never be listed on their own (RFC 9051 §5.1).
fn refuse_wildcards(name: &str) -> Option<Tagged> {
    name.contains(['*', '%'])
        .then(|| Tagged::no(Code::Cannot, "Mailbox names cannot contain * or %"))
}

const SPECIAL_USES: [&str; 7] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    fn name_or_no(&self, wire: &str) -> Result<String, Tagged> {
        self.mailbox_name(wire)
    }

    /// The QRESYNC part of SELECT/EXAMINE (RFC 7162 §3.2.5.1), when the client's
    /// UIDVALIDITY is still valid: `* VANISHED (EARLIER)` for the UIDs it knows
    /// that were expunged after its MODSEQ, then FETCH UID FLAGS MODSEQ for the
    /// messages it knows that changed since.
    async fn resync(&self, sel: &Selected, q: &Qresync, out: &mut Responses) -> Result<(), Error> {
        // Message sequence match data (RFC 7162 §3.2.5.2) lets a server that
        // forgot old expunges narrow its answer. mailroom's expunge log is never
        // trimmed (rows go only with their mailbox, and a mailbox made again gets
        // a new UIDVALIDITY), so the log answers exactly for any MODSEQ and the
        // pairs, checked by the parser, are not needed; Dovecot does the same.
        // UIDs still in the view were expunged after it was read: they go out as
        // plain VANISHED with the next update, not here (EARLIER does not renumber).
        let vanished: Vec<u32> = self
            .store
            .expunged_since(sel.mailbox.id, q.modseq)
            .await?
            .into_iter()
            .filter(|&u| q.knows(u) && sel.index_of(u).is_none())
            .collect();
        out.push(Untagged::Vanished {
            earlier: true,
            uids: vanished,
        });
        for (i, m) in sel.messages().iter().enumerate() {
            if m.modseq > q.modseq && q.knows(m.uid) {
                let recent = !self.rev2 && sel.is_recent(m.uid);
                out.fetch(&FetchResponse::flags_update(
                    i as u32 + 1,
                    Some(m.uid),
                    Some((&m.flags, recent)),
                    Some(m.modseq),
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn select(
        &mut self,
        wire: &str,
        read_only: bool,
        qresync: Option<&Qresync>,
    ) -> CmdResult {
        let examine = read_only;
        // Selecting (even unsuccessfully) closes the current mailbox without expunging.
        // [CLOSED] (RFC 9051 §7.1, RFC 7162); Dovecot sends it to IMAP4rev1 clients too.
        if self.state.unselect().is_some() {
            self.out
                .status(Tagged::ok_with(Code::Closed, "Previous mailbox closed"));
        }
        let resolved = match self.resolve(wire, Rights::READ).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        let mailbox = resolved.mailbox.clone();
        if mailbox.noselect {
            return Err(Tagged::no(Code::Cannot, "Mailbox is not selectable").into());
        }
        // Without any right to change messages the selection is read-only, and
        // says so (RFC 4314 §4, as Dovecot does).
        let may_change = resolved.rights.intersects(
            Rights::SEEN
                .union(Rights::WRITE)
                .union(Rights::DELETE_MESSAGES)
                .union(Rights::EXPUNGE),
        );
        let read_only = read_only || !may_change;
        // Read the mailbox row first, then the index: the index is at least as new as
        // its MODSEQ, so the change feed can only repeat changes, never miss one.
        let messages = self.store.message_index(mailbox.id).await?;
        let claims_recent = !self.rev2 && !read_only;
        let mut recent = HashSet::new();
        if claims_recent {
            let (before, after) = self.store.claim_recent(mailbox.id).await?;
            recent.extend(
                messages
                    .iter()
                    .map(|m| m.uid)
                    .filter(|&u| u > before && u <= after),
            );
        }
        let mut status_recent = recent.len() as u32;
        if read_only && !self.rev2 {
            status_recent = self.store.mailbox_status(mailbox.id).await?.recent;
        }
        // Changes committed since we read the index arrive through the feed.
        while self.changes.try_recv().is_ok() {}
        let mut sel = Selected::new(mailbox, read_only, messages, recent, claims_recent);
        sel.qresync = self.qresync;
        sel.rights = resolved.rights;
        sel.display_name = resolved.location.display();
        sel.dirty = true;
        let mut out = Responses::default();
        sel.flags_responses(&mut out);
        out.push(Untagged::Exists(sel.exists()));
        if !self.rev2 {
            out.push(Untagged::Recent(status_recent));
            if let Some(first) = sel.first_unseen() {
                out.status(Tagged::ok_with(Code::Unseen(first), "First unseen"));
            }
        }
        out.status(Tagged::ok_with(
            Code::UidValidity(sel.mailbox.uid_validity),
            "UIDs valid",
        ));
        out.status(Tagged::ok_with(
            Code::UidNext(sel.mailbox.uid_next),
            "Predicted next UID",
        ));
        if self.condstore {
            out.status(Tagged::ok_with(
                Code::HighestModSeq(sel.highest_modseq()),
                "Highest",
            ));
        }
        if self.rev2 {
            out.push(Untagged::List {
                lsub: false,
                attributes: Vec::new(),
                mailbox: self.shown(sel.display_name.clone()),
                child_info: Vec::new(),
            });
        }
        if let Some(q) = qresync
            && q.uid_validity == sel.mailbox.uid_validity
        {
            self.resync(&sel, q, &mut out).await?;
        }
        self.out.append(&mut out);
        self.state.select(Box::new(sel));
        let verb = if examine { "EXAMINE" } else { "SELECT" };
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        Ok(Tagged::ok_with(code, format!("{verb} completed")))
    }

    pub(super) async fn create(&mut self, wire: &str, special_use: &[String]) -> CmdResult {
        let name = match self.name_or_no(wire) {
            Ok(n) => n,
            Err(t) => return Err(t.into()),
        };
        let mut use_attr = None;
        for attr in special_use {
            match SPECIAL_USES.iter().find(|s| s.eq_ignore_ascii_case(attr)) {
                Some(s) if use_attr.is_none() => use_attr = Some(*s),
                Some(_) => {
                    return Err(Tagged::no(
                        Code::UseAttr,
                        "Only one special-use attribute per mailbox",
                    )
                    .into());
                }
                None => {
                    return Err(Tagged::no(
                        Code::UseAttr,
                        format!("{attr} is not a special-use attribute"),
                    )
                    .into());
                }
            }
        }
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(Tagged::no(Code::AlreadyExists, "Mailbox already exists").into());
        }
        if let Some(t) = refuse_wildcards(&name) {
            return Err(t.into());
        }
        let location = match self.locate(&name).await? {
            Ok(l) => l,
            Err(r) => {
                return Err(r
                    .answer(Tagged::no(
                        Code::Cannot,
                        "No such user in the shared namespace",
                    ))
                    .into());
            }
        };
        if location.owner.is_some() {
            // Inside another account: the `k` right on the superior (RFC 4314 §4).
            let Some(parent) = location.parent() else {
                return Err(Tagged::no(
                    Code::NoPerm,
                    "Mailboxes of another account are created inside a shared one",
                )
                .into());
            };
            let parent = display_name(location.owner.as_deref(), parent);
            if let Err(r) = self.resolve_name(&parent, Rights::CREATE).await? {
                return Err(r.answer(nonexistent()).into());
            }
        }
        match self
            .store
            .create_mailbox(location.account_id, &location.name, use_attr)
            .await
        {
            Ok(_) => Ok(Tagged::ok("CREATE completed")),
            Err(StoreError::AlreadyExists { .. }) => {
                Err(Tagged::no(Code::AlreadyExists, "Mailbox already exists").into())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn delete(&mut self, wire: &str) -> CmdResult {
        let name = match self.name_or_no(wire) {
            Ok(n) => n,
            Err(t) => return Err(t.into()),
        };
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(Tagged::no(Code::Cannot, "INBOX cannot be deleted").into());
        }
        // The `x` right (RFC 4314 §4); always the owner's.
        let mb = match self.resolve_name(&name, Rights::DELETE_MAILBOX).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        // RFC 9051 §6.3.5: a \Noselect mailbox with inferiors cannot be deleted; the
        // store says so with HasChildren, answered NO [HASCHILDREN] (§7.1).
        self.store
            .delete_mailbox(mb.location.account_id, &mb.location.name)
            .await?;
        Ok(Tagged::ok("DELETE completed"))
    }

    pub(super) async fn rename(&mut self, from: &str, to: &str) -> CmdResult {
        let (from, to) = match (self.name_or_no(from), self.name_or_no(to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(t), _) | (_, Err(t)) => return Err(t.into()),
        };
        if let Some(t) = refuse_wildcards(&to) {
            return Err(t.into());
        }
        // `x` on the mailbox renamed, `k` on the new superior (RFC 4314 §4).
        let source = match self.resolve_name(&from, Rights::DELETE_MAILBOX).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        let target = match self.locate(&to).await? {
            Ok(l) => l,
            Err(r) => {
                return Err(r
                    .answer(Tagged::no(
                        Code::Cannot,
                        "No such user in the shared namespace",
                    ))
                    .into());
            }
        };
        if target.account_id != source.location.account_id {
            return Err(Tagged::no(
                Code::Cannot,
                "A mailbox cannot be renamed into another account",
            )
            .into());
        }
        if target.owner.is_some() {
            let Some(parent) = target.parent() else {
                return Err(Tagged::no(
                    Code::NoPerm,
                    "Mailboxes of another account are renamed inside a shared one",
                )
                .into());
            };
            let parent = display_name(target.owner.as_deref(), parent);
            if let Err(r) = self.resolve_name(&parent, Rights::CREATE).await? {
                return Err(r.answer(nonexistent()).into());
            }
        }
        match self
            .store
            .rename_mailbox(target.account_id, &source.location.name, &target.name)
            .await
        {
            Ok(_) => Ok(Tagged::ok("RENAME completed")),
            Err(StoreError::AlreadyExists { .. }) => {
                Err(Tagged::no(Code::AlreadyExists, "Target mailbox already exists").into())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn subscribe(&mut self, wire: &str, on: bool) -> CmdResult {
        let name = match self.name_or_no(wire) {
            Ok(n) => n,
            Err(t) => return Err(t.into()),
        };
        if on {
            self.store
                .subscribe_mailbox(self.account_id()?, &name)
                .await?;
            Ok(Tagged::ok("SUBSCRIBE completed"))
        } else {
            match self
                .store
                .unsubscribe_mailbox(self.account_id()?, &name)
                .await
            {
                // Dovecot answers OK for a name that was not subscribed.
                Ok(()) | Err(StoreError::NotFound { .. }) => {
                    Ok(Tagged::ok("UNSUBSCRIBE completed"))
                }
                Err(e) => Err(e.into()),
            }
        }
    }

    /// Every mailbox LIST and LSUB may show, by the name this session sees: its own,
    /// then other accounts' it has `l` on as `Shared/<owner>/<name>` (without their
    /// special use, which is the owner's business), under `\\Noselect` placeholders
    /// `Shared` and `Shared/<owner>` as Dovecot lists them. Also the names of those
    /// it may not read (no STATUS for them).
    async fn visible_mailboxes(&self) -> Result<(Vec<Mailbox>, HashSet<String>), Error> {
        let mut all = self.store.list_mailboxes(self.account_id()?).await?;
        let shared = self.store.shared_mailboxes(self.account_id()?).await?;
        let mut unreadable = HashSet::new();
        let placeholder = |name: String| Mailbox {
            id: 0,
            account_id: 0,
            name,
            uid_validity: 0,
            uid_next: 0,
            highest_modseq: 0,
            special_use: None,
            noselect: true,
        };
        if !shared.is_empty() {
            all.push(placeholder(SHARED_ROOT.to_string()));
        }
        let mut owners = HashSet::new();
        // Shared names listed so far; they come by owner and name, so a mailbox's
        // superiors come before it.
        let mut listed = HashSet::new();
        for s in shared {
            if owners.insert(s.owner.clone()) {
                all.push(placeholder(format!("{SHARED_ROOT}/{}", s.owner)));
            }
            // Superiors not shared with this account stay in the hierarchy as
            // `\Noselect` levels, so `%` walks down to what is shared (RFC 9051
            // §6.3.9).
            for (i, _) in s.mailbox.name.match_indices(DELIMITER) {
                let superior = display_name(Some(&s.owner), &s.mailbox.name[..i]);
                if listed.insert(superior.clone()) {
                    all.push(placeholder(superior));
                }
            }
            let name = display_name(Some(&s.owner), &s.mailbox.name);
            listed.insert(name.clone());
            if !s.rights.contains(Rights::READ) {
                unreadable.insert(name.clone());
            }
            all.push(Mailbox {
                name,
                special_use: None,
                ..s.mailbox
            });
        }
        Ok((all, unreadable))
    }

    /// Decodes a LIST pattern; `*` and `%` survive modified UTF-7 decoding.
    fn pattern_name(&self, reference: &str, pattern: &str) -> String {
        let joined = format!("{reference}{pattern}");
        if self.utf8 {
            joined
        } else {
            crate::proto::utf7::decode(&joined).unwrap_or(joined)
        }
    }

    pub(super) async fn list(
        &mut self,
        reference: &str,
        patterns: &[String],
        selection: ListSelection,
        returns: ListReturn,
        extended: bool,
    ) -> CmdResult {
        if !extended && patterns.len() == 1 && patterns[0].is_empty() {
            // RFC 9051 §6.3.9: the hierarchy delimiter and root.
            self.out.push(Untagged::List {
                lsub: false,
                attributes: vec!["\\Noselect".into()],
                mailbox: self.shown(""),
                child_info: Vec::new(),
            });
            return Ok(Tagged::ok("LIST completed"));
        }
        let account = self.account_id()?;
        let (all, unreadable) = self.visible_mailboxes().await?;
        let by_name: BTreeMap<&str, &Mailbox> = all.iter().map(|m| (m.name.as_str(), m)).collect();
        let need_subs = selection.subscribed || returns.subscribed;
        let subs: Vec<String> = if need_subs {
            self.store.subscriptions(account).await?
        } else {
            Vec::new()
        };
        let subscribed: HashSet<&str> = subs.iter().map(String::as_str).collect();
        let patterns: Vec<String> = patterns
            .iter()
            .map(|p| self.pattern_name(reference, p))
            .collect();
        let matched = |name: &str| patterns.iter().any(|p| matches(p, name));
        let has_children = |name: &str| {
            let prefix = format!("{name}{DELIMITER}");
            all.iter().any(|m| m.name.starts_with(&prefix))
        };
        // Special-use attributes in every LIST response, as Dovecot does (RFC 6154 §2 allows it).
        let show_special = true;
        let show_children = !selection.subscribed || returns.children;

        // Candidates: (name, extra CHILDINFO)
        let mut names: Vec<(String, bool)> = Vec::new();
        if selection.subscribed {
            let mut seen = HashSet::new();
            for s in &subs {
                if matched(s) && seen.insert(s.clone()) {
                    names.push((s.clone(), false));
                }
            }
            if selection.recursive_match {
                // Parents that match and have subscribed descendants (RFC 5258 §3.5).
                for s in &subs {
                    let mut parent = s.as_str();
                    while let Some(i) = parent.rfind(DELIMITER) {
                        parent = &parent[..i];
                        if matched(parent)
                            && !subscribed.contains(parent)
                            && seen.insert(parent.to_string())
                        {
                            names.push((parent.to_string(), true));
                        }
                    }
                }
            }
        } else {
            for m in &all {
                if selection.special_use && m.special_use.is_none() {
                    continue;
                }
                if matched(&m.name) {
                    names.push((m.name.clone(), false));
                }
            }
        }
        names.sort_by(|a, b| (a.0 != "INBOX", &a.0).cmp(&(b.0 != "INBOX", &b.0)));

        let mut out = Responses::default();
        let mut status_of = Vec::new();
        for (name, childinfo) in &names {
            let mb = by_name.get(name.as_str());
            let mut attrs: Vec<&str> = Vec::new();
            match mb {
                None => attrs.push("\\NonExistent"),
                Some(mb) => {
                    if mb.noselect {
                        attrs.push("\\Noselect");
                    }
                    // With the SUBSCRIBED selection, children only when asked for
                    // (RFC 5258 §4), as Dovecot does.
                    if show_children {
                        attrs.push(if has_children(name) {
                            "\\HasChildren"
                        } else {
                            "\\HasNoChildren"
                        });
                    }
                    if show_special && let Some(su) = &mb.special_use {
                        attrs.push(su.as_str());
                    }
                    if !mb.noselect && returns.status.is_some() && !unreadable.contains(name) {
                        status_of.push((name.clone(), mb.id));
                    }
                }
            }
            if need_subs && subscribed.contains(name.as_str()) {
                attrs.push("\\Subscribed");
            }
            out.push(Untagged::List {
                lsub: false,
                attributes: attrs.into_iter().map(String::from).collect(),
                mailbox: self.shown(name.clone()),
                child_info: if *childinfo {
                    vec!["SUBSCRIBED".into()]
                } else {
                    Vec::new()
                },
            });
            if let Some(items) = &returns.status
                && let Some((n, id)) = status_of.last()
                && n == name
            {
                out.push(self.status_response(*id, n, items).await?);
            }
        }
        self.out.append(&mut out);
        Ok(Tagged::ok("LIST completed"))
    }

    pub(super) async fn lsub(&mut self, reference: &str, pattern: &str) -> CmdResult {
        let account = self.account_id()?;
        let pattern = self.pattern_name(reference, pattern);
        let subs = self.store.subscriptions(account).await?;
        let (all, _) = self.visible_mailboxes().await?;
        let mut lines: BTreeMap<String, bool> = BTreeMap::new();
        for s in &subs {
            if matches(&pattern, s) {
                let noselect = all.iter().any(|m| m.name == *s && m.noselect);
                lines.insert(s.clone(), noselect);
            } else {
                // RFC 3501 §6.3.9: with `%`, a parent of a subscribed name that is
                // not itself subscribed is listed \Noselect.
                let mut parent = s.as_str();
                while let Some(i) = parent.rfind(DELIMITER) {
                    parent = &parent[..i];
                    if matches(&pattern, parent) && !subs.iter().any(|x| x == parent) {
                        lines.entry(parent.to_string()).or_insert(true);
                    }
                }
            }
        }
        for (name, noselect) in lines {
            let attributes = if noselect {
                vec!["\\Noselect".into()]
            } else {
                Vec::new()
            };
            self.out.push(Untagged::List {
                lsub: true,
                attributes,
                mailbox: self.shown(name),
                child_info: Vec::new(),
            });
        }
        Ok(Tagged::ok("LSUB completed"))
    }

    async fn status_response(
        &self,
        mailbox_id: i64,
        name: &str,
        items: &[StatusItem],
    ) -> Result<Untagged, Error> {
        let st = self.store.mailbox_status(mailbox_id).await?;
        let mut values = Vec::new();
        for item in items {
            let v = match item {
                StatusItem::Messages => st.messages as u64,
                StatusItem::UidNext => st.uid_next as u64,
                StatusItem::UidValidity => st.uid_validity as u64,
                StatusItem::Unseen => st.unseen as u64,
                StatusItem::Deleted => st.deleted as u64,
                StatusItem::Size => st.size,
                StatusItem::HighestModSeq => st.highest_modseq,
                StatusItem::DeletedStorage => self.store.deleted_size(mailbox_id).await? / 1024,
                StatusItem::Recent => {
                    if self.rev2 {
                        continue;
                    }
                    st.recent as u64
                }
            };
            values.push((item.name().to_string(), v));
        }
        Ok(Untagged::MailboxStatus {
            mailbox: self.shown(name),
            items: values,
        })
    }

    pub(super) async fn status(&mut self, wire: &str, items: &[StatusItem]) -> CmdResult {
        if items.contains(&StatusItem::HighestModSeq) {
            let highest = self.state.selected().map(Selected::highest_modseq);
            self.enable_condstore(highest);
        }
        let resolved = match self.resolve(wire, Rights::READ).await? {
            Ok(r) => r,
            Err(r) => return Err(r.answer(nonexistent()).into()),
        };
        let mb = &resolved.mailbox;
        if mb.noselect {
            return Err(Tagged::no(Code::Cannot, "Mailbox is not selectable").into());
        }
        let status = self
            .status_response(mb.id, &resolved.location.display(), items)
            .await?;
        self.out.push(status);
        Ok(Tagged::ok("STATUS completed"))
    }

    pub(super) async fn append(&mut self, wire: &str, messages: Vec<AppendMessage>) -> CmdResult {
        let resolved = match self.resolve(wire, Rights::INSERT).await? {
            Ok(r) => r,
            Err(r) => {
                return Err(r
                    .answer(Tagged::no(Code::TryCreate, "Mailbox does not exist"))
                    .into());
            }
        };
        let mb = &resolved.mailbox;
        if mb.noselect {
            return Err(Tagged::no(Code::Cannot, "Mailbox is not selectable").into());
        }
        let max = self.config.limits.max_message_size.0;
        let mut prepared = Vec::with_capacity(messages.len());
        for m in messages {
            let flags = match Flags::from_names(&m.flags) {
                // Flags the session may not set are dropped (RFC 4314 §4).
                Ok(f) => f.within_rights(&Flags::default(), resolved.rights),
                Err(e) => return Err(Tagged::bad(format!("Invalid flag: {e}")).into()),
            };
            if m.data.is_empty() {
                return Err(Tagged::no(Code::Cannot, "Cannot append an empty message").into());
            }
            if m.data.len() as u64 > max {
                return Err(Tagged::no(
                    Code::TooBig,
                    format!("Message too large (the limit is {max} octets)"),
                )
                .into());
            }
            prepared.push((m.data, flags, m.date));
        }
        // MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): one transaction.
        let (validity, uids) = self.store.append_many(mb.id, prepared).await?;
        Ok(Tagged::ok_with(
            Code::AppendUid { validity, uids },
            "APPEND completed",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn list_patterns() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "a"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("a*", "a/b/c"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("Inbox/%", "INBOX/x"));
        assert!(!matches("inbox2", "INBOX"));
        assert!(matches("%/%", "a/b"));
        assert!(matches("Entw*", "Entwürfe"));
        assert!(matches("*", "äöü"));
        assert!(!matches("inbox", "ä"));
        assert!(!matches("b", "a"));
        assert!(matches(
            "*%*%*%*%*%*%*%*%*%*%*%",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"
        ));
        assert!(!matches(&"*a".repeat(500), &"a".repeat(499)));
        assert!(!matches(
            &format!("{}b", "*a".repeat(400)),
            &"a".repeat(1000)
        ));
        assert!(matches("a%c", "abc") && !matches("a%c", "a/c") && matches("a*c", "a/b/c"));
        assert!(matches("%", "") && matches("", ""));
    }
}
