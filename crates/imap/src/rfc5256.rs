//! The algorithms of SORT and THREAD (RFC 5256) and SORT=DISPLAY (RFC 5957), apart
//! from I/O: base subject extraction (§2.1), the sort keys (§3), ORDEREDSUBJECT and
//! REFERENCES threading (§4) and the thread-list encoding (§5).
//!
//! Comparisons use the default collation, i;ascii-casemap (RFC 4790 §9.2): octets
//! with ASCII letters upper-cased. Ties are broken by the order of the messages in
//! the mailbox (sequence number), which is the order callers pass messages in.
//!
//! Nothing here recurses along a thread: a chain of a hundred thousand replies
//! costs heap, not stack.

use std::cmp::Ordering;
use std::collections::HashMap;

/// A SORT criterion's key (RFC 5256 §3, RFC 5957 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Arrival => "ARRIVAL",
            SortKey::Cc => "CC",
            SortKey::Date => "DATE",
            SortKey::From => "FROM",
            SortKey::Size => "SIZE",
            SortKey::Subject => "SUBJECT",
            SortKey::To => "TO",
            SortKey::DisplayFrom => "DISPLAYFROM",
            SortKey::DisplayTo => "DISPLAYTO",
        }
    }

    /// The key named `name` (any case), if there is one.
    pub fn from_name(name: &str) -> Option<SortKey> {
        [
            SortKey::Arrival,
            SortKey::Cc,
            SortKey::Date,
            SortKey::From,
            SortKey::Size,
            SortKey::Subject,
            SortKey::To,
            SortKey::DisplayFrom,
            SortKey::DisplayTo,
        ]
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

/// One SORT criterion: a key, in reverse order when REVERSE preceded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// THREAD algorithms (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

impl ThreadAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            ThreadAlgorithm::OrderedSubject => "ORDEREDSUBJECT",
            ThreadAlgorithm::References => "REFERENCES",
        }
    }
}

// ---- base subject (§2.1) ----

/// The i;ascii-casemap form of a string: ASCII letters upper-cased.
pub fn casemap(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// Length of a subj-blob (`"[" *BLOBCHAR "]" *WSP`) at the start of `s`.
fn blob_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let close = s.iter().skip(1).position(|&b| b == b'[' || b == b']')? + 1;
    if s.get(close) != Some(&b']') {
        return None;
    }
    let mut n = close + 1;
    while s.get(n) == Some(&b' ') {
        n += 1;
    }
    Some(n)
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Length of a subj-refwd (`("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`) at the
/// start of `s`.
fn refwd_len(s: &[u8]) -> Option<usize> {
    let mut n = if starts_with_ci(s, b"re") {
        2
    } else if starts_with_ci(s, b"fwd") {
        3
    } else if starts_with_ci(s, b"fw") {
        2
    } else {
        return None;
    };
    while s.get(n) == Some(&b' ') {
        n += 1;
    }
    if let Some(b) = blob_len(&s[n..]) {
        n += b;
    }
    (s.get(n) == Some(&b':')).then_some(n + 1)
}

/// Length of a subj-leader (`(*subj-blob subj-refwd) / WSP`) at the start of `s`,
/// and whether it was a reply/forward marker.
fn leader_len(s: &[u8]) -> Option<(usize, bool)> {
    if s.first() == Some(&b' ') {
        return Some((1, false));
    }
    let mut n = 0;
    while let Some(b) = blob_len(&s[n..]) {
        n += b;
    }
    refwd_len(&s[n..]).map(|r| (n + r, true))
}

/// The base subject of a decoded Subject (RFC 5256 §2.1), and whether the
/// extraction removed a reply or forward marker (a subj-refwd, a "(fwd)" trailer
/// or a "[fwd: ...]" wrapper), which THREAD=REFERENCES step 5 needs.
///
/// The subject must already be RFC 2047-decoded (step 1's first half); the store
/// keeps it so. The result keeps its case; compare it through [`casemap`].
pub fn base_subject(decoded: &str) -> (String, bool) {
    // (1) Tabs and line breaks become spaces, runs of spaces one space.
    let mut s: Vec<u8> = Vec::with_capacity(decoded.len());
    for &b in decoded.as_bytes() {
        let b = if matches!(b, b'\t' | b'\r' | b'\n') {
            b' '
        } else {
            b
        };
        if b == b' ' && s.last() == Some(&b' ') {
            continue;
        }
        s.push(b);
    }
    let mut reply = false;
    let mut start = 0;
    let mut end = s.len();
    loop {
        // (2) Trailers: WSP and "(fwd)".
        loop {
            if end > start && s[end - 1] == b' ' {
                end -= 1;
            } else if end >= start + 5 && s[end - 5..end].eq_ignore_ascii_case(b"(fwd)") {
                end -= 5;
                reply = true;
            } else {
                break;
            }
        }
        // (3), (4), (5): leaders, and a blob that leaves something behind.
        loop {
            let mut changed = false;
            while let Some((n, is_refwd)) = leader_len(&s[start..end]) {
                start += n;
                reply |= is_refwd;
                changed = true;
            }
            if let Some(n) = blob_len(&s[start..end])
                && start + n < end
            {
                start += n;
                changed = true;
            }
            if !changed {
                break;
            }
        }
        // (6) "[fwd:" ... "]" around the rest: remove and start again at (2).
        if end - start >= 6 && starts_with_ci(&s[start..end], b"[fwd:") && s[end - 1] == b']' {
            start += 5;
            end -= 1;
            reply = true;
            continue;
        }
        break;
    }
    // Only ASCII was removed, so the boundaries are character boundaries.
    (String::from_utf8_lossy(&s[start..end]).into_owned(), reply)
}

// ---- message IDs ----

/// The valid message IDs (`<left@right>`) in a Message-ID, In-Reply-To or
/// References value, in order, without the angle brackets and with any folding
/// whitespace inside removed. Comparisons of IDs are case-sensitive (§4).
pub fn message_ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(['>', '<']) else {
            break;
        };
        if after.as_bytes()[close] == b'<' {
            rest = &after[close..];
            continue;
        }
        let id: String = after[..close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Some((left, right)) = id.split_once('@')
            && !left.is_empty()
            && !right.is_empty()
        {
            out.push(id);
        }
        rest = &after[close + 1..];
    }
    out
}

// ---- the stored ENVELOPE ----

/// One address of an ENVELOPE address list (RFC 9051 §7.5.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeAddress {
    pub name: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
}

/// The address lists SORT looks at, from a stored ENVELOPE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeAddresses {
    pub from: Vec<EnvelopeAddress>,
    pub to: Vec<EnvelopeAddress>,
    pub cc: Vec<EnvelopeAddress>,
}

#[derive(Debug)]
enum Item {
    Nil,
    Str(Vec<u8>),
    List(Vec<Item>),
}

struct EnvelopeReader<'a> {
    s: &'a [u8],
    pos: usize,
}

impl EnvelopeReader<'_> {
    fn skip_spaces(&mut self) {
        while self.s.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    /// One item; lists nest at most `depth` deep (an ENVELOPE needs three).
    fn item(&mut self, depth: usize) -> Option<Item> {
        self.skip_spaces();
        match *self.s.get(self.pos)? {
            b'(' => {
                if depth == 0 {
                    return None;
                }
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    if self.s.get(self.pos) == Some(&b')') {
                        self.pos += 1;
                        return Some(Item::List(items));
                    }
                    items.push(self.item(depth - 1)?);
                }
            }
            b'"' => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    match *self.s.get(self.pos)? {
                        b'"' => {
                            self.pos += 1;
                            return Some(Item::Str(out));
                        }
                        b'\\' => {
                            out.push(*self.s.get(self.pos + 1)?);
                            self.pos += 2;
                        }
                        b => {
                            out.push(b);
                            self.pos += 1;
                        }
                    }
                }
            }
            b'{' => {
                let close = self.s[self.pos..].iter().position(|&b| b == b'}')? + self.pos;
                let len: usize = std::str::from_utf8(&self.s[self.pos + 1..close])
                    .ok()?
                    .parse()
                    .ok()?;
                let start = close + 3; // "}\r\n"
                let bytes = self.s.get(start..start.checked_add(len)?)?;
                self.pos = start + len;
                Some(Item::Str(bytes.to_vec()))
            }
            _ if self.s[self.pos..].starts_with(b"NIL") => {
                self.pos += 3;
                Some(Item::Nil)
            }
            _ => None,
        }
    }
}

fn addresses(item: Option<&Item>) -> Vec<EnvelopeAddress> {
    let Some(Item::List(list)) = item else {
        return Vec::new();
    };
    let field = |a: &[Item], i: usize| match a.get(i) {
        Some(Item::Str(s)) => Some(s.clone()),
        _ => None,
    };
    list.iter()
        .filter_map(|a| match a {
            Item::List(a) => Some(EnvelopeAddress {
                name: field(a, 0),
                mailbox: field(a, 2),
                host: field(a, 3),
            }),
            _ => None,
        })
        .collect()
}

/// Reads the From, To and Cc lists of an ENVELOPE as FETCH sends it; `None` when
/// the text is not an ENVELOPE.
pub fn envelope_addresses(envelope: &str) -> Option<EnvelopeAddresses> {
    let mut r = EnvelopeReader {
        s: envelope.as_bytes(),
        pos: 0,
    };
    let Item::List(items) = r.item(3)? else {
        return None;
    };
    if items.len() != 10 {
        return None;
    }
    Some(EnvelopeAddresses {
        from: addresses(items.get(2)),
        to: addresses(items.get(5)),
        cc: addresses(items.get(6)),
    })
}

/// RFC 5256 §3 FROM/TO/CC: the addr-mailbox of the first address, or "" when
/// there is none.
pub fn first_mailbox(list: &[EnvelopeAddress]) -> Vec<u8> {
    list.first()
        .and_then(|a| a.mailbox.clone())
        .unwrap_or_default()
}

/// RFC 5957 §3 DISPLAYFROM/DISPLAYTO: the decoded display name of the first
/// address if it has a non-empty one, else its addr-spec (mailbox@host); "" when
/// there is no address. `decode` undoes RFC 2047 encoded words.
pub fn display_name(list: &[EnvelopeAddress], decode: impl Fn(&[u8]) -> String) -> String {
    let Some(first) = list.first() else {
        return String::new();
    };
    if let Some(name) = &first.name {
        let decoded = decode(name);
        if !decoded.trim().is_empty() {
            return decoded;
        }
    }
    let mailbox = String::from_utf8_lossy(first.mailbox.as_deref().unwrap_or_default());
    match &first.host {
        Some(host) => format!("{mailbox}@{}", String::from_utf8_lossy(host)),
        None => mailbox.into_owned(),
    }
}

// ---- SORT (§3) ----

/// One value a message is compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    Number(i64),
    /// Already in i;ascii-casemap form.
    Text(Vec<u8>),
}

impl PartialOrd for SortValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortValue::Number(a), SortValue::Number(b)) => a.cmp(b),
            (SortValue::Text(a), SortValue::Text(b)) => a.cmp(b),
            (SortValue::Number(_), SortValue::Text(_)) => Ordering::Less,
            (SortValue::Text(_), SortValue::Number(_)) => Ordering::Greater,
        }
    }
}

impl SortValue {
    /// A text value compared under i;ascii-casemap.
    pub fn text(s: &[u8]) -> SortValue {
        SortValue::Text(s.to_ascii_uppercase())
    }
}

/// Orders `items` (number, one value per criterion), given in mailbox order, by
/// the criteria; equal messages keep their mailbox order (§3: "sequence number").
/// Returns the numbers in sorted order.
pub fn sort(criteria: &[SortCriterion], mut items: Vec<(u32, Vec<SortValue>)>) -> Vec<u32> {
    // A stable sort keeps mailbox order among equals, whatever REVERSE says.
    items.sort_by(|(_, a), (_, b)| {
        for (i, c) in criteria.iter().enumerate() {
            let ord = a.get(i).cmp(&b.get(i));
            let ord = if c.reverse { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    items.into_iter().map(|(n, _)| n).collect()
}

/// SORT criteria as a command writes them: `REVERSE DATE SUBJECT`.
pub fn encode_sort_criteria(criteria: &[SortCriterion]) -> String {
    criteria
        .iter()
        .map(|c| {
            if c.reverse {
                format!("REVERSE {}", c.key.name())
            } else {
                c.key.name().to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- THREAD (§4) ----

/// What threading knows of one message. Messages are passed in mailbox order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInput {
    /// The number reported: sequence number or UID.
    pub number: u32,
    /// Sent date (§2.2: the Date: header, else INTERNALDATE), Unix seconds.
    pub sent: i64,
    /// The decoded Subject ("" when there is none).
    pub subject: String,
    /// The Message-ID field's value, if any.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
}

/// Threads as a flat tree (deep chains must not cost stack, even when dropped):
/// each node is a message number, or `None` for a dummy standing for a message
/// that is not there (only ever at the top level once threading ends), with the
/// indexes of its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Threads {
    pub nodes: Vec<(Option<u32>, Vec<usize>)>,
    /// The first node of each thread, in order.
    pub roots: Vec<usize>,
}

struct Node {
    /// Index into the inputs; None for a dummy.
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Forest<'a> {
    inputs: &'a [ThreadInput],
    nodes: Vec<Node>,
}

impl Forest<'_> {
    fn add(&mut self, msg: Option<usize>) -> usize {
        self.nodes.push(Node {
            msg,
            parent: None,
            children: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// True when `a` is `b` or lies below `b`.
    fn is_under(&self, mut a: usize, b: usize) -> bool {
        loop {
            if a == b {
                return true;
            }
            match self.nodes[a].parent {
                Some(p) => a = p,
                None => return false,
            }
        }
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The date a node sorts by, with mailbox order as the tie-breaker; a dummy
    /// sorts as its earliest child (§4 steps 4 and 6). Dummies hold messages (or,
    /// while subjects are merged, dummies holding messages), so this recursion
    /// is at most two deep.
    fn key(&self, n: usize) -> (i64, usize) {
        let node = &self.nodes[n];
        match node.msg {
            Some(m) => (self.inputs[m].sent, m),
            None => node
                .children
                .iter()
                .map(|&c| self.key(c))
                .min()
                .unwrap_or((i64::MAX, usize::MAX)),
        }
    }

    fn sort_children(&mut self, n: usize) {
        let mut children = std::mem::take(&mut self.nodes[n].children);
        children.sort_by_key(|&c| self.key(c));
        self.nodes[n].children = children;
    }

    /// The message a node's thread subject comes from: itself, or a dummy's
    /// first child.
    fn subject_message(&self, n: usize) -> Option<usize> {
        let node = &self.nodes[n];
        node.msg
            .or_else(|| node.children.first().and_then(|&c| self.nodes[c].msg))
    }

    fn into_threads(self, roots: Vec<usize>) -> Threads {
        let inputs = self.inputs;
        Threads {
            nodes: self
                .nodes
                .into_iter()
                .map(|n| (n.msg.map(|m| inputs[m].number), n.children))
                .collect(),
            roots,
        }
    }
}

/// THREAD=REFERENCES (RFC 5256 §4).
pub fn thread_references(inputs: &[ThreadInput]) -> Threads {
    let mut f = Forest {
        inputs,
        nodes: Vec::with_capacity(inputs.len() * 2),
    };
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut lookup = |f: &mut Forest<'_>, id: &str| -> usize {
        if let Some(&n) = by_id.get(id) {
            return n;
        }
        let n = f.add(None);
        by_id.insert(id.to_string(), n);
        n
    };
    // (1) Link messages by their references.
    for (i, m) in inputs.iter().enumerate() {
        let own_id = m
            .message_id
            .as_deref()
            .and_then(|v| message_ids(v).into_iter().next());
        // A missing ID, or one an earlier message already has, gets a fresh node.
        let node = match own_id {
            Some(id) => {
                let n = lookup(&mut f, &id);
                if f.nodes[n].msg.is_some() {
                    f.add(Some(i))
                } else {
                    f.nodes[n].msg = Some(i);
                    n
                }
            }
            None => f.add(Some(i)),
        };
        let mut refs = m.references.as_deref().map(message_ids).unwrap_or_default();
        if refs.is_empty() {
            refs = m
                .in_reply_to
                .as_deref()
                .map(message_ids)
                .unwrap_or_default()
                .into_iter()
                .take(1)
                .collect();
        }
        let ref_nodes: Vec<usize> = refs.iter().map(|id| lookup(&mut f, id)).collect();
        // (1A) Each reference is the parent of the next, unless the child already
        // has a parent or the link would make a loop.
        for pair in ref_nodes.windows(2) {
            let (parent, child) = (pair[0], pair[1]);
            if f.nodes[child].parent.is_none() && !f.is_under(parent, child) {
                f.link(parent, child);
            }
        }
        // (1B) The last reference is the parent of this message; this link wins
        // over 1A's, and without references the message has no parent.
        f.unlink(node);
        if let Some(&parent) = ref_nodes.last()
            && !f.is_under(parent, node)
        {
            f.link(parent, node);
        }
    }
    // (2) The roots.
    let roots: Vec<usize> = (0..f.nodes.len())
        .filter(|&n| f.nodes[n].parent.is_none())
        .collect();
    // (3) Prune dummies: bottom-up, a childless dummy goes, a dummy with children
    // gives them to its parent, except at the top level where only a single child
    // is promoted.
    let mut order: Vec<usize> = Vec::with_capacity(f.nodes.len());
    let mut stack: Vec<usize> = roots.clone();
    while let Some(n) = stack.pop() {
        order.push(n);
        stack.extend(f.nodes[n].children.iter().copied());
    }
    for &n in order.iter().rev() {
        let children = std::mem::take(&mut f.nodes[n].children);
        let mut kept = Vec::with_capacity(children.len());
        for c in children {
            if f.nodes[c].msg.is_none() {
                let grandchildren = std::mem::take(&mut f.nodes[c].children);
                for &g in &grandchildren {
                    f.nodes[g].parent = Some(n);
                }
                kept.extend(grandchildren);
            } else {
                kept.push(c);
            }
        }
        f.nodes[n].children = kept;
    }
    let mut top: Vec<usize> = Vec::new();
    for r in roots {
        if f.nodes[r].msg.is_some() {
            top.push(r);
            continue;
        }
        match f.nodes[r].children.len() {
            0 => {}
            1 => {
                let c = f.nodes[r].children[0];
                f.nodes[c].parent = None;
                top.push(c);
            }
            _ => top.push(r),
        }
    }
    // (4) Sort the top level by sent date (dummies by their earliest child).
    for &t in &top {
        if f.nodes[t].msg.is_none() {
            f.sort_children(t);
        }
    }
    top.sort_by_key(|&t| f.key(t));
    // (5) Group the top level by base subject.
    let subject_of = |f: &Forest<'_>, n: usize| -> Option<(String, bool)> {
        let m = f.subject_message(n)?;
        let (base, reply) = base_subject(&f.inputs[m].subject);
        (!base.is_empty()).then(|| (casemap(&base), reply))
    };
    let mut table: HashMap<String, usize> = HashMap::new();
    let mut reply_of: HashMap<usize, bool> = HashMap::new();
    for &t in &top {
        let Some((subject, reply)) = subject_of(&f, t) else {
            continue;
        };
        reply_of.insert(t, reply);
        match table.get(&subject) {
            None => {
                table.insert(subject, t);
            }
            Some(&old) => {
                let old_dummy = f.nodes[old].msg.is_none();
                let cur_dummy = f.nodes[t].msg.is_none();
                let old_reply = reply_of.get(&old).copied().unwrap_or(false);
                if !old_dummy && (cur_dummy || (old_reply && !reply)) {
                    table.insert(subject, t);
                }
            }
        }
    }
    let mut removed: Vec<bool> = vec![false; f.nodes.len()];
    let mut added: Vec<usize> = Vec::new();
    for &t in &top {
        let Some((subject, reply)) = subject_of(&f, t) else {
            continue;
        };
        let Some(&old) = table.get(&subject) else {
            continue;
        };
        if old == t {
            continue;
        }
        let old_dummy = f.nodes[old].msg.is_none();
        let cur_dummy = f.nodes[t].msg.is_none();
        let old_reply = reply_of.get(&old).copied().unwrap_or(false);
        if old_dummy && cur_dummy {
            let children = std::mem::take(&mut f.nodes[t].children);
            for c in children {
                f.nodes[c].parent = None;
                f.link(old, c);
            }
        } else if old_dummy || (reply && !old_reply) {
            f.link(old, t);
        } else {
            let d = f.add(None);
            removed.push(false);
            f.link(d, old);
            f.link(d, t);
            removed[old] = true;
            added.push(d);
            table.insert(subject, d);
        }
        removed[t] = true;
    }
    let mut top: Vec<usize> = top
        .into_iter()
        .chain(added)
        .filter(|&t| !removed[t] && f.nodes[t].parent.is_none())
        .collect();
    // (6) Sort every set of siblings by sent date.
    for n in 0..f.nodes.len() {
        if f.nodes[n].children.len() > 1 {
            f.sort_children(n);
        }
    }
    top.sort_by_key(|&t| f.key(t));
    f.into_threads(top)
}

/// THREAD=ORDEREDSUBJECT (RFC 5256 §4): messages grouped by base subject, each
/// group ordered by sent date under its first message, groups ordered by the
/// sent date of their first message.
pub fn thread_ordered_subject(inputs: &[ThreadInput]) -> Threads {
    let mut keyed: Vec<(String, i64, usize)> = inputs
        .iter()
        .enumerate()
        .map(|(i, m)| (casemap(&base_subject(&m.subject).0), m.sent, i))
        .collect();
    keyed.sort();
    let mut out = Threads::default();
    let mut firsts: Vec<((i64, usize), usize)> = Vec::new();
    let mut i = 0;
    while i < keyed.len() {
        let mut j = i + 1;
        while j < keyed.len() && keyed[j].0 == keyed[i].0 {
            j += 1;
        }
        let (_, sent, first) = keyed[i];
        let root = out.nodes.len();
        out.nodes.push((Some(inputs[first].number), Vec::new()));
        for &(_, _, m) in &keyed[i + 1..j] {
            let n = out.nodes.len();
            out.nodes.push((Some(inputs[m].number), Vec::new()));
            out.nodes[root].1.push(n);
        }
        firsts.push(((sent, first), root));
        i = j;
    }
    firsts.sort();
    out.roots = firsts.into_iter().map(|(_, r)| r).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::encode::sequence_set as ordered_sequence_set;
    use crate::proto::encode::threads as encode_threads;

    fn base(s: &str) -> String {
        base_subject(s).0
    }

    #[test]
    fn base_subject_strips_leaders_trailers_and_blobs() {
        assert_eq!(base("Re: hello"), "hello");
        assert_eq!(base("RE: Re: re: hello"), "hello");
        assert_eq!(base("Fwd: hello"), "hello");
        assert_eq!(base("FW: hello"), "hello");
        assert_eq!(base("Re[2]: hello"), "hello");
        assert_eq!(base("Re [2]: hello"), "hello");
        assert_eq!(base("[list] Re: hello"), "hello");
        assert_eq!(base("[list] hello"), "hello");
        assert_eq!(base("Re: [list] Re: hello"), "hello");
        assert_eq!(base("hello (fwd)"), "hello");
        assert_eq!(base("hello (FWD) (fwd)  "), "hello");
        assert_eq!(base("[Fwd: hello]"), "hello");
        assert_eq!(base("[fwd: Re: hello (fwd)]"), "hello");
        assert_eq!(base("  hello \t  world  "), "hello world");
        assert_eq!(base("hello\r\n world"), "hello world");
        // A blob that is all there is stays (subj-base may be a blob).
        assert_eq!(base("[only]"), "[only]");
        assert_eq!(base("Re: [only]"), "[only]");
        assert_eq!(base("[a] [b]"), "[b]");
        // Not leaders: no colon, or text before the marker.
        assert_eq!(base("Regarding: x"), "Regarding: x");
        assert_eq!(base("Re hello"), "Re hello");
        assert_eq!(base("Hello Re: x"), "Hello Re: x");
        assert_eq!(base("Re:"), "");
        assert_eq!(base(""), "");
        assert_eq!(base("(fwd)"), "");
        assert_eq!(base("[unclosed Re: x"), "[unclosed Re: x");
        assert_eq!(base("Re: Grüße"), "Grüße");
        // "[fwd:" and "]" with nothing between: step 6 removes both.
        assert_eq!(base("[Fwd:]"), "");
    }

    #[test]
    fn base_subject_tells_replies_and_forwards() {
        assert!(!base_subject("hello").1);
        assert!(!base_subject("  [list] hello").1);
        assert!(base_subject("Re: hello").1);
        assert!(base_subject("[list] Fwd: hello").1);
        assert!(base_subject("hello (fwd)").1);
        assert!(base_subject("[fwd: hello]").1);
    }

    #[test]
    fn message_ids_are_found_and_validated() {
        assert_eq!(message_ids("<a@b>"), vec!["a@b"]);
        assert_eq!(
            message_ids(" <a@b>\r\n <c@d>  (comment) <e@f>"),
            vec!["a@b", "c@d", "e@f"]
        );
        assert_eq!(
            message_ids("<nohost> <@x> <x@> <> junk"),
            Vec::<String>::new()
        );
        assert_eq!(message_ids("<a <b@c>"), vec!["b@c"]);
        assert_eq!(message_ids("<a @ b>"), vec!["a@b"]);
        assert_eq!(message_ids("<a@b"), Vec::<String>::new());
    }

    #[test]
    fn envelopes_are_read_back() {
        let env = r#"("Mon, 1 Jan 2024 00:00:00 +0000" "hi" (("Al \"x\"" NIL "al" "example.org")) (("Al" NIL "al" "example.org")) NIL ((NIL NIL "bob" "example.net")(NIL NIL "carol" "example.net")) (({4}
Zoë NIL "zoe" "x.org")) NIL NIL "<id@x>")"#
            .replace('\n', "\r\n");
        let a = envelope_addresses(&env).unwrap();
        assert_eq!(a.from[0].name.as_deref(), Some(&b"Al \"x\""[..]));
        assert_eq!(first_mailbox(&a.from), b"al");
        assert_eq!(first_mailbox(&a.to), b"bob");
        assert_eq!(a.to.len(), 2);
        assert_eq!(a.cc[0].name.as_deref(), Some("Zoë".as_bytes()));
        assert_eq!(first_mailbox(&a.cc), b"zoe");
        assert!(envelope_addresses("(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)").is_some());
        for bad in [
            "",
            "(",
            "(NIL",
            "({99}\r\nx)",
            "((((((x",
            "NIL",
            "(NIL NIL)",
        ] {
            assert!(envelope_addresses(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn display_names_fall_back_to_the_address() {
        let a = |name: Option<&str>, mailbox: &str| EnvelopeAddress {
            name: name.map(|n| n.as_bytes().to_vec()),
            mailbox: Some(mailbox.as_bytes().to_vec()),
            host: Some(b"example.org".to_vec()),
        };
        let dec = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(display_name(&[a(Some("Zed"), "a")], dec), "Zed");
        assert_eq!(display_name(&[a(None, "a")], dec), "a@example.org");
        assert_eq!(display_name(&[a(Some(" "), "a")], dec), "a@example.org");
        assert_eq!(display_name(&[], dec), "");
    }

    #[test]
    fn sort_uses_criteria_then_mailbox_order() {
        let c = |reverse, key| SortCriterion { reverse, key };
        let items = vec![
            (1, vec![SortValue::text(b"b"), SortValue::Number(5)]),
            (2, vec![SortValue::text(b"A"), SortValue::Number(5)]),
            (3, vec![SortValue::text(b"a"), SortValue::Number(7)]),
            (4, vec![SortValue::text(b"B"), SortValue::Number(5)]),
        ];
        assert_eq!(
            sort(&[c(false, SortKey::Subject)], items.clone()),
            vec![2, 3, 1, 4]
        );
        assert_eq!(
            sort(&[c(true, SortKey::Subject)], items.clone()),
            vec![1, 4, 2, 3]
        );
        let swapped = items
            .into_iter()
            .map(|(n, v)| (n, v.into_iter().rev().collect()))
            .collect();
        assert_eq!(
            sort(
                &[c(true, SortKey::Size), c(false, SortKey::Subject)],
                swapped
            ),
            vec![3, 2, 1, 4]
        );
    }

    fn msg(number: u32, sent: i64, subject: &str, id: &str, refs: &str) -> ThreadInput {
        ThreadInput {
            number,
            sent,
            subject: subject.into(),
            message_id: (!id.is_empty()).then(|| format!("<{id}>")),
            in_reply_to: None,
            references: (!refs.is_empty()).then(|| {
                refs.split(' ')
                    .map(|r| format!("<{r}>"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        }
    }

    fn refs(msgs: &[ThreadInput]) -> String {
        encode_threads(&thread_references(msgs))
    }

    #[test]
    fn encoding_follows_the_grammar() {
        // The example of RFC 5256 §4: (2)(3 6 (4 23)(44 7 96)).
        let node = |n: Option<u32>, c: &[usize]| (n, c.to_vec());
        let t = Threads {
            nodes: vec![
                node(Some(2), &[]),
                node(Some(3), &[2]),
                node(Some(6), &[3, 5]),
                node(Some(4), &[4]),
                node(Some(23), &[]),
                node(Some(44), &[6]),
                node(Some(7), &[7]),
                node(Some(96), &[]),
            ],
            roots: vec![0, 1],
        };
        assert_eq!(encode_threads(&t), "(2)(3 6 (4 23)(44 7 96))");
        let dummy = Threads {
            nodes: vec![node(None, &[1, 2]), node(Some(3), &[]), node(Some(5), &[])],
            roots: vec![0],
        };
        assert_eq!(encode_threads(&dummy), "((3)(5))");
        assert_eq!(encode_threads(&Threads::default()), "");
    }

    #[test]
    fn references_builds_the_rfc_example_shape() {
        // 3 -> 6 -> {4 -> 23, 44 -> 7 -> 96}; 2 alone.
        let m = vec![
            msg(2, 10, "other", "m2@x", ""),
            msg(3, 20, "topic", "m3@x", ""),
            msg(4, 40, "Re: topic", "m4@x", "m3@x m6@x"),
            msg(6, 30, "Re: topic", "m6@x", "m3@x"),
            msg(7, 60, "Re: topic", "m7@x", "m3@x m6@x m44@x"),
            msg(23, 45, "Re: topic", "m23@x", "m3@x m6@x m4@x"),
            msg(44, 50, "Re: topic", "m44@x", "m3@x m6@x"),
            msg(96, 70, "Re: topic", "m96@x", "m3@x m6@x m44@x m7@x"),
        ];
        assert_eq!(refs(&m), "(2)(3 6 (4 23)(44 7 96))");
    }

    #[test]
    fn references_dummies_and_subjects() {
        // Two replies to a message that is not there: a dummy holds them.
        let m = vec![
            msg(1, 10, "Re: gone", "a@x", "root@x"),
            msg(2, 20, "Re: gone", "b@x", "root@x"),
        ];
        assert_eq!(refs(&m), "((1)(2))");
        // One reply to a missing message is promoted to the top.
        let m = vec![msg(1, 10, "Re: gone", "a@x", "root@x")];
        assert_eq!(refs(&m), "(1)");
        // A dummy in the middle of a chain disappears.
        let m = vec![
            msg(1, 10, "x", "a@x", ""),
            msg(2, 20, "Re: x", "c@x", "a@x b@x"),
        ];
        assert_eq!(refs(&m), "(1 2)");
        // Same base subject, no references: the reply goes under the original.
        let m = vec![
            msg(1, 10, "Re: lunch", "a@x", ""),
            msg(2, 20, "lunch", "b@x", ""),
        ];
        assert_eq!(refs(&m), "(2 1)");
        // Two originals with one subject get a dummy parent.
        let m = vec![
            msg(1, 10, "lunch", "a@x", ""),
            msg(2, 20, "Lunch", "b@x", ""),
            msg(3, 5, "other", "c@x", ""),
        ];
        assert_eq!(refs(&m), "(3)((1)(2))");
        // Empty subjects are never grouped.
        let m = vec![msg(1, 10, "", "a@x", ""), msg(2, 20, "Re:", "b@x", "")];
        assert_eq!(refs(&m), "(1)(2)");
    }

    #[test]
    fn references_survives_loops_duplicates_and_missing_ids() {
        // A References loop: a says b is its parent, b says a is.
        let m = vec![msg(1, 10, "x", "a@x", "b@x"), msg(2, 20, "y", "b@x", "a@x")];
        let out = refs(&m);
        assert!(out == "(1 2)" || out == "(2 1)", "{out}");
        // A message referencing itself.
        let m = vec![msg(1, 10, "x", "a@x", "a@x")];
        assert_eq!(refs(&m), "(1)");
        // A chain in References that loops back.
        let m = vec![
            msg(1, 10, "x", "a@x", "b@x c@x b@x"),
            msg(2, 20, "y", "c@x", "a@x"),
        ];
        let out = refs(&m);
        assert_eq!(out.matches(char::is_numeric).count(), 2, "{out}");
        // Duplicate Message-IDs: the second is a message of its own.
        let m = vec![
            msg(1, 10, "x", "a@x", ""),
            msg(2, 20, "y", "a@x", ""),
            msg(3, 30, "Re: x", "c@x", "a@x"),
        ];
        assert_eq!(refs(&m), "(1 3)(2)");
        // Missing IDs.
        let m = vec![
            msg(1, 10, "x", "", ""),
            msg(2, 20, "y", "", ""),
            msg(3, 5, "z", "", "nobody@x"),
        ];
        assert_eq!(refs(&m), "(3)(1)(2)");
        // In-Reply-To counts when References is absent.
        let mut reply = msg(2, 20, "whatever", "b@x", "");
        reply.in_reply_to = Some("<a@x> <zzz@x>".into());
        let m = vec![msg(1, 10, "x", "a@x", ""), reply];
        assert_eq!(refs(&m), "(1 2)");
    }

    #[test]
    fn references_handles_long_chains_without_recursion() {
        let n = 20_000u32;
        let m: Vec<ThreadInput> = (1..=n)
            .map(|i| {
                let parent = if i > 1 {
                    format!("m{}@x", i - 1)
                } else {
                    String::new()
                };
                msg(i, i64::from(i), "chain", &format!("m{i}@x"), &parent)
            })
            .collect();
        let out = refs(&m);
        assert!(out.starts_with("(1 2 3 "));
        assert!(out.ends_with(&format!(" {n})")));
    }

    #[test]
    fn sort_and_thread_commands_parse() {
        use crate::proto::parse_command;
        use crate::proto::types::{CommandBody, SearchKey};
        let body = |s: &str| parse_command(s.as_bytes()).map(|c| c.body);
        let c = |reverse, key| SortCriterion { reverse, key };
        assert_eq!(
            body("a UID SORT (REVERSE date subject) UTF-8 SEEN"),
            Ok(CommandBody::Sort {
                uid: true,
                returns: None,
                criteria: vec![c(true, SortKey::Date), c(false, SortKey::Subject)],
                key: SearchKey::Flag {
                    bit: mailroom_store::Flags::SEEN,
                    set: true
                },
            })
        );
        assert_eq!(
            body("a THREAD references US-ASCII ALL"),
            Ok(CommandBody::Thread {
                uid: false,
                algorithm: ThreadAlgorithm::References,
                key: SearchKey::All,
            })
        );
        let Ok(CommandBody::Thread {
            key: SearchKey::And(keys),
            ..
        }) = body("a THREAD ORDEREDSUBJECT UTF-8 SEEN 1:3")
        else {
            panic!()
        };
        assert_eq!(keys.len(), 2);
        for bad in [
            "a SORT",
            "a SORT ()",
            "a SORT (DATE)",
            "a SORT (DATE) UTF-8",
            "a SORT (DATE)UTF-8 ALL",
            "a SORT (REVERSE) UTF-8 ALL",
            "a SORT (ARRIVAL REVERSE) UTF-8 ALL",
            "a SORT RETURN (FOO) (DATE) UTF-8 ALL",
            "a THREAD",
            "a THREAD REFS UTF-8 ALL",
            "a THREAD REFERENCES UTF-8 ALL junk(",
        ] {
            let e = parse_command(bad.as_bytes()).unwrap_err();
            assert_eq!(e.tag.as_deref(), Some("a"), "{bad}");
        }
        let e = parse_command(b"a SORT (DATE) KOI8-R ALL").unwrap_err();
        assert_eq!(
            e.kind,
            crate::proto::parse::ParseErrorKind::BadCharset("KOI8-R".into())
        );
    }

    #[test]
    fn ordered_sets_keep_the_order() {
        assert_eq!(
            ordered_sequence_set(&[1, 12, 2, 3, 4, 5, 7, 6]),
            "1,12,2:5,7,6"
        );
        assert_eq!(ordered_sequence_set(&[3, 2, 1]), "3,2,1");
        assert_eq!(ordered_sequence_set(&[u32::MAX, 1]), "4294967295,1");
        assert_eq!(ordered_sequence_set(&[]), "");
    }

    #[test]
    fn ordered_subject_groups_by_subject() {
        let m = vec![
            msg(1, 30, "b", "", ""),
            msg(2, 10, "Re: a", "", ""),
            msg(3, 20, "a", "", ""),
            msg(4, 40, "re: B", "", ""),
            msg(5, 5, "c", "", ""),
            msg(6, 50, "A", "", ""),
        ];
        assert_eq!(
            encode_threads(&thread_ordered_subject(&m)),
            "(5)(2 (3)(6))(1 4)"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::proto::encode::sequence_set as ordered_sequence_set;
    use crate::proto::encode::threads as encode_threads;
    use crate::proto::parse_command;
    use crate::proto::types::{CommandBody, SearchKey, SearchReturn, SeqNumber, SequenceSet};

    fn criterion() -> impl Strategy<Value = SortCriterion> {
        (
            any::<bool>(),
            prop_oneof![
                Just(SortKey::Arrival),
                Just(SortKey::Cc),
                Just(SortKey::Date),
                Just(SortKey::From),
                Just(SortKey::Size),
                Just(SortKey::Subject),
                Just(SortKey::To),
                Just(SortKey::DisplayFrom),
                Just(SortKey::DisplayTo),
            ],
        )
            .prop_map(|(reverse, key)| SortCriterion { reverse, key })
    }

    proptest! {
        /// Any subject gives a base subject without panicking, and extraction
        /// settles: the base subject of a base subject is itself.
        #[test]
        fn base_subject_is_total_and_settles(s in "[ a-zA-Z:\\[\\]()\tüé]{0,40}") {
            let (b, _) = base_subject(&s);
            prop_assert_eq!(base_subject(&b).0, b.clone());
        }

        /// SORT commands written from any criteria, RETURN options and UID flag
        /// parse back to the same values.
        #[test]
        fn sort_commands_round_trip(
            criteria in proptest::collection::vec(criterion(), 1..6),
            uid in any::<bool>(),
            returns in proptest::option::of(proptest::collection::vec(prop_oneof![
                Just(SearchReturn::Min), Just(SearchReturn::Max), Just(SearchReturn::All),
                Just(SearchReturn::Count), Just(SearchReturn::Save)], 0..4)),
            charset in prop_oneof![Just("UTF-8"), Just("us-ascii"), Just("\"utf-8\"")],
        ) {
            let ret = returns.as_ref().map(|r| format!("RETURN ({}) ", r.iter().map(|o| format!("{o:?}").to_uppercase()).collect::<Vec<_>>().join(" "))).unwrap_or_default();
            let cmd = format!("t {}SORT {ret}({}) {charset} ALL", if uid { "UID " } else { "" }, encode_sort_criteria(&criteria));
            let parsed = parse_command(cmd.as_bytes()).map(|c| c.body);
            prop_assert_eq!(parsed, Ok(CommandBody::Sort { uid, returns, criteria, key: SearchKey::All }), "{}", cmd);
        }

        /// ESORT's ALL reads back, range by range, in the order it was written.
        #[test]
        fn ordered_sets_round_trip(numbers in proptest::collection::hash_set(1u32..200, 1..40)) {
            let numbers: Vec<u32> = numbers.into_iter().collect();
            let text = ordered_sequence_set(&numbers);
            let cmd = format!("a UID FETCH {text} UID");
            let Ok(c) = parse_command(cmd.as_bytes()) else { return Err(TestCaseError::fail(cmd)) };
            let CommandBody::Fetch { set: SequenceSet::Ranges(ranges), .. } = c.body else {
                return Err(TestCaseError::fail("not a FETCH with ranges"));
            };
            let mut back: Vec<u32> = Vec::new();
            for (a, b) in ranges {
                let (SeqNumber::Value(a), SeqNumber::Value(b)) = (a, b) else {
                    return Err(TestCaseError::fail("* in an ordered set"));
                };
                back.extend(a..=b);
            }
            prop_assert_eq!(back, numbers);
        }

        /// Arbitrary text never panics the ENVELOPE reader.
        #[test]
        fn envelope_reader_is_total(s in "[ -~\r\n{}()\"\\\\0-9NIL]{0,120}") {
            let _ = envelope_addresses(&s);
        }

        /// Random reference graphs (loops, duplicates, missing IDs) thread every
        /// message exactly once.
        #[test]
        fn every_message_is_threaded_once(
            msgs in proptest::collection::vec(
                (0u8..8, proptest::collection::vec(0u8..8, 0..4), 0i64..5, 0u8..3), 0..25)
        ) {
            let inputs: Vec<ThreadInput> = msgs.iter().enumerate().map(|(i, (id, refs, sent, subj))| ThreadInput {
                number: i as u32 + 1,
                sent: *sent,
                subject: ["a", "Re: a", ""][*subj as usize].to_string(),
                message_id: (*id != 0).then(|| format!("<m{id}@x>")),
                in_reply_to: None,
                references: Some(refs.iter().map(|r| format!("<m{r}@x>")).collect::<Vec<_>>().join(" ")),
            }).collect();
            for threads in [thread_references(&inputs), thread_ordered_subject(&inputs)] {
                let text = encode_threads(&threads);
                let mut seen: Vec<u32> = text
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|t| !t.is_empty())
                    .map(|t| t.parse().unwrap())
                    .collect();
                seen.sort_unstable();
                let want: Vec<u32> = (1..=inputs.len() as u32).collect();
                prop_assert_eq!(seen, want, "{}", text);
                prop_assert!(!text.contains("()"), "{}", text);
            }
        }
    }
}
