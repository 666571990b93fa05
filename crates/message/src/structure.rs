//! BODY and BODYSTRUCTURE (RFC 9051 §7.5.2, RFC 3501 §7.4.2), written the
//! way Dovecot writes them: type, subtype and parameters as they appear in
//! the message (case kept), defaults in lower case (`"text" "plain"`,
//! `("charset" "us-ascii")`, `"7bit"`).

use crate::envelope;
use crate::header::{self, ContentType, Field};
use crate::imapstr;
use crate::mime::{Kind, Part};

/// Writes the structure of `part` (without the outer parentheses that the
/// FETCH item adds around it, RFC 9051 §7.5.2 `body`).
pub(crate) fn write(out: &mut String, raw: &[u8], part: &Part, extended: bool) {
    out.push('(');
    write_inner(out, raw, part, extended);
    out.push(')');
}

fn write_inner(out: &mut String, raw: &[u8], part: &Part, extended: bool) {
    let fields = part.fields(raw);
    let ct = crate::mime::content_type_of(&fields);
    match &part.kind {
        Kind::Multipart(children) => {
            if children.is_empty() {
                // A multipart without parts is not allowed (RFC 2046
                // §5.1.1); like Dovecot, report one empty text/plain part.
                out.push_str(if extended {
                    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
                } else {
                    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
                });
            }
            for child in children {
                write(out, raw, child, extended);
            }
            out.push(' ');
            let subtype = ct
                .as_ref()
                .map(|c| c.subtype.as_slice())
                .unwrap_or_default();
            imapstr::string(out, subtype);
            if extended {
                out.push(' ');
                params(
                    out,
                    ct.as_ref().map(|c| c.params.as_slice()).unwrap_or_default(),
                    false,
                );
                common_extension(out, &fields);
            }
        }
        _ => single(out, raw, part, &fields, ct.as_ref(), extended),
    }
}

fn single(
    out: &mut String,
    raw: &[u8],
    part: &Part,
    fields: &[Field<'_>],
    ct: Option<&ContentType>,
    extended: bool,
) {
    let text = match (ct, &part.kind) {
        // Dovecot writes the type of every message/rfc822 part it parsed
        // as such in lower case, whatever the header said.
        (_, Kind::Message(_)) => {
            out.push_str("\"message\" \"rfc822\"");
            false
        }
        (Some(ct), _) => {
            imapstr::string(out, &ct.type_);
            out.push(' ');
            imapstr::string(out, &ct.subtype);
            ct.is_type("text")
        }
        (None, _) => {
            out.push_str("\"text\" \"plain\"");
            true
        }
    };
    out.push(' ');
    params(
        out,
        ct.map(|c| c.params.as_slice()).unwrap_or_default(),
        text,
    );
    out.push(' ');
    imapstr::nstring_nolf(out, header::first(fields, "content-id"));
    out.push(' ');
    imapstr::nstring_nolf(out, header::first(fields, "content-description"));
    out.push(' ');
    match header::first(fields, "content-transfer-encoding").and_then(header::transfer_encoding) {
        Some(cte) => imapstr::string(out, &cte),
        None => out.push_str("\"7bit\""),
    }
    let body = raw.get(part.body.clone()).unwrap_or_default();
    out.push(' ');
    out.push_str(&body.len().to_string());
    let lines = || body.iter().filter(|&&b| b == b'\n').count().to_string();
    if let Kind::Message(inner) = &part.kind {
        out.push(' ');
        envelope::write(out, &inner.fields(raw));
        out.push(' ');
        write(out, raw, inner, extended);
        out.push(' ');
        out.push_str(&lines());
    } else if text {
        out.push(' ');
        out.push_str(&lines());
    }
    if extended {
        out.push(' ');
        imapstr::nstring_nolf(out, header::first(fields, "content-md5"));
        common_extension(out, fields);
    }
}

/// body-fld-param: `NIL` or `("name" "value" ...)`; text parts always get a
/// charset, `us-ascii` by default (RFC 2045 §5.2), appended last as Dovecot
/// does.
fn params(out: &mut String, params: &[(Vec<u8>, Vec<u8>)], default_charset: bool) {
    if params.is_empty() && !default_charset {
        out.push_str("NIL");
        return;
    }
    out.push('(');
    let mut seen_charset = false;
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        seen_charset |= name.eq_ignore_ascii_case(b"charset");
        imapstr::string(out, name);
        out.push(' ');
        imapstr::string(out, value);
    }
    if default_charset && !seen_charset {
        if !params.is_empty() {
            out.push(' ');
        }
        out.push_str("\"charset\" \"us-ascii\"");
    }
    out.push(')');
}

/// body-fld-dsp, body-fld-lang, body-fld-loc (RFC 9051 §7.5.2).
fn common_extension(out: &mut String, fields: &[Field<'_>]) {
    out.push(' ');
    match header::first(fields, "content-disposition").and_then(header::disposition) {
        Some((kind, p)) => {
            out.push('(');
            imapstr::string(out, &kind);
            out.push(' ');
            params(out, &p, false);
            out.push(')');
        }
        None => out.push_str("NIL"),
    }
    out.push(' ');
    let langs = header::first(fields, "content-language")
        .map(header::languages)
        .unwrap_or_default();
    if langs.is_empty() {
        out.push_str("NIL");
    } else {
        out.push('(');
        for (i, l) in langs.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            imapstr::string(out, l);
        }
        out.push(')');
    }
    out.push(' ');
    imapstr::nstring_nolf(out, header::first(fields, "content-location"));
}
