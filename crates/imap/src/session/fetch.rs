//! FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY).
//!
//! ENVELOPE, BODY and BODYSTRUCTURE come pre-encoded from the store; sections are
//! cut from the raw message by mailroom-message. Non-PEEK body fetches set \Seen
//! first and report the new flags in the same FETCH response (as Dovecot does).

use std::borrow::Cow;
use std::collections::HashMap;

use mailroom_store::{ContentViews, FlagOp, Flags, MessageInfo, MessageMeta, Rights, uid_ranges};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{CmdResult, Code, Error, Session, Tagged};
use crate::proto::types::{FetchAttr, SequenceSet};
use crate::proto::untagged::{FetchItem, FetchResponse, Untagged};
use crate::selected::Selected;

/// Applies `<origin.length>` to section data.
fn partial(mut data: Vec<u8>, range: Option<(u32, u32)>) -> Vec<u8> {
    if let Some((start, len)) = range {
        let start = (start as usize).min(data.len());
        let end = start.saturating_add(len as usize).min(data.len());
        data.truncate(end);
        data.drain(..start);
    }
    data
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// UID FETCH (CHANGEDSINCE m VANISHED) (RFC 7162 §3.2.6): `* VANISHED
    /// (EARLIER)` for the UIDs of `set` expunged after `since`, before the FETCH
    /// responses. `*` stands for UIDNEXT - 1 here, so expunges at the end of the
    /// mailbox are reported too. UIDs still in this session's view (expunged
    /// elsewhere, not yet reported) are left to the plain VANISHED at the end of
    /// the command, which renumbers.
    async fn vanished_earlier(
        &mut self,
        sel: &Selected,
        set: &SequenceSet,
        since: u64,
    ) -> Result<(), Error> {
        let largest = sel
            .mailbox
            .uid_next
            .saturating_sub(1)
            .max(sel.messages().last().map_or(0, |m| m.uid));
        let ranges = if *set == SequenceSet::Saved {
            let mut saved = sel.saved.clone();
            saved.sort_unstable();
            uid_ranges(&saved)
                .into_iter()
                .map(|r| (*r.start(), *r.end()))
                .collect()
        } else {
            set.numbers(largest)
        };
        let expunged = self.store.expunged_since(sel.mailbox.id, since).await?;
        let vanished: Vec<u32> = expunged
            .into_iter()
            .filter(|&u| {
                let i = ranges.partition_point(|&(_, b)| b < u);
                ranges.get(i).is_some_and(|&(a, _)| a <= u) && sel.index_of(u).is_none()
            })
            .collect();
        self.out.push(Untagged::Vanished {
            earlier: true,
            uids: vanished,
        });
        Ok(())
    }

    pub(super) async fn fetch(
        &mut self,
        sel: &mut Selected,
        uid: bool,
        set: &SequenceSet,
        attrs: Vec<FetchAttr>,
        changed_since: Option<u64>,
        vanished: bool,
    ) -> CmdResult {
        if changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq) {
            self.enable_condstore(Some(sel.highest_modseq()));
        }
        if vanished && let Some(since) = changed_since {
            self.vanished_earlier(sel, set, since).await?;
        }
        // CHANGEDSINCE: only messages changed after that MODSEQ (RFC 7162 §3.1.4.1).
        let indexes: Vec<usize> = sel
            .resolve(set, uid)
            .map_err(Tagged::bad)?
            .into_iter()
            .filter(|&i| changed_since.is_none_or(|m| sel.message(i).modseq > m))
            .collect();
        let attrs = complete_attrs(attrs, uid, changed_since.is_some(), self.condstore);
        let needs = Needs::of(&attrs);
        let uids: Vec<u32> = indexes
            .iter()
            .map(|&i| sel.message(i).uid)
            .filter(|u| !sel.is_expunged(*u))
            .collect();
        // Messages expunged elsewhere but not yet reported: omitted. By sequence number
        // the client asked for them explicitly and learns why (RFC 9051 §7.1 EXPUNGEISSUED);
        // by UID they are simply gone, as in Dovecot.
        let mut expunge_issued = !uid && uids.len() != indexes.len();
        // Implicit \Seen (RFC 9051 §6.4.5), before the data is sent.
        let seen_now = if attrs.iter().any(FetchAttr::sets_seen) {
            self.set_seen(sel, &uids).await?
        } else {
            Vec::new()
        };
        let infos: HashMap<u32, MessageInfo> = if needs.info && !uids.is_empty() {
            self.store
                .fetch_info(sel.mailbox.id, &uid_ranges(&uids))
                .await?
                .into_iter()
                .map(|i| (i.uid, i))
                .collect()
        } else {
            HashMap::new()
        };
        for &index in &indexes {
            let meta = sel.message(index);
            if sel.is_expunged(meta.uid) {
                continue;
            }
            let info = infos.get(&meta.uid);
            if needs.info && info.is_none() {
                // Expunged after our view was last synchronised.
                expunge_issued |= !uid;
                continue;
            }
            let views = match (needs.views, info) {
                (true, Some(info)) => Some(self.store.content_views(info.content_id).await?),
                _ => None,
            };
            let raw = match (needs.raw, info) {
                (true, Some(info)) => Some(self.store.content_raw(info.content_id).await?),
                _ => None,
            };
            let message = Message {
                meta,
                recent: !self.rev2 && sel.is_recent(meta.uid),
                info,
                views: views.as_ref(),
                raw: raw.as_deref().unwrap_or_default(),
            };
            let mut items = Vec::with_capacity(attrs.len() + 1);
            for attr in &attrs {
                match message.item(attr) {
                    Ok(item) => items.extend(item),
                    Err(UnknownCte) => {
                        return Err(Tagged::no(
                            Code::UnknownCte,
                            "Cannot decode the content transfer encoding of that part",
                        )
                        .into());
                    }
                }
            }
            if seen_now.contains(&meta.uid) && !attrs.contains(&FetchAttr::Flags) {
                // The new flags go first (after UID), where Dovecot puts them.
                let at = usize::from(attrs.first() == Some(&FetchAttr::Uid)).min(items.len());
                items.insert(at, FetchItem::flags(&meta.flags, message.recent));
                if self.condstore && !attrs.contains(&FetchAttr::ModSeq) {
                    items.push(FetchItem::ModSeq(meta.modseq));
                }
            }
            self.out.fetch(&FetchResponse {
                seq: index as u32 + 1,
                items,
            });
            if self.out.len() > 256 * 1024 {
                self.flush_out().await?;
            }
        }
        if expunge_issued {
            return Err(Tagged::no(
                Code::ExpungeIssued,
                "Some of the requested messages no longer exist",
            )
            .into());
        }
        Ok(Tagged::ok("FETCH completed"))
    }

    /// Sets \Seen on the messages of `uids` that lack it, for a FETCH of a body
    /// without PEEK; the UIDs whose flags changed. Only with the `s` right (RFC
    /// 4314 §4; without it the fetch is a peek), never in a read-only mailbox.
    async fn set_seen(&self, sel: &mut Selected, uids: &[u32]) -> Result<Vec<u32>, Error> {
        if sel.read_only || !self.selected_rights(sel).await?.contains(Rights::SEEN) {
            return Ok(Vec::new());
        }
        let unseen: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| {
                sel.index_of(*u)
                    .is_some_and(|i| !sel.message(i).flags.has(Flags::SEEN))
            })
            .collect();
        if unseen.is_empty() {
            return Ok(Vec::new());
        }
        let seen = Flags {
            system: Flags::SEEN,
            ..Flags::default()
        };
        let update = self
            .store
            .store_flags(sel.mailbox.id, uid_ranges(&unseen), FlagOp::Add, seen, None)
            .await?;
        for meta in &update.messages {
            sel.update_flags(meta);
        }
        Ok(update.changed)
    }
}

/// The attributes as answered: UID FETCH always returns UID (first); CHANGEDSINCE
/// implies MODSEQ (RFC 7162 §3.1.4.1), and with CONDSTORE every FETCH carrying
/// FLAGS carries MODSEQ (§3.1.4).
fn complete_attrs(
    mut attrs: Vec<FetchAttr>,
    uid: bool,
    changed_since: bool,
    condstore: bool,
) -> Vec<FetchAttr> {
    if uid && !attrs.contains(&FetchAttr::Uid) {
        attrs.insert(0, FetchAttr::Uid);
    }
    if (changed_since || (condstore && attrs.contains(&FetchAttr::Flags)))
        && !attrs.contains(&FetchAttr::ModSeq)
    {
        attrs.push(FetchAttr::ModSeq);
    }
    attrs
}

/// What the store must be asked for to answer the attributes.
struct Needs {
    /// Size, date and content id (anything beyond UID, FLAGS and MODSEQ).
    info: bool,
    /// ENVELOPE, BODY, BODYSTRUCTURE.
    views: bool,
    /// The message itself.
    raw: bool,
}

impl Needs {
    fn of(attrs: &[FetchAttr]) -> Needs {
        Needs {
            info: attrs
                .iter()
                .any(|a| !matches!(a, FetchAttr::Uid | FetchAttr::Flags | FetchAttr::ModSeq)),
            views: attrs.iter().any(|a| {
                matches!(
                    a,
                    FetchAttr::Envelope | FetchAttr::Body | FetchAttr::BodyStructure
                )
            }),
            raw: attrs.iter().any(|a| {
                matches!(
                    a,
                    FetchAttr::Rfc822
                        | FetchAttr::Rfc822Header
                        | FetchAttr::Rfc822Text
                        | FetchAttr::BodySection { .. }
                        | FetchAttr::Binary { .. }
                        | FetchAttr::BinarySize { .. }
                )
            }),
        }
    }
}

/// BINARY of a part whose Content-Transfer-Encoding we cannot decode (RFC 3516
/// §4.3 `[UNKNOWN-CTE]`).
struct UnknownCte;

/// One message as FETCH sees it: what the session knows and what the store
/// returned for the attributes asked.
struct Message<'a> {
    meta: &'a MessageMeta,
    /// Shown with `\Recent` (IMAP4rev1 only).
    recent: bool,
    info: Option<&'a MessageInfo>,
    views: Option<&'a ContentViews>,
    raw: &'a [u8],
}

impl<'a> Message<'a> {
    /// The data item for one attribute; None when the store had nothing for it.
    fn item(&self, attr: &FetchAttr) -> Result<Option<FetchItem<'a>>, UnknownCte> {
        let Message {
            meta,
            recent,
            info,
            views,
            raw,
        } = *self;
        let item = match attr {
            FetchAttr::Uid => Some(FetchItem::Uid(meta.uid)),
            FetchAttr::ModSeq => Some(FetchItem::ModSeq(meta.modseq)),
            FetchAttr::Flags => Some(FetchItem::flags(&meta.flags, recent)),
            FetchAttr::InternalDate => info.map(|info| FetchItem::InternalDate {
                unix: info.internal_date,
                offset_minutes: info.internal_offset,
            }),
            FetchAttr::Rfc822Size => info.map(|info| FetchItem::Rfc822Size(info.size)),
            FetchAttr::Envelope => views
                .as_ref()
                .map(|v| FetchItem::Envelope(Cow::Borrowed(v.envelope.as_str()))),
            FetchAttr::Body => views
                .as_ref()
                .map(|v| FetchItem::Body(Cow::Borrowed(v.body.as_str()))),
            FetchAttr::BodyStructure => views
                .as_ref()
                .map(|v| FetchItem::BodyStructure(Cow::Borrowed(v.body_structure.as_str()))),
            FetchAttr::Rfc822 => Some(FetchItem::Rfc822(Cow::Borrowed(raw))),
            FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
                let header = *attr == FetchAttr::Rfc822Header;
                let text = if header {
                    mailroom_message::SectionText::Header
                } else {
                    mailroom_message::SectionText::Text
                };
                let data = mailroom_message::section(
                    raw,
                    &mailroom_message::Section {
                        part: vec![],
                        text: Some(text),
                    },
                )
                .unwrap_or_default();
                Some(if header {
                    FetchItem::Rfc822Header(data.into())
                } else {
                    FetchItem::Rfc822Text(data.into())
                })
            }
            FetchAttr::BodySection {
                section,
                label,
                partial: range,
                ..
            } => {
                // A section the message does not have is empty, as in Dovecot.
                let data = mailroom_message::section(raw, section).unwrap_or_default();
                Some(FetchItem::BodySection {
                    section: label.clone(),
                    origin: range.map(|(start, _)| start),
                    data: partial(data, *range).into(),
                })
            }
            FetchAttr::Binary {
                part,
                partial: range,
                ..
            } => match mailroom_message::binary(raw, part) {
                Ok(data) => Some(FetchItem::Binary {
                    part: part.clone(),
                    origin: range.map(|(start, _)| start),
                    data: data.map(|d| partial(d, *range).into()),
                }),
                Err(_) => return Err(UnknownCte),
            },
            FetchAttr::BinarySize { part } => match mailroom_message::binary(raw, part) {
                Ok(data) => Some(FetchItem::BinarySize {
                    part: part.clone(),
                    size: data.map_or(0, |d| d.len() as u64),
                }),
                Err(_) => return Err(UnknownCte),
            },
        };
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_and_modseq_are_added_where_the_rfcs_want_them() {
        use FetchAttr::{Flags, InternalDate, ModSeq, Uid};
        assert_eq!(
            complete_attrs(vec![Flags], true, false, false),
            [Uid, Flags]
        );
        assert_eq!(
            complete_attrs(vec![Flags], false, false, true),
            [Flags, ModSeq]
        );
        // CHANGEDSINCE implies MODSEQ even without FLAGS.
        assert_eq!(
            complete_attrs(vec![InternalDate], true, true, true),
            [Uid, InternalDate, ModSeq]
        );
        assert_eq!(
            complete_attrs(vec![InternalDate], false, false, true),
            [InternalDate]
        );
        assert_eq!(
            complete_attrs(vec![Uid, ModSeq], true, true, true),
            [Uid, ModSeq]
        );
    }
}
