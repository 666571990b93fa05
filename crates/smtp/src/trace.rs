//! Trace information added at delivery (RFC 5321 §4.4): `Return-Path:` with the
//! reverse-path, and a `Received:` header naming the client, this host, the protocol
//! and the queue id.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// What the Received: header tells about one transaction.
pub(crate) struct TraceInfo<'a> {
    /// The name the client gave in EHLO/HELO/LHLO.
    pub(crate) helo: &'a str,
    /// The client's address literal, `[192.0.2.1]`.
    pub(crate) client: &'a str,
    pub(crate) hostname: &'a str,
    /// RFC 3848 protocol name: SMTP, ESMTP, LMTP, UTF8SMTP...
    pub(crate) protocol: &'a str,
    pub(crate) queue_id: &'a str,
    /// The forward-path, given only for a single-recipient message (RFC 5321 §4.4
    /// leaves it optional; naming one of many recipients would leak the others).
    pub(crate) single_recipient: Option<&'a str>,
    pub(crate) reverse_path: &'a str,
    /// Write `Return-Path:` (final delivery), not for submitted mail.
    pub(crate) return_path: bool,
}

/// Strips what must not reach a header: control characters (CR, LF...) and
/// anything that would unbalance the comment the HELO name is written in.
fn header_safe(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !matches!(c, '(' | ')' | '\\'))
        .take(255)
        .collect()
}

/// `Return-Path:` and `Received:` as they are prepended to the message.
pub(crate) fn trace_headers(info: &TraceInfo<'_>, now: OffsetDateTime) -> Vec<u8> {
    let date = now
        .format(&Rfc2822)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    let mut out = if info.return_path {
        format!("Return-Path: <{}>\r\n", header_safe(info.reverse_path))
    } else {
        String::new()
    };
    out.push_str(&format!(
        "Received: from {} ({})\r\n\tby {} (mailroom) with {} id {}",
        header_safe(info.helo),
        info.client,
        header_safe(info.hostname),
        info.protocol,
        info.queue_id
    ));
    if let Some(rcpt) = info.single_recipient {
        out.push_str(&format!("\r\n\tfor <{}>", header_safe(rcpt)));
    }
    out.push_str(&format!(";\r\n\t{date}\r\n"));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_header_has_the_rfc5321_clauses() {
        let info = TraceInfo {
            helo: "client.example\r\nX-Evil: 1",
            client: "[192.0.2.1]",
            hostname: "mx.example",
            protocol: "ESMTP",
            queue_id: "ABC",
            single_recipient: Some("a@example.org"),
            reverse_path: "",
            return_path: true,
        };
        let now = OffsetDateTime::from_unix_timestamp(0).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let text = String::from_utf8(trace_headers(&info, now)).unwrap_or_default();
        assert_eq!(
            text,
            "Return-Path: <>\r\nReceived: from client.exampleX-Evil: 1 ([192.0.2.1])\r\n\tby mx.example (mailroom) with ESMTP id ABC\r\n\tfor <a@example.org>;\r\n\tThu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}
