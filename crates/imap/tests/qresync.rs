//! QRESYNC (RFC 7162 §3.2) over TCP: ENABLE, VANISHED for expunges, SELECT with
//! the QRESYNC parameter, UID FETCH (CHANGEDSINCE VANISHED).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn status(r: &[String]) -> &str {
    r.last().and_then(|l| l.split(' ').nth(1)).unwrap_or("")
}

fn has(r: &[String], needle: &str) -> bool {
    r.iter().any(|l| l.contains(needle))
}

fn no_expunge(r: &[String]) -> bool {
    !r.iter()
        .any(|l| l.ends_with(" EXPUNGE") || l.starts_with("* VANISHED"))
}

/// The number in `* OK [CODE n]` among the responses.
fn code_value(r: &[String], code: &str) -> u64 {
    let prefix = format!("* OK [{code} ");
    r.iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {code} in {r:?}"))
}

/// A server with five messages (UIDs 1 to 5) in INBOX.
async fn five() -> TestServer {
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
    s
}

/// A logged-in session with QRESYNC enabled.
async fn qresync_client(s: &TestServer) -> Client {
    let mut c = s.login().await;
    let r = c.cmd("q0 ENABLE QRESYNC").await;
    assert_eq!(r, vec!["* ENABLED QRESYNC", "q0 OK Enabled"]);
    c
}

/// Another session deletes and expunges `uids`.
async fn expunge_elsewhere(s: &TestServer, uids: &str) -> Vec<String> {
    let mut other = s.login().await;
    other.select("INBOX").await;
    let r = other
        .cmd(&format!("x1 UID STORE {uids} +FLAGS.SILENT (\\Deleted)"))
        .await;
    assert_eq!(status(&r), "OK", "{r:?}");
    let r = other.cmd("x2 EXPUNGE").await;
    assert_eq!(status(&r), "OK", "{r:?}");
    other.cmd("x3 LOGOUT").await;
    r
}

#[tokio::test]
async fn capability_and_enable_imply_condstore() {
    let s = five().await;
    let mut c = s.login().await;
    let r = c.cmd("c1 CAPABILITY").await;
    assert!(r[0].contains(" CONDSTORE QRESYNC "), "{r:?}");
    let mut c = qresync_client(&s).await;
    let r = c.cmd("c2 ENABLE QRESYNC CONDSTORE").await;
    assert_eq!(r[0], "* ENABLED", "both already on: {r:?}");
    let r = c.select("INBOX").await;
    assert!(has(&r, "* OK [HIGHESTMODSEQ "), "{r:?}");
    let r = c.cmd("c3 FETCH 1 FLAGS").await;
    assert!(r[0].contains(" MODSEQ ("), "{r:?}");
}

#[tokio::test]
async fn qresync_forms_without_enable_are_bad() {
    let s = five().await;
    let mut c = s.login().await;
    let r = c.select("INBOX").await;
    let v = code_value(&r, "UIDVALIDITY");
    let r = c.cmd(&format!("b1 SELECT INBOX (QRESYNC ({v} 1))")).await;
    assert_eq!(status(&r), "BAD", "{r:?}");
    assert!(!has(&r, "[CLOSED]"), "a BAD changes nothing: {r:?}");
    let r = c.cmd("b2 FETCH 1 FLAGS").await;
    assert_eq!(status(&r), "OK", "INBOX is still selected: {r:?}");
    let r = c
        .cmd("b3 UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)")
        .await;
    assert_eq!(status(&r), "BAD", "{r:?}");
    let mut q = qresync_client(&s).await;
    q.select("INBOX").await;
    for bad in [
        "b4 FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)",
        "b5 UID FETCH 1:* FLAGS (VANISHED)",
        "b6 SELECT INBOX (QRESYNC (1 2 1:*))",
        "b7 SELECT INBOX (QRESYNC (1 2 1:5 (1:2 1)))",
        "b8 SELECT INBOX (QRESYNC (0 2))",
    ] {
        let r = q.cmd(bad).await;
        assert_eq!(status(&r), "BAD", "{bad}: {r:?}");
    }
}

#[tokio::test]
async fn expunges_elsewhere_arrive_as_vanished_and_never_during_fetch() {
    let s = five().await;
    let mut q = qresync_client(&s).await;
    q.select("INBOX").await;
    let mut plain = s.login().await;
    plain.select("INBOX").await;
    let r = expunge_elsewhere(&s, "2,4").await;
    assert_eq!(r[..2], ["* 2 EXPUNGE", "* 3 EXPUNGE"], "{r:?}");
    // FETCH, STORE and SEARCH by sequence number may not renumber (RFC 7162 §3.2.10).
    for cmd in [
        "v1 FETCH 1:* (FLAGS)",
        "v2 STORE 1 +FLAGS (\\Seen)",
        "v3 SEARCH ALL",
    ] {
        let r = q.cmd(cmd).await;
        assert!(no_expunge(&r), "{cmd}: {r:?}");
    }
    let r = q.cmd("v4 NOOP").await;
    assert_eq!(r, vec!["* VANISHED 2,4", "v4 OK NOOP completed"]);
    let r = q.cmd("v5 FETCH 1:* (UID)").await;
    assert_eq!(
        r[..3],
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 3)",
            "* 3 FETCH (UID 5)"
        ]
    );
    // The session without QRESYNC still gets EXPUNGE.
    let r = plain.cmd("v6 NOOP").await;
    assert!(
        has(&r, "* 2 EXPUNGE") && has(&r, "* 3 EXPUNGE") && !has(&r, "VANISHED"),
        "{r:?}"
    );
    // During IDLE.
    q.send(b"v7 IDLE\r\n").await;
    assert!(q.read_response().await.unwrap().starts_with("+ "));
    expunge_elsewhere(&s, "5").await;
    // First the \Deleted flag, then the expunge.
    let mut seen = Vec::new();
    loop {
        let line = q.read_response().await.unwrap().trim_end().to_string();
        let done = line.starts_with("* VANISHED");
        seen.push(line);
        if done {
            break;
        }
    }
    assert_eq!(seen.last().unwrap(), "* VANISHED 5", "{seen:?}");
    assert!(!seen.iter().any(|l| l.ends_with("EXPUNGE")), "{seen:?}");
    q.send(b"DONE\r\n").await;
    let r = q.until_tagged("v7").await;
    assert_eq!(status(&r), "OK", "{r:?}");
}

#[tokio::test]
async fn own_expunge_uid_expunge_and_move_report_vanished() {
    let s = five().await;
    let mut q = qresync_client(&s).await;
    q.select("INBOX").await;
    q.cmd("o1 STORE 1:2 +FLAGS.SILENT (\\Deleted)").await;
    let r = q.cmd("o2 EXPUNGE").await;
    assert_eq!(r, vec!["* VANISHED 1:2", "o2 OK EXPUNGE completed"]);
    q.cmd("o3 UID STORE 3:5 +FLAGS.SILENT (\\Deleted)").await;
    let r = q.cmd("o4 UID EXPUNGE 4").await;
    assert_eq!(r, vec!["* VANISHED 4", "o4 OK EXPUNGE completed"]);
    let r = q.cmd("o5 MOVE 1 Trash").await;
    assert!(
        r[0].starts_with("* OK [COPYUID ") && r[1] == "* VANISHED 3" && status(&r) == "OK",
        "{r:?}"
    );
    let r = q.cmd("o6 UID MOVE 5 Trash").await;
    assert_eq!(r[1], "* VANISHED 5", "{r:?}");
    assert!(no_expunge(&q.cmd("o7 NOOP").await));
}

#[tokio::test]
async fn reconnect_with_qresync_select() {
    let s = five().await;
    let mut q = qresync_client(&s).await;
    let r = q.select("INBOX").await;
    let v = code_value(&r, "UIDVALIDITY");
    let m = code_value(&r, "HIGHESTMODSEQ");
    q.cmd("r0 LOGOUT").await;
    // Meanwhile: 3 gets \Flagged, 2 and 5 are expunged.
    let mut other = s.login().await;
    other.select("INBOX").await;
    other.cmd("r1 UID STORE 3 +FLAGS.SILENT (\\Flagged)").await;
    expunge_elsewhere(&s, "2,5").await;

    let mut q = qresync_client(&s).await;
    let r = q.cmd(&format!("r2 SELECT INBOX (QRESYNC ({v} {m}))")).await;
    assert_eq!(status(&r), "OK", "{r:?}");
    assert!(
        has(&r, "* 3 EXISTS") && no_expunge(&r[..r.len() - 4]),
        "{r:?}"
    );
    let n = r.len();
    assert_eq!(r[n - 3], "* VANISHED (EARLIER) 2,5", "{r:?}");
    assert!(
        r[n - 2].starts_with("* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ ("),
        "{r:?}"
    );
    let now = code_value(&r, "HIGHESTMODSEQ");

    // Known UIDs restrict both the VANISHED and the FETCH responses; a new
    // SELECT says [CLOSED] first.
    let r = q
        .cmd(&format!("r3 EXAMINE INBOX (QRESYNC ({v} {m} 1:2))"))
        .await;
    assert_eq!(r[0], "* OK [CLOSED] Previous mailbox closed");
    assert!(
        has(&r, "* VANISHED (EARLIER) 2") && !has(&r, "FETCH"),
        "{r:?}"
    );
    let r = q
        .cmd(&format!("r4 SELECT INBOX (QRESYNC ({v} {m} 3:4))"))
        .await;
    assert!(!has(&r, "VANISHED") && has(&r, "(UID 3 FLAGS"), "{r:?}");

    // Message sequence match data is checked, but the expunge log is complete,
    // so the answer stays exact (as Dovecot's): matching pairs narrow nothing.
    for (tag, data) in [("r5", "(1,3 1,4)"), ("r6", "(1:2 1:2)")] {
        let r = q
            .cmd(&format!(
                "{tag} SELECT INBOX (QRESYNC ({v} {m} 1:5 {data}))"
            ))
            .await;
        assert!(has(&r, "* VANISHED (EARLIER) 2,5"), "{r:?}");
    }
    let r = q
        .cmd(&format!("r6b SELECT INBOX (QRESYNC ({v} {m} 1:5 (1:2 1)))"))
        .await;
    assert_eq!(status(&r), "BAD", "sets of different lengths: {r:?}");

    // Up to date, or another UIDVALIDITY: nothing to report.
    let r = q
        .cmd(&format!("r7 SELECT INBOX (QRESYNC ({v} {now}))"))
        .await;
    assert!(!has(&r, "VANISHED") && !has(&r, "FETCH"), "{r:?}");
    let r = q
        .cmd(&format!("r8 SELECT INBOX (QRESYNC ({} {m}))", v + 1))
        .await;
    assert!(
        status(&r) == "OK" && !has(&r, "VANISHED") && !has(&r, "FETCH"),
        "{r:?}"
    );
}

#[tokio::test]
async fn uid_fetch_changedsince_vanished() {
    let s = five().await;
    let mut q = qresync_client(&s).await;
    let r = q.select("INBOX").await;
    let m = code_value(&r, "HIGHESTMODSEQ");
    let mut other = s.login().await;
    other.select("INBOX").await;
    other.cmd("u0 UID STORE 3 +FLAGS.SILENT (\\Flagged)").await;
    expunge_elsewhere(&s, "2,5").await;
    // Not yet reported to this session: those go out as plain VANISHED at the end.
    let r = q
        .cmd(&format!(
            "u1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m} VANISHED)"
        ))
        .await;
    assert!(!has(&r, "(EARLIER)") && has(&r, "* VANISHED 2,5"), "{r:?}");
    // Now they are known to be gone from the view: VANISHED (EARLIER), with `*`
    // reaching the expunged last message, then the changed messages.
    let r = q
        .cmd(&format!(
            "u2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m} VANISHED)"
        ))
        .await;
    assert_eq!(r[0], "* VANISHED (EARLIER) 2,5", "{r:?}");
    assert!(
        r[1].starts_with("* 2 FETCH (UID 3 FLAGS (\\Flagged") && r.len() == 3,
        "{r:?}"
    );
    let r = q
        .cmd(&format!(
            "u3 UID FETCH 1:3 (FLAGS) (VANISHED CHANGEDSINCE {m})"
        ))
        .await;
    assert_eq!(r[0], "* VANISHED (EARLIER) 2", "{r:?}");
    let r = q
        .cmd(&format!(
            "u4 UID FETCH 4 (FLAGS) (CHANGEDSINCE {m} VANISHED)"
        ))
        .await;
    assert_eq!(r, vec!["u4 OK FETCH completed"]);
}
