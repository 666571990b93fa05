#!/usr/bin/env bash
# Submission interop with msmtp (Debian package msmtp): STARTTLS with the server's
# certificate as the trust anchor, AUTH, and a message piped in as a MUA would.
#   msmtp_submit.sh HOST PORT CERT.pem
set -uo pipefail
HOST="${1:?host}" PORT="${2:?port}" CERT="${3:?cert}"
command -v msmtp >/dev/null || { echo "msmtp is missing: apt-get install msmtp"; exit 1; }
failures=0
run() { # name, expected exit status (0 = sent), msmtp args... (message on stdin)
    local name="$1" want="$2"; shift 2
    local out status
    out="$(printf 'From: alice@example.org\r\nTo: bob@example.org\r\nSubject: msmtp\r\n\r\nhello from msmtp\r\n' |
        msmtp --host="$HOST" --port="$PORT" --domain=client.test --tls=on --tls-starttls=on \
            --tls-trust-file="$CERT" --tls-host-override=mx.example.org \
            --auth=on --user=alice@example.org --passwordeval="echo $PASS" "$@" 2>&1)"
    status=$?
    if { [ "$want" = 0 ] && [ "$status" = 0 ]; } || { [ "$want" != 0 ] && [ "$status" != 0 ]; }; then
        echo "ok   $name"
    else
        echo "FAIL $name (exit $status)"; echo "$out"; failures=$((failures + 1))
    fi
}
PASS=alice-pw run "msmtp submits over STARTTLS with AUTH" 0 --from=alice@example.org bob@example.org
PASS=alice-pw run "msmtp with SCRAM-SHA-256" 0 --auth=scram-sha-256 --from=alice@example.org bob@example.org
PASS=wrong run "msmtp with a wrong password fails" 1 --from=alice@example.org bob@example.org
PASS=alice-pw run "msmtp as someone else fails" 1 --from=bob@example.org alice@example.org
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
