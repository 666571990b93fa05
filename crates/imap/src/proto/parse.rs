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

    // ---- commands: the grammar entries of the command table ----

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

    /// LOGIN (RFC 9051 §6.2.3): `userid SP password`.
    pub(super) fn login(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let user = self.astring_utf8()?;
        self.sp()?;
        let password = self.astring_utf8()?;
        Ok(CommandBody::Login { user, password })
    }

    /// AUTHENTICATE (RFC 9051 §6.2.2) with SASL-IR (RFC 4959).
    pub(super) fn authenticate(&mut self) -> PResult<CommandBody> {
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
    pub(super) fn enable(&mut self) -> PResult<CommandBody> {
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
    pub(super) fn id(&mut self) -> PResult<CommandBody> {
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

    /// SELECT and EXAMINE (RFC 9051 §6.3.2) with the CONDSTORE and QRESYNC
    /// parameters (RFC 7162 §3.1.8, §3.2.5).
    pub(super) fn select(&mut self, read_only: bool) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut condstore = false;
        let mut qresync = None;
        if self.eat(b' ') {
            self.expect(b'(')?;
            loop {
                if self.eat_keyword("CONDSTORE") {
                    condstore = true;
                } else if self.eat_keyword("QRESYNC ") {
                    if qresync.is_some() {
                        return Err("QRESYNC given twice".into());
                    }
                    qresync = Some(self.qresync()?);
                } else {
                    return Err(
                        "unknown SELECT parameter (CONDSTORE and QRESYNC are supported)".into(),
                    );
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Select {
            mailbox,
            condstore,
            qresync,
            read_only,
        })
    }

    /// CREATE (RFC 9051 §6.3.4) with the USE parameter (RFC 6154 §3).
    pub(super) fn create(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.expect(b'(')?;
            if !self.eat_keyword("USE") {
                return Err("unknown CREATE parameter (only USE is supported)".into());
            }
            self.sp()?;
            special_use = self.flag_list()?;
            self.expect(b')')?;
        }
        Ok(CommandBody::Create {
            mailbox,
            special_use,
        })
    }

    pub(super) fn delete(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::Delete(self.mailbox()?))
    }

    pub(super) fn rename(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let from = self.mailbox()?;
        self.sp()?;
        let to = self.mailbox()?;
        Ok(CommandBody::Rename { from, to })
    }

    /// SUBSCRIBE and UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8).
    pub(super) fn subscribe(&mut self, subscribe: bool) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if subscribe {
            CommandBody::Subscribe(mailbox)
        } else {
            CommandBody::Unsubscribe(mailbox)
        })
    }

    /// LSUB (RFC 3501 §6.3.9).
    pub(super) fn lsub(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let reference = self.mailbox()?;
        self.sp()?;
        let pattern = self.list_mailbox()?;
        Ok(CommandBody::Lsub { reference, pattern })
    }

    /// STATUS (RFC 9051 §6.3.11).
    pub(super) fn status(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let items = self.status_items()?;
        Ok(CommandBody::Status { mailbox, items })
    }

    /// SETACL (RFC 4314 §3.1): `mailbox SP identifier SP mod-rights`.
    pub(super) fn set_acl(&mut self) -> PResult<CommandBody> {
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
    pub(super) fn delete_acl(&mut self) -> PResult<CommandBody> {
        let (mailbox, identifier) = self.mailbox_identifier()?;
        Ok(CommandBody::DeleteAcl {
            mailbox,
            identifier,
        })
    }

    /// LISTRIGHTS (RFC 4314 §3.4).
    pub(super) fn list_rights(&mut self) -> PResult<CommandBody> {
        let (mailbox, identifier) = self.mailbox_identifier()?;
        Ok(CommandBody::ListRights {
            mailbox,
            identifier,
        })
    }

    /// GETACL (RFC 4314 §3.3).
    pub(super) fn get_acl(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::GetAcl(self.mailbox()?))
    }

    /// MYRIGHTS (RFC 4314 §3.5).
    pub(super) fn my_rights(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::MyRights(self.mailbox()?))
    }

    /// GETQUOTA (RFC 9208 §4.1.1).
    pub(super) fn get_quota(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::GetQuota(self.astring_utf8()?))
    }

    /// GETQUOTAROOT (RFC 9208 §4.1.2).
    pub(super) fn get_quota_root(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::GetQuotaRoot(self.mailbox()?))
    }

    /// COPY and MOVE (RFC 9051 §6.4.7, §6.4.8), and their UID forms.
    pub(super) fn copy(&mut self, uid: bool, move_: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if move_ {
            CommandBody::Move { uid, set, mailbox }
        } else {
            CommandBody::Copy { uid, set, mailbox }
        })
    }

    /// UID EXPUNGE (RFC 4315 §2.1).
    pub(super) fn uid_expunge(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::Expunge {
            uids: Some(self.sequence_set()?),
        })
    }

    fn status_items(&mut self) -> PResult<Vec<StatusItem>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        loop {
            let a = self.atom()?.to_ascii_uppercase();
            items.push(match a.as_str() {
                "MESSAGES" => StatusItem::Messages,
                "UIDNEXT" => StatusItem::UidNext,
                "UIDVALIDITY" => StatusItem::UidValidity,
                "UNSEEN" => StatusItem::Unseen,
                "DELETED" => StatusItem::Deleted,
                "SIZE" => StatusItem::Size,
                "RECENT" => StatusItem::Recent,
                "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                "DELETED-STORAGE" => StatusItem::DeletedStorage,
                _ => return Err(format!("unknown STATUS item {a}").into()),
            });
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }

    pub(super) fn list(&mut self) -> PResult<CommandBody> {
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

    pub(super) fn append(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        while self.eat(b' ') {
            let mut flags = Vec::new();
            let mut date = None;
            if self.peek() == Some(b'(') {
                flags = self.flag_list()?;
                self.sp()?;
            }
            if self.peek() == Some(b'"') {
                date = Some(self.date_time()?);
                self.sp()?;
            }
            let data = if self.eat_keyword("UTF8 (") {
                let d = self.literal(true)?;
                self.expect(b')')?;
                d
            } else {
                self.literal(true)?
            };
            messages.push(AppendMessage { flags, date, data });
        }
        if messages.is_empty() {
            return Err("APPEND needs a message literal".into());
        }
        Ok(CommandBody::Append { mailbox, messages })
    }

    pub(super) fn search(&mut self, uid: bool) -> PResult<CommandBody> {
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

    /// SORT (RFC 5256 §5): `[RETURN (options) SP] (criteria) SP charset SP keys`;
    /// RETURN is ESORT's (RFC 5267 §3.2).
    pub(super) fn sort(&mut self, uid: bool) -> PResult<CommandBody> {
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
    pub(super) fn thread(&mut self, uid: bool) -> PResult<CommandBody> {
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

    /// SETQUOTA (RFC 9208 §4.1.3): `root SP "(" [name SP number *(SP name SP number)] ")"`.
    pub(super) fn set_quota(&mut self) -> PResult<CommandBody> {
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

    /// The charset SORT and THREAD require, then SP.
    fn required_charset(&mut self) -> PResult<()> {
        let charset = self.astring_utf8()?;
        if !charset.eq_ignore_ascii_case("UTF-8") && !charset.eq_ignore_ascii_case("US-ASCII") {
            return Err(ParseErrorKind::BadCharset(charset));
        }
        self.sp()
    }

    /// One or more search keys separated by SP, as one key.
    fn search_program(&mut self) -> PResult<SearchKey> {
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

    pub(super) fn fetch(&mut self, uid: bool) -> PResult<CommandBody> {
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

    /// The inside of `QRESYNC (...)` after the keyword (RFC 7162 §3.2.5):
    /// `(uidvalidity modseq [known-uids] [(known-sequence-set known-uid-set)])`.
    fn qresync(&mut self) -> PResult<Qresync> {
        self.expect(b'(')?;
        let uid_validity = self.nz_number()?;
        self.sp()?;
        let modseq = self.number64()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') && self.peek() != Some(b'(') {
            let ranges = self.explicit_set("known-uids")?;
            known_uids = Some(
                SequenceSet::Ranges(
                    ranges
                        .iter()
                        .map(|&(a, b)| (SeqNumber::Value(a), SeqNumber::Value(b)))
                        .collect(),
                )
                .numbers(0),
            );
            self.eat(b' ');
        }
        if self.eat(b'(') {
            let seqs = self.explicit_set("known-sequence-set")?;
            self.sp()?;
            let uids = self.explicit_set("known-uid-set")?;
            self.expect(b')')?;
            let count = |r: &[(u32, u32)]| -> Option<u64> {
                let mut last = 0u32;
                let mut n = 0u64;
                for &(a, b) in r {
                    // Both sets are ascending (RFC 7162 §3.2.5.2).
                    if a <= last || b < a {
                        return None;
                    }
                    last = b;
                    n += u64::from(b - a) + 1;
                }
                Some(n)
            };
            match (count(&seqs), count(&uids)) {
                (Some(a), Some(b)) if a == b => seq_match = Some((seqs, uids)),
                (Some(_), Some(_)) => {
                    return Err("message sequence match data: the two sets differ in length".into());
                }
                _ => return Err("message sequence match data must be ascending".into()),
            }
        }
        self.expect(b')')?;
        Ok(Qresync {
            uid_validity,
            modseq,
            known_uids,
            seq_match,
        })
    }

    /// A sequence set of plain numbers (`*` and `$` are not allowed), as the
    /// client wrote its ranges.
    fn explicit_set(&mut self, what: &str) -> PResult<Vec<(u32, u32)>> {
        match self.sequence_set()? {
            SequenceSet::Ranges(r) => r
                .into_iter()
                .map(|(a, b)| match (a, b) {
                    (SeqNumber::Value(a), SeqNumber::Value(b)) => Ok((a, b)),
                    _ => Err(format!("{what} may not contain *").into()),
                })
                .collect(),
            SequenceSet::Saved => Err(format!("{what} may not be $").into()),
        }
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
                            .map(|f| super::encode::astring(&f.to_ascii_uppercase()))
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

    pub(super) fn store(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.eat(b'(') {
            if !self.eat_keyword("UNCHANGEDSINCE ") {
                return Err("unknown STORE modifier (only UNCHANGEDSINCE is supported)".into());
            }
            unchanged_since = Some(self.number64()?);
            self.expect(b')')?;
            self.sp()?;
        }
        let op = if self.eat(b'+') {
            FlagOp::Add
        } else if self.eat(b'-') {
            FlagOp::Remove
        } else {
            FlagOp::Replace
        };
        if !self.eat_keyword("FLAGS") {
            return Err("expected FLAGS, +FLAGS or -FLAGS".into());
        }
        let silent = self.eat_keyword(".SILENT");
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store {
            uid,
            set,
            op,
            silent,
            flags,
            unchanged_since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> CommandBody {
        match parse_command(s.as_bytes()) {
            Ok(c) => c.body,
            Err(e) => panic!("{s:?}: {e:?}"),
        }
    }

    fn bad(s: &str) -> ParseError {
        parse_command(s.as_bytes()).expect_err(s)
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse("a1 NOOP"), CommandBody::Noop);
        assert_eq!(parse("a1 capability"), CommandBody::Capability);
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
        assert_eq!(
            parse("x SELECT inbox"),
            CommandBody::Select {
                mailbox: "inbox".into(),
                read_only: false,
                condstore: false,
                qresync: None
            }
        );
        assert_eq!(
            parse("x EXAMINE \"a b\" (condstore)"),
            CommandBody::Select {
                mailbox: "a b".into(),
                read_only: true,
                condstore: true,
                qresync: None
            }
        );
        assert_eq!(
            parse("x SELECT INBOX (QRESYNC (67890007 90060115194045000 41,43:211,214:541))"),
            CommandBody::Select {
                mailbox: "INBOX".into(),
                read_only: false,
                condstore: false,
                qresync: Some(Qresync {
                    uid_validity: 67890007,
                    modseq: 90060115194045000,
                    known_uids: Some(vec![(41, 41), (43, 211), (214, 541)]),
                    seq_match: None,
                })
            }
        );
        assert_eq!(
            parse("x EXAMINE INBOX (CONDSTORE qresync (9 0 (1:3,7 10:12,20)))"),
            CommandBody::Select {
                mailbox: "INBOX".into(),
                read_only: true,
                condstore: true,
                qresync: Some(Qresync {
                    uid_validity: 9,
                    modseq: 0,
                    known_uids: None,
                    seq_match: Some((vec![(1, 3), (7, 7)], vec![(10, 12), (20, 20)])),
                })
            }
        );
        let CommandBody::Select {
            qresync: Some(q), ..
        } = parse("x SELECT INBOX (QRESYNC (9 5 5:1,9 (2,4 7,9)))")
        else {
            panic!("no QRESYNC")
        };
        assert_eq!(q.known_uids, Some(vec![(1, 5), (9, 9)]));
        assert_eq!(
            q.seq_match_pairs().collect::<Vec<_>>(),
            vec![(2, 7), (4, 9)]
        );
        assert!(q.knows(3) && q.knows(9) && !q.knows(6) && !q.knows(10));
        for bad in [
            "x SELECT INBOX (QRESYNC)",
            "x SELECT INBOX (QRESYNC ())",
            "x SELECT INBOX (QRESYNC (0 5))",
            "x SELECT INBOX (QRESYNC (9))",
            "x SELECT INBOX (QRESYNC (9 5 1:*))",
            "x SELECT INBOX (QRESYNC (9 5 $))",
            "x SELECT INBOX (QRESYNC (9 5 1:9 (1:3 4:5)))",
            "x SELECT INBOX (QRESYNC (9 5 1:9 (3,1 4,5)))",
            "x SELECT INBOX (QRESYNC (9 5 1:9 (1,2 4,*)))",
            "x SELECT INBOX (QRESYNC (9 5 1:9 (1,2 4,5))",
            "x SELECT INBOX (QRESYNC (9 5) QRESYNC (9 5))",
            "x SELECT INBOX (QRESYNC (9 18446744073709551616))",
            "x SELECT INBOX (CONDSTORE FOO)",
            "x SELECT INBOX ()",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            parse("x CREATE Foo (USE (\\Sent))"),
            CommandBody::Create {
                mailbox: "Foo".into(),
                special_use: vec!["\\Sent".into()]
            }
        );
        assert_eq!(
            parse("x RENAME a b"),
            CommandBody::Rename {
                from: "a".into(),
                to: "b".into()
            }
        );
        assert_eq!(
            parse("x UID EXPUNGE 1:3"),
            CommandBody::Expunge {
                uids: Some(SequenceSet::Ranges(vec![(
                    SeqNumber::Value(1),
                    SeqNumber::Value(3)
                )]))
            }
        );
    }

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

    #[test]
    fn append_and_store() {
        let CommandBody::Append { mailbox, messages } = parse(
            "a APPEND Drafts (\\Draft \\Seen) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nhello ~{3+}\r\na\0b",
        ) else {
            panic!()
        };
        assert_eq!(mailbox, "Drafts");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].flags, vec!["\\Draft", "\\Seen"]);
        assert_eq!(
            messages[0].date.map(|d| d.unix_timestamp()),
            Some(760686745)
        );
        assert_eq!(messages[1].data, b"a\0b");
        assert!(bad("a APPEND x {3}\r\na\0b").message().contains("NUL"));
        for (cmd, since, vanished) in [
            (
                "a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHED)",
                Some(7),
                true,
            ),
            (
                "a UID FETCH 1:* FLAGS (vanished changedsince 7)",
                Some(7),
                true,
            ),
            ("a UID FETCH 1:* FLAGS (CHANGEDSINCE 7)", Some(7), false),
            ("a FETCH 1:* FLAGS (CHANGEDSINCE 0)", Some(0), false),
        ] {
            let CommandBody::Fetch {
                changed_since,
                vanished: v,
                ..
            } = parse(cmd)
            else {
                panic!("{cmd}")
            };
            assert_eq!((changed_since, v), (since, vanished), "{cmd}");
        }
        for cmd in [
            "a FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHED)",
            "a UID FETCH 1:* FLAGS (VANISHED)",
            "a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHEDX)",
            "a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 CHANGEDSINCE 8)",
            "a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 )",
            "a UID FETCH 1:* FLAGS ()",
        ] {
            assert!(parse_command(cmd.as_bytes()).is_err(), "{cmd}");
        }
        assert_eq!(
            parse("a UID STORE 1:* (UNCHANGEDSINCE 12) +FLAGS.SILENT (\\Deleted $Junk)"),
            CommandBody::Store {
                uid: true,
                set: SequenceSet::Ranges(vec![(SeqNumber::Value(1), SeqNumber::Largest)]),
                op: FlagOp::Add,
                silent: true,
                flags: vec!["\\Deleted".into(), "$Junk".into()],
                unchanged_since: Some(12)
            }
        );
        assert!(matches!(
            parse("a STORE 1 FLAGS \\Seen"),
            CommandBody::Store {
                op: FlagOp::Replace,
                silent: false,
                ..
            }
        ));
        assert!(matches!(
            parse("a UID MOVE 1:2 Trash"),
            CommandBody::Move { uid: true, .. }
        ));
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
