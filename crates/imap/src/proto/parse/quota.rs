//! GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 §4.1).

use super::*;

impl Parser<'_> {
    /// GETQUOTA (RFC 9208 §4.1.1).
    pub(in crate::proto) fn get_quota(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::GetQuota(self.astring_utf8()?))
    }

    /// GETQUOTAROOT (RFC 9208 §4.1.2).
    pub(in crate::proto) fn get_quota_root(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::GetQuotaRoot(self.mailbox()?))
    }

    /// SETQUOTA (RFC 9208 §4.1.3): `root SP "(" [name SP number *(SP name SP number)] ")"`.
    pub(in crate::proto) fn set_quota(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let root = self.astring_utf8()?;
        self.sp()?;
        self.expect(b'(')?;
        let mut limits = Vec::new();
        if !self.eat(b')') {
            loop {
                let name = self.atom()?.to_ascii_uppercase();
                self.sp()?;
                limits.push((name, self.number64()?));
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::SetQuota { root, limits })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::proto::encode;

    #[test]
    fn quota_commands_parse() {
        let body = |s: &str| parse_command(s.as_bytes()).map(|c| c.body);
        assert_eq!(
            body("a GETQUOTA \"\""),
            Ok(CommandBody::GetQuota(String::new()))
        );
        assert_eq!(
            body("a getquotaroot INBOX"),
            Ok(CommandBody::GetQuotaRoot("INBOX".into()))
        );
        assert_eq!(
            body("a SETQUOTA \"\" (storage 512 MESSAGE 10)"),
            Ok(CommandBody::SetQuota {
                root: String::new(),
                limits: vec![("STORAGE".into(), 512), ("MESSAGE".into(), 10)],
            })
        );
        for bad in [
            "a GETQUOTA",
            "a GETQUOTAROOT",
            "a SETQUOTA \"\"",
            "a SETQUOTA \"\" (STORAGE)",
            "a SETQUOTA \"\" (STORAGE 1",
            "a SETQUOTA \"\" (1 STORAGE)",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    proptest! {
        /// SETQUOTA written with any root and limits parses back to them.
        #[test]
        fn setquota_round_trips(
            root in "[ -~]{0,30}",
            limits in proptest::collection::vec(("[A-Z][A-Z-]{0,10}", any::<u64>()), 0..4),
        ) {
            let list = limits.iter().map(|(n, v)| format!("{n} {v}")).collect::<Vec<_>>().join(" ");
            let cmd = format!("a SETQUOTA {} ({list})", String::from_utf8_lossy(&encode::string(root.as_bytes())));
            prop_assert_eq!(
                parse_command(cmd.as_bytes()).map(|c| c.body),
                Ok(CommandBody::SetQuota { root, limits })
            );
        }
    }
}
