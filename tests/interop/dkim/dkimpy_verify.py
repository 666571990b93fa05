#!/usr/bin/env python3
"""Verifies every DKIM-Signature of a message with dkimpy, an independent verifier.

Usage: dkimpy_verify.py MESSAGE_FILE RECORDS_FILE

RECORDS_FILE holds TXT records in zone-file syntax, one a line, as
`mailroom dkim generate` and `mailroom dns records` print them:
    sel._domainkey.example.org. 3600 IN TXT "v=DKIM1; k=rsa; " "p=..."
dkimpy looks keys up through these records instead of DNS (its dnsfunc hook).
Prints one JSON list: {"d", "s", "a", "ok"} per signature, topmost first.
"""
import json
import shlex
import sys

try:
    import dkim
    import nacl  # noqa: F401  (dkimpy verifies ed25519-sha256 with PyNaCl)
except ImportError as error:
    sys.exit(
        f"dkimpy or PyNaCl is missing ({error}): "
        "run `python3 -m pip install -r tests/interop/requirements.txt`"
    )


def load_records(path):
    records = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = shlex.split(line.strip(), comments=True)
            if len(parts) >= 4 and "TXT" in parts[1:4]:
                at = parts.index("TXT")
                records[parts[0].lower().rstrip(".")] = "".join(parts[at + 1 :])
    return records


def main():
    message = open(sys.argv[1], "rb").read()
    records = load_records(sys.argv[2])

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        value = records.get(name.lower().rstrip("."))
        return value.encode() if value is not None else None

    d = dkim.DKIM(message, minkey=1024)
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    results = []
    for idx in range(count):
        try:
            ok = d.verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as error:
            print(f"signature {idx}: {error}", file=sys.stderr)
            ok = False
        fields = d.signature_fields or {}
        results.append(
            {
                "d": fields.get(b"d", b"").decode(),
                "s": fields.get(b"s", b"").decode(),
                "a": fields.get(b"a", b"").decode(),
                "ok": bool(ok),
            }
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
