#!/usr/bin/env python3
"""Talks to a mailroom container from the host, standard library only.

    mailcheck.py banner HOST PORT [--timeout S]      wait for an SMTP/IMAP greeting
    mailcheck.py tls HOST PORT                       does PORT speak TLS? (exit 0/1)
    mailcheck.py send HOST PORT FROM TO SUBJECT      deliver one message over SMTP
    mailcheck.py read MODE HOST PORT USER PASS SUBJECT
                  MODE: imaps | starttls | plain     log in, find SUBJECT in INBOX
    mailcheck.py http URL                            print status and body of a GET

Exit status 0 on success; a one-line reason on stderr otherwise. No certificate is
verified: the container's certificate is the self-signed one it generated.
"""

import imaplib
import smtplib
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from email.message import EmailMessage


def insecure_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def banner(host, port, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=3) as s:
                s.settimeout(3)
                line = s.recv(512)
                if line.startswith(b"220") or line.startswith(b"* OK"):
                    print(line.decode("utf-8", "replace").strip())
                    return 0
                last = f"unexpected greeting {line!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    print(f"no greeting on {host}:{port} within {timeout}s: {last}", file=sys.stderr)
    return 1


def tls(host, port):
    try:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with insecure_context().wrap_socket(raw, server_hostname="localhost") as s:
                cert = s.getpeercert(binary_form=True)
                s.settimeout(5)
                greeting = s.recv(512)
                print(f"{s.version()} {s.cipher()[0]}, certificate {len(cert or b'')} bytes, "
                      f"greeting {greeting.decode('utf-8', 'replace').strip()!r}")
                return 0
    except (OSError, ssl.SSLError) as e:
        print(f"no TLS on {host}:{port}: {e}", file=sys.stderr)
        return 1


def send(host, port, sender, rcpt, subject):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@smoke.test>"
    msg.set_content(f"Sent by tests/container/smoke.sh: {subject}\n")
    with smtplib.SMTP(host, int(port), timeout=30) as s:
        s.ehlo("smoke.test")
        refused = s.send_message(msg)
    if refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 1
    print(f"delivered {subject!r} to {rcpt}")
    return 0


def read(mode, host, port, user, password, subject):
    if mode == "imaps":
        imap = imaplib.IMAP4_SSL(host, int(port), ssl_context=insecure_context(), timeout=30)
    else:
        imap = imaplib.IMAP4(host, int(port), timeout=30)
        if mode == "starttls":
            imap.starttls(ssl_context=insecure_context())
    try:
        imap.login(user, password)
        typ, _ = imap.select("INBOX", readonly=True)
        if typ != "OK":
            raise RuntimeError("SELECT INBOX failed")
        # Delivery is acknowledged after the commit, so the message is there already;
        # allow a little time anyway for a slow machine.
        deadline = time.monotonic() + 10
        while True:
            # imaplib sends arguments as they are: quote the subject (it has spaces).
            quoted = '"' + subject.replace("\\", "\\\\").replace('"', '\\"') + '"'
            typ, data = imap.uid("SEARCH", "HEADER", "Subject", quoted)
            uids = data[0].split() if typ == "OK" and data and data[0] else []
            if uids or time.monotonic() > deadline:
                break
            time.sleep(0.3)
            imap.noop()
        if not uids:
            print(f"{subject!r} is not in INBOX of {user} ({mode})", file=sys.stderr)
            return 1
        typ, data = imap.uid("FETCH", uids[-1], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        got = b"".join(p[1] for p in data if isinstance(p, tuple)).decode("utf-8", "replace")
        if subject not in got:
            print(f"FETCH gave {got!r}, not the subject {subject!r}", file=sys.stderr)
            return 1
        print(f"found {subject!r} over {mode} (UID {uids[-1].decode()})")
        return 0
    finally:
        try:
            imap.logout()
        except Exception:
            pass


def http(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            print(r.status, r.read().decode("utf-8", "replace").strip())
            return 0
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode("utf-8", "replace").strip())
        return 1
    except OSError as e:
        print(f"000 {e}")
        return 2


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    try:
        if cmd == "banner":
            timeout = 60.0
            if "--timeout" in args:
                i = args.index("--timeout")
                timeout = float(args[i + 1])
                del args[i : i + 2]
            return banner(*args, timeout=timeout)
        if cmd == "tls":
            return tls(*args)
        if cmd == "send":
            return send(*args)
        if cmd == "read":
            return read(*args)
        if cmd == "http":
            return http(*args)
    except Exception as e:  # one line for the log, not a traceback
        print(f"{cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
