#!/usr/bin/env python3
"""An MTA-STS policy host that breaks the rules of RFC 8461 §3.3 on purpose, for
mailroom's outbound MTA-STS tests (crates/mailroom/tests/mta_sts.rs).

policy_host.py CERT KEY

Serves HTTPS (Python's http.server and ssl) on the listening socket it is given as
standard input, with the certificate CERT and key KEY, until it is killed. What it
answers depends on the Host header:

  mta-sts.good.*      200 text/plain: a valid enforce policy (the control)
  mta-sts.redirect.*  301 to another host (redirects must not be followed)
  mta-sts.html.*      200 text/html with the policy (the media type must be text/plain)
  mta-sts.huge.*      200 text/plain, the policy and 100 000 bytes more
  anything else       404

Every policy it serves lists only the MX host nowhere.invalid: a sender that takes
one of them refuses the recipient domain's real MX host.
"""
import http.server
import socket
import ssl
import sys

POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: nowhere.invalid\r\nmax_age: 86400\r\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        kind = host.split(".")[1] if host.startswith("mta-sts.") else ""
        status, media_type, body, extra = 404, "text/plain", b"not here\r\n", {}
        if kind == "good":
            status, body = 200, POLICY
        elif kind == "redirect":
            status, body = 301, b""
            extra = {"Location": "https://mta-sts.good.test/.well-known/mta-sts.txt"}
        elif kind == "html":
            status, media_type, body = 200, "text/html", POLICY
        elif kind == "huge":
            status, body = 200, POLICY + b"x-padding: " + b"a" * 100_000 + b"\r\n"
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main(cert, key):
    listener = socket.socket(fileno=sys.stdin.fileno())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(
        listener.getsockname(), Handler, bind_and_activate=False
    )
    server.socket = context.wrap_socket(listener, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
