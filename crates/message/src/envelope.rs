//! ENVELOPE (RFC 9051 §7.5.2) from raw header fields.
//!
//! Strings are the raw header text, unfolded, never RFC 2047-decoded;
//! addresses are parsed per RFC 5322 §3.4 with Dovecot's leniency: a
//! missing local part or domain is reported as `MISSING_MAILBOX` /
//! `MISSING_DOMAIN`, a comment stands in for a missing display name.

use crate::header::{Field, Lexer, is_atext};
use crate::imapstr;

/// One element of an IMAP address list: (name adl mailbox host).
/// Group start is (NIL NIL "group" NIL), group end (NIL NIL NIL NIL)
/// (RFC 9051 §7.5.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Address {
    pub name: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
}

/// Writes the parenthesised ENVELOPE for a header block's fields.
pub(crate) fn write(out: &mut String, fields: &[Field<'_>]) {
    // For repeated string fields the last one counts, as in Dovecot.
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|f| f.has_colon && f.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value)
    };
    // Repeated address fields are concatenated, as Dovecot does.
    let addrs = |name: &str| {
        let list: Vec<Address> = fields
            .iter()
            .filter(|f| f.has_colon && f.name.eq_ignore_ascii_case(name.as_bytes()))
            .flat_map(|f| parse_address_list(f.value))
            .collect();
        (!list.is_empty()).then_some(list)
    };
    out.push('(');
    imapstr::nstring_nolf(out, get("date"));
    out.push(' ');
    match get("subject") {
        Some(s) => imapstr::string_for_humans(out, s),
        None => out.push_str("NIL"),
    }
    let from = addrs("from");
    let sender = addrs("sender").or_else(|| from.clone());
    let reply_to = addrs("reply-to").or_else(|| from.clone());
    for list in [
        from,
        sender,
        reply_to,
        addrs("to"),
        addrs("cc"),
        addrs("bcc"),
    ] {
        out.push(' ');
        write_list(out, list.as_deref());
    }
    out.push(' ');
    imapstr::nstring_nolf(out, get("in-reply-to"));
    out.push(' ');
    imapstr::nstring_nolf(out, get("message-id"));
    out.push(')');
}

fn write_list(out: &mut String, list: Option<&[Address]>) {
    let Some(list) = list else {
        out.push_str("NIL");
        return;
    };
    out.push('(');
    for a in list {
        out.push('(');
        match &a.name {
            Some(n) => imapstr::string_for_humans(out, n),
            None => out.push_str("NIL"),
        }
        out.push(' ');
        imapstr::nstring_nolf(out, a.route.as_deref());
        out.push(' ');
        imapstr::nstring_nolf(out, a.mailbox.as_deref());
        out.push(' ');
        imapstr::nstring_nolf(out, a.host.as_deref());
        out.push(')');
    }
    out.push(')');
}

/// RFC 5322 §3.4 address-list, groups flattened into IMAP's markers.
pub(crate) fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let mut lx = Lexer::new(value);
    let mut out = Vec::new();
    let mut in_group = false;
    while !lx.at_end() {
        lx.skip_cfws();
        match lx.peek() {
            None => break,
            Some(b',') => {
                lx.i += 1;
                continue;
            }
            Some(b';') if in_group => {
                lx.i += 1;
                out.push(Address::default());
                in_group = false;
                continue;
            }
            _ => {}
        }
        let start = lx.i;
        if !in_group {
            let mut phrase = Vec::new();
            phrase_into(&mut lx, &mut phrase);
            lx.skip_cfws();
            if lx.peek() == Some(b':') {
                lx.i += 1;
                out.push(Address {
                    mailbox: Some(phrase),
                    ..Address::default()
                });
                in_group = true;
                continue;
            }
            lx.i = start;
        }
        let before = lx.i;
        let addr = mailbox(&mut lx);
        out.push(addr);
        // Recover from junk: skip to the next separator.
        lx.skip_cfws();
        while let Some(b) = lx.peek() {
            if b == b',' || (in_group && b == b';') {
                break;
            }
            if b == b'"' {
                lx.quoted();
            } else if b == b'(' {
                lx.skip_cfws();
            } else {
                lx.i += 1;
            }
        }
        if lx.i == before {
            lx.i += 1;
        }
    }
    if in_group {
        out.push(Address::default());
    }
    out
}

/// RFC 5322 phrase / obs-phrase: words joined by single spaces, quoted
/// strings unquoted, encoded words kept as they are. Returns `false` if
/// nothing was read.
fn phrase_into(lx: &mut Lexer<'_>, out: &mut Vec<u8>) -> bool {
    let mut any = false;
    loop {
        lx.skip_cfws();
        let word = match lx.peek() {
            Some(b'"') => lx.quoted(),
            Some(b) if is_atext(b) || b == b'.' => {
                let start = lx.i;
                while lx.peek().is_some_and(|b| is_atext(b) || b == b'.') {
                    lx.i += 1;
                }
                lx.s.get(start..lx.i).unwrap_or_default().to_vec()
            }
            _ => return any,
        };
        if any {
            out.push(b' ');
        }
        out.extend_from_slice(&word);
        any = true;
    }
}

/// RFC 5322 §3.4 mailbox = name-addr / addr-spec.
fn mailbox(lx: &mut Lexer<'_>) -> Address {
    let start = lx.i;
    let mut phrase = Vec::new();
    let has_phrase = phrase_into(lx, &mut phrase);
    lx.skip_cfws();
    let mut addr = Address::default();
    if lx.peek() == Some(b'<') {
        lx.i += 1;
        if has_phrase && !phrase.is_empty() {
            addr.name = Some(phrase);
        }
        lx.skip_cfws();
        if lx.peek() == Some(b'@') {
            // obs-route: "@a,@b:" kept as the IMAP adl.
            let rstart = lx.i;
            while lx.peek().is_some_and(|b| b != b':' && b != b'>') {
                lx.i += 1;
            }
            if lx.peek() == Some(b':') {
                let route: Vec<u8> =
                    lx.s.get(rstart..lx.i)
                        .unwrap_or_default()
                        .iter()
                        .copied()
                        .filter(|b| !b" \t\r\n".contains(b))
                        .collect();
                addr.route = Some(route);
                lx.i += 1;
            } else {
                lx.i = rstart;
            }
        }
        addr_spec(lx, &mut addr);
        lx.skip_cfws();
        if lx.peek() == Some(b'>') {
            lx.i += 1;
        }
    } else {
        lx.i = start;
        lx.last_comment = None;
        addr_spec(lx, &mut addr);
        lx.skip_cfws();
        addr.name = lx.last_comment.take().filter(|c| !c.is_empty());
        if !(lx.at_end() || matches!(lx.peek(), Some(b',' | b';'))) {
            // Junk after an addr-spec ("bad address here"): Dovecot gives
            // the words as the name of an address with nothing in it.
            return Address {
                name: has_phrase.then_some(phrase),
                route: None,
                mailbox: Some(b"MISSING_MAILBOX".to_vec()),
                host: Some(b"MISSING_DOMAIN".to_vec()),
            };
        }
    }
    if addr.mailbox.as_ref().is_none_or(|m| m.is_empty()) {
        addr.mailbox = Some(b"MISSING_MAILBOX".to_vec());
    }
    if addr.host.as_ref().is_none_or(|h| h.is_empty()) {
        addr.host = Some(b"MISSING_DOMAIN".to_vec());
    }
    addr
}

/// addr-spec = local-part "@" domain, with obs-local-part.
fn addr_spec(lx: &mut Lexer<'_>, addr: &mut Address) {
    let mut local = Vec::new();
    loop {
        lx.skip_cfws();
        match lx.peek() {
            Some(b'"') => local.extend_from_slice(&lx.quoted()),
            Some(b) if is_atext(b) => local.extend_from_slice(lx.atom()),
            _ => break,
        }
        lx.skip_cfws();
        if lx.peek() == Some(b'.') {
            lx.i += 1;
            local.push(b'.');
        } else {
            break;
        }
    }
    addr.mailbox = Some(local);
    lx.skip_cfws();
    if lx.peek() != Some(b'@') {
        return;
    }
    lx.i += 1;
    lx.skip_cfws();
    let mut domain = Vec::new();
    if lx.peek() == Some(b'[') {
        let start = lx.i;
        while let Some(b) = lx.peek() {
            lx.i += 1;
            if b == b']' {
                break;
            }
            if b == b'\\' {
                lx.i += 1;
            }
        }
        domain.extend(
            lx.s.get(start..lx.i.min(lx.s.len()))
                .unwrap_or_default()
                .iter()
                .filter(|b| !b"\r\n".contains(b)),
        );
    } else {
        loop {
            lx.skip_cfws();
            let a = lx.atom();
            if a.is_empty() {
                break;
            }
            domain.extend_from_slice(a);
            lx.skip_cfws();
            if lx.peek() == Some(b'.') {
                lx.i += 1;
                domain.push(b'.');
            } else {
                break;
            }
        }
    }
    addr.host = Some(domain);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(|n| n.as_bytes().to_vec()),
            route: None,
            mailbox: Some(mailbox.as_bytes().to_vec()),
            host: Some(host.as_bytes().to_vec()),
        }
    }

    #[test]
    fn simple_addresses() {
        assert_eq!(
            parse_address_list(b"\"John X. Doe\" <jdoe@machine.example>, mary@x.test"),
            vec![
                a(Some("John X. Doe"), "jdoe", "machine.example"),
                a(None, "mary", "x.test")
            ]
        );
        assert_eq!(
            parse_address_list(b"mary@x.test (Mary Smith)"),
            vec![a(Some("Mary Smith"), "mary", "x.test")]
        );
        assert_eq!(
            parse_address_list(b"=?utf-8?q?J=C3=B6rg?= <j@x.test>"),
            vec![a(Some("=?utf-8?q?J=C3=B6rg?="), "j", "x.test")]
        );
    }

    #[test]
    fn groups_and_missing_parts() {
        let g = parse_address_list(b"A Group: ed@x.test, joe@y.test;, z@w.test");
        assert_eq!(g.len(), 5);
        assert_eq!(g[0].mailbox.as_deref(), Some(&b"A Group"[..]));
        assert_eq!(g[0].host, None);
        assert_eq!(g[3], Address::default());
        assert_eq!(
            parse_address_list(b"foo"),
            vec![a(None, "foo", "MISSING_DOMAIN")]
        );
        assert_eq!(
            parse_address_list(b"MAILER DAEMON <>"),
            vec![a(
                Some("MAILER DAEMON"),
                "MISSING_MAILBOX",
                "MISSING_DOMAIN"
            )]
        );
        let r = parse_address_list(b"<@a.test,@b.test:joe@c.test>");
        assert_eq!(r[0].route.as_deref(), Some(&b"@a.test,@b.test"[..]));
    }
}
