#!/usr/bin/env python3
"""A SAML 2.0 identity provider made with pysaml2, for mailroom's interop tests.

It is an independent implementation of the other side: pysaml2 parses our
AuthnRequests (HTTP-Redirect binding), and builds and signs (with the xmlsec1 binary,
RSA-SHA256) the responses it posts back through the browser (HTTP-POST binding).

    idp.py --port 9000 --user alice@example.org:alice-sso-pw:mail-admins

prints `ready <base URL> <metadata file>` (give the file to mailroom's `[saml]
idp_metadata`), then serves until its standard input closes (the test that started
it ended) and removes its temporary directory. One IdP
serves any number of mailroom servers on 127.0.0.1: an SP's metadata is fetched from
its entity ID (mailroom's `/saml/metadata`) the first time it sends a request.

Users sign in on a small HTML form (`username`, `password`); the answer page posts
the response to the SP with a script, or with its button when scripts are off.
"""

import argparse
import html
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.authn_context import PASSWORD, AuthnBroker, authn_context_class_ref
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import get_xmlsec_binary
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256


def make_key(directory):
    key = os.path.join(directory, "idp-key.pem")
    cert = os.path.join(directory, "idp-cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", "2", "-subj", "/CN=pysaml2 test IdP"],
        check=True, capture_output=True,
    )
    return key, cert


def idp_config(base, key, cert, sp_metadata_files):
    conf = {
        "entityid": f"{base}/metadata",
        "name": "pysaml2 test IdP",
        "service": {
            "idp": {
                "name": "pysaml2 test IdP",
                "endpoints": {
                    "single_sign_on_service": [(f"{base}/sso/redirect", BINDING_HTTP_REDIRECT)],
                },
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None}},
                "sign_response": True,
                "sign_assertion": True,
            },
        },
        "key_file": key,
        "cert_file": cert,
        "xmlsec_binary": get_xmlsec_binary(["/usr/bin", "/usr/local/bin"]),
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "allow_unknown_attributes": True,
        "metadata": {"local": sp_metadata_files} if sp_metadata_files else {},
    }
    config = IdPConfig()
    config.load(conf)
    return config


class Idp:
    def __init__(self, base, directory, users):
        self.base = base
        self.directory = directory
        self.users = users
        self.key, self.cert = make_key(directory)
        self.sp_files = {}
        self.lock = threading.Lock()
        self.server = None
        self.pending = {}
        metadata = create_metadata_string(None, idp_config(base, self.key, self.cert, []), sign=False)
        path = os.path.join(directory, "idp-metadata.xml")
        with open(path + ".tmp", "wb") as f:
            f.write(metadata if isinstance(metadata, bytes) else metadata.encode())
        os.replace(path + ".tmp", path)

    def ensure_sp(self, entity_id):
        """Fetches an SP's metadata from its entity ID, once; loopback SPs only."""
        with self.lock:
            if entity_id in self.sp_files:
                return
            host = urllib.parse.urlsplit(entity_id).hostname
            if host not in ("127.0.0.1", "localhost"):
                raise ValueError(f"unknown SP {entity_id}")
            data = urllib.request.urlopen(entity_id, timeout=10).read()
            path = os.path.join(self.directory, f"sp-{len(self.sp_files)}.xml")
            with open(path, "wb") as f:
                f.write(data)
            self.sp_files[entity_id] = path
            self.server = Server(config=idp_config(self.base, self.key, self.cert, list(self.sp_files.values())))

    def request_issuer(self, saml_request):
        # Parse once with a bare server only to learn the issuer (its metadata may
        # not be loaded yet); the real parse below checks it against the metadata.
        bare = Server(config=idp_config(self.base, self.key, self.cert, []))
        req = bare.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)
        return req.message.issuer.text

    def respond(self, saml_request, relay_state, user):
        req = self.server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)
        message = req.message
        sp_entity_id = message.issuer.text
        acs_url = message.assertion_consumer_service_url
        mail, groups = user["mail"], user["groups"]
        broker = AuthnBroker()
        broker.add(authn_context_class_ref(PASSWORD), "")
        authn = broker.get_authn_by_accr(PASSWORD)
        response = self.server.create_authn_response(
            identity={"mail": [mail], "groups": groups},
            in_response_to=message.id,
            destination=acs_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=mail),
            authn=authn,
            sign_response=True,
            sign_assertion=True,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        args = self.server.apply_binding(BINDING_HTTP_POST, str(response), acs_url, relay_state, response=True)
        return args["data"]


def login_form(saml_request, relay_state, error=""):
    err = f'<p id="error" style="color:#a00">{html.escape(error)}</p>' if error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pysaml2 test IdP</title></head>
<body style="font-family:sans-serif;max-width:28rem;margin:3rem auto">
<h1>pysaml2 test IdP</h1>{err}
<form method="post" action="/login">
<input type="hidden" name="SAMLRequest" value="{html.escape(saml_request)}">
<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">
<p><label for="username">Username</label><br><input id="username" name="username" autofocus></p>
<p><label for="password">Password</label><br><input id="password" name="password" type="password"></p>
<p><button id="login" type="submit">Log in</button></p>
</form></body></html>"""


def handler_for(idp):
    class Handler(BaseHTTPRequestHandler):
        def send_html(self, status, body):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/metadata":
                with open(os.path.join(idp.directory, "idp-metadata.xml"), "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/samlmetadata+xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif url.path == "/sso/redirect" and "SAMLRequest" in query:
                try:
                    idp.ensure_sp(idp.request_issuer(query["SAMLRequest"]))
                except Exception as e:  # noqa: BLE001 - the test reads the page
                    self.send_html(400, f"<p>bad request: {html.escape(str(e))}</p>")
                    return
                self.send_html(200, login_form(query["SAMLRequest"], query.get("RelayState", "")))
            else:
                self.send_html(404, "<p>not found</p>")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if self.path != "/login":
                self.send_html(404, "<p>not found</p>")
                return
            user = idp.users.get(form.get("username", ""))
            if user is None or user["password"] != form.get("password"):
                self.send_html(401, login_form(form.get("SAMLRequest", ""), form.get("RelayState", ""), "Wrong username or password."))
                return
            try:
                page = idp.respond(form["SAMLRequest"], form.get("RelayState", ""), user)
            except Exception as e:  # noqa: BLE001
                self.send_html(500, f"<p>could not answer: {html.escape(repr(e))}</p>")
                return
            self.send_html(200, page)

        def log_message(self, fmt, *args):
            sys.stderr.write("idp: " + (fmt % args) + "\n")

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", help="where to keep keys and metadata (default: a temporary directory)")
    ap.add_argument("--user", action="append", default=[],
                    help="mail:password[:group,group]; the username is the mail address")
    args = ap.parse_args()
    users = {}
    for spec in args.user:
        mail, password, *rest = spec.split(":")
        users[mail] = {"mail": mail, "password": password,
                       "groups": [g for g in (rest[0].split(",") if rest else []) if g]}
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or tmp
        os.makedirs(directory, exist_ok=True)
        base = f"http://127.0.0.1:{args.port}"
        idp = Idp(base, directory, users)
        httpd = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(idp))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        print(f"ready {base} {os.path.join(directory, 'idp-metadata.xml')}", flush=True)
        # Until the test that started us is gone.
        sys.stdin.read()
        httpd.shutdown()


if __name__ == "__main__":
    main()
