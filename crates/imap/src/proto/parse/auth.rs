//! LOGIN and AUTHENTICATE (RFC 9051 §6.2, SASL-IR RFC 4959), ENABLE (RFC 5161)
//! and ID (RFC 2971).

use super::*;

impl Parser<'_> {
    /// LOGIN (RFC 9051 §6.2.3): `userid SP password`.
    pub(in crate::proto) fn login(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let user = self.astring_utf8()?;
        self.sp()?;
        let password = self.astring_utf8()?;
        Ok(CommandBody::Login { user, password })
    }

    /// AUTHENTICATE (RFC 9051 §6.2.2) with SASL-IR (RFC 4959).
    pub(in crate::proto) fn authenticate(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mechanism = self.atom()?.to_ascii_uppercase();
        let initial = if self.eat(b' ') {
            let ir = self
                .take_while(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
            if ir.is_empty() {
                return Err("invalid initial response".into());
            }
            Some(String::from_utf8_lossy(ir).into_owned())
        } else {
            None
        };
        Ok(CommandBody::Authenticate { mechanism, initial })
    }

    /// ENABLE (RFC 5161 §3.1): `1*(SP capability)`.
    pub(in crate::proto) fn enable(&mut self) -> PResult<CommandBody> {
        let mut caps = Vec::new();
        while self.eat(b' ') {
            caps.push(self.atom()?);
        }
        if caps.is_empty() {
            return Err("ENABLE needs at least one capability".into());
        }
        Ok(CommandBody::Enable(caps))
    }

    /// ID (RFC 2971 §3.1): `NIL` or a list of string/nstring pairs.
    pub(in crate::proto) fn id(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mut params = Vec::new();
        if !self.eat_keyword("NIL") {
            self.expect(b'(')?;
            if !self.eat(b')') {
                loop {
                    let key = Self::utf8(self.string()?)?;
                    self.sp()?;
                    let value = self.nstring()?;
                    params.push((key, value));
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
            }
        }
        Ok(CommandBody::Id(params))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn login_authenticate_enable_id() {
        assert_eq!(
            parse("x LOGIN joe \"se\\\"cret\""),
            CommandBody::Login {
                user: "joe".into(),
                password: "se\"cret".into()
            }
        );
        assert_eq!(
            parse("x LOGIN {3}\r\njoe {4+}\r\npass"),
            CommandBody::Login {
                user: "joe".into(),
                password: "pass".into()
            }
        );
        assert_eq!(
            parse("x AUTHENTICATE plain AGpvZQBwYXNz"),
            CommandBody::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some("AGpvZQBwYXNz".into())
            }
        );
        assert_eq!(
            parse("x AUTHENTICATE PLAIN ="),
            CommandBody::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some("=".into())
            }
        );
        assert_eq!(
            parse("x ENABLE IMAP4rev2 UTF8=ACCEPT"),
            CommandBody::Enable(vec!["IMAP4rev2".into(), "UTF8=ACCEPT".into()])
        );
        assert_eq!(parse("x ID NIL"), CommandBody::Id(vec![]));
        assert_eq!(
            parse("x ID (\"name\" \"mutt\" \"os\" NIL)"),
            CommandBody::Id(vec![
                ("name".into(), Some("mutt".into())),
                ("os".into(), None)
            ])
        );
    }
}
