#!/usr/bin/env python3
"""Run the same IMAP sessions against Dovecot and mailroom and show where the
answers differ (after normalising what legitimately differs: UIDVALIDITY,
timings, INTERNALDATE, server names, mailboxes Dovecot does not create).

Usage (Debian/Ubuntu, as root, loopback only; dovecot-imapd installed):
    cargo run -p mailroom-imap --example serve -- 127.0.0.1:11143 &
    python3 tests/interop/imap/compare_dovecot.py [mailroom-port]

Dovecot is started on 127.0.0.1:14394 with a throwaway configuration in a
temporary directory and stopped at the end. Both servers get the same
messages appended to a fresh mailbox. Prints a unified diff per session and
exits 0 (this is a tool for explaining differences, not a pass/fail test).
"""

import difflib
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dovecot"))
from throwaway import WireConn, crlf, throwaway_dovecot  # noqa: E402

MAILROOM_PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 11143
DOVECOT_PORT = 14394
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "crates", "imap", "tests", "data")

# Dovecot's INBOX namespace with '/' as separator and a \Sent mailbox, as mailroom has.
NAMESPACE = """
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
  }
}
"""


class Conn(WireConn):
    def __init__(self, port):
        super().__init__(port, timeout=10)

    def raw(self, tag, data):
        try:
            self.s.sendall(data)
        except OSError:
            return [b"<closed>"]
        lines = []
        while True:
            try:
                r = self.read_response()
            except (EOFError, socket.timeout):
                lines.append(b"<closed>")
                return lines
            lines.append(r)
            if r.startswith(tag + b" ") or r.startswith(b"+ "):
                return lines


def normalise(line, mailbox_prefix):
    line = line.decode("utf-8", "replace")
    line = re.sub(r" \(\d+\.\d+ \+ \d+\.\d+( \+ \d+\.\d+)? secs\)\.?", "", line)
    line = re.sub(r"UIDVALIDITY \d+", "UIDVALIDITY V", line)
    line = re.sub(r"(APPENDUID|COPYUID) \d+", r"\1 V", line)
    line = re.sub(r'INTERNALDATE "[^"]*"', 'INTERNALDATE "D"', line)
    line = re.sub(r"\* ID \(.*\)", "* ID (...)", line)
    line = re.sub(r"CAPABILITY [^\]]*", "CAPABILITY ...", line)
    line = line.replace(mailbox_prefix, "P")
    # Only status and response code of tagged responses matter; the text is free.
    line = re.sub(r"^(t\d+ (?:OK|NO|BAD)(?: \[[^\]]*\])?).*$", r"\1", line)
    # Atom or quoted mailbox names are the same name.
    line = re.sub(r'^(\* (?:LIST|LSUB) \([^)]*\) "/" )"([^" ]*)"', r"\1\2", line)
    line = re.sub(r'^\* STATUS "([^" ]*)"', r"* STATUS \1", line)
    return line


def session(port, user, commands, prefix):
    c = Conn(port)
    out = []
    for i, cmd in enumerate(commands):
        tag = b"t%d" % i
        data = cmd.replace(b"{P}", prefix.encode())
        if data.startswith(b"RAW "):
            out += [b"C: " + data[4:].strip()] + c.raw(tag, data[4:])
            continue
        out.append(b"C: " + tag + b" " + data)
        out += c.raw(tag, tag + b" " + data + b"\r\n")
        if out[-1] == b"<closed>":
            break
    return [normalise(l, prefix) for l in out]


def sessions(user, password):
    msg1 = crlf(open(os.path.join(DATA, "msg_01.txt"), "rb").read())
    msg7 = crlf(open(os.path.join(DATA, "msg_07.txt"), "rb").read())
    login = b'LOGIN %s "%s"' % (user.encode(), password.encode())
    return {
        "state errors": [b"SELECT INBOX", b"FETCH 1 FLAGS", b"BOGUS", b"ENABLE IMAP4rev2", login, b"LOGIN a b",
                         b"FETCH 1 FLAGS", b"EXPUNGE", b"CLOSE", b"NAMESPACE", b"LIST \"\" \"\"", b"LOGOUT"],
        "mailboxes": [login, b"CREATE {P}/a/b", b"CREATE {P}/a", b"LIST \"\" {P}*", b"LIST \"\" {P}/%",
                      b"LIST ({P}) \"\" *", b"SUBSCRIBE {P}/a/b", b"LSUB \"\" {P}/%", b"LIST (SUBSCRIBED RECURSIVEMATCH) \"\" {P}/%",
                      b"LIST \"\" {P}/* RETURN (CHILDREN STATUS (MESSAGES UIDNEXT UNSEEN))",
                      b"RENAME {P}/a {P}/c", b"LIST \"\" {P}*", b"DELETE {P}/c", b"LIST \"\" {P}*", b"DELETE {P}/c",
                      b"STATUS {P}/nosuch (MESSAGES)", b"SELECT {P}/nosuch", b"UNSUBSCRIBE {P}/a/b",
                      b"DELETE {P}/c/b", b"DELETE {P}", b"LOGOUT"],
        "messages": [login, b"CREATE {P}",
                     b"APPEND {P} (\\Seen) {%d+}\r\n" % len(msg1) + msg1,
                     b"APPEND {P} {%d+}\r\n" % len(msg7) + msg7,
                     b"SELECT {P}", b"FETCH 1:* (FLAGS RFC822.SIZE)", b"FETCH 3 FLAGS", b"FETCH 0 FLAGS",
                     b"UID FETCH 1:* (FLAGS)", b"FETCH 2 (BODY[1]<0.10>)", b"FETCH 2 (BINARY.SIZE[2] BINARY.PEEK[1])",
                     b"FETCH 2 (BODY.PEEK[HEADER.FIELDS (Subject To)])", b"FETCH 2 BODY.PEEK[9]",
                     b"STORE 1:2 +FLAGS ($Label \\Flagged)", b"STORE 1 -FLAGS.SILENT (\\Flagged)", b"UID STORE 2 FLAGS (\\Seen)",
                     b"STORE 1 +FLAGS (\\Bogus)",
                     b"SEARCH ALL", b"SEARCH FLAGGED", b"SEARCH RETURN (MIN MAX COUNT ALL) ALL", b"UID SEARCH RETURN (SAVE) SEEN",
                     b"FETCH $ UID", b"SEARCH SUBJECT dingus", b"SEARCH CHARSET KOI8-R ALL",
                     b"COPY 1 {P}", b"COPY 1 {P}/nosuch", b"MOVE 3 {P}/nosuch", b"UID MOVE 3 INBOX",
                     b"STORE 1 +FLAGS.SILENT (\\Deleted)", b"UID EXPUNGE 2", b"EXPUNGE", b"NOOP",
                     b"EXAMINE {P}", b"STORE 1 +FLAGS (\\Seen)", b"EXPUNGE", b"CLOSE", b"UNSELECT",
                     b"DELETE {P}", b"LOGOUT"],
        "rev2": [login, b"ENABLE IMAP4rev2", b"CREATE {P}", b"APPEND {P} {%d+}\r\n" % len(msg1) + msg1,
                 b"SELECT {P}", b"SEARCH ALL", b"UID SEARCH UNSEEN", b"FETCH 1 (FLAGS)", b"EXAMINE {P}",
                 b"STATUS {P} (MESSAGES SIZE DELETED)", b"UNSELECT", b"DELETE {P}", b"LOGOUT"],
    }


def main():
    with throwaway_dovecot(DOVECOT_PORT, "secret", ["joe@example.org"], "plain login", NAMESPACE):
        prefix = "cmp%d" % os.getpid()
        dov = sessions("joe@example.org", "secret")
        mr = sessions("joe@example.org", "secret pass")
        for name in dov:
            d = session(DOVECOT_PORT, "joe", dov[name], prefix)
            m = session(MAILROOM_PORT, "joe", mr[name], prefix)
            diff = list(difflib.unified_diff(d, m, "dovecot", "mailroom", lineterm="", n=1))
            print("=== %s: %s" % (name, "same" if not diff else "%d differing lines" % len(diff)))
            for line in diff:
                print(line[:300])


if __name__ == "__main__":
    main()
