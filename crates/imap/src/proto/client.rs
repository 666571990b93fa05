//! A client's reading of server responses, for tests only: our own small parser
//! of the response grammar (RFC 9051 §9), independent of the encoder, so that
//! the round-trip properties below mean something. What the encoder writes for
//! any response value, this parser must read back equal.

use std::borrow::Cow;

use mailroom_store::Rights;

use super::response::{Code, Status, Tagged};
use super::untagged::{Esearch, FetchItem, FetchResponse, MailboxName, Namespace, Untagged};
use super::utf7;

/// One parsed response line.
#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    Untagged(Untagged),
    Fetch(FetchResponse<'static>),
}

type R<T> = Result<T, String>;

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Mailbox names are UTF-8 (else modified UTF-7).
    utf8: bool,
}

impl<'a> Reader<'a> {
    fn err<T>(&self, what: &str) -> R<T> {
        Err(format!(
            "{what} at {}: {:?}",
            self.pos,
            String::from_utf8_lossy(&self.input[self.pos.min(self.input.len())..])
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, s: &[u8]) -> bool {
        if self.input[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &[u8]) -> R<()> {
        if self.eat(s) {
            Ok(())
        } else {
            self.err(&format!("expected {:?}", String::from_utf8_lossy(s)))
        }
    }

    /// Bytes up to (not including) the first of `stops`, or the end.
    fn until(&mut self, stops: &[u8]) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if stops.contains(&b) {
                break;
            }
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    fn word(&mut self) -> R<String> {
        let w = self.until(b" ()[]\r");
        if w.is_empty() {
            return self.err("expected a word");
        }
        Ok(String::from_utf8_lossy(w).into_owned())
    }

    fn number<T: std::str::FromStr>(&mut self) -> R<T> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit() || b == b'-') {
            self.pos += 1;
        }
        match std::str::from_utf8(&self.input[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            Some(n) => Ok(n),
            None => self.err("expected a number"),
        }
    }

    fn literal(&mut self) -> R<Vec<u8>> {
        self.eat(b"~");
        self.expect(b"{")?;
        let n: usize = self.number()?;
        self.expect(b"}\r\n")?;
        if self.pos + n > self.input.len() {
            return self.err("literal longer than the input");
        }
        let data = self.input[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(data)
    }

    /// A quoted string or a literal.
    fn string(&mut self) -> R<Vec<u8>> {
        if self.eat(b"\"") {
            let mut out = Vec::new();
            loop {
                match self.peek() {
                    None => return self.err("unterminated quoted string"),
                    Some(b'"') => {
                        self.pos += 1;
                        return Ok(out);
                    }
                    Some(b'\\') => {
                        self.pos += 1;
                        match self.peek() {
                            Some(b) => out.push(b),
                            None => return self.err("escape at the end"),
                        }
                        self.pos += 1;
                    }
                    Some(b) => {
                        out.push(b);
                        self.pos += 1;
                    }
                }
            }
        }
        self.literal()
    }

    fn astring(&mut self) -> R<String> {
        let bytes = match self.peek() {
            Some(b'"' | b'{' | b'~') => self.string()?,
            // ASTRING-CHAR: an atom may hold `[` and `]`.
            _ => {
                let atom = self.until(b" ()\r");
                if atom.is_empty() {
                    return self.err("expected an astring");
                }
                atom.to_vec()
            }
        };
        String::from_utf8(bytes).map_err(|e| e.to_string())
    }

    fn mailbox(&mut self) -> R<MailboxName> {
        let wire = self.astring()?;
        let name = if self.utf8 {
            wire
        } else {
            match utf7::decode(&wire) {
                Some(n) => n,
                None => return self.err("mailbox name is not modified UTF-7"),
            }
        };
        Ok(MailboxName::new(name, self.utf8))
    }

    /// `(a b c)` of words.
    fn word_list(&mut self) -> R<Vec<String>> {
        self.expect(b"(")?;
        let mut out = Vec::new();
        while !self.eat(b")") {
            if !out.is_empty() {
                self.expect(b" ")?;
            }
            out.push(self.word()?);
        }
        Ok(out)
    }

    /// A sequence set of numbers and `a:b` runs, expanded in order.
    fn sequence_set(&mut self) -> R<Vec<u32>> {
        let mut out = Vec::new();
        loop {
            let a: u32 = self.number()?;
            if self.eat(b":") {
                let b: u32 = self.number()?;
                out.extend(a..=b);
            } else {
                out.push(a);
            }
            if !self.eat(b",") {
                return Ok(out);
            }
        }
    }

    /// Rights as a response shows them, less the legacy `c` and `d`.
    fn rights(&mut self) -> R<Rights> {
        let shown = self.astring()?;
        Rights::parse(&shown.replace(['c', 'd'], "")).map_err(|c| format!("right {c}"))
    }

    /// A parenthesised expression taken as it is (ENVELOPE, BODYSTRUCTURE).
    fn balanced(&mut self) -> R<String> {
        let start = self.pos;
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return self.err("unbalanced parentheses"),
                Some(b'"') => {
                    self.string()?;
                    continue;
                }
                Some(b'(') => depth += 1,
                Some(b')') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.pos += 1;
                        break;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Ok(String::from_utf8_lossy(&self.input[start..self.pos]).into_owned())
    }

    fn code(&mut self) -> R<Code> {
        let name = self.word()?;
        let code = match name.as_str() {
            "ALERT" => Code::Alert,
            "CLOSED" => Code::Closed,
            "READ-ONLY" => Code::ReadOnly,
            "READ-WRITE" => Code::ReadWrite,
            "TRYCREATE" => Code::TryCreate,
            "CANNOT" => Code::Cannot,
            "NONEXISTENT" => Code::Nonexistent,
            "UIDNEXT" | "UIDVALIDITY" | "UNSEEN" => {
                self.expect(b" ")?;
                let n = self.number()?;
                match name.as_str() {
                    "UIDNEXT" => Code::UidNext(n),
                    "UIDVALIDITY" => Code::UidValidity(n),
                    _ => Code::Unseen(n),
                }
            }
            "HIGHESTMODSEQ" => {
                self.expect(b" ")?;
                Code::HighestModSeq(self.number()?)
            }
            "PERMANENTFLAGS" => {
                self.expect(b" ")?;
                Code::PermanentFlags(self.word_list()?)
            }
            "COPYUID" => {
                self.expect(b" ")?;
                let validity = self.number()?;
                self.expect(b" ")?;
                let source = self.sequence_set()?;
                self.expect(b" ")?;
                let destination = self.sequence_set()?;
                Code::CopyUid {
                    validity,
                    source,
                    destination,
                }
            }
            "CAPABILITY" => {
                self.expect(b" ")?;
                Code::Capability(String::from_utf8_lossy(self.until(b"]")).into_owned())
            }
            _ => return self.err("unknown response code"),
        };
        self.expect(b"]")?;
        Ok(code)
    }

    fn status(&mut self, status: Status) -> R<Untagged> {
        self.expect(b" ")?;
        let code = if self.eat(b"[") {
            let code = self.code()?;
            self.expect(b" ")?;
            Some(code)
        } else {
            None
        };
        let text = String::from_utf8_lossy(self.until(b"\r")).into_owned();
        Ok(Untagged::Status(Tagged { status, code, text }))
    }

    fn namespaces(&mut self) -> R<Vec<Namespace>> {
        if self.eat(b"NIL") {
            return Ok(Vec::new());
        }
        self.expect(b"(")?;
        let mut out = Vec::new();
        while self.eat(b"(") {
            let prefix = self.astring()?;
            self.expect(b" ")?;
            let delimiter = self.astring()?;
            self.expect(b")")?;
            let Some(delimiter) = delimiter.chars().next() else {
                return self.err("empty delimiter");
            };
            out.push(Namespace { prefix, delimiter });
        }
        self.expect(b")")?;
        Ok(out)
    }

    /// `a b c` after a keyword: numbers, each preceded by a space.
    fn numbers(&mut self) -> R<Vec<u32>> {
        let mut out = Vec::new();
        while self.peek() == Some(b' ') && self.input.get(self.pos + 1) != Some(&b'(') {
            self.pos += 1;
            out.push(self.number()?);
        }
        Ok(out)
    }

    fn esearch(&mut self) -> R<Esearch> {
        self.expect(b" (TAG ")?;
        let tag = self.astring()?;
        self.expect(b")")?;
        let mut e = Esearch {
            tag,
            ..Esearch::default()
        };
        while self.eat(b" ") {
            match self.word()?.as_str() {
                "UID" => e.uid = true,
                "MIN" => e.min = Some(self.space_number()?),
                "MAX" => e.max = Some(self.space_number()?),
                "COUNT" => e.count = Some(self.space_number()?),
                "MODSEQ" => e.modseq = Some(self.space_number()?),
                "ALL" => {
                    self.expect(b" ")?;
                    e.all = Some(self.sequence_set()?);
                }
                _ => return self.err("unknown ESEARCH item"),
            }
        }
        Ok(e)
    }

    fn space_number<T: std::str::FromStr>(&mut self) -> R<T> {
        self.expect(b" ")?;
        self.number()
    }

    fn part(&mut self) -> R<Vec<u32>> {
        let text = String::from_utf8_lossy(self.until(b"]")).into_owned();
        self.expect(b"]")?;
        if text.is_empty() {
            return Ok(Vec::new());
        }
        text.split('.')
            .map(|n| n.parse().map_err(|_| format!("bad part {text}")))
            .collect()
    }

    fn origin(&mut self) -> R<Option<u32>> {
        if self.eat(b"<") {
            let n = self.number()?;
            self.expect(b">")?;
            Ok(Some(n))
        } else {
            Ok(None)
        }
    }

    fn internal_date(&mut self) -> R<(i64, i32)> {
        // "17-Jul-1996 02:44:25 -0700"
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let text = String::from_utf8(self.string()?).map_err(|e| e.to_string())?;
        let bad = || format!("bad date {text:?}");
        let num = |s: &str| s.trim().parse::<i64>().map_err(|_| bad());
        let (date, rest) = text.split_once(' ').ok_or_else(bad)?;
        let (clock, zone) = rest.split_once(' ').ok_or_else(bad)?;
        let d: Vec<&str> = date.split('-').collect();
        let c: Vec<&str> = clock.split(':').collect();
        let ([day, month, year], [h, m, sec]) = (d.as_slice(), c.as_slice()) else {
            return Err(bad());
        };
        let month = MONTHS.iter().position(|x| x == month).ok_or_else(bad)? + 1;
        let month = time::Month::try_from(month as u8).map_err(|_| bad())?;
        let date = time::Date::from_calendar_date(num(year)? as i32, month, num(day)? as u8)
            .map_err(|_| bad())?;
        let local = date
            .with_hms(num(h)? as u8, num(m)? as u8, num(sec)? as u8)
            .map_err(|_| bad())?
            .assume_utc()
            .unix_timestamp();
        let (sign, digits) = zone.split_at(1);
        let minutes = num(&digits[..2])? * 60 + num(&digits[2..])?;
        let offset = if sign == "-" { -minutes } else { minutes };
        Ok((local - offset * 60, offset as i32))
    }

    fn fetch_item(&mut self) -> R<FetchItem<'static>> {
        let name = String::from_utf8_lossy(self.until(b" [")).into_owned();
        let item = match name.as_str() {
            "UID" => FetchItem::Uid(self.space_number()?),
            "RFC822.SIZE" => FetchItem::Rfc822Size(self.space_number()?),
            "MODSEQ" => {
                self.expect(b" (")?;
                let m = self.number()?;
                self.expect(b")")?;
                FetchItem::ModSeq(m)
            }
            "FLAGS" => {
                self.expect(b" ")?;
                FetchItem::Flags(self.word_list()?)
            }
            "INTERNALDATE" => {
                self.expect(b" ")?;
                let (unix, offset_minutes) = self.internal_date()?;
                FetchItem::InternalDate {
                    unix,
                    offset_minutes,
                }
            }
            "ENVELOPE" | "BODY" | "BODYSTRUCTURE" if self.peek() == Some(b' ') => {
                self.expect(b" ")?;
                let text = Cow::Owned(self.balanced()?);
                match name.as_str() {
                    "ENVELOPE" => FetchItem::Envelope(text),
                    "BODY" => FetchItem::Body(text),
                    _ => FetchItem::BodyStructure(text),
                }
            }
            "RFC822" | "RFC822.HEADER" | "RFC822.TEXT" => {
                self.expect(b" ")?;
                let data = Cow::Owned(self.literal()?);
                match name.as_str() {
                    "RFC822" => FetchItem::Rfc822(data),
                    "RFC822.HEADER" => FetchItem::Rfc822Header(data),
                    _ => FetchItem::Rfc822Text(data),
                }
            }
            "BODY" => {
                self.expect(b"[")?;
                let section = String::from_utf8_lossy(self.until(b"]")).into_owned();
                self.expect(b"]")?;
                let origin = self.origin()?;
                self.expect(b" ")?;
                FetchItem::BodySection {
                    section,
                    origin,
                    data: Cow::Owned(self.literal()?),
                }
            }
            "BINARY" => {
                self.expect(b"[")?;
                let part = self.part()?;
                let origin = self.origin()?;
                self.expect(b" ")?;
                let data = if self.eat(b"NIL") {
                    None
                } else {
                    Some(Cow::Owned(self.literal()?))
                };
                FetchItem::Binary { part, origin, data }
            }
            "BINARY.SIZE" => {
                self.expect(b"[")?;
                let part = self.part()?;
                FetchItem::BinarySize {
                    part,
                    size: self.space_number()?,
                }
            }
            _ => return self.err("unknown FETCH item"),
        };
        Ok(item)
    }

    fn numbered(&mut self) -> R<Response> {
        let n: u32 = self.number()?;
        self.expect(b" ")?;
        let what = self.word()?;
        Ok(Response::Untagged(match what.as_str() {
            "EXISTS" => Untagged::Exists(n),
            "RECENT" => Untagged::Recent(n),
            "EXPUNGE" => Untagged::Expunge(n),
            "FETCH" => {
                self.expect(b" (")?;
                let mut items = Vec::new();
                while !self.eat(b")") {
                    if !items.is_empty() {
                        self.expect(b" ")?;
                    }
                    items.push(self.fetch_item()?);
                }
                return Ok(Response::Fetch(FetchResponse { seq: n, items }));
            }
            _ => return self.err("unknown numbered response"),
        }))
    }

    fn response(&mut self) -> R<Response> {
        self.expect(b"* ")?;
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return self.numbered();
        }
        let keyword = self.word()?;
        let r = match keyword.as_str() {
            "OK" => self.status(Status::Ok)?,
            "NO" => self.status(Status::No)?,
            "BAD" => self.status(Status::Bad)?,
            "BYE" => {
                self.expect(b" ")?;
                Untagged::Bye(String::from_utf8_lossy(self.until(b"\r")).into_owned())
            }
            "CAPABILITY" => {
                self.expect(b" ")?;
                Untagged::Capability(String::from_utf8_lossy(self.until(b"\r")).into_owned())
            }
            "ENABLED" => {
                let mut caps = Vec::new();
                while self.eat(b" ") {
                    caps.push(self.word()?);
                }
                Untagged::Enabled(caps)
            }
            "ID" => {
                self.expect(b" ")?;
                let mut fields = Vec::new();
                if !self.eat(b"NIL") {
                    self.expect(b"(")?;
                    while !self.eat(b")") {
                        if !fields.is_empty() {
                            self.expect(b" ")?;
                        }
                        let field = self.astring()?;
                        self.expect(b" ")?;
                        fields.push((field, self.astring()?));
                    }
                }
                Untagged::Id(fields)
            }
            "NAMESPACE" => {
                self.expect(b" ")?;
                let personal = self.namespaces()?;
                self.expect(b" ")?;
                let other = self.namespaces()?;
                self.expect(b" ")?;
                let shared = self.namespaces()?;
                Untagged::Namespace {
                    personal,
                    other,
                    shared,
                }
            }
            "FLAGS" => {
                self.expect(b" ")?;
                Untagged::Flags(self.word_list()?)
            }
            "VANISHED" => {
                self.expect(b" ")?;
                let earlier = self.eat(b"(EARLIER) ");
                Untagged::Vanished {
                    earlier,
                    uids: self.sequence_set()?,
                }
            }
            "LIST" | "LSUB" => {
                self.expect(b" ")?;
                let attributes = self.word_list()?;
                self.expect(b" \"/\" ")?;
                let mailbox = self.mailbox()?;
                let mut child_info = Vec::new();
                if self.eat(b" (CHILDINFO (") {
                    while !self.eat(b"))") {
                        if !child_info.is_empty() {
                            self.expect(b" ")?;
                        }
                        child_info.push(self.astring()?);
                    }
                }
                Untagged::List {
                    lsub: keyword == "LSUB",
                    attributes,
                    mailbox,
                    child_info,
                }
            }
            "STATUS" => {
                self.expect(b" ")?;
                let mailbox = self.mailbox()?;
                self.expect(b" (")?;
                let mut items = Vec::new();
                while !self.eat(b")") {
                    if !items.is_empty() {
                        self.expect(b" ")?;
                    }
                    let name = self.word()?;
                    items.push((name, self.space_number()?));
                }
                Untagged::MailboxStatus { mailbox, items }
            }
            "SEARCH" => {
                let numbers = self.numbers()?;
                let modseq = if self.eat(b" (MODSEQ ") {
                    let m = self.number()?;
                    self.expect(b")")?;
                    Some(m)
                } else {
                    None
                };
                Untagged::Search { numbers, modseq }
            }
            "ESEARCH" => Untagged::Esearch(self.esearch()?),
            "SORT" => Untagged::Sort(self.numbers()?),
            "ACL" => {
                self.expect(b" ")?;
                let mailbox = self.mailbox()?;
                let mut entries = Vec::new();
                while self.eat(b" ") {
                    let identifier = self.astring()?;
                    self.expect(b" ")?;
                    entries.push((identifier, self.rights()?));
                }
                Untagged::Acl { mailbox, entries }
            }
            "LISTRIGHTS" => {
                self.expect(b" ")?;
                let mailbox = self.mailbox()?;
                self.expect(b" ")?;
                let identifier = self.astring()?;
                self.expect(b" ")?;
                let required = self.rights()?;
                let mut optional = Vec::new();
                while self.eat(b" ") {
                    optional.push(self.astring()?);
                }
                Untagged::ListRights {
                    mailbox,
                    identifier,
                    required,
                    optional,
                }
            }
            "MYRIGHTS" => {
                self.expect(b" ")?;
                let mailbox = self.mailbox()?;
                self.expect(b" ")?;
                Untagged::MyRights {
                    mailbox,
                    rights: self.rights()?,
                }
            }
            "QUOTA" => {
                self.expect(b" ")?;
                let root = self.astring()?;
                self.expect(b" (")?;
                let mut resources = Vec::new();
                while !self.eat(b")") {
                    if !resources.is_empty() {
                        self.expect(b" ")?;
                    }
                    let name = self.word()?;
                    let usage = self.space_number()?;
                    resources.push((name, usage, self.space_number()?));
                }
                Untagged::Quota { root, resources }
            }
            "QUOTAROOT" => {
                self.expect(b" ")?;
                let mailbox = self.mailbox()?;
                let mut roots = Vec::new();
                while self.eat(b" ") {
                    roots.push(self.astring()?);
                }
                Untagged::QuotaRoot { mailbox, roots }
            }
            _ => return self.err("unknown response"),
        };
        Ok(Response::Untagged(r))
    }
}

/// Reads one response line (CRLF included) and nothing after it.
pub fn parse_response(line: &[u8], utf8: bool) -> R<Response> {
    let mut reader = Reader {
        input: line,
        pos: 0,
        utf8,
    };
    let response = reader.response()?;
    reader.expect(b"\r\n")?;
    if reader.pos != line.len() {
        return reader.err("trailing input");
    }
    Ok(response)
}

#[cfg(test)]
mod round_trip {
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        "[A-Za-z][ -~]{0,30}"
    }

    fn atom() -> impl Strategy<Value = String> {
        "[A-Za-z0-9=+.$-]{1,12}"
    }

    fn flag() -> impl Strategy<Value = String> {
        "\\\\?[A-Za-z$][A-Za-z0-9_-]{0,10}"
    }

    /// Any printable name, including quotes, backslashes, non-ASCII and long ones.
    fn any_string() -> impl Strategy<Value = String> {
        prop_oneof!["\\PC{0,20}", "[\"\\\\ a]{0,8}", "x{1020,1030}"]
    }

    fn mailbox() -> impl Strategy<Value = MailboxName> {
        (any_string(), any::<bool>()).prop_map(|(name, utf8)| MailboxName::new(name, utf8))
    }

    fn rights() -> impl Strategy<Value = Rights> {
        (0u16..(1 << 11)).prop_map(|bits| {
            let letters: String = Rights::LETTERS
                .chars()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, c)| c)
                .collect();
            Rights::parse(&letters).unwrap_or(Rights::NONE)
        })
    }

    fn code() -> impl Strategy<Value = Code> {
        prop_oneof![
            Just(Code::Alert),
            Just(Code::Closed),
            Just(Code::ReadOnly),
            Just(Code::ReadWrite),
            Just(Code::TryCreate),
            Just(Code::Cannot),
            Just(Code::Nonexistent),
            any::<u32>().prop_map(Code::UidNext),
            any::<u32>().prop_map(Code::UidValidity),
            any::<u32>().prop_map(Code::Unseen),
            any::<u64>().prop_map(Code::HighestModSeq),
            vec(flag(), 0..5).prop_map(Code::PermanentFlags),
            (any::<u32>(), vec(1u32..50, 1..6)).prop_map(|(validity, uids)| {
                Code::CopyUid {
                    validity,
                    destination: uids.iter().map(|u| u + 100).collect(),
                    source: uids,
                }
            }),
            vec(atom(), 1..5).prop_map(|c| Code::Capability(c.join(" "))),
        ]
    }

    fn untagged() -> impl Strategy<Value = Untagged> {
        let namespaces = || {
            vec(
                (any_string(), prop_oneof![Just('/'), Just('.')])
                    .prop_map(|(prefix, delimiter)| Namespace { prefix, delimiter }),
                0..3,
            )
        };
        prop_oneof![
            (
                prop_oneof![Just(Status::Ok), Just(Status::No), Just(Status::Bad)],
                option::of(code()),
                text()
            )
                .prop_map(|(status, code, text)| Untagged::Status(Tagged {
                    status,
                    code,
                    text
                })),
            text().prop_map(Untagged::Bye),
            vec(atom(), 1..6).prop_map(|c| Untagged::Capability(c.join(" "))),
            vec(atom(), 0..4).prop_map(Untagged::Enabled),
            vec((any_string(), any_string()), 0..4).prop_map(Untagged::Id),
            (namespaces(), namespaces(), namespaces()).prop_map(|(personal, other, shared)| {
                Untagged::Namespace {
                    personal,
                    other,
                    shared,
                }
            }),
            vec(flag(), 0..6).prop_map(Untagged::Flags),
            any::<u32>().prop_map(Untagged::Exists),
            any::<u32>().prop_map(Untagged::Recent),
            any::<u32>().prop_map(Untagged::Expunge),
            (any::<bool>(), vec(1u32..1000, 1..20)).prop_map(|(earlier, mut uids)| {
                uids.sort_unstable();
                uids.dedup();
                Untagged::Vanished { earlier, uids }
            }),
            (
                any::<bool>(),
                vec(flag(), 0..4),
                mailbox(),
                vec("[A-Z]{1,10}", 0..3)
            )
                .prop_map(|(lsub, attributes, mailbox, child_info)| Untagged::List {
                    lsub,
                    attributes,
                    mailbox,
                    child_info,
                }),
            (mailbox(), vec(("[A-Z-]{1,15}", any::<u64>()), 0..6))
                .prop_map(|(mailbox, items)| Untagged::MailboxStatus { mailbox, items }),
            (vec(any::<u32>(), 0..20), option::of(any::<u64>()))
                .prop_map(|(numbers, modseq)| Untagged::Search { numbers, modseq }),
            (
                "[A-Za-z0-9]{1,8}",
                any::<bool>(),
                option::of(any::<u32>()),
                option::of(any::<u32>()),
                option::of(vec(1u32..500, 1..30)),
                option::of(any::<u32>()),
                option::of(any::<u64>())
            )
                .prop_map(|(tag, uid, min, max, all, count, modseq)| {
                    Untagged::Esearch(Esearch {
                        tag,
                        uid,
                        min,
                        max,
                        all,
                        count,
                        modseq,
                    })
                }),
            vec(any::<u32>(), 0..20).prop_map(Untagged::Sort),
            (mailbox(), vec((any_string(), rights()), 0..4))
                .prop_map(|(mailbox, entries)| Untagged::Acl { mailbox, entries }),
            (mailbox(), any_string(), rights(), vec("[a-z]{1,3}", 0..5)).prop_map(
                |(mailbox, identifier, required, optional)| Untagged::ListRights {
                    mailbox,
                    identifier,
                    required,
                    optional,
                }
            ),
            (mailbox(), rights())
                .prop_map(|(mailbox, rights)| Untagged::MyRights { mailbox, rights }),
            (
                any_string(),
                vec(("[A-Z-]{1,12}", any::<u64>(), any::<u64>()), 0..3)
            )
                .prop_map(|(root, resources)| Untagged::Quota { root, resources }),
            (mailbox(), vec(any_string(), 0..3))
                .prop_map(|(mailbox, roots)| Untagged::QuotaRoot { mailbox, roots }),
        ]
    }

    fn bytes() -> impl Strategy<Value = Cow<'static, [u8]>> {
        vec(any::<u8>(), 0..64).prop_map(Cow::Owned)
    }

    fn fetch_item() -> impl Strategy<Value = FetchItem<'static>> {
        let views = || "\\((\"[a-z ]{0,5}\"|NIL|[0-9]{1,3}|\\(NIL\\))( (\"[a-z()]{0,5}\"|NIL|[0-9]{1,3}))*\\)";
        prop_oneof![
            any::<u32>().prop_map(FetchItem::Uid),
            vec(flag(), 0..5).prop_map(FetchItem::Flags),
            any::<u64>().prop_map(FetchItem::ModSeq),
            (0i64..4_000_000_000, -720i32..=840).prop_map(|(unix, offset_minutes)| {
                FetchItem::InternalDate {
                    unix,
                    offset_minutes,
                }
            }),
            any::<u64>().prop_map(FetchItem::Rfc822Size),
            views().prop_map(|v| FetchItem::Envelope(Cow::Owned(v))),
            views().prop_map(|v| FetchItem::Body(Cow::Owned(v))),
            views().prop_map(|v| FetchItem::BodyStructure(Cow::Owned(v))),
            bytes().prop_map(FetchItem::Rfc822),
            bytes().prop_map(FetchItem::Rfc822Header),
            bytes().prop_map(FetchItem::Rfc822Text),
            ("[A-Z0-9.]{0,12}", option::of(any::<u32>()), bytes()).prop_map(
                |(section, origin, data)| FetchItem::BodySection {
                    section,
                    origin,
                    data,
                }
            ),
            (
                vec(1u32..20, 0..4),
                option::of(any::<u32>()),
                option::of(bytes())
            )
                .prop_map(|(part, origin, data)| FetchItem::Binary {
                    part,
                    origin,
                    data
                }),
            (vec(1u32..20, 0..4), any::<u64>())
                .prop_map(|(part, size)| FetchItem::BinarySize { part, size }),
        ]
    }

    proptest! {
        /// Every untagged response the encoder writes reads back equal.
        #[test]
        fn untagged_responses_round_trip(response in untagged()) {
            let mut out = Vec::new();
            response.encode(&mut out);
            let utf8 = match &response {
                Untagged::List { mailbox, .. }
                | Untagged::MailboxStatus { mailbox, .. }
                | Untagged::Acl { mailbox, .. }
                | Untagged::ListRights { mailbox, .. }
                | Untagged::MyRights { mailbox, .. }
                | Untagged::QuotaRoot { mailbox, .. } => mailbox.utf8,
                _ => false,
            };
            let back = parse_response(&out, utf8).map_err(TestCaseError::fail)?;
            prop_assert_eq!(back, Response::Untagged(response));
        }

        /// Every FETCH response reads back equal: literals, literal8 for data
        /// with NUL, NIL, dates, pre-encoded views.
        #[test]
        fn fetch_responses_round_trip(seq in 1u32.., items in vec(fetch_item(), 0..8)) {
            let response = FetchResponse { seq, items };
            let mut out = Vec::new();
            response.encode(&mut out);
            let back = parse_response(&out, false).map_err(TestCaseError::fail)?;
            prop_assert_eq!(back, Response::Fetch(response));
        }
    }

    #[test]
    fn flag_updates_have_one_form() {
        let flags = mailroom_store::Flags {
            system: mailroom_store::Flags::SEEN,
            keywords: std::iter::once("$Junk".to_string()).collect(),
        };
        let mut out = Vec::new();
        FetchResponse::flags_update(3, Some(7), Some((&flags, true)), Some(12)).encode(&mut out);
        assert_eq!(
            out,
            b"* 3 FETCH (UID 7 FLAGS (\\Seen \\Recent $Junk) MODSEQ (12))\r\n"
        );
        out.clear();
        FetchResponse::flags_update(3, None, None, Some(12)).encode(&mut out);
        assert_eq!(out, b"* 3 FETCH (MODSEQ (12))\r\n");
    }

    #[test]
    fn literal8_only_with_nul() {
        let mut out = Vec::new();
        FetchResponse {
            seq: 1,
            items: vec![
                FetchItem::Binary {
                    part: vec![1],
                    origin: None,
                    data: Some(Cow::Borrowed(b"a\0b")),
                },
                FetchItem::BodySection {
                    section: "1".into(),
                    origin: Some(2),
                    data: Cow::Borrowed(b"ab"),
                },
            ],
        }
        .encode(&mut out);
        assert_eq!(
            out,
            b"* 1 FETCH (BINARY[1] ~{3}\r\na\0b BODY[1]<2> {2}\r\nab)\r\n"
        );
    }
}
