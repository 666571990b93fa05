//! Shared mailboxes over TCP: bob shares mailboxes with alice through IMAP ACL
//! (RFC 4314), alice finds them in the shared namespace (RFC 2342) and uses them
//! as far as her rights go.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mailroom_store::{Flags, Rights, RightsOp};

const BOB: &str = "bob@example.org";
const ALICE: &str = "alice@example.org";
const PROJECTS: &str = "\"Shared/bob@example.org/Projects\"";

fn ok(r: &[String]) -> bool {
    r.last().is_some_and(|l| l.split(' ').nth(1) == Some("OK"))
}

fn tagged(r: &[String]) -> &str {
    r.last().map(String::as_str).unwrap_or("")
}

fn has(r: &[String], needle: &str) -> bool {
    r.iter().any(|l| l.contains(needle))
}

fn message(subject: &str) -> Vec<u8> {
    format!("From: bob@example.org\r\nTo: team@example.org\r\nSubject: {subject}\r\n\r\nhello\r\n")
        .into_bytes()
}

/// A server with bob (who has Projects with one message) and alice.
async fn setup() -> (TestServer, i64) {
    let s = start().await;
    let bob = s.store.create_account(BOB, "bob pass").await.unwrap();
    s.store.create_account(ALICE, "alice pass").await.unwrap();
    let projects = s
        .store
        .create_mailbox(bob.id, "Projects", None)
        .await
        .unwrap();
    s.store
        .append(projects.id, message("plan"), Flags::default(), None)
        .await
        .unwrap();
    (s, projects.id)
}

async fn login(s: &TestServer, user: &str, pass: &str) -> Client {
    let mut c = s.client().await;
    let r = c.cmd(&format!("L LOGIN {user} \"{pass}\"")).await;
    assert!(ok(&r), "{r:?}");
    c
}

async fn alice(s: &TestServer) -> Client {
    login(s, ALICE, "alice pass").await
}

async fn bob(s: &TestServer) -> Client {
    login(s, BOB, "bob pass").await
}

async fn grant(s: &TestServer, mailbox: i64, rights: &str) {
    s.store
        .set_acl(
            mailbox,
            ALICE,
            RightsOp::Replace,
            Rights::parse(rights).unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn namespace_and_capabilities() {
    let (s, _) = setup().await;
    let mut a = alice(&s).await;
    let r = a.cmd("n NAMESPACE").await;
    assert_eq!(
        r,
        vec![
            "* NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL".to_string(),
            "n OK Namespace completed".to_string()
        ]
    );
    let r = a.cmd("c CAPABILITY").await;
    assert!(r[0].contains(" ACL RIGHTS=texk"), "{r:?}");
    // Nothing shared yet: no Shared placeholder either (Dovecot's list=children).
    let r = a.cmd("l LIST \"\" *").await;
    assert!(ok(&r) && !has(&r, "Shared"), "{r:?}");
}

#[tokio::test]
async fn bob_shares_with_setacl_and_alice_lists_selects_fetches() {
    let (s, _) = setup().await;
    let mut b = bob(&s).await;
    let r = b.cmd("s1 SETACL Projects alice@example.org lrs").await;
    assert_eq!(tagged(&r), "s1 OK SETACL completed");
    let r = b.cmd("g1 GETACL Projects").await;
    assert_eq!(
        r[0],
        "* ACL \"Projects\" bob@example.org lrswipkxteacd alice@example.org lrs"
    );

    let mut a = alice(&s).await;
    let r = a.cmd("l1 LIST \"\" *").await;
    assert!(ok(&r), "{r:?}");
    assert!(
        r.contains(&"* LIST (\\Noselect \\HasChildren) \"/\" \"Shared\"".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(
            &"* LIST (\\Noselect \\HasChildren) \"/\" \"Shared/bob@example.org\"".to_string()
        ),
        "{r:?}"
    );
    assert!(
        r.contains(&format!("* LIST (\\HasNoChildren) \"/\" {PROJECTS}")),
        "{r:?}"
    );
    assert!(
        !has(&r, "Shared/bob@example.org/INBOX"),
        "INBOX is not shared: {r:?}"
    );
    // % stops at the namespace level.
    let r = a.cmd("l2 LIST \"\" %").await;
    assert!(has(&r, "\"Shared\"") && !has(&r, "Shared/"), "{r:?}");
    let r = a.cmd("l3 LIST \"Shared/\" %").await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(has(&r, "\"Shared/bob@example.org\""), "{r:?}");
    // LIST-STATUS and STATUS on the shared mailbox.
    let r = a
        .cmd("l4 LIST \"\" \"Shared/*\" RETURN (STATUS (MESSAGES UNSEEN))")
        .await;
    assert!(
        r.contains(&format!("* STATUS {PROJECTS} (MESSAGES 1 UNSEEN 1)")),
        "{r:?}"
    );
    let r = a.cmd(&format!("st STATUS {PROJECTS} (MESSAGES)")).await;
    assert_eq!(r[0], format!("* STATUS {PROJECTS} (MESSAGES 1)"));
    // Subscriptions hold the shared name.
    assert!(ok(&a.cmd(&format!("sb SUBSCRIBE {PROJECTS}")).await));
    let r = a.cmd("ls LSUB \"\" *").await;
    assert!(r.contains(&format!("* LSUB () \"/\" {PROJECTS}")), "{r:?}");
    let r = a.cmd("le LIST (SUBSCRIBED) \"\" \"Shared/*\"").await;
    assert!(has(&r, "\\Subscribed") && has(&r, "Projects"), "{r:?}");

    // s is a right to change messages: a read-write selection, \Seen permitted only.
    let r = a.cmd(&format!("se SELECT {PROJECTS}")).await;
    assert_eq!(tagged(&r), "se OK [READ-WRITE] SELECT completed", "{r:?}");
    assert!(has(&r, "* 1 EXISTS"), "{r:?}");
    assert!(has(&r, "* OK [PERMANENTFLAGS (\\Seen)]"), "{r:?}");
    let r = a.cmd("f1 FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])").await;
    assert!(ok(&r) && has(&r, "Subject: plan"), "{r:?}");
    let r = a.cmd("f2 FETCH 1 FLAGS").await;
    assert!(
        has(&r, "FLAGS (\\Seen"),
        "a non-peek fetch sets \\Seen with s: {r:?}"
    );
    let r = a.cmd("m1 MYRIGHTS Shared/bob@example.org/Projects").await;
    assert_eq!(r[0], format!("* MYRIGHTS {PROJECTS} lrs"));
    // Not an administrator of it.
    let r = a.cmd(&format!("g2 GETACL {PROJECTS}")).await;
    assert!(tagged(&r).starts_with("g2 NO [NOPERM]"), "{r:?}");
    let r = a
        .cmd(&format!("s2 SETACL {PROJECTS} alice@example.org +a"))
        .await;
    assert!(tagged(&r).starts_with("s2 NO [NOPERM]"), "{r:?}");
}

#[tokio::test]
async fn store_append_and_expunge_follow_the_rights() {
    let (s, projects) = setup().await;
    grant(&s, projects, "lrs").await;
    let mut a = alice(&s).await;
    assert!(ok(&a.cmd("en ENABLE IMAP4rev2").await));
    let r = a.select(PROJECTS).await;
    assert!(r.contains(&format!("* LIST () \"/\" {PROJECTS}")), "{r:?}");
    // No w: a STORE of only other flags is refused...
    let r = a.cmd("w1 STORE 1 +FLAGS (\\Flagged)").await;
    assert!(tagged(&r).starts_with("w1 NO [NOPERM]"), "{r:?}");
    // ...one naming a flag she may change does that much (RFC 4314 §4).
    let r = a.cmd("w2 STORE 1 +FLAGS (\\Seen \\Flagged $Label)").await;
    assert!(ok(&r) && has(&r, "* 1 FETCH (FLAGS (\\Seen))"), "{r:?}");
    let r = a.cmd("t1 STORE 1 +FLAGS (\\Deleted)").await;
    assert!(tagged(&r).starts_with("t1 NO [NOPERM]"), "{r:?}");
    let r = a.cmd("e1 EXPUNGE").await;
    assert!(tagged(&r).starts_with("e1 NO [NOPERM]"), "{r:?}");
    // No i: no APPEND.
    let r = a
        .cmd(&format!("a1 APPEND {PROJECTS} {{5+}}\r\nhello"))
        .await;
    assert!(tagged(&r).starts_with("a1 NO [NOPERM]"), "{r:?}");

    // Bob grants more: w, i, t and e.
    grant(&s, projects, "lrswite").await;
    let r = a.cmd("w3 STORE 1 +FLAGS (\\Flagged)").await;
    assert!(ok(&r) && has(&r, "FLAGS (\\Flagged \\Seen)"), "{r:?}");
    let r = a
        .cmd(&format!(
            "a2 APPEND {PROJECTS} (\\Seen \\Answered) {{5+}}\r\nhello"
        ))
        .await;
    assert!(tagged(&r).starts_with("a2 OK [APPENDUID "), "{r:?}");
    assert!(has(&r, "* 2 EXISTS"), "{r:?}");
    let r = a.cmd("t2 STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    assert!(ok(&r), "{r:?}");
    let r = a.cmd("e2 EXPUNGE").await;
    assert!(ok(&r) && has(&r, "* 2 EXPUNGE"), "{r:?}");
    // Flags are shared: bob sees what alice set.
    let mut b = bob(&s).await;
    b.select("Projects").await;
    let r = b.cmd("f FETCH 1 FLAGS").await;
    assert!(has(&r, "FLAGS (\\Flagged \\Seen"), "{r:?}");

    // Only i on APPEND: the flags she may not set are dropped.
    grant(&s, projects, "lri").await;
    let r = a
        .cmd(&format!(
            "a3 APPEND {PROJECTS} (\\Seen \\Flagged) {{5+}}\r\nhello"
        ))
        .await;
    assert!(ok(&r), "{r:?}");
    let r = a.cmd("f3 UID FETCH 3 FLAGS").await;
    assert!(has(&r, "FLAGS ()"), "{r:?}");
}

#[tokio::test]
async fn read_only_without_rights_to_change_and_hidden_without_lookup() {
    let (s, projects) = setup().await;
    let mut a = alice(&s).await;
    // Nothing granted: the mailbox does not exist for alice.
    for cmd in [
        format!("x1 SELECT {PROJECTS}"),
        format!("x2 STATUS {PROJECTS} (MESSAGES)"),
        format!("x3 MYRIGHTS {PROJECTS}"),
        format!("x4 GETACL {PROJECTS}"),
        "x5 SELECT \"Shared/nobody@example.org/Projects\"".to_string(),
        "x6 SELECT \"Shared/bob@example.org/Nothing\"".to_string(),
    ] {
        let r = a.cmd(&cmd).await;
        assert!(tagged(&r).contains(" NO [NONEXISTENT]"), "{cmd}: {r:?}");
    }
    // APPEND and COPY give no [TRYCREATE] hint in the shared namespace.
    let r = a.cmd(&format!("x9 APPEND {PROJECTS} {{1+}}\r\nx")).await;
    assert!(tagged(&r).starts_with("x9 NO [NONEXISTENT]"), "{r:?}");
    let r = a
        .cmd("x10 APPEND \"Shared/bob@example.org/Nothing\" {1+}\r\nx")
        .await;
    assert!(tagged(&r).starts_with("x10 NO [NONEXISTENT]"), "{r:?}");
    let r = a.cmd("x11 APPEND Nothing {1+}\r\nx").await;
    assert!(tagged(&r).starts_with("x11 NO [TRYCREATE]"), "{r:?}");
    let r = a.cmd("x7 SELECT Shared").await;
    assert!(tagged(&r).contains(" NO [CANNOT]"), "{r:?}");
    let r = a.cmd("x8 COPY 1 x").await;
    assert!(tagged(&r).contains(" BAD"), "{r:?}");

    // r without l: usable, but not listed.
    grant(&s, projects, "r").await;
    let r = a.cmd("l0 LIST \"\" *").await;
    assert!(!has(&r, "Projects"), "{r:?}");
    let r = a.cmd(&format!("r0 EXAMINE {PROJECTS}")).await;
    assert!(ok(&r), "{r:?}");

    // l without r: known, not readable.
    grant(&s, projects, "l").await;
    let r = a.cmd(&format!("y1 SELECT {PROJECTS}")).await;
    assert!(tagged(&r).starts_with("y1 NO [NOPERM]"), "{r:?}");
    let r = a.cmd(&format!("y2 STATUS {PROJECTS} (MESSAGES)")).await;
    assert!(tagged(&r).starts_with("y2 NO [NOPERM]"), "{r:?}");
    let r = a
        .cmd("y3 LIST \"\" \"Shared/*\" RETURN (STATUS (MESSAGES))")
        .await;
    assert!(has(&r, "Projects") && !has(&r, "* STATUS"), "{r:?}");

    // l and r: a read-only selection (no s, w, t or e), as Dovecot answers it.
    grant(&s, projects, "lr").await;
    let r = a.cmd(&format!("z1 SELECT {PROJECTS}")).await;
    assert_eq!(tagged(&r), "z1 OK [READ-ONLY] SELECT completed", "{r:?}");
    assert!(has(&r, "[PERMANENTFLAGS ()]"), "{r:?}");
    let r = a.cmd("z2 FETCH 1 BODY[TEXT]").await;
    assert!(ok(&r) && !has(&r, "\\Seen"), "{r:?}");
    let r = a.cmd("z3 FETCH 1 FLAGS").await;
    assert!(has(&r, "FLAGS ()"), "no \\Seen without s: {r:?}");
    let r = a.cmd("z4 STORE 1 +FLAGS (\\Seen)").await;
    assert!(tagged(&r).starts_with("z4 NO [NOPERM]"), "{r:?}");
    let r = a.cmd("z5 COPY 1 INBOX").await;
    assert!(ok(&r), "reading is enough to copy out: {r:?}");
    let r = a.cmd("z6 MOVE 1 INBOX").await;
    assert!(tagged(&r).starts_with("z6 NO [NOPERM]"), "{r:?}");
    // Copying in needs i.
    let r = a.cmd("u UNSELECT").await;
    assert!(ok(&r));
    a.select("INBOX").await;
    let r = a.cmd(&format!("z7 COPY 1 {PROJECTS}")).await;
    assert!(tagged(&r).starts_with("z7 NO [NOPERM]"), "{r:?}");
    grant(&s, projects, "lri").await;
    assert!(ok(&a.cmd("fl STORE 1 +FLAGS (\\Flagged \\Seen)").await));
    let r = a.cmd(&format!("z8 COPY 1 {PROJECTS}")).await;
    assert!(tagged(&r).starts_with("z8 OK [COPYUID "), "{r:?}");
    // Without s and w the copy does not carry her flags into bob's mailbox.
    let index = s.store.message_index(projects).await.unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(index[1].flags, Flags::default());
    // EXAMINE stays read-only with every right.
    grant(&s, projects, "lrswipkxte").await;
    let r = a.cmd(&format!("z9 EXAMINE {PROJECTS}")).await;
    assert_eq!(tagged(&r), "z9 OK [READ-ONLY] EXAMINE completed", "{r:?}");
}

#[tokio::test]
async fn idle_on_a_shared_mailbox_sees_bobs_delivery_and_flags() {
    let (s, _) = setup().await;
    let mut b = bob(&s).await;
    assert!(ok(&b.cmd("s SETACL INBOX alice@example.org lrs").await));
    let mut a = alice(&s).await;
    let r = a.select("\"Shared/bob@example.org/INBOX\"").await;
    assert!(has(&r, "* 0 EXISTS"), "{r:?}");
    a.send(b"i IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with("+ "));
    let bob_id = s.store.account(BOB).await.unwrap().unwrap().id;
    s.store.deliver(message("new"), &[bob_id]).await.unwrap();
    assert_eq!(a.read_response().await.unwrap().trim_end(), "* 1 EXISTS");
    assert_eq!(a.read_response().await.unwrap().trim_end(), "* 1 RECENT");
    // Bob flags it in his own session: alice's IDLE hears of it.
    b.select("INBOX").await;
    assert!(ok(&b.cmd("f STORE 1 +FLAGS.SILENT (\\Flagged)").await));
    let line = a.read_response().await.unwrap();
    assert_eq!(
        line.trim_end(),
        "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"
    );
    a.send(b"DONE\r\n").await;
    assert!(ok(&a.until_tagged("i").await));
}

#[tokio::test]
async fn revoking_makes_it_disappear() {
    let (s, _) = setup().await;
    let mut b = bob(&s).await;
    assert!(ok(&b.cmd("s SETACL Projects alice@example.org lr").await));
    let mut a = alice(&s).await;
    assert!(has(&a.cmd("l1 LIST \"\" *").await, "Projects"));
    a.select(PROJECTS).await;
    let r = b.cmd("d DELETEACL Projects alice@example.org").await;
    assert_eq!(tagged(&r), "d OK DELETEACL completed");
    let r = b.cmd("g GETACL Projects").await;
    assert_eq!(r[0], "* ACL \"Projects\" bob@example.org lrswipkxteacd");
    let r = a.cmd("l2 LIST \"\" *").await;
    assert!(ok(&r) && !has(&r, "Shared"), "{r:?}");
    let r = a.cmd(&format!("x SELECT {PROJECTS}")).await;
    assert!(tagged(&r).contains("NO [NONEXISTENT]"), "{r:?}");
    // Deleting an entry that is not there is no error.
    let r = b.cmd("d2 DELETEACL Projects alice@example.org").await;
    assert!(ok(&r), "{r:?}");
}

#[tokio::test]
async fn setacl_identifiers_and_errors() {
    let (s, _) = setup().await;
    s.store
        .create_account("carol@example.org", "carol pass")
        .await
        .unwrap();
    let mut b = bob(&s).await;
    let r = b.cmd("e1 SETACL Projects nobody@example.org lr").await;
    assert!(tagged(&r).starts_with("e1 NO [NONEXISTENT]"), "{r:?}");
    let r = b.cmd("e2 SETACL Projects -alice@example.org lr").await;
    assert!(
        tagged(&r).starts_with("e2 NO [CANNOT]") && tagged(&r).contains("negative rights"),
        "{r:?}"
    );
    let r = b.cmd("e3 SETACL Projects alice@example.org lrq").await;
    assert!(tagged(&r).starts_with("e3 BAD"), "{r:?}");
    let r = b.cmd("e4 SETACL Projects bob@example.org lr").await;
    assert!(tagged(&r).starts_with("e4 NO [CANNOT]"), "{r:?}");
    let r = b.cmd("e5 SETACL Nothing alice@example.org lr").await;
    assert!(tagged(&r).starts_with("e5 NO [NONEXISTENT]"), "{r:?}");
    // The legacy letters: c = k + x, d = e + t; answers add them back.
    assert!(ok(&b.cmd("s1 SETACL Projects anyone lrc").await));
    assert!(ok(&b.cmd("s2 SETACL Projects authenticated +d").await));
    let r = b.cmd("g GETACL Projects").await;
    assert_eq!(
        r[0],
        "* ACL \"Projects\" bob@example.org lrswipkxteacd anyone lrkxc authenticated ted"
    );
    let r = b.cmd("m MYRIGHTS Projects").await;
    assert_eq!(r[0], "* MYRIGHTS \"Projects\" lrswipkxteacd");
    let r = b.cmd("r1 LISTRIGHTS Projects alice@example.org").await;
    assert_eq!(
        r[0],
        "* LISTRIGHTS \"Projects\" alice@example.org \"\" l r s w i p k x t e a c d"
    );
    let r = b.cmd("r2 LISTRIGHTS Projects bob@example.org").await;
    assert_eq!(
        r[0],
        "* LISTRIGHTS \"Projects\" bob@example.org lrswipkxteacd"
    );
    let r = b.cmd("r3 LISTRIGHTS Projects nobody@example.org").await;
    assert!(tagged(&r).starts_with("r3 NO"), "{r:?}");

    // alice via anyone/authenticated: she may now see it; with a she administers.
    let mut a = alice(&s).await;
    let r = a.cmd(&format!("m MYRIGHTS {PROJECTS}")).await;
    assert_eq!(r[0], format!("* MYRIGHTS {PROJECTS} lrkxtecd"));
    assert!(ok(&b.cmd("s3 SETACL Projects alice@example.org a").await));
    let r = a
        .cmd(&format!("s SETACL {PROJECTS} carol@example.org lr"))
        .await;
    assert!(ok(&r), "{r:?}");
    let r = a.cmd(&format!("g GETACL {PROJECTS}")).await;
    assert!(has(&r, "carol@example.org lr"), "{r:?}");
    let mut c = login(&s, "carol@example.org", "carol pass").await;
    let r = c.cmd("l LIST \"\" Shared/*").await;
    assert!(has(&r, "Shared/bob@example.org/Projects"), "{r:?}");
}

#[tokio::test]
async fn create_delete_and_rename_inside_a_shared_mailbox() {
    let (s, projects) = setup().await;
    let mut a = alice(&s).await;
    grant(&s, projects, "lr").await;
    let sub = "\"Shared/bob@example.org/Projects/2026\"";
    let r = a.cmd(&format!("c1 CREATE {sub}")).await;
    assert!(tagged(&r).starts_with("c1 NO [NOPERM]"), "{r:?}");
    let r = a.cmd("c2 CREATE \"Shared/bob@example.org/Top\"").await;
    assert!(tagged(&r).starts_with("c2 NO [NOPERM]"), "{r:?}");
    let r = a.cmd("c3 CREATE Shared").await;
    assert!(tagged(&r).starts_with("c3 NO [CANNOT]"), "{r:?}");
    grant(&s, projects, "lrk").await;
    let r = a.cmd(&format!("c4 CREATE {sub}")).await;
    assert!(ok(&r), "{r:?}");
    // In bob's account, shared as its parent is.
    let bob_id = s.store.account(BOB).await.unwrap().unwrap().id;
    assert!(
        s.store
            .mailbox(bob_id, "Projects/2026")
            .await
            .unwrap()
            .is_some()
    );
    let r = a.cmd("l LIST \"\" Shared/*").await;
    assert!(
        r.contains(&format!("* LIST (\\HasNoChildren) \"/\" {sub}")),
        "{r:?}"
    );
    assert!(
        has(
            &r,
            "(\\HasChildren) \"/\" \"Shared/bob@example.org/Projects\""
        ),
        "{r:?}"
    );
    // DELETE and RENAME need x.
    let r = a.cmd(&format!("d1 DELETE {sub}")).await;
    assert!(tagged(&r).starts_with("d1 NO [NOPERM]"), "{r:?}");
    let r = a
        .cmd(&format!(
            "r1 RENAME {sub} \"Shared/bob@example.org/Projects/2027\""
        ))
        .await;
    assert!(tagged(&r).starts_with("r1 NO [NOPERM]"), "{r:?}");
    grant(&s, projects, "lrkx").await;
    s.store
        .set_acl(
            s.store
                .mailbox(bob_id, "Projects/2026")
                .await
                .unwrap()
                .unwrap()
                .id,
            ALICE,
            RightsOp::Replace,
            Rights::parse("lrkx").unwrap(),
        )
        .await
        .unwrap();
    let r = a.cmd(&format!("r2 RENAME {sub} Mine")).await;
    assert!(tagged(&r).starts_with("r2 NO [CANNOT]"), "{r:?}");
    let r = a
        .cmd(&format!(
            "r3 RENAME {sub} \"Shared/bob@example.org/Projects/2027\""
        ))
        .await;
    assert!(ok(&r), "{r:?}");
    let r = a
        .cmd("d2 DELETE \"Shared/bob@example.org/Projects/2027\"")
        .await;
    assert!(ok(&r), "{r:?}");
    assert!(
        s.store
            .mailbox(bob_id, "Projects/2027")
            .await
            .unwrap()
            .is_none()
    );
    // Her own mailboxes are hers as before.
    assert!(ok(&a.cmd("o1 CREATE Work").await));
    let r = a.cmd("o2 MYRIGHTS Work").await;
    assert_eq!(r[0], "* MYRIGHTS \"Work\" lrswipkxteacd");
    assert!(ok(&a.cmd("o3 DELETE Work").await));
}

/// bob shares only `Projects/Q1`: alice's `%` listing of bob's level still shows
/// `Projects`, as `\Noselect`, because a level of hierarchy that matches `%` is
/// returned even when it is not a selectable mailbox for her (RFC 3501 §6.3.8,
/// RFC 9051 §6.3.9); `*` lists Q1 and the placeholder above it.
#[tokio::test]
async fn a_shared_child_shows_its_unshared_parent_as_noselect() {
    let (s, _) = setup().await;
    let bob_id = s.store.account(BOB).await.unwrap().unwrap().id;
    let q1 = s
        .store
        .create_mailbox(bob_id, "Projects/Q1", None)
        .await
        .unwrap();
    grant(&s, q1.id, "lr").await;
    let mut a = alice(&s).await;
    let r = a.cmd("l1 LIST \"\" \"Shared/bob@example.org/%\"").await;
    assert!(ok(&r), "{r:?}");
    let lists: Vec<&String> = r.iter().filter(|l| l.starts_with("* LIST")).collect();
    assert_eq!(lists.len(), 1, "{r:?}");
    assert!(
        lists[0].contains("\\Noselect")
            && lists[0].ends_with("\"Shared/bob@example.org/Projects\""),
        "{r:?}"
    );
    let r = a.cmd("l2 LIST \"\" \"Shared/*\"").await;
    assert!(has(&r, "\"Shared/bob@example.org/Projects/Q1\""), "{r:?}");
    assert!(has(&r, "\"Shared/bob@example.org/Projects\""), "{r:?}");
    let r = a.cmd("l3 SELECT \"Shared/bob@example.org/Projects\"").await;
    assert!(tagged(&r).contains("NO"), "{r:?}");
    let r = a
        .cmd("l4 SELECT \"Shared/bob@example.org/Projects/Q1\"")
        .await;
    assert!(ok(&r), "{r:?}");
}

/// `Shared` is the shared namespace's root: nobody can create a personal mailbox
/// there, which would be unreachable.
#[tokio::test]
async fn the_shared_root_is_not_a_personal_mailbox() {
    let (s, _) = setup().await;
    let mut a = alice(&s).await;
    for name in ["Shared", "Shared/mine", "Shared/bob@example.org/New"] {
        let r = a.cmd(&format!("c CREATE \"{name}\"")).await;
        assert!(tagged(&r).contains(" NO "), "CREATE {name}: {r:?}");
    }
    let r = a.cmd("r RENAME INBOX \"Shared/x\"").await;
    assert!(tagged(&r).contains(" NO "), "{r:?}");
}
