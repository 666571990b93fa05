//! Delivery status notifications (RFC 3464): the `multipart/report` a sender gets
//! back when the relay gives up on some recipients.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// One recipient the relay gave up on.
pub(crate) struct FailedRecipient {
    pub(crate) address: String,
    /// The remote server's reply or the local reason (`smtp; 550 5.1.1 ...`).
    pub(crate) diagnostic: String,
    /// The enhanced status code, `5.1.1`, `4.4.7` for an expired message.
    pub(crate) status: String,
}

/// The enhanced status code in a reply text (`550 5.1.1 no such user`), or `default`.
pub(crate) fn status_of(reply: &str, default: &str) -> String {
    reply
        .split_whitespace()
        .take(3)
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_string)
        .unwrap_or_else(|| default.to_string())
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(900)
        .collect()
}

/// The header section of the original message (the DSN returns only headers).
fn headers_of(raw: &[u8]) -> &[u8] {
    let mut i = 0;
    while i + 1 < raw.len() {
        if raw[i] == b'\n' && (raw[i + 1] == b'\n' || raw[i + 1..].starts_with(b"\r\n")) {
            return &raw[..=i];
        }
        i += 1;
    }
    raw
}

/// The DSN for `original` (sent by `sender`, queued at `arrival`), reporting
/// `failed`, from `MAILER-DAEMON@hostname`. Its envelope sender must be `<>`.
pub(crate) fn build(
    hostname: &str,
    sender: &str,
    arrival: OffsetDateTime,
    failed: &[FailedRecipient],
    original: &[u8],
    now: OffsetDateTime,
) -> Vec<u8> {
    let date = |d: OffsetDateTime| d.format(&Rfc2822).unwrap_or_default();
    let boundary = format!("{:016x}/{hostname}", rand::random::<u64>());
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
    ));
    out.push_str(&format!("To: <{}>\r\n", one_line(sender)));
    out.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    out.push_str(&format!("Date: {}\r\n", date(now)));
    out.push_str(&format!(
        "Message-ID: <{}.{:016x}@{hostname}>\r\n",
        now.unix_timestamp(),
        rand::random::<u64>()
    ));
    out.push_str("Auto-Submitted: auto-replied\r\n");
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    out.push_str("This is a MIME-encapsulated message.\r\n\r\n");
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    out.push_str(&format!(
        "This is the mail system at {hostname}.\r\n\r\nYour message could not be delivered to the following recipients:\r\n\r\n"
    ));
    for f in failed {
        out.push_str(&format!(
            "<{}>: {}\r\n",
            one_line(&f.address),
            one_line(&f.diagnostic)
        ));
    }
    out.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    out.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    out.push_str(&format!("Arrival-Date: {}\r\n", date(arrival)));
    for f in failed {
        out.push_str("\r\n");
        out.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            one_line(&f.address)
        ));
        out.push_str("Action: failed\r\n");
        out.push_str(&format!("Status: {}\r\n", f.status));
        out.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\n",
            one_line(&f.diagnostic)
        ));
    }
    out.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(headers_of(original));
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_found_or_defaulted() {
        assert_eq!(status_of("550 5.1.1 no such user", "5.0.0"), "5.1.1");
        assert_eq!(status_of("554 rejected", "5.0.0"), "5.0.0");
    }

    #[test]
    fn report_has_the_three_parts() {
        let failed = [FailedRecipient {
            address: "x@remote.example".into(),
            diagnostic: "550 5.1.1 no such user".into(),
            status: "5.1.1".into(),
        }];
        let raw = b"From: a@example.org\r\nSubject: hi\r\n\r\nsecret body\r\n";
        let dsn = build(
            "mx.example",
            "a@example.org",
            OffsetDateTime::UNIX_EPOCH,
            &failed,
            raw,
            OffsetDateTime::UNIX_EPOCH,
        );
        let text = String::from_utf8(dsn).unwrap_or_default();
        assert!(text.contains("multipart/report; report-type=delivery-status"));
        assert!(text.contains(
            "Final-Recipient: rfc822; x@remote.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(text.contains(
            "Content-Type: text/rfc822-headers\r\n\r\nFrom: a@example.org\r\nSubject: hi\r\n"
        ));
        assert!(!text.contains("secret body"));
    }
}
