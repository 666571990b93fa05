//! SORT with ESORT and SORT=DISPLAY (RFC 5256, RFC 5267, RFC 5957) and THREAD.

use super::*;

impl Parser<'_> {
    /// SORT (RFC 5256 §5): `[RETURN (options) SP] (criteria) SP charset SP keys`;
    /// RETURN is ESORT's (RFC 5267 §3.2).
    pub(in crate::proto) fn sort(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let mut returns = None;
        if self.eat_keyword("RETURN ") {
            returns = Some(self.sort_returns()?);
            self.sp()?;
        }
        self.expect(b'(')?;
        let mut criteria = Vec::new();
        loop {
            let mut name = self.atom()?;
            let reverse = name.eq_ignore_ascii_case("REVERSE");
            if reverse {
                self.sp()?;
                name = self.atom()?;
            }
            let key = SortKey::from_name(&name)
                .ok_or_else(|| format!("unknown sort criterion {name}"))?;
            criteria.push(SortCriterion { reverse, key });
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.sp()?;
        self.required_charset()?;
        let key = self.search_program()?;
        Ok(CommandBody::Sort {
            uid,
            returns,
            criteria,
            key,
        })
    }

    /// ESORT return options: those of ESEARCH (RFC 5267 §3.2).
    fn sort_returns(&mut self) -> PResult<Vec<SearchReturn>> {
        self.expect(b'(')?;
        let mut opts = Vec::new();
        if self.eat(b')') {
            return Ok(opts);
        }
        loop {
            let a = self.atom()?.to_ascii_uppercase();
            opts.push(match a.as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "SAVE" => SearchReturn::Save,
                _ => return Err(format!("unknown SORT return option {a}").into()),
            });
            if self.eat(b')') {
                return Ok(opts);
            }
            self.sp()?;
        }
    }

    /// THREAD (RFC 5256 §5): `algorithm SP charset SP keys`.
    pub(in crate::proto) fn thread(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let name = self.atom()?.to_ascii_uppercase();
        let algorithm = match name.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            _ => return Err(format!("unknown THREAD algorithm {name}").into()),
        };
        self.sp()?;
        self.required_charset()?;
        let key = self.search_program()?;
        Ok(CommandBody::Thread {
            uid,
            algorithm,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bad, parse};
    use super::*;

    #[test]
    fn sort_and_thread() {
        assert_eq!(
            parse("a UID SORT RETURN (MIN COUNT) (REVERSE date subject) UTF-8 ALL"),
            CommandBody::Sort {
                uid: true,
                returns: Some(vec![SearchReturn::Min, SearchReturn::Count]),
                criteria: vec![
                    SortCriterion {
                        reverse: true,
                        key: SortKey::Date
                    },
                    SortCriterion {
                        reverse: false,
                        key: SortKey::Subject
                    },
                ],
                key: SearchKey::All,
            }
        );
        assert_eq!(
            parse("a SORT (DISPLAYFROM) us-ascii ALL"),
            CommandBody::Sort {
                uid: false,
                returns: None,
                criteria: vec![SortCriterion {
                    reverse: false,
                    key: SortKey::DisplayFrom
                }],
                key: SearchKey::All,
            }
        );
        assert_eq!(
            parse("a THREAD references UTF-8 ALL"),
            CommandBody::Thread {
                uid: false,
                algorithm: ThreadAlgorithm::References,
                key: SearchKey::All,
            }
        );
        for wrong in [
            "a SORT () UTF-8 ALL",
            "a SORT (FROB) UTF-8 ALL",
            "a SORT (REVERSE) UTF-8 ALL",
            "a SORT RETURN (FROB) (DATE) UTF-8 ALL",
            "a SORT (DATE) ALL",
            "a THREAD FROB UTF-8 ALL",
            "a THREAD REFERENCES UTF-8",
        ] {
            bad(wrong);
        }
        assert!(matches!(
            bad("a THREAD REFERENCES KOI8-R ALL").kind,
            ParseErrorKind::BadCharset(_)
        ));
    }
}
