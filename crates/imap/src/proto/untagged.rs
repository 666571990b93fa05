//! Untagged responses as values (RFC 9051 §7) and the one place that writes
//! them: status and data responses (`Untagged`), FETCH responses
//! (`FetchResponse` of `FetchItem`s) and the buffer a command collects them in
//! (`Responses`). Session code builds these; only this module and `response.rs`
//! (tagged lines) turn responses into protocol text. Literals and literal8 are
//! written by `encode::write_literal` alone.

use std::borrow::Cow;

use mailroom_store::{Flags, Rights};

use super::encode;
use super::response::Tagged;
use crate::threading::Threads;

/// A mailbox name as a session shows it: modified UTF-7 unless the client
/// enabled UTF-8 (RFC 9051 §5.1.3, RFC 6855).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxName {
    /// The name in the store's UTF-8 form.
    pub name: String,
    pub utf8: bool,
}

impl MailboxName {
    pub fn new(name: impl Into<String>, utf8: bool) -> Self {
        MailboxName {
            name: name.into(),
            utf8,
        }
    }
}

/// The ESEARCH response of SEARCH RETURN (RFC 4731) and ESORT (RFC 5267).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Esearch {
    /// The tag of the command it answers.
    pub tag: String,
    pub uid: bool,
    pub min: Option<u32>,
    pub max: Option<u32>,
    /// The numbers in the command's order (sort order for ESORT), written as a
    /// sequence set of ascending runs.
    pub all: Option<Vec<u32>>,
    pub count: Option<u32>,
    /// RFC 7162 §3.1.5.
    pub modseq: Option<u64>,
}

/// One namespace of a NAMESPACE response: its prefix and hierarchy delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub prefix: String,
    pub delimiter: char,
}

/// An untagged response other than FETCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged {
    /// `* OK|NO|BAD [code] text` (RFC 9051 §7.1).
    Status(Tagged),
    /// `* BYE text`: the server closes the connection (RFC 9051 §7.1.5).
    Bye(String),
    /// The capability list, space-separated as in `Code::Capability`.
    Capability(String),
    /// RFC 5161 §4.
    Enabled(Vec<String>),
    /// RFC 2971 §3.2: field/value pairs.
    Id(Vec<(String, String)>),
    /// RFC 2342 §5: personal, other users' and shared namespaces; NIL when empty.
    Namespace {
        personal: Vec<Namespace>,
        other: Vec<Namespace>,
        shared: Vec<Namespace>,
    },
    Flags(Vec<String>),
    Exists(u32),
    /// IMAP4rev1 only.
    Recent(u32),
    Expunge(u32),
    /// RFC 7162 §3.2.10; nothing is written for no UIDs.
    Vanished {
        earlier: bool,
        uids: Vec<u32>,
    },
    /// LIST (or LSUB, IMAP4rev1) with `/` as the delimiter; `child_info` are
    /// the CHILDINFO selection options (RFC 5258 §3.5).
    List {
        lsub: bool,
        attributes: Vec<String>,
        mailbox: MailboxName,
        child_info: Vec<String>,
    },
    /// STATUS items as name and value (RFC 9051 §7.2.4).
    MailboxStatus {
        mailbox: MailboxName,
        items: Vec<(String, u64)>,
    },
    /// IMAP4rev1 SEARCH, with the MODSEQ of RFC 7162 §3.1.5.
    Search {
        numbers: Vec<u32>,
        modseq: Option<u64>,
    },
    Esearch(Esearch),
    /// RFC 5256 §4.
    Sort(Vec<u32>),
    /// RFC 5256 §4.
    Thread(Threads),
    /// RFC 4314 §3.6: identifier/rights pairs.
    Acl {
        mailbox: MailboxName,
        entries: Vec<(String, Rights)>,
    },
    /// RFC 4314 §3.7: the rights always granted, then each group that may be.
    ListRights {
        mailbox: MailboxName,
        identifier: String,
        required: Rights,
        optional: Vec<String>,
    },
    /// RFC 4314 §3.8.
    MyRights {
        mailbox: MailboxName,
        rights: Rights,
    },
    /// RFC 9208 §5.1: resource name, usage and limit.
    Quota {
        root: String,
        resources: Vec<(String, u64, u64)>,
    },
    /// RFC 9208 §5.2.
    QuotaRoot {
        mailbox: MailboxName,
        roots: Vec<String>,
    },
}

/// The `* ` of every untagged response.
const STAR: &[u8] = b"* ";
const CRLF: &[u8] = b"\r\n";

fn write_mailbox(out: &mut Vec<u8>, mailbox: &MailboxName) {
    encode::write_mailbox(out, &mailbox.name, mailbox.utf8);
}

/// Numbers separated by spaces, each preceded by one.
fn write_numbers(out: &mut Vec<u8>, numbers: &[u32]) {
    for n in numbers {
        out.push(b' ');
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

fn write_namespaces(out: &mut Vec<u8>, spaces: &[Namespace]) {
    if spaces.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for ns in spaces {
        out.push(b'(');
        encode::write_string(out, ns.prefix.as_bytes());
        out.push(b' ');
        let mut buf = [0; 4];
        encode::write_string(out, ns.delimiter.encode_utf8(&mut buf).as_bytes());
        out.push(b')');
    }
    out.push(b')');
}

impl Untagged {
    /// Appends the response line(s), CRLF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Untagged::Status(tagged) => {
                out.extend_from_slice(&tagged.encode("*"));
                return;
            }
            Untagged::Vanished { uids, .. } if uids.is_empty() => return,
            _ => {}
        }
        out.extend_from_slice(STAR);
        match self {
            Untagged::Status(_) => {}
            Untagged::Bye(_)
            | Untagged::Capability(_)
            | Untagged::Enabled(_)
            | Untagged::Id(_)
            | Untagged::Namespace { .. } => self.write_server_data(out),
            Untagged::Flags(_)
            | Untagged::Exists(_)
            | Untagged::Recent(_)
            | Untagged::Expunge(_)
            | Untagged::Vanished { .. }
            | Untagged::List { .. }
            | Untagged::MailboxStatus { .. } => self.write_mailbox_data(out),
            Untagged::Search { .. }
            | Untagged::Esearch(_)
            | Untagged::Sort(_)
            | Untagged::Thread(_) => self.write_search_data(out),
            Untagged::Acl { .. }
            | Untagged::ListRights { .. }
            | Untagged::MyRights { .. }
            | Untagged::Quota { .. }
            | Untagged::QuotaRoot { .. } => self.write_rights_data(out),
        }
        out.extend_from_slice(CRLF);
    }

    /// Server and connection data: BYE, CAPABILITY, ENABLED, ID, NAMESPACE.
    fn write_server_data(&self, out: &mut Vec<u8>) {
        match self {
            Untagged::Bye(text) => {
                out.extend_from_slice(b"BYE ");
                out.extend_from_slice(text.as_bytes());
            }
            Untagged::Capability(caps) => {
                out.extend_from_slice(b"CAPABILITY ");
                out.extend_from_slice(caps.as_bytes());
            }
            Untagged::Enabled(caps) => {
                out.extend_from_slice(b"ENABLED");
                for cap in caps {
                    out.push(b' ');
                    out.extend_from_slice(cap.as_bytes());
                }
            }
            Untagged::Id(fields) => {
                out.extend_from_slice(b"ID ");
                if fields.is_empty() {
                    out.extend_from_slice(b"NIL");
                } else {
                    out.push(b'(');
                    for (i, (field, value)) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(b' ');
                        }
                        encode::write_string(out, field.as_bytes());
                        out.push(b' ');
                        encode::write_string(out, value.as_bytes());
                    }
                    out.push(b')');
                }
            }
            Untagged::Namespace {
                personal,
                other,
                shared,
            } => {
                out.extend_from_slice(b"NAMESPACE ");
                write_namespaces(out, personal);
                out.push(b' ');
                write_namespaces(out, other);
                out.push(b' ');
                write_namespaces(out, shared);
            }
            _ => {}
        }
    }

    /// Mailbox data and message status (RFC 9051 §7.2-7.4).
    fn write_mailbox_data(&self, out: &mut Vec<u8>) {
        match self {
            Untagged::Flags(flags) => {
                out.extend_from_slice(b"FLAGS (");
                out.extend_from_slice(flags.join(" ").as_bytes());
                out.push(b')');
            }
            Untagged::Exists(n) => out.extend_from_slice(format!("{n} EXISTS").as_bytes()),
            Untagged::Recent(n) => out.extend_from_slice(format!("{n} RECENT").as_bytes()),
            Untagged::Expunge(n) => out.extend_from_slice(format!("{n} EXPUNGE").as_bytes()),
            Untagged::Vanished { earlier, uids } => {
                out.extend_from_slice(b"VANISHED ");
                if *earlier {
                    out.extend_from_slice(b"(EARLIER) ");
                }
                out.extend_from_slice(encode::sequence_set(uids).as_bytes());
            }
            Untagged::List {
                lsub,
                attributes,
                mailbox,
                child_info,
            } => {
                out.extend_from_slice(if *lsub { b"LSUB (" } else { b"LIST (" });
                out.extend_from_slice(attributes.join(" ").as_bytes());
                out.extend_from_slice(b") \"/\" ");
                write_mailbox(out, mailbox);
                if !child_info.is_empty() {
                    out.extend_from_slice(b" (CHILDINFO (");
                    for (i, option) in child_info.iter().enumerate() {
                        if i > 0 {
                            out.push(b' ');
                        }
                        encode::write_string(out, option.as_bytes());
                    }
                    out.extend_from_slice(b"))");
                }
            }
            Untagged::MailboxStatus { mailbox, items } => {
                out.extend_from_slice(b"STATUS ");
                write_mailbox(out, mailbox);
                out.extend_from_slice(b" (");
                for (i, (name, value)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(format!("{name} {value}").as_bytes());
                }
                out.push(b')');
            }
            _ => {}
        }
    }

    /// SEARCH, ESEARCH, SORT and THREAD results.
    fn write_search_data(&self, out: &mut Vec<u8>) {
        match self {
            Untagged::Search { numbers, modseq } => {
                out.extend_from_slice(b"SEARCH");
                write_numbers(out, numbers);
                if let Some(m) = modseq {
                    out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
                }
            }
            Untagged::Esearch(e) => {
                out.extend_from_slice(b"ESEARCH (TAG ");
                encode::write_string(out, e.tag.as_bytes());
                out.push(b')');
                if e.uid {
                    out.extend_from_slice(b" UID");
                }
                // Dovecot's order: MIN, MAX, ALL, COUNT, MODSEQ.
                if let Some(n) = e.min {
                    out.extend_from_slice(format!(" MIN {n}").as_bytes());
                }
                if let Some(n) = e.max {
                    out.extend_from_slice(format!(" MAX {n}").as_bytes());
                }
                if let Some(all) = &e.all {
                    out.extend_from_slice(b" ALL ");
                    out.extend_from_slice(encode::sequence_set(all).as_bytes());
                }
                if let Some(n) = e.count {
                    out.extend_from_slice(format!(" COUNT {n}").as_bytes());
                }
                if let Some(m) = e.modseq {
                    out.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
                }
            }
            Untagged::Sort(numbers) => {
                out.extend_from_slice(b"SORT");
                write_numbers(out, numbers);
            }
            Untagged::Thread(threads) => {
                out.extend_from_slice(b"THREAD");
                let text = encode::threads(threads);
                if !text.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(text.as_bytes());
                }
            }
            _ => {}
        }
    }

    /// ACL (RFC 4314 §3.6-3.8) and QUOTA (RFC 9208 §5) data.
    fn write_rights_data(&self, out: &mut Vec<u8>) {
        match self {
            Untagged::Acl { mailbox, entries } => {
                out.extend_from_slice(b"ACL ");
                write_mailbox(out, mailbox);
                for (identifier, rights) in entries {
                    out.push(b' ');
                    out.extend_from_slice(encode::astring(identifier).as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(encode::rights(*rights).as_bytes());
                }
            }
            Untagged::ListRights {
                mailbox,
                identifier,
                required,
                optional,
            } => {
                out.extend_from_slice(b"LISTRIGHTS ");
                write_mailbox(out, mailbox);
                out.push(b' ');
                out.extend_from_slice(encode::astring(identifier).as_bytes());
                out.push(b' ');
                out.extend_from_slice(encode::rights(*required).as_bytes());
                for group in optional {
                    out.push(b' ');
                    out.extend_from_slice(encode::astring(group).as_bytes());
                }
            }
            Untagged::MyRights { mailbox, rights } => {
                out.extend_from_slice(b"MYRIGHTS ");
                write_mailbox(out, mailbox);
                out.push(b' ');
                out.extend_from_slice(encode::rights(*rights).as_bytes());
            }
            Untagged::Quota { root, resources } => {
                out.extend_from_slice(b"QUOTA ");
                encode::write_string(out, root.as_bytes());
                out.extend_from_slice(b" (");
                for (i, (name, usage, limit)) in resources.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(format!("{name} {usage} {limit}").as_bytes());
                }
                out.push(b')');
            }
            Untagged::QuotaRoot { mailbox, roots } => {
                out.extend_from_slice(b"QUOTAROOT ");
                write_mailbox(out, mailbox);
                for root in roots {
                    out.push(b' ');
                    encode::write_string(out, root.as_bytes());
                }
            }
            _ => {}
        }
    }
}

/// One data item of a FETCH response (RFC 9051 §7.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem<'a> {
    Uid(u32),
    /// Flag names in the order shown (see [`FetchItem::flags`]).
    Flags(Vec<String>),
    /// RFC 7162 §3.1.4.
    ModSeq(u64),
    /// Unix seconds and the zone's offset in minutes.
    InternalDate {
        unix: i64,
        offset_minutes: i32,
    },
    Rfc822Size(u64),
    /// ENVELOPE, BODY and BODYSTRUCTURE come from the store already in their
    /// IMAP form (mailroom-message builds them once per message).
    Envelope(Cow<'a, str>),
    Body(Cow<'a, str>),
    BodyStructure(Cow<'a, str>),
    Rfc822(Cow<'a, [u8]>),
    Rfc822Header(Cow<'a, [u8]>),
    Rfc822Text(Cow<'a, [u8]>),
    /// `BODY[section]<origin>`: `section` as the client wrote it (upper case).
    BodySection {
        section: String,
        origin: Option<u32>,
        data: Cow<'a, [u8]>,
    },
    /// `BINARY[part]<origin>` (RFC 3516 §4.2); None is NIL.
    Binary {
        part: Vec<u32>,
        origin: Option<u32>,
        data: Option<Cow<'a, [u8]>>,
    },
    BinarySize {
        part: Vec<u32>,
        size: u64,
    },
}

impl FetchItem<'_> {
    /// FLAGS as Dovecot orders them: system flags, then `\Recent` when the
    /// session sees the message as recent, then keywords.
    pub fn flags(flags: &Flags, recent: bool) -> FetchItem<'static> {
        let mut names: Vec<String> = Flags::SYSTEM
            .iter()
            .filter(|(bit, _)| flags.has(*bit))
            .map(|(_, n)| (*n).to_string())
            .collect();
        if recent {
            names.push("\\Recent".into());
        }
        names.extend(flags.keywords.iter().cloned());
        FetchItem::Flags(names)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let part_label = |part: &[u32]| {
            part.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".")
        };
        let origin_label =
            |origin: &Option<u32>| origin.map(|o| format!("<{o}>")).unwrap_or_default();
        match self {
            FetchItem::Uid(uid) => out.extend_from_slice(format!("UID {uid}").as_bytes()),
            FetchItem::Flags(names) => {
                out.extend_from_slice(b"FLAGS (");
                out.extend_from_slice(names.join(" ").as_bytes());
                out.push(b')');
            }
            FetchItem::ModSeq(m) => out.extend_from_slice(format!("MODSEQ ({m})").as_bytes()),
            FetchItem::InternalDate {
                unix,
                offset_minutes,
            } => {
                out.extend_from_slice(b"INTERNALDATE ");
                out.extend_from_slice(encode::internal_date(*unix, *offset_minutes).as_bytes());
            }
            FetchItem::Rfc822Size(n) => {
                out.extend_from_slice(format!("RFC822.SIZE {n}").as_bytes())
            }
            FetchItem::Envelope(text) => {
                out.extend_from_slice(b"ENVELOPE ");
                out.extend_from_slice(text.as_bytes());
            }
            FetchItem::Body(text) => {
                out.extend_from_slice(b"BODY ");
                out.extend_from_slice(text.as_bytes());
            }
            FetchItem::BodyStructure(text) => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                out.extend_from_slice(text.as_bytes());
            }
            FetchItem::Rfc822(data) => {
                out.extend_from_slice(b"RFC822 ");
                encode::write_literal(out, data);
            }
            FetchItem::Rfc822Header(data) => {
                out.extend_from_slice(b"RFC822.HEADER ");
                encode::write_literal(out, data);
            }
            FetchItem::Rfc822Text(data) => {
                out.extend_from_slice(b"RFC822.TEXT ");
                encode::write_literal(out, data);
            }
            FetchItem::BodySection {
                section,
                origin,
                data,
            } => {
                out.extend_from_slice(
                    format!("BODY[{section}]{} ", origin_label(origin)).as_bytes(),
                );
                encode::write_literal(out, data);
            }
            FetchItem::Binary { part, origin, data } => {
                out.extend_from_slice(
                    format!("BINARY[{}]{} ", part_label(part), origin_label(origin)).as_bytes(),
                );
                match data {
                    // RFC 3516 §4.3: literal8 when the content has NUL.
                    Some(data) => encode::write_literal(out, data),
                    None => out.extend_from_slice(b"NIL"),
                }
            }
            FetchItem::BinarySize { part, size } => out
                .extend_from_slice(format!("BINARY.SIZE[{}] {size}", part_label(part)).as_bytes()),
        }
    }
}

/// `* n FETCH (items)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse<'a> {
    /// The message's sequence number.
    pub seq: u32,
    pub items: Vec<FetchItem<'a>>,
}

impl FetchResponse<'static> {
    /// What a flag change reports: UID (with UID commands and unsolicited
    /// updates), FLAGS (unless .SILENT) and MODSEQ (with CONDSTORE), in that
    /// order, as every FETCH of flags is written.
    pub fn flags_update(
        seq: u32,
        uid: Option<u32>,
        flags: Option<(&Flags, bool)>,
        modseq: Option<u64>,
    ) -> Self {
        let mut items = Vec::with_capacity(3);
        if let Some(uid) = uid {
            items.push(FetchItem::Uid(uid));
        }
        if let Some((flags, recent)) = flags {
            items.push(FetchItem::flags(flags, recent));
        }
        if let Some(m) = modseq {
            items.push(FetchItem::ModSeq(m));
        }
        FetchResponse { seq, items }
    }
}

impl FetchResponse<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("* {} FETCH (", self.seq).as_bytes());
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            item.encode(out);
        }
        out.extend_from_slice(b")\r\n");
    }
}

/// The untagged responses a command collects before they are written.
#[derive(Debug, Default)]
pub struct Responses {
    bytes: Vec<u8>,
}

impl Responses {
    pub fn push(&mut self, response: Untagged) {
        response.encode(&mut self.bytes);
    }

    pub fn fetch(&mut self, response: &FetchResponse<'_>) {
        response.encode(&mut self.bytes);
    }

    /// An untagged status response (`* OK [code] text`).
    pub fn status(&mut self, tagged: Tagged) {
        self.push(Untagged::Status(tagged));
    }

    /// Moves the responses of `other` to the end of these.
    pub fn append(&mut self, other: &mut Responses) {
        self.bytes.append(&mut other.bytes);
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The protocol text so far, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}
