//! mailroom-message: the IMAP views of one RFC 5322 / MIME message.
//!
//! Pure: bytes in, values out, no I/O. The store calls [`summarize`] once at
//! delivery and saves the result beside the raw bytes; the IMAP server
//! answers FETCH from that summary and from [`section`] / [`binary`] over
//! the raw bytes (RFC 9051 §6.4.5, §7.5.2; RFC 3516 for BINARY).
//!
//! Where the RFCs leave room the output follows Dovecot, so that clients
//! tested against Dovecot see the same answers. Known differences are listed
//! in `tests/dovecot.rs`.
//!
//! Nothing here panics on any input: malformed MIME is common and the
//! parser degrades (missing boundaries end at the end of the message,
//! missing headers take their RFC defaults). A property test feeds
//! arbitrary bytes to every public function.

mod decode;
mod envelope;
mod header;
mod imapstr;
mod mime;
mod structure;

use std::fmt;

use mime::{Kind, Part};

/// What the store saves beside the raw bytes, computed once at delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    /// IMAP ENVELOPE, fully encoded: `(date subject from sender reply-to to
    /// cc bcc in-reply-to message-id)` (RFC 9051 §7.5.2).
    pub envelope: String,
    /// BODYSTRUCTURE with extension data, fully encoded.
    pub body_structure: String,
    /// BODY (the non-extensible form), fully encoded.
    pub body: String,
    /// The parsed Date: header (for SENTBEFORE/SENTON/SENTSINCE and SORT).
    pub sent_date: Option<SentDate>,
    /// Every top-level header field, in order: lower-cased name and the
    /// value unfolded and RFC 2047-decoded to UTF-8 (for SEARCH HEADER).
    pub headers: Vec<(String, String)>,
    /// Decoded text of every text/* part, joined with "\n" (for SEARCH
    /// BODY/TEXT, RFC 9051 §6.4.4).
    pub text: String,
    /// Raw length in octets (RFC822.SIZE).
    pub size: u64,
}

/// A Date: header value (RFC 5322 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SentDate {
    /// Seconds since the Unix epoch, UTC.
    pub unix: i64,
    /// The zone the date was written in, minutes east of UTC.
    pub offset_minutes: i32,
}

/// RFC 9051 §6.4.5 section-spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Section {
    /// Part number path; empty means the whole message.
    pub part: Vec<u32>,
    /// HEADER, HEADER.FIELDS, TEXT or MIME after the part number.
    pub text: Option<SectionText>,
}

/// The section-text of a section-spec (RFC 9051 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    Header,
    HeaderFields { fields: Vec<String>, not: bool },
    Text,
    Mime,
}

/// BINARY was asked for a part whose Content-Transfer-Encoding we cannot
/// undo; IMAP answers `NO [UNKNOWN-CTE]` (RFC 3516 §4.3, RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownCte;

impl fmt::Display for UnknownCte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the part's Content-Transfer-Encoding is not one the server can decode")
    }
}

impl std::error::Error for UnknownCte {}

/// Parses `raw` once and computes everything the store keeps.
pub fn summarize(raw: &[u8]) -> MessageSummary {
    let root = Part::parse(raw);
    let fields = root.fields(raw);

    let mut envelope = String::new();
    envelope::write(&mut envelope, &fields);
    let mut body_structure = String::new();
    structure::write(&mut body_structure, raw, &root, true);
    let mut body = String::new();
    structure::write(&mut body, raw, &root, false);

    let sent_date = header::first(&fields, "date").and_then(parse_date);
    let headers = fields
        .iter()
        .filter(|f| f.has_colon)
        .map(|f| {
            (
                String::from_utf8_lossy(f.name).to_ascii_lowercase(),
                decode::header_text(f.value),
            )
        })
        .collect();
    let mut texts = Vec::new();
    collect_text(raw, &root, &mut texts);

    MessageSummary {
        envelope,
        body_structure,
        body,
        sent_date,
        headers,
        text: texts.join("\n"),
        size: raw.len() as u64,
    }
}

/// Unfolds a header value and decodes its RFC 2047 encoded words to UTF-8, as
/// the store does for SEARCH (used for SORT=DISPLAY names, RFC 5957).
pub fn decode_header_text(value: &[u8]) -> String {
    decode::header_text(value)
}

/// RFC 5322 §3.3 date-time, leniently (mail-parser's parser).
fn parse_date(value: &[u8]) -> Option<SentDate> {
    let text = String::from_utf8_lossy(&header::unfold(value)).into_owned();
    let dt = mail_parser::DateTime::parse_rfc822(&text)?;
    if !dt.is_valid() {
        return None;
    }
    let offset = i32::from(dt.tz_hour) * 60 + i32::from(dt.tz_minute);
    Some(SentDate {
        unix: dt.to_timestamp(),
        offset_minutes: if dt.tz_before_gmt { -offset } else { offset },
    })
}

fn collect_text(raw: &[u8], part: &Part, out: &mut Vec<String>) {
    match &part.kind {
        Kind::Multipart(children) => {
            for c in children {
                collect_text(raw, c, out);
            }
        }
        Kind::Message(inner) => collect_text(raw, inner, out),
        Kind::Leaf => {
            let fields = part.fields(raw);
            let ct = mime::content_type_of(&fields);
            let is_text = match &ct {
                // A broken Content-Type (empty type) is searched as text.
                Some(ct) => ct.is_type("text") || ct.type_.is_empty(),
                None => !part.digest_default,
            };
            if !is_text {
                return;
            }
            let cte = decode::Cte::from_header(header::first(&fields, "content-transfer-encoding"))
                .unwrap_or(decode::Cte::Identity);
            let body = raw.get(part.body.clone()).unwrap_or_default();
            let bytes = cte.decode(body);
            let charset = ct.as_ref().and_then(|c| c.param(b"charset"));
            let text = decode::charset_to_utf8(charset, &bytes);
            if ct.as_ref().is_some_and(|c| c.is_subtype("html")) {
                out.push(
                    mail_parser::decoders::html::html_to_text(&text)
                        .trim_end()
                        .to_string(),
                );
            } else {
                out.push(text);
            }
        }
    }
}

/// Finds the part a non-empty part path names (RFC 9051 §6.4.5).
fn resolve<'p>(root: &'p Part, path: &[u32]) -> Option<&'p Part> {
    let (first, rest) = path.split_first()?;
    if matches!(root.kind, Kind::Leaf) && !rest.is_empty() {
        // In a single-part message, 1.1 does not exist (Dovecot agrees),
        // although inside a multipart Dovecot lets n.1 of a leaf be n.
        return None;
    }
    let mut cur = root.message_part(*first)?;
    for &n in rest {
        cur = cur.child(n)?;
    }
    Some(cur)
}

/// BODY[section]: the exact octets IMAP returns (before any `<partial>`),
/// or `None` if the section does not exist in this message.
///
/// RFC 9051 §6.4.5: HEADER, HEADER.FIELDS and TEXT after a part number
/// are only valid for message/rfc822 parts and address the encapsulated
/// message; MIME is the part's own header block.
pub fn section(raw: &[u8], section: &Section) -> Option<Vec<u8>> {
    let root = Part::parse(raw);
    let message = if section.part.is_empty() {
        match &section.text {
            None => return Some(raw.to_vec()),
            Some(SectionText::Mime) => return None,
            Some(_) => &root,
        }
    } else {
        let part = resolve(&root, &section.part)?;
        match (&section.text, &part.kind) {
            (None, _) => return raw.get(part.body.clone()).map(<[u8]>::to_vec),
            (Some(SectionText::Mime), _) => {
                return raw.get(part.header.clone()).map(<[u8]>::to_vec);
            }
            (Some(_), Kind::Message(inner)) => inner.as_ref(),
            (Some(_), _) => return None,
        }
    };
    match &section.text {
        Some(SectionText::Header) => raw.get(message.header.clone()).map(<[u8]>::to_vec),
        Some(SectionText::Text) => raw.get(message.body.clone()).map(<[u8]>::to_vec),
        Some(SectionText::HeaderFields { fields, not }) => {
            Some(header_fields(raw, message, fields, *not))
        }
        Some(SectionText::Mime) | None => None,
    }
}

/// HEADER.FIELDS / HEADER.FIELDS.NOT: the matching fields whole (folded
/// lines kept, original order), then the blank line (RFC 9051 §6.4.5).
fn header_fields(raw: &[u8], message: &Part, names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let block = raw.get(message.header.clone()).unwrap_or_default();
    let has_blank_line = block.ends_with(b"\n\n")
        || block.ends_with(b"\n\r\n")
        || block == b"\r\n"
        || block == b"\n";
    for f in message.fields(raw) {
        if !f.has_colon {
            continue;
        }
        let wanted = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(f.name));
        if wanted != not {
            out.extend_from_slice(f.raw);
            if !f.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    // Dovecot leaves out the blank line when nothing matched and the
    // header block had none either.
    if !out.is_empty() || has_blank_line {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// BINARY[part] (RFC 3516, RFC 9051 §6.4.5): the part's content with its
/// Content-Transfer-Encoding undone. `Ok(None)` if the part does not exist,
/// `Err(UnknownCte)` if the encoding is not 7bit, 8bit, binary, base64 or
/// quoted-printable. An empty path is the whole message, unchanged.
pub fn binary(raw: &[u8], part: &[u32]) -> Result<Option<Vec<u8>>, UnknownCte> {
    if part.is_empty() {
        return Ok(Some(raw.to_vec()));
    }
    let root = Part::parse(raw);
    let Some(p) = resolve(&root, part) else {
        return Ok(None);
    };
    let body = raw.get(p.body.clone()).unwrap_or_default();
    match p.kind {
        // Composite types may only use identity encodings (RFC 2045 §6.4).
        Kind::Multipart(_) | Kind::Message(_) => Ok(Some(body.to_vec())),
        Kind::Leaf => {
            let fields = p.fields(raw);
            let cte = decode::Cte::from_header(header::first(&fields, "content-transfer-encoding"))
                .ok_or(UnknownCte)?;
            Ok(Some(cte.decode(body)))
        }
    }
}
