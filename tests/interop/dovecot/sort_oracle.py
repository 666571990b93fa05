#!/usr/bin/env python3
"""Ask a real Dovecot what it answers for SORT and THREAD (RFC 5256, 5267, 5957).

Produces crates/imap/tests/data/sort/dovecot.expected, which the test
`crates/imap/tests/sort_thread.rs` (`answers_match_dovecot`) compares mailroom's
answers with.

Usage (Debian/Ubuntu, as root, loopback only):
    apt-get install -y dovecot-imapd
    python3 tests/interop/dovecot/sort_oracle.py

The mailbox is built the same way the Rust test builds it: a placeholder message
is appended and expunged first (so UIDs differ from sequence numbers), then every
mNN.eml of the data directory, in name order, converted to CRLF, with the
INTERNALDATE on the same line of internaldates.txt. Then every line of
commands.txt is sent. For each command the expected file holds a block:
`C: command`, one `S: line` per untagged response, `R: OK|NO|BAD`, a blank line.
"""

import os

from throwaway import TaggedConn, crlf, throwaway_dovecot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(ROOT, "crates/imap/tests/data/sort")
PORT = 14394


class Conn(TaggedConn):
    def __init__(self):
        super().__init__(PORT)

    def cmd(self, text, literal=None):
        """(untagged lines, tagged status word)."""
        lines, status = self.command(text, literal)
        return lines, status.split(b" ")[1]


def main():
    names = sorted(n for n in os.listdir(DATA) if n.startswith("m") and n.endswith(".eml"))
    with open(os.path.join(DATA, "internaldates.txt")) as f:
        dates = [line.strip() for line in f if line.strip()]
    assert len(dates) == len(names)
    with open(os.path.join(DATA, "commands.txt")) as f:
        commands = [line.rstrip("\n") for line in f if line.strip()]
    with throwaway_dovecot(PORT, "pass", ["u"]):
        c = Conn()
        c.cmd(b"LOGIN u pass")
        c.cmd(b"APPEND INBOX (\\Deleted)", b"Subject: placeholder\r\n\r\nx\r\n")
        c.cmd(b"SELECT INBOX")
        c.cmd(b"EXPUNGE")
        for name, date in zip(names, dates):
            with open(os.path.join(DATA, name), "rb") as f:
                data = crlf(f.read())
            _, status = c.cmd(b'APPEND INBOX "%s"' % date.encode(), data)
            assert status == b"OK", name
        c.cmd(b"NOOP")
        out = []
        for command in commands:
            lines, status = c.cmd(command.encode())
            out.append("C: " + command)
            for line in lines:
                # Only the command's own answers: not EXISTS/RECENT/FETCH updates.
                if line.split(b" ")[1:2] in ([b"SORT"], [b"THREAD"], [b"ESEARCH"]):
                    out.append("S: " + line.decode())
            out.append("R: " + status.decode())
            out.append("")
        with open(os.path.join(DATA, "dovecot.expected"), "w") as f:
            f.write("\n".join(out))
        c.cmd(b"LOGOUT")


if __name__ == "__main__":
    main()
