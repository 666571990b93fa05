//! The ACL commands (RFC 4314 §3): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS.

use super::*;

impl Parser<'_> {
    /// SETACL (RFC 4314 §3.1): `mailbox SP identifier SP mod-rights`.
    pub(in crate::proto) fn set_acl(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let identifier = self.astring_utf8()?;
        self.sp()?;
        let mod_rights = self.astring_utf8()?;
        let (op, letters) = match mod_rights.as_bytes().first() {
            Some(b'+') => (RightsOp::Add, &mod_rights[1..]),
            Some(b'-') => (RightsOp::Remove, &mod_rights[1..]),
            _ => (RightsOp::Replace, mod_rights.as_str()),
        };
        // RFC 4314 §3.1: an unrecognised right is a BAD.
        let rights = Rights::parse(letters)
            .map_err(|c| format!("{c:?} is not an access right (RFC 4314 §2.1)"))?;
        Ok(CommandBody::SetAcl {
            mailbox,
            identifier,
            op,
            rights,
        })
    }

    /// `mailbox SP identifier`, of DELETEACL and LISTRIGHTS.
    fn mailbox_identifier(&mut self) -> PResult<(WireName, String)> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let identifier = self.astring_utf8()?;
        Ok((mailbox, identifier))
    }

    /// DELETEACL (RFC 4314 §3.2).
    pub(in crate::proto) fn delete_acl(&mut self) -> PResult<CommandBody> {
        let (mailbox, identifier) = self.mailbox_identifier()?;
        Ok(CommandBody::DeleteAcl {
            mailbox,
            identifier,
        })
    }

    /// LISTRIGHTS (RFC 4314 §3.4).
    pub(in crate::proto) fn list_rights(&mut self) -> PResult<CommandBody> {
        let (mailbox, identifier) = self.mailbox_identifier()?;
        Ok(CommandBody::ListRights {
            mailbox,
            identifier,
        })
    }

    /// GETACL (RFC 4314 §3.3).
    pub(in crate::proto) fn get_acl(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::GetAcl(self.mailbox()?))
    }

    /// MYRIGHTS (RFC 4314 §3.5).
    pub(in crate::proto) fn my_rights(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::MyRights(self.mailbox()?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bad, parse};
    use super::*;

    #[test]
    fn acl_commands() {
        assert_eq!(
            parse("a SETACL Projects alice@example.org lrs"),
            CommandBody::SetAcl {
                mailbox: "Projects".into(),
                identifier: "alice@example.org".into(),
                op: RightsOp::Replace,
                rights: Rights::parse("lrs").unwrap_or_default(),
            }
        );
        assert_eq!(
            parse("a setacl \"Shared/bob@example.org/X\" anyone +cd"),
            CommandBody::SetAcl {
                mailbox: "Shared/bob@example.org/X".into(),
                identifier: "anyone".into(),
                op: RightsOp::Add,
                rights: Rights::parse("kxet").unwrap_or_default(),
            }
        );
        assert_eq!(
            parse("a SETACL INBOX {5+}\r\nfred@ \"-w\""),
            CommandBody::SetAcl {
                mailbox: "INBOX".into(),
                identifier: "fred@".into(),
                op: RightsOp::Remove,
                rights: Rights::WRITE,
            }
        );
        assert_eq!(
            parse("a SETACL INBOX bob \"\""),
            CommandBody::SetAcl {
                mailbox: "INBOX".into(),
                identifier: "bob".into(),
                op: RightsOp::Replace,
                rights: Rights::NONE,
            }
        );
        assert_eq!(
            parse("a DELETEACL INBOX bob"),
            CommandBody::DeleteAcl {
                mailbox: "INBOX".into(),
                identifier: "bob".into()
            }
        );
        assert_eq!(
            parse("a LISTRIGHTS INBOX authenticated"),
            CommandBody::ListRights {
                mailbox: "INBOX".into(),
                identifier: "authenticated".into()
            }
        );
        assert_eq!(parse("a GETACL INBOX"), CommandBody::GetAcl("INBOX".into()));
        assert_eq!(
            parse("a MYRIGHTS \"a b\""),
            CommandBody::MyRights("a b".into())
        );
        assert!(bad("a SETACL INBOX bob lrz").message().contains("'z'"));
        bad("a SETACL INBOX bob");
        bad("a SETACL INBOX");
        bad("a GETACL");
        bad("a GETACL INBOX extra");
        bad("a DELETEACL INBOX");
        bad("a MYRIGHTS");
        bad("a LISTRIGHTS INBOX");
    }
}
