#!/usr/bin/env python3
"""TLS and authentication of a running mailroom IMAP server with Python's ssl,
imaplib and (for SCRAM-SHA-256) scramp, an independent SCRAM implementation.

Environment: IMAP_HOST (localhost; the name must match the certificate),
IMAP_PORT (plain with STARTTLS, 1143), IMAPS_PORT (implicit TLS, 1993),
IMAP_CAFILE (the server's certificate, required), IMAP_USER (joe@example.org),
IMAP_PASS ("secret pass"). Start the server with plaintext passwords refused
(`IMAP_NO_PLAINTEXT=1` for the example server, or a non-loopback listener) so
that LOGINDISABLED is checked. SCRAM needs `pip install scramp`; without it the
SCRAM check is skipped, unless CI is set, where that is a failure.
Exits non-zero on the first failed check.
"""

import imaplib
import os
import ssl
import sys
import warnings

HOST = os.environ.get("IMAP_HOST", "localhost")
PORT = int(os.environ.get("IMAP_PORT", "1143"))
IMAPS_PORT = int(os.environ.get("IMAPS_PORT", "1993"))
CAFILE = os.environ.get("IMAP_CAFILE")
USER = os.environ.get("IMAP_USER", "joe@example.org")
PASS = os.environ.get("IMAP_PASS", "secret pass")


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def context(**kw):
    ctx = ssl.create_default_context(cafile=CAFILE)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def implicit_tls():
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=context())
    version = m.sock.version()
    check(version in ("TLSv1.2", "TLSv1.3"), "implicit TLS handshake verified, %s" % version)
    caps = m.capabilities
    check("STARTTLS" not in caps and "LOGINDISABLED" not in caps, "no STARTTLS/LOGINDISABLED over TLS: %s" % (caps,))
    check("AUTH=PLAIN" in caps and "AUTH=SCRAM-SHA-256" in caps, "AUTH mechanisms over TLS")
    typ, _ = m.login(USER, PASS)
    check(typ == "OK", "LOGIN over implicit TLS")
    typ, data = m.select("INBOX")
    check(typ == "OK", "SELECT INBOX over TLS (%s messages)" % data[0].decode())
    if int(data[0]) > 0:
        typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        check(typ == "OK", "FETCH over TLS")
    m.logout()


def old_tls_refused():
    warnings.simplefilter("ignore", DeprecationWarning)  # asking for TLS 1.1 on purpose
    ctx = context(maximum_version=ssl.TLSVersion.TLSv1_1)
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    except (ValueError, ssl.SSLError):
        pass
    try:
        imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=ctx).logout()
    except (ssl.SSLError, OSError):
        check(True, "TLS 1.1 and older refused")
        return
    check(False, "TLS 1.1 and older refused")


def untrusted_refused():
    ctx = ssl.create_default_context()  # the system roots do not know the self-signed certificate
    try:
        imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=ctx).logout()
    except ssl.SSLCertVerificationError:
        check(True, "an unpinned client rejects the self-signed certificate (verification works)")
        return
    check(False, "self-signed certificate was accepted without the CA file")


def starttls():
    m = imaplib.IMAP4(HOST, PORT)
    caps = m.capabilities
    check("STARTTLS" in caps, "STARTTLS advertised on the plain port")
    if "LOGINDISABLED" in caps:
        check("AUTH=PLAIN" not in caps and "AUTH=SCRAM-SHA-256" in caps, "LOGINDISABLED: only SCRAM before TLS")
        try:
            m.login(USER, PASS)
            check(False, "LOGIN refused without TLS")
        except imaplib.IMAP4.error as e:
            check("PRIVACYREQUIRED" in str(e) or "LOGINDISABLED" in str(e), "LOGIN refused without TLS: %s" % e)
    else:
        print("note: server allows plaintext (no LOGINDISABLED); start it with IMAP_NO_PLAINTEXT=1 to check refusal")
    typ, _ = m.starttls(ssl_context=context())
    check(typ == "OK", "STARTTLS handshake verified, %s" % m.sock.version())
    caps = m.capabilities
    check("STARTTLS" not in caps and "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps, "capabilities after STARTTLS: %s" % (caps,))
    typ, _ = m.login(USER, PASS)
    check(typ == "OK", "LOGIN after STARTTLS")
    typ, _ = m.select("INBOX")
    check(typ == "OK", "SELECT after STARTTLS")
    m.logout()


def scram():
    try:
        from scramp import ScramClient
    except ImportError:
        if os.environ.get("CI"):
            check(False, "scramp is installed (pip install scramp)")
        print("skipped: SCRAM-SHA-256 (pip install scramp)")
        return

    def login(m, password):
        client = ScramClient(["SCRAM-SHA-256"], USER, password)
        steps = iter(["first", "final", "verify"])

        def respond(challenge):
            step = next(steps)
            if step == "first":
                return client.get_client_first().encode()
            if step == "final":
                client.set_server_first(challenge.decode())
                return client.get_client_final().encode()
            client.set_server_final(challenge.decode())  # raises unless the server knows the password
            return b""

        return m.authenticate("SCRAM-SHA-256", respond)

    # Over the plain port: SCRAM never sends the password, so it is allowed.
    m = imaplib.IMAP4(HOST, PORT)
    try:
        login(m, "not the password")
        check(False, "SCRAM with a wrong password fails")
    except imaplib.IMAP4.error as e:
        check("AUTHENTICATIONFAILED" in str(e), "SCRAM with a wrong password fails: %s" % e)
    typ, _ = login(m, PASS)
    check(typ == "OK", "SCRAM-SHA-256 (scramp) without TLS, server signature verified")
    m.logout()
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=context())
    typ, _ = login(m, PASS)
    check(typ == "OK", "SCRAM-SHA-256 (scramp) over implicit TLS")
    m.logout()


def main():
    if not CAFILE:
        print("IMAP_CAFILE must name the server's certificate")
        sys.exit(2)
    implicit_tls()
    old_tls_refused()
    untrusted_refused()
    starttls()
    scram()
    print("all TLS checks passed")


if __name__ == "__main__":
    main()
