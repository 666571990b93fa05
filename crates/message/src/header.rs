//! Header fields as raw bytes, and the structured MIME fields IMAP reports.
//!
//! IMAP wants raw header text (RFC 9051 §7.5.2: ENVELOPE and BODYSTRUCTURE
//! strings are not RFC 2047-decoded), so fields are kept as slices of the
//! message and parsed here with a small RFC 5322 §3.2 lexer.

/// One header field, RFC 5322 §2.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// Field name as written (without trailing whitespace before the colon).
    pub name: &'a [u8],
    /// Raw value: after the colon and leading whitespace, up to the end of
    /// the last continuation line, line breaks still in place.
    pub value: &'a [u8],
    /// The whole field including its final line break, as in the message.
    pub raw: &'a [u8],
    /// `false` for a junk line without a colon; kept so that nothing of the
    /// header block is lost, but never matched by name.
    pub has_colon: bool,
}

/// Splits a header block into fields. Stops at the blank line.
pub(crate) fn fields<'a>(block: &'a [u8]) -> Vec<Field<'a>> {
    let mut out: Vec<Field<'a>> = Vec::new();
    let mut pos = 0;
    let mut start: Option<usize> = None;
    let flush = |out: &mut Vec<Field<'a>>, s: usize, e: usize| {
        if let Some(f) = field(block.get(s..e).unwrap_or_default()) {
            out.push(f);
        }
    };
    while pos < block.len() {
        let end = block
            .get(pos..)
            .and_then(|r| r.iter().position(|&b| b == b'\n'))
            .map_or(block.len(), |i| pos + i + 1);
        let line = block.get(pos..end).unwrap_or_default();
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            if let Some(s) = start {
                flush(&mut out, s, pos);
            }
            start = Some(pos);
        } else if start.is_none() {
            // Continuation without a field: keep it as a junk line.
            start = Some(pos);
        }
        pos = end;
    }
    if let Some(s) = start {
        flush(&mut out, s, pos);
    }
    out
}

fn field(raw: &[u8]) -> Option<Field<'_>> {
    if raw.is_empty() {
        return None;
    }
    let content = trim_line_break(raw);
    match content.iter().position(|&b| b == b':') {
        Some(colon) => {
            let name = trim_end_wsp(content.get(..colon).unwrap_or_default());
            let mut value = content.get(colon + 1..).unwrap_or_default();
            while let Some((&b, rest)) = value.split_first() {
                if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                    value = rest;
                } else {
                    break;
                }
            }
            Some(Field {
                name,
                value,
                raw,
                has_colon: true,
            })
        }
        None => Some(Field {
            name: content,
            value: b"",
            raw,
            has_colon: false,
        }),
    }
}

fn trim_line_break(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

fn trim_end_wsp(mut s: &[u8]) -> &[u8] {
    while let Some((&b, rest)) = s.split_last() {
        if matches!(b, b' ' | b'\t') {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// RFC 5322 §2.2.3 unfolding: remove the CR and LF of folded lines and keep
/// the whitespace that follows (what Dovecot's `_nolf` helpers do).
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

/// The first field called `name` (case-insensitive), raw value.
pub(crate) fn first<'a>(fields: &[Field<'a>], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.has_colon && f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value)
}

/// RFC 2045 §5.1 tspecials plus space and controls end a token.
fn is_token_byte(b: u8) -> bool {
    !(b <= b' '
        || b == 0x7f
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b'@'
                | b','
                | b';'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'='
        ))
}

/// MIME parameters as (name, value) pairs, both as written.
pub(crate) type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// A minimal RFC 5322 §3.2 lexer over a raw (possibly folded) field value.
pub(crate) struct Lexer<'a> {
    pub s: &'a [u8],
    pub i: usize,
    /// The last comment skipped (Dovecot uses it as a display name).
    pub last_comment: Option<Vec<u8>>,
}

impl<'a> Lexer<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            i: 0,
            last_comment: None,
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// Skips folding whitespace and comments (RFC 5322 §3.2.2 CFWS).
    /// Returns the text of the last comment seen, if any.
    pub fn skip_cfws(&mut self) -> Option<Vec<u8>> {
        let mut last = None;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => {
                    let c = self.comment();
                    self.last_comment = Some(c.clone());
                    last = Some(c);
                }
                _ => break,
            }
        }
        last
    }

    /// A (nested) comment; returns its unfolded content.
    fn comment(&mut self) -> Vec<u8> {
        let mut depth = 0usize;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'(' => {
                    if depth > 0 {
                        out.push(b);
                    }
                    depth += 1;
                }
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                    out.push(b);
                }
                b'\\' => {
                    if let Some(n) = self.peek() {
                        self.i += 1;
                        out.push(n);
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        out
    }

    /// A MIME token (RFC 2045 §5.1); empty if none.
    pub fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(is_token_byte) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or_default()
    }

    /// A quoted-string at the current position (which must be `"`),
    /// returning its content with quoting removed and line breaks dropped.
    pub fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.i += 1;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        self.i += 1;
                        out.push(n);
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        out
    }

    /// An RFC 5322 atom (atext plus 8-bit bytes, which real mail has).
    pub fn atom(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(is_atext) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or_default()
    }
}

/// RFC 5322 §3.2.3 atext, plus 8-bit bytes (RFC 6532).
pub(crate) fn is_atext(b: u8) -> bool {
    b >= 0x80
        || b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'/'
                | b'='
                | b'?'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        )
}

/// `;`-separated `name=value` parameters (RFC 2045 §5.1), with RFC 2231
/// continuations merged as Dovecot merges them.
pub(crate) fn params(lx: &mut Lexer<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        lx.skip_cfws();
        match lx.peek() {
            Some(b';') => lx.i += 1,
            _ => break,
        }
        lx.skip_cfws();
        let name = lx.token();
        if name.is_empty() {
            // Like Dovecot, stop at an empty parameter ("a=b;;c=d").
            break;
        }
        lx.skip_cfws();
        if lx.peek() != Some(b'=') {
            break;
        }
        lx.i += 1;
        lx.skip_cfws();
        let value = if lx.peek() == Some(b'"') {
            lx.quoted()
        } else {
            // Lenient: real mail has unquoted values with tspecials such as
            // "/" or "="; take everything up to ";" or whitespace.
            let start = lx.i;
            while lx
                .peek()
                .is_some_and(|b| !matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n' | b'"'))
            {
                lx.i += 1;
            }
            lx.s.get(start..lx.i).unwrap_or_default().to_vec()
        };
        out.push((name.to_vec(), value));
    }
    rfc2231_merge(out)
}

/// RFC 2231 §3 as Dovecot's rfc2231_parse does it: parameters without `*`
/// are kept in order; `name*`, `name*N` and `name*N*` pieces are sorted by
/// name and index and each name's pieces joined into one parameter (`name*`
/// if any piece is extended, with `''` prepended when the first piece is
/// not). If indexes have gaps the pieces are reported separately.
fn rfc2231_merge(params: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    struct Piece {
        key: Vec<u8>,
        idx: u32,
        extended: bool,
        value: Vec<u8>,
    }
    let mut plain = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    for (name, value) in params {
        let Some(star) = name.iter().position(|&b| b == b'*') else {
            plain.push((name, value));
            continue;
        };
        let key = name.get(..star).unwrap_or_default().to_vec();
        let mut rest = name.get(star + 1..).unwrap_or_default();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let idx = rest
            .get(..digits)
            .unwrap_or_default()
            .iter()
            .fold(0u32, |acc, d| {
                acc.wrapping_mul(10).wrapping_add(u32::from(d - b'0'))
            });
        if digits > 0 {
            rest = rest.get(digits..).unwrap_or_default();
        } else if !rest.is_empty() {
            // "name*x": not RFC 2231.
            plain.push((name, value));
            continue;
        } else {
            // "name*": a single extended value.
            rest = b"*";
        }
        let extended = rest == b"*";
        if !(rest.is_empty() || extended) {
            plain.push((name, value));
            continue;
        }
        pieces.push(Piece {
            key,
            idx,
            extended,
            value,
        });
    }
    pieces.sort_by(|a, b| {
        a.key
            .to_ascii_lowercase()
            .cmp(&b.key.to_ascii_lowercase())
            .then(a.idx.cmp(&b.idx))
    });
    let mut i = 0;
    while i < pieces.len() {
        let Some(first) = pieces.get(i) else { break };
        let mut j = i;
        let mut valid = true;
        let mut have_extended = false;
        while let Some(p) = pieces.get(j) {
            if !p.key.eq_ignore_ascii_case(&first.key) {
                break;
            }
            if p.idx as usize != j - i {
                valid = false;
            }
            have_extended |= p.extended;
            j += 1;
        }
        let group = pieces.get(i..j).unwrap_or_default();
        if valid {
            let mut value = Vec::new();
            if have_extended && !first.extended {
                value.extend_from_slice(b"''");
            }
            for p in group {
                value.extend_from_slice(&p.value);
            }
            let mut key = first.key.clone();
            if have_extended {
                key.push(b'*');
            }
            plain.push((key, value));
        } else {
            for p in group {
                let mut key = p.key.clone();
                key.extend_from_slice(format!("*{}", p.idx).as_bytes());
                if p.extended {
                    key.push(b'*');
                }
                plain.push((key, p.value.clone()));
            }
        }
        i = j;
    }
    plain
}

/// A parsed Content-Type (RFC 2045 §5.1), case kept as written because
/// Dovecot reports it that way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    /// Empty (with an empty subtype) when the header is present but broken.
    pub type_: Vec<u8>,
    pub subtype: Vec<u8>,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ContentType {
    /// Parses a Content-Type value; never fails (a broken value yields
    /// empty type and subtype), the `Option` is for the caller's absent case.
    pub fn parse(value: &[u8]) -> Option<ContentType> {
        let mut lx = Lexer::new(value);
        lx.skip_cfws();
        let type_ = lx.token().to_vec();
        lx.skip_cfws();
        let subtype = if lx.peek() == Some(b'/') {
            lx.i += 1;
            lx.skip_cfws();
            lx.token().to_vec()
        } else {
            Vec::new()
        };
        if !type_.is_empty() && subtype.is_empty() && lx.at_end() {
            // "Content-Type: text" alone: Dovecot keeps the type with an
            // empty subtype.
            return Some(ContentType {
                type_,
                subtype,
                params: Vec::new(),
            });
        }
        if type_.is_empty() || subtype.is_empty() {
            // Broken: Dovecot reports it as "" "" without parameters rather
            // than falling back to text/plain.
            return Some(ContentType {
                type_: Vec::new(),
                subtype: Vec::new(),
                params: Vec::new(),
            });
        }
        let params = params(&mut lx);
        Some(ContentType {
            type_,
            subtype,
            params,
        })
    }

    pub fn is_type(&self, t: &str) -> bool {
        self.type_.eq_ignore_ascii_case(t.as_bytes())
    }

    pub fn is_subtype(&self, t: &str) -> bool {
        self.subtype.eq_ignore_ascii_case(t.as_bytes())
    }

    pub fn param(&self, name: &[u8]) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// Content-Disposition (RFC 2183): type token and parameters.
pub(crate) fn disposition(value: &[u8]) -> Option<(Vec<u8>, Params)> {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let kind = lx.token().to_vec();
    if kind.is_empty() {
        return None;
    }
    let params = params(&mut lx);
    Some((kind, params))
}

/// Content-Language (RFC 3282): comma-separated language tags.
pub(crate) fn languages(value: &[u8]) -> Vec<Vec<u8>> {
    let mut lx = Lexer::new(value);
    let mut out = Vec::new();
    loop {
        lx.skip_cfws();
        let tag = lx.token();
        if !tag.is_empty() {
            out.push(tag.to_vec());
        }
        lx.skip_cfws();
        match lx.peek() {
            Some(b',') => lx.i += 1,
            _ => break,
        }
    }
    out
}

/// Content-Transfer-Encoding mechanism (RFC 2045 §6.1), as written.
pub(crate) fn transfer_encoding(value: &[u8]) -> Option<Vec<u8>> {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let t = lx.token();
    (!t.is_empty()).then(|| t.to_vec())
}
