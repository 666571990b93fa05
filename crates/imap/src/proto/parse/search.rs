//! SEARCH with ESEARCH and SEARCHRES (RFC 4731, RFC 5182): the search program
//! SORT and THREAD share.

use super::*;

impl Parser<'_> {
    pub(in crate::proto) fn search(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let mut returns = None;
        if self.eat_keyword("RETURN ") {
            self.expect(b'(')?;
            let mut opts = Vec::new();
            if !self.eat(b')') {
                loop {
                    let a = self.atom()?.to_ascii_uppercase();
                    opts.push(match a.as_str() {
                        "MIN" => SearchReturn::Min,
                        "MAX" => SearchReturn::Max,
                        "ALL" => SearchReturn::All,
                        "COUNT" => SearchReturn::Count,
                        "SAVE" => SearchReturn::Save,
                        _ => return Err(format!("unknown SEARCH return option {a}").into()),
                    });
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
            }
            returns = Some(opts);
            self.sp()?;
        }
        if self.eat_keyword("CHARSET ") {
            let charset = self.astring_utf8()?;
            if !charset.eq_ignore_ascii_case("UTF-8") && !charset.eq_ignore_ascii_case("US-ASCII") {
                return Err(ParseErrorKind::BadCharset(charset));
            }
            self.sp()?;
        }
        let mut keys = vec![self.search_key()?];
        while self.eat(b' ') {
            keys.push(self.search_key()?);
        }
        let key = if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        };
        Ok(CommandBody::Search { uid, returns, key })
    }

    /// The charset SORT and THREAD require, then SP.
    pub(super) fn required_charset(&mut self) -> PResult<()> {
        let charset = self.astring_utf8()?;
        if !charset.eq_ignore_ascii_case("UTF-8") && !charset.eq_ignore_ascii_case("US-ASCII") {
            return Err(ParseErrorKind::BadCharset(charset));
        }
        self.sp()
    }

    /// One or more search keys separated by SP, as one key.
    pub(super) fn search_program(&mut self) -> PResult<SearchKey> {
        let mut keys = vec![self.search_key()?];
        while self.eat(b' ') {
            keys.push(self.search_key()?);
        }
        Ok(if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        })
    }

    fn search_key(&mut self) -> PResult<SearchKey> {
        self.search_key_depth(0)
    }

    fn search_key_depth(&mut self, depth: usize) -> PResult<SearchKey> {
        if depth > 100 {
            return Err("search keys nested too deeply".into());
        }
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let mut keys = vec![self.search_key_depth(depth + 1)?];
                while self.eat(b' ') {
                    keys.push(self.search_key_depth(depth + 1)?);
                }
                self.expect(b')')?;
                return Ok(if keys.len() == 1 {
                    keys.remove(0)
                } else {
                    SearchKey::And(keys)
                });
            }
            Some(b'0'..=b'9' | b'*' | b'$') => {
                return Ok(SearchKey::SequenceSet(self.sequence_set()?));
            }
            _ => {}
        }
        let name = self.atom()?.to_ascii_uppercase();
        use mailroom_store::Flags as F;
        let flag = |bit, set| Ok(SearchKey::Flag { bit, set });
        let header = |p: &mut Self, field: &str| -> PResult<SearchKey> {
            p.sp()?;
            Ok(SearchKey::Header {
                field: field.to_string(),
                value: p.astring_utf8()?,
            })
        };
        let date = |p: &mut Self| -> PResult<Date> {
            p.sp()?;
            p.date()
        };
        match name.as_str() {
            "ALL" => Ok(SearchKey::All),
            "ANSWERED" => flag(F::ANSWERED, true),
            "DELETED" => flag(F::DELETED, true),
            "DRAFT" => flag(F::DRAFT, true),
            "FLAGGED" => flag(F::FLAGGED, true),
            "SEEN" => flag(F::SEEN, true),
            "UNANSWERED" => flag(F::ANSWERED, false),
            "UNDELETED" => flag(F::DELETED, false),
            "UNDRAFT" => flag(F::DRAFT, false),
            "UNFLAGGED" => flag(F::FLAGGED, false),
            "UNSEEN" => flag(F::SEEN, false),
            "NEW" => Ok(SearchKey::New),
            "OLD" => Ok(SearchKey::Old),
            "RECENT" => Ok(SearchKey::Recent),
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                let name_kw = self.atom()?;
                Ok(SearchKey::Keyword {
                    name: name_kw,
                    set: name == "KEYWORD",
                })
            }
            "BCC" => header(self, "bcc"),
            "CC" => header(self, "cc"),
            "FROM" => header(self, "from"),
            "TO" => header(self, "to"),
            "SUBJECT" => header(self, "subject"),
            "HEADER" => {
                self.sp()?;
                let field = self.astring_utf8()?.to_ascii_lowercase();
                header(self, &field)
            }
            "BODY" => {
                self.sp()?;
                Ok(SearchKey::Body(self.astring_utf8()?))
            }
            "TEXT" => {
                self.sp()?;
                Ok(SearchKey::Text(self.astring_utf8()?))
            }
            "BEFORE" => Ok(SearchKey::Before(date(self)?)),
            "ON" => Ok(SearchKey::On(date(self)?)),
            "SINCE" => Ok(SearchKey::Since(date(self)?)),
            "SENTBEFORE" => Ok(SearchKey::SentBefore(date(self)?)),
            "SENTON" => Ok(SearchKey::SentOn(date(self)?)),
            "SENTSINCE" => Ok(SearchKey::SentSince(date(self)?)),
            "LARGER" => {
                self.sp()?;
                Ok(SearchKey::Larger(self.number64()?))
            }
            "SMALLER" => {
                self.sp()?;
                Ok(SearchKey::Smaller(self.number64()?))
            }
            "UID" => {
                self.sp()?;
                Ok(SearchKey::Uid(self.sequence_set()?))
            }
            "MODSEQ" => {
                self.sp()?;
                // Optional entry name and type (RFC 7162 §3.1.5); flags are not told apart.
                if self.peek() == Some(b'"') {
                    self.quoted()?;
                    self.sp()?;
                    let kind = self.atom()?.to_ascii_lowercase();
                    if !["priv", "shared", "all"].contains(&kind.as_str()) {
                        return Err(format!("invalid MODSEQ entry type {kind}").into());
                    }
                    self.sp()?;
                }
                Ok(SearchKey::ModSeq(self.number64()?))
            }
            "NOT" => {
                self.sp()?;
                Ok(SearchKey::Not(Box::new(self.search_key_depth(depth + 1)?)))
            }
            "OR" => {
                self.sp()?;
                let a = self.search_key_depth(depth + 1)?;
                self.sp()?;
                let b = self.search_key_depth(depth + 1)?;
                Ok(SearchKey::Or(Box::new(a), Box::new(b)))
            }
            _ => Err(format!("unknown search key {name}").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn search_keys() {
        let CommandBody::Search { key, returns, uid } = parse(
            "a UID SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 OR (FROM joe SEEN) NOT KEYWORD $Junk 1:5 SINCE 1-Feb-2024 HEADER X-Foo \"\" LARGER 100",
        ) else {
            panic!()
        };
        assert!(uid);
        assert_eq!(
            returns,
            Some(vec![
                SearchReturn::Min,
                SearchReturn::Count,
                SearchReturn::Save
            ])
        );
        let SearchKey::And(keys) = key else { panic!() };
        assert_eq!(keys.len(), 5);
        assert_eq!(
            keys[0],
            SearchKey::Or(
                Box::new(SearchKey::And(vec![
                    SearchKey::Header {
                        field: "from".into(),
                        value: "joe".into()
                    },
                    SearchKey::Flag {
                        bit: mailroom_store::Flags::SEEN,
                        set: true
                    }
                ])),
                Box::new(SearchKey::Not(Box::new(SearchKey::Keyword {
                    name: "$Junk".into(),
                    set: true
                })))
            )
        );
        assert_eq!(
            keys[2],
            SearchKey::Since(Date::from_calendar_date(2024, Month::February, 1).unwrap())
        );
        assert_eq!(
            keys[3],
            SearchKey::Header {
                field: "x-foo".into(),
                value: String::new()
            }
        );
        assert_eq!(keys[4], SearchKey::Larger(100));
        let CommandBody::Search { key, .. } = parse("a SEARCH SUBJECT {4}\r\ntäs") else {
            panic!()
        };
        assert_eq!(
            key,
            SearchKey::Header {
                field: "subject".into(),
                value: "täs".into()
            }
        );
        let CommandBody::Search { key, returns, .. } = parse("a SEARCH RETURN () $") else {
            panic!()
        };
        assert_eq!(returns, Some(vec![]));
        assert_eq!(key, SearchKey::SequenceSet(SequenceSet::Saved));
    }
}
