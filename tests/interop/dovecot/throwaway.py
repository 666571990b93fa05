"""A throwaway Dovecot on loopback, and a raw IMAP connection to talk to it.

Shared by the two tools that use Dovecot as the oracle for mailroom's answers:
`tests/interop/dovecot/oracle.py` (writes the expected FETCH files) and
`tests/interop/imap/compare_dovecot.py` (diffs whole sessions). Debian's
`dovecot-imapd` must be installed, and the caller must be root: Dovecot is started
with its own configuration in a temporary directory, mail owned by `nobody`
(Dovecot refuses uid 0 for mail), and stopped again when the `with` block ends.
"""

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time

CONF = """
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
mail_location = maildir:~/Maildir
{extra}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


class WireConn:
    """Reads IMAP responses off a socket, literals inlined in their wire form
    (`{n}\\r\\n` followed by the n octets), so two servers' answers compare as bytes."""

    def __init__(self, port, timeout=None):
        self.s = socket.create_connection(("127.0.0.1", port))
        if timeout is not None:
            self.s.settimeout(timeout)
        self.buf = b""
        self.greeting = self.read_response()

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
        """One logical response line; a line ending in a literal continues after it."""
        out = b""
        while True:
            line = self.read_line()
            out += line
            m = re.search(rb"\{(\d+)\+?\}$", line)
            if not m:
                return out
            out += b"\r\n" + self.read_n(int(m.group(1)))


class TaggedConn(WireConn):
    """A WireConn that sends tagged commands (`a1`, `a2`, ...) and collects answers."""

    def __init__(self, port, timeout=None):
        super().__init__(port, timeout)
        self.tag = 0

    def command(self, text, literal=None):
        """Sends `text` (with `literal` as a synchronising literal after it) and
        returns (untagged lines, tagged status line)."""
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
                return lines, r
            lines.append(r)


def crlf(data):
    """Bare LFs become CRLF: Dovecot sizes a bare LF as two octets ("virtual size"),
    mailroom counts the octets it stores; with CRLF input both agree."""
    return re.sub(rb"\r?\n", b"\r\n", data)


@contextlib.contextmanager
def throwaway_dovecot(port, password, users, mechanisms="plain", extra=""):
    """Runs Dovecot on 127.0.0.1:`port`, every user (home directories made for
    `users`) logging in with `password`; `extra` is more configuration, such as a
    namespace block. Prints Dovecot's log when the block raises."""
    base = tempfile.mkdtemp(prefix="dovecot-oracle-")
    os.makedirs(base + "/run")
    os.makedirs(base + "/state")
    nobody = pwd.getpwnam("nobody")
    os.chmod(base, 0o755)
    for user in users:
        os.makedirs(base + "/home/" + user)
        os.chown(base + "/home/" + user, nobody.pw_uid, nobody.pw_gid)
    conf = base + "/dovecot.conf"
    with open(conf, "w") as f:
        f.write(CONF.format(base=base, uid=nobody.pw_uid, gid=nobody.pw_gid, port=port,
                            password=password, mechanisms=mechanisms, extra=extra))
    subprocess.run(["dovecot", "-c", conf], check=True)
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        yield
    except BaseException:
        subprocess.run(["cat", base + "/log"], check=False)
        raise
    finally:
        subprocess.run(["doveadm", "-c", conf, "stop"], check=False)
        shutil.rmtree(base, ignore_errors=True)
