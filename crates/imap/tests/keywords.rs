//! Keywords in `* FLAGS` and `* OK [PERMANENTFLAGS]` over TCP (RFC 9051 §7.3.5,
//! §6.3.2): SELECT lists the keywords in use in the mailbox, and a keyword new to
//! the session is announced before the FETCH that shows it.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mailroom_store::{Rights, RightsOp};

const SYSTEM: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

fn status(r: &[String]) -> &str {
    r.last().and_then(|l| l.split(' ').nth(1)).unwrap_or("")
}

/// The index of the first response starting with `prefix`.
fn at(r: &[String], prefix: &str) -> usize {
    r.iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {r:?}"))
}

async fn two_messages() -> TestServer {
    let s = start().await;
    s.deliver(&data("msg_01.txt")).await;
    s.deliver(&data("msg_02.txt")).await;
    s
}

#[tokio::test]
async fn select_lists_the_keywords_in_use() {
    let s = two_messages().await;
    let mut c = s.login().await;
    c.select("INBOX").await;
    let r = c.cmd("k1 UID STORE 1 +FLAGS.SILENT (Tag2 $Work)").await;
    assert_eq!(status(&r), "OK");
    let mut d = s.login().await;
    let r = d.select("INBOX").await;
    assert_eq!(r[0], format!("* FLAGS ({SYSTEM} $Work Tag2)"), "{r:?}");
    assert!(
        r[1].starts_with(&format!("* OK [PERMANENTFLAGS ({SYSTEM} $Work Tag2 \\*)]")),
        "{r:?}"
    );
    let r = d.cmd("k2 EXAMINE INBOX").await;
    assert_eq!(r[1], format!("* FLAGS ({SYSTEM} $Work Tag2)"), "{r:?}");
    assert!(r[2].starts_with("* OK [PERMANENTFLAGS ()]"), "{r:?}");
}

#[tokio::test]
async fn a_new_keyword_is_announced_before_its_fetch() {
    let s = two_messages().await;
    let mut a = s.login().await;
    a.select("INBOX").await;
    let mut b = s.login().await;
    b.select("INBOX").await;

    // Another session's STORE: FLAGS and PERMANENTFLAGS, then the FETCH.
    b.cmd("b1 UID STORE 2 +FLAGS.SILENT (Fresh)").await;
    let r = a.cmd("a1 NOOP").await;
    let flags = at(&r, &format!("* FLAGS ({SYSTEM} Fresh)"));
    let permanent = at(&r, &format!("* OK [PERMANENTFLAGS ({SYSTEM} Fresh \\*)]"));
    let fetch = at(&r, "* 2 FETCH (UID 2 FLAGS (");
    assert!(flags < permanent && permanent < fetch, "{r:?}");

    // A keyword the session knows (in any case) is not announced again.
    b.cmd("b2 UID STORE 1 +FLAGS.SILENT (fresh)").await;
    let r = a.cmd("a2 NOOP").await;
    assert!(!r.iter().any(|l| l.starts_with("* FLAGS")), "{r:?}");
    assert!(r[0].starts_with("* 1 FETCH (UID 1 FLAGS ("), "{r:?}");

    // Its own STORE, .SILENT included (as Dovecot).
    let r = a.cmd("a3 STORE 1 +FLAGS.SILENT (Mine)").await;
    assert_eq!(r[0], format!("* FLAGS ({SYSTEM} Fresh Mine)"), "{r:?}");

    // A new message bringing a keyword: FLAGS before EXISTS.
    let r = b.cmd("b4 APPEND INBOX (Arrived) {10+}\r\nSubject: x").await;
    assert_eq!(status(&r), "OK", "{r:?}");
    let r = a.cmd("a5 NOOP").await;
    let flags = at(&r, &format!("* FLAGS ({SYSTEM} Arrived Fresh Mine)"));
    assert!(flags < at(&r, "* 3 EXISTS"), "{r:?}");

    // During IDLE.
    a.send(b"a4 IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with("+ "));
    b.cmd("b3 UID STORE 2 +FLAGS.SILENT (Later)").await;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains(" FETCH ")) {
        lines.push(a.read_response().await.unwrap().trim_end().to_string());
    }
    assert_eq!(
        lines[0],
        format!("* FLAGS ({SYSTEM} Arrived Fresh Later Mine)")
    );
    assert!(lines[1].starts_with("* OK [PERMANENTFLAGS ("), "{lines:?}");
    a.send(b"DONE\r\n").await;
    assert_eq!(status(&a.until_tagged("a4").await), "OK");
}

#[tokio::test]
async fn shared_mailbox_keeps_its_rights_limited_permanentflags() {
    let s = two_messages().await;
    s.store
        .create_account("alice@example.org", "alice pass")
        .await
        .unwrap();
    let inbox = s
        .store
        .mailbox(s.account.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    s.store
        .set_acl(
            inbox.id,
            "alice@example.org",
            RightsOp::Replace,
            Rights::parse("lrs").unwrap(),
        )
        .await
        .unwrap();
    let mut owner = s.login().await;
    owner.select("INBOX").await;
    owner.cmd("o1 STORE 1 +FLAGS.SILENT ($Work)").await;

    let mut alice = s.client().await;
    alice.cmd("L LOGIN alice@example.org \"alice pass\"").await;
    let r = alice
        .cmd("s1 SELECT \"Shared/joe@example.org/INBOX\"")
        .await;
    assert_eq!(status(&r), "OK", "{r:?}");
    assert_eq!(r[0], format!("* FLAGS ({SYSTEM} $Work)"), "{r:?}");
    assert!(r[1].starts_with("* OK [PERMANENTFLAGS (\\Seen)]"), "{r:?}");

    // A new keyword: the FLAGS update comes with the same limited PERMANENTFLAGS.
    owner.cmd("o2 STORE 2 +FLAGS.SILENT (Tag2)").await;
    let r = alice.cmd("s2 NOOP").await;
    assert_eq!(r[0], format!("* FLAGS ({SYSTEM} $Work Tag2)"), "{r:?}");
    assert!(r[1].starts_with("* OK [PERMANENTFLAGS (\\Seen)]"), "{r:?}");
    assert!(r[2].starts_with("* 2 FETCH (UID 2 FLAGS ("), "{r:?}");
}
