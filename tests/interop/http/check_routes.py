"""Checks that every operation of an OpenAPI document is served: a request to it
(with placeholder parameters) must not get the router's own 404 ("no such
resource") or 405, must answer a status the document lists for it, and must need
the token when the document says so. Careful: it sends every operation, including
DELETE /api/v1/test/messages (purges all messages) -- run it against a test server."""

import json
import os
import sys
import urllib.error
import urllib.request

base = os.environ.get("BASE", "http://127.0.0.1:8025")
token = os.environ["TOKEN"]
doc = json.load(open(sys.argv[1]))
placeholders = {"address": "nobody@example.org", "name": "INBOX", "uid": "1", "id": "999999",
                "identifier": "anyone", "selector": "mr202612r"}


def call(method, path, authorized):
    url = base + path.format(**placeholders) + "?timeout_ms=1"
    body = b"{}" if method in ("post", "patch", "put") else None
    request = urllib.request.Request(url, data=body, method=method.upper())
    request.add_header("Content-Type", "application/json")
    if authorized:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


failures = []
operations = 0
for path, item in doc["paths"].items():
    for method, operation in item.items():
        operations += 1
        status, content_type, body = call(method, path, True)
        error = ""
        if body and "json" in content_type:
            try:
                parsed = json.loads(body)
            except ValueError:
                failures.append(f"{method.upper()} {path}: bad JSON: {body[:80]!r}")
            else:
                if isinstance(parsed, dict):
                    error = parsed.get("error", "")
        if status == 405 or (status == 404 and "no such resource" in error):
            failures.append(f"{method.upper()} {path}: documented but not routed ({status})")
        if operation.get("security"):
            anonymous, _, _ = call(method, path, False)
            if anonymous != 401:
                failures.append(f"{method.upper()} {path}: answers {anonymous} without the token")
        if str(status) not in operation["responses"]:
            failures.append(f"{method.upper()} {path}: answered {status}, not documented")

for failure in failures:
    print("FAIL:", failure)
print(f"{operations} documented operations checked against {base}")
sys.exit(1 if failures else 0)
