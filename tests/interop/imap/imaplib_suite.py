#!/usr/bin/env python3
"""Drive a running mailroom IMAP server with Python's stdlib imaplib.

Environment: IMAP_HOST (127.0.0.1), IMAP_PORT (1143), IMAP_USER (joe@example.org),
IMAP_PASS ("secret pass"). The account must exist; its INBOX may hold messages.
Exits non-zero on the first failed check.
"""

import imaplib
import os
import re
import socket
import sys
import time

HOST = os.environ.get("IMAP_HOST", "127.0.0.1")
PORT = int(os.environ.get("IMAP_PORT", "1143"))
USER = os.environ.get("IMAP_USER", "joe@example.org")
PASS = os.environ.get("IMAP_PASS", "secret pass")
PREFIX = "imaplib-%d" % os.getpid()

# Commands imaplib does not know by name (it only checks the state).
for _name in ("ID", "MOVE", "UNSELECT", "ENABLE"):
    imaplib.Commands.setdefault(_name, ("NONAUTH", "AUTH", "SELECTED"))

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Joe <joe@example.org>\r\n"
    b"Subject: interop test \xc3\xa4\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <interop@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Joe, this is the imaplib interop body.\r\n"
)


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def flat(data):
    """imaplib's FETCH data (bytes and (prefix, literal) tuples) as one bytes value."""
    out = b""
    for item in data:
        if isinstance(item, tuple):
            out += b"".join(item)
        elif item is not None:
            out += item
    return out


def ok(result, what):
    typ, data = result
    check(typ == "OK", "%s -> %s %r" % (what, typ, data[:2] if data else data))
    return data


def main():
    m = imaplib.IMAP4(HOST, PORT)
    check("IMAP4REV1" in m.capabilities, "greeting capabilities")
    ok(m.login(USER, PASS), "LOGIN")
    typ, caps = m.capability()
    caps = caps[0].decode().upper().split()
    for cap in ["IMAP4REV2", "IDLE", "UIDPLUS", "MOVE", "LIST-EXTENDED", "SPECIAL-USE", "ESEARCH", "BINARY"]:
        check(cap in caps, "capability " + cap)
    ok(m._simple_command("ID", '("name" "imaplib")'), "ID")
    ok(m.namespace(), "NAMESPACE")

    box = PREFIX + "/Sub"
    ok(m.create(box), "CREATE " + box)
    data = ok(m.list('""', PREFIX + "*"), "LIST")
    check(any(b'"' + box.encode() + b'"' in line for line in data), "LIST shows the new mailbox")
    check(any(b"\\HasChildren" in line for line in data), "\\HasChildren on the parent")
    ok(m.subscribe(box), "SUBSCRIBE")
    data = ok(m.lsub('""', PREFIX + "*"), "LSUB")
    check(any(box.encode() in line for line in data if line), "LSUB shows it")
    ok(m.unsubscribe(box), "UNSUBSCRIBE")

    typ, data = m.append(box, "(\\Flagged)", imaplib.Time2Internaldate(time.time()), MESSAGE)
    check(typ == "OK" and b"APPENDUID" in data[0], "APPEND with APPENDUID")
    ok(m.append(box, None, None, MESSAGE.replace(b"Joe,", b"Joseph,")), "second APPEND")

    data = ok(m.status(box, "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"), "STATUS")
    check(b"MESSAGES 2" in data[0] and b"UIDNEXT 3" in data[0], "STATUS counts")

    typ, data = m.select(box)
    check(typ == "OK" and data[0] == b"2", "SELECT returns EXISTS 2")
    check(m.untagged_responses.get("UIDVALIDITY") is not None, "UIDVALIDITY response")

    typ, data = m.fetch("1", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    check(typ == "OK" and b"\\Flagged" in flat(data) and b"ENVELOPE" in flat(data), "FETCH attributes")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    check(typ == "OK" and data[0][1] == MESSAGE, "BODY.PEEK[] returns the exact bytes")
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    check(b"Subject: interop test" in data[0][1], "HEADER.FIELDS")
    typ, data = m.fetch("1", "(BODY[TEXT]<0.5>)")
    check(data[0][1] == b"Hello", "partial BODY[TEXT]<0.5>")
    typ, data = m.fetch("1", "(FLAGS)")
    check(b"\\Seen" in flat(data), "non-PEEK fetch set \\Seen")
    typ, data = m.fetch("2", "(BINARY.PEEK[1] BINARY.SIZE[1])")
    check(typ == "OK" and b"BINARY.SIZE[1]" in flat(data), "BINARY")

    typ, data = m.store("2", "+FLAGS", "(\\Answered $Label1)")
    check(typ == "OK" and b"$Label1" in flat(data), "STORE +FLAGS")
    typ, data = m.uid("STORE", "2", "-FLAGS.SILENT", "(\\Answered)")
    check(typ == "OK", "UID STORE -FLAGS.SILENT")

    typ, data = m.search(None, "BODY", "Joseph")
    check(data[0] == b"2", "SEARCH BODY -> %r" % data)
    typ, data = m.search("UTF-8", "SUBJECT", '"interop"')
    check(data[0] == b"1 2", "SEARCH CHARSET UTF-8 SUBJECT")
    typ, data = m.uid("SEARCH", "OR", "FLAGGED", "KEYWORD", "$Label1")
    check(data[0] == b"1 2", "UID SEARCH OR")
    typ, data = m.search(None, "NOT", "SEEN", "SENTON", "7-Feb-1994")
    check(data[0] == b"2", "SEARCH NOT SEEN SENTON")
    typ, data = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    esearch = m.untagged_responses.pop("ESEARCH", [b""])[0]
    check(typ == "OK" and b"MIN 1 MAX 2 COUNT 2" in esearch, "ESEARCH RETURN -> %r" % esearch)

    ok(m.create(PREFIX + "/Target"), "CREATE target")
    typ, data = m.copy("1:2", PREFIX + "/Target")
    check(typ == "OK" and b"COPYUID" in data[0], "COPY with COPYUID")
    typ, data = m.copy("1", PREFIX + "/Nope")
    check(typ == "NO" and b"TRYCREATE" in data[0], "COPY to a missing mailbox: TRYCREATE")
    typ, data = m.uid("MOVE", "1", PREFIX + "/Target")
    check(typ == "OK", "UID MOVE")
    typ, data = m.select(box)
    check(data[0] == b"1", "one message left after MOVE")

    ok(m.store("1", "+FLAGS", "\\Deleted"), "STORE \\Deleted")
    typ, data = m.expunge()
    check(typ == "OK" and data[0] == b"1", "EXPUNGE reports sequence 1")
    ok(m.unselect() if hasattr(m, "unselect") else m._simple_command("UNSELECT"), "UNSELECT")

    # IDLE: another connection appends, this one must hear EXISTS.
    m.select(PREFIX + "/Target")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    check(m.readline().startswith(b"+"), "IDLE continuation")
    other = imaplib.IMAP4(HOST, PORT)
    other.login(USER, PASS)
    other.append(PREFIX + "/Target", None, None, MESSAGE)
    other.logout()
    m.sock.settimeout(5)
    line = m.readline()
    check(re.match(rb"\* \d+ EXISTS", line) is not None, "IDLE reported %r" % line)
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag):
            check(b" OK " in line, "IDLE completed")
            break
    m.sock.settimeout(None)

    ok(m.close(), "CLOSE")
    ok(m.rename(PREFIX + "/Target", PREFIX + "/Renamed"), "RENAME")
    ok(m.delete(PREFIX + "/Renamed"), "DELETE")
    ok(m.delete(box), "DELETE sub")
    # The parent was never created itself: it existed as a \\Noselect placeholder for
    # its children and went away with the last one (as in Dovecot).
    typ, data = m.list('""', PREFIX)
    check(typ == "OK" and data == [None], "implicit parent gone with its last child (%r)" % (data,))
    typ, data = m.select("nosuch-" + PREFIX)
    check(typ == "NO", "SELECT of a missing mailbox is NO")
    m.logout()
    print("imaplib suite passed")


if __name__ == "__main__":
    try:
        main()
    except (imaplib.IMAP4.error, socket.error) as e:
        print("FAIL:", e)
        sys.exit(1)
