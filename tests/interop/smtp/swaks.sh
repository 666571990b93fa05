#!/usr/bin/env bash
# Interop: swaks (Debian package `swaks`) sends to a running mailroom SMTP listener.
#
# Usage: swaks.sh [HOST:PORT] [LMTP_HOST:PORT]   (default 127.0.0.1:2525; LMTP checks
# only when the second argument is given). Exit status 0 when every check passed.
set -u
SERVER="${1:-127.0.0.1:2525}"
LMTP="${2:-}"
TAG="$(date +%s)-$$"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILED=0

# expect NAME EXPECTED-EXIT-STATUS PATTERN-IN-TRANSCRIPT swaks-arguments...
# swaks exits 0 on success, 23/24/25 when the server refuses MAIL/RCPT/DATA.
expect() {
    local name="$1" want="$2" pattern="$3"
    shift 3
    swaks --hide-informational --server "$SERVER" --helo swaks.interop.test "$@" >"$WORK/out" 2>&1
    local got=$?
    if [ "$got" -eq "$want" ] && grep -qE "$pattern" "$WORK/out"; then
        echo "ok   $name"
    else
        echo "FAIL $name (exit $got, wanted $want; pattern /$pattern/)"
        sed 's/^/     /' "$WORK/out"
        FAILED=$((FAILED + 1))
    fi
}

head -c 20000 /dev/urandom >"$WORK/blob.bin"

expect "plain message" 0 '<-  250 2\.0\.0 OK queued as' \
    --to alice@example.org --from sender@remote.test --header "Subject: swaks plain $TAG"
expect "attachment" 0 '<-  250 2\.0\.0 OK queued as' \
    --to alice@example.org --from sender@remote.test --header "Subject: swaks attachment $TAG" \
    --body "See the attachment." --attach-type application/octet-stream --attach @"$WORK/blob.bin"
expect "pipelining, several recipients" 0 '<-  250 2\.0\.0 OK queued as' \
    --pipeline --to alice@example.org,bob@example.org,info@example.org,x@catchall.test \
    --from sender@remote.test --header "Subject: swaks pipelined $TAG"
expect "null sender" 0 'MAIL FROM:<>' \
    --to bob@example.org --from '<>' --header "Subject: swaks bounce $TAG"
expect "sub-address" 0 '<-  250 2\.1\.5' \
    --to alice+swaks@example.org --from sender@remote.test --header "Subject: swaks tag $TAG"
expect "unknown user refused" 24 '<\*\* 550 5\.1\.1' \
    --to nobody@example.org --from sender@remote.test
expect "relay denied" 24 '<\*\* 550 5\.7\.1' \
    --to someone@elsewhere.test --from sender@remote.test
if [ -n "$LMTP" ]; then
    SERVER="$LMTP" expect "LMTP per-recipient replies" 0 '250 2\.1\.5 <bob@example.org> delivered' \
        --protocol LMTP --to alice@example.org,bob@example.org --from sender@remote.test \
        --header "Subject: swaks lmtp $TAG"
fi

if [ "$FAILED" -ne 0 ]; then
    echo "$FAILED swaks check(s) failed"
    exit 1
fi
echo "all swaks checks passed"
