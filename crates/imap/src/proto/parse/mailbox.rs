//! Mailbox commands: SELECT/EXAMINE with CONDSTORE and QRESYNC (RFC 7162),
//! CREATE with USE (RFC 6154), DELETE, RENAME, SUBSCRIBE, STATUS and APPEND
//! with MULTIAPPEND (RFC 3502).

use super::*;

impl Parser<'_> {
    /// SELECT and EXAMINE (RFC 9051 §6.3.2) with the CONDSTORE and QRESYNC
    /// parameters (RFC 7162 §3.1.8, §3.2.5).
    pub(in crate::proto) fn select(&mut self, read_only: bool) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut condstore = false;
        let mut qresync = None;
        if self.eat(b' ') {
            self.expect(b'(')?;
            loop {
                if self.eat_keyword("CONDSTORE") {
                    condstore = true;
                } else if self.eat_keyword("QRESYNC ") {
                    if qresync.is_some() {
                        return Err("QRESYNC given twice".into());
                    }
                    qresync = Some(self.qresync()?);
                } else {
                    return Err(
                        "unknown SELECT parameter (CONDSTORE and QRESYNC are supported)".into(),
                    );
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Select {
            mailbox,
            condstore,
            qresync,
            read_only,
        })
    }

    /// CREATE (RFC 9051 §6.3.4) with the USE parameter (RFC 6154 §3).
    pub(in crate::proto) fn create(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.expect(b'(')?;
            if !self.eat_keyword("USE") {
                return Err("unknown CREATE parameter (only USE is supported)".into());
            }
            self.sp()?;
            special_use = self.flag_list()?;
            self.expect(b')')?;
        }
        Ok(CommandBody::Create {
            mailbox,
            special_use,
        })
    }

    pub(in crate::proto) fn delete(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::Delete(self.mailbox()?))
    }

    pub(in crate::proto) fn rename(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let from = self.mailbox()?;
        self.sp()?;
        let to = self.mailbox()?;
        Ok(CommandBody::Rename { from, to })
    }

    /// SUBSCRIBE and UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8).
    pub(in crate::proto) fn subscribe(&mut self, subscribe: bool) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if subscribe {
            CommandBody::Subscribe(mailbox)
        } else {
            CommandBody::Unsubscribe(mailbox)
        })
    }

    /// STATUS (RFC 9051 §6.3.11).
    pub(in crate::proto) fn status(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let items = self.status_items()?;
        Ok(CommandBody::Status { mailbox, items })
    }

    pub(super) fn status_items(&mut self) -> PResult<Vec<StatusItem>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        loop {
            let a = self.atom()?.to_ascii_uppercase();
            items.push(match a.as_str() {
                "MESSAGES" => StatusItem::Messages,
                "UIDNEXT" => StatusItem::UidNext,
                "UIDVALIDITY" => StatusItem::UidValidity,
                "UNSEEN" => StatusItem::Unseen,
                "DELETED" => StatusItem::Deleted,
                "SIZE" => StatusItem::Size,
                "RECENT" => StatusItem::Recent,
                "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                "DELETED-STORAGE" => StatusItem::DeletedStorage,
                _ => return Err(format!("unknown STATUS item {a}").into()),
            });
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }

    pub(in crate::proto) fn append(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        while self.eat(b' ') {
            let mut flags = Vec::new();
            let mut date = None;
            if self.peek() == Some(b'(') {
                flags = self.flag_list()?;
                self.sp()?;
            }
            if self.peek() == Some(b'"') {
                date = Some(self.date_time()?);
                self.sp()?;
            }
            let data = if self.eat_keyword("UTF8 (") {
                let d = self.literal(true)?;
                self.expect(b')')?;
                d
            } else {
                self.literal(true)?
            };
            messages.push(AppendMessage { flags, date, data });
        }
        if messages.is_empty() {
            return Err("APPEND needs a message literal".into());
        }
        Ok(CommandBody::Append { mailbox, messages })
    }

    /// The inside of `QRESYNC (...)` after the keyword (RFC 7162 §3.2.5):
    /// `(uidvalidity modseq [known-uids] [(known-sequence-set known-uid-set)])`.
    fn qresync(&mut self) -> PResult<Qresync> {
        self.expect(b'(')?;
        let uid_validity = self.nz_number()?;
        self.sp()?;
        let modseq = self.number64()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') && self.peek() != Some(b'(') {
            let ranges = self.explicit_set("known-uids")?;
            known_uids = Some(
                SequenceSet::Ranges(
                    ranges
                        .iter()
                        .map(|&(a, b)| (SeqNumber::Value(a), SeqNumber::Value(b)))
                        .collect(),
                )
                .numbers(0),
            );
            self.eat(b' ');
        }
        if self.eat(b'(') {
            let seqs = self.explicit_set("known-sequence-set")?;
            self.sp()?;
            let uids = self.explicit_set("known-uid-set")?;
            self.expect(b')')?;
            let count = |r: &[(u32, u32)]| -> Option<u64> {
                let mut last = 0u32;
                let mut n = 0u64;
                for &(a, b) in r {
                    // Both sets are ascending (RFC 7162 §3.2.5.2).
                    if a <= last || b < a {
                        return None;
                    }
                    last = b;
                    n += u64::from(b - a) + 1;
                }
                Some(n)
            };
            match (count(&seqs), count(&uids)) {
                (Some(a), Some(b)) if a == b => seq_match = Some((seqs, uids)),
                (Some(_), Some(_)) => {
                    return Err("message sequence match data: the two sets differ in length".into());
                }
                _ => return Err("message sequence match data must be ascending".into()),
            }
        }
        self.expect(b')')?;
        Ok(Qresync {
            uid_validity,
            modseq,
            known_uids,
            seq_match,
        })
    }

    /// A sequence set of plain numbers (`*` and `$` are not allowed), as the
    /// client wrote its ranges.
    fn explicit_set(&mut self, what: &str) -> PResult<Vec<(u32, u32)>> {
        match self.sequence_set()? {
            SequenceSet::Ranges(r) => r
                .into_iter()
                .map(|(a, b)| match (a, b) {
                    (SeqNumber::Value(a), SeqNumber::Value(b)) => Ok((a, b)),
                    _ => Err(format!("{what} may not contain *").into()),
                })
                .collect(),
            SequenceSet::Saved => Err(format!("{what} may not be $").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn select_qresync_create_rename() {
        assert_eq!(
            parse("x SELECT inbox"),
            CommandBody::Select {
                mailbox: "inbox".into(),
                read_only: false,
                condstore: false,
                qresync: None
            }
        );
        assert_eq!(
            parse("x EXAMINE \"a b\" (condstore)"),
            CommandBody::Select {
                mailbox: "a b".into(),
                read_only: true,
                condstore: true,
                qresync: None
            }
        );
        assert_eq!(
            parse("x SELECT INBOX (QRESYNC (67890007 90060115194045000 41,43:211,214:541))"),
            CommandBody::Select {
                mailbox: "INBOX".into(),
                read_only: false,
                condstore: false,
                qresync: Some(Qresync {
                    uid_validity: 67890007,
                    modseq: 90060115194045000,
                    known_uids: Some(vec![(41, 41), (43, 211), (214, 541)]),
                    seq_match: None,
                })
            }
        );
        assert_eq!(
            parse("x EXAMINE INBOX (CONDSTORE qresync (9 0 (1:3,7 10:12,20)))"),
            CommandBody::Select {
                mailbox: "INBOX".into(),
                read_only: true,
                condstore: true,
                qresync: Some(Qresync {
                    uid_validity: 9,
                    modseq: 0,
                    known_uids: None,
                    seq_match: Some((vec![(1, 3), (7, 7)], vec![(10, 12), (20, 20)])),
                })
            }
        );
        let CommandBody::Select {
            qresync: Some(q), ..
        } = parse("x SELECT INBOX (QRESYNC (9 5 5:1,9 (2,4 7,9)))")
        else {
            panic!("no QRESYNC")
        };
        assert_eq!(q.known_uids, Some(vec![(1, 5), (9, 9)]));
        assert_eq!(
            q.seq_match_pairs().collect::<Vec<_>>(),
            vec![(2, 7), (4, 9)]
        );
        assert!(q.knows(3) && q.knows(9) && !q.knows(6) && !q.knows(10));
        for bad in [
            "x SELECT INBOX (QRESYNC)",
            "x SELECT INBOX (QRESYNC ())",
            "x SELECT INBOX (QRESYNC (0 5))",
            "x SELECT INBOX (QRESYNC (9))",
            "x SELECT INBOX (QRESYNC (9 5 1:*))",
            "x SELECT INBOX (QRESYNC (9 5 $))",
            "x SELECT INBOX (QRESYNC (9 5 1:9 (1:3 4:5)))",
            "x SELECT INBOX (QRESYNC (9 5 1:9 (3,1 4,5)))",
            "x SELECT INBOX (QRESYNC (9 5 1:9 (1,2 4,*)))",
            "x SELECT INBOX (QRESYNC (9 5 1:9 (1,2 4,5))",
            "x SELECT INBOX (QRESYNC (9 5) QRESYNC (9 5))",
            "x SELECT INBOX (QRESYNC (9 18446744073709551616))",
            "x SELECT INBOX (CONDSTORE FOO)",
            "x SELECT INBOX ()",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            parse("x CREATE Foo (USE (\\Sent))"),
            CommandBody::Create {
                mailbox: "Foo".into(),
                special_use: vec!["\\Sent".into()]
            }
        );
        assert_eq!(
            parse("x RENAME a b"),
            CommandBody::Rename {
                from: "a".into(),
                to: "b".into()
            }
        );
    }
}
