//! LIST with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE
//! (RFC 6154), and LSUB (RFC 3501).

use super::*;

impl Parser<'_> {
    /// LSUB (RFC 3501 §6.3.9).
    pub(in crate::proto) fn lsub(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let reference = self.mailbox()?;
        self.sp()?;
        let pattern = self.list_mailbox()?;
        Ok(CommandBody::Lsub { reference, pattern })
    }

    pub(in crate::proto) fn list(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mut selection = ListSelection::default();
        let mut extended = false;
        if self.eat(b'(') {
            extended = true;
            if !self.eat(b')') {
                loop {
                    let opt = self.atom()?.to_ascii_uppercase();
                    match opt.as_str() {
                        "SUBSCRIBED" => selection.subscribed = true,
                        "REMOTE" => selection.remote = true,
                        "RECURSIVEMATCH" => selection.recursive_match = true,
                        "SPECIAL-USE" => selection.special_use = true,
                        _ => return Err(format!("unknown LIST selection option {opt}").into()),
                    }
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
            }
            if selection.recursive_match && !selection.subscribed && !selection.special_use {
                return Err("RECURSIVEMATCH needs another selection option".into());
            }
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if self.eat(b'(') {
            extended = true;
            loop {
                patterns.push(self.list_mailbox()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            patterns.push(self.list_mailbox()?);
        }
        let mut returns = ListReturn::default();
        if self.eat(b' ') {
            if !self.eat_keyword("RETURN") {
                return Err("expected RETURN".into());
            }
            extended = true;
            self.sp()?;
            self.expect(b'(')?;
            if !self.eat(b')') {
                loop {
                    let opt = self.atom()?.to_ascii_uppercase();
                    match opt.as_str() {
                        "SUBSCRIBED" => returns.subscribed = true,
                        "CHILDREN" => returns.children = true,
                        "SPECIAL-USE" => returns.special_use = true,
                        "STATUS" => {
                            self.sp()?;
                            returns.status = Some(self.status_items()?);
                        }
                        _ => return Err(format!("unknown LIST return option {opt}").into()),
                    }
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
            }
        }
        Ok(CommandBody::List {
            reference,
            patterns,
            selection,
            returns,
            extended,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn list_and_status() {
        assert_eq!(
            parse(
                "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX* %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))"
            ),
            CommandBody::List {
                reference: "".into(),
                patterns: vec!["INBOX*".into(), "%".into()],
                selection: ListSelection {
                    subscribed: true,
                    recursive_match: true,
                    ..Default::default()
                },
                returns: ListReturn {
                    children: true,
                    status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
                    ..Default::default()
                },
                extended: true,
            }
        );
        assert!(matches!(
            parse("a LIST \"\" *"),
            CommandBody::List {
                extended: false,
                ..
            }
        ));
        assert!(matches!(parse("a LIST \"\" %/]"), CommandBody::List { .. }));
        assert_eq!(
            parse("a LSUB \"\" *"),
            CommandBody::Lsub {
                reference: "".into(),
                pattern: "*".into()
            }
        );
        assert_eq!(
            parse("a STATUS INBOX (MESSAGES SIZE)"),
            CommandBody::Status {
                mailbox: "INBOX".into(),
                items: vec![StatusItem::Messages, StatusItem::Size]
            }
        );
    }
}
