#!/usr/bin/env python3
"""Interop: Python's smtplib sends to a running mailroom SMTP listener.

Checks, each with the reply mailroom must give:
  * a multipart message with a binary attachment is accepted (250),
  * the null sender MAIL FROM:<> is accepted (bounces),
  * an unknown user gets 550 5.1.1, a remote domain 550 5.7.1 (no open relay),
  * MAIL FROM with SIZE over the limit gets 552 5.3.4,
  * several recipients in one transaction (alias, catch-all, +tag),
  * optionally (--imap-port) imaplib logs in as alice and finds the messages.

Usage: smtplib_send.py [--host 127.0.0.1] [--port 2525] [--imap-port 1143]
Exit status 0 when every check passed.
"""

import argparse
import email.policy
import imaplib
import smtplib
import sys
import time
import uuid
from email.message import EmailMessage

FAILURES = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f"  ({detail})" if detail and not ok else ""))
    if not ok:
        FAILURES.append(name)


def connect(args):
    s = smtplib.SMTP(args.host, args.port, local_hostname="smtplib.interop.test", timeout=30)
    code, text = s.ehlo()
    check("EHLO answers 250", code == 250, f"{code} {text!r}")
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--to", default="alice@example.org")
    p.add_argument("--imap-port", type=int, default=0)
    p.add_argument("--imap-user", default="alice@example.org")
    p.add_argument("--imap-password", default="alice-pw")
    args = p.parse_args()
    tag = uuid.uuid4().hex[:12]

    s = connect(args)
    for ext in ["size", "8bitmime", "pipelining", "enhancedstatuscodes", "smtputf8", "chunking"]:
        check(f"EHLO advertises {ext.upper()}", s.has_extn(ext))

    # 1. A message with an attachment.
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Interop Sender <sender@remote.test>"
    msg["To"] = args.to
    msg["Subject"] = f"smtplib interop {tag}"
    msg.set_content("Hello from smtplib.\n.\n..a line with dots\n")
    msg.add_attachment(bytes(range(256)) * 16, maintype="application", subtype="octet-stream", filename="blob.bin")
    refused = s.send_message(msg)
    check("message with attachment accepted", refused == {}, repr(refused))

    # 2. The null sender.
    raw = f"From: MAILER-DAEMON@remote.test\r\nTo: {args.to}\r\nSubject: bounce {tag}\r\n\r\nbounce body\r\n"
    try:
        s.sendmail("", [args.to], raw)
        check("null sender <> accepted", True)
    except smtplib.SMTPException as e:
        check("null sender <> accepted", False, repr(e))

    # 3. Unknown user and relay.
    s.rset()
    code, _ = s.mail("sender@remote.test")
    check("MAIL FROM 250", code == 250)
    code, text = s.rcpt("nobody@example.org")
    check("unknown user gets 550 5.1.1", code == 550 and text.startswith(b"5.1.1"), f"{code} {text!r}")
    code, text = s.rcpt("someone@elsewhere.test")
    check("remote domain gets 550 5.7.1", code == 550 and text.startswith(b"5.7.1"), f"{code} {text!r}")
    s.rset()

    # 4. SIZE over the limit.
    code, text = s.mail("sender@remote.test", ["SIZE=999999999999"])
    check("SIZE over the limit gets 552 5.3.4", code == 552 and text.startswith(b"5.3.4"), f"{code} {text!r}")
    s.rset()

    # 5. Several recipients: alias, catch-all, sub-address.
    raw = f"From: sender@remote.test\r\nTo: many\r\nSubject: many {tag}\r\n\r\nto many\r\n"
    try:
        refused = s.sendmail("sender@remote.test", ["info@example.org", "anything@catchall.test", "alice+tag@example.org"], raw)
        check("alias, catch-all and +tag accepted", refused == {}, repr(refused))
    except smtplib.SMTPException as e:
        check("alias, catch-all and +tag accepted", False, repr(e))

    code, _ = s.noop()
    check("NOOP 250", code == 250)
    code, text = s.verify("alice")
    check("VRFY 252", code == 252, f"{code} {text!r}")
    s.quit()

    if args.imap_port:
        time.sleep(0.5)
        try:
            m = imaplib.IMAP4(args.host, args.imap_port)
            m.login(args.imap_user, args.imap_password)
            m.select("INBOX")
            typ, data = m.search(None, "SUBJECT", tag)
            uids = data[0].split() if typ == "OK" else []
            check("imaplib finds the messages", len(uids) >= 3, f"{typ} {data!r}")
            if uids:
                typ, data = m.fetch(uids[0], "(BODY.PEEK[])")
                body = data[0][1] if typ == "OK" and data and isinstance(data[0], tuple) else b""
                check("FETCH has Return-Path and Received", body.startswith(b"Return-Path: <") and b"\r\nReceived: from " in body)
            m.logout()
        except Exception as e:  # noqa: BLE001 - any IMAP failure is a failed check
            check("imaplib reads", False, repr(e))

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
        return 1
    print("all smtplib checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
