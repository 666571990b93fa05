//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034).

use std::fmt;

/// One reply: a three-digit code, an enhanced status code, and text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    /// `class.subject.detail`; None for the greeting and the EHLO lines, which RFC
    /// 2034 leaves without one.
    pub(crate) status: Option<&'static str>,
    pub(crate) lines: Vec<String>,
}

impl Reply {
    pub(crate) fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code.
    pub(crate) fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines,
        }
    }

    /// True for 4xx and 5xx replies.
    pub(crate) fn is_error(&self) -> bool {
        self.code >= 400
    }

    pub(crate) fn ok(text: impl Into<String>) -> Reply {
        Reply::new(250, "2.0.0", text)
    }

    pub(crate) fn bad_sequence(text: impl Into<String>) -> Reply {
        Reply::new(503, "5.5.1", text)
    }

    /// The reply for a line the parser refused, saying what was expected.
    pub(crate) fn from_parse_error(error: &smtp_proto::Error) -> Reply {
        use smtp_proto::Error;
        match error {
            Error::UnknownCommand => Reply::new(500, "5.5.1", "Command not recognized"),
            Error::InvalidSenderAddress => Reply::new(501, "5.1.7", "Bad sender address syntax"),
            Error::InvalidRecipientAddress => {
                Reply::new(501, "5.1.3", "Bad recipient address syntax")
            }
            Error::SyntaxError { syntax } => Reply::new(501, "5.5.2", format!("Syntax: {syntax}")),
            Error::InvalidParameter { param } => {
                Reply::new(501, "5.5.4", format!("Invalid {param} parameter"))
            }
            Error::UnsupportedParameter { param } => {
                let param: String = param.chars().filter(|c| !c.is_control()).take(64).collect();
                Reply::new(555, "5.5.4", format!("Unsupported parameter {param}"))
            }
            Error::NeedsMoreData { .. }
            | Error::ResponseTooLong
            | Error::InvalidResponse { .. } => Reply::new(500, "5.5.2", "Syntax error"),
        }
    }
}

impl fmt::Display for Reply {
    /// The wire form: `250-first` ... `250 last`, each line ending in CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            match self.status {
                Some(status) => write!(f, "{}{sep}{status} {line}\r\n", self.code)?,
                None => write!(f, "{}{sep}{line}\r\n", self.code)?,
            }
        }
        if self.lines.is_empty() {
            write!(f, "{} {}\r\n", self.code, self.status.unwrap_or(""))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_replies_use_dashes_until_the_last_line() {
        let r = Reply::plain(
            250,
            vec!["mx Hello".into(), "SIZE 10".into(), "HELP".into()],
        );
        assert_eq!(r.to_string(), "250-mx Hello\r\n250-SIZE 10\r\n250 HELP\r\n");
        assert_eq!(Reply::ok("OK").to_string(), "250 2.0.0 OK\r\n");
    }
}
