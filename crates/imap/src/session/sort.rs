//! SORT and THREAD (RFC 5256), with ESORT (RFC 5267) and SORT=DISPLAY (RFC 5957).
//! SEARCH's evaluation picks the messages; the store's per-message keys
//! ([`mailroom_store::SortData`]) and the pure algorithms of [`crate::sorting`]
//! and [`crate::threading`] order them.

use std::collections::HashMap;

use mailroom_store::SortData;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{CmdResult, Session, Tagged, search};
use crate::proto::types::{SearchKey, SearchReturn, SortCriterion, SortKey, ThreadAlgorithm};
use crate::proto::untagged::Untagged;
use crate::selected::Selected;
use crate::sorting::{self, EnvelopeAddresses, SortValue};
use crate::threading::{self, ThreadInput};

/// The capabilities this module answers for.
pub(super) const CAPS: &str = "SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES";

/// The value of one criterion for one message (RFC 5256 §3, RFC 5957 §3).
fn sort_value(
    key: SortKey,
    data: Option<&SortData>,
    addresses: &mut Option<EnvelopeAddresses>,
) -> SortValue {
    let Some(d) = data else {
        // Expunged elsewhere since the view was built: sorts as empty.
        return match key {
            SortKey::Arrival | SortKey::Date | SortKey::Size => SortValue::Number(0),
            _ => SortValue::Text(Vec::new()),
        };
    };
    let mut addrs = |d: &SortData| -> EnvelopeAddresses {
        addresses
            .get_or_insert_with(|| sorting::envelope_addresses(&d.envelope).unwrap_or_default())
            .clone()
    };
    let decode = |b: &[u8]| mailroom_message::decode_header_text(b);
    match key {
        SortKey::Arrival => SortValue::Number(d.internal_date),
        // §2.2: the Date: header, else INTERNALDATE.
        SortKey::Date => SortValue::Number(d.sent_date.unwrap_or(d.internal_date)),
        SortKey::Size => SortValue::Number(i64::try_from(d.size).unwrap_or(i64::MAX)),
        SortKey::Subject => SortValue::text(
            sorting::base_subject(d.subject.as_deref().unwrap_or_default())
                .0
                .as_bytes(),
        ),
        SortKey::From => SortValue::text(&sorting::first_mailbox(&addrs(d).from)),
        SortKey::To => SortValue::text(&sorting::first_mailbox(&addrs(d).to)),
        SortKey::Cc => SortValue::text(&sorting::first_mailbox(&addrs(d).cc)),
        SortKey::DisplayFrom => {
            SortValue::text(sorting::display_name(&addrs(d).from, decode).as_bytes())
        }
        SortKey::DisplayTo => {
            SortValue::text(sorting::display_name(&addrs(d).to, decode).as_bytes())
        }
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// The matching messages with their stored keys, in mailbox order.
    async fn sort_candidates(
        &self,
        sel: &Selected,
        key: &SearchKey,
    ) -> Result<(Vec<(u32, u32)>, HashMap<u32, SortData>), super::Error> {
        let found = self.search_matches(sel, key).await?;
        let data: HashMap<u32, SortData> = self
            .store
            .sort_data(sel.mailbox.id)
            .await?
            .into_iter()
            .map(|d| (d.uid, d))
            .collect();
        Ok((found, data))
    }

    pub(super) async fn sort(
        &mut self,
        sel: &mut Selected,
        tag: &str,
        uid: bool,
        returns: Option<Vec<SearchReturn>>,
        criteria: &[SortCriterion],
        key: SearchKey,
    ) -> CmdResult {
        let (found, data) = self.sort_candidates(sel, &key).await?;
        let items: Vec<(u32, Vec<SortValue>)> = found
            .iter()
            .map(|&(seq, u)| {
                let d = data.get(&u);
                let mut addresses = None;
                let values = criteria
                    .iter()
                    .map(|c| sort_value(c.key, d, &mut addresses))
                    .collect();
                (if uid { u } else { seq }, values)
            })
            .collect();
        let numbers = sorting::sort(criteria, items);

        let Some(opts) = returns else {
            self.out.push(Untagged::Sort(numbers));
            return Ok(Tagged::ok("SORT completed"));
        };
        // ESORT (RFC 5267 §3.2): as ESEARCH, MIN and MAX being the first and the
        // last in sort order and ALL in sort order.
        let opts = if opts.is_empty() {
            vec![SearchReturn::All]
        } else {
            opts
        };
        let has = |o: SearchReturn| opts.contains(&o);
        if has(SearchReturn::Save) {
            // MIN and MAX are the first and last in sort order, as UIDs.
            let to_uid = |n: u32| -> u32 {
                if uid {
                    n
                } else {
                    found.iter().find(|&&(s, _)| s == n).map_or(0, |&(_, u)| u)
                }
            };
            let in_order: Vec<u32> = numbers.iter().map(|&n| to_uid(n)).collect();
            sel.saved = search::saved_result(&opts, &in_order);
            if opts == [SearchReturn::Save] {
                return Ok(Tagged::ok("SORT completed, result saved"));
            }
        }
        self.out
            .push(search::esearch_response(tag, uid, &opts, &numbers, None));
        Ok(Tagged::ok("SORT completed"))
    }

    pub(super) async fn thread(
        &mut self,
        sel: &Selected,
        uid: bool,
        algorithm: ThreadAlgorithm,
        key: SearchKey,
    ) -> CmdResult {
        let (found, mut data) = self.sort_candidates(sel, &key).await?;
        let inputs: Vec<ThreadInput> = found
            .iter()
            .map(|&(seq, u)| {
                let number = if uid { u } else { seq };
                match data.remove(&u) {
                    Some(d) => ThreadInput {
                        number,
                        sent: d.sent_date.unwrap_or(d.internal_date),
                        subject: d.subject.unwrap_or_default(),
                        message_id: d.message_id,
                        in_reply_to: d.in_reply_to,
                        references: d.references,
                    },
                    None => ThreadInput {
                        number,
                        sent: 0,
                        subject: String::new(),
                        message_id: None,
                        in_reply_to: None,
                        references: None,
                    },
                }
            })
            .collect();
        let threads = match algorithm {
            ThreadAlgorithm::OrderedSubject => threading::thread_ordered_subject(&inputs),
            ThreadAlgorithm::References => threading::thread_references(&inputs),
        };
        self.out.push(Untagged::Thread(threads));
        Ok(Tagged::ok("THREAD completed"))
    }
}
