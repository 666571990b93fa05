//! Protocol tests over TCP: each command in each state, including error paths.
#![allow(clippy::unwrap_used)]

mod common;

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

#[tokio::test]
async fn greeting_capability_noop_logout() {
    let s = start().await;
    let mut c = s.client().await;
    assert!(
        c.greeting
            .starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "),
        "{}",
        c.greeting
    );
    assert!(c.greeting.contains("AUTH=PLAIN"));
    let r = c.cmd("a1 CAPABILITY").await;
    assert!(
        ok(&r) && r[0].starts_with("* CAPABILITY IMAP4rev1"),
        "{r:?}"
    );
    assert!(
        !r[0].contains("MOVE"),
        "MOVE is advertised only after login"
    );
    let r = c.cmd("a2 noop").await;
    assert!(ok(&r));
    let r = c.cmd("a3 ID (\"name\" \"test\")").await;
    assert!(
        ok(&r) && r[0].starts_with("* ID (\"name\" \"mailroom\""),
        "{r:?}"
    );
    let r = c.cmd("a4 LOGOUT").await;
    assert_eq!(
        r,
        vec![
            "* BYE Logging out".to_string(),
            "a4 OK Logout completed".to_string()
        ]
    );
    assert!(c.read_response().await.is_none());
}

#[tokio::test]
async fn wrong_state_and_bad_syntax() {
    let s = start().await;
    let mut c = s.client().await;
    for cmd in [
        "SELECT INBOX",
        "EXAMINE INBOX",
        "CREATE x",
        "DELETE x",
        "RENAME a b",
        "SUBSCRIBE x",
        "UNSUBSCRIBE x",
        "LIST \"\" *",
        "LSUB \"\" *",
        "STATUS INBOX (MESSAGES)",
        "NAMESPACE",
        "FETCH 1 FLAGS",
        "UID SEARCH ALL",
        "MOVE 1 x",
        "EXPUNGE",
        "UNSELECT",
        "ENABLE IMAP4rev2",
        "APPEND INBOX {1+}\r\nx",
        "IDLE",
        "CHECK",
        "CLOSE",
    ] {
        let r = c.cmd(&format!("w1 {cmd}")).await;
        assert_eq!(status(&r), "BAD", "{cmd}: {r:?}");
    }
    let r = c.cmd("b1 FROBNICATE").await;
    assert_eq!(status(&r), "BAD");
    let r = c.cmd("b2 LOGIN onlyuser").await;
    assert_eq!(status(&r), "BAD");
    c.send(b"+bad\r\n").await;
    let r = c.read_response().await.unwrap();
    assert!(r.starts_with("* BAD"), "{r}");
    c.send(b"\r\n").await;
    let r = c.read_response().await.unwrap();
    assert!(r.starts_with("* BAD"), "{r}");
    let r = c.cmd("b3 LOGIN joe@example.org wrong").await;
    assert!(r[0].starts_with("b3 NO [AUTHENTICATIONFAILED]"), "{r:?}");
    let r = c.cmd("b4 LOGIN joe@example.org \"secret pass\"").await;
    assert!(
        r[0].starts_with("b4 OK [CAPABILITY IMAP4rev1") && r[0].contains("MOVE"),
        "{r:?}"
    );
    // Authenticated state: no second login, no message commands.
    for cmd in [
        "LOGIN a b",
        "AUTHENTICATE PLAIN",
        "FETCH 1 FLAGS",
        "STORE 1 +FLAGS \\Seen",
        "SEARCH ALL",
        "EXPUNGE",
        "UID FETCH 1 UID",
        "COPY 1 INBOX",
        "UNSELECT",
    ] {
        let r = c.cmd(&format!("w2 {cmd}")).await;
        assert_eq!(status(&r), "BAD", "{cmd}: {r:?}");
    }
    c.select("INBOX").await;
    let r = c.cmd("w3 ENABLE IMAP4rev2").await;
    assert_eq!(
        status(&r),
        "BAD",
        "ENABLE is for the authenticated state only: {r:?}"
    );
    for cmd in [
        "FETCH 1 (FLAGS",
        "FETCH 1 BODY[HEADER.FIELDS]",
        "STORE 1 FLAGZ (\\Seen)",
        "STORE 1 +FLAGS (\\Bogus)",
        "SEARCH BEFORE 40-Foo-2000",
        "FETCH 1 FLAGS EXTRA",
    ] {
        let r = c.cmd(&format!("x1 {cmd}")).await;
        assert_eq!(status(&r), "BAD", "{cmd}: {r:?}");
    }
    let r = c.cmd("x2 SEARCH CHARSET KOI8-R ALL").await;
    assert!(r.last().unwrap().starts_with("x2 NO [BADCHARSET"), "{r:?}");
}

#[tokio::test]
async fn authenticate_plain_and_login() {
    let s = start().await;
    let mut c = s.client().await;
    // SASL-IR: \0joe@example.org\0secret pass
    let r = c
        .cmd("a1 AUTHENTICATE PLAIN AGpvZUBleGFtcGxlLm9yZwBzZWNyZXQgcGFzcw==")
        .await;
    assert!(ok(&r), "{r:?}");
    let mut c = s.client().await;
    c.send(b"a2 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.read_response().await.unwrap().trim_end(), "+");
    c.send(b"AGpvZUBleGFtcGxlLm9yZwB3cm9uZw==\r\n").await;
    let r = c.until_tagged("a2").await;
    assert!(r[0].starts_with("a2 NO [AUTHENTICATIONFAILED]"), "{r:?}");
    c.send(b"a3 AUTHENTICATE PLAIN\r\n").await;
    c.read_response().await.unwrap();
    c.send(b"*\r\n").await;
    let r = c.until_tagged("a3").await;
    assert_eq!(status(&r), "BAD");
    c.send(b"a4 AUTHENTICATE LOGIN\r\n").await;
    assert_eq!(
        c.read_response().await.unwrap().trim_end(),
        "+ VXNlcm5hbWU6"
    );
    c.send(b"am9lQGV4YW1wbGUub3Jn\r\n").await;
    assert_eq!(
        c.read_response().await.unwrap().trim_end(),
        "+ UGFzc3dvcmQ6"
    );
    c.send(b"c2VjcmV0IHBhc3M=\r\n").await;
    let r = c.until_tagged("a4").await;
    assert!(ok(&r), "{r:?}");
    let r = c.cmd("a5 AUTHENTICATE CRAM-MD5").await;
    assert_eq!(status(&r), "BAD", "already authenticated: {r:?}");
}

#[tokio::test]
async fn plaintext_login_disabled() {
    let s = start_with(|c| c.auth.allow_plaintext = Some(false)).await;
    let mut c = s.client().await;
    assert!(c.greeting.contains("LOGINDISABLED") && !c.greeting.contains("AUTH=PLAIN"));
    let r = c.cmd("a1 LOGIN joe@example.org \"secret pass\"").await;
    assert!(r[0].starts_with("a1 NO [PRIVACYREQUIRED]"), "{r:?}");
}

#[tokio::test]
async fn select_and_examine() {
    let s = start().await;
    s.deliver(&data("msg_01.txt")).await;
    s.deliver(&data("msg_07.txt")).await;
    let mut c = s.login().await;
    let r = c.select("INBOX").await;
    assert!(
        has(
            &r,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
        ),
        "{r:?}"
    );
    assert!(has(
        &r,
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"
    ));
    assert!(has(&r, "* 2 EXISTS") && has(&r, "* 2 RECENT") && has(&r, "[UNSEEN 1]"));
    assert!(has(&r, "[UIDVALIDITY ") && has(&r, "* OK [UIDNEXT 3]"));
    assert!(r.last().unwrap().starts_with("S1 OK [READ-WRITE]"));
    // \Recent belongs to exactly one session.
    let mut other = s.login().await;
    let r = other.select("INBOX").await;
    assert!(has(&r, "* 0 RECENT"), "{r:?}");
    let r = c.cmd("f1 FETCH 1 FLAGS").await;
    assert!(has(&r, "* 1 FETCH (FLAGS (\\Recent))"), "{r:?}");
    let r = c.cmd("k1 CHECK").await;
    assert_eq!(r, vec!["k1 OK CHECK completed".to_string()]);
    let r = c.cmd("e1 EXAMINE inbox").await;
    assert!(
        has(&r, "* OK [CLOSED]"),
        "CLOSED, also for IMAP4rev1 clients as Dovecot does: {r:?}"
    );
    assert!(
        has(&r, "[PERMANENTFLAGS ()]") && r.last().unwrap().starts_with("e1 OK [READ-ONLY]"),
        "{r:?}"
    );
    let r = c.cmd("e2 STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(
        r,
        vec!["e2 OK Store ignored with read-only mailbox".to_string()]
    );
    let r = c.cmd("e2b FETCH 1 FLAGS").await;
    assert!(!has(&r, "\\Seen"), "{r:?}");
    let r = c.cmd("e3 FETCH 1 BODY[]").await;
    assert!(!has(&r, "\\Seen"), "EXAMINE must not set \\Seen: {r:?}");
    let r = c.cmd("e4 SELECT nosuch").await;
    assert!(
        r.last().unwrap().starts_with("e4 NO [NONEXISTENT]"),
        "{r:?}"
    );
    let r = c.cmd("e5 FETCH 1 FLAGS").await;
    assert_eq!(
        status(&r),
        "BAD",
        "a failed SELECT leaves no mailbox selected"
    );
}

#[tokio::test]
async fn imap4rev2_and_utf8() {
    let s = start().await;
    s.deliver(&data("msg_01.txt")).await;
    let mut c = s.login().await;
    let r = c.cmd("c1 CREATE Entw&APw-rfe").await;
    assert!(ok(&r), "{r:?}");
    let r = c.cmd("c2 CREATE Entwürfe2").await;
    assert!(
        r.last().unwrap().starts_with("c2 NO"),
        "8-bit names are not modified UTF-7: {r:?}"
    );
    let r = c.cmd("c3 LIST \"\" Entw*").await;
    assert!(has(&r, "\"Entw&APw-rfe\""), "{r:?}");
    let r = c.cmd("c4 ENABLE IMAP4rev2").await;
    assert_eq!(r[0], "* ENABLED IMAP4rev2");
    let r = c.cmd("c5 LIST \"\" Entw*").await;
    assert!(has(&r, "\"Entwürfe\""), "{r:?}");
    let r = c.cmd("c6 SELECT INBOX").await;
    assert!(!has(&r, "[CLOSED]"), "nothing was selected: {r:?}");
    let r = c.cmd("c6 SELECT INBOX").await;
    assert_eq!(r[0], "* OK [CLOSED] Previous mailbox closed");
    assert!(
        !has(&r, "RECENT") && has(&r, "* LIST () \"/\" \"INBOX\""),
        "{r:?}"
    );
    let r = c.cmd("c7 SEARCH ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"c7\") ALL 1");
    let r = c.cmd("c8 FETCH 1 FLAGS").await;
    assert_eq!(r[0], "* 1 FETCH (FLAGS ())");
}

#[tokio::test]
async fn mailbox_management_and_list() {
    let s = start().await;
    let mut c = s.login().await;
    let r = c.cmd("l0 LIST \"\" \"\"").await;
    assert_eq!(r[0], "* LIST (\\Noselect) \"/\" \"\"");
    let r = c.cmd("l1 LIST \"\" *").await;
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"INBOX\"");
    assert!(
        has(&r, "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\""),
        "{r:?}"
    );
    assert!(ok(&r));
    assert!(ok(&c.cmd("m1 CREATE Work/Projects/Alpha").await));
    // The missing superiors exist as \Noselect placeholders; CREATE makes one a
    // real mailbox (as in Dovecot), and only then does it already exist.
    let r = c.cmd("l1b LIST \"\" Work").await;
    assert!(r[0].starts_with("* LIST (\\Noselect"), "{r:?}");
    assert!(ok(&c.cmd("m2 CREATE Work").await));
    let r = c.cmd("l1c LIST \"\" Work").await;
    assert_eq!(r[0], "* LIST (\\HasChildren) \"/\" \"Work\"");
    let r = c.cmd("m2b CREATE Work").await;
    assert!(r[0].starts_with("m2b NO [ALREADYEXISTS]"), "{r:?}");
    let r = c.cmd("m3 CREATE INBOX").await;
    assert!(r[0].starts_with("m3 NO [ALREADYEXISTS]"), "{r:?}");
    let r = c.cmd("l2 LIST \"\" %").await;
    assert!(
        has(&r, "* LIST (\\HasChildren) \"/\" \"Work\"") && !has(&r, "Projects"),
        "{r:?}"
    );
    let r = c.cmd("l3 LIST Work/ %").await;
    assert!(has(&r, "\"Work/Projects\"") && !has(&r, "Alpha"), "{r:?}");
    let r = c.cmd("l4 LIST \"\" Work/*").await;
    assert!(has(&r, "\"Work/Projects/Alpha\""), "{r:?}");
    assert!(ok(&c.cmd("m4 RENAME Work Job").await));
    let r = c.cmd("l5 LIST \"\" *").await;
    assert!(
        has(&r, "\"Job/Projects/Alpha\"") && !has(&r, "\"Work"),
        "{r:?}"
    );
    let r = c.cmd("m5 RENAME nosuch other").await;
    assert!(r[0].starts_with("m5 NO [NONEXISTENT]"), "{r:?}");
    let r = c.cmd("m6 RENAME Job Sent").await;
    assert!(r[0].starts_with("m6 NO [ALREADYEXISTS]"), "{r:?}");
    assert!(ok(&c.cmd("m7 DELETE Job").await));
    let r = c.cmd("l6 LIST \"\" Job").await;
    assert_eq!(r[0], "* LIST (\\Noselect \\HasChildren) \"/\" \"Job\"");
    let r = c.cmd("m7b DELETE Job").await;
    assert!(r[0].starts_with("m7b NO [HASCHILDREN]"), "{r:?}");
    let r = c.cmd("m8 SELECT Job").await;
    assert!(r.last().unwrap().contains("NO"), "{r:?}");
    let r = c.cmd("m9 DELETE nosuch").await;
    assert!(r[0].starts_with("m9 NO [NONEXISTENT]"), "{r:?}");
    let r = c.cmd("m10 DELETE INBOX").await;
    assert!(r[0].starts_with("m10 NO"), "{r:?}");

    // SPECIAL-USE and CREATE-SPECIAL-USE
    assert!(ok(&c.cmd("u1 CREATE Outbox (USE (\\Flagged))").await));
    let r = c.cmd("u2 CREATE Bad (USE (\\Inbox))").await;
    assert!(r[0].starts_with("u2 NO [USEATTR]"), "{r:?}");
    let r = c.cmd("u3 LIST (SPECIAL-USE) \"\" *").await;
    assert!(
        has(&r, "\\Flagged) \"/\" \"Outbox\"") && !has(&r, "\"INBOX\""),
        "{r:?}"
    );

    // Subscriptions, LIST-EXTENDED, LSUB
    assert!(ok(&c.cmd("s1 SUBSCRIBE Outbox").await));
    assert!(ok(&c.cmd("s2 SUBSCRIBE Ghost/Child").await));
    let r = c.cmd("s3 LIST (SUBSCRIBED) \"\" *").await;
    assert!(
        has(&r, "* LIST (\\Flagged \\Subscribed) \"/\" \"Outbox\""),
        "{r:?}"
    );
    assert!(
        has(
            &r,
            "* LIST (\\NonExistent \\Subscribed) \"/\" \"Ghost/Child\""
        ),
        "{r:?}"
    );
    let r = c.cmd("s4 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
    assert!(
        has(
            &r,
            "* LIST (\\NonExistent) \"/\" \"Ghost\" (CHILDINFO (\"SUBSCRIBED\"))"
        ),
        "{r:?}"
    );
    let r = c.cmd("s5 LSUB \"\" %").await;
    assert!(
        has(&r, "* LSUB (\\Noselect) \"/\" \"Ghost\"") && has(&r, "* LSUB () \"/\" \"Outbox\""),
        "{r:?}"
    );
    assert!(ok(&c.cmd("s6 UNSUBSCRIBE Outbox").await));
    let r = c.cmd("s7 LIST \"\" (INBOX Outbox) RETURN (SUBSCRIBED CHILDREN STATUS (MESSAGES UIDNEXT SIZE))").await;
    assert!(
        has(&r, "* LIST (\\HasNoChildren \\Flagged) \"/\" \"Outbox\""),
        "{r:?}"
    );
    assert!(
        has(&r, "* STATUS \"Outbox\" (MESSAGES 0 UIDNEXT 1 SIZE 0)"),
        "{r:?}"
    );
    assert!(
        has(&r, "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\""),
        "{r:?}"
    );
    let r = c.cmd("s8 LIST (BOGUS) \"\" *").await;
    assert_eq!(status(&r), "BAD");
    let r = c.cmd("n1 NAMESPACE").await;
    // Personal at the root, other accounts' shared mailboxes under Shared/ (tests/acl.rs).
    assert_eq!(r[0], "* NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL");
}

#[tokio::test]
async fn rename_inbox_and_status() {
    let s = start().await;
    s.deliver(&data("msg_01.txt")).await;
    s.deliver(&data("msg_02.txt")).await;
    let mut c = s.login().await;
    let r = c
        .cmd("t1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)")
        .await;
    let size = data("msg_01.txt").len() + data("msg_02.txt").len();
    assert!(
        r[0].starts_with("* STATUS \"INBOX\" (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY "),
        "{r:?}"
    );
    assert!(
        r[0].ends_with(&format!("UNSEEN 2 DELETED 0 SIZE {size})")),
        "{r:?}"
    );
    let r = c.cmd("t2 STATUS nosuch (MESSAGES)").await;
    assert!(r[0].starts_with("t2 NO [NONEXISTENT]"), "{r:?}");
    let r = c.cmd("t3 STATUS INBOX (BOGUS)").await;
    assert_eq!(status(&r), "BAD");
    assert!(ok(&c.cmd("t4 RENAME INBOX Old").await));
    let r = c.cmd("t5 STATUS INBOX (MESSAGES)").await;
    assert!(has(&r, "(MESSAGES 0)"), "{r:?}");
    let r = c.cmd("t6 STATUS Old (MESSAGES)").await;
    assert!(has(&r, "(MESSAGES 2)"), "{r:?}");
}

#[tokio::test]
async fn append_and_multiappend() {
    let s = start().await;
    let mut c = s.login().await;
    let msg = data("msg_01.txt");
    c.send(
        format!(
            "p1 APPEND Drafts (\\Draft $Work) \" 7-Feb-1994 21:52:25 -0800\" {{{}}}\r\n",
            msg.len()
        )
        .as_bytes(),
    )
    .await;
    assert!(c.read_response().await.unwrap().starts_with("+ "));
    c.send(&msg).await;
    c.send(b"\r\n").await;
    let r = c.until_tagged("p1").await;
    assert!(
        r[0].starts_with("p1 OK [APPENDUID ") && r[0].contains(" 1] "),
        "{r:?}"
    );
    // MULTIAPPEND with LITERAL+
    let r = c
        .cmd("p2 APPEND Drafts {12+}\r\nSubject: a\r\n (\\Seen) {12+}\r\nSubject: b\r\n")
        .await;
    assert!(
        r[0].starts_with("p2 OK [APPENDUID ") && r[0].contains(" 2:3] "),
        "{r:?}"
    );
    let r = c.cmd("p3 APPEND nosuch {3+}\r\nx\r\n").await;
    assert!(r[0].starts_with("p3 NO [TRYCREATE]"), "{r:?}");
    let r = c.cmd("p4 APPEND Drafts (\\Bogus) {3+}\r\nx\r\n").await;
    assert_eq!(status(&r), "BAD");
    c.select("Drafts").await;
    let r = c.cmd("p5 FETCH 1:* (FLAGS INTERNALDATE)").await;
    assert!(
        has(
            &r,
            "* 1 FETCH (FLAGS (\\Draft \\Recent $Work) INTERNALDATE \"07-Feb-1994 21:52:25 -0800\")"
        ),
        "{r:?}"
    );
    assert!(has(&r, "* 3 FETCH (FLAGS (\\Seen \\Recent)"), "{r:?}");
    // APPEND to the selected mailbox reports EXISTS.
    let r = c.cmd("p6 APPEND Drafts {12+}\r\nSubject: c\r\n").await;
    assert!(has(&r, "* 4 EXISTS"), "{r:?}");
}

#[tokio::test]
async fn limits_on_lines_and_literals() {
    let s = start_with(|c| {
        c.limits.max_line_length = mailroom_config::ByteSize(2048);
        c.limits.max_message_size = mailroom_config::ByteSize(4096);
    })
    .await;
    let mut c = s.login().await;
    let long = format!("g1 LIST \"\" {}", "x".repeat(5000));
    let r = c.cmd(&long).await;
    assert_eq!(r, vec!["g1 BAD Command line too long".to_string()]);
    let r = c.cmd("g2 APPEND INBOX {100000}").await;
    assert!(r[0].starts_with("g2 NO [TOOBIG]"), "{r:?}");
    let big = "y".repeat(10000);
    let r = c.cmd(&format!("g3 APPEND INBOX {{10000+}}\r\n{big}")).await;
    assert!(r[0].starts_with("g3 NO [TOOBIG]"), "{r:?}");
    let r = c.cmd("g4 LOGIN {5000}").await;
    assert_eq!(status(&r), "BAD");
    let r = c.cmd("g5 NOOP").await;
    assert!(ok(&r), "the connection stays usable: {r:?}");
}

#[tokio::test]
async fn connection_limit_and_shutdown() {
    let s = start_with(|c| c.limits.max_connections = 1).await;
    let mut first = s.client().await;
    let second = s.client().await;
    assert_eq!(second.greeting.trim_end(), "* BYE Too many connections");
    s.shutdown.cancel();
    let bye = first.read_response().await.unwrap();
    assert!(bye.starts_with("* BYE"), "{bye}");
    tokio::time::timeout(std::time::Duration::from_secs(5), s.handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn per_ip_limit() {
    let s = start_with(|c| c.limits.max_connections_per_ip = 2).await;
    let _a = s.client().await;
    let _b = s.client().await;
    let c = s.client().await;
    assert_eq!(c.greeting.trim_end(), "* BYE Too many connections");
    drop(_a);
    // The slot is released when the session ends.
    let mut ok_again = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if s.client().await.greeting.starts_with("* OK") {
            ok_again = true;
            break;
        }
    }
    assert!(ok_again);
}

#[tokio::test]
async fn wildcards_in_names_are_refused() {
    let s = start().await;
    let mut c = s.login().await;
    let r = c.cmd("w1 CREATE \"a*b\"").await;
    assert!(r[0].starts_with("w1 NO [CANNOT]"), "{r:?}");
    let r = c.cmd("w2 RENAME Junk \"a%b\"").await;
    assert!(r[0].starts_with("w2 NO [CANNOT]"), "{r:?}");
}

#[tokio::test]
async fn autologout() {
    let s = start_with(|c| c.imap.autologout = std::time::Duration::from_secs(1)).await;
    let mut c = s.client().await;
    let bye = c.read_response().await.unwrap();
    assert!(bye.starts_with("* BYE Autologout"), "{bye}");
    assert!(c.read_response().await.is_none());
}

#[tokio::test]
async fn utf8_accept_append() {
    let s = start().await;
    let mut c = s.login().await;
    let r = c.cmd("u1 ENABLE UTF8=ACCEPT X-UNKNOWN").await;
    assert_eq!(r[0], "* ENABLED UTF8=ACCEPT");
    let r = c.cmd("u2 ENABLE UTF8=ACCEPT").await;
    assert_eq!(r[0], "* ENABLED", "nothing newly enabled: {r:?}");
    let msg = "Subject: gr\u{fc}\u{df}e\r\n\r\nK\u{e4}se\r\n";
    let r = c
        .cmd(&format!(
            "u3 APPEND INBOX UTF8 (~{{{}+}}\r\n{msg})",
            msg.len()
        ))
        .await;
    assert!(r[0].starts_with("u3 OK [APPENDUID "), "{r:?}");
    assert!(ok(&c.cmd("u4 CREATE Entwürfe").await));
    let r = c.cmd("u5 LIST \"\" Entw*").await;
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"Entwürfe\"");
    c.select("INBOX").await;
    let r = c.cmd("u6 SEARCH BODY käse").await;
    assert_eq!(r[0], "* SEARCH 1");
}
