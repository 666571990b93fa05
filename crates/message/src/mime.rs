//! The MIME part tree of one message, as byte ranges into the raw message.
//!
//! IMAP needs the exact octets of every part (RFC 9051 §6.4.5 BODY[section])
//! and sizes/line counts that agree with them (§7.5.2 BODYSTRUCTURE), so the
//! tree is built here with our own boundary scanner instead of a decoding
//! parser. The rules follow RFC 2046 §5.1.1 and, where real mail breaks them,
//! what Dovecot's message-parser does:
//!
//! - a boundary line is `--boundary` at the start of a line, anything may
//!   follow it (prefix match); `--boundary--` closes the multipart;
//! - the line break before a boundary line belongs to the boundary, not to
//!   the part before it;
//! - boundaries of enclosing multiparts are checked too, innermost first, so
//!   a missing close delimiter ends the inner multipart at the outer boundary;
//! - a missing final boundary ends everything at the end of the message;
//! - CRLF and bare LF line endings are both accepted and counted as found.

use std::ops::Range;

use crate::header::{self, ContentType, Field};

/// Deeper nesting than this is treated as an opaque leaf: it bounds recursion
/// (no stack overflow on hostile input) the way Dovecot bounds it.
const MAX_DEPTH: usize = 64;

/// One MIME entity: a header block and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// The header block including the blank line that ends it (if present).
    pub header: Range<usize>,
    /// The body, without the line break that precedes a boundary.
    pub body: Range<usize>,
    pub kind: Kind,
    /// `true` if the part has no Content-Type and defaulted to
    /// message/rfc822 because its parent is multipart/digest (RFC 2046 §5.1.5).
    pub digest_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Leaf,
    Multipart(Vec<Part>),
    /// message/rfc822: the encapsulated message as a part of its own.
    Message(Box<Part>),
}

impl Part {
    /// Parses the whole message.
    pub fn parse(raw: &[u8]) -> Part {
        let mut p = Parser {
            raw,
            stack: Vec::new(),
        };
        p.entity(0, false, 0).0
    }

    /// The header fields of this part.
    pub fn fields<'a>(&self, raw: &'a [u8]) -> Vec<Field<'a>> {
        header::fields(raw.get(self.header.clone()).unwrap_or_default())
    }

    /// RFC 9051 §6.4.5: sub-part `n` (1-based) of this part. A multipart's
    /// children are its parts; a message/rfc822 part's sub-parts are those of
    /// the encapsulated message.
    pub fn child(&self, n: u32) -> Option<&Part> {
        match &self.kind {
            Kind::Multipart(children) => children.get((n as usize).checked_sub(1)?),
            Kind::Message(inner) => inner.message_part(n),
            // Dovecot answers BODY[n.1] of a leaf with the leaf itself.
            Kind::Leaf if n == 1 => Some(self),
            Kind::Leaf => None,
        }
    }

    /// Part `n` of a message whose top-level entity is `self`: in a
    /// non-multipart message part 1 is the body itself.
    pub fn message_part(&self, n: u32) -> Option<&Part> {
        match &self.kind {
            Kind::Multipart(children) => children.get((n as usize).checked_sub(1)?),
            _ if n == 1 => Some(self),
            _ => None,
        }
    }
}

pub(crate) fn content_type_of(fields: &[Field<'_>]) -> Option<ContentType> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(b"content-type"))
        .and_then(|f| ContentType::parse(f.value))
}

/// Where a boundary line was found.
#[derive(Debug, Clone, Copy)]
struct Term {
    /// Index into the boundary stack.
    level: usize,
    close: bool,
    /// Offset of the `--` that starts the boundary line.
    line_start: usize,
    /// Offset just after the boundary line and its line break.
    next: usize,
}

struct Parser<'a> {
    raw: &'a [u8],
    stack: Vec<Vec<u8>>,
}

impl Parser<'_> {
    fn line_end(&self, pos: usize) -> usize {
        match self
            .raw
            .get(pos..)
            .and_then(|r| r.iter().position(|&b| b == b'\n'))
        {
            Some(i) => pos + i + 1,
            None => self.raw.len(),
        }
    }

    /// Is the line at `pos` a boundary line of an open multipart?
    fn boundary_at(&self, pos: usize) -> Option<Term> {
        let end = self.line_end(pos);
        let line = self.raw.get(pos..end)?;
        let rest = line.strip_prefix(b"--")?;
        self.stack
            .iter()
            .enumerate()
            .rev()
            .find(|(_, b)| rest.starts_with(b))
            .map(|(level, b)| Term {
                level,
                close: rest.get(b.len()..).is_some_and(|r| r.starts_with(b"--")),
                line_start: pos,
                next: end,
            })
    }

    /// Scans lines from `pos` (a line start) for the next boundary line.
    fn scan(&self, mut pos: usize) -> Option<Term> {
        if self.stack.is_empty() {
            return None;
        }
        while pos < self.raw.len() {
            if let Some(t) = self.boundary_at(pos) {
                return Some(t);
            }
            pos = self.line_end(pos);
        }
        None
    }

    /// End of content before the boundary line at `line_start`: the line
    /// break before it belongs to the boundary (RFC 2046 §5.1.1).
    fn cut(&self, line_start: usize, floor: usize) -> usize {
        let mut end = line_start;
        if end > floor && self.raw.get(end - 1) == Some(&b'\n') {
            end -= 1;
            if end > floor && self.raw.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
        }
        end
    }

    /// Parses one entity starting at `start`, until a boundary line of an
    /// enclosing multipart (returned) or the end of the message.
    fn entity(&mut self, start: usize, in_digest: bool, depth: usize) -> (Part, Option<Term>) {
        let len = self.raw.len();
        let mut pos = start;
        let mut term = None;
        while pos < len {
            if let Some(t) = self.boundary_at(pos) {
                term = Some(t);
                break;
            }
            let end = self.line_end(pos);
            let line = self.raw.get(pos..end).unwrap_or_default();
            pos = end;
            if line == b"\n" || line == b"\r\n" {
                break;
            }
        }
        if let Some(t) = term {
            // Header interrupted by a boundary: no body at all.
            let end = self.cut(t.line_start, start);
            let part = Part {
                header: start..end,
                body: end..end,
                kind: Kind::Leaf,
                digest_default: false,
            };
            return (part, Some(t));
        }
        let header = start..pos;
        let body_start = pos;
        let fields = header::fields(self.raw.get(header.clone()).unwrap_or_default());
        let ct = content_type_of(&fields);
        let digest_default = ct.is_none() && in_digest;
        let deeper = depth < MAX_DEPTH;

        let is_multipart = ct.as_ref().is_some_and(|ct| ct.is_type("multipart"));
        let boundary = ct
            .as_ref()
            .filter(|_| is_multipart)
            .and_then(|ct| ct.param(b"boundary"))
            .filter(|b| !b.is_empty())
            .map(<[u8]>::to_vec);
        let is_message = match &ct {
            Some(ct) => ct.is_type("message") && ct.is_subtype("rfc822"),
            None => digest_default,
        };

        let (kind, body_end, term) = match boundary {
            Some(boundary) if deeper => {
                let digest = ct.as_ref().is_some_and(|ct| ct.is_subtype("digest"));
                self.stack.push(boundary);
                let mine = self.stack.len() - 1;
                let mut children = Vec::new();
                let mut t = self.scan(body_start);
                let (end, term) = loop {
                    match t {
                        None => break (len, None),
                        Some(b) if b.level == mine && !b.close => {
                            let (child, next) = self.entity(b.next, digest, depth + 1);
                            children.push(child);
                            t = next;
                        }
                        Some(b) if b.level == mine => {
                            // Close delimiter: the epilogue runs to an outer
                            // boundary or the end of the message.
                            self.stack.truncate(mine);
                            let after = self.scan(b.next);
                            // The close delimiter line keeps its own line
                            // break even if an outer boundary follows at
                            // once (Dovecot counts it in the part).
                            let end = after.map_or(len, |a| self.cut(a.line_start, b.next));
                            break (end, after);
                        }
                        Some(b) => break (self.cut(b.line_start, body_start), Some(b)),
                    }
                };
                self.stack.truncate(mine);
                (Kind::Multipart(children), end, term)
            }
            _ if is_message && deeper => {
                let (inner, t) = self.entity(body_start, false, depth + 1);
                let end = inner.body.end.max(inner.header.end);
                (Kind::Message(Box::new(inner)), end, t)
            }
            _ => {
                let t = self.scan(body_start);
                let end = t.map_or(len, |t| self.cut(t.line_start, body_start));
                // A multipart without a usable boundary has no parts
                // (Dovecot reports one empty text/plain part for it).
                let kind = if is_multipart && deeper {
                    Kind::Multipart(Vec::new())
                } else {
                    Kind::Leaf
                };
                (kind, end, t)
            }
        };
        let mut part = Part {
            header,
            body: body_start..body_end.max(body_start),
            kind,
            digest_default,
        };
        // A boundary right after the blank line takes that blank line's
        // break as its own, so the header loses it (what Dovecot returns
        // for BODY[n.MIME] of such a part).
        if let Some(t) = term {
            let e = self.cut(t.line_start, start);
            let empty_inside = match &part.kind {
                Kind::Leaf | Kind::Message(_) => true,
                Kind::Multipart(children) => children.is_empty(),
            };
            if e < body_start && empty_inside {
                part.header.end = e;
                part.body = e..e;
                if let Kind::Message(inner) = &mut part.kind {
                    inner.header = e..e;
                    inner.body = e..e;
                    inner.kind = Kind::Leaf;
                }
            }
        }
        (part, term)
    }
}
