//! IMAP string encoding (RFC 9051 §4.3), with Dovecot's choices between
//! quoted strings and literals so that our answers match a Dovecot server
//! byte for byte.

/// Appends `s` as an IMAP string: quoted when RFC 9051 §4.3 allows it (no
/// CR, LF, NUL or 8-bit octets; Dovecot also switches to a literal past four
/// escaped characters), otherwise a synchronising literal `{n}\r\n...`.
///
/// The output is a Rust `String`, so octets that are not UTF-8 are replaced
/// with U+FFFD before encoding; the literal length counts the UTF-8 octets.
pub(crate) fn string(out: &mut String, s: &[u8]) {
    let text = String::from_utf8_lossy(s);
    let bytes = text.as_bytes();
    let mut escapes = 0;
    let mut literal = false;
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                escapes += 1;
                if escapes > 4 {
                    literal = true;
                    break;
                }
            }
            b'\r' | b'\n' | 0 => {
                literal = true;
                break;
            }
            b if b >= 0x80 => {
                literal = true;
                break;
            }
            _ => {}
        }
    }
    if literal {
        push_literal(out, &text);
    } else {
        out.push('"');
        for c in text.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
}

fn push_literal(out: &mut String, text: &str) {
    out.push('{');
    out.push_str(&text.len().to_string());
    out.push_str("}\r\n");
    out.push_str(text);
}

/// `NIL` or the string with CR and LF removed (an unfolded header value).
pub(crate) fn nstring_nolf(out: &mut String, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, &crate::header::unfold(s)),
        None => out.push_str("NIL"),
    }
}

/// Dovecot's `imap_append_string_for_humans`, used for the ENVELOPE subject
/// and address display names: line breaks are removed, runs of whitespace
/// become one space, leading and trailing whitespace is trimmed, NUL becomes
/// 0x80; if anything changed, or the text needs escaping, it is sent as a
/// literal, else as a plain quoted string.
pub(crate) fn string_for_humans(out: &mut String, s: &[u8]) {
    let mut modify = false;
    let mut last_lwsp = true;
    let mut whitespace_prefix = true;
    for &b in s {
        match b {
            0 | b'\t' | b'\r' | b'\n' | b'"' | b'\\' => modify = true,
            b' ' => {
                if last_lwsp {
                    modify = true;
                }
                last_lwsp = true;
            }
            _ => {
                if b >= 0x80 {
                    modify = true;
                }
                last_lwsp = false;
                whitespace_prefix = false;
            }
        }
    }
    if last_lwsp && !s.is_empty() && !whitespace_prefix {
        modify = true;
    }
    if !modify {
        out.push('"');
        out.push_str(&String::from_utf8_lossy(s));
        out.push('"');
        return;
    }
    let mut cleaned = Vec::with_capacity(s.len());
    let mut last_lwsp = true;
    for &b in s {
        match b {
            0 => {
                cleaned.push(0x80);
                last_lwsp = false;
            }
            b' ' | b'\t' => {
                if !last_lwsp {
                    cleaned.push(b' ');
                }
                last_lwsp = true;
            }
            b'\r' | b'\n' => {}
            _ => {
                cleaned.push(b);
                last_lwsp = false;
            }
        }
    }
    if last_lwsp && cleaned.last() == Some(&b' ') {
        cleaned.pop();
    }
    if cleaned.is_empty() {
        out.push_str("\"\"");
        return;
    }
    push_literal(out, &String::from_utf8_lossy(&cleaned));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: fn(&mut String, &[u8]), v: &[u8]) -> String {
        let mut out = String::new();
        f(&mut out, v);
        out
    }

    #[test]
    fn quoted_and_literal() {
        assert_eq!(s(string, b"abc"), "\"abc\"");
        assert_eq!(s(string, b""), "\"\"");
        assert_eq!(s(string, b"a\"b"), "\"a\\\"b\"");
        assert_eq!(s(string, b"a\r\nb"), "{4}\r\na\r\nb");
        assert_eq!(s(string, "é".as_bytes()), "{2}\r\né");
        assert_eq!(s(string, b"\\\\\\\\\\"), "{5}\r\n\\\\\\\\\\");
    }

    #[test]
    fn for_humans() {
        assert_eq!(s(string_for_humans, b"Hello"), "\"Hello\"");
        assert_eq!(s(string_for_humans, b"a  b"), "{3}\r\na b");
        assert_eq!(s(string_for_humans, b"a\r\n\tb"), "{3}\r\na b");
        assert_eq!(s(string_for_humans, b"  "), "\"\"");
        assert_eq!(s(string_for_humans, b""), "\"\"");
        assert_eq!(s(string_for_humans, b"say \"hi\""), "{8}\r\nsay \"hi\"");
    }
}
