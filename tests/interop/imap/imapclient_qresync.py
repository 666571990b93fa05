#!/usr/bin/env python3
"""QRESYNC (RFC 7162 §3.2) as IMAPClient drives it: ENABLE QRESYNC, VANISHED after
another client's expunge, UID FETCH (CHANGEDSINCE m VANISHED) through IMAPClient's
fetch modifiers, and SELECT (QRESYNC (...)) through the imaplib connection
underneath (IMAPClient has no API for SELECT parameters).

Environment as imapclient_suite.py. Exits non-zero on the first failed check.
"""

import os
import sys

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

HOST = os.environ.get("IMAP_HOST", "127.0.0.1")
PORT = int(os.environ.get("IMAP_PORT", "1143"))
USER = os.environ.get("IMAP_USER", "joe@example.org")
PASS = os.environ.get("IMAP_PASS", "secret pass")
BOX = "qresync-%d" % os.getpid()


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def client():
    c = IMAPClient(HOST, port=PORT, ssl=False)
    c.login(USER, PASS)
    return c


def vanished(c):
    """The VANISHED responses imaplib collected since the last call."""
    return [bytes(v) for v in c._imap.untagged_responses.pop("VANISHED", [])]


def main():
    c = client()
    check(b"QRESYNC" in c.capabilities(), "QRESYNC advertised")
    check(c.enable("QRESYNC") == [b"QRESYNC"], "ENABLE QRESYNC")
    c.create_folder(BOX)
    for i in range(4):
        c.append(BOX, b"Subject: m%d\r\n\r\nbody\r\n" % i)
    info = c.select_folder(BOX)
    check(b"HIGHESTMODSEQ" in info, "QRESYNC implies CONDSTORE: %r" % info)
    validity, modseq = info[b"UIDVALIDITY"], info[b"HIGHESTMODSEQ"]

    o = client()
    o.select_folder(BOX)
    o.add_flags([2], [b"\\Flagged"])
    o.delete_messages([3])
    o.expunge()
    o.logout()

    c.noop()
    check(vanished(c) == [b"3"], "another client's expunge arrives as VANISHED 3")
    data = c.fetch([1, 2, 3, 4], ["FLAGS"], modifiers=["CHANGEDSINCE %d" % modseq, "VANISHED"])
    check(list(data) == [2] and b"\\Flagged" in data[2][b"FLAGS"], "CHANGEDSINCE %r" % data)
    check(b"MODSEQ" in data[2], "MODSEQ with FLAGS")
    check(vanished(c) == [b"(EARLIER) 3"], "UID FETCH ... VANISHED")
    c.logout()

    d = client()
    d.enable("QRESYNC")
    typ, _ = d._imap._simple_command("SELECT", BOX, "(QRESYNC (%d %d))" % (validity, modseq))
    check(typ == "OK", "SELECT (QRESYNC ...)")
    check(vanished(d) == [b"(EARLIER) 3"], "SELECT reports VANISHED (EARLIER)")
    fetched = [bytes(f) for f in d._imap.untagged_responses.pop("FETCH", [])]
    check(any(b"UID 2 FLAGS (\\Flagged" in f for f in fetched), "changed flags: %r" % fetched)
    d.logout()
    e = client()
    e.delete_folder(BOX)
    e.logout()
    print("imapclient QRESYNC suite passed")


if __name__ == "__main__":
    try:
        main()
    except IMAPClientError as e:
        print("FAIL:", e)
        sys.exit(1)
