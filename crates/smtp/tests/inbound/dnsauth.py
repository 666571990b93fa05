#!/usr/bin/env python3
"""Test helper for mailroom's inbound sender-authentication tests.

serve ZONEFILE      serve the zone with dnslib on 127.0.0.1 (UDP and TCP on one
                    free port), print the port, and stop when standard input closes
                    (the test process ended or stopped the server)
sign KEY DOMAIN SELECTOR
                    DKIM-sign (dkimpy, relaxed/relaxed) the message on standard input
arc KEY DOMAIN SELECTOR SRV_ID
                    add an ARC set (dkimpy's ARC signer) to the message on standard
                    input, as the intermediary SRV_ID whose Authentication-Results
                    the message carries
"""
import socket
import sys
import threading


def serve(zonefile):
    import os

    from dnslib.server import DNSLogger, DNSServer
    from dnslib.zoneresolver import ZoneResolver

    with open(zonefile) as f:
        resolver = ZoneResolver(f.read())
    # Only errors are logged, to standard error: the test reads the port from
    # standard output and then closes it.
    quiet = DNSLogger("-recv,-send,-request,-reply,-truncated,-data")
    for _ in range(50):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        try:
            udp = DNSServer(resolver, address="127.0.0.1", port=port, logger=quiet)
            tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=quiet)
            break
        except OSError:
            continue
    else:
        sys.exit("no free port for the DNS server")
    udp.start_thread()
    tcp.start_thread()
    print(port, flush=True)
    sys.stdout = open(os.devnull, "w")
    # Standard input is the test's pipe: EOF means stop.
    sys.stdin.read()
    udp.stop()
    tcp.stop()


def sign(key, domain, selector):
    import dkim

    message = sys.stdin.buffer.read()
    with open(key, "rb") as f:
        private = f.read()
    signature = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        private,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    sys.stdout.buffer.write(signature + message)


def arc(key, domain, selector, srv_id):
    import dkim

    message = sys.stdin.buffer.read()
    with open(key, "rb") as f:
        private = f.read()
    fields = dkim.arc_sign(
        message,
        selector.encode(),
        domain.encode(),
        private,
        srv_id.encode(),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    if not fields:
        sys.exit("dkimpy produced no ARC set (no Authentication-Results for the srv_id?)")
    sys.stdout.buffer.write(b"".join(fields) + message)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"serve": serve, "sign": sign, "arc": arc}[command](*args)
