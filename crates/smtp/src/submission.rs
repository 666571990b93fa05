//! What the submission listener does to a message before it is delivered or
//! relayed (RFC 6409 §8): add `Message-ID:` and `Date:` when missing, and remove
//! `Bcc:` so blind recipients stay blind. Also reads the `From:` addresses that must
//! belong to the authenticated account.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// Length of the header section including the empty line that ends it (the whole
/// message when there is no body).
fn header_end(raw: &[u8]) -> usize {
    let mut i = 0;
    while i < raw.len() {
        // An empty line: at the start, or LF followed by (CR)LF.
        if raw[i..].starts_with(b"\r\n") && (i == 0 || raw[i - 1] == b'\n') {
            return i + 2;
        }
        if raw[i] == b'\n' && (i == 0 || raw[i - 1] == b'\n') {
            return i + 1;
        }
        i += 1;
    }
    raw.len()
}

/// Splits a header section into fields, each with its continuation lines.
fn fields(header: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        if header[i] == b'\n' {
            let next = header.get(i + 1).copied();
            if !matches!(next, Some(b' ') | Some(b'\t')) {
                out.push(&header[start..=i]);
                start = i + 1;
            }
        }
        i += 1;
    }
    if start < header.len() {
        out.push(&header[start..]);
    }
    out
}

fn field_name(field: &[u8]) -> String {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(0);
    String::from_utf8_lossy(&field[..colon])
        .trim()
        .to_ascii_lowercase()
}

/// The message with `Bcc:` fields removed and `Message-ID:`/`Date:` added when
/// missing. `skip` leading bytes (the trace header this server added) are kept as
/// they are.
pub(crate) fn rewrite(raw: &[u8], hostname: &str, now: OffsetDateTime) -> Vec<u8> {
    let end = header_end(raw);
    let (header, body) = raw.split_at(end);
    let mut out = Vec::with_capacity(raw.len() + 128);
    let mut has_id = false;
    let mut has_date = false;
    let mut ending: &[u8] = b"";
    for field in fields(header) {
        let trimmed = field.trim_ascii();
        if trimmed.is_empty() {
            ending = field;
            continue;
        }
        match field_name(field).as_str() {
            "bcc" => continue,
            "message-id" => has_id = true,
            "date" => has_date = true,
            _ => {}
        }
        out.extend_from_slice(field);
        if !field.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    if !has_date {
        let date = now
            .format(&Rfc2822)
            .unwrap_or_else(|_| now.unix_timestamp().to_string());
        out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    if !has_id {
        let id = format!(
            "Message-ID: <{}.{:016x}@{}>\r\n",
            now.unix_timestamp(),
            rand::random::<u64>(),
            hostname
        );
        out.extend_from_slice(id.as_bytes());
    }
    if ending.is_empty() && !body.is_empty() {
        ending = b"\r\n";
    }
    out.extend_from_slice(if ending.is_empty() { b"\r\n" } else { ending });
    out.extend_from_slice(body);
    out
}

/// The addresses in the message's `From:` field(s), lower-cased domain untouched.
pub(crate) fn from_addresses(raw: &[u8]) -> Vec<String> {
    let end = header_end(raw);
    let Some(message) = mail_parser::MessageParser::default().parse_headers(&raw[..end]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(from) = message.from() {
        for addr in from.iter() {
            if let Some(a) = addr.address() {
                out.push(a.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_goes_date_and_message_id_come() {
        let raw = b"From: a@example.org\r\nBcc: hidden@example.net,\r\n  other@example.net\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\nBcc: in body stays\r\n";
        let out = rewrite(raw, "mx.example", OffsetDateTime::UNIX_EPOCH);
        let text = String::from_utf8(out).unwrap_or_default();
        assert!(!text.contains("hidden@"), "{text}");
        assert!(!text.contains("other@"), "{text}");
        assert!(
            text.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"),
            "{text}"
        );
        assert!(
            text.contains("@mx.example>\r\n\r\nbody\r\nBcc: in body stays\r\n"),
            "{text}"
        );
        assert!(
            text.starts_with("From: a@example.org\r\nTo: b@example.org\r\n"),
            "{text}"
        );
    }

    #[test]
    fn existing_date_and_id_are_kept() {
        let raw = b"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <x@y>\r\n\r\nb\r\n";
        assert_eq!(rewrite(raw, "h", OffsetDateTime::UNIX_EPOCH), raw.to_vec());
    }

    #[test]
    fn from_addresses_are_read() {
        let raw = b"From: Alice <alice@example.org>, bob@example.org\r\nTo: x@y\r\n\r\nb";
        assert_eq!(
            from_addresses(raw),
            vec!["alice@example.org", "bob@example.org"]
        );
    }
}
