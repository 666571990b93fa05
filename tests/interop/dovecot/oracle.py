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
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CORPUS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "crates/message/tests/data/python-email")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "crates/message/tests/data/dovecot")
PORT = 14393

CONF = """
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = static
  args = password=pass
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT))
        self.buf = b""
        self.tag = 0
        self.read_line()

    def fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def read_line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_n(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self):
        """Reads one logical response line, with literals inlined in wire form."""
        out = b""
        while True:
            line = self.read_line()
            out += line
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return out
            out += b"\r\n" + self.read_n(int(m.group(1)))

    def cmd(self, text, literal=None, must_ok=True):
        self.tag += 1
        tag = b"a%d" % self.tag
        if literal is not None:
            self.s.sendall(tag + b" " + text + b" {%d}\r\n" % len(literal))
            cont = self.read_line()
            assert cont.startswith(b"+"), cont
            self.s.sendall(literal + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            r = self.read_response()
            if r.startswith(tag + b" "):
                if must_ok:
                    assert r.startswith(tag + b" OK"), r
                return lines if r.startswith(tag + b" OK") else None
            lines.append(r)


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


def crlf(data):
    return re.sub(rb"\r?\n", b"\r\n", data)


def fetch_item(lines, name):
    for line in lines:
        i = line.find(b" " + name + b" ")
        if i >= 0 and line.startswith(b"* "):
            return line[i + len(name) + 2:]
    raise KeyError(name)


def split_items(line):
    """Splits '(ENVELOPE x BODYSTRUCTURE y)' style payload is not needed: we fetch one item at a time."""
    return line


def main():
    base = tempfile.mkdtemp(prefix="dovecot-oracle-")
    os.makedirs(base + "/run")
    os.makedirs(base + "/state")
    # Mail is owned by an unprivileged user: Dovecot refuses uid 0 for mail.
    import pwd
    nobody = pwd.getpwnam("nobody")
    os.chmod(base, 0o755)
    os.makedirs(base + "/home/u")
    os.chown(base + "/home/u", nobody.pw_uid, nobody.pw_gid)
    conf = base + "/dovecot.conf"
    with open(conf, "w") as f:
        f.write(CONF.format(base=base, uid=nobody.pw_uid, gid=nobody.pw_gid, port=PORT))
    subprocess.run(["dovecot", "-c", conf], check=True)
    try:
        for _ in range(50):
            try:
                c = Conn()
                break
            except OSError:
                time.sleep(0.1)
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
    except Exception:
        subprocess.run(["cat", base + "/log"])
        raise
    finally:
        subprocess.run(["doveadm", "-c", conf, "stop"], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
