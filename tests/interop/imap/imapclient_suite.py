#!/usr/bin/env python3
"""Drive a running mailroom IMAP server with IMAPClient (pip install imapclient).

Environment: IMAP_HOST (127.0.0.1), IMAP_PORT (1143), IMAP_USER (joe@example.org),
IMAP_PASS ("secret pass"). Exits non-zero on the first failed check.
"""

import os
import sys
import threading
import time

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

HOST = os.environ.get("IMAP_HOST", "127.0.0.1")
PORT = int(os.environ.get("IMAP_PORT", "1143"))
USER = os.environ.get("IMAP_USER", "joe@example.org")
PASS = os.environ.get("IMAP_PASS", "secret pass")
PREFIX = "imapclient-%d" % os.getpid()

MESSAGE = (
    b"From: Bob <bob@example.org>\r\n"
    b"To: Joe <joe@example.org>\r\n"
    b"Subject: imapclient message\r\n"
    b"Date: Tue, 1 Mar 2022 10:00:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=xyz\r\n"
    b"\r\n"
    b"--xyz\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"first part with a needle\r\n"
    b"--xyz\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"aGVsbG8gYmluYXJ5\r\n"
    b"--xyz--\r\n"
)


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def main():
    c = IMAPClient(HOST, port=PORT, ssl=False)
    c.login(USER, PASS)
    caps = c.capabilities()
    check(b"MOVE" in caps and b"UIDPLUS" in caps, "capabilities after login")
    ident = c.id_({"name": "imapclient"})
    ident = ident[0] if len(ident) == 1 and isinstance(ident[0], tuple) else ident
    ident = dict(zip(ident[::2], ident[1::2])) if isinstance(ident, tuple) else ident
    check(ident[b"name"] == b"mailroom", "ID %r" % (ident,))
    ns = c.namespace()
    check(ns.personal[0][1] == "/", "NAMESPACE delimiter")

    box = PREFIX + "/Inbox2"
    c.create_folder(box)
    check(c.folder_exists(box), "CREATE + LIST")
    folders = c.list_folders()
    check(any(name == "INBOX" for _, _, name in folders), "INBOX listed")
    check(c.find_special_folder(b"\\Sent") == "Sent", "SPECIAL-USE \\Sent")
    c.subscribe_folder(box)
    check(any(name == box for _, _, name in c.list_sub_folders()), "LSUB")
    c.unsubscribe_folder(box)

    uid = c.append(box, MESSAGE, flags=[b"\\Seen", b"$Tag"])
    check(b"APPENDUID" in uid, "APPEND -> %r" % uid)
    c.append(box, MESSAGE.replace(b"needle", b"haystack"))
    st = c.folder_status(box, [b"MESSAGES", b"UNSEEN", b"UIDNEXT"])
    check(st[b"MESSAGES"] == 2 and st[b"UNSEEN"] == 1 and st[b"UIDNEXT"] == 3, "STATUS %r" % st)

    info = c.select_folder(box)
    check(info[b"EXISTS"] == 2 and b"\\*" in info[b"PERMANENTFLAGS"], "SELECT %r" % info)
    data = c.fetch([1, 2], ["FLAGS", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[1]", "INTERNALDATE"])
    check(data[1][b"ENVELOPE"].subject == b"imapclient message", "ENVELOPE subject")
    check(data[1][b"BODY[1]"] == b"first part with a needle", "BODY[1]")
    check(data[1][b"BODYSTRUCTURE"].is_multipart, "BODYSTRUCTURE multipart")
    check(b"$Tag" in data[1][b"FLAGS"], "APPEND flags kept")
    data = c.fetch([1], ["BINARY.PEEK[2]", "BINARY.SIZE[2]"])
    # No NUL in the content: IMAPClient cannot parse literal8 (~{n}), which RFC 3516 requires for NUL.
    check(data[1][b"BINARY[2]"] == b"hello binary", "BINARY decodes base64")
    check(data[1][b"BINARY.SIZE[2]"] == 12, "BINARY.SIZE")

    check(c.search(["BODY", "needle"]) == [1], "SEARCH BODY")
    check(c.search(["UNSEEN"]) == [2], "SEARCH UNSEEN")
    check(c.search(["SENTSINCE", "1-Mar-2022", "KEYWORD", "$Tag"]) == [1], "SEARCH SENTSINCE KEYWORD")
    check(c.search(["OR", "SUBJECT", "imapclient", "LARGER", "1"]) == [1, 2], "SEARCH OR")

    c.add_flags([2], [b"\\Flagged"])
    check(b"\\Flagged" in c.get_flags([2])[2], "STORE +FLAGS")
    c.remove_flags([2], [b"\\Flagged"], silent=True)
    check(b"\\Flagged" not in c.get_flags([2])[2], "STORE -FLAGS.SILENT")

    c.create_folder(PREFIX + "/Dest")
    c.copy([1], PREFIX + "/Dest")
    check(c.folder_status(PREFIX + "/Dest", [b"MESSAGES"])[b"MESSAGES"] == 1, "COPY")
    c.move([2], PREFIX + "/Dest")
    check(c.search(["ALL"]) == [1], "MOVE removed the source")

    # IDLE while another client appends.
    def append_later():
        time.sleep(0.5)
        o = IMAPClient(HOST, port=PORT, ssl=False)
        o.login(USER, PASS)
        o.append(box, MESSAGE)
        o.logout()

    threading.Thread(target=append_later).start()
    c.idle()
    responses = c.idle_check(timeout=5)
    c.idle_done()
    check(any(r[1] == b"EXISTS" for r in responses), "IDLE saw EXISTS: %r" % responses)

    c.delete_messages([1])
    c.expunge()
    # IMAPClient works with UIDs: the message appended during IDLE got UID 3.
    check(c.search(["ALL"]) == [3], "EXPUNGE")
    c.unselect_folder()
    c.rename_folder(PREFIX + "/Dest", PREFIX + "/Dest2")
    check(c.folder_exists(PREFIX + "/Dest2"), "RENAME")
    for f in [PREFIX + "/Dest2", box]:
        c.delete_folder(f)
    # PREFIX was only an implicit (\\Noselect) parent; it goes with its last child.
    check(not c.folder_exists(PREFIX), "DELETE")

    # UTF-8 mailbox names after ENABLE UTF8=ACCEPT / IMAP4rev2 are in modified UTF-7 before.
    c.create_folder(PREFIX + "-Entwürfe")
    check(c.folder_exists(PREFIX + "-Entwürfe"), "modified UTF-7 mailbox names")
    c.delete_folder(PREFIX + "-Entwürfe")
    c.logout()
    print("imapclient suite passed")


if __name__ == "__main__":
    try:
        main()
    except IMAPClientError as e:
        print("FAIL:", e)
        sys.exit(1)
