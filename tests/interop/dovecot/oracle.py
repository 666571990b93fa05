#!/usr/bin/env python3
"""Ask a real Dovecot what it answers for FETCH ENVELOPE/BODYSTRUCTURE/BODY.

Produces the expected files under crates/message/tests/data/dovecot/ that the
test `crates/message/tests/dovecot.rs` compares mailroom-message's answers with.

Usage (Debian/Ubuntu, as root, loopback only):
    apt-get install -y dovecot-imapd
    python3 tests/interop/dovecot/oracle.py [corpus-dir] [out-dir]
    python3 tests/interop/dovecot/oracle.py crates/message/tests/data/synthetic \
        crates/message/tests/data/dovecot-synthetic

Every corpus message is converted to CRLF line endings before APPEND, because
Dovecot reports sizes as if bare LFs were CRLF ("virtual size") while mailroom
reports the bytes it actually stores; with CRLF input both agree.

The output file for msg_XX.txt is msg_XX.fetch: one line per item,
`ENVELOPE <value>`, `BODYSTRUCTURE <value>`, `BODY <value>`, where literals are
kept in their wire form `{n}\r\n...` (the CRLF written as the two characters
`\r\n` would be ambiguous, so the literal bytes are written verbatim).
"""

import os
import re
import sys

from throwaway import TaggedConn, crlf, throwaway_dovecot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CORPUS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "crates/message/tests/data/python-email")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "crates/message/tests/data/dovecot")
PORT = 14393


class Conn(TaggedConn):
    def __init__(self):
        super().__init__(PORT)

    def cmd(self, text, literal=None, must_ok=True):
        """The untagged lines, or None when the command did not answer OK."""
        lines, status = self.command(text, literal)
        if must_ok:
            assert status.split(b" ")[1] == b"OK", status
        return lines if status.split(b" ")[1] == b"OK" else None


# BODY[section] answers are recorded for the synthetic corpus only (the
# python-email corpus is covered by the size/section consistency test).
SECTIONS_TOO = "synthetic" in CORPUS
SECTIONS = [
    b"", b"HEADER", b"TEXT", b"HEADER.FIELDS (FROM SUBJECT)", b"HEADER.FIELDS.NOT (FROM SUBJECT)",
    b"1", b"1.MIME", b"1.HEADER", b"1.TEXT", b"1.1", b"2", b"2.MIME", b"2.HEADER", b"2.TEXT",
    b"2.1", b"2.2", b"2.1.MIME", b"2.3", b"3", b"3.1", b"3.2", b"3.HEADER", b"4", b"5",
]


def section_value(lines):
    """The octets of the BODY[...] item, or None for NIL / absent."""
    for line in lines:
        i = line.find(b"BODY[")
        if not line.startswith(b"* ") or i < 0:
            continue
        j = line.find(b"] ", i)
        rest = line[j + 2:]
        if rest.startswith(b"NIL"):
            return None
        if rest.startswith(b'"'):
            k = 1
            out = b""
            while rest[k:k + 1] != b'"':
                if rest[k:k + 1] == b"\\":
                    k += 1
                out += rest[k:k + 1]
                k += 1
            return out
        m = re.match(rb"\{(\d+)\}\r\n", rest)
        n = int(m.group(1))
        return rest[m.end():m.end() + n]
    return None


def fetch_item(lines, name):
    for line in lines:
        i = line.find(b" " + name + b" ")
        if i >= 0 and line.startswith(b"* "):
            return line[i + len(name) + 2:]
    raise KeyError(name)


def main():
    with throwaway_dovecot(PORT, "pass", ["u"]):
        c = Conn()
        c.cmd(b"LOGIN u pass")
        c.cmd(b"SELECT INBOX")
        os.makedirs(OUT, exist_ok=True)
        names = sorted(n for n in os.listdir(CORPUS) if n.endswith((".txt", ".eml")) and n != "SOURCE.txt")
        for uid, name in enumerate(names, start=1):
            with open(os.path.join(CORPUS, name), "rb") as f:
                data = crlf(f.read())
            c.cmd(b"APPEND INBOX", data)
            c.cmd(b"NOOP")
            out = b""
            for item in (b"ENVELOPE", b"BODYSTRUCTURE", b"BODY"):
                lines = c.cmd(b"UID FETCH %d (%s)" % (uid, item))
                value = fetch_item(lines, item)
                # strip the closing paren of the FETCH response
                assert value.endswith(b")")
                value = value[:-1]
                if value.endswith(b" UID %d" % uid):
                    value = value[: -len(b" UID %d" % uid)]
                out += item + b" " + value + b"\n"
            with open(os.path.join(OUT, os.path.splitext(name)[0] + ".fetch"), "wb") as f:
                f.write(out)
            if SECTIONS_TOO:
                out = b""
                for sec in SECTIONS:
                    lines = c.cmd(b"UID FETCH %d (BODY.PEEK[%s])" % (uid, sec), must_ok=False)
                    value = None if lines is None else section_value(lines)
                    if value is None:
                        out += sec + b"\t-1\n\n"
                    else:
                        out += sec + b"\t%d\n" % len(value) + value + b"\n"
                with open(os.path.join(OUT, os.path.splitext(name)[0] + ".sections"), "wb") as f:
                    f.write(out)
        c.cmd(b"LOGOUT")


if __name__ == "__main__":
    main()
