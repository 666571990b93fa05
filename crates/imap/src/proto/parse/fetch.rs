//! FETCH and its attributes: sections and partials, BINARY (RFC 3516),
//! CHANGEDSINCE and VANISHED (RFC 7162).

use super::*;

impl Parser<'_> {
    pub(in crate::proto) fn fetch(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut attrs = Vec::new();
        if self.eat(b'(') {
            loop {
                attrs.push(self.fetch_attr()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else if self.eat_keyword("ALL") && !self.peek().is_some_and(is_atom_char) {
            attrs = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
            ];
        } else if self.eat_keyword("FAST") && !self.peek().is_some_and(is_atom_char) {
            attrs = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
            ];
        } else if self.eat_keyword("FULL") && !self.peek().is_some_and(is_atom_char) {
            attrs = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
                FetchAttr::Body,
            ];
        } else {
            attrs.push(self.fetch_attr()?);
        }
        let mut changed_since = None;
        let mut vanished = false;
        if self.eat(b' ') {
            self.expect(b'(')?;
            loop {
                if self.eat_keyword("CHANGEDSINCE ") {
                    if changed_since.is_some() {
                        return Err("CHANGEDSINCE given twice".into());
                    }
                    changed_since = Some(self.number64()?);
                } else if self.eat_keyword("VANISHED") && matches!(self.peek(), Some(b' ' | b')')) {
                    vanished = true;
                } else {
                    return Err(
                        "unknown FETCH modifier (CHANGEDSINCE and VANISHED are supported)".into(),
                    );
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
        if vanished && !uid {
            return Err("VANISHED is only allowed in UID FETCH".into());
        }
        if vanished && changed_since.is_none() {
            return Err("VANISHED needs CHANGEDSINCE".into());
        }
        Ok(CommandBody::Fetch {
            uid,
            set,
            attrs,
            changed_since,
            vanished,
        })
    }

    fn fetch_attr(&mut self) -> PResult<FetchAttr> {
        let name = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
        let name = String::from_utf8_lossy(name).to_ascii_uppercase();
        Ok(match name.as_str() {
            "ENVELOPE" => FetchAttr::Envelope,
            "FLAGS" => FetchAttr::Flags,
            "INTERNALDATE" => FetchAttr::InternalDate,
            "RFC822" => FetchAttr::Rfc822,
            "RFC822.HEADER" => FetchAttr::Rfc822Header,
            "RFC822.SIZE" => FetchAttr::Rfc822Size,
            "RFC822.TEXT" => FetchAttr::Rfc822Text,
            "BODYSTRUCTURE" => FetchAttr::BodyStructure,
            "UID" => FetchAttr::Uid,
            "MODSEQ" => FetchAttr::ModSeq,
            "BODY" if self.peek() != Some(b'[') => FetchAttr::Body,
            "BODY" | "BODY.PEEK" => {
                let (section, label) = self.section()?;
                let partial = self.partial()?;
                FetchAttr::BodySection {
                    peek: name == "BODY.PEEK",
                    section,
                    label,
                    partial,
                }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.binary_section()?;
                let partial = self.partial()?;
                FetchAttr::Binary {
                    peek: name == "BINARY.PEEK",
                    part,
                    partial,
                }
            }
            "BINARY.SIZE" => FetchAttr::BinarySize {
                part: self.binary_section()?,
            },
            "" => return Err("expected a FETCH attribute".into()),
            _ => return Err(format!("unknown FETCH attribute {name}").into()),
        })
    }

    fn part_numbers(&mut self) -> PResult<Vec<u32>> {
        let mut part = Vec::new();
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            part.push(self.nz_number()?);
            if !self.eat(b'.') {
                break;
            }
        }
        Ok(part)
    }

    fn binary_section(&mut self) -> PResult<Vec<u32>> {
        self.expect(b'[')?;
        let part = self.part_numbers()?;
        if self.s.get(self.pos.wrapping_sub(1)) == Some(&b'.') && !part.is_empty() {
            return Err("invalid BINARY section".into());
        }
        self.expect(b']')?;
        Ok(part)
    }

    fn section(&mut self) -> PResult<(Section, String)> {
        self.expect(b'[')?;
        let part = self.part_numbers()?;
        let after_dot = !part.is_empty() && self.s.get(self.pos.wrapping_sub(1)) == Some(&b'.');
        let mut label: String = part
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".");
        let text = if self.peek() == Some(b']') {
            if after_dot {
                return Err("invalid section".into());
            }
            None
        } else {
            if !part.is_empty() && !after_dot {
                return Err("invalid section".into());
            }
            let kw = self.take_while(|b| b.is_ascii_alphabetic() || b == b'.');
            let kw = String::from_utf8_lossy(kw).to_ascii_uppercase();
            if !label.is_empty() {
                label.push('.');
            }
            label.push_str(&kw);
            match kw.as_str() {
                "HEADER" => Some(SectionText::Header),
                "TEXT" => Some(SectionText::Text),
                "MIME" if !part.is_empty() => Some(SectionText::Mime),
                "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    self.expect(b'(')?;
                    let mut fields = Vec::new();
                    loop {
                        fields.push(self.astring_utf8()?);
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                    label.push_str(" (");
                    label.push_str(
                        &fields
                            .iter()
                            // Echoed upper-cased, as Dovecot does.
                            .map(|f| crate::proto::encode::astring(&f.to_ascii_uppercase()))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                    label.push(')');
                    Some(SectionText::HeaderFields {
                        fields,
                        not: kw.ends_with(".NOT"),
                    })
                }
                _ => return Err(format!("invalid section text {kw}").into()),
            }
        };
        self.expect(b']')?;
        Ok((Section { part, text }, label))
    }

    fn partial(&mut self) -> PResult<Option<(u32, u32)>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let start = self.number()?;
        self.expect(b'.')?;
        let len = self.nz_number()?;
        self.expect(b'>')?;
        Ok(Some((start, len)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn fetch_attributes() {
        let CommandBody::Fetch { attrs, uid, .. } = parse("a UID FETCH 1 ALL") else {
            panic!()
        };
        assert!(uid);
        assert_eq!(attrs.len(), 4);
        let CommandBody::Fetch { attrs, .. } = parse(
            "a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From {2}\r\nTo)]<0.100> BODY[1.2.MIME] BINARY[2]<5.10> BINARY.SIZE[1] RFC822.SIZE BODY BODYSTRUCTURE BODY[])",
        ) else {
            panic!()
        };
        assert_eq!(
            attrs[0],
            FetchAttr::BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields {
                        fields: vec!["From".into(), "To".into()],
                        not: false
                    })
                },
                label: "HEADER.FIELDS (FROM TO)".into(),
                partial: Some((0, 100)),
            }
        );
        assert_eq!(
            attrs[1],
            FetchAttr::BodySection {
                peek: false,
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::Mime)
                },
                label: "1.2.MIME".into(),
                partial: None
            }
        );
        assert_eq!(
            attrs[2],
            FetchAttr::Binary {
                peek: false,
                part: vec![2],
                partial: Some((5, 10))
            }
        );
        assert_eq!(attrs[3], FetchAttr::BinarySize { part: vec![1] });
        assert_eq!(attrs[5], FetchAttr::Body);
        assert_eq!(attrs[6], FetchAttr::BodyStructure);
        assert!(
            matches!(&attrs[7], FetchAttr::BodySection { section, .. } if section.part.is_empty() && section.text.is_none())
        );
    }
}
