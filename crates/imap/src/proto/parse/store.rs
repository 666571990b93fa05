//! Commands that change messages: STORE with UNCHANGEDSINCE (RFC 7162), COPY,
//! MOVE (RFC 6851) and UID EXPUNGE (RFC 4315).

use super::*;

impl Parser<'_> {
    /// COPY and MOVE (RFC 9051 §6.4.7, §6.4.8), and their UID forms.
    pub(in crate::proto) fn copy(&mut self, uid: bool, move_: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if move_ {
            CommandBody::Move { uid, set, mailbox }
        } else {
            CommandBody::Copy { uid, set, mailbox }
        })
    }

    /// UID EXPUNGE (RFC 4315 §2.1).
    pub(in crate::proto) fn uid_expunge(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::Expunge {
            uids: Some(self.sequence_set()?),
        })
    }

    pub(in crate::proto) fn store(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.eat(b'(') {
            if !self.eat_keyword("UNCHANGEDSINCE ") {
                return Err("unknown STORE modifier (only UNCHANGEDSINCE is supported)".into());
            }
            unchanged_since = Some(self.number64()?);
            self.expect(b')')?;
            self.sp()?;
        }
        let op = if self.eat(b'+') {
            FlagOp::Add
        } else if self.eat(b'-') {
            FlagOp::Remove
        } else {
            FlagOp::Replace
        };
        if !self.eat_keyword("FLAGS") {
            return Err("expected FLAGS, +FLAGS or -FLAGS".into());
        }
        let silent = self.eat_keyword(".SILENT");
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store {
            uid,
            set,
            op,
            silent,
            flags,
            unchanged_since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bad, parse};
    use super::*;

    #[test]
    fn uid_expunge() {
        assert_eq!(
            parse("x UID EXPUNGE 1:3"),
            CommandBody::Expunge {
                uids: Some(SequenceSet::Ranges(vec![(
                    SeqNumber::Value(1),
                    SeqNumber::Value(3)
                )]))
            }
        );
    }

    #[test]
    fn append_and_store() {
        let CommandBody::Append { mailbox, messages } = parse(
            "a APPEND Drafts (\\Draft \\Seen) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nhello ~{3+}\r\na\0b",
        ) else {
            panic!()
        };
        assert_eq!(mailbox, "Drafts");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].flags, vec!["\\Draft", "\\Seen"]);
        assert_eq!(
            messages[0].date.map(|d| d.unix_timestamp()),
            Some(760686745)
        );
        assert_eq!(messages[1].data, b"a\0b");
        assert!(bad("a APPEND x {3}\r\na\0b").message().contains("NUL"));
        for (cmd, since, vanished) in [
            (
                "a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHED)",
                Some(7),
                true,
            ),
            (
                "a UID FETCH 1:* FLAGS (vanished changedsince 7)",
                Some(7),
                true,
            ),
            ("a UID FETCH 1:* FLAGS (CHANGEDSINCE 7)", Some(7), false),
            ("a FETCH 1:* FLAGS (CHANGEDSINCE 0)", Some(0), false),
        ] {
            let CommandBody::Fetch {
                changed_since,
                vanished: v,
                ..
            } = parse(cmd)
            else {
                panic!("{cmd}")
            };
            assert_eq!((changed_since, v), (since, vanished), "{cmd}");
        }
        for cmd in [
            "a FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHED)",
            "a UID FETCH 1:* FLAGS (VANISHED)",
            "a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHEDX)",
            "a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 CHANGEDSINCE 8)",
            "a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 )",
            "a UID FETCH 1:* FLAGS ()",
        ] {
            assert!(parse_command(cmd.as_bytes()).is_err(), "{cmd}");
        }
        assert_eq!(
            parse("a UID STORE 1:* (UNCHANGEDSINCE 12) +FLAGS.SILENT (\\Deleted $Junk)"),
            CommandBody::Store {
                uid: true,
                set: SequenceSet::Ranges(vec![(SeqNumber::Value(1), SeqNumber::Largest)]),
                op: FlagOp::Add,
                silent: true,
                flags: vec!["\\Deleted".into(), "$Junk".into()],
                unchanged_since: Some(12)
            }
        );
        assert!(matches!(
            parse("a STORE 1 FLAGS \\Seen"),
            CommandBody::Store {
                op: FlagOp::Replace,
                silent: false,
                ..
            }
        ));
        assert!(matches!(
            parse("a UID MOVE 1:2 Trash"),
            CommandBody::Move { uid: true, .. }
        ));
    }
}
