#!/usr/bin/env python3
"""Memory per idle IMAP connection: opens N connections to a running mailroom
(logged in, INBOX selected, in IDLE) and reports the server's RSS growth.

    cargo build --release -p mailroom-imap --example serve
    target/release/examples/serve 127.0.0.1:11143 &
    python3 tests/interop/imap/idle_memory.py PID [N]

PID is the server's process id (RSS is read from /proc/PID/status); N defaults
to 1000. Raise `ulimit -n` first if needed.
"""

import os
import socket
import sys
import time

PID = int(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
HOST = os.environ.get("IMAP_HOST", "127.0.0.1")
PORT = int(os.environ.get("IMAP_PORT", "1143"))


def rss_kib():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def expect(sock, token):
    buf = b""
    while token not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError(buf)
        buf += data
    return buf


def idle_connection():
    s = socket.create_connection((HOST, PORT))
    expect(s, b"\r\n")
    s.sendall(b'a LOGIN joe@example.org "secret pass"\r\nb SELECT INBOX\r\nc IDLE\r\n')
    expect(s, b"+ idling")
    return s


# Warm-up: the password hash (argon2, ~19 MiB per verification) leaves memory in
# the allocator's arenas after the first logins; measure after that.
warm = [idle_connection() for _ in range(50)]
time.sleep(1)
before = rss_kib()
conns = [idle_connection() for _ in range(N)]
time.sleep(1)
after = rss_kib()
print("connections: %d" % N)
print("server RSS before: %d KiB, after: %d KiB" % (before, after))
print("per idle connection (logged in, INBOX selected, IDLE): %.1f KiB" % ((after - before) / N))
for s in conns + warm:
    s.close()
