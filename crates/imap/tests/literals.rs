//! Every command answers the same whether its string arguments come quoted or as
//! literals (RFC 9051 §4.3): clients send literals for any mailbox name with
//! special characters, and framing must let every command of the table through.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mailroom_imap::proto::commands::{COMMANDS, Literals};

/// Sequences of commands, each step written with quoted strings. Each sequence
/// runs twice on one connection, first as written, then with every quoted string
/// sent as a synchronizing literal; the answers must be the same. The sequences
/// leave the state as they found it, so the second run starts where the first did.
const SEQUENCES: &[&[&str]] = &[
    &["ID (\"name\" \"literal test\")"],
    &["CAPABILITY \"x\""],
    &["NOOP \"x\""],
    &["LOGOUT \"x\""],
    &["STARTTLS \"x\""],
    &["NAMESPACE \"x\""],
    &["IDLE \"x\""],
    &["CHECK \"x\""],
    &["CLOSE \"x\""],
    &["UNSELECT \"x\""],
    &["EXPUNGE \"x\""],
    &["AUTHENTICATE \"PLAIN\""],
    &["ENABLE \"CONDSTORE\""],
    &["EXAMINE \"INBOX\"", "SELECT \"INBOX\""],
    &[
        "CREATE \"Lit Box\"",
        "LIST \"\" \"Lit*\"",
        "APPEND \"Lit Box\" (\\Seen) {7+}\r\nSubject",
        "RENAME \"Lit Box\" \"Lit Two\"",
        "STATUS \"Lit Two\" (MESSAGES)",
        "DELETE \"Lit Two\"",
        "LIST \"\" \"Lit*\"",
    ],
    &[
        "SUBSCRIBE \"Sent\"",
        "LSUB \"\" \"Sent\"",
        "UNSUBSCRIBE \"Sent\"",
        "LSUB \"\" \"Sent\"",
    ],
    &["STATUS \"INBOX\" (MESSAGES UIDNEXT UNSEEN)"],
    &["APPEND \"No Such\" {5+}\r\nhello"],
    &[
        "SETACL \"INBOX\" \"bob@example.org\" \"lr\"",
        "GETACL \"INBOX\"",
        "LISTRIGHTS \"INBOX\" \"bob@example.org\"",
        "MYRIGHTS \"INBOX\"",
        "DELETEACL \"INBOX\" \"bob@example.org\"",
        "GETACL \"INBOX\"",
    ],
    &["GETQUOTA \"\"", "GETQUOTAROOT \"INBOX\""],
    &["SETQUOTA \"\" (STORAGE 100)"],
    &[
        "SEARCH SUBJECT \"hello\"",
        "UID SEARCH CHARSET \"UTF-8\" SUBJECT \"hello\"",
    ],
    &[
        "FETCH 1 (BODY.PEEK[HEADER.FIELDS (\"Subject\")])",
        "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (\"Subject\" \"From\")])",
    ],
    &[
        "STORE \"1\" +FLAGS (\\Seen)",
        "UID STORE \"1\" +FLAGS (\\Seen)",
    ],
    &["UID EXPUNGE \"1\""],
    &[
        "COPY 1 \"No Such\"",
        "UID COPY 1 \"No Such\"",
        "MOVE 1 \"No Such\"",
        "UID MOVE 1 \"No Such\"",
        "COPY 1 \"Trash\"",
    ],
    &[
        "SORT (SUBJECT) \"UTF-8\" SUBJECT \"hello\"",
        "UID SORT (REVERSE DATE) \"US-ASCII\" ALL",
        "THREAD REFERENCES \"UTF-8\" SUBJECT \"hello\"",
        "UID THREAD ORDEREDSUBJECT \"UTF-8\" ALL",
    ],
];

/// The table name a step starts with (`UID FETCH`, `SELECT`).
fn command_name(step: &str) -> String {
    let mut words = step.split(' ');
    let first = words.next().unwrap_or_default();
    if first == "UID" {
        format!("UID {}", words.next().unwrap_or_default())
    } else {
        first.to_string()
    }
}

/// Splits a step at its quoted strings: (text before, string) pairs and the rest.
fn quoted_parts(step: &str) -> (Vec<(&str, &str)>, &str) {
    let mut parts = Vec::new();
    let mut rest = step;
    while let Some(open) = rest.find('"') {
        let close = open + 1 + rest[open + 1..].find('"').unwrap();
        parts.push((&rest[..open], &rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    (parts, rest)
}

/// The answer with the tag taken off, and the UIDs and UIDVALIDITY of UIDPLUS
/// codes (which differ between the runs) blanked.
fn normalized(lines: Vec<String>, tag: &str) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            let l = l.strip_prefix(tag).map(str::to_string).unwrap_or(l);
            if l.contains("[APPENDUID ") || l.contains("[COPYUID ") {
                l.replace(|c: char| c.is_ascii_digit(), "#")
            } else {
                l
            }
        })
        .collect()
}

async fn run_quoted(c: &mut Client, tag: &str, step: &str) -> Vec<String> {
    normalized(c.cmd(&format!("{tag} {step}")).await, tag)
}

/// Sends the step with each quoted string as `{n}` CRLF and its octets, waiting
/// for the server's continuation before each.
async fn run_literal(c: &mut Client, tag: &str, step: &str) -> Vec<String> {
    let (parts, rest) = quoted_parts(step);
    c.send(format!("{tag} ").as_bytes()).await;
    let mut early = Vec::new();
    for (before, string) in parts {
        c.send(format!("{before}{{{}}}\r\n", string.len()).as_bytes())
            .await;
        let answer = c.read_response().await.unwrap();
        if !answer.starts_with("+ ") {
            // Refused before the octets were sent: that is the whole answer.
            early.push(answer.trim_end().to_string());
            return normalized(early, tag);
        }
        c.send(string.as_bytes()).await;
    }
    c.send(format!("{rest}\r\n").as_bytes()).await;
    normalized(c.until_tagged(tag).await, tag)
}

fn status(answer: &[String]) -> &str {
    answer
        .last()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
}

#[tokio::test]
async fn every_command_takes_literals_as_quoted_strings() {
    let s = start().await;
    s.store
        .create_account("bob@example.org", "bob pass")
        .await
        .unwrap();
    for subject in ["hello one", "hello two"] {
        s.deliver(format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n").as_bytes())
            .await;
    }
    let mut c = s.login().await;
    c.select("INBOX").await;
    for (i, sequence) in SEQUENCES.iter().enumerate() {
        // STARTTLS and AUTHENTICATE need a connection that has not logged in.
        let mut fresh = s.client().await;
        let mut answers = Vec::new();
        for literal in [false, true] {
            let mut run = Vec::new();
            for (j, step) in sequence.iter().enumerate() {
                let name = command_name(step);
                let conn = if matches!(name.as_str(), "AUTHENTICATE" | "STARTTLS") {
                    &mut fresh
                } else {
                    &mut c
                };
                let tag = format!("t{i}.{j}");
                run.push(if literal {
                    run_literal(conn, &tag, step).await
                } else {
                    run_quoted(conn, &tag, step).await
                });
            }
            answers.push(run);
        }
        for (j, step) in sequence.iter().enumerate() {
            let name = command_name(step);
            let spec = COMMANDS
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name} is not in the command table"));
            let (quoted, literal) = (&answers[0][j], &answers[1][j]);
            if spec.literals == Literals::None {
                // No arguments: refused by framing or by the parser, BAD either way.
                assert_eq!(status(quoted), "BAD", "{step}: {quoted:?}");
                assert_eq!(status(literal), "BAD", "{step}: {literal:?}");
            } else {
                assert_eq!(quoted, literal, "{step}");
            }
        }
    }
    // LOGIN itself, on connections of its own (the answer is the same).
    let mut q = s.client().await;
    let quoted = run_quoted(&mut q, "q", "LOGIN \"joe@example.org\" \"secret pass\"").await;
    let mut l = s.client().await;
    let literal = run_literal(&mut l, "l", "LOGIN \"joe@example.org\" \"secret pass\"").await;
    assert_eq!(status(&quoted), "OK", "{quoted:?}");
    assert_eq!(quoted, literal);
    s.shutdown.cancel();
}

/// The sequences above name every entry of the command table: a new command
/// gets its literal test by being added here.
#[test]
fn every_table_entry_is_exercised() {
    let mut named: Vec<String> = SEQUENCES
        .iter()
        .flat_map(|s| s.iter().map(|step| command_name(step)))
        .collect();
    named.push("LOGIN".into());
    for spec in COMMANDS {
        assert!(
            named.iter().any(|n| n == spec.name),
            "{} has no literal example in tests/literals.rs",
            spec.name
        );
    }
}

#[tokio::test]
async fn getacl_with_a_literal_mailbox() {
    let s = start().await;
    let mut c = s.login().await;
    c.send(b"a GETACL {5}\r\n").await;
    let cont = c.read_response().await.unwrap();
    assert!(cont.starts_with("+ "), "{cont}");
    c.send(b"INBOX\r\n").await;
    let r = c.until_tagged("a").await;
    assert_eq!(
        r[0], "* ACL \"INBOX\" joe@example.org lrswipkxteacd",
        "{r:?}"
    );
    assert!(r[1].starts_with("a OK"), "{r:?}");
    s.shutdown.cancel();
}
