//! QUOTA (RFC 9208) over TCP: the account is the quota root (`""`), a shared
//! mailbox counts against its owner (root named by the owner's address), SETQUOTA
//! is refused, and APPEND/COPY past the limit answer `NO [OVERQUOTA]`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mailroom_store::{Flags, Rights, RightsOp};

const BOB: &str = "bob@example.org";
const PROJECTS: &str = "\"Shared/bob@example.org/Projects\"";

fn status(r: &[String]) -> &str {
    r.last().and_then(|l| l.split(' ').nth(1)).unwrap_or("")
}

fn tagged(r: &[String]) -> &str {
    r.last().map(String::as_str).unwrap_or("")
}

fn untagged<'a>(r: &'a [String], word: &str) -> Vec<&'a str> {
    r.iter()
        .filter(|l| l.split(' ').nth(1) == Some(word))
        .map(String::as_str)
        .collect()
}

/// A message of exactly `size` octets.
fn message(size: usize) -> Vec<u8> {
    let head = b"From: bob@example.org\r\nSubject: filler\r\n\r\n".to_vec();
    let mut m = head;
    while m.len() + 2 < size {
        m.push(b'x');
    }
    m.extend_from_slice(b"\r\n");
    m.truncate(size);
    m
}

async fn append(c: &mut Client, tag: &str, mailbox: &str, data: &[u8]) -> Vec<String> {
    c.send(format!("{tag} APPEND {mailbox} {{{}+}}\r\n", data.len()).as_bytes())
        .await;
    c.send(data).await;
    c.send(b"\r\n").await;
    c.until_tagged(tag).await
}

#[tokio::test]
async fn capabilities_after_login() {
    let s = start().await;
    let c = s.client().await;
    assert!(!c.greeting.contains("QUOTA"), "{}", c.greeting);
    let mut c = s.login().await;
    let r = c.cmd("c CAPABILITY").await;
    assert!(r[0].contains(" QUOTA QUOTA=RES-STORAGE"), "{r:?}");
    let mut c = s.client().await;
    assert_eq!(status(&c.cmd("a GETQUOTAROOT INBOX").await), "BAD");
    assert_eq!(status(&c.cmd("b GETQUOTA \"\"").await), "BAD");
}

#[tokio::test]
async fn no_quota_means_a_root_without_limits() {
    let s = start().await;
    let mut c = s.login().await;
    let r = c.cmd("a GETQUOTAROOT INBOX").await;
    assert_eq!(status(&r), "OK", "{r:?}");
    assert_eq!(untagged(&r, "QUOTAROOT"), ["* QUOTAROOT \"INBOX\" \"\""]);
    assert!(untagged(&r, "QUOTA").is_empty(), "{r:?}");
    let r = c.cmd("b GETQUOTA \"\"").await;
    assert_eq!(status(&r), "OK", "{r:?}");
    assert!(untagged(&r, "QUOTA").is_empty(), "{r:?}");
}

#[tokio::test]
async fn usage_and_limit_in_kib() {
    let s = start().await;
    s.store.set_quota(USER, Some(10 * 1024)).await.unwrap();
    s.deliver(&message(3000)).await;
    let mut c = s.login().await;
    let r = c.cmd("a GETQUOTAROOT INBOX").await;
    assert_eq!(
        untagged(&r, "QUOTAROOT")
            .into_iter()
            .chain(untagged(&r, "QUOTA"))
            .collect::<Vec<_>>(),
        ["* QUOTAROOT \"INBOX\" \"\"", "* QUOTA \"\" (STORAGE 2 10)"],
        "{r:?}"
    );
    // Every mailbox of the account has the same root; names may be literals.
    c.send(b"b GETQUOTAROOT {4}\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    c.send(b"Sent\r\n").await;
    let r = c.until_tagged("b").await;
    assert_eq!(
        untagged(&r, "QUOTAROOT"),
        ["* QUOTAROOT \"Sent\" \"\""],
        "{r:?}"
    );
    let r = c.cmd("c GETQUOTA \"\"").await;
    assert_eq!(
        untagged(&r, "QUOTA"),
        ["* QUOTA \"\" (STORAGE 2 10)"],
        "{r:?}"
    );
    // The counter follows APPEND and EXPUNGE.
    let r = append(&mut c, "d", "INBOX", &message(4096)).await;
    assert_eq!(status(&r), "OK", "{r:?}");
    let r = c.cmd("e GETQUOTA \"\"").await;
    assert_eq!(
        untagged(&r, "QUOTA"),
        ["* QUOTA \"\" (STORAGE 6 10)"],
        "{r:?}"
    );
    c.select("INBOX").await;
    c.cmd("f STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.cmd("g EXPUNGE").await;
    let r = c.cmd("h GETQUOTA \"\"").await;
    assert_eq!(
        untagged(&r, "QUOTA"),
        ["* QUOTA \"\" (STORAGE 4 10)"],
        "{r:?}"
    );
}

#[tokio::test]
async fn over_quota_is_refused_with_overquota() {
    let s = start().await;
    s.store.set_quota(USER, Some(8000)).await.unwrap();
    s.deliver(&message(5000)).await;
    let mut c = s.login().await;
    let r = append(&mut c, "a", "INBOX", &message(4000)).await;
    assert!(tagged(&r).starts_with("a NO [OVERQUOTA]"), "{r:?}");
    let r = append(&mut c, "b", "INBOX", &message(2000)).await;
    assert_eq!(status(&r), "OK", "{r:?}");
    c.select("INBOX").await;
    let r = c.cmd("c COPY 1 Archive").await;
    assert!(tagged(&r).starts_with("c NO [OVERQUOTA]"), "{r:?}");
    let r = c.cmd("d UID COPY 1:* Archive").await;
    assert!(tagged(&r).starts_with("d NO [OVERQUOTA]"), "{r:?}");
    // A move inside the account takes no more room.
    let r = c.cmd("e MOVE 1 Archive").await;
    assert_eq!(status(&r), "OK", "{r:?}");
    let r = c.cmd("f GETQUOTA \"\"").await;
    assert_eq!(
        untagged(&r, "QUOTA"),
        ["* QUOTA \"\" (STORAGE 6 7)"],
        "{r:?}"
    );
}

#[tokio::test]
async fn setquota_and_bad_input() {
    let s = start().await;
    let mut c = s.login().await;
    for (cmd, want) in [
        ("a SETQUOTA \"\" (STORAGE 100)", "NO [NOPERM]"),
        ("b SETQUOTA \"\" ()", "NO [NOPERM]"),
        ("c SETQUOTA \"\" (MESSAGE 5)", "NO [CANNOT]"),
        ("d SETQUOTA \"\" (STORAGE)", "BAD"),
        ("e SETQUOTA \"\" (STORAGE x)", "BAD"),
        ("f SETQUOTA \"\" STORAGE 5", "BAD"),
        ("g SETQUOTA \"\" (STORAGE 99999999999999999999999)", "BAD"),
        ("h GETQUOTA", "BAD"),
        ("i GETQUOTA nobody@example.org", "NO [NONEXISTENT]"),
        ("j GETQUOTAROOT", "BAD"),
        ("k GETQUOTAROOT Nope", "NO [NONEXISTENT]"),
        (
            "l GETQUOTAROOT \"Shared/nobody@example.org/x\"",
            "NO [NONEXISTENT]",
        ),
        ("m GETQUOTAROOT INBOX extra", "BAD"),
    ] {
        let r = c.cmd(cmd).await;
        let tag = cmd.split(' ').next().unwrap();
        assert!(
            tagged(&r).starts_with(&format!("{tag} {want}")),
            "{cmd}: {r:?}"
        );
    }
    assert_eq!(status(&c.cmd("n NOOP").await), "OK");
}

/// bob shares Projects with joe (the test user) with `rights`; bob has a quota.
async fn shared(rights: &str) -> (TestServer, Client) {
    let s = start().await;
    let bob = s.store.create_account(BOB, "bob pass").await.unwrap();
    s.store.set_quota(BOB, Some(20 * 1024)).await.unwrap();
    let projects = s
        .store
        .create_mailbox(bob.id, "Projects", None)
        .await
        .unwrap();
    s.store
        .append(projects.id, message(5000), Flags::default(), None)
        .await
        .unwrap();
    s.store
        .set_acl(
            projects.id,
            USER,
            RightsOp::Replace,
            Rights::parse(rights).unwrap(),
        )
        .await
        .unwrap();
    let c = s.login().await;
    (s, c)
}

#[tokio::test]
async fn shared_mailboxes_count_against_the_owner() {
    let (s, mut c) = shared("lrsi").await;
    let r = c.cmd(&format!("a GETQUOTAROOT {PROJECTS}")).await;
    assert_eq!(status(&r), "OK", "{r:?}");
    assert_eq!(
        untagged(&r, "QUOTAROOT"),
        [format!("* QUOTAROOT {PROJECTS} \"{BOB}\"")],
        "{r:?}"
    );
    assert_eq!(
        untagged(&r, "QUOTA"),
        [format!("* QUOTA \"{BOB}\" (STORAGE 4 20)")],
        "{r:?}"
    );
    let r = c.cmd(&format!("b GETQUOTA \"{BOB}\"")).await;
    assert_eq!(
        untagged(&r, "QUOTA"),
        [format!("* QUOTA \"{BOB}\" (STORAGE 4 20)")],
        "{r:?}"
    );
    // joe has no quota of his own; bob's limits what joe puts in bob's mailbox.
    let r = append(&mut c, "c", PROJECTS, &message(17 * 1024)).await;
    assert!(tagged(&r).starts_with("c NO [OVERQUOTA]"), "{r:?}");
    s.deliver(&message(17 * 1024)).await;
    c.select("INBOX").await;
    let r = c.cmd(&format!("d COPY 1 {PROJECTS}")).await;
    assert!(tagged(&r).starts_with("d NO [OVERQUOTA]"), "{r:?}");
    let r = c.cmd(&format!("e MOVE 1 {PROJECTS}")).await;
    assert!(tagged(&r).starts_with("e NO [OVERQUOTA]"), "{r:?}");
    let r = append(&mut c, "f", PROJECTS, &message(3000)).await;
    assert_eq!(status(&r), "OK", "{r:?}");
    let r = c.cmd(&format!("g GETQUOTA \"{BOB}\"")).await;
    assert_eq!(
        untagged(&r, "QUOTA"),
        [format!("* QUOTA \"{BOB}\" (STORAGE 7 20)")],
        "{r:?}"
    );
    // joe's own root is untouched by all this.
    let r = c.cmd("h GETQUOTAROOT INBOX").await;
    assert_eq!(untagged(&r, "QUOTAROOT"), ["* QUOTAROOT \"INBOX\" \"\""]);
    assert!(untagged(&r, "QUOTA").is_empty(), "{r:?}");
    // An account that shares nothing with joe is no root joe can see.
    s.store
        .create_account("carol@example.org", "x")
        .await
        .unwrap();
    let r = c.cmd("i GETQUOTA \"carol@example.org\"").await;
    assert!(tagged(&r).starts_with("i NO [NONEXISTENT]"), "{r:?}");
}

#[tokio::test]
async fn shared_quota_root_needs_read() {
    let (_s, mut c) = shared("l").await;
    let r = c.cmd(&format!("a GETQUOTAROOT {PROJECTS}")).await;
    assert!(tagged(&r).starts_with("a NO [NOPERM]"), "{r:?}");
    // Without any right the mailbox is not even there.
    let (_s, mut c) = shared("").await;
    let r = c.cmd(&format!("b GETQUOTAROOT {PROJECTS}")).await;
    assert!(tagged(&r).starts_with("b NO [NONEXISTENT]"), "{r:?}");
    let r = c.cmd(&format!("c GETQUOTA \"{BOB}\"")).await;
    assert!(tagged(&r).starts_with("c NO [NONEXISTENT]"), "{r:?}");
}

#[tokio::test]
async fn status_deleted_storage() {
    let s = start().await;
    s.deliver(&message(3000)).await;
    s.deliver(&message(5000)).await;
    s.deliver(&message(700)).await;
    let mut c = s.login().await;
    let r = c.cmd("a STATUS INBOX (DELETED-STORAGE)").await;
    assert_eq!(
        untagged(&r, "STATUS"),
        ["* STATUS \"INBOX\" (DELETED-STORAGE 0)"],
        "{r:?}"
    );
    c.select("INBOX").await;
    c.cmd("b STORE 2:3 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.cmd("c STATUS INBOX (DELETED DELETED-STORAGE)").await;
    assert_eq!(
        untagged(&r, "STATUS"),
        ["* STATUS \"INBOX\" (DELETED 2 DELETED-STORAGE 5)"],
        "{r:?}"
    );
    c.cmd("d EXPUNGE").await;
    let r = c.cmd("e GETQUOTAROOT INBOX").await;
    assert_eq!(status(&r), "OK", "{r:?}");
    let r = c.cmd("f STATUS INBOX (DELETED-STORAGE)").await;
    assert_eq!(
        untagged(&r, "STATUS"),
        ["* STATUS \"INBOX\" (DELETED-STORAGE 0)"],
        "{r:?}"
    );
}
