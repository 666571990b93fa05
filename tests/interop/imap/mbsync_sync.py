#!/usr/bin/env python3
"""Two-way sync with mbsync (isync) against a running mailroom IMAP server.

    apt-get install isync        # provides mbsync
    IMAP_PORT=11143 python3 tests/interop/imap/mbsync_sync.py [COUNT]

Creates COUNT (default 300) messages in a local Maildir folder, pushes them with
mbsync, changes flags on both sides (IMAP STORE and Maildir file renames),
deletes on both sides, syncs again and checks that both sides agree after each
round. Uses a mailbox `mbsync-<pid>` and removes it at the end.
"""

import imaplib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HOST = os.environ.get("IMAP_HOST", "127.0.0.1")
PORT = int(os.environ.get("IMAP_PORT", "1143"))
USER = os.environ.get("IMAP_USER", "joe@example.org")
PASS = os.environ.get("IMAP_PASS", "secret pass")
COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 300
BOX = "mbsync-%d" % os.getpid()


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def mbsync(rc):
    r = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
    check(r.returncode == 0, "mbsync run")


def local_messages(folder):
    """{Message-ID: flags-letters} of the local Maildir folder."""
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                m = re.search(rb"^Message-ID: <([^>]+)>", f.read(), re.M | re.I)
            flags = name.split(":2,", 1)[1] if ":2," in name else ""
            out[m.group(1).decode()] = "".join(sorted(c for c in flags if c in "DFRST"))
    return out


def remote_messages(m):
    """{Message-ID: flags-letters} of the IMAP mailbox."""
    m.select(BOX)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])") if int(m.select(BOX)[1][0]) else ("OK", [])
    out = {}
    letters = {b"\\Draft": "D", b"\\Flagged": "F", b"\\Answered": "R", b"\\Seen": "S", b"\\Deleted": "T"}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        mid = re.search(rb"<([^>]+)>", body).group(1).decode()
        flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).split()
        out[mid] = "".join(sorted(letters[f] for f in flags if f in letters))
    return out


def rename_flags(folder, mid_filter, add):
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        for name in os.listdir(d):
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                mid = re.search(rb"^Message-ID: <([^>]+)>", f.read(), re.M | re.I).group(1).decode()
            if not mid_filter(mid):
                continue
            base, _, flags = name.partition(":2,")
            flags = "".join(sorted(set(flags) | set(add)))
            os.rename(path, os.path.join(folder, "cur", base + ":2," + flags))


def main():
    work = tempfile.mkdtemp(prefix="mbsync-")
    mail = os.path.join(work, "mail")
    folder = os.path.join(mail, BOX)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(folder, sub))
        os.makedirs(os.path.join(mail, "INBOX", sub))
    for i in range(COUNT):
        with open(os.path.join(folder, "new", "%d.%d.local" % (1700000000 + i, i)), "wb") as f:
            f.write(b"From: sync@example.org\r\nTo: joe@example.org\r\nSubject: message %d\r\n"
                    b"Message-ID: <m%d@mbsync.test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nBody %d\r\n" % (i, i, i))
    rc = os.path.join(work, "mbsyncrc")
    with open(rc, "w") as f:
        f.write("""IMAPAccount mr
Host {host}
Port {port}
User {user}
Pass "{password}"
SSLType None
AuthMechs PLAIN

IMAPStore far
Account mr

MaildirStore near
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel sync
Far :far:
Near :near:
Patterns {box}
Create Both
Expunge Both
Sync All
SyncState *
""".format(host=HOST, port=PORT, user=USER, password=PASS, mail=mail, box=BOX))

    m = imaplib.IMAP4(HOST, PORT)
    m.login(USER, PASS)
    try:
        mbsync(rc)
        remote = remote_messages(m)
        check(len(remote) == COUNT, "pushed %d messages (server has %d)" % (COUNT, len(remote)))

        # Flags both ways: \Flagged on the server for the first 50, Seen locally for 50..99.
        m.select(BOX)
        m.store("1:50", "+FLAGS", "(\\Flagged)")
        rename_flags(folder, lambda mid: 50 <= int(mid[1:].split("@")[0]) < 100, "S")
        mbsync(rc)
        local, remote = local_messages(folder), remote_messages(m)
        check(local == remote, "flags agree after round 2")
        check(sum("F" in f for f in local.values()) == 50, "\\Flagged reached the Maildir")
        check(sum("S" in f for f in remote.values()) == 50, "Seen reached the server")

        # Deletions both ways: expunge 10 on the server, trash 10 locally.
        m.select(BOX)
        m.store("1:10", "+FLAGS", "(\\Deleted)")
        m.expunge()
        rename_flags(folder, lambda mid: 200 <= int(mid[1:].split("@")[0]) < 210, "T")
        mbsync(rc)
        local, remote = local_messages(folder), remote_messages(m)
        check(len(remote) == COUNT - 20 and local == remote, "deletions agree (%d local, %d remote)" % (len(local), len(remote)))

        # New mail on the server arrives locally; a third sync changes nothing.
        m.append(BOX, None, None, b"Subject: late\r\nMessage-ID: <late@mbsync.test>\r\n\r\nlate\r\n")
        mbsync(rc)
        mbsync(rc)
        local, remote = local_messages(folder), remote_messages(m)
        check("late@mbsync.test" in local and local == remote, "server-side APPEND synced down")
        print("mbsync two-way sync passed")
    finally:
        m.close() if m.state == "SELECTED" else None
        m.delete(BOX)
        m.logout()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
