//! Responses as values, apart from their encoding: the status of a tagged
//! response, the response codes of RFC 9051 §7.1 and the extensions we speak
//! (RFC 5530, RFC 4315, RFC 7162, RFC 6154, RFC 9208), and the one place that
//! turns them into protocol text.

use std::fmt;

use super::encode;

/// The status of a tagged (or untagged status) response (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        }
    }
}

/// A response code: the bracketed part of a status response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    // RFC 9051 §7.1.
    Alert,
    /// The charsets SEARCH supports (RFC 9051 §6.4.4).
    BadCharset(Vec<String>),
    Capability(String),
    Parse,
    PermanentFlags(Vec<String>),
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    /// IMAP4rev1 only (RFC 3501 §7.1).
    Unseen(u32),
    /// RFC 9051 §7.1 (from RFC 7162 §3.2.11): the previous mailbox was closed.
    Closed,
    // RFC 5530 §3.
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    /// Permanent: trying again will not help (contrast [`Code::Unavailable`]).
    Cannot,
    Limit,
    OverQuota,
    AlreadyExists,
    Nonexistent,
    // RFC 4315 §3 (UIDPLUS).
    AppendUid {
        validity: u32,
        uids: Vec<u32>,
    },
    CopyUid {
        validity: u32,
        source: Vec<u32>,
        destination: Vec<u32>,
    },
    // RFC 7162 §3.1 (CONDSTORE).
    HighestModSeq(u64),
    NoModSeq,
    /// The numbers (UIDs with UID STORE) that failed UNCHANGEDSINCE.
    Modified(Vec<u32>),
    // RFC 6154 §5.3 (CREATE-SPECIAL-USE).
    UseAttr,
    // RFC 3516 §4.3 (BINARY).
    UnknownCte,
    // RFC 4469-style size refusal (RFC 7889 §4, APPENDLIMIT) and RFC 9051 §7.1.
    TooBig,
    HasChildren,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, name: &str, items: &[String]| {
            write!(f, "{name} ({})", items.join(" "))
        };
        match self {
            Code::Alert => f.write_str("ALERT"),
            Code::BadCharset(c) => list(f, "BADCHARSET", c),
            Code::Capability(c) => write!(f, "CAPABILITY {c}"),
            Code::Parse => f.write_str("PARSE"),
            Code::PermanentFlags(flags) => list(f, "PERMANENTFLAGS", flags),
            Code::ReadOnly => f.write_str("READ-ONLY"),
            Code::ReadWrite => f.write_str("READ-WRITE"),
            Code::TryCreate => f.write_str("TRYCREATE"),
            Code::UidNext(n) => write!(f, "UIDNEXT {n}"),
            Code::UidValidity(n) => write!(f, "UIDVALIDITY {n}"),
            Code::Unseen(n) => write!(f, "UNSEEN {n}"),
            Code::Closed => f.write_str("CLOSED"),
            Code::Unavailable => f.write_str("UNAVAILABLE"),
            Code::AuthenticationFailed => f.write_str("AUTHENTICATIONFAILED"),
            Code::AuthorizationFailed => f.write_str("AUTHORIZATIONFAILED"),
            Code::Expired => f.write_str("EXPIRED"),
            Code::PrivacyRequired => f.write_str("PRIVACYREQUIRED"),
            Code::ContactAdmin => f.write_str("CONTACTADMIN"),
            Code::NoPerm => f.write_str("NOPERM"),
            Code::InUse => f.write_str("INUSE"),
            Code::ExpungeIssued => f.write_str("EXPUNGEISSUED"),
            Code::Corruption => f.write_str("CORRUPTION"),
            Code::ServerBug => f.write_str("SERVERBUG"),
            Code::ClientBug => f.write_str("CLIENTBUG"),
            Code::Cannot => f.write_str("CANNOT"),
            Code::Limit => f.write_str("LIMIT"),
            Code::OverQuota => f.write_str("OVERQUOTA"),
            Code::AlreadyExists => f.write_str("ALREADYEXISTS"),
            Code::Nonexistent => f.write_str("NONEXISTENT"),
            Code::AppendUid { validity, uids } => {
                write!(f, "APPENDUID {validity} {}", encode::sequence_set(uids))
            }
            Code::CopyUid {
                validity,
                source,
                destination,
            } => write!(
                f,
                "COPYUID {validity} {} {}",
                encode::sequence_set(source),
                encode::sequence_set(destination)
            ),
            Code::HighestModSeq(n) => write!(f, "HIGHESTMODSEQ {n}"),
            Code::NoModSeq => f.write_str("NOMODSEQ"),
            Code::Modified(set) => write!(f, "MODIFIED {}", encode::sequence_set(set)),
            Code::UseAttr => f.write_str("USEATTR"),
            Code::UnknownCte => f.write_str("UNKNOWN-CTE"),
            Code::TooBig => f.write_str("TOOBIG"),
            Code::HasChildren => f.write_str("HASCHILDREN"),
        }
    }
}

/// How a command ends: the tagged response without its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
}

impl Tagged {
    pub fn ok(text: impl Into<String>) -> Self {
        Tagged {
            status: Status::Ok,
            code: None,
            text: text.into(),
        }
    }

    pub fn ok_with(code: Code, text: impl Into<String>) -> Self {
        Tagged {
            status: Status::Ok,
            code: Some(code),
            text: text.into(),
        }
    }

    /// A refusal with the code that tells the client why (RFC 5530).
    pub fn no(code: Code, text: impl Into<String>) -> Self {
        Tagged {
            status: Status::No,
            code: Some(code),
            text: text.into(),
        }
    }

    /// A refusal no response code fits.
    pub fn no_text(text: impl Into<String>) -> Self {
        Tagged {
            status: Status::No,
            code: None,
            text: text.into(),
        }
    }

    pub fn bad(text: impl Into<String>) -> Self {
        Tagged {
            status: Status::Bad,
            code: None,
            text: text.into(),
        }
    }

    /// The response line, CRLF included; `*` as the tag for an untagged status.
    pub fn encode(&self, tag: &str) -> Vec<u8> {
        let line = match &self.code {
            Some(code) => format!("{tag} {} [{code}] {}\r\n", self.status.as_str(), self.text),
            None => format!("{tag} {} {}\r\n", self.status.as_str(), self.text),
        };
        line.into_bytes()
    }
}

/// A continuation request (`+ text`, RFC 9051 §7.5): for a literal, a SASL
/// challenge, IDLE.
pub fn continuation(text: &str) -> Vec<u8> {
    format!("+ {text}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_lines() {
        assert_eq!(
            Tagged::no(Code::Nonexistent, "Mailbox does not exist").encode("a1"),
            b"a1 NO [NONEXISTENT] Mailbox does not exist\r\n"
        );
        assert_eq!(
            Tagged::ok_with(
                Code::CopyUid {
                    validity: 7,
                    source: vec![1, 2, 3, 9],
                    destination: vec![10, 11, 12, 13],
                },
                "COPY completed"
            )
            .encode("b"),
            b"b OK [COPYUID 7 1:3,9 10:13] COPY completed\r\n"
        );
        assert_eq!(
            Tagged::no(
                Code::BadCharset(vec!["UTF-8".into(), "US-ASCII".into()]),
                "x"
            )
            .encode("c"),
            b"c NO [BADCHARSET (UTF-8 US-ASCII)] x\r\n"
        );
        assert_eq!(
            Tagged::bad("Expected DONE").encode("d"),
            b"d BAD Expected DONE\r\n"
        );
    }
}
