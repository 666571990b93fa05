//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH (RFC 4731) and SEARCHRES
//! (RFC 5182). Text keys go to the store's indexes (FTS5 trigram for bodies); the
//! rest is evaluated over the session's view of the mailbox.

use std::collections::{HashMap, HashSet};

use mailroom_store::{MessageInfo, MessageMeta, uid_ranges};
use time::{Date, OffsetDateTime, UtcOffset};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{CmdResult, Error, Session, Tagged};
use crate::proto::types::{SearchKey, SearchReturn, SequenceSet};
use crate::proto::untagged::{Esearch, Untagged};
use crate::selected::Selected;

/// A key answered by a store query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TextQuery {
    Header(String, String),
    Body(String),
    Text(String),
}

/// Whether the key uses MODSEQ: the answer then carries the highest MODSEQ found.
fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::Not(k) => uses_modseq(k),
        _ => false,
    }
}

fn collect_queries(key: &SearchKey, out: &mut Vec<TextQuery>, needs_info: &mut bool) {
    match key {
        SearchKey::And(keys) => keys
            .iter()
            .for_each(|k| collect_queries(k, out, needs_info)),
        SearchKey::Or(a, b) => {
            collect_queries(a, out, needs_info);
            collect_queries(b, out, needs_info);
        }
        SearchKey::Not(k) => collect_queries(k, out, needs_info),
        SearchKey::Header { field, value } => {
            out.push(TextQuery::Header(field.clone(), value.clone()))
        }
        SearchKey::Body(v) => out.push(TextQuery::Body(v.clone())),
        SearchKey::Text(v) => out.push(TextQuery::Text(v.clone())),
        SearchKey::Before(_)
        | SearchKey::On(_)
        | SearchKey::Since(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Larger(_)
        | SearchKey::Smaller(_) => *needs_info = true,
        _ => {}
    }
}

/// The calendar date of a time in the zone it was given in (RFC 9051 §6.4.4
/// compares dates "disregarding time and timezone").
fn local_date(unix: i64, offset_minutes: i32) -> Option<Date> {
    let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).ok()?;
    Some(
        OffsetDateTime::from_unix_timestamp(unix)
            .ok()?
            .to_offset(offset)
            .date(),
    )
}

struct Context<'a> {
    sel: &'a Selected,
    infos: &'a HashMap<u32, MessageInfo>,
    texts: &'a HashMap<TextQuery, HashSet<u32>>,
    rev2: bool,
}

impl Context<'_> {
    fn matches(&self, key: &SearchKey, seq: u32, meta: &MessageMeta) -> bool {
        let info = self.infos.get(&meta.uid);
        let internal = || info.and_then(|i| local_date(i.internal_date, i.internal_offset));
        let sent = || {
            info.and_then(|i| match i.sent_date {
                Some((unix, off)) => local_date(unix, off),
                None => local_date(i.internal_date, i.internal_offset),
            })
        };
        let recent = !self.rev2 && self.sel.is_recent(meta.uid);
        match key {
            SearchKey::All => true,
            SearchKey::And(keys) => keys.iter().all(|k| self.matches(k, seq, meta)),
            SearchKey::Or(a, b) => self.matches(a, seq, meta) || self.matches(b, seq, meta),
            SearchKey::Not(k) => !self.matches(k, seq, meta),
            SearchKey::SequenceSet(SequenceSet::Saved) | SearchKey::Uid(SequenceSet::Saved) => {
                self.sel.saved.contains(&meta.uid)
            }
            SearchKey::SequenceSet(set) => set
                .numbers(self.sel.exists())
                .iter()
                .any(|&(a, b)| seq >= a && seq <= b),
            SearchKey::Uid(set) => {
                let largest = self.sel.messages().last().map_or(0, |m| m.uid);
                set.numbers(largest)
                    .iter()
                    .any(|&(a, b)| meta.uid >= a && meta.uid <= b)
            }
            SearchKey::Flag { bit, set } => meta.flags.has(*bit) == *set,
            SearchKey::Keyword { name, set } => meta.flags.has_keyword(name) == *set,
            SearchKey::Recent => recent,
            SearchKey::New => recent && !meta.flags.has(mailroom_store::Flags::SEEN),
            SearchKey::Old => !recent,
            SearchKey::Before(d) => internal().is_some_and(|x| x < *d),
            SearchKey::On(d) => internal().is_some_and(|x| x == *d),
            SearchKey::Since(d) => internal().is_some_and(|x| x >= *d),
            SearchKey::SentBefore(d) => sent().is_some_and(|x| x < *d),
            SearchKey::SentOn(d) => sent().is_some_and(|x| x == *d),
            SearchKey::SentSince(d) => sent().is_some_and(|x| x >= *d),
            SearchKey::Larger(n) => info.is_some_and(|i| i.size > *n),
            SearchKey::Smaller(n) => info.is_some_and(|i| i.size < *n),
            SearchKey::Header { field, value } => {
                self.text(TextQuery::Header(field.clone(), value.clone()), meta.uid)
            }
            SearchKey::Body(v) => self.text(TextQuery::Body(v.clone()), meta.uid),
            SearchKey::Text(v) => self.text(TextQuery::Text(v.clone()), meta.uid),
            SearchKey::ModSeq(n) => meta.modseq >= *n,
        }
    }

    fn text(&self, q: TextQuery, uid: u32) -> bool {
        self.texts.get(&q).is_some_and(|s| s.contains(&uid))
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub(super) async fn search(
        &mut self,
        sel: &mut Selected,
        tag: &str,
        uid: bool,
        returns: Option<Vec<SearchReturn>>,
        key: SearchKey,
    ) -> CmdResult {
        let with_modseq = uses_modseq(&key);
        if with_modseq {
            self.enable_condstore(Some(sel.highest_modseq()));
        }
        let found = self.search_matches(sel, &key).await?;
        let numbers: Vec<u32> = found
            .iter()
            .map(|&(s, u)| if uid { u } else { s })
            .collect();
        // RFC 7162 §3.1.5: the highest MODSEQ of the messages found.
        let highest = found
            .iter()
            .filter_map(|&(_, u)| sel.index_of(u).map(|i| sel.message(i).modseq))
            .max()
            .filter(|_| with_modseq);

        let esearch = returns.is_some() || self.rev2;
        let mut opts = returns.unwrap_or_default();
        if opts.is_empty() {
            opts.push(SearchReturn::All);
        }
        let has = |o: SearchReturn| opts.contains(&o);
        if has(SearchReturn::Save) {
            let uids: Vec<u32> = found.iter().map(|&(_, u)| u).collect();
            sel.saved = saved_result(&opts, &uids);
        }
        if !esearch {
            self.out.push(Untagged::Search {
                numbers,
                modseq: highest,
            });
            return Ok(Tagged::ok("SEARCH completed"));
        }
        if opts == [SearchReturn::Save] {
            return Ok(Tagged::ok("SEARCH completed, result saved"));
        }
        self.out
            .push(esearch_response(tag, uid, &opts, &numbers, highest));
        Ok(Tagged::ok("SEARCH completed"))
    }

    /// The messages of the selected mailbox that match `key`, as (sequence
    /// number, UID) in mailbox order; SORT and THREAD (RFC 5256) start from it.
    pub(super) async fn search_matches(
        &self,
        sel: &Selected,
        key: &SearchKey,
    ) -> Result<Vec<(u32, u32)>, Error> {
        let mailbox_id = sel.mailbox.id;
        let mut queries = Vec::new();
        let mut needs_info = false;
        collect_queries(key, &mut queries, &mut needs_info);
        let mut texts: HashMap<TextQuery, HashSet<u32>> = HashMap::new();
        for q in queries {
            if texts.contains_key(&q) {
                continue;
            }
            let uids = match &q {
                TextQuery::Header(field, value) => {
                    self.store
                        .search_header(mailbox_id, Some(field), value)
                        .await?
                }
                TextQuery::Body(v) => self.store.search_body(mailbox_id, v).await?,
                TextQuery::Text(v) => self.store.search_text(mailbox_id, v).await?,
            };
            texts.insert(q, uids.into_iter().collect());
        }
        let infos: HashMap<u32, MessageInfo> = if needs_info {
            let all: Vec<u32> = sel.messages().iter().map(|m| m.uid).collect();
            self.store
                .fetch_info(mailbox_id, &uid_ranges(&all))
                .await?
                .into_iter()
                .map(|i| (i.uid, i))
                .collect()
        } else {
            HashMap::new()
        };
        let ctx = Context {
            sel,
            infos: &infos,
            texts: &texts,
            rev2: self.rev2,
        };
        let mut found: Vec<(u32, u32)> = Vec::new(); // (seq, uid)
        for (i, meta) in sel.messages().iter().enumerate() {
            if sel.is_expunged(meta.uid) {
                continue;
            }
            if ctx.matches(key, i as u32 + 1, meta) {
                found.push((i as u32 + 1, meta.uid));
            }
        }
        Ok(found)
    }
}

/// What `SAVE` keeps for `$` (RFC 5182 §2.1): only the minimum and/or maximum when
/// those are all the command asks to return besides SAVE, else every result.
/// `results` are UIDs in the order the command found them; the saved set is a set,
/// ascending (RFC 5182 §2.4).
pub(super) fn saved_result(opts: &[SearchReturn], results: &[u32]) -> Vec<u32> {
    let has = |o: SearchReturn| opts.contains(&o);
    let mut saved: Vec<u32> = if (has(SearchReturn::Min) || has(SearchReturn::Max))
        && !has(SearchReturn::All)
        && !has(SearchReturn::Count)
    {
        let min = results.first().filter(|_| has(SearchReturn::Min));
        let max = results.last().filter(|_| has(SearchReturn::Max));
        min.into_iter().chain(max).copied().collect()
    } else {
        results.to_vec()
    };
    saved.sort_unstable();
    saved.dedup();
    saved
}

/// The `* ESEARCH` response of SEARCH RETURN (RFC 4731) and ESORT (RFC 5267) for
/// the result `numbers` (in the command's order: MIN and MAX are its first and
/// last, ALL keeps it), with the MODSEQ of RFC 7162 §3.1.5.
pub(super) fn esearch_response(
    tag: &str,
    uid: bool,
    opts: &[SearchReturn],
    numbers: &[u32],
    modseq: Option<u64>,
) -> Untagged {
    let has = |o: SearchReturn| opts.contains(&o);
    Untagged::Esearch(Esearch {
        tag: tag.to_string(),
        uid,
        min: numbers.first().copied().filter(|_| has(SearchReturn::Min)),
        max: numbers.last().copied().filter(|_| has(SearchReturn::Max)),
        all: (has(SearchReturn::All) && !numbers.is_empty()).then(|| numbers.to_vec()),
        count: has(SearchReturn::Count).then_some(numbers.len() as u32),
        modseq,
    })
}
