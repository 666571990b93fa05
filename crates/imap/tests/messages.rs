//! FETCH, STORE, COPY, MOVE, EXPUNGE, SEARCH, two sessions and IDLE over TCP.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

fn ok(r: &[String]) -> bool {
    r.last().is_some_and(|l| l.split(' ').nth(1) == Some("OK"))
}

fn status(r: &[String]) -> &str {
    r.last().and_then(|l| l.split(' ').nth(1)).unwrap_or("")
}

fn has(r: &[String], needle: &str) -> bool {
    r.iter().any(|l| l.contains(needle))
}

fn expunges(r: &[String]) -> bool {
    r.iter()
        .any(|l| l.starts_with("* ") && l.ends_with(" EXPUNGE"))
}

async fn with_messages() -> (TestServer, Client) {
    let s = start().await;
    for f in [
        "msg_01.txt",
        "msg_02.txt",
        "msg_07.txt",
        "msg_10.txt",
        "msg_16.txt",
    ] {
        s.deliver(&data(f)).await;
    }
    let mut c = s.login().await;
    c.select("INBOX").await;
    (s, c)
}

#[tokio::test]
async fn fetch_attributes() {
    let (_s, mut c) = with_messages().await;
    let m1 = data("msg_01.txt");
    let r = c.cmd("f1 FETCH 1 (UID RFC822.SIZE FLAGS ENVELOPE)").await;
    assert!(r[0].starts_with(&format!("* 1 FETCH (UID 1 RFC822.SIZE {} FLAGS (\\Recent) ENVELOPE (\"Fri, 4 May 2001 14:05:44 -0400\" \"This is a test message\"", m1.len())), "{r:?}");
    let r = c.cmd("f2 FETCH 3 (BODYSTRUCTURE BODY)").await;
    assert!(r[0].contains("BODYSTRUCTURE ((\"text\" \"plain\""), "{r:?}");
    assert!(
        r[0].contains("\"mixed\" (\"boundary\" \"BOUNDARY\")"),
        "{r:?}"
    );
    let r = c.cmd("f3 FETCH 1 BODY.PEEK[]").await;
    assert!(
        r[0].starts_with(&format!("* 1 FETCH (BODY[] {{{}}}\r\n", m1.len())),
        "{r:?}"
    );
    assert!(r[0].ends_with(")") && r[0].contains("Subject: This is a test message"));
    let r = c
        .cmd("f4 FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject FROM)])")
        .await;
    assert!(
        r[0].starts_with("* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {"),
        "{r:?}"
    );
    assert!(
        r[0].contains("From: bbb@ddd.com (John X. Doe)\r\nSubject: This is a test message\r\n\r\n")
            || r[0]
                .contains("From: bbb@ddd.com (John X. Doe)\nSubject: This is a test message\n\r\n"),
        "{r:?}"
    );
    let r = c.cmd("f5 FETCH 1 BODY.PEEK[TEXT]<0.10>").await;
    assert!(
        r[0].starts_with("* 1 FETCH (BODY[TEXT]<0> {10}\r\n"),
        "{r:?}"
    );
    let r = c
        .cmd("f6 FETCH 3 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[9])")
        .await;
    assert!(
        r[0].contains("BODY[1] {") && r[0].contains("This is the dingus fish."),
        "{r:?}"
    );
    assert!(
        r[0].contains("BODY[2.MIME] {") && r[0].contains("image/gif"),
        "{r:?}"
    );
    assert!(r[0].contains("BODY[9] {0}\r\n"), "{r:?}");
    let r = c.cmd("f7 FETCH 3 (BINARY.PEEK[2] BINARY.SIZE[2])").await;
    assert!(
        r[0].contains("BINARY[2] ~{") || r[0].contains("BINARY[2] {"),
        "{r:?}"
    );
    assert!(r[0].contains("GIF87a") || r[0].contains("GIF8"), "{r:?}");
    assert!(r[0].contains("BINARY.SIZE[2] "), "{r:?}");
    let r = c.cmd("f8 FETCH 1 (RFC822.HEADER INTERNALDATE)").await;
    assert!(
        r[0].contains("RFC822.HEADER {") && r[0].contains("INTERNALDATE \""),
        "{r:?}"
    );
    let r = c.cmd("f9 FETCH 1:2 FAST").await;
    assert!(
        r[0].starts_with("* 1 FETCH (FLAGS (\\Recent) INTERNALDATE ") && r.len() == 3,
        "{r:?}"
    );
    let r = c.cmd("f10 FETCH 2 FULL").await;
    assert!(
        r[0].contains("ENVELOPE (") && r[0].contains(" BODY ("),
        "{r:?}"
    );
    // Implicit \Seen with the FLAGS update in the same response.
    let r = c.cmd("f11 FETCH 1 BODY[TEXT]").await;
    assert!(
        r[0].starts_with("* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[TEXT] {"),
        "{r:?}"
    );
    let r = c.cmd("f12 FETCH 1 RFC822").await;
    assert!(
        r[0].starts_with("* 1 FETCH (RFC822 {") && !r[0].contains("FLAGS"),
        "already seen: {r:?}"
    );
    let r = c.cmd("f13 UID FETCH 4:* (FLAGS)").await;
    assert!(
        r[0].starts_with("* 4 FETCH (UID 4 FLAGS") && r.len() == 3,
        "{r:?}"
    );
    let r = c.cmd("f14 UID FETCH 100 FLAGS").await;
    assert_eq!(r, vec!["f14 OK FETCH completed".to_string()]);
    for bad in [
        "FETCH 6 FLAGS",
        "FETCH 0 FLAGS",
        "FETCH 1:9 UID",
        "FETCH a FLAGS",
        "FETCH 1 BOGUS",
    ] {
        let r = c.cmd(&format!("b1 {bad}")).await;
        assert_eq!(status(&r), "BAD", "{bad}: {r:?}");
    }
}

#[tokio::test]
async fn store_flags_and_keywords() {
    let (_s, mut c) = with_messages().await;
    let r = c.cmd("s1 STORE 1:2 +FLAGS (\\Flagged $Important)").await;
    assert!(
        has(
            &r,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important)"
        ),
        "new keywords are announced: {r:?}"
    );
    assert!(
        has(&r, "* 1 FETCH (FLAGS (\\Flagged \\Recent $Important))"),
        "{r:?}"
    );
    assert!(
        has(&r, "* 2 FETCH (FLAGS (\\Flagged \\Recent $Important))"),
        "{r:?}"
    );
    let r = c.cmd("s2 STORE 1 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(r, vec!["s2 OK STORE completed".to_string()]);
    let r = c.cmd("s3 UID STORE 2 FLAGS (\\Seen)").await;
    assert_eq!(r[0], "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))");
    let r = c.cmd("s4 FETCH 1:2 FLAGS").await;
    assert_eq!(r[0], "* 1 FETCH (FLAGS (\\Recent $Important))");
    let r = c.cmd("s5 STORE 1 +FLAGS \\Answered \\Draft").await;
    assert!(has(&r, "\\Answered"), "{r:?}");
    let r = c.cmd("s6 STORE 1 +FLAGS (\\Recent)").await;
    assert!(ok(&r), "\\Recent is ignored: {r:?}");
}

#[tokio::test]
async fn copy_move_expunge_close() {
    let (s, mut c) = with_messages().await;
    let r = c.cmd("c1 COPY 1:2 Archive").await;
    assert!(
        r[0].starts_with("c1 OK [COPYUID ") && r[0].contains(" 1:2 1:2] "),
        "{r:?}"
    );
    let r = c.cmd("c2 COPY 1 nosuch").await;
    assert!(r[0].starts_with("c2 NO [TRYCREATE]"), "{r:?}");
    let r = c.cmd("c3 UID COPY 99 Archive").await;
    assert!(ok(&r), "{r:?}");
    let r = c.cmd("m1 MOVE 2:3 Trash").await;
    assert!(
        r[0].starts_with("* OK [COPYUID ") && r[0].contains(" 2:3 1:2] "),
        "{r:?}"
    );
    assert_eq!(
        &r[1..],
        &[
            "* 2 EXPUNGE".to_string(),
            "* 2 EXPUNGE".to_string(),
            "m1 OK MOVE completed".to_string()
        ]
    );
    let r = c.cmd("m2 UID MOVE 5 Trash").await;
    assert!(has(&r, "* 3 EXPUNGE"), "{r:?}");
    let r = c.cmd("m3 MOVE 1 INBOX").await;
    assert!(r.last().unwrap().contains("NO"), "{r:?}");
    // Now INBOX holds UIDs 1 and 4.
    let r = c.cmd("x1 STORE 1:2 +FLAGS.SILENT (\\Deleted)").await;
    assert!(ok(&r));
    let r = c.cmd("x2 UID EXPUNGE 4").await;
    assert_eq!(r[0], "* 2 EXPUNGE");
    let r = c.cmd("x3 EXPUNGE").await;
    assert_eq!(r[0], "* 1 EXPUNGE");
    let r = c.cmd("x4 STATUS INBOX (MESSAGES)").await;
    assert!(has(&r, "(MESSAGES 0)"), "{r:?}");
    // CLOSE expunges silently; UNSELECT does not.
    c.select("Trash").await;
    assert!(ok(&c.cmd("y1 STORE 1 +FLAGS (\\Deleted)").await));
    let r = c.cmd("y2 UNSELECT").await;
    assert_eq!(r, vec!["y2 OK UNSELECT completed".to_string()]);
    let r = c.cmd("y3 STATUS Trash (MESSAGES DELETED)").await;
    assert!(has(&r, "(MESSAGES 3 DELETED 1)"), "{r:?}");
    c.select("Trash").await;
    let r = c.cmd("y4 CLOSE").await;
    assert_eq!(r, vec!["y4 OK CLOSE completed".to_string()]);
    let r = c.cmd("y5 STATUS Trash (MESSAGES)").await;
    assert!(has(&r, "(MESSAGES 2)"), "{r:?}");
    let r = c.cmd("y6 EXPUNGE").await;
    assert_eq!(status(&r), "BAD");
    drop(s);
}

#[tokio::test]
async fn search_keys_and_esearch() {
    let (_s, mut c) = with_messages().await;
    c.cmd("a STORE 2 +FLAGS (\\Flagged $Work)").await;
    c.cmd("b STORE 3 +FLAGS (\\Seen)").await;
    let cases: &[(&str, &str)] = &[
        ("ALL", "* SEARCH 1 2 3 4 5"),
        ("FLAGGED", "* SEARCH 2"),
        ("UNFLAGGED SEEN", "* SEARCH 3"),
        ("KEYWORD $Work", "* SEARCH 2"),
        ("UNKEYWORD $work", "* SEARCH 1 3 4 5"),
        ("NOT SEEN NOT FLAGGED", "* SEARCH 1 4 5"),
        ("OR FLAGGED SEEN", "* SEARCH 2 3"),
        ("(OR 1 2) (OR 2 3)", "* SEARCH 2"),
        ("2:4 UID 3:*", "* SEARCH 3 4"),
        ("SUBJECT dingus", "* SEARCH 3"),
        ("FROM \"john x. doe\"", "* SEARCH 1"),
        ("HEADER Message-ID 15090", "* SEARCH 1"),
        ("HEADER X-Nonexistent \"\"", "* SEARCH"),
        ("BODY \"dingus FISH\"", "* SEARCH 3"),
        ("TEXT dingus", "* SEARCH 3 4"),
        ("TO ppp@zzz.org", "* SEARCH 2"),
        ("SENTBEFORE 1-May-2001", "* SEARCH 2 3 4"),
        ("SENTON 4-May-2001", "* SEARCH 1"),
        ("SINCE 1-Jan-2020", "* SEARCH 1 2 3 4 5"),
        ("BEFORE 1-Jan-2020", "* SEARCH"),
        ("LARGER 5000", "* SEARCH 3 5"),
        ("SMALLER 5000 NOT LARGER 5000", "* SEARCH 1 2 4"),
        ("RECENT", "* SEARCH 1 2 3 4 5"),
        ("NEW", "* SEARCH 1 2 4 5"),
        ("OLD", "* SEARCH"),
        ("CHARSET UTF-8 SUBJECT \"test\"", "* SEARCH 1"),
    ];
    for (i, (key, want)) in cases.iter().enumerate() {
        let r = c.cmd(&format!("k{i} SEARCH {key}")).await;
        assert_eq!(r[0], *want, "SEARCH {key}: {r:?}");
        assert!(ok(&r));
    }
    let r = c.cmd("u1 UID SEARCH FLAGGED").await;
    assert_eq!(r[0], "* SEARCH 2");
    let r = c.cmd("e1 SEARCH RETURN (MIN MAX COUNT) NOT FLAGGED").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"e1\") MIN 1 MAX 5 COUNT 4");
    let r = c.cmd("e2 UID SEARCH RETURN () ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"e2\") UID ALL 1:5");
    let r = c.cmd("e3 SEARCH RETURN (COUNT ALL) FLAGGED SEEN").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"e3\") COUNT 0");
    // Dovecot's order of the items: ALL before COUNT.
    let r = c.cmd("e4 SEARCH RETURN (COUNT ALL MAX) NOT FLAGGED").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"e4\") MAX 5 ALL 1,3:5 COUNT 4");
    // SEARCHRES
    let r = c.cmd("r1 SEARCH RETURN (SAVE) OR FLAGGED SEEN").await;
    assert_eq!(r, vec!["r1 OK SEARCH completed, result saved".to_string()]);
    let r = c.cmd("r2 FETCH $ (UID)").await;
    assert_eq!(
        &r[..2],
        &[
            "* 2 FETCH (UID 2)".to_string(),
            "* 3 FETCH (UID 3)".to_string()
        ]
    );
    let r = c.cmd("r3 UID SEARCH $ SEEN").await;
    assert_eq!(r[0], "* SEARCH 3");
    let r = c.cmd("r4 SEARCH RETURN (SAVE MIN) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"r4\") MIN 1");
    let r = c.cmd("r5 UID FETCH $ UID").await;
    assert_eq!(r.len(), 2, "only the minimum was saved: {r:?}");
    let r = c.cmd("r6 SEARCH BOGUS").await;
    assert_eq!(status(&r), "BAD");
}

#[tokio::test]
async fn two_sessions_expunge_while_fetching() {
    let (s, mut a) = with_messages().await;
    let mut b = s.login().await;
    b.select("INBOX").await;
    let r = a.cmd("a1 STORE 2 +FLAGS (\\Deleted)").await;
    assert!(ok(&r));
    let r = a.cmd("a2 EXPUNGE").await;
    assert_eq!(r[0], "* 2 EXPUNGE");
    // B still sees five messages: no EXPUNGE during FETCH, sequence numbers stable.
    let r = b.cmd("b1 FETCH 3 (UID)").await;
    assert_eq!(r[0], "* 3 FETCH (UID 3)", "{r:?}");
    assert!(!expunges(&r));
    let r = b.cmd("b2 FETCH 2 (UID FLAGS)").await;
    assert!(!expunges(&r), "{r:?}");
    assert!(
        r.last().unwrap().starts_with("b2 NO [EXPUNGEISSUED]")
            || r[0].starts_with("* 2 FETCH (UID 2"),
        "{r:?}"
    );
    let r = b.cmd("b3 STORE 4 +FLAGS (\\Seen)").await;
    assert!(
        has(&r, "* 4 FETCH (FLAGS (\\Seen))") && !expunges(&r),
        "{r:?}"
    );
    let r = b.cmd("b4 SEARCH UID 4").await;
    assert_eq!(
        r[0], "* SEARCH 4",
        "sequence numbers unchanged during SEARCH: {r:?}"
    );
    // UID SEARCH may report it.
    let r = b.cmd("b5 UID SEARCH UID 4").await;
    assert!(has(&r, "* 2 EXPUNGE") && has(&r, "* SEARCH 4"), "{r:?}");
    let r = b.cmd("b6 FETCH 3 UID").await;
    assert_eq!(r[0], "* 3 FETCH (UID 4)", "{r:?}");
    // Flag changes by A reach B at its next command.
    a.cmd("a3 STORE 1 +FLAGS (\\Answered)").await;
    let r = b.cmd("b7 NOOP").await;
    assert_eq!(r[0], "* 1 FETCH (UID 1 FLAGS (\\Answered))", "{r:?}");
    // A new message reaches both.
    s.deliver(&data("msg_01.txt")).await;
    let r = b.cmd("b8 NOOP").await;
    assert!(has(&r, "* 5 EXISTS") && has(&r, "* 1 RECENT"), "{r:?}");
    let r = a.cmd("a4 NOOP").await;
    assert!(
        has(&r, "* 5 EXISTS") && has(&r, "* 4 RECENT"),
        "the first session to see it gets \\Recent: {r:?}"
    );
    // An EXPUNGE by A interleaved with a FETCH pipeline of B.
    a.cmd("a5 STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    b.send(b"p1 FETCH 1 UID\r\n").await;
    a.cmd("a6 EXPUNGE").await;
    b.send(b"p2 FETCH 1 UID\r\n").await;
    let r1 = b.until_tagged("p1").await;
    let r2 = b.until_tagged("p2").await;
    assert!(!expunges(&r1) && !expunges(&r2), "{r1:?} {r2:?}");
    let r = b.cmd("p3 NOOP").await;
    assert!(has(&r, "* 1 EXPUNGE"), "{r:?}");
}

#[tokio::test]
async fn idle_reports_delivery_and_keepalive() {
    let s = start().await;
    let mut c = s.login().await;
    c.select("INBOX").await;
    c.send(b"i1 IDLE\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with("+ "));
    s.deliver(&data("msg_01.txt")).await;
    // deliver() returns after the commit: the clock of the 1 s promise starts here.
    let started = Instant::now();
    let exists = c.read_response().await.unwrap();
    assert_eq!(exists.trim_end(), "* 1 EXISTS");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "EXISTS within a second"
    );
    let recent = c.read_response().await.unwrap();
    assert_eq!(recent.trim_end(), "* 1 RECENT");
    let keepalive = c.read_response().await.unwrap();
    assert_eq!(keepalive.trim_end(), "* OK Still here");
    c.send(b"DONE\r\n").await;
    let r = c.until_tagged("i1").await;
    assert_eq!(r, vec!["i1 OK Idle completed".to_string()]);
    // Anything but DONE ends IDLE with BAD.
    c.send(b"i2 IDLE\r\n").await;
    c.read_response().await.unwrap();
    c.send(b"NOTDONE\r\n").await;
    let r = c.until_tagged("i2").await;
    assert_eq!(status(&r), "BAD");
    // IDLE in the authenticated state only keeps alive.
    c.cmd("u UNSELECT").await;
    c.send(b"i3 IDLE\r\n").await;
    c.read_response().await.unwrap();
    c.send(b"DONE\r\n").await;
    assert!(ok(&c.until_tagged("i3").await));
}

#[tokio::test]
async fn deleted_selected_mailbox_ends_the_session() {
    let s = start().await;
    let mut a = s.login().await;
    let mut b = s.login().await;
    a.cmd("c CREATE Doomed").await;
    b.select("Doomed").await;
    assert!(ok(&a.cmd("d DELETE Doomed").await));
    b.send(b"n NOOP\r\n").await;
    let r = b.read_response().await.unwrap();
    assert!(r.starts_with("* BYE"), "{r}");
}

#[tokio::test]
async fn uid_commands_skip_messages_expunged_elsewhere() {
    let (s, mut a) = with_messages().await;
    let mut b = s.login().await;
    b.select("INBOX").await;
    a.cmd("a1 STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    a.cmd("a2 EXPUNGE").await;
    // B by sequence number: the message still has its number, the FETCH says why it is missing.
    let r = b.cmd("b1 FETCH 1:2 (UID)").await;
    assert_eq!(r[0], "* 2 FETCH (UID 2)");
    assert!(
        r.last().unwrap().starts_with("b1 NO [EXPUNGEISSUED]"),
        "{r:?}"
    );
    // By UID: omitted, and the EXPUNGE may be reported at the end.
    let r = b.cmd("b2 UID FETCH 1:2 (FLAGS)").await;
    assert_eq!(
        r,
        vec![
            "* 2 FETCH (UID 2 FLAGS ())".to_string(),
            "* 1 EXPUNGE".to_string(),
            "b2 OK FETCH completed".to_string()
        ]
    );
}

#[tokio::test]
async fn binary_literal8_and_unknown_cte() {
    let s = start().await;
    let raw = b"Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--b--\r\n";
    s.deliver(raw).await;
    let mut c = s.login().await;
    c.select("INBOX").await;
    let r = c.cmd("b1 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])").await;
    assert_eq!(
        r[0], "* 1 FETCH (BINARY[1] ~{4}\r\n\u{0}\u{1}\u{2}\u{3} BINARY.SIZE[1] 4)",
        "{r:?}"
    );
    let r = c.cmd("b2 FETCH 1 BINARY.PEEK[1]<1.2>").await;
    assert_eq!(r[0], "* 1 FETCH (BINARY[1]<1> {2}\r\n\u{1}\u{2})", "{r:?}");
    let r = c.cmd("b3 FETCH 1 BINARY.PEEK[2]").await;
    assert!(
        r.last().unwrap().starts_with("b3 NO [UNKNOWN-CTE]"),
        "{r:?}"
    );
    let r = c.cmd("b4 FETCH 1 BINARY.PEEK[3]").await;
    assert_eq!(r[0], "* 1 FETCH (BINARY[3] NIL)", "{r:?}");
    let r = c.cmd("b5 FETCH 1 (RFC822.TEXT)").await;
    assert!(
        r[0].contains("RFC822.TEXT {") && r[0].contains("FLAGS (\\Seen \\Recent)"),
        "RFC822.TEXT sets \\Seen: {r:?}"
    );
}

/// B's sequence-number model, kept only from what the server tells B.
struct Model {
    uids: Vec<u32>,
    expunges: usize,
    grew: usize,
}

impl Model {
    /// Applies B's responses; panics when the server contradicts the model or
    /// renumbers where RFC 9051 §7.5.1 forbids it.
    fn apply(&mut self, command: &str, responses: &[String]) {
        let renumbering_allowed = !(command.starts_with("FETCH")
            || command.starts_with("SEARCH")
            || command.starts_with("STORE"));
        for line in responses {
            let mut words = line.split(' ');
            if words.next() != Some("*") {
                continue;
            }
            let (Some(n), Some(kind)) = (
                words.next().and_then(|n| n.parse::<usize>().ok()),
                words.next(),
            ) else {
                continue;
            };
            match kind {
                "EXPUNGE" => {
                    assert!(
                        renumbering_allowed,
                        "EXPUNGE during {command}: {responses:?}"
                    );
                    assert!(
                        n >= 1 && n <= self.uids.len(),
                        "EXPUNGE {n} of {}: {responses:?}",
                        self.uids.len()
                    );
                    self.uids.remove(n - 1);
                    self.expunges += 1;
                }
                "EXISTS" => {
                    assert!(
                        n >= self.uids.len(),
                        "EXISTS shrank from {} to {n}",
                        self.uids.len()
                    );
                    self.grew += usize::from(n > self.uids.len());
                    self.uids.resize(n, 0);
                }
                "FETCH" => {
                    let Some(uid) = line
                        .split("UID ")
                        .nth(1)
                        .and_then(|r| r.split([' ', ')']).next())
                        .and_then(|u| u.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    assert!(
                        n >= 1 && n <= self.uids.len(),
                        "FETCH {n} beyond {}: {line}",
                        self.uids.len()
                    );
                    let known = &mut self.uids[n - 1];
                    assert!(
                        *known == 0 || *known == uid,
                        "sequence {n} was UID {known}, now {uid}: {responses:?}"
                    );
                    *known = uid;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn interleaved_sessions_keep_consistent_views() {
    let s = start().await;
    for _ in 0..12 {
        s.deliver(&data("msg_01.txt")).await;
    }
    let mut a = s.login().await;
    a.select("INBOX").await;
    let mut b = s.login().await;
    b.select("INBOX").await;
    let mut model = Model {
        uids: (1..=12).collect(),
        expunges: 0,
        grew: 0,
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    let b_commands = [
        "FETCH 1:* (UID)",
        "NOOP",
        "UID FETCH 1:* (FLAGS)",
        "SEARCH ALL",
        "STORE 1 +FLAGS (\\Answered)",
        "UID SEARCH ALL",
        "FETCH 1 (UID FLAGS)",
    ];
    for round in 0..200 {
        // A (or delivery) changes the mailbox...
        let count = a.cmd("x STATUS INBOX (MESSAGES)").await;
        let messages: u64 = count[0]
            .split("MESSAGES ")
            .nth(1)
            .and_then(|r| r.trim_end_matches(')').parse().ok())
            .unwrap_or(0);
        match next(4) {
            0 if messages > 0 => {
                a.cmd(&format!(
                    "a STORE {} +FLAGS.SILENT (\\Deleted)",
                    next(messages) + 1
                ))
                .await;
                a.cmd("a EXPUNGE").await;
            }
            1 | 0 => {
                s.deliver(&data("msg_10.txt")).await;
            }
            2 if messages > 0 => {
                a.cmd(&format!("a MOVE {} Trash", next(messages) + 1)).await;
            }
            _ => {
                a.cmd("a NOOP").await;
            }
        }
        // ...while B keeps working by sequence number and by UID.
        let command = b_commands[next(b_commands.len() as u64) as usize];
        if command.contains(' ')
            && model.uids.is_empty()
            && !command.starts_with("UID")
            && command != "SEARCH ALL"
        {
            continue;
        }
        let r = b.cmd(&format!("b{round} {command}")).await;
        let last = r.last().unwrap();
        assert!(!last.contains(" BAD "), "{command}: {r:?}");
        model.apply(command, &r);
    }
    // Finally B catches up and its model equals the mailbox.
    let r = b.cmd("bn NOOP").await;
    model.apply("NOOP", &r);
    let r = b.cmd("bf FETCH 1:* (UID)").await;
    model.apply("FETCH", &r);
    let truth = a.cmd("at UID SEARCH ALL").await;
    let truth: Vec<u32> = truth
        .iter()
        .find(|l| l.starts_with("* SEARCH"))
        .unwrap()
        .trim_start_matches("* SEARCH")
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect();
    assert_eq!(model.uids, truth);
    assert!(
        model.expunges > 10 && model.grew > 10,
        "the test exercised too little: {} expunges, {} EXISTS",
        model.expunges,
        model.grew
    );
}

fn modseq_of(line: &str) -> u64 {
    line.split("MODSEQ (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no MODSEQ in {line}"))
}

#[tokio::test]
async fn condstore() {
    let (_s, mut c) = with_messages().await;
    let r = c.cmd("c1 STATUS INBOX (MESSAGES HIGHESTMODSEQ)").await;
    assert!(
        r[0].starts_with("* OK [HIGHESTMODSEQ "),
        "enabling with a mailbox selected announces it: {r:?}"
    );
    assert!(
        has(&r, "* STATUS \"INBOX\" (MESSAGES 5 HIGHESTMODSEQ "),
        "{r:?}"
    );
    let r = c.cmd("c2 FETCH 1:* (MODSEQ)").await;
    assert!(r[0].starts_with("* 1 FETCH (MODSEQ ("), "{r:?}");
    let m1 = r[..5].iter().map(|l| modseq_of(l)).max().unwrap();
    let r = c.cmd("c3 STORE 1 +FLAGS (\\Flagged)").await;
    let m2 = modseq_of(&r[0]);
    assert!(
        m2 > m1 && r[0].starts_with("* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ("),
        "{r:?}"
    );
    let r = c
        .cmd(&format!(
            "c4 UID STORE 1:2 (UNCHANGEDSINCE {m1}) +FLAGS (\\Seen)"
        ))
        .await;
    assert_eq!(
        r.last().unwrap(),
        "c4 OK [MODIFIED 1] Conditional STORE failed",
        "{r:?}"
    );
    assert!(
        r[0].starts_with("* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ ("),
        "{r:?}"
    );
    let r = c
        .cmd(&format!("c5 FETCH 1:* (FLAGS) (CHANGEDSINCE {m1})"))
        .await;
    assert_eq!(r.len(), 3, "only the two changed messages: {r:?}");
    assert!(
        r[0].starts_with("* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (")
            && r[1].starts_with("* 2 FETCH ("),
        "{r:?}"
    );
    // CHANGEDSINCE implies MODSEQ, with or without FLAGS (RFC 7162 §3.1.4.1).
    let r = c
        .cmd(&format!("c5b FETCH 1:* (UID) (CHANGEDSINCE {m1})"))
        .await;
    assert!(
        r.len() == 3 && r[0].starts_with("* 1 FETCH (UID 1 MODSEQ ("),
        "{r:?}"
    );
    let r = c.cmd(&format!("c6 SEARCH MODSEQ {m2}")).await;
    assert!(r[0].starts_with("* SEARCH 1 2 (MODSEQ "), "{r:?}");
    let r = c
        .cmd(&format!(
            "c7 UID SEARCH RETURN (COUNT) MODSEQ \"/flags/\\\\seen\" all {m2}"
        ))
        .await;
    assert!(
        r[0].starts_with("* ESEARCH (TAG \"c7\") UID COUNT 2 MODSEQ "),
        "{r:?}"
    );
    let r = c.cmd("c8 STORE 3 +FLAGS.SILENT (\\Answered)").await;
    assert!(
        r[0].starts_with("* 3 FETCH (MODSEQ ("),
        ".SILENT still reports MODSEQ: {r:?}"
    );
    let r = c.cmd("c9 SELECT INBOX").await;
    assert!(has(&r, "* OK [HIGHESTMODSEQ "), "{r:?}");
    let r = c.cmd("c10 FETCH 1 FLAGS").await;
    assert!(
        r[0].contains(" MODSEQ ("),
        "FLAGS bring MODSEQ once enabled: {r:?}"
    );
}

#[tokio::test]
async fn condstore_by_select_parameter_and_enable() {
    let s = start().await;
    s.deliver(&data("msg_01.txt")).await;
    let mut c = s.login().await;
    let r = c.cmd("e1 ENABLE CONDSTORE").await;
    assert_eq!(r[0], "* ENABLED CONDSTORE");
    let mut d = s.login().await;
    let r = d.cmd("e2 EXAMINE INBOX (CONDSTORE)").await;
    assert!(
        has(&r, "* OK [HIGHESTMODSEQ ") && r.last().unwrap().starts_with("e2 OK [READ-ONLY]"),
        "{r:?}"
    );
    let r = d.cmd("e3 SELECT INBOX (BOGUS)").await;
    assert_eq!(status(&r), "BAD");
    c.select("INBOX").await;
    d.cmd("e4 SELECT INBOX").await;
    d.cmd("e5 STORE 1 +FLAGS (\\Seen)").await;
    let r = c.cmd("e6 NOOP").await;
    assert!(
        r[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ ("),
        "unsolicited FETCH carries MODSEQ: {r:?}"
    );
}

#[tokio::test]
async fn shutdown_ends_idle_and_sasl_continuations() {
    let s = start().await;
    let mut idle = s.login().await;
    idle.select("INBOX").await;
    idle.send(b"i IDLE\r\n").await;
    assert!(idle.read_response().await.unwrap().starts_with("+ "));
    let mut sasl = s.client().await;
    sasl.send(b"a AUTHENTICATE PLAIN\r\n").await;
    assert!(sasl.read_response().await.unwrap().starts_with("+"));
    s.shutdown.cancel();
    assert_eq!(
        idle.read_response().await.unwrap().trim_end(),
        "* BYE Server shutting down"
    );
    assert_eq!(
        sasl.read_response().await.unwrap().trim_end(),
        "* BYE Server shutting down"
    );
    tokio::time::timeout(Duration::from_secs(5), s.handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
