//! The command grammar of RFC 9051 §9 (and RFC 3501 for IMAP4rev1), plus the
//! extensions we advertise: LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819),
//! SPECIAL-USE (RFC 6154), ESEARCH/SEARCHRES (RFC 4731/5182), BINARY (RFC 3516),
//! MULTIAPPEND (RFC 3502), UIDPLUS (RFC 4315), MOVE (RFC 6851), ID (RFC 2971),
//! ENABLE (RFC 5161), SASL-IR (RFC 4959), ACL (RFC 4314), SORT and THREAD (RFC 5256)
//! with ESORT (RFC 5267) and SORT=DISPLAY (RFC 5957), QUOTA (RFC 9208).
//!
//! Input is one complete command as the framing layer assembled it: the lines
//! without the final CRLF, with every literal left in wire form (`{n}` CRLF and
//! the n octets), so the parser sees exactly what the client sent.
//!
//! This file holds what every command shares: the tag, the command name (looked
//! up in the command table, whose entry names the grammar function that parses
//! the rest), strings, numbers, sequence sets, flags and dates. The arguments of
//! each command group are parsed in its own file, with its own tests: `auth`
//! (LOGIN, AUTHENTICATE, ENABLE, ID), `mailbox` (SELECT, CREATE, STATUS,
//! APPEND, ...), `list`, `acl`, `quota`, `search`, `sort` (and THREAD), `fetch`
//! and `store` (and COPY, MOVE, UID EXPUNGE).

mod acl;
mod auth;
mod fetch;
mod list;
mod mailbox;
mod quota;
mod search;
mod sort;
mod store;

use mailroom_message::{Section, SectionText};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::commands::{self, CommandSpec};
use super::types::*;

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The tag, if the command got that far.
    pub tag: Option<String>,
    pub kind: ParseErrorKind,
}

/// The kinds of refusal the grammar knows; the session answers each its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not the grammar: `BAD` with the text, which says what was expected.
    Syntax(String),
    /// SEARCH CHARSET names a charset we do not support: `NO [BADCHARSET (...)]`
    /// with [`SEARCH_CHARSETS`] (RFC 9051 §6.4.4).
    BadCharset(String),
}

/// The charsets SEARCH, SORT and THREAD accept (RFC 9051 §6.4.4 requires these two).
pub const SEARCH_CHARSETS: &[&str] = &["UTF-8", "US-ASCII"];

impl ParseError {
    /// What went wrong, for logs and the BAD text.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

impl std::fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseErrorKind::Syntax(text) => f.write_str(text),
            ParseErrorKind::BadCharset(charset) => write!(
                f,
                "unsupported charset {charset} (supported: {})",
                SEARCH_CHARSETS.join(", ")
            ),
        }
    }
}

impl From<String> for ParseErrorKind {
    fn from(text: String) -> Self {
        ParseErrorKind::Syntax(text)
    }
}

impl From<&str> for ParseErrorKind {
    fn from(text: &str) -> Self {
        ParseErrorKind::Syntax(text.to_string())
    }
}

pub(crate) type PResult<T> = Result<T, ParseErrorKind>;

/// Parses one command.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let mut p = Parser { s: input, pos: 0 };
    let tag = match p.tag() {
        Ok(tag) => tag,
        Err(kind) => return Err(ParseError { tag: None, kind }),
    };
    let parsed = (|| {
        p.sp()?;
        let spec = p.command_name()?;
        let body = (spec.parse)(&mut p)?;
        if !p.at_end() {
            return Err(format!("unexpected characters after the {} command", spec.name).into());
        }
        Ok((spec, body))
    })();
    match parsed {
        Ok((spec, body)) => Ok(Command { tag, spec, body }),
        Err(kind) => Err(ParseError {
            tag: Some(tag),
            kind,
        }),
    }
}

/// Extracts the tag of a line, if it has a valid one (for answering a line the
/// framing layer refused).
pub fn tag_of(line: &[u8]) -> Option<String> {
    let mut p = Parser { s: line, pos: 0 };
    p.tag().ok()
}

/// The table entry of the command a line starts, after its tag (for framing
/// decisions and metric labels before the command is whole).
pub fn command_of(line: &[u8]) -> Option<&'static CommandSpec> {
    let mut p = Parser { s: line, pos: 0 };
    p.tag().ok()?;
    p.sp().ok()?;
    p.command_name().ok()
}

/// Parses a date-time as APPEND takes it, without the quotes (`17-Jul-1996 02:44:25 -0700`).
pub fn parse_date_time(text: &str) -> Option<OffsetDateTime> {
    let mut quoted = Vec::with_capacity(text.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(text.as_bytes());
    quoted.push(b'"');
    let mut p = Parser { s: &quoted, pos: 0 };
    p.date_time().ok()
}

fn is_atom_char(b: u8) -> bool {
    !(b <= 0x1f || b == 0x7f || b == b' ' || b"(){%*\"\\]".contains(&b))
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || b == b'%' || b == b'*' || b == b']'
}

/// A cursor over one command's bytes.
pub struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> PResult<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(got) => format!("expected {:?} but found {:?}", b as char, got as char).into(),
                None => format!("expected {:?} but the command ended", b as char).into(),
            })
        }
    }

    fn sp(&mut self) -> PResult<()> {
        if self.eat(b' ') {
            Ok(())
        } else {
            Err("missing argument or space".into())
        }
    }

    /// Case-insensitive keyword match that must not be followed by more atom characters.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let end = self.pos + kw.len();
        if end <= self.s.len() && self.s[self.pos..end].eq_ignore_ascii_case(kw.as_bytes()) {
            self.pos = end;
            true
        } else {
            false
        }
    }

    fn tag(&mut self) -> PResult<String> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_astring_char(b) && b != b'+' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos == start {
            return Err("missing or invalid tag".into());
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if f(b) {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.s[start..self.pos]
    }

    fn atom(&mut self) -> PResult<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err("expected an atom".into());
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    fn number(&mut self) -> PResult<u32> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            return Err("expected a number".into());
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| "number out of range".into())
    }

    fn number64(&mut self) -> PResult<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            return Err("expected a number".into());
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| "number out of range".into())
    }

    fn nz_number(&mut self) -> PResult<u32> {
        let n = self.number()?;
        if n == 0 {
            Err("zero is not a valid number here".into())
        } else {
            Ok(n)
        }
    }

    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return Err("invalid escape in quoted string".into()),
                    }
                }
                Some(b'\r' | b'\n' | 0) => return Err("invalid character in quoted string".into()),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}` / `{n+}` CRLF and n octets; with `binary`, also `~{n}` (literal8).
    fn literal(&mut self, binary: bool) -> PResult<Vec<u8>> {
        let is8 = self.eat(b'~');
        if is8 && !binary {
            return Err("literal8 is not allowed here".into());
        }
        self.expect(b'{')?;
        let n = self.number()? as usize;
        self.eat(b'+');
        self.expect(b'}')?;
        if !self.s[self.pos..].starts_with(b"\r\n") {
            return Err("a literal must end its line".into());
        }
        self.pos += 2;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.s.len())
            .ok_or("literal is truncated")?;
        let data = self.s[self.pos..end].to_vec();
        self.pos = end;
        if !is8 && data.contains(&0) {
            return Err("NUL is not allowed in a literal (use literal8)".into());
        }
        Ok(data)
    }

    fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(false),
            _ => Err("expected a string".into()),
        }
    }

    fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    Err("expected an atom or string".into())
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    fn utf8(bytes: Vec<u8>) -> PResult<String> {
        String::from_utf8(bytes).map_err(|_| "the string is not valid UTF-8".into())
    }

    fn astring_utf8(&mut self) -> PResult<String> {
        let b = self.astring()?;
        Self::utf8(b)
    }

    fn nstring(&mut self) -> PResult<Option<String>> {
        if self.eat_keyword("NIL") {
            return Ok(None);
        }
        let b = self.string()?;
        Ok(Some(Self::utf8(b)?))
    }

    fn mailbox(&mut self) -> PResult<WireName> {
        self.astring_utf8()
    }

    fn list_mailbox(&mut self) -> PResult<WireName> {
        match self.peek() {
            Some(b'"' | b'{') => Self::utf8(self.string()?),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return Err("expected a mailbox pattern".into());
                }
                Self::utf8(a.to_vec())
            }
        }
    }

    fn seq_number(&mut self) -> PResult<SeqNumber> {
        if self.eat(b'*') {
            Ok(SeqNumber::Largest)
        } else {
            Ok(SeqNumber::Value(self.nz_number()?))
        }
    }

    fn sequence_set(&mut self) -> PResult<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let a = self
                .seq_number()
                .map_err(|_| "invalid sequence set".to_string())?;
            let b = if self.eat(b':') {
                self.seq_number()
                    .map_err(|_| "invalid sequence set".to_string())?
            } else {
                a
            };
            ranges.push((a, b));
            if !self.eat(b',') {
                break;
            }
        }
        if self.peek().is_some_and(|b| b != b' ' && b != b')') {
            return Err("invalid sequence set".into());
        }
        Ok(SequenceSet::Ranges(ranges))
    }

    fn flag(&mut self) -> PResult<String> {
        if self.eat(b'\\') {
            let a = self.atom()?;
            Ok(format!("\\{a}"))
        } else {
            self.atom()
        }
    }

    fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.expect(b'(')?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    fn month(&mut self) -> PResult<Month> {
        const MONTHS: [&str; 12] = [
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ];
        for (i, m) in MONTHS.iter().enumerate() {
            if self.eat_keyword(m) {
                return Month::try_from(i as u8 + 1).map_err(|e| e.to_string().into());
            }
        }
        Err("invalid month".into())
    }

    fn date_text(&mut self) -> PResult<Date> {
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            return Err("invalid day".into());
        }
        let day: u8 = std::str::from_utf8(day)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or("invalid day")?;
        self.expect(b'-')?;
        let month = self.month()?;
        self.expect(b'-')?;
        let year = self.take_while(|b| b.is_ascii_digit());
        if year.len() != 4 {
            return Err("invalid year".into());
        }
        let year: i32 = std::str::from_utf8(year)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or("invalid year")?;
        Date::from_calendar_date(year, month, day).map_err(|e| format!("invalid date: {e}").into())
    }

    fn date(&mut self) -> PResult<Date> {
        if self.eat(b'"') {
            let d = self.date_text()?;
            self.expect(b'"')?;
            Ok(d)
        } else {
            self.date_text()
        }
    }

    fn two_digits(&mut self) -> PResult<u8> {
        let d = self.s.get(self.pos..self.pos + 2).ok_or("truncated time")?;
        if !d.iter().all(u8::is_ascii_digit) {
            return Err("invalid time".into());
        }
        self.pos += 2;
        Ok((d[0] - b'0') * 10 + (d[1] - b'0'))
    }

    fn date_time(&mut self) -> PResult<OffsetDateTime> {
        self.expect(b'"')?;
        self.eat(b' ');
        let date = self.date_text()?;
        self.sp()?;
        let h = self.two_digits()?;
        self.expect(b':')?;
        let m = self.two_digits()?;
        self.expect(b':')?;
        let s = self.two_digits()?;
        self.sp()?;
        let sign = match self.peek() {
            Some(b'+') => 1i32,
            Some(b'-') => -1,
            _ => return Err("invalid zone".into()),
        };
        self.pos += 1;
        let zh = self.two_digits()? as i32;
        let zm = self.two_digits()? as i32;
        self.expect(b'"')?;
        let time = Time::from_hms(h, m, s).map_err(|e| format!("invalid time: {e}"))?;
        let offset = UtcOffset::from_whole_seconds(sign * (zh * 3600 + zm * 60))
            .map_err(|e| format!("invalid zone: {e}"))?;
        Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
    }

    // ---- the command name; the arguments are parsed in the group files ----

    /// The command name after the tag, `UID` and the word after it together.
    fn command_name(&mut self) -> PResult<&'static CommandSpec> {
        let name = self.atom()?;
        if name.eq_ignore_ascii_case("UID") {
            self.sp()?;
            let sub = self.atom()?;
            return commands::find_words(&name, Some(&sub))
                .ok_or_else(|| format!("unknown UID command {}", sub.to_ascii_uppercase()).into());
        }
        commands::find(&name)
            .ok_or_else(|| format!("unknown command {}", name.to_ascii_uppercase()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse(s: &str) -> CommandBody {
        match parse_command(s.as_bytes()) {
            Ok(c) => c.body,
            Err(e) => panic!("{s:?}: {e:?}"),
        }
    }

    pub(super) fn bad(s: &str) -> ParseError {
        parse_command(s.as_bytes()).expect_err(s)
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse("a1 NOOP"), CommandBody::Noop);
        assert_eq!(parse("a1 capability"), CommandBody::Capability);
    }

    #[test]
    fn errors_keep_the_tag() {
        assert_eq!(bad("a1 FROB").tag.as_deref(), Some("a1"));
        assert_eq!(bad("+ NOOP").tag, None);
        assert_eq!(bad("").tag, None);
        assert!(bad("a1 NOOP extra").message().contains("NOOP"));
        assert!(bad("a1 LOGIN joe").tag.is_some());
        assert!(bad("a1 LOGIN {5}\r\njoe").message().contains("truncated"));
        assert!(bad("a1 SELECT").tag.is_some());
        assert!(bad("a1 FETCH 0 FLAGS").message().contains("sequence"));
        assert!(bad("a1 FETCH 1:x FLAGS").message().contains("sequence"));
        assert!(bad("a1 FETCH 1 (FLAGS").tag.is_some());
        assert!(bad("a1 FETCH 1 BODY[1.]").tag.is_some());
        assert!(bad("a1 FETCH 1 BODY[MIME]").tag.is_some());
        assert!(bad("a1 SEARCH FOO").message().contains("FOO"));
        assert!(
            bad("a1 SEARCH CHARSET KOI8-R ALL").kind == ParseErrorKind::BadCharset("KOI8-R".into())
        );
        assert!(bad("a1 LIST (RECURSIVEMATCH) \"\" *").tag.is_some());
        assert!(bad("a1 STORE 1 FLAGS (\\Seen").tag.is_some());
        assert!(bad("a1 SEARCH NOT").tag.is_some());
    }

    #[test]
    fn sequence_sets() {
        let CommandBody::Fetch { set, .. } = parse("a FETCH 1:*,5,7:3 UID") else {
            panic!()
        };
        assert_eq!(set.numbers(10), vec![(1, 10)]);
        let CommandBody::Fetch { set, .. } = parse("a FETCH 4,7:5,1 UID") else {
            panic!()
        };
        assert_eq!(set.numbers(10), vec![(1, 1), (4, 7)]);
        assert!(set.within(7));
        assert!(!set.within(6));
        let CommandBody::Fetch { set, .. } = parse("a UID FETCH $ UID") else {
            panic!()
        };
        assert_eq!(set, SequenceSet::Saved);
        let CommandBody::Fetch { set, .. } = parse("a FETCH * UID") else {
            panic!()
        };
        assert!(!set.within(0));
    }

    #[test]
    fn never_panics_on_prefixes() {
        let inputs = [
            "a UID SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 OR (FROM joe SEEN) NOT KEYWORD $Junk 1:5 SINCE 1-Feb-2024",
            "a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From {2}\r\nTo)]<0.100> BINARY[2]<5.10>)",
            "a APPEND Drafts (\\Draft) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nhello",
            "a LIST (SUBSCRIBED) \"\" (INBOX* %) RETURN (CHILDREN STATUS (MESSAGES))",
        ];
        for input in inputs {
            for end in 0..input.len() {
                let _ = parse_command(&input.as_bytes()[..end]);
            }
        }
    }
}
