//! Content-Transfer-Encoding (RFC 2045 §6), charsets and RFC 2047 encoded
//! words: what BINARY (RFC 3516) and the search text need.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;

/// The transfer encodings we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cte {
    Identity,
    Base64,
    QuotedPrintable,
}

impl Cte {
    /// RFC 2045 §6.1; `None` for an encoding we do not know (x-uuencode, ...).
    /// An absent header means 7bit.
    pub fn from_header(value: Option<&[u8]>) -> Option<Cte> {
        let Some(token) = value.map(crate::header::transfer_encoding) else {
            return Some(Cte::Identity);
        };
        let Some(token) = token else {
            // Present but empty: treat as the default, as Dovecot does.
            return Some(Cte::Identity);
        };
        let t = token.to_ascii_lowercase();
        match t.as_slice() {
            b"7bit" | b"8bit" | b"binary" => Some(Cte::Identity),
            b"base64" => Some(Cte::Base64),
            b"quoted-printable" => Some(Cte::QuotedPrintable),
            _ => None,
        }
    }

    pub fn decode(self, body: &[u8]) -> Vec<u8> {
        match self {
            Cte::Identity => body.to_vec(),
            Cte::Base64 => base64(body),
            Cte::QuotedPrintable => quoted_printable(body),
        }
    }
}

/// Lenient base64 (RFC 2045 §6.8): characters outside the alphabet are
/// skipped, decoding stops at the first `=` pad, a dangling partial quantum
/// yields the complete octets it holds.
pub(crate) fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut n = 0;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lenient quoted-printable (RFC 2045 §6.7): `=XX` decoded, soft line
/// breaks (`=` before CRLF/LF, trailing whitespace allowed) removed,
/// trailing whitespace on lines dropped, line breaks kept as they are, and
/// a malformed `=` kept literally.
pub(crate) fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (content, eol): (&[u8], &[u8]) = if let Some(c) = line.strip_suffix(b"\r\n") {
            (c, b"\r\n")
        } else if let Some(c) = line.strip_suffix(b"\n") {
            (c, b"\n")
        } else {
            (line, b"")
        };
        let trimmed_len = content
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let content = content.get(..trimmed_len).unwrap_or_default();
        let mut soft = false;
        let mut i = 0;
        while let Some(&b) = content.get(i) {
            if b == b'=' {
                if i + 1 == content.len() {
                    soft = true;
                    break;
                }
                match (
                    content.get(i + 1).copied().and_then(hex),
                    content.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b),
                }
            } else {
                out.push(b);
            }
            i += 1;
        }
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    out
}

/// Decodes `bytes` from `charset` to UTF-8; unknown charsets and invalid
/// sequences fall back to lossy UTF-8.
pub(crate) fn charset_to_utf8(charset: Option<&[u8]>, bytes: &[u8]) -> String {
    if let Some(decoder) = charset.and_then(charset_decoder) {
        return decoder(bytes);
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// RFC 2047 §6: unfold and decode encoded words in an unstructured header
/// value; whitespace between two adjacent encoded words is dropped.
pub(crate) fn header_text(value: &[u8]) -> String {
    let v = crate::header::unfold(value);
    let mut out = String::new();
    let mut last_was_word = false;
    let mut i = 0;
    let mut plain_start = 0;
    let flush_plain = |out: &mut String, bytes: &[u8]| {
        out.push_str(&String::from_utf8_lossy(bytes));
    };
    while i < v.len() {
        if v.get(i) == Some(&b'=') && v.get(i + 1) == Some(&b'?') {
            let rest = v.get(i + 1..).unwrap_or_default();
            let mut stream = MessageStream::new(rest);
            if let Some(decoded) = stream.decode_rfc2047() {
                let consumed = stream.offset();
                let between = v.get(plain_start..i).unwrap_or_default();
                let only_ws = between.iter().all(|b| *b == b' ' || *b == b'\t');
                if !(last_was_word && only_ws) {
                    flush_plain(&mut out, between);
                }
                out.push_str(&decoded);
                last_was_word = true;
                i += 1 + consumed.max(1);
                plain_start = i;
                continue;
            }
        }
        if !matches!(v.get(i), Some(b' ' | b'\t')) {
            last_was_word = false;
        }
        i += 1;
    }
    flush_plain(&mut out, v.get(plain_start..).unwrap_or_default());
    out.trim_end_matches([' ', '\t']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lenient() {
        assert_eq!(base64(b"aGVsbG8=\r\n"), b"hello");
        assert_eq!(base64(b"aGVs\r\nbG8gd29ybGQ="), b"hello world");
        assert_eq!(base64(b"aGVsbA"), b"hell");
        assert_eq!(base64(b"!!"), b"");
    }

    #[test]
    fn qp_lenient() {
        assert_eq!(quoted_printable(b"a=3Db=\r\nc\r\n"), b"a=bc\r\n");
        assert_eq!(quoted_printable(b"x  \nA=zz"), b"x\nA=zz");
        assert_eq!(quoted_printable(b"caf=C3=A9"), "café".as_bytes());
    }

    #[test]
    fn encoded_words() {
        assert_eq!(header_text(b"=?utf-8?q?J=C3=B6rg?= Smith"), "Jörg Smith");
        assert_eq!(header_text(b"=?utf-8?q?a?= =?utf-8?q?b?="), "ab");
        assert_eq!(header_text(b"plain\r\n text"), "plain text");
        assert_eq!(header_text(b"=?iso-8859-1?q?caf=E9?="), "café");
        assert_eq!(header_text(b"=?bogus"), "=?bogus");
    }
}
