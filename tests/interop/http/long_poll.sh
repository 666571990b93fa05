#!/usr/bin/env bash
# The test API's long poll driven with curl against a running mailroom in test mode:
# a wait that times out answers 408; a wait started before the message is sent
# answers 200 with that message as soon as it is delivered. See README.md.
set -euo pipefail

BASE=${BASE:-http://127.0.0.1:8025}
TOKEN=${TOKEN:?set TOKEN to the admin token (logged by mailroom at start-up)}
SMTP=${SMTP:-127.0.0.1:2525}
TO=${TO:-alice@example.org}
# How to deliver the message: by default curl speaks SMTP to $SMTP. Override with a
# command that reads the RFC 5322 message on stdin (its recipient is $TO).
DELIVER=${DELIVER:-}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
auth=(-H "Authorization: Bearer $TOKEN")
subject="long poll $(date +%s)-$$"
fail() { echo "FAIL: $*" >&2; exit 1; }

# The recipient must be deliverable (test mode would create it on first delivery;
# creating it here makes the script work either way). 409 means it exists.
domain=${TO#*@}
curl -sS -o /dev/null "${auth[@]}" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$domain\"}" "$BASE/api/v1/domains"
curl -sS -o /dev/null "${auth[@]}" -H 'Content-Type: application/json' \
    -d "{\"address\":\"$TO\",\"password\":\"interop-secret\"}" "$BASE/api/v1/accounts"

echo "1. without the token: 401"
code=$(curl -sS -o "$work/body" -w '%{http_code}' "$BASE/api/v1/test/wait?timeout_ms=1")
[ "$code" = 401 ] || fail "expected 401, got $code: $(cat "$work/body")"

echo "2. purge"
code=$(curl -sS -o "$work/body" -w '%{http_code}' -X DELETE "${auth[@]}" "$BASE/api/v1/test/messages")
[ "$code" = 200 ] || fail "purge answered $code: $(cat "$work/body")"

echo "3. nothing arrives: 408 after timeout_ms"
start=$(date +%s%N)
code=$(curl -sS -o "$work/body" -w '%{http_code}' "${auth[@]}" -G \
    --data-urlencode "subject=$subject" --data-urlencode "timeout_ms=500" "$BASE/api/v1/test/wait")
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$code" = 408 ] || fail "expected 408, got $code: $(cat "$work/body")"
grep -q '"error"' "$work/body" || fail "408 without a JSON error: $(cat "$work/body")"
[ "$elapsed" -ge 450 ] || fail "408 after only ${elapsed} ms"

echo "4. wait first, then send: 200 with the message"
curl -sS -o "$work/waited" -w '%{http_code}' "${auth[@]}" -G \
    --data-urlencode "to=$TO" --data-urlencode "subject=$subject" \
    --data-urlencode "timeout_ms=20000" "$BASE/api/v1/test/wait" > "$work/code" &
waiter=$!
sleep 1
if kill -0 "$waiter" 2>/dev/null; then :; else fail "the wait ended before anything was sent: $(cat "$work/code") $(cat "$work/waited")"; fi
printf 'From: interop@example.net\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@interop.example.net>\r\n\r\nSent by long_poll.sh.\r\n' \
    "$TO" "$subject" "$$" > "$work/message.eml"
sent=$(date +%s%N)
if [ -n "$DELIVER" ]; then
    sh -c "$DELIVER" < "$work/message.eml"
else
    curl -sS --url "smtp://$SMTP" --mail-from interop@example.net --mail-rcpt "$TO" \
        -T "$work/message.eml"
fi
wait "$waiter" || fail "curl failed waiting"
latency=$(( ($(date +%s%N) - sent) / 1000000 ))
code=$(cat "$work/code")
[ "$code" = 200 ] || fail "expected 200, got $code: $(cat "$work/waited")"
grep -q "\"subject\":\"$subject\"" "$work/waited" || fail "wrong message: $(cat "$work/waited")"
echo "   answered ${latency} ms after sending: $(cat "$work/waited")"

echo "5. fetch it raw"
raw_url=$(sed -n 's/.*"raw_url":"\([^"]*\)".*/\1/p' "$work/waited")
curl -sS -f "${auth[@]}" "$BASE$raw_url" | grep -q "Subject: $subject" || fail "raw message lacks the subject"

echo "PASS"
