//! The commands a client may send, as values: what the parser produces and the
//! session executes. Nothing here knows about sockets or the store.

use mailroom_message::Section;
use time::Date;

/// One number of a sequence set: a value or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNumber {
    Value(u32),
    Largest,
}

/// RFC 9051 §9 sequence-set; `$` is the saved search result (RFC 5182).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    Ranges(Vec<(SeqNumber, SeqNumber)>),
    Saved,
}

impl SequenceSet {
    /// Resolves to the numbers it names, given the value of `*`, ascending and
    /// deduplicated. `None` when it names a number above `largest` or zero
    /// (callers decide whether that is an error: it is for message sequence numbers).
    pub fn numbers(&self, largest: u32) -> Vec<(u32, u32)> {
        let SequenceSet::Ranges(ranges) = self else {
            return Vec::new();
        };
        let value = |n: SeqNumber| match n {
            SeqNumber::Value(v) => v,
            SeqNumber::Largest => largest,
        };
        let mut out: Vec<(u32, u32)> = ranges
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (value(a), value(b));
                (a.min(b), a.max(b))
            })
            .collect();
        out.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(out.len());
        for (a, b) in out {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        merged
    }

    /// True when every number is a value in 1..=largest (`*` always is, if largest > 0).
    pub fn within(&self, largest: u32) -> bool {
        match self {
            SequenceSet::Saved => true,
            SequenceSet::Ranges(r) => r.iter().all(|&(a, b)| {
                [a, b].iter().all(|n| match n {
                    SeqNumber::Value(v) => *v >= 1 && *v <= largest,
                    SeqNumber::Largest => largest > 0,
                })
            }),
        }
    }
}

/// Message sequence match data: (known-sequence-set, known-uid-set) as ranges.
pub type SeqMatch = (Vec<(u32, u32)>, Vec<(u32, u32)>);

/// The QRESYNC parameter of SELECT/EXAMINE (RFC 7162 §3.2.5): what the client
/// remembers of the mailbox from an earlier session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uid_validity: u32,
    /// The last MODSEQ the client saw (HIGHESTMODSEQ of its last sync).
    pub modseq: u64,
    /// The UIDs the client knows, as ascending, merged ranges (no `*`); None
    /// means every UID.
    pub known_uids: Option<Vec<(u32, u32)>>,
    /// Message sequence match data (RFC 7162 §3.2.5.2): sequence numbers and the
    /// UIDs the client believes they have, as ranges in the client's order. The
    /// parser checks both name the same count of numbers, ascending.
    pub seq_match: Option<SeqMatch>,
}

impl Qresync {
    /// The (sequence number, UID) pairs of the match data, in order, lazily
    /// (the ranges may name billions of numbers).
    pub fn seq_match_pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let expand = |r: &[(u32, u32)]| -> Vec<std::ops::RangeInclusive<u32>> {
            r.iter().map(|&(a, b)| a..=b).collect()
        };
        let (seqs, uids) = match &self.seq_match {
            Some((s, u)) => (expand(s), expand(u)),
            None => (Vec::new(), Vec::new()),
        };
        seqs.into_iter().flatten().zip(uids.into_iter().flatten())
    }

    /// Whether the client listed `uid` among the UIDs it knows.
    pub fn knows(&self, uid: u32) -> bool {
        self.known_uids.as_ref().is_none_or(|r| {
            let i = r.partition_point(|&(_, b)| b < uid);
            r.get(i).is_some_and(|&(a, _)| a <= uid)
        })
    }
}

/// A FETCH data item (RFC 9051 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    Body,
    BodyStructure,
    Uid,
    /// MODSEQ (RFC 7162 §3.1.4).
    ModSeq,
    /// `BODY[section]<partial>` and `BODY.PEEK[...]`; `label` is the section as the
    /// client wrote it, echoed in the response.
    BodySection {
        peek: bool,
        section: Section,
        label: String,
        partial: Option<(u32, u32)>,
    },
    /// `BINARY[part]<partial>` and `BINARY.PEEK` (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    BinarySize {
        part: Vec<u32>,
    },
}

impl FetchAttr {
    /// Whether fetching it sets \Seen (RFC 9051 §6.4.5).
    pub fn sets_seen(&self) -> bool {
        matches!(
            self,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { peek: false, .. }
                | FetchAttr::Binary { peek: false, .. }
        )
    }
}

/// SORT criteria and THREAD algorithms (RFC 5256, RFC 5957).
pub use crate::sorting::{SortCriterion, SortKey};
pub use crate::threading::ThreadAlgorithm;
/// STORE's flag operation.
pub use mailroom_store::FlagOp;
/// RFC 4314 rights and how SETACL changes them.
pub use mailroom_store::{Rights, RightsOp};

/// A SEARCH key (RFC 9051 §6.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    SequenceSet(SequenceSet),
    Uid(SequenceSet),
    /// A system flag bit of `mailroom_store::Flags` that must be set (or unset).
    Flag {
        bit: u8,
        set: bool,
    },
    Keyword {
        name: String,
        set: bool,
    },
    Recent,
    New,
    Old,
    Before(Date),
    On(Date),
    Since(Date),
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Larger(u64),
    Smaller(u64),
    /// FROM, TO, CC, BCC, SUBJECT and HEADER: a header field contains a string.
    Header {
        field: String,
        value: String,
    },
    Body(String),
    Text(String),
    /// MODSEQ n: messages whose MODSEQ is at least n (RFC 7162 §3.1.5).
    ModSeq(u64),
}

/// SEARCH RETURN options (RFC 4731, RFC 5182).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
}

/// STATUS data items (RFC 9051 §6.3.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    Recent,
    /// HIGHESTMODSEQ (RFC 7162 §3.1.6).
    HighestModSeq,
    /// DELETED-STORAGE (RFC 9208 §4.2.1): KiB an EXPUNGE would free.
    DeletedStorage,
}

impl StatusItem {
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::Recent => "RECENT",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::DeletedStorage => "DELETED-STORAGE",
        }
    }
}

/// LIST-EXTENDED selection options (RFC 5258 §3.1, RFC 6154 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListSelection {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// LIST-EXTENDED return options (RFC 5258 §3.2, RFC 5819, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

/// One message of APPEND (several with MULTIAPPEND, RFC 3502).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    pub date: Option<time::OffsetDateTime>,
    pub data: Vec<u8>,
}

/// A mailbox name as the client wrote it (modified UTF-7 or UTF-8, depending on
/// the session); the session turns it into the store's UTF-8 name.
pub type WireName = String;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    /// RFC 9051 §6.2.1.
    StartTls,
    Login {
        user: String,
        password: String,
    },
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    Enable(Vec<String>),
    Id(Vec<(String, Option<String>)>),
    Namespace,
    Select {
        mailbox: WireName,
        read_only: bool,
        /// `(CONDSTORE)` select parameter (RFC 7162 §3.1.8).
        condstore: bool,
        /// `(QRESYNC (...))` select parameter (RFC 7162 §3.2.5).
        qresync: Option<Qresync>,
    },
    Create {
        mailbox: WireName,
        special_use: Vec<String>,
    },
    Delete(WireName),
    Rename {
        from: WireName,
        to: WireName,
    },
    Subscribe(WireName),
    Unsubscribe(WireName),
    List {
        reference: WireName,
        patterns: Vec<WireName>,
        selection: ListSelection,
        returns: ListReturn,
        extended: bool,
    },
    Lsub {
        reference: WireName,
        pattern: WireName,
    },
    Status {
        mailbox: WireName,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: WireName,
        messages: Vec<AppendMessage>,
    },
    Idle,
    /// IMAP4rev1 CHECK (RFC 3501 §6.4.1; gone from IMAP4rev2, kept for rev1 clients).
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SequenceSet>,
    },
    Search {
        uid: bool,
        returns: Option<Vec<SearchReturn>>,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        attrs: Vec<FetchAttr>,
        /// `(CHANGEDSINCE n)` (RFC 7162 §3.1.4.1).
        changed_since: Option<u64>,
        /// The `VANISHED` modifier of UID FETCH (RFC 7162 §3.2.6); the parser
        /// accepts it only with `uid` and `changed_since`.
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        op: FlagOp,
        silent: bool,
        flags: Vec<String>,
        /// `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3).
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: WireName,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: WireName,
    },
    /// RFC 4314 §3.1; `+rights` adds, `-rights` removes.
    SetAcl {
        mailbox: WireName,
        identifier: String,
        op: RightsOp,
        rights: Rights,
    },
    /// RFC 4314 §3.2.
    DeleteAcl {
        mailbox: WireName,
        identifier: String,
    },
    /// RFC 4314 §3.3.
    GetAcl(WireName),
    /// RFC 4314 §3.4.
    ListRights {
        mailbox: WireName,
        identifier: String,
    },
    /// RFC 4314 §3.5.
    MyRights(WireName),
    /// SORT and UID SORT (RFC 5256 §3); `returns` is ESORT's RETURN (RFC 5267 §3.2).
    Sort {
        uid: bool,
        returns: Option<Vec<SearchReturn>>,
        criteria: Vec<SortCriterion>,
        key: SearchKey,
    },
    /// THREAD and UID THREAD (RFC 5256 §3).
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        key: SearchKey,
    },
    /// RFC 9208 §4.1.1: a quota root's resources.
    GetQuota(String),
    /// RFC 9208 §4.1.2: a mailbox's quota roots.
    GetQuotaRoot(WireName),
    /// RFC 9208 §4.1.3: resource names (upper-cased) and limits.
    SetQuota {
        root: String,
        limits: Vec<(String, u64)>,
    },
}

/// A tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    /// Its entry in the command table: name, valid states, the EXPUNGE rule.
    pub spec: &'static super::commands::CommandSpec,
    pub body: CommandBody,
}
