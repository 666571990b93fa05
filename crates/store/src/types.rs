//! Values the store API takes and returns. They carry no SQL: protocol crates use
//! them directly.

use std::collections::BTreeSet;
use std::fmt;

/// Row id of an account.
pub type AccountId = i64;
/// Row id of a mailbox; stable across RENAME.
pub type MailboxId = i64;
/// Row id of a stored message content (shared by every copy of one message).
pub type ContentId = i64;

/// The hierarchy delimiter of mailbox names (RFC 9051 §5.1).
pub const DELIMITER: char = '/';

/// A mail domain this server is the final destination for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: i64,
    pub name: String,
}

/// A user account: one login, one set of mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// The login name and primary address, `local@domain`.
    pub address: String,
    pub quota_bytes: Option<i64>,
}

/// A further address that delivers to an account; `@domain` is a catch-all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub address: String,
    pub account: String,
}

/// How recipient addresses are matched against accounts and aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// `user+tag@domain` delivers to `user@domain` when no exact match exists.
    pub sub_addressing: bool,
    /// Compare local parts case-sensitively (RFC 5321 §2.4 allows it; almost nobody does).
    pub case_sensitive_local_part: bool,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy {
            sub_addressing: true,
            case_sensitive_local_part: false,
        }
    }
}

/// Where a recipient address leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Delivered to this account.
    Local(Account),
    /// The domain is ours but nobody has this address (SMTP 550 5.1.1).
    UnknownLocal,
    /// The domain is not ours (relay, only for authenticated senders).
    Remote,
}

/// System flags of RFC 9051 §2.3.2 and keywords; `\Recent` is per session and lives
/// in the IMAP server, never here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    pub system: u8,
    /// Keywords as given by the client (compared case-insensitively).
    pub keywords: BTreeSet<String>,
}

impl Flags {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;

    /// System flags in the order IMAP servers customarily list them.
    pub const SYSTEM: [(u8, &'static str); 5] = [
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::SEEN, "\\Seen"),
        (Flags::DRAFT, "\\Draft"),
    ];

    pub fn has(&self, bit: u8) -> bool {
        self.system & bit != 0
    }

    /// Parses flag names (`\Seen`, `$Forwarded`...). Unknown backslash flags are
    /// refused: RFC 9051 §2.3.2 reserves them for the server.
    pub fn from_names<I, S>(names: I) -> Result<Flags, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut flags = Flags::default();
        for name in names {
            flags.insert(name.as_ref())?;
        }
        Ok(flags)
    }

    /// Adds one flag by name; see [`Flags::from_names`].
    pub fn insert(&mut self, name: &str) -> Result<(), String> {
        if let Some(bit) = Self::system_bit(name) {
            self.system |= bit;
            return Ok(());
        }
        if name.starts_with('\\') {
            if name.eq_ignore_ascii_case("\\Recent") {
                return Ok(());
            }
            return Err(format!("{name} is not a flag a client may set"));
        }
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b <= b' ' || b >= 0x7f || b"(){%*\"\\]".contains(&b))
        {
            return Err(format!("{name:?} is not a valid keyword"));
        }
        if !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            self.keywords.insert(name.to_string());
        }
        Ok(())
    }

    /// The bit of a system flag name, case-insensitively.
    pub fn system_bit(name: &str) -> Option<u8> {
        Self::SYSTEM
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(bit, _)| *bit)
    }

    /// True when the keyword is set (case-insensitive, RFC 9051 §2.3.2).
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }

    pub fn union(&self, other: &Flags) -> Flags {
        let mut out = self.clone();
        out.system |= other.system;
        for k in &other.keywords {
            if !out.has_keyword(k) {
                out.keywords.insert(k.clone());
            }
        }
        out
    }

    pub fn difference(&self, other: &Flags) -> Flags {
        Flags {
            system: self.system & !other.system,
            keywords: self
                .keywords
                .iter()
                .filter(|k| !other.has_keyword(k))
                .cloned()
                .collect(),
        }
    }

    /// All flag names, system flags first.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Self::SYSTEM
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, n)| n.to_string())
            .collect();
        out.extend(self.keywords.iter().cloned());
        out
    }

    pub(crate) fn keywords_column(&self) -> String {
        self.keywords.iter().cloned().collect::<Vec<_>>().join(" ")
    }

    pub(crate) fn from_columns(system: i64, keywords: &str) -> Flags {
        Flags {
            system: system as u8,
            keywords: keywords
                .split(' ')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

impl fmt::Display for Flags {
    /// The IMAP flag list, `(\Seen $Forwarded)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({})", self.names().join(" "))
    }
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// A mailbox as LIST, SELECT and STATUS see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    pub account_id: AccountId,
    /// Full name with [`DELIMITER`]; `INBOX` for the inbox.
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// RFC 6154 attribute (`\Sent`...), if any.
    pub special_use: Option<String>,
    /// A placeholder kept for its children after DELETE; cannot be selected.
    pub noselect: bool,
}

/// Counters for STATUS (RFC 9051 §6.3.11) and SELECT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    pub unseen: u32,
    pub deleted: u32,
    /// Sum of RFC822.SIZE of all messages (STATUS SIZE, RFC 8438).
    pub size: u64,
    pub uid_next: u32,
    pub uid_validity: u32,
    pub highest_modseq: u64,
    /// Messages not yet announced as \Recent to any session.
    pub recent: u32,
}

/// The per-message facts a selected mailbox keeps in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Flags,
}

/// A message's stored attributes, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Flags,
    /// INTERNALDATE as Unix seconds and the zone offset it was given in, in minutes.
    pub internal_date: i64,
    pub internal_offset: i32,
    /// RFC822.SIZE
    pub size: u64,
    pub content_id: ContentId,
    /// Date: header as Unix seconds and zone offset (for SENTBEFORE and friends).
    pub sent_date: Option<(i64, i32)>,
}

/// The pre-computed IMAP views of a message content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentViews {
    pub envelope: String,
    pub body_structure: String,
    pub body: String,
}

/// What changed in a mailbox since a MODSEQ, for a session to catch up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxChanges {
    /// Messages added or whose flags changed after the MODSEQ, by UID.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged after the MODSEQ, ascending.
    pub expunged: Vec<u32>,
    pub highest_modseq: u64,
    pub uid_next: u32,
}

/// An event of the change feed. It says only what changed, never the data: a
/// subscriber that cares asks [`crate::Store::changes_since`], so a lagging receiver
/// can always catch up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Messages were appended, flagged or expunged in this mailbox.
    Mailbox {
        account_id: AccountId,
        mailbox_id: MailboxId,
        modseq: u64,
    },
    /// Mailboxes of this account were created, deleted, renamed or (un)subscribed.
    MailboxList { account_id: AccountId },
    /// Accounts, domains or aliases changed.
    Directory,
}

/// The outcome of [`crate::Store::deliver`]: where each copy went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub content_id: ContentId,
    /// (account, INBOX mailbox, UID) per distinct recipient account.
    pub copies: Vec<(AccountId, MailboxId, u32)>,
}

/// UIDs of a COPY or MOVE: source UID and the UID its copy got (RFC 4315 COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    pub uid_validity: u32,
    pub pairs: Vec<(u32, u32)>,
}
