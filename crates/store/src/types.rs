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
    /// A COPY or MOVE into or out of Junk left a spam training request for this
    /// account (the learning worker wakes up).
    SpamTraining { account_id: AccountId },
}

/// Where the inbound pipeline files a delivered copy ([`crate::Store::deliver_into`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Folder {
    Inbox,
    /// The account's mailbox with the `\Junk` special use (RFC 6154); INBOX when the
    /// account has none.
    Junk,
}

/// The outcome of [`crate::Store::deliver`]: where each copy went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub content_id: ContentId,
    /// (account, mailbox, UID) per distinct recipient account.
    pub copies: Vec<(AccountId, MailboxId, u32)>,
}

/// UIDs of a COPY or MOVE: source UID and the UID its copy got (RFC 4315 COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    pub uid_validity: u32,
    pub pairs: Vec<(u32, u32)>,
}

/// A set of RFC 4314 §2.1 rights of one identifier on one mailbox.
///
/// The standard letters are `lrswipkxtea`. The RFC 2086 letters `c` and `d` are
/// virtual (§2.1.1); mailroom follows the first group of that section: `c` (create)
/// is `k` + `x`, `d` (delete) is `e` + `t`. [`Rights::parse`] expands them, and
/// [`Rights::imap`] adds them back when any of their members is present, as the
/// RFC requires of MYRIGHTS and ACL responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rights(u16);

impl Rights {
    /// The standard letters in RFC 4314 order; bit i is letter i.
    pub const LETTERS: &'static str = "lrswipkxtea";
    pub const LOOKUP: Rights = Rights(1);
    pub const READ: Rights = Rights(1 << 1);
    pub const SEEN: Rights = Rights(1 << 2);
    pub const WRITE: Rights = Rights(1 << 3);
    pub const INSERT: Rights = Rights(1 << 4);
    pub const POST: Rights = Rights(1 << 5);
    pub const CREATE: Rights = Rights(1 << 6);
    pub const DELETE_MAILBOX: Rights = Rights(1 << 7);
    pub const DELETE_MESSAGES: Rights = Rights(1 << 8);
    pub const EXPUNGE: Rights = Rights(1 << 9);
    pub const ADMIN: Rights = Rights(1 << 10);
    /// Every right: what the owner of a mailbox has.
    pub const ALL: Rights = Rights((1 << 11) - 1);
    pub const NONE: Rights = Rights(0);

    /// Parses rights letters. `c` and `d` are expanded (see the type's docs);
    /// Err(letter) names the first letter that is not a right.
    pub fn parse(letters: &str) -> Result<Rights, char> {
        let mut rights = Rights::NONE;
        for c in letters.chars() {
            rights = rights.union(match c {
                'c' => Rights::CREATE.union(Rights::DELETE_MAILBOX),
                'd' => Rights::EXPUNGE.union(Rights::DELETE_MESSAGES),
                _ => match Self::LETTERS.find(c) {
                    Some(i) => Rights(1 << i),
                    None => return Err(c),
                },
            });
        }
        Ok(rights)
    }

    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when at least one right of `other` is present.
    pub fn intersects(self, other: Rights) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    pub fn difference(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// The standard letters, in RFC 4314 order, without `c`/`d` (the stored form).
    pub fn letters(self) -> String {
        Self::LETTERS
            .chars()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect()
    }

    /// The letters as an IMAP response shows them: the standard ones, then `c`
    /// when `k` or `x` is present and `d` when `e` or `t` is (RFC 4314 §2.1.1).
    pub fn imap(self) -> String {
        let mut out = self.letters();
        if self.intersects(Rights::CREATE.union(Rights::DELETE_MAILBOX)) {
            out.push('c');
        }
        if self.intersects(Rights::EXPUNGE.union(Rights::DELETE_MESSAGES)) {
            out.push('d');
        }
        out
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.letters())
    }
}

/// One entry of a mailbox's access control list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// `anyone`, `authenticated` or an account's address.
    pub identifier: String,
    pub rights: Rights,
}

/// A mailbox of another account that an account may see (it has the `l` right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMailbox {
    /// The owner's address.
    pub owner: String,
    pub mailbox: Mailbox,
    /// The viewer's rights on it.
    pub rights: Rights,
}

impl Flags {
    /// The flags a change to `self` really makes when the one changing them holds
    /// `rights` (RFC 4314 §4): `\Seen` needs `s`, `\Deleted` needs `t`, every other
    /// flag and keyword needs `w`; flags the holder may not change keep their value
    /// in `before`.
    pub fn within_rights(&self, before: &Flags, rights: Rights) -> Flags {
        let mut mask = 0u8;
        if rights.contains(Rights::SEEN) {
            mask |= Flags::SEEN;
        }
        if rights.contains(Rights::DELETE_MESSAGES) {
            mask |= Flags::DELETED;
        }
        let write = rights.contains(Rights::WRITE);
        if write {
            mask |= Flags::ANSWERED | Flags::FLAGGED | Flags::DRAFT;
        }
        Flags {
            system: (self.system & mask) | (before.system & !mask),
            keywords: if write {
                self.keywords.clone()
            } else {
                before.keywords.clone()
            },
        }
    }
}
