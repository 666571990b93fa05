//! THREAD (RFC 5256 §4) apart from I/O: ORDEREDSUBJECT and REFERENCES over
//! the messages' subjects, dates and message IDs. The thread-list encoding (§5)
//! is `proto::encode::threads`.
//!
//! Nothing here recurses along a thread: a chain of a hundred thousand replies
//! costs heap, not stack.

use std::collections::HashMap;

use crate::sorting::{base_subject, casemap};

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
    use proptest::prelude::*;

    use super::*;
    use crate::proto::encode::threads as encode_threads;

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

    proptest! {
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
