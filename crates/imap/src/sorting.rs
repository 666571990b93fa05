//! SORT (RFC 5256 §3) and SORT=DISPLAY (RFC 5957) apart from I/O: the sort
//! keys, base subject extraction (§2.1, which THREAD uses too), reading the
//! addresses of a stored ENVELOPE, and the sort itself.
//!
//! Comparisons use the default collation, i;ascii-casemap (RFC 4790 §9.2): octets
//! with ASCII letters upper-cased. Ties are broken by the order of the messages in
//! the mailbox (sequence number), which is the order callers pass messages in.

use std::cmp::Ordering;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::encode::sequence_set as ordered_sequence_set;
    use crate::threading::ThreadAlgorithm;

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
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::proto::encode::sequence_set as ordered_sequence_set;
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
    }
}
