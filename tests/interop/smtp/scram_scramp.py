#!/usr/bin/env python3
"""AUTH SCRAM-SHA-256 against mailroom's submission listener, driven by scramp
(PyPI), an implementation independent of ours: the client proves the password and
checks the server's signature. Exit 0 on success, 1 on failure, 77 when scramp is
missing (the Rust test skips then, unless CI is set)."""
import argparse
import base64
import smtplib
import ssl
import sys

try:
    from scramp import ScramClient
except ImportError:
    print("scramp is missing: python3 -m pip install scramp")
    sys.exit(77)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--user", default="alice@example.org")
    ap.add_argument("--password", default="alice-pw")
    args = ap.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.check_hostname = False  # the certificate names mx.example.org; verified chain
    with smtplib.SMTP(args.host, args.port, local_hostname="client.test") as s:
        s.starttls(context=ctx)
        s.ehlo()
        mechs = s.esmtp_features.get("auth", "").split()
        if "SCRAM-SHA-256" not in mechs:
            print(f"FAIL SCRAM-SHA-256 not offered: {mechs}")
            return 1
        # Wrong password first: the server must refuse with 535.
        bad = ScramClient(["SCRAM-SHA-256"], args.user, "wrong")
        code, msg = s.docmd("AUTH", "SCRAM-SHA-256 " + base64.b64encode(bad.get_client_first().encode()).decode())
        if code != 334:
            print(f"FAIL server-first: {code} {msg}")
            return 1
        bad.set_server_first(base64.b64decode(msg).decode())
        code, msg = s.docmd(base64.b64encode(bad.get_client_final().encode()).decode())
        if code != 535:
            print(f"FAIL wrong password answered {code} {msg}")
            return 1
        print("ok   wrong password is 535")

        c = ScramClient(["SCRAM-SHA-256"], args.user, args.password)
        code, msg = s.docmd("AUTH", "SCRAM-SHA-256 " + base64.b64encode(c.get_client_first().encode()).decode())
        if code != 334:
            print(f"FAIL server-first: {code} {msg}")
            return 1
        c.set_server_first(base64.b64decode(msg).decode())
        code, msg = s.docmd(base64.b64encode(c.get_client_final().encode()).decode())
        if code != 334:
            print(f"FAIL server-final: {code} {msg}")
            return 1
        c.set_server_final(base64.b64decode(msg).decode())  # raises if the signature is wrong
        print("ok   server signature verified by scramp")
        code, msg = s.docmd("")
        if code != 235:
            print(f"FAIL final answer {code} {msg}")
            return 1
        print("ok   SCRAM-SHA-256 authenticated (235)")
        code, msg = s.mail(args.user)
        if code != 250:
            print(f"FAIL MAIL after SCRAM: {code} {msg}")
            return 1
        print("ok   MAIL FROM accepted after SCRAM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
