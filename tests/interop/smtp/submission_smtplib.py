#!/usr/bin/env python3
"""Submission interop with Python's smtplib: STARTTLS (certificate verified against
the server's self-signed cert), AUTH, sending as oneself, refusals. See README.md."""
import argparse
import smtplib
import ssl
import sys
from email.message import EmailMessage

failures = 0


def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({detail})"))
    if not cond:
        failures += 1


def context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The certificate names mx.example.org; we connect to 127.0.0.1. The chain is
    # still verified against the server's own certificate.
    ctx.check_hostname = False
    return ctx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="submission (STARTTLS)")
    ap.add_argument("--ssl-port", type=int, help="submissions (implicit TLS)")
    ap.add_argument("--cafile", required=True)
    args = ap.parse_args()

    # Without TLS: no AUTH offered, MAIL refused with 530.
    with smtplib.SMTP(args.host, args.port, local_hostname="client.test") as s:
        s.ehlo()
        check("no AUTH before STARTTLS", not s.has_extn("auth"), s.esmtp_features)
        check("STARTTLS offered", s.has_extn("starttls"))
        code, msg = s.mail("alice@example.org")
        check("MAIL before AUTH is 530 5.7.0", code == 530 and b"5.7.0" in msg, (code, msg))

    with smtplib.SMTP(args.host, args.port, local_hostname="client.test") as s:
        s.starttls(context=context(args.cafile))
        s.ehlo()
        check("AUTH offered over TLS", s.has_extn("auth"), s.esmtp_features)
        try:
            s.login("alice@example.org", "wrong")
            check("bad password refused", False, "accepted")
        except smtplib.SMTPAuthenticationError as e:
            check("bad password is 535", e.smtp_code == 535, e)
        s.login("alice@example.org", "alice-pw")
        check("login", True)
        m = EmailMessage()
        m["From"] = "Alice <alice@example.org>"
        m["To"] = "bob@example.org"
        m["Subject"] = "smtplib submission"
        m.set_content("hello from smtplib\n")
        refused = s.send_message(m, to_addrs=["bob@example.org", "carol@remote.example"])
        check("local + remote recipients accepted", refused == {}, refused)
        try:
            s.sendmail("bob@example.org", ["alice@example.org"], b"From: bob@example.org\r\n\r\nx\r\n")
            check("sending as bob refused", False, "accepted")
        except smtplib.SMTPSenderRefused as e:
            check("sending as bob is 550 5.7.1", e.smtp_code == 550 and b"5.7.1" in e.smtp_error, e)

    if args.ssl_port:
        with smtplib.SMTP_SSL(args.host, args.ssl_port, local_hostname="client.test",
                              context=context(args.cafile)) as s:
            s.login("bob@example.org", "bob-pw")
            refused = s.sendmail("bob@example.org", ["alice@example.org"],
                                 b"From: bob@example.org\r\nSubject: implicit tls\r\n\r\nx\r\n")
            check("implicit TLS submission", refused == {}, refused)

    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
