#!/usr/bin/env python3
"""Two-way sync with mbsync (isync) against a running mailroom.

Seeds a mailbox with a few hundred messages over IMAP, syncs them to a local
Maildir with mbsync, changes flags on both sides (and deletes on both sides), syncs
again, and checks that server and Maildir agree message for message.

Environment: IMAP_HOST (127.0.0.1), IMAP_PORT (1143), IMAP_USER (joe@example.org),
IMAP_PASS ("secret pass"), MESSAGES (300). Needs `mbsync` (Debian package isync).
Prints one `ok:` line per check; exits non-zero on the first failure.
"""

import imaplib
import os
import re
import subprocess
import sys
import tempfile

HOST = os.environ.get("IMAP_HOST", "127.0.0.1")
PORT = int(os.environ.get("IMAP_PORT", "1143"))
USER = os.environ.get("IMAP_USER", "joe@example.org")
PASS = os.environ.get("IMAP_PASS", "secret pass")
COUNT = int(os.environ.get("MESSAGES", "300"))
BOX = f"mbsync-{os.getpid()}"


def fail(why):
    print(f"FAIL: {why}")
    sys.exit(1)


def ok(what):
    print(f"ok: {what}")


def connect():
    m = imaplib.IMAP4(HOST, PORT)
    m.login(USER, PASS)
    return m


def server_state(m):
    """Message-ID -> set of flags, for the test mailbox."""
    typ, _ = m.select(BOX)
    if typ != "OK":
        fail(f"SELECT {BOX}")
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    state = {}
    if typ != "OK":
        return state
    for item in data:
        if not isinstance(item, tuple):
            continue
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split())
        flags.discard("\\Recent")
        mid = re.search(rb"<([^>]+)>", item[1]).group(1).decode()
        state[mid] = flags
    return state


MAILDIR_FLAGS = {"S": "\\Seen", "F": "\\Flagged", "R": "\\Answered", "D": "\\Draft", "T": "\\Deleted"}


def maildir_state(path):
    state = {}
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                head = f.read(4096)
            mid = re.search(rb"Message-ID: <([^>]+)>", head, re.I).group(1).decode()
            letters = name.split(":2,")[1] if ":2," in name else ""
            state[mid] = {MAILDIR_FLAGS[c] for c in letters if c in MAILDIR_FLAGS}
    return state


def set_maildir_flags(path, mids, letters_to_add):
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        for name in os.listdir(d):
            full = os.path.join(d, name)
            with open(full, "rb") as f:
                head = f.read(4096)
            mid = re.search(rb"Message-ID: <([^>]+)>", head, re.I).group(1).decode()
            if mid not in mids:
                continue
            base, _, letters = name.partition(":2,")
            new_letters = "".join(sorted(set(letters) | set(letters_to_add)))
            os.rename(full, os.path.join(path, "cur", f"{base}:2,{new_letters}"))


def mbsync(config):
    r = subprocess.run(["mbsync", "-c", config, "-a"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        fail(f"mbsync exited {r.returncode}:\n{r.stdout}\n{r.stderr}")


def main():
    m = connect()
    m.create(BOX)
    for i in range(COUNT):
        msg = (
            f"From: sender{i}@example.net\r\nTo: {USER}\r\nSubject: message {i}\r\n"
            f"Message-ID: <m{i}.{os.getpid()}@interop.test>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
            f"Body of message {i}.\r\n"
        )
        flags = "(\\Seen)" if i % 5 == 0 else "()"
        typ, _ = m.append(BOX, flags, None, msg.encode())
        if typ != "OK":
            fail(f"APPEND {i}")
    ok(f"appended {COUNT} messages")

    with tempfile.TemporaryDirectory() as work:
        local = os.path.join(work, "mail")
        os.makedirs(local)
        config = os.path.join(work, "mbsyncrc")
        with open(config, "w") as f:
            f.write(
                f"""IMAPAccount mailroom
Host {HOST}
Port {PORT}
User {USER}
Pass "{PASS}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account mailroom

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns {BOX}
Create Both
Expunge Both
SyncState *
Sync All
"""
            )
        mbsync(config)
        box = os.path.join(local, BOX)
        server, near = server_state(m), maildir_state(box)
        if server != near:
            fail(f"after the first sync: server {len(server)} messages, maildir {len(near)}")
        ok(f"first sync: {len(near)} messages, flags equal")

        mids = sorted(server)
        # Local changes: flag ten, delete five (mark \Deleted; Expunge Both removes).
        set_maildir_flags(box, set(mids[0:10]), "F")
        set_maildir_flags(box, set(mids[10:15]), "T")
        # Server changes: answer ten others, delete five others.
        m.select(BOX)
        typ, data = m.search(None, "ALL")
        seqs = data[0].split()
        m.store(b",".join(seqs[20:30]).decode(), "+FLAGS", "(\\Answered)")
        m.store(b",".join(seqs[30:35]).decode(), "+FLAGS", "(\\Deleted)")
        m.expunge()
        mbsync(config)
        server, near = server_state(m), maildir_state(box)
        if server != near:
            only_s = {k: v for k, v in server.items() if near.get(k) != v}
            only_n = {k: v for k, v in near.items() if server.get(k) != v}
            fail(f"after the second sync they differ: server {only_s} maildir {only_n}")
        if len(server) != COUNT - 10:
            fail(f"expected {COUNT - 10} messages after deletions on both sides, got {len(server)}")
        if not all("\\Flagged" in server[k] for k in mids[0:10]):
            fail("local \\Flagged did not reach the server")
        answered = [k for k, v in server.items() if "\\Answered" in v]
        if len(answered) != 10:
            fail(f"server \\Answered did not reach the maildir: {len(answered)}")
        ok(f"second sync: flags and deletions from both sides agree ({len(server)} messages)")
        mbsync(config)
        if server_state(m) != maildir_state(box):
            fail("a third sync with no changes changed something")
        ok("third sync is a no-op")
    m.select("INBOX")
    m.delete(BOX)
    m.logout()


if __name__ == "__main__":
    main()
