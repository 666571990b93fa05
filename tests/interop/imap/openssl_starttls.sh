#!/bin/sh
# STARTTLS and implicit TLS of a running mailroom IMAP server with `openssl s_client`.
# Usage: openssl_starttls.sh CAFILE [PLAIN_PORT] [IMAPS_PORT]   (host: IMAP_HOST or 127.0.0.1)
# The certificate must be valid for "localhost" (the generated one is).
set -eu
cafile=$1
port=${2:-${IMAP_PORT:-1143}}
imaps=${3:-${IMAPS_PORT:-1993}}
host=${IMAP_HOST:-127.0.0.1}
user=${IMAP_USER:-joe@example.org}
pass=${IMAP_PASS:-secret pass}

fail() { echo "FAIL: $1"; echo "$2" | sed 's/^/    /'; exit 1; }

session() {
    # Commands paced so that each goes after the handshake and the previous answer.
    (sleep 1; printf 'a CAPABILITY\r\n'; sleep 1
     printf 'b LOGIN %s "%s"\r\n' "$user" "$pass"; sleep 1
     printf 'c SELECT INBOX\r\n'; sleep 1
     printf 'd LOGOUT\r\n'; sleep 1) |
        timeout 20 openssl s_client -quiet -verify_return_error -CAfile "$cafile" \
            -verify_hostname localhost "$@" 2>&1
}

out=$(session -starttls imap -connect "$host:$port") || fail "openssl s_client -starttls imap" "$out"
echo "$out" | grep -q '^a OK' || fail "CAPABILITY after STARTTLS" "$out"
echo "$out" | grep '^\* CAPABILITY' | grep -q -e STARTTLS -e LOGINDISABLED &&
    fail "no STARTTLS/LOGINDISABLED after STARTTLS" "$out"
echo "$out" | grep -q '^b OK' || fail "LOGIN after STARTTLS" "$out"
echo "$out" | grep -q '^c OK' || fail "SELECT after STARTTLS" "$out"
echo "ok: openssl s_client -starttls imap: verified certificate, LOGIN, SELECT"

out=$(session -connect "$host:$imaps") || fail "openssl s_client (implicit TLS)" "$out"
echo "$out" | grep -q '^\* OK \[CAPABILITY' || fail "greeting over implicit TLS" "$out"
echo "$out" | grep -q '^b OK' || fail "LOGIN over implicit TLS" "$out"
echo "ok: openssl s_client to the imaps port: verified certificate, LOGIN"

if out=$(echo | timeout 10 openssl s_client -tls1_1 -connect "$host:$imaps" 2>&1) &&
    echo "$out" | grep -q 'Protocol  *: TLSv1.1'; then
    fail "TLS 1.1 refused" "$out"
fi
echo "ok: TLS 1.1 refused"
echo "all openssl checks passed"
